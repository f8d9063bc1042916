"""The matrix game env, and a learning test with a real threshold: VDN and QMIX find the optimal
joint action of a monotonic (additive) 3x3 game in every seed."""
import numpy as np
import pytest

from helpers import metrics
from marlkit.envs.matrix_game import NON_MONOTONIC, MatrixGame
from marlkit.errors import SuiteError
from marlkit.experiment import run

# payoff[i][j] = u[i] + v[j] with u = (0, 4, 1), v = (1, 0, 5): optimum 9 at (1, 2), next best 6.
ADDITIVE = [[1, 0, 5], [5, 4, 9], [2, 1, 6]]


def test_payoffs_and_episode_shape():
    env = MatrixGame(4, NON_MONOTONIC)
    env.reset()
    info = env.get_env_info()
    assert (info["n_agents"], info["n_actions"], info["episode_limit"]) == (2, 3, 1)
    assert env.get_obs().shape == (4, 2, 1) and env.get_state().shape == (4, 1)
    assert env.get_avail_actions().shape == (4, 2, 3) and env.get_avail_actions().all()
    rewards, terminated, infos = env.step(np.array([[0, 0], [0, 1], [1, 1], [2, 2]]), np.ones(4, bool))
    assert rewards.tolist() == [8, -12, 0, 0] and terminated.all()
    assert all(i["episode_limit"] is False for i in infos)


def test_three_agent_payoff():
    payoff = np.arange(8).reshape(2, 2, 2).tolist()
    env = MatrixGame(2, payoff)
    assert env.get_env_info()["n_agents"] == 3
    rewards, _, _ = env.step(np.array([[1, 0, 1], [0, 1, 1]]), np.ones(2, bool))
    assert rewards.tolist() == [5, 3]


@pytest.mark.parametrize("payoff", [[[1, 2], [3]], [[1, 2, 3], [4, 5, 6]], []])
def test_bad_payoffs(payoff):
    with pytest.raises(SuiteError):
        MatrixGame(1, payoff)


LEARN = dict(runner="parallel", batch_size_run=8, batch_size=32, buffer_size=256, t_max=2400,
             epsilon_anneal_time=1200, target_update_interval_or_tau=20, test_interval=400, test_nepisode=8,
             log_interval=400, runner_log_interval=400, learner_log_interval=400, lr=0.005,
             env_args={"payoff": ADDITIVE})


@pytest.mark.parametrize("alg", ["vdn", "qmix"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_value_factorisation_finds_the_optimum_of_a_monotonic_game(alg, seed, tmp_path):
    run_dir = run(alg, "matrix_game", dict(LEARN, seed=seed, local_results_path=str(tmp_path)))
    final = metrics(run_dir)["test_return_mean"]["values"][-1]
    assert final == pytest.approx(9.0), f"{alg} seed {seed}: greedy return {final}, optimum 9"
