"""DAG-BN (plugins/dagbn, paper 003): Gumbel-Sinkhorn and Hungarian matching against brute force, the
DAG net's acyclicity, the fixed baseline DAGs, topological sampling (parent inputs at commit time,
number of generations), the joint log-probability against a hand-run actor, straight-through
gradients into the DAG nets, the annealing schedule and GAE against hand values, the learner's
DAG-update switches and logged statistics, and a short learning test on the coordination game
(exact price of anarchy)."""
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

from marlkit.experiment import offline, train_iteration

from helpers import Stats
from marlkit.registry import get_registry

get_registry()  # loads plugins/ (puts the repository root on sys.path)
from plugins.dagbn import PARAMS  # noqa: E402
from plugins.dagbn.exact import coordination_metrics  # noqa: E402
from plugins.dagbn.graph import DAGNet, fixed_dag, gumbel_sinkhorn, hungarian  # noqa: E402
from plugins.dagbn.learner import anneal, gae  # noqa: E402
from plugins.dagbn.policy import BNPolicy  # noqa: E402

SMALL = dict(env_args=dict(n=3), batch_size_run=4, batch_size=4, buffer_size=4, seed=1)


def dag_args(n, n_actions, obs_dim, hidden=16, **over):
    """The plugin's PARAMS defaults plus what the host fills in from the env."""
    args = {key: p.default for key, p in PARAMS.items()}
    args.update(n_agents=n, n_actions=n_actions, obs_shape=obs_dim, hidden_dim=hidden)
    args.update(over)
    return SimpleNamespace(**args)


def acyclic(G):
    """Kahn-style check on one 0/1 matrix (G[j, i] = 1: j is a parent of i): repeatedly remove
    the nodes without remaining parents; a cycle leaves nodes behind."""
    G = np.asarray(G)
    left = set(range(len(G)))
    while left:
        roots = [i for i in left if not any(G[j, i] for j in left)]
        if not roots:
            return False
        left -= set(roots)
    return True


def depths(G):
    """Longest path (in edges) ending at each node of a DAG given as nested lists."""
    n = len(G)
    memo = {}

    def d(i):
        if i not in memo:
            parents = [j for j in range(n) if G[j][i]]
            memo[i] = 0 if not parents else 1 + max(d(j) for j in parents)
        return memo[i]

    return [d(i) for i in range(n)]


# Hand-written DAGs on 3 agents, G[j][i] = 1: j is a parent of i.
FORK_IN = [[0, 0, 1], [0, 0, 1], [0, 0, 0]]  # 0 -> 2, 1 -> 2, no edge 0-1: 2 generations
CHAIN_REV = [[0, 1, 0], [0, 0, 0], [1, 1, 0]]  # 2 -> 0, 2 -> 1, 0 -> 1 (order 2, 0, 1): 3 generations
EMPTY = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]  # product policy: 1 generation


# ---- 1. Gumbel-Sinkhorn and Hungarian matching ------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 1.0])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_gumbel_sinkhorn_is_doubly_stochastic(noise, tau):
    th.manual_seed(0)
    log_alpha = th.randn(32, 5, 5)
    soft = gumbel_sinkhorn(log_alpha, tau=tau, noise=noise, iters=200)
    assert soft.shape == log_alpha.shape and (soft > 0).all()
    # the last half-step normalises columns (exact); rows converge with the iterations
    assert th.allclose(soft.sum(-2), th.ones(32, 5), atol=1e-5)
    assert th.allclose(soft.sum(-1), th.ones(32, 5), atol=5e-3)
    few = gumbel_sinkhorn(log_alpha, tau=tau, noise=0.0, iters=2)
    many = gumbel_sinkhorn(log_alpha, tau=tau, noise=0.0, iters=200)
    assert (many.sum(-1) - 1).abs().max() < (few.sum(-1) - 1).abs().max()
    if noise == 0:
        # Sinkhorn only rescales rows and columns of exp(log_alpha / tau): log S - log_alpha / tau = r_i + c_j
        L = (soft.double().log() - log_alpha.double() / tau)
        additive = L - L[..., :, :1] - L[..., :1, :] + L[..., :1, :1]
        assert additive.abs().max() < 1e-4
        # and without noise the result is deterministic
        assert th.equal(soft, gumbel_sinkhorn(log_alpha, tau=tau, noise=0.0, iters=200))
    else:
        assert not th.allclose(soft, gumbel_sinkhorn(log_alpha, tau=tau, noise=noise, iters=200))


def test_hungarian_is_the_brute_force_best_permutation():
    th.manual_seed(1)
    n = 4
    soft = gumbel_sinkhorn(th.randn(2, 30, n, n), tau=1.0, noise=1.0, iters=20)
    hard = hungarian(soft)
    assert hard.shape == soft.shape
    assert ((hard == 0) | (hard == 1)).all()
    assert (hard.sum(-1) == 1).all() and (hard.sum(-2) == 1).all()
    flat_soft, flat_hard = soft.reshape(-1, n, n).numpy(), hard.reshape(-1, n, n).numpy()
    for m, h in zip(flat_soft, flat_hard):
        best = max(itertools.permutations(range(n)), key=lambda s: sum(m[k, s[k]] for k in range(n)))
        expected = np.zeros((n, n))
        expected[np.arange(n), best] = 1
        assert (h == expected).all()


def _reference_permutation(scores, tau, noise, iters):
    """The learned order as first implemented (kept as the oracle): out-of-place Gumbel noise and
    Sinkhorn sums, then scipy's matching one matrix at a time."""
    from scipy.optimize import linear_sum_assignment

    u = th.rand_like(scores).clamp_(1e-10, 1.0 - 1e-7)
    x = (scores + noise * -th.log(-th.log(u))) / tau
    p = (x - x.amax((-2, -1), keepdim=True)).exp()
    for _ in range(iters):
        p = p / p.sum(-1, keepdim=True)
        p = p / p.sum(-2, keepdim=True)
    flat = p.reshape(-1, *p.shape[-2:]).numpy()
    hard = np.zeros_like(flat)
    for b, m in enumerate(flat):
        rows, cols = linear_sum_assignment(-m)
        hard[b, rows, cols] = 1.0
    return th.as_tensor(hard).reshape(p.shape)


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7, 10])
def test_batched_matching_gives_the_same_samples_for_the_same_noise(n):
    """Enumeration (n <= 6) and the batched scipy path (n > 6) pick the same orders as the first
    implementation, draw for draw (same RNG state -> same noise -> same permutation)."""
    scores = th.nn.functional.logsigmoid(th.randn(64, n, n))
    for noise in (1.0, 0.0):
        th.manual_seed(5)
        expected = _reference_permutation(scores, 1.0, noise, 20)
        th.manual_seed(5)
        with th.no_grad():
            got = hungarian(gumbel_sinkhorn(scores, 1.0, noise, 20))
        assert th.equal(got, expected)
        assert (got.sum(-1) == 1).all() and (got.sum(-2) == 1).all()


def test_the_order_is_matched_on_the_sinkhorn_matrix_which_acting_cannot_skip():
    """Sinkhorn only subtracts row and column potentials from the noisy scores (log S = x - r_i - c_j),
    so matching log S is matching x itself; the order is matched on S (as first implemented), which
    differs for some draws: skipping the iterations at acting time would change the sampled orders."""
    th.manual_seed(7)
    x = F.logsigmoid(th.randn(400, 6, 6)) - th.log(-th.log(th.rand(400, 6, 6)))
    with th.no_grad():
        S = gumbel_sinkhorn(x, tau=1.0, noise=0.0, iters=20)
    assert th.equal(hungarian(S.log()), hungarian(x))
    differ = (hungarian(S) != hungarian(x)).flatten(1).any(1).float().mean().item()
    assert 0.01 < differ < 0.5


def test_matching_the_noisy_scores_acts_without_sinkhorn_and_trains_through_it():
    """dag_perm_match=scores: the hard order is the matching of the noisy scores (same noise draw),
    at acting time and in training, where the gradient reaches the permutation net through S."""
    th.manual_seed(8)
    n, O = 7, 3
    net = DAGNet(n, O, dag_args(n, 2, O, dag_perm_match="scores"))
    joint = th.randn(64, n * O)
    scores = F.logsigmoid(net.perm_net(joint).view(64, n, n)).detach()
    th.manual_seed(9)
    expected = hungarian(scores - th.log(-th.log(th.rand(64, n, n).clamp_(1e-10, 1.0 - 1e-7))))
    th.manual_seed(9)
    with th.no_grad():
        assert th.equal(net.permutation(joint, False), expected)
    th.manual_seed(9)
    P = net.permutation(joint, False)
    assert th.equal(P.detach(), expected)
    (P * th.randn(64, n, n)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.perm_net.parameters())
    assert th.equal(net.permutation(joint, True), hungarian(scores))  # test mode: no noise


def _reference_select_actions(mac, x, obs, avail):
    """The controller's acting path as implemented before the exact speed-ups (kept as the
    oracle): learned order from ``_reference_permutation``, edges with out-of-place Gumbel noise,
    parent inputs by einsum, one-hot by F.one_hot, noise drawn in the same order."""
    policy, graph = mac.agent, mac.agent.graph
    B, n = obs.shape[:2]
    joint = obs.reshape(B, -1)
    scores = F.logsigmoid(graph.perm_net(joint).view(B, n, n))
    P = _reference_permutation(scores, graph.sinkhorn["tau"], graph.sinkhorn["noise"], graph.sinkhorn["iters"])
    logits = graph.edge_net(joint).view(B, n, n, 2)
    noisy = logits + -th.log(-th.log(th.rand_like(logits).clamp_(1e-10, 1.0 - 1e-7)))
    G = (noisy[..., 1] > noisy[..., 0]).float() * (P.transpose(-2, -1) @ graph.mask @ P)

    def parents(onehot):
        parts = [th.einsum("...ji,...ja->...ija", G, onehot).flatten(-2)]
        if policy.parent_obs:
            parts.append(th.einsum("...ji,...jo->...ijo", G, obs).flatten(-2))
        return th.cat(parts, -1) if len(parts) > 1 else parts[0]

    own = policy.own(x)
    noise = -th.log(-th.log(th.rand(avail.shape).clamp_(1e-10, 1.0 - 1e-7)))
    onehot = th.zeros(avail.shape)
    for k in range(n):
        out = policy.head(own, parents(onehot)).masked_fill(avail == 0, -1e10)
        chosen = (out + noise).argmax(-1)
        if k > 0 and bool((chosen == actions).all()):
            break
        actions = chosen
        onehot = F.one_hot(actions, avail.shape[-1]).float()
    logp = F.log_softmax(out, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return actions, logp, G


@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("arch,parent_obs", [("late", False), ("early", False), ("late", True)])
def test_controller_samples_the_same_orders_and_actions_as_before_for_the_same_noise(n, arch, parent_obs):
    """select_actions (learned order, sampling) gives bit-identical DAGs, actions and
    log-probabilities to the acting path before the speed-ups, draw for draw."""
    args, mac = _bn_mac(env_args=dict(n=n), dag_actor_arch=arch, dag_parent_obs=parent_obs)
    th.manual_seed(6)
    B, A, O = 32, args.n_actions, args.obs_shape
    obs = th.randn(B, n, O)
    x = th.cat([obs, th.eye(n).expand(B, n, n)], -1)
    avail = th.randint(0, 2, (B, n, A), dtype=th.int32)
    avail[..., 0] = 1
    for draw in range(3):
        th.manual_seed(100 + draw)
        with th.no_grad():
            expected = _reference_select_actions(mac, x, obs, avail)
        th.manual_seed(100 + draw)
        with th.no_grad():
            G = mac.agent.dag(obs)
            actions, logp = mac.sample(x, obs, avail, G)
        assert th.equal(G, expected[2]) and th.equal(actions, expected[0]) and th.equal(logp, expected[1])
        assert G.sum() > 0 and (G.tril(-1).sum() > 0 or n < 3)  # edges, not only in the order 1..n


# ---- 2. the DAG net ---------------------------------------------------------------------------
def test_dag_net_samples_are_acyclic_zero_one_and_test_mode_is_deterministic():
    th.manual_seed(2)
    n, O = 5, 3
    net = DAGNet(n, O, dag_args(n, 2, O))
    obs = th.randn(4, 50, n, O)  # 200 observations with (batch, time) leading dims
    Gs = [_zero_one(net(obs)) for _ in range(3)]  # train mode: fresh Gumbel noise each call
    for G in Gs:
        assert G.shape == (4, 50, n, n)
        assert (th.diagonal(G, dim1=-2, dim2=-1) == 0).all()
        assert (th.linalg.matrix_power(G, n) == 0).all()  # nilpotent <=> acyclic
    flat = th.cat([G.reshape(-1, n, n) for G in Gs])
    assert all(acyclic(g) for g in flat.numpy())
    # the learned order varies: some DAGs have an edge j -> i with j > i (not the identity order)
    assert (flat.tril(-1).sum((-2, -1)) > 0).any()
    assert 0 < flat.mean() < 1
    assert not th.equal(Gs[0], Gs[1])
    G1, G2 = net(obs, test_mode=True), net(obs, test_mode=True)
    assert th.equal(G1, G2)
    G1 = _zero_one(G1)
    assert (th.linalg.matrix_power(G1, n) == 0).all() and all(acyclic(g) for g in G1.reshape(-1, n, n).numpy())


def _zero_one(G):
    """G is exactly 0/1 in the forward pass (straight-through leaves no rounding residue)."""
    G = G.detach()
    assert ((G == 0) | (G == 1)).all()
    return G


# ---- 3. fixed DAGs ----------------------------------------------------------------------------
FIXED = {
    "full": [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "line": [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
    "none": [[0] * 4] * 4,
}


@pytest.mark.parametrize("mode", sorted(FIXED))
def test_fixed_dags_and_the_policy_returns_them(mode):
    expected = th.tensor(FIXED[mode], dtype=th.float32)
    assert th.equal(fixed_dag(mode, 4), expected)
    policy = BNPolicy(3 + 4, dag_args(4, 2, 3, dag_mode=mode))
    assert policy.graph is None
    obs = th.randn(5, 7, 4, 3)
    for test_mode in (False, True):
        G = policy.dag(obs, test_mode)
        assert G.shape == (5, 7, 4, 4) and (G == expected).all()
    with pytest.raises(ValueError):
        fixed_dag("context", 4)


# ---- 4. topological sampling ------------------------------------------------------------------
def _bn_mac(**extra):
    args, runner, buffer, mac, learner = offline("dagbn", "coordination_game", dict(SMALL, **extra))
    return args, mac


@pytest.mark.parametrize("dags", [[FORK_IN], [CHAIN_REV], [EMPTY], [FORK_IN, CHAIN_REV, EMPTY]],
                         ids=["fork", "chain", "empty", "mixed"])
@pytest.mark.parametrize("greedy", [False, True])
def test_sampling_in_topological_order_sees_exactly_the_parents_actions(dags, greedy, monkeypatch):
    args, mac = _bn_mac()
    policy = mac.agent
    n, A = 3, 2
    with th.no_grad():  # make the parent inputs matter a lot, so wrong parent inputs change actions
        policy.parent_net.weight.mul_(20.0)
    rows = 16
    G = th.tensor([d for d in dags for _ in range(rows)], dtype=th.float32)
    B = len(G)
    th.manual_seed(3)
    obs = th.randint(0, 2, (B, n, n)).float()
    x = th.cat([obs, th.eye(n).expand(B, n, n)], -1)
    avail = th.ones(B, n, A, dtype=th.int32)

    calls = []
    original = policy.head

    def spy(own, parents):
        assert len(calls) < n, "more head passes than agents: the topological loop does not terminate"
        out = original(own, parents)
        calls.append((parents.clone(), out.clone()))
        return out

    monkeypatch.setattr(policy, "head", spy)
    with th.no_grad():
        actions, logp = mac.sample(x, obs, avail, G, greedy=greedy)

    # Head pass k (0-based) must see the final actions of every agent of depth < k: agent i's
    # action is settled at pass depth(i), so at least longest path + 1 passes, and at most n.
    depth = [depths(d) for d in dags for _ in range(rows)]
    longest = max(max(d) for d in depth)
    assert longest + 1 <= len(calls) <= (n if longest > 0 else 1)
    for b in range(B):
        for i in range(n):
            for k in (depth[b][i], len(calls) - 1):  # when i's action is settled, and the last pass
                parents_in, logits = calls[k]
                expected = th.zeros(n * A)
                for j in range(n):
                    if G[b, j, i]:
                        expected[j * A + actions[b, j]] = 1.0
                assert th.equal(parents_in[b, i].float(), expected), (b, i, k)
            parents_in, logits = calls[depth[b][i]]
            log_pi = F.log_softmax(logits[b, i], -1)
            assert logp[b, i].item() == pytest.approx(log_pi[actions[b, i]].item(), abs=1e-6)
            if greedy:
                assert actions[b, i] == log_pi.argmax()


@pytest.mark.parametrize("dag", [FORK_IN, CHAIN_REV], ids=["fork", "chain"])
def test_sampled_joint_actions_follow_the_bn_joint_distribution(dag):
    """Empirical frequencies of the 8 joint actions of one observation against the exact
    pi(a | o) = prod_i pi^i(a^i | o^i, a^{P_i}) from the learner-side conditionals."""
    args, mac = _bn_mac()
    policy = mac.agent
    n, A, N = 3, 2, 20000
    with th.no_grad():
        policy.parent_net.weight.copy_(3.0 * th.randn_like(policy.parent_net.weight))
    obs = th.tensor([[1.0, 0.0, 1.0]]).expand(n, n)
    x = th.cat([obs, th.eye(n)], -1)
    joint = th.tensor(list(itertools.product(range(A), repeat=n)))  # [8, n], agent 0 most significant
    G1 = th.tensor(dag, dtype=th.float32)
    with th.no_grad():
        K = len(joint)
        logits = policy.logits(x.expand(K, n, -1), G1.expand(K, n, n), F.one_hot(joint, A).float(),
                               obs.expand(K, n, n), th.ones(K, n, A, dtype=th.int32))
        exact = F.log_softmax(logits, -1).gather(-1, joint.unsqueeze(-1)).squeeze(-1).sum(-1).exp()
        assert exact.sum().item() == pytest.approx(1.0, abs=1e-5)
        th.manual_seed(6)
        actions, logp = mac.sample(x.expand(N, n, -1), obs.expand(N, n, n), th.ones(N, n, A, dtype=th.int32),
                                   G1.expand(N, n, n))
    index = (actions * th.tensor([4, 2, 1])).sum(-1)
    freq = th.bincount(index, minlength=K).double() / N
    tol = 4 * (exact.double() * (1 - exact.double()) / N).sqrt() + 1e-3
    assert ((freq - exact.double()).abs() <= tol).all(), (freq, exact)
    # and the returned log-probabilities are the exact joint ones of the sampled actions
    assert th.allclose(logp.sum(-1).exp(), exact[index], atol=1e-5)


# ---- 5. joint log-probability -----------------------------------------------------------------
def _hand_log_conditional(policy, arch, parent_obs, x_i, p_i, avail_i, a_i):
    """log pi^i(a_i | own features x_i, parent vector p_i), running the actor's layers by hand (float64)."""
    lin = lambda layer, v: v @ layer.weight.double().T + (layer.bias.double() if layer.bias is not None else 0)  # noqa: E731
    relu = lambda v: v.clamp(min=0)  # noqa: E731
    x_i, p_i = x_i.double(), p_i.double()
    if arch == "early":
        h = lin(policy.own_in, x_i) + lin(policy.parent_in, p_i)
        t = policy.trunk
        logits = lin(t[3], relu(lin(t[1], relu(h))))
    else:
        b, out = policy.own_base[0], policy.own_base[1]
        logits = lin(out, relu(lin(b[2], relu(lin(b[0], x_i)))))
        if parent_obs:
            pb, pout = policy.parent_net[0], policy.parent_net[1]
            logits = logits + lin(pout, relu(lin(pb[2], relu(lin(pb[0], p_i)))))
        else:
            logits = logits + lin(policy.parent_net, p_i)
    ok = [k for k in range(len(logits)) if avail_i[k]]
    norm = math.log(sum(math.exp(logits[k].item()) for k in ok))
    return logits[a_i].item() - norm


@pytest.mark.parametrize("arch,parent_obs", [("late", False), ("early", False), ("late", True)])
def test_joint_log_probability_is_the_product_of_hand_computed_conditionals(arch, parent_obs):
    args, mac = _bn_mac(dag_actor_arch=arch, dag_parent_obs=parent_obs)
    policy = mac.agent
    n, A, O = 3, 2, 3
    G = th.tensor([FORK_IN, CHAIN_REV, EMPTY, FORK_IN, CHAIN_REV, EMPTY], dtype=th.float32)
    B = len(G)
    th.manual_seed(4)
    obs = th.randint(0, 2, (B, n, O)).float()
    x = th.cat([obs, th.eye(n).expand(B, n, n)], -1)
    avail = th.ones(B, n, A, dtype=th.int32)
    avail[3:, 1, 0] = 0  # agent 1 may only take action 1 in the last three rows
    with th.no_grad():
        actions, logp_ctrl = mac.sample(x, obs, avail, G)
        onehot = F.one_hot(actions, A).float()
        log_pi = F.log_softmax(policy.logits(x, G, onehot, obs, avail), -1)
        logp_learner = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    assert (actions[3:, 1] == 1).all() and logp_learner[3:, 1].abs().max() < 1e-6
    for b in range(B):
        joint = 1.0
        for i in range(n):
            p_act, p_obs = th.zeros(n, A), th.zeros(n, O)
            for j in range(n):
                if G[b, j, i]:
                    p_act[j, actions[b, j]] = 1.0
                    p_obs[j] = obs[b, j]
            p_i = th.cat([p_act.flatten(), p_obs.flatten()]) if parent_obs else p_act.flatten()
            joint *= math.exp(_hand_log_conditional(policy, arch, parent_obs, x[b, i], p_i, avail[b, i],
                                                    actions[b, i].item()))
        assert logp_learner[b].sum().item() == pytest.approx(math.log(joint), abs=1e-5)
        assert logp_ctrl[b].sum().item() == pytest.approx(math.log(joint), abs=1e-5)


# ---- 6. straight-through gradients ------------------------------------------------------------
@pytest.mark.parametrize("permutation", ["learned", "identity"])
def test_policy_loss_reaches_the_dag_nets_through_straight_through_masks(permutation):
    th.manual_seed(5)
    n, A, O = 4, 3, 5
    policy = BNPolicy(O + n, dag_args(n, A, O, dag_permutation=permutation))
    B = 64
    obs = th.randn(B, n, O)
    x = th.cat([obs, th.eye(n).expand(B, n, n)], -1)
    actions = th.randint(0, A, (B, n))
    onehot = F.one_hot(actions, A).float()
    avail = th.ones(B, n, A, dtype=th.int32)
    G = policy.dag(obs)  # train mode, learned (context) DAG
    log_pi = F.log_softmax(policy.logits(x, G, onehot, obs, avail), -1)
    loss = -log_pi.gather(-1, actions.unsqueeze(-1)).sum()
    loss.backward()
    for name, p in policy.graph.edge_net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"edge_net.{name}"
    if permutation == "learned":
        for name, p in policy.graph.perm_net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"perm_net.{name}"
    else:
        assert policy.graph.perm_net is None
        assert not any("perm_net" in name for name, _ in policy.named_parameters())
        assert (G.detach().tril() == 0).all()  # identity order: only j -> i with j < i
        assert G.detach().sum() > 0


# ---- 7. annealing -----------------------------------------------------------------------------
def _anneal_args(**over):
    a = dict(t_max=100, dag_anneal=True, dag_alpha=0.1, dag_alpha_end=1.0, dag_eta=0.3,
             dag_anneal_a=0.4, dag_anneal_b=0.7, dag_anneal_c=1.0, dag_anneal_levels=10)
    a.update(over)
    return SimpleNamespace(**a)


@pytest.mark.parametrize("t_env,alpha,eta", [
    (0, 0.1, 1.0), (20, 0.1, 1.0), (40, 0.1, 1.0),     # before a: eta 1, alpha at its start value
    (55, 0.1, 0.5),                                      # halfway a..b: eta = 1 - floor(0.5*10)/10
    (69, 0.1, 0.1),                                      # floor(9.67)/10 = 0.9 of the way
    (70, 0.1, 0.0),                                      # b: eta 0, alpha starts to rise
    (85, 0.55, 0.0),                                     # alpha = 0.1 + 0.9 * floor(0.5*10)/10
    (99, 0.1 + 0.9 * 0.9, 0.0),
    (100, 1.0, 0.0), (250, 1.0, 0.0),                    # f >= 1
])
def test_anneal_schedule_hand_cases(t_env, alpha, eta):
    assert anneal(_anneal_args(), t_env) == pytest.approx((alpha, eta))


def test_anneal_off_returns_the_constants():
    for t in (0, 55, 85, 1000):
        assert anneal(_anneal_args(dag_anneal=False), t) == (0.1, 0.3)


# ---- 8. GAE -----------------------------------------------------------------------------------
def test_gae_hand_computed_with_termination_padding_and_truncation():
    gamma, lam = 0.9, 0.5
    # episode 0: steps 0, 1, terminated at step 1, step 2 is padding (garbage reward/value ignored)
    # episode 1: three steps, not terminated (time limit): bootstraps from V(s_3) = 10
    rewards = th.tensor([[1.0, 2.0, 5.0], [1.0, 0.0, 3.0]])
    values = th.tensor([[0.5, 1.0, 7.0, 4.0], [1.0, 2.0, 0.0, 10.0]])
    terminated = th.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    mask = th.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    adv = gae(rewards, values, terminated, mask, gamma, lam)
    # ep 0: t1: delta = 2 - 1 = 1 (no bootstrap); t0: delta = 1 + 0.9*1 - 0.5 = 1.4, adv = 1.4 + 0.45*1
    # ep 1: t2: 3 + 0.9*10 - 0 = 12; t1: 0 + 0.9*0 - 2 = -2, adv = -2 + 0.45*12 = 3.4;
    #       t0: 1 + 0.9*2 - 1 = 1.8, adv = 1.8 + 0.45*3.4 = 3.33
    expected = th.tensor([[1.85, 1.0, 0.0], [3.33, 3.4, 12.0]])
    assert th.allclose(adv, expected, atol=1e-6)


# ---- 9. the learner ---------------------------------------------------------------------------
def _train_once(alg, **extra):
    args, runner, buffer, mac, learner = offline(alg, "coordination_game", dict(SMALL, **extra))
    batch, _ = runner.run(test_mode=False)
    learner.logger = Stats()
    learner.log_stats_t = -10**9  # log on this call
    before = {k: v.detach().clone() for k, v in mac.agent.named_parameters()}
    learner.train(batch, runner.t_env, 0)
    changed = {k: not th.equal(v, before[k]) for k, v in mac.agent.named_parameters()}
    return args, mac, learner, batch, learner.logger.logged, changed


def _group_changed(changed, prefix):
    keys = [k for k in changed if k.startswith(prefix)]
    assert keys
    return [changed[k] for k in keys]


def test_learner_with_a_context_dag_trains_the_dag_nets_and_logs_density():
    args, mac, learner, batch, stats, changed = _train_once("dagbn")
    assert all(_group_changed(changed, "graph.edge_net.")) and any(_group_changed(changed, "graph.perm_net."))
    assert all(_group_changed(changed, "own_base."))
    assert 0.0 <= stats["dag_density"] <= 1.0
    assert 0.0 <= stats["poa"] <= 1.0
    assert (stats["dag_alpha"], stats["dag_eta"]) == (0.0, 0.0)
    for key in ("pg_loss", "critic_loss", "entropy", "approx_kl", "multimodality_kl"):
        assert math.isfinite(stats[key]), key


def test_learner_product_policy_has_zero_multimodality_and_full_dag_does_not():
    _, _, _, _, stats, _ = _train_once("dagbn_none")
    assert stats["multimodality_kl"] == 0.0
    assert all(stats[f"multimodality_kl_agent{i}"] == 0.0 for i in (1, 2, 3))
    assert stats["dag_density"] == 0.0
    _, _, _, _, stats, _ = _train_once("dagbn_full")
    assert stats["multimodality_kl"] > 0
    assert stats["dag_density"] == 1.0 and stats["dag_parents_mean"] == pytest.approx(1.0)  # (0+1+2)/3
    assert stats["multimodality_kl_agent1"] == 0.0 and stats["multimodality_kl_agent3"] > 0  # agent 1: no parents


def test_stored_dag_without_regulariser_leaves_the_dag_nets_untouched():
    _, mac, _, batch, stats, changed = _train_once("dagbn", dag_update_dag="stored", dag_alpha=0.0, epochs=1)
    assert not any(_group_changed(changed, "graph."))
    assert all(_group_changed(changed, "own_base."))
    # the single epoch evaluates the behaviour policy itself: per-agent ratios are exactly 1
    assert abs(stats["approx_kl"]) < 1e-6 and stats["clip_frac"] == 0.0
    # with the regulariser (fresh DAG) the edge net does get a gradient
    _, _, _, _, stats, changed = _train_once("dagbn", dag_update_dag="stored", dag_alpha=0.5, dag_eta=0.0)
    assert any(_group_changed(changed, "graph.edge_net.")) and stats["dag_reg"] > 0


def test_controller_forward_reproduces_the_behaviour_log_probabilities():
    args, runner, buffer, mac, learner = offline("dagbn", "coordination_game", dict(SMALL))
    batch, _ = runner.run(test_mode=False)
    filled = batch["filled"][:, :-1, 0].bool()
    with th.no_grad():
        for t in range(batch.max_seq_length - 1):
            probs = mac.forward(batch, t)
            taken = probs.gather(-1, batch["actions"][:, t]).squeeze(-1).log()
            stored = batch["logp"][:, t, :, 0]
            assert th.allclose(taken[filled[:, t]], stored[filled[:, t]], atol=1e-5)


# ---- 10. learning -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_full_dag_learns_the_coordination_game(seed):
    """dagbn_full on the 2-agent coordination game: 40 PPO iterations (8 000 env steps) lift the
    exact price of anarchy from about 0.5 (untrained) to > 0.97 (measured: >= 0.998 for seeds 1-3)."""
    args, runner, buffer, mac, learner = offline(
        "dagbn_full", "coordination_game",
        dict(env_args=dict(n=2), seed=seed, batch_size_run=8, batch_size=8, buffer_size=8, t_max=10**6))
    start = coordination_metrics(mac, args)["poa"]
    episode = 0
    for _ in range(40):
        episode = train_iteration(args, runner, buffer, learner, episode)
    final = coordination_metrics(mac, args)["poa"]
    assert start < 0.7, f"seed {seed}: untrained price of anarchy {start}"
    assert final > 0.97, f"seed {seed}: price of anarchy {start:.3f} -> {final:.3f}"


# ---- checkpoints ---------------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_dag_nets_critic_return_stats_and_batch_fields(tmp_path):
    from marlkit import checkpoint
    from marlkit.experiment import signature_of

    def flat(state):
        if isinstance(state, dict):
            return [x for k in sorted(state, key=str) for x in flat(state[k])]
        return [state]

    updates = dict(env_args=dict(n=3), batch_size_run=4, batch_size=4, buffer_size=8, seed=3)
    args, runner, buffer, mac, learner = offline("dagbn", "coordination_game", updates)
    for _ in range(2):
        batch = runner.run()[0]
        buffer.insert_episode_batch(batch)
        learner.train(batch, runner.t_env, 0)
    assert learner.returns_stats.count > 1 and mac.agent.graph is not None
    checkpoint.save(str(tmp_path), learner, {"t_env": runner.t_env}, signature_of(args), buffer)
    saved = flat(checkpoint.learner_state(learner))

    args2, runner2, buffer2, mac2, learner2 = offline("dagbn", "coordination_game", dict(updates, seed=4))
    assert not th.equal(mac2.agent.graph.edge_net[0].weight, mac.agent.graph.edge_net[0].weight)
    checkpoint.load(str(tmp_path), learner2, signature_of(args2), buffer2)
    for a, b in zip(saved, flat(checkpoint.learner_state(learner2)), strict=True):
        assert th.equal(a, b) if isinstance(a, th.Tensor) else a == b
    assert th.equal(mac2.agent.graph.perm_net[0].weight, mac.agent.graph.perm_net[0].weight)
    for field in ("parents", "logp"):
        n = buffer.episodes_in_buffer
        assert th.equal(buffer2.data.transition_data[field][:n], buffer.data.transition_data[field][:n])


def test_annealing_phases_out_of_order_are_refused():
    from marlkit.errors import SuiteError

    with pytest.raises(SuiteError, match="dag_anneal_a <= dag_anneal_b"):
        offline("dagbn_anneal", "coordination_game", dict(SMALL, dag_anneal_a=0.8, dag_anneal_b=0.5))
