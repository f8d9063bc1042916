"""RGMComm (plugins/rgmcomm): Q-vector sampling against hand-built critics and mixers, cosine kNN
and the RIM terms against hand computations, gradients through both terms, the matrix example's
clustering, the labels a receiver gets, the schedule, logs and config checks."""
import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th

from helpers import Stats
from marlkit.config import build_config
from marlkit.errors import SuiteError
from marlkit import host
from marlkit.experiment import offline, train_iteration
from marlkit.registry import get_registry
from plugins.rgmcomm.clustering import (MessageGenerator, average_cosine_distance, cosine_knn, gap_bound,
                                        normalise, rim_loss)
from plugins.rgmcomm.envs import matrix
from plugins.rgmcomm.controller import sender_matrix
from plugins.rgmcomm.learner import RGMCommMixin

SMALL = dict(rgm_gen_hidden=16, t_max=400, batch_size=4, buffer_size=16, test_nepisode=4,
             rgm_k1=32, rgm_k2=8, rgm_knn=4)


# ---- Q-vector sampling -----------------------------------------------------------------------
def steps(n=3, k=5, d=2, a=3, seed=0):
    g = th.Generator().manual_seed(seed)
    obs = th.randn(k, n, d, generator=g)
    acts = th.nn.functional.one_hot(th.randint(0, a, (k, n), generator=g), a).float()
    last = th.nn.functional.one_hot(th.randint(0, a, (k, n), generator=g), a).float()
    return {"obs": obs, "state": obs.reshape(k, -1), "actions_onehot": acts, "last_actions": last,
            "utilities": th.randn(k, n, generator=g)}


def sampler(mode, **args):
    fake = object.__new__(type("Fake", (RGMCommMixin,), {}))
    settings = dict(n_agents=3, rgm_k2=4, obs_individual_obs=False, obs_last_action=True, obs_agent_id=True)
    fake.args = SimpleNamespace(**{**settings, **args})
    fake.rgm_value = mode
    return fake


class HandCritic:
    """Q(inputs, actions) = w . [inputs, actions] + (sum of inputs) * (sum of actions * v)."""
    output_type = "q"

    def __init__(self, width, n_act):
        self.w = th.linspace(-1, 1, width + n_act)
        self.v = th.arange(n_act, dtype=th.float)

    def __call__(self, inputs, actions):
        x = th.cat([inputs, actions], -1)
        return ((x * self.w).sum(-1) + inputs.sum(-1) * (actions * self.v).sum(-1)).unsqueeze(-1)


def test_q_vectors_of_the_maddpg_critic_by_hand():
    s = steps()
    fake = sampler("critic")
    fake.critic = HandCritic(6 + 3 + 3, 9)
    for j in range(3):
        got = fake.q_vectors(s, j)
        assert got.shape == (5, 4)
        for p in range(5):
            for q in range(4):
                state = s["state"][q].clone()
                state[2 * j:2 * j + 2] = s["obs"][p, j]  # agent j's chunk from sample p
                acts = s["actions_onehot"][q].clone()
                acts[j] = s["actions_onehot"][p, j]
                inputs = th.cat([state, s["last_actions"][p, j], th.eye(3)[j]])
                want = fake.critic(inputs, acts.reshape(-1))
                assert got[p, q] == pytest.approx(float(want), abs=1e-5)


def test_q_vectors_of_a_mixer_by_hand_and_iql_sum():
    s = steps()
    fake = sampler("mixer")
    weights = th.tensor([1.0, -2.0, 0.5])
    fake.mixer = lambda qs, state: ((qs * weights).sum(-1) + 0.1 * state.sum(-1)).unsqueeze(-1)
    got = fake.q_vectors(s, 1)
    for p in range(5):
        for q in range(4):
            u = s["utilities"][q].clone()
            u[1] = s["utilities"][p, 1]
            state = s["state"][q].clone()
            state[2:4] = s["state"][p, 2:4]
            assert got[p, q] == pytest.approx(float((u * weights).sum() + 0.1 * state.sum()), abs=1e-5)
    fake.mixer = None  # IQL: the sum of utilities
    got = fake.q_vectors(s, 0)
    assert got[2, 3] == pytest.approx(float(s["utilities"][2, 0] + s["utilities"][3, 1:].sum()), abs=1e-6)


# ---- normalisation, kNN, RIM terms ----------------------------------------------------------
def test_normalisations():
    q = th.tensor([[1.0, 3.0, 5.0], [-4.0, -2.0, -1.0]])
    alpha, beta = th.tensor([[3.0], [-2.5]]), th.tensor([[5.0], [4.0]])
    assert th.allclose(normalise(q, "tanh"), th.tanh((q - alpha) / beta))
    assert th.allclose(normalise(q, "softmax"), th.softmax((q - alpha) / beta, -1))
    assert th.allclose(normalise(q, "tanh", "max")[0], th.tanh((q[0] - 3) / 5))
    assert th.equal(normalise(q, "none"), q)


def test_cosine_knn_by_hand():
    x = th.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.2]])
    idx, sim = cosine_knn(x, 2)
    u = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    cos = u @ u.T
    for p in range(4):
        others = [q for q in range(4) if q != p]
        want = sorted(others, key=lambda q: 1 - cos[p, q])[:2]  # smallest cosine distance
        assert idx[p].tolist() == want
        assert np.allclose(sim[p].numpy(), cos[p, want], atol=1e-6)


def test_rim_loss_terms_by_hand():
    logits = th.tensor([[2.0, 0.0, -1.0], [1.5, 0.5, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    qvec = th.tensor([[1.0, 0.2], [0.9, 0.3], [-0.2, 1.0], [0.1, -1.0]])
    loss, parts = rim_loss(logits, qvec, knn=1, cd_weight=0.5, mi_weight=2.0, marginal_weight=3.0)
    p = th.softmax(logits, -1).numpy()
    u = qvec.numpy() / np.linalg.norm(qvec.numpy(), axis=1, keepdims=True)
    cos = u @ u.T
    np.fill_diagonal(cos, -np.inf)
    nn_ = cos.argmax(1)
    cd = sum(cos[i, nn_[i]] * ((p[i] - p[nn_[i]]) ** 2).sum() for i in range(4))
    h_cond = np.mean([-(row * np.log(row)).sum() for row in p])
    pm = p.mean(0)
    h_marg = -(pm * np.log(pm)).sum()
    assert float(parts["cd"]) == pytest.approx(cd, rel=1e-5)
    assert float(parts["h_cond"]) == pytest.approx(h_cond, rel=1e-5)
    assert float(parts["h_marg"]) == pytest.approx(h_marg, rel=1e-5)
    assert float(loss) == pytest.approx(0.5 * cd + 2.0 * (h_cond - 3.0 * h_marg), rel=1e-5)
    _, dist_parts = rim_loss(logits, qvec, knn=1, weight="distance")  # Eq. 13 as written
    cd_dist = sum((1 - cos[i, nn_[i]]) * ((p[i] - p[nn_[i]]) ** 2).sum() for i in range(4))
    assert float(dist_parts["cd"]) == pytest.approx(cd_dist, rel=1e-5)


def generator_grads(**kw):
    gen = MessageGenerator(3, 2, 4, hidden=8)
    obs = th.randn(16, 3, generator=th.Generator().manual_seed(0))
    qvec = th.randn(16, 6, generator=th.Generator().manual_seed(1))
    loss, _ = rim_loss(gen.forward_agent(obs, 1), qvec, knn=3, **kw)
    loss.backward()
    return [w.grad[1].abs().sum().item() for w in gen.weights], gen.weights[0].grad[0].abs().sum().item()


def test_gradients_reach_the_generator_through_both_terms():
    cd_only, other_agent = generator_grads(cd_weight=1.0, mi_weight=0.0)
    mi_only, _ = generator_grads(cd_weight=0.0, mi_weight=1.0)
    assert all(g > 0 for g in cd_only) and all(g > 0 for g in mi_only)
    assert other_agent == 0  # agent 1's loss leaves agent 0's generator alone
    integer_cd, _ = generator_grads(cd_weight=1.0, mi_weight=0.0, term="integer")
    assert all(g == 0 for g in integer_cd)  # the public code's integer term: no gradient


def test_generator_per_agent_matches_forward_agent():
    for shared in (False, True):
        gen = MessageGenerator(5, 3, 4, hidden=7, shared=shared)
        obs = th.randn(2, 6, 3, 5)
        out = gen(obs)
        assert out.shape == (2, 6, 3, 4)
        for j in range(3):
            assert th.allclose(out[..., j, :].reshape(-1, 4), gen.forward_agent(obs[..., j, :].reshape(-1, 5), j), atol=1e-5)
        flat = obs.reshape(-1, 3, 5)
        assert th.equal(gen.labels(flat), gen(flat).argmax(-1))  # the acting path: same values, fewer ops


def test_generator_follows_loaded_copied_and_trained_weights():
    """forward and labels read the layers through cached tuples and views: they must see every
    way weights change (load, optimiser steps, deepcopy then training, pickling, dtype moves)."""
    a, b = MessageGenerator(5, 3, 4, hidden=7), MessageGenerator(5, 3, 4, hidden=7)
    obs = th.randn(10, 3, 5)
    b.load_state_dict(a.state_dict())
    assert th.equal(a(obs), b(obs)) and th.equal(a.labels(obs), b.labels(obs))
    c = copy.deepcopy(a)
    assert {id(p) for p in c.parameters()} == {id(t) for layer in c._layers for t in layer}
    before = a(obs).detach()
    opt = th.optim.SGD(a.parameters(), lr=0.1)
    a(obs).square().sum().backward()
    opt.step()
    assert not th.equal(a(obs), before) and th.equal(c(obs), before)
    for gen in (a, c):  # the copy's views live on the copy's weights
        assert all(v.data_ptr() == p.data_ptr() for (v, _), (p, _) in zip(gen._acting, gen._layers))
    opt = th.optim.SGD(c.parameters(), lr=10.0)
    (c(obs) * th.randn(10, 3, 4)).sum().backward()
    opt.step()
    wide = th.randn(200, 3, 5) * 3
    for gen in (a, c, pickle.loads(pickle.dumps(c)), copy.deepcopy(a).double()):
        x = wide.to(gen.weights[0].dtype)
        assert th.equal(gen.labels(x), gen(x).argmax(-1))


def test_epsilon_and_gap_bound_by_hand():
    q = th.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 2.0]])
    labels = th.tensor([0, 0, 1, 1])
    centre0 = np.array([1.0, 0.5])
    d0 = [1 - np.dot(v, centre0) / np.linalg.norm(v) / np.linalg.norm(centre0) for v in ([1, 0], [1, 1])]
    want = (sum(d0) + 0.0) / 4  # cluster 1 is collinear: distance 0
    assert float(average_cosine_distance(q, labels)) == pytest.approx(want, rel=1e-5)
    assert gap_bound(0.04, 10.0, 3) == pytest.approx(3 * 0.2 * 10)


def test_clustering_the_matrix_example_finds_the_papers_messages():
    """Training agent 2's generator with the RIM loss on the four Q-vectors of Fig. 1 (2 labels)
    puts o21 with o23 and o22 with o24: the paper's messages and the best 2-label code."""
    th.manual_seed(0)
    qvec = normalise(th.tensor(matrix.q_vectors(), dtype=th.float), "tanh")
    obs = th.eye(4)
    gen = MessageGenerator(4, 1, 2, hidden=16)
    opt = th.optim.Adam(gen.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = rim_loss(gen.forward_agent(obs, 0), qvec, knn=1, cd_weight=1.0, mi_weight=1.0, marginal_weight=4.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    labels = gen.forward_agent(obs, 0).argmax(-1).tolist()
    assert labels[0] == labels[2] != labels[1] == labels[3]
    assert matrix.exact_returns(labels) == pytest.approx(matrix.exact_returns(matrix.best_labelling(2)))


# ---- the controller ------------------------------------------------------------------------------
def build(alg, env, **updates):
    return offline(alg, env, {**SMALL, **updates})


def test_receivers_get_exactly_the_senders_labels():
    args, runner, buffer, mac, learner = build("rgmcomm_maddpg", "mpe_tag", env_args={"n_predators": 3})
    mac.comm.active = True
    batch, _ = runner.run(test_mode=False)
    m = args.comm_labels + 1
    for t in (0, 5):
        inputs = mac._build_inputs(batch, t).view(batch.batch_size, 3, -1)
        labels = mac.comm.generator(batch["obs"][:, t]).argmax(-1)
        assert th.equal(batch["messages"][:, t, :, 0], labels)  # what was sent is stored
        for i in range(3):
            got = inputs[:, i, -2 * m:].view(-1, 2, m)
            senders = [j for j in range(3) if j != i]
            assert th.equal(got.argmax(-1), labels[:, senders]) and th.equal(got.sum(-1), th.ones(len(got), 2))
    mac.comm.active = False  # generator off: the reserved null label |M|
    inputs = mac._build_inputs(batch, 0).view(batch.batch_size, 3, -1)
    assert (inputs[..., -2 * m:].view(-1, 2, m).argmax(-1) == args.comm_labels).all()


def previous_select(mac, batch, t, bs):
    """The acting path before its rewrite (the oracle): labels from the differentiable batched
    forward, each receiver's senders gathered then one-hot rows times the heard mask, one
    concatenation onto the host controller's inputs, then the host controller's own selection."""
    comm, n = mac.comm, mac.n_agents
    obs = batch["obs"][:, t]
    with th.no_grad():
        labels = comm.generator(obs).argmax(-1) if comm.active else th.full(obs.shape[:-1], comm.n_labels)
    others = th.tensor([[j for j in range(n) if j != i] for i in range(n)])
    heard = sender_matrix(n, mac.args.rgm_receivers)[th.arange(n)[:, None], others].unsqueeze(-1)
    got = th.eye(comm.n_labels + 1)[labels[..., others]] * heard
    base = next(c for c in type(mac).__mro__ if c in (host.BasicMAC, host.controllers["maddpg_mac"]))
    inputs = th.cat([base._build_inputs(mac, batch, t), got.reshape(batch.batch_size * n, -1)], -1)
    mac._build_inputs = lambda *_: inputs  # the instance attribute shadows the method for this call
    try:
        if mac._takes_bs:
            actions, _ = base.select_actions(mac, batch, t, 0, bs=bs, test_mode=False)
        else:
            actions = base.select_actions(mac, batch, t, 0, test_mode=False)[0][bs]
    finally:
        del mac._build_inputs
    return labels[bs], actions, mac.hidden_states


def current_select(mac, batch, t, bs):
    actions, extra = mac.select_actions(batch, t, 0, bs=bs)
    return extra["messages"][..., 0], actions, mac.hidden_states


@pytest.mark.parametrize("alg,n,updates", [
    ("rgmcomm_maddpg", 2, {}), ("rgmcomm_maddpg", 3, {}), ("rgmcomm_maddpg", 6, {}),
    ("rgmcomm_qmix", 2, {}), ("rgmcomm_qmix", 6, {}), ("rgmcomm_qmix", 3, {"rgm_receivers": [[1], [], [0, 1]]}),
])
def test_acting_path_matches_the_previous_one(alg, n, updates):
    """Labels, actions (same random stream) and hidden states th.equal to the previous acting path
    on random observations, for several batch sizes and env subsets, generator on and off."""
    args, runner, buffer, mac, learner = build(alg, "mpe_tag", env_args={"n_predators": n}, rgm_gen_hidden=64, **updates)
    batch, _ = runner.run(test_mode=False)
    obs = batch.data.transition_data["obs"]
    obs.copy_(th.randn(obs.shape, generator=th.Generator().manual_seed(n)) * 3)
    seen = set()
    for active in (True, False):
        mac.comm.active = active
        for size, bs in ((1, slice(None)), (3, slice(None)), (3, [0, 2]), (8, slice(None))):
            part, runs = batch[:size], []
            for select in (current_select, previous_select):
                mac.init_hidden(size)
                runs.append([(th.manual_seed(t), select(mac, part, t, bs))[1] for t in (0, 1, 5)])
            for (labels, actions, hidden), (labels0, actions0, hidden0) in zip(*runs):
                assert th.equal(labels, labels0) and th.equal(actions, actions0) and th.equal(hidden, hidden0)
                seen.update(labels.flatten().tolist())
    assert len(seen) >= 3  # the generator's labels vary (and the null label appears)


def test_named_receivers_leave_other_slots_empty():
    args, runner, buffer, mac, learner = build("rgmcomm_qmix", "mpe_tag", env_args={"n_predators": 3},
                                               rgm_receivers=[[1], [], [0, 1]])
    mac.comm.active = True
    batch, _ = runner.run(test_mode=True)
    m = args.comm_labels + 1
    inputs = mac._build_inputs(batch, 0).view(batch.batch_size, 3, -1)[..., -2 * m:].reshape(-1, 3, 2, m)
    filled = inputs.sum(-1)[0]
    # receiver 0 hears agent 2 only; receiver 1 hears 0 and 2; receiver 2 hears nobody
    assert filled.tolist() == [[0, 1], [1, 1], [0, 0]]


def test_staged_schedule_and_logs():
    args, runner, buffer, mac, learner = build("rgmcomm_qmix", "maze", learner_log_interval=1)
    stats = Stats()
    learner.logger = stats
    assert learner.rgm_phase(0) == "pretrain" and learner.rgm_phase(150) == "generator"
    assert learner.rgm_phase(300) == "frozen"
    episode = 0
    gen_before = [w.detach().clone() for w in learner.generator.parameters()]
    while runner.t_env < 90:  # pre-training (an iteration adds at most 8 x 3 steps; stage 1 ends at 120): null labels, the generator is untouched
        episode = train_iteration(args, runner, buffer, learner, episode)
    assert not mac.comm.active and all(th.equal(a, b) for a, b in zip(gen_before, learner.generator.parameters()))
    while runner.t_env < 200:
        episode = train_iteration(args, runner, buffer, learner, episode)
    assert mac.comm.active and learner.rgm_gen_updates > 0
    for key in ("message_entropy", "rgm_epsilon", "rgm_q_max", "rgm_gap_bound", "rgm_labels_used", "rgm_label_0_share"):
        assert key in stats.logged, key
    shares = sum(stats.logged[f"rgm_label_{m}_share"] for m in range(args.comm_labels))
    assert shares == pytest.approx(1.0)
    frozen = [w.detach().clone() for w in learner.generator.parameters()]
    runner.t_env = 300
    train_iteration(args, runner, buffer, learner, episode)
    assert all(th.equal(a, b) for a, b in zip(frozen, learner.generator.parameters()))


def test_online_schedule_reclusters_every_interval():
    args, runner, buffer, mac, learner = build("rgmcomm_qmix", "maze", rgm_schedule="online",
                                               rgm_stage1_end=0.0, rgm_update_interval=3)
    episode = 0
    for _ in range(7):
        episode = train_iteration(args, runner, buffer, learner, episode)
    assert learner.rgm_base_updates == 7 - 0 and learner.rgm_gen_updates == 3  # updates 0, 3, 6


def test_target_copies_share_the_generator():
    args, runner, buffer, mac, learner = build("rgmcomm_maddpg", "mpe_tag")
    assert learner.target_mac.comm is mac.comm
    assert learner.target_mac.agent is not mac.agent


@pytest.mark.parametrize("updates,needle", [
    ({"comm_labels": 1}, "comm_labels"),
    ({"rgm_norm": "sigmoid"}, "rgm_norm"),
    ({"rgm_k1": 1}, "rgm_k1"),
])
def test_bad_settings_are_refused_in_one_line(updates, needle):
    with pytest.raises(SuiteError, match=needle) as err:
        build_config("rgmcomm_qmix", "maze", updates, get_registry())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("updates,needle", [
    ({"rgm_base_mac": "nope"}, "rgm_base_mac"),
    ({"rgm_base_learner": "nope"}, "rgm_base_learner"),
    ({"rgm_receivers": [[1]]}, "rgm_receivers"),
    ({"rgm_value": "critic"}, "rgm_value=critic"),
])
def test_bad_components_are_refused_at_build(updates, needle):
    with pytest.raises(SuiteError, match=needle):
        build("rgmcomm_qmix", "maze", **updates)


class TableCritic:
    """The matrix example's exact centralized Q as a 'critic' on (state, id) inputs and joint actions."""
    output_type = "q"

    def __call__(self, inputs, actions):
        o1 = inputs[..., 0:2].argmax(-1)
        o2 = inputs[..., 4:8].argmax(-1)
        a1 = actions[..., 0:2].argmax(-1)
        return th.tensor(matrix.Q_TABLE, dtype=th.float)[o1, a1, o2].unsqueeze(-1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_online_clustering_of_sampled_q_vectors_learns_the_min_regret_code(seed):
    """The learning loop of Section 4.2 on the matrix example: every update samples 64 transitions
    from the env (random a1), builds agent 2's Q-vectors with the learner's sampler over the exact
    critic, and trains g_2 (2 labels) with the RIM loss. The code it learns has the smallest regret
    of all 16 two-label codes (exact return 38.05; random codes average 35.66, no message 33.325).
    Clustering weight 1e-2: with the public code's 1e-4 the mutual-information term settles the
    labels before the clustering term acts (1 seed of 3 found this code when this was written)."""
    th.manual_seed(seed)
    env = matrix.RGMMatrix(64, seed=seed)
    fake = sampler("critic", rgm_k2=64)
    fake.args.n_agents, fake.args.obs_last_action = 2, False
    fake.critic = TableCritic()
    gen = MessageGenerator(4, 2, 2, hidden=32)
    opt = th.optim.Adam(gen.parameters(), lr=2e-3)
    for _ in range(150):
        env.reset()
        obs = th.tensor(env.get_obs())
        a1 = th.randint(0, 2, (64,))
        acts = th.stack([th.nn.functional.one_hot(a1, 2), th.nn.functional.one_hot(th.zeros(64, dtype=th.long), 2)], 1)
        s = {"obs": obs, "state": th.tensor(env.get_state()), "actions_onehot": acts.float(),
             "last_actions": th.zeros(64, 2, 2)}
        qvec = normalise(fake.q_vectors(s, 1), "tanh")
        loss, _ = rim_loss(gen.forward_agent(obs[:, 1], 1), qvec, knn=24, cd_weight=1e-2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    labels = gen.forward_agent(th.eye(4), 1).argmax(-1).tolist()
    assert matrix.exact_returns(labels) == pytest.approx(38.05)



@pytest.mark.parametrize("base", [
    {"mixer": "vdn"},  # VDN
    {"mixer": None},  # IQL: Q-vectors are sums of utilities
    {"rgm_base_learner": "wqmix_learner", "wqmix_weighting": "none", "td_lambda": 0.6, "standardise_rewards": False,
     "target_update_interval": 200},  # the pymarl2 family behind remix_qmix (plugins/wqmix), by name
])
def test_generator_trains_on_other_value_based_learners(base):
    args, runner, buffer, mac, learner = build("rgmcomm_qmix", "maze", rgm_stage1_end=0.0, **base)
    before = [w.detach().clone() for w in learner.generator.parameters()]
    episode = 0
    for _ in range(2):
        episode = train_iteration(args, runner, buffer, learner, episode)
    assert learner.rgm_gen_updates == 2 and learner.rgm_value == "mixer"
    assert not all(th.equal(a, b) for a, b in zip(before, learner.generator.parameters()))
