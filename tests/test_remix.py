"""ReMIX (plugins/remix): the Theorem 1 weight against a hand-computed batch, the closed-form mixer
gradient (Lemma 1) against autograd, each ablation switch, epsilon for overestimates, the mapping
into [w_min, 1], numerical safety, the on-policy ratio estimator, save/load, and the learning test
on the non-monotonic matrix game."""
import math
import os
from types import SimpleNamespace

import pytest
import torch as th

from marlkit import host
from marlkit.experiment import offline
from marlkit.registry import get_registry

get_registry()  # loads plugins/ (puts the repository root on sys.path)
from plugins.remix.learner import concat_episodes  # noqa: E402
from plugins.remix.weights import (boltzmann_taken_prob, map_weights, mixer_gradient_autograd,  # noqa: E402
                                   qmix_gradient_closed_form, remix_raw_weights)
from plugins.wqmix.learner import WeightInputs  # noqa: E402
from plugins.wqmix.weights import ow_weights  # noqa: E402
from test_wqmix import SEEDS, final_greedy_return  # noqa: E402

E = math.e
SMALL = dict(batch_size=4, buffer_size=16, runner="parallel", batch_size_run=4, learner_log_interval=1)


def _col(values):
    return th.tensor(values, dtype=th.float32).view(1, -1, 1)


def _hand_batch():
    """3 transitions, 2 agents (values chosen so every term is easy to compute by hand)."""
    q_tot = _col([1.0, 5.0, 0.0])
    targets = _col([3.0, 3.0, 1.0])
    q_star = _col([2.0, 9.0, 0.0])
    fprime = th.tensor([[[0.5, 2.0], [1.0, 1.0], [1.0, 1.0]]])
    pi = th.tensor([[[0.2, 0.6], [0.5, 0.5], [0.5, 0.5]]])
    ratio = th.tensor([2.0, 1.0, 1.0]).view(1, 3, 1)
    return q_tot, targets, q_star, fprime, pi, ratio


KW = dict(epsilon=0.01, exp_clip=10.0, fprime_min=1e-3, grad_floor=0.05)


def test_raw_weight_against_a_hand_computed_batch():
    raw, terms = remix_raw_weights(*_hand_batch(), **KW)
    # t0 underestimated: (3 - 1) * exp(2 - 1) * (0.8/0.5 + 0.4/2 - 1) * 2 = 2 * e * 0.8 * 2
    # t1 overestimated (5 > 3): epsilon
    # t2 underestimated: (1 - 0) * exp(0) * max(0.5/1 + 0.5/1 - 1, floor 0.05) * 1 = 0.05
    assert raw.flatten().tolist() == pytest.approx([3.2 * E, 0.01, 0.05])
    assert terms["bellman_error"].flatten().tolist() == pytest.approx([2.0, 0.0, 1.0])
    assert terms["underestimation"].flatten().tolist() == pytest.approx([E, E ** 4, 1.0])
    assert terms["mixer_gradient"].flatten().tolist() == pytest.approx([0.8, 0.05, 0.05])
    # mapped (minmax) into [w_min, 1]: largest -> 1, smallest (the overestimate) -> w_min
    w = map_weights(raw, th.ones_like(raw), 0.1, "minmax").flatten()
    assert w.tolist() == pytest.approx([1.0, 0.1, 0.1 + 0.9 * 0.04 / (3.2 * E - 0.01)], rel=1e-5)


@pytest.mark.parametrize("switch,term", [("use_bellman_error", "bellman_error"), ("use_underestimation", "underestimation"),
                                         ("use_mixer_gradient", "mixer_gradient"), ("use_onpolicy", "onpolicy")])
def test_each_ablation_switch_removes_exactly_its_term(switch, term):
    th.manual_seed(0)
    B, T, n = 4, 5, 3
    q_tot, targets, q_star = th.randn(B, T, 1), th.randn(B, T, 1) + 0.5, th.randn(B, T, 1)
    fprime, pi = th.rand(B, T, n) * 0.5 + 0.05, th.rand(B, T, n)
    ratio = th.rand(B, 1, 1) + 1.0
    full, terms = remix_raw_weights(q_tot, targets, q_star, fprime, pi, ratio, **KW)
    ablated, _ = remix_raw_weights(q_tot, targets, q_star, fprime, pi, ratio, **KW, **{switch: False})
    under = q_tot <= targets
    product = terms["bellman_error"] * terms["underestimation"] * terms["mixer_gradient"] * terms["onpolicy"]
    assert th.equal(full, th.where(under, product.clamp(min=KW["epsilon"]), th.full_like(full, KW["epsilon"])))
    # recompute the ablated product directly: the switched term is 1, the others unchanged
    others = [terms[k] for k in ("bellman_error", "underestimation", "mixer_gradient", "onpolicy") if k != term]
    direct = others[0] * others[1] * others[2]
    direct = th.where(under, direct.expand_as(full).clamp(min=KW["epsilon"]), th.full_like(full, KW["epsilon"]))
    assert th.allclose(ablated, direct)
    assert th.equal(ablated[~under], full[~under])  # overestimates keep epsilon
    assert not th.allclose(ablated, full)  # the term did matter here


def test_overestimated_transitions_get_epsilon():
    th.manual_seed(1)
    q_tot = th.randn(3, 4, 1) * 10
    targets = q_tot - th.rand(3, 4, 1) - 1e-3  # every transition overestimated
    raw, _ = remix_raw_weights(q_tot, targets, th.randn(3, 4, 1), th.rand(3, 4, 2), th.rand(3, 4, 2),
                               th.ones(3, 1, 1), epsilon=0.007)
    assert th.all(raw == 0.007)
    # with every raw weight equal, all mappings give uniform weight 1 (E_mu[w] = 1 up to the range)
    for mode in ("minmax", "rank", "clip"):
        assert th.all(map_weights(raw, th.ones_like(raw), 0.1, mode) == 1.0)


def _qmixer(n, state_dim, layers, seed):
    th.manual_seed(seed)
    args = SimpleNamespace(n_agents=n, state_shape=state_dim, mixing_embed_dim=8, hypernet_layers=layers,
                           hypernet_embed=16)
    return host.QMixer(args)


@pytest.mark.parametrize("n,state_dim,layers,batch,T", [(2, 1, 2, 1, 1), (3, 5, 2, 4, 7), (5, 12, 1, 16, 3),
                                                        (8, 30, 2, 2, 11)])
def test_closed_form_mixer_gradient_equals_autograd(n, state_dim, layers, batch, T):
    for seed in range(3):
        mixer = _qmixer(n, state_dim, layers, seed)
        states = th.randn(batch, T, state_dim) * 2
        agent_qs = th.randn(batch, T, n) * 3  # both ELU branches occur
        closed = qmix_gradient_closed_form(mixer, agent_qs, states)
        auto = mixer_gradient_autograd(mixer, agent_qs, states)
        assert closed.shape == (batch, T, n)
        assert th.allclose(closed, auto, rtol=1e-5, atol=1e-6)
        assert th.all(closed >= 0)  # monotonic mixer (eq. 1)


def test_closed_form_on_the_learners_own_mixer():
    _, _, _, _, learner = offline("remix", "matrix_game", dict(SMALL))
    states, qs = th.randn(6, 2, 1), th.randn(6, 2, 2) * 5
    assert th.allclose(qmix_gradient_closed_form(learner.mixer, qs, states),
                       mixer_gradient_autograd(learner.mixer, qs, states), rtol=1e-5, atol=1e-6)


def test_boltzmann_policy_masks_unavailable_actions():
    mac_out = th.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 50.0]]]).view(1, 1, 2, 3)
    avail = th.tensor([[[1, 1, 1], [1, 1, 0]]]).view(1, 1, 2, 3)
    actions = th.tensor([[2], [0]]).view(1, 1, 2, 1)
    pi = boltzmann_taken_prob(mac_out, actions, avail, tau=1.0).flatten()
    assert pi[0].item() == pytest.approx(E ** 3 / (E + E ** 2 + E ** 3))
    assert pi[1].item() == pytest.approx(0.5)  # the masked 50 does not count
    pi_hot = boltzmann_taken_prob(mac_out, actions, avail, tau=100.0).flatten()
    assert pi_hot[0].item() == pytest.approx(1 / 3, abs=0.01)  # high temperature -> near uniform


@pytest.mark.parametrize("mode", ["minmax", "rank", "clip"])
def test_mapped_weights_stay_inside_the_range(mode):
    th.manual_seed(2)
    raw = th.cat([th.rand(50) * 1e6, th.zeros(10), th.full((10,), 1e-3), th.rand(30)]).view(2, 50, 1)
    mask = (th.rand(2, 50, 1) > 0.2).float()
    for w_min in (0.0, 0.1, 0.5, 1.0):
        w = map_weights(raw, mask, w_min, mode)
        assert th.isfinite(w).all() and (w >= w_min).all() and (w <= 1.0).all()
        if mode != "clip" and w_min < 1.0:
            valid = w[mask > 0]
            assert valid.min().item() == pytest.approx(w_min) and valid.max().item() == pytest.approx(1.0)


EXTREMES = [1e30, -1e30, float("inf"), float("-inf"), float("nan"), 0.0, 3.4e38]


def test_no_nan_or_inf_for_extreme_inputs():
    vals = th.tensor(EXTREMES)
    g = th.Generator().manual_seed(3)
    pick = lambda *shape: vals[th.randint(len(vals), shape, generator=g)]  # noqa: E731
    for _ in range(20):
        q_tot, targets, q_star = pick(4, 3, 1), pick(4, 3, 1), pick(4, 3, 1)
        fprime = th.cat([pick(4, 3, 1).abs(), th.zeros(4, 3, 1)], -1)  # f' = 0 and f' = inf/nan
        pi = boltzmann_taken_prob(pick(4, 3, 2, 3), th.zeros(4, 3, 2, 1, dtype=th.long), th.ones(4, 3, 2, 3))
        raw, _ = remix_raw_weights(q_tot, targets, q_star, fprime, pi, th.full((4, 1, 1), 1e30))
        assert th.isfinite(raw).all() and (raw >= 0).all()
        for mode in ("minmax", "rank", "clip"):
            w = map_weights(raw, th.ones_like(raw), 0.1, mode)
            assert th.isfinite(w).all() and (w >= 0.1).all() and (w <= 1.0).all()


def test_learner_weights_safe_for_extreme_utilities_and_targets():
    for fprime_mode in ("closed_form", "autograd"):
        _, _, _, _, learner = offline("remix", "matrix_game", dict(SMALL, remix_fprime=fprime_mode))
        B, T, n, A = 3, 2, 2, 3
        vals = th.tensor(EXTREMES)
        g = th.Generator().manual_seed(4)
        pick = lambda *shape: vals[th.randint(len(vals), shape, generator=g)]  # noqa: E731
        inp = WeightInputs(q_tot=pick(B, T, 1), targets=pick(B, T, 1), q_star=pick(B, T, 1), q_star_greedy=pick(B, T, 1),
                           agent_qs=pick(B, T, n), mac_out=pick(B, T, n, A), actions=th.randint(A, (B, T, n, 1)),
                           greedy=th.zeros(B, T, n, 1, dtype=th.long), avail=th.ones(B, T, n, A),
                           states=th.ones(B, T, 1), mask=th.ones(B, T, 1))
        w = learner.compute_weights(inp)
        assert th.isfinite(w).all() and (w >= learner.args.w_min).all() and (w <= 1).all(), fprime_mode


def test_all_terms_off_is_ow_qmix_with_w_min():
    """With every term switched off the raw weight is 1 (under) or epsilon (over): minmax gives OW(w = w_min)."""
    th.manual_seed(5)
    q_tot, targets = th.randn(4, 6, 1), th.randn(4, 6, 1)
    raw, _ = remix_raw_weights(q_tot, targets, th.randn(4, 6, 1), th.rand(4, 6, 2), th.rand(4, 6, 2), th.ones(4, 1, 1),
                               use_bellman_error=False, use_underestimation=False, use_mixer_gradient=False,
                               use_onpolicy=False)
    w = map_weights(raw, th.ones_like(raw), 0.1, "minmax")
    ow = th.where(q_tot == targets, th.ones_like(q_tot), ow_weights(q_tot, targets, 0.1))  # ties: both count as "under"
    assert th.allclose(w, ow)


# ---- on-policy ratio estimator -----------------------------------------------------------------
def test_onpolicy_ratio_without_the_hook_is_one():
    args, runner, buffer, mac, learner = offline("remix", "matrix_game", dict(SMALL))
    buffer.insert_episode_batch(runner.run()[0])  # the loop's hook is not called here
    batch = buffer.sample(4)
    assert learner.prepare_batch(batch) is batch
    assert th.all(learner.onpolicy_ratio(4) == 1.0)


def test_recent_episodes_are_mixed_in_with_the_estimated_ratio():
    args, runner, buffer, mac, learner = offline(
        "remix", "matrix_game", dict(SMALL, batch_size=8, buffer_size=64, remix_recent_episodes=8, remix_recent_frac=0.25,
                                     remix_ratio_clip=3.0))
    for _ in range(6):  # 24 episodes seen, the recent buffer holds the last 8
        ep = runner.run()[0]
        buffer.insert_episode_batch(ep)
        learner.observe_episodes(ep)
    assert learner.recent.episodes_in_buffer == 8 and learner.episodes_seen == 24
    assert learner.recent_ratio() == pytest.approx(3.0)  # N/M = 24/8 = 3, inside the clip
    sample = buffer.sample(8)
    mixed = learner.prepare_batch(sample)
    assert mixed.batch_size == 8 and learner._recent_rows.tolist() == [False] * 6 + [True] * 2
    assert th.equal(mixed["actions"][:6], sample["actions"][:6])
    ratio = learner.onpolicy_ratio(8).flatten().tolist()
    assert ratio == [1.0] * 6 + [3.0] * 2
    learner.args.remix_ratio_clip = 2.0
    assert learner.recent_ratio() == pytest.approx(2.0)
    learner.train(mixed, runner.t_env, 0)  # trains on it (mixing again is harmless)
    # switched off: no recent buffer, no mixing
    _, runner2, buffer2, _, off = offline("remix", "matrix_game", dict(SMALL, remix_use_onpolicy=False))
    ep = runner2.run()[0]
    buffer2.insert_episode_batch(ep)
    off.observe_episodes(ep)
    assert off.recent is None and off.prepare_batch(buffer2.sample(4)).batch_size == 4


def test_concat_pads_shorter_episodes():
    args, runner, buffer, mac, learner = offline("remix", "matrix_game", dict(SMALL))
    a = runner.run()[0]
    b = runner.run()[0][:, :1]  # a shorter batch
    c = concat_episodes(a, b, learner.scheme, learner.groups)
    assert c.batch_size == 8 and c.max_seq_length == a.max_seq_length
    assert th.equal(c["obs"][4:, :1], b["obs"]) and th.all(c["filled"][4:, 1:] == 0)


def test_save_load_round_trip_with_the_recent_buffer(tmp_path):
    args, runner, buffer, mac, learner = offline("remix", "matrix_game", dict(SMALL, remix_recent_episodes=8))
    for i in range(4):
        ep = runner.run()[0]
        buffer.insert_episode_batch(ep)
        learner.observe_episodes(ep)
        sample = buffer.sample(4)
        learner.train(sample[:, :sample.max_t_filled()], runner.t_env, 4 * i)
    learner.save_models(str(tmp_path))
    assert {"central_agent.th", "central_mixer.th", "target_central_agent.th", "target_central_mixer.th",
            "remix_recent.th", "opt.th"} <= set(os.listdir(tmp_path))
    _, _, _, _, fresh = offline("remix", "matrix_game", dict(SMALL, remix_recent_episodes=8))
    fresh.load_models(str(tmp_path))
    for name, obj in learner._files().items():
        if name != "opt.th":
            other = fresh._files()[name]
            assert all(th.equal(x, y) for x, y in zip(obj.state_dict().values(), other.state_dict().values())), name
    assert fresh.episodes_seen == 16 and fresh.recent.episodes_in_buffer == 8
    for k, v in learner.recent.data.transition_data.items():
        assert th.equal(v, fresh.recent.data.transition_data[k]), k


# ---- learning on the non-monotonic matrix game (settings in test_wqmix.LEARN) --------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_remix_finds_the_optimum_of_the_non_monotonic_game(seed, tmp_path):
    final = final_greedy_return("remix", seed, tmp_path, remix_recent_episodes=32)
    assert final == pytest.approx(8.0), f"remix seed {seed}: greedy return {final}, optimum 8"


def test_resume_through_the_cli_keeps_central_networks_and_recent_buffer(tmp_path):
    from helpers import metrics, run_tiny

    first = run_tiny("remix", "matrix_game", tmp_path, save_model=True, save_model_interval=50, t_max=120)
    models = os.path.join(tmp_path, "models", "remix", "matrix_game", os.path.basename(first))
    last = max(int(d) for d in os.listdir(models))
    saved = os.listdir(os.path.join(models, str(last)))
    assert {"central_mixer.th", "target_central_mixer.th", "remix_recent.th", "suite_state.pt"} <= set(saved)
    state = th.load(os.path.join(models, str(last), "suite_state.pt"), weights_only=True)["learner"]
    assert {"central_mac", "central_mixer", "target_central_mac", "target_central_mixer", "optimiser",
            "last_target_update_episode", "episodes_seen"} <= set(state)
    resumed = run_tiny("remix", "matrix_game", tmp_path, checkpoint_path=models, t_max=240)
    steps = metrics(resumed)["episode"]["steps"]  # the same run continues: steps go on, none repeated
    assert resumed == first and steps == sorted(set(steps)) and max(steps) > 128
