"""Weighted QMIX (plugins/wqmix): OW/CW weights against hand cases, the weight histogram, pymarl2's
episode-counted target updates, save/load of every network, and the learning test on the
non-monotonic matrix game (OW/CW-QMIX find the optimum 8 in every seed; plain pymarl2 QMIX does not)."""
import os

import pytest
import torch as th

from helpers import metrics
from marlkit import checkpoint
from marlkit.experiment import offline, run, signature_of
from marlkit.registry import get_registry

get_registry()  # loads plugins/ (puts the repository root on sys.path)
from plugins.wqmix.weights import cw_weights, ow_weights, weight_stats  # noqa: E402

SMALL = dict(batch_size=4, buffer_size=16, runner="parallel", batch_size_run=4, learner_log_interval=1)


def _col(values):
    return th.tensor(values, dtype=th.float32).view(1, -1, 1)


def test_ow_weights_hand_cases():
    q_tot = _col([1.0, 3.0, 2.0, -5.0])
    targets = _col([2.0, 1.0, 2.0, -4.0])
    # 1 where Q_tot < target (underestimate), w otherwise (also at equality)
    assert ow_weights(q_tot, targets, 0.1).flatten().tolist() == pytest.approx([1.0, 0.1, 0.1, 1.0])


def test_cw_weights_hand_cases():
    # 3 transitions, 2 agents: taken vs greedy joint actions
    actions = th.tensor([[0, 0], [1, 0], [2, 2]]).view(1, 3, 2, 1)
    greedy = th.tensor([[0, 0], [0, 0], [1, 1]]).view(1, 3, 2, 1)
    targets = _col([0.0, 5.0, 1.0])
    q_star_greedy = _col([10.0, 4.0, 3.0])
    # t0: greedy action -> 1 (even though target < Q*); t1: not greedy but target > Q*(s, greedy) -> 1;
    # t2: neither -> w
    assert cw_weights(actions, greedy, targets, q_star_greedy, 0.5).flatten().tolist() == [1.0, 1.0, 0.5]
    # one agent off the greedy action is enough to make the joint action non-greedy
    actions2 = th.tensor([[0, 1]]).view(1, 1, 2, 1)
    assert cw_weights(actions2, greedy[:, :1], _col([0.0]), _col([1.0]), 0.3).item() == pytest.approx(0.3)


def test_weight_stats_histogram():
    w = _col([0.1, 0.1, 0.55, 1.0, 0.7])
    mask = _col([1, 1, 1, 1, 0])  # the last one is padding
    s = weight_stats(w, mask, floor=0.1, bins=3)  # bins [0.1,0.4), [0.4,0.7), [0.7,1.0]
    assert s["weight_mean"] == pytest.approx(0.4375)
    assert s["weight_at_min"] == pytest.approx(0.5)
    assert [s[f"weight_hist_{i}"] for i in range(3)] == pytest.approx([0.5, 0.25, 0.25])
    assert s["weight_q50"] == pytest.approx(th.quantile(th.tensor([0.1, 0.1, 0.55, 1.0]), 0.5).item())


def _trained(alg, n=3, **updates):
    args, runner, buffer, mac, learner = offline(alg, "matrix_game", dict(SMALL, **updates))
    for i in range(n):
        buffer.insert_episode_batch(runner.run()[0])
        if buffer.can_sample(args.batch_size):
            sample = buffer.sample(args.batch_size)
            learner.train(sample[:, :sample.max_t_filled()], runner.t_env, 4 * i)
    return args, runner, buffer, learner


@pytest.mark.parametrize("alg", ["ow_qmix", "cw_qmix", "remix"])
def test_logs_losses_and_the_shared_weight_histogram(alg):
    args, _, _, learner = _trained(alg)
    stats = learner.logger.stats
    expected = {"loss", "td_loss", "central_loss", "q_taken_mean", "target_mean", "weight_mean", "weight_std",
                "weight_q10", "weight_q50", "weight_q90", "weight_at_min",
                *(f"weight_hist_{i}" for i in range(args.weight_hist_bins))}
    assert expected <= set(stats), expected - set(stats)
    assert sum(stats[f"weight_hist_{i}"][-1][1] for i in range(args.weight_hist_bins)) == pytest.approx(1.0)


def test_plain_qmix_has_no_central_networks():
    _, _, _, learner = _trained("remix_qmix")
    assert not hasattr(learner, "central_mixer") and "weight_mean" not in learner.logger.stats
    assert "loss" in learner.logger.stats


def _same(a, b):
    return all(th.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_target_update_every_interval_in_episodes():
    """pymarl2: copy when (episode_num - last update's episode_num) / target_update_interval >= 1."""
    args, runner, buffer, mac, learner = offline("ow_qmix", "matrix_game", dict(SMALL, target_update_interval=16))
    buffer.insert_episode_batch(runner.run()[0])
    batch = buffer.sample(4)
    updated = []
    for episode in (0, 8, 15, 16, 24, 31, 32, 40, 48):
        learner.train(batch, runner.t_env, episode)
        updated.append(_same(learner.mixer, learner.target_mixer) and _same(learner.central_mixer, learner.target_central_mixer)
                       and _same(learner.mac.agent, learner.target_mac.agent))
    assert updated == [False, False, False, True, False, False, True, False, True]
    assert learner.last_target_update_episode == 48


@pytest.mark.parametrize("alg", ["ow_qmix", "remix_qmix"])
def test_save_load_round_trip_of_every_network(alg, tmp_path):
    args, runner, buffer, learner = _trained(alg)
    # make every target differ from its online network, so a load that copies online -> target shows
    for online, target in learner._pairs():
        module = target.agent if hasattr(target, "agent") else target
        module.load_state_dict({k: v + 0.5 for k, v in module.state_dict().items()})
    learner.save_models(str(tmp_path))
    files = set(os.listdir(tmp_path))
    assert {"agent.th", "mixer.th", "target_agent.th", "target_mixer.th", "opt.th"} <= files
    if alg == "ow_qmix":
        assert {"central_agent.th", "central_mixer.th", "target_central_agent.th", "target_central_mixer.th"} <= files

    _, _, _, _, fresh = offline(alg, "matrix_game", dict(SMALL))
    fresh.load_models(str(tmp_path))
    for name, obj in learner._files().items():
        if name == "opt.th":
            continue
        assert _same(obj, fresh._files()[name]), name
    saved_opt, loaded_opt = learner.optimiser.state_dict(), fresh.optimiser.state_dict()
    for key in saved_opt["state"]:
        assert th.equal(saved_opt["state"][key]["exp_avg"], loaded_opt["state"][key]["exp_avg"])

    # the suite checkpoint (suite_state.pt) holds them too, with the episode counter of target updates
    learner.last_target_update_episode = 40
    checkpoint.save(str(tmp_path / "ck"), learner, {"t_env": 1}, signature_of(args))
    _, _, _, _, again = offline(alg, "matrix_game", dict(SMALL))
    checkpoint.load(str(tmp_path / "ck"), again, signature_of(args))
    assert again.last_target_update_episode == 40
    for online, target in again._pairs():
        assert not _same(online.agent if hasattr(online, "agent") else online,
                         target.agent if hasattr(target, "agent") else target)


# ---- learning on the non-monotonic matrix game [[8,-12,-12],[-12,0,0],[-12,0,0]] -------------
# Small settings of this test (the configs' presets are for SMAC / predator-prey): 8 parallel envs,
# batch 32, buffer 128, epsilon annealed over 1000 steps, lr 5e-3, target update every 40 episodes,
# 3000 steps (375 updates), w = 0.1 (the WQMIX paper's matrix-game weight).
LEARN = dict(runner="parallel", batch_size_run=8, batch_size=32, buffer_size=128, t_max=3000,
             epsilon_anneal_time=1000, target_update_interval=40, lr=0.005, test_interval=1000, test_nepisode=8,
             log_interval=1000, runner_log_interval=1000, learner_log_interval=1000)
SEEDS = [1, 2, 3, 4, 5]


def final_greedy_return(alg, seed, tmp_path, **extra):
    run_dir = run(alg, "matrix_game", dict(LEARN, seed=seed, local_results_path=str(tmp_path), **extra))
    m = metrics(run_dir)["test_return_mean"]
    assert m["steps"][-1] >= LEARN["t_max"]
    return m["values"][-1]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alg", ["ow_qmix", "cw_qmix"])
def test_weighted_qmix_finds_the_optimum_of_the_non_monotonic_game(alg, seed, tmp_path):
    final = final_greedy_return(alg, seed, tmp_path, w=0.1)
    assert final == pytest.approx(8.0), f"{alg} seed {seed}: greedy return {final}, optimum 8"


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_qmix_misses_the_optimum_of_the_non_monotonic_game(seed, tmp_path):
    """pymarl2 QMIX (remix_qmix) under the same settings settles on a worse joint action."""
    final = final_greedy_return("remix_qmix", seed, tmp_path)
    assert final < 8.0, f"remix_qmix seed {seed} found the optimum"
