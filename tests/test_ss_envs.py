"""Rules of paper 002's tasks: the predation reward table on scripted joint actions, navigation,
Cleanup and Harvest, and one clear line for bad env_args."""
import numpy as np
import pytest

from marlkit.config import build_config
from marlkit.errors import SuiteError
from marlkit.registry import get_registry
from plugins.ss.envs.cleanup import Cleanup
from plugins.ss.envs.coop_navigation import CoopNavigation
from plugins.ss.envs.coop_predation import CoopPredation, payoff
from plugins.ss.envs.harvest import Harvest


def check_time_limit_and_frozen_env(env, limit, actions):
    """Env 0 ends exactly at the limit with infos; env 1, inactive, gets zero rewards and never changes."""
    active = np.array([True, False])
    frozen = env.get_state()[1].copy()
    for t in range(1, limit + 1):
        rewards, terminated, infos = env.step(actions, active)
        assert rewards.shape == (2, env.n_agents) and (rewards[1] == 0).all()
        assert (env.get_state()[1] == frozen).all()
        assert terminated[0] == (t == limit) and bool(infos[0].get("episode_limit")) == (t == limit)
    assert "collective_return" in infos[0]


def _predation(n, x, prey, n_envs=1):
    env = CoopPredation(n_envs, n_agents=n, seed=0)
    env.reset()
    env.x = np.array(x, dtype=float).reshape(n_envs, n)
    env.prey = np.array(prey, dtype=float).reshape(n_envs, 1)
    return env


@pytest.mark.parametrize("n", [2, 3, 8])
def test_predation_reward_table(n):
    all_c = payoff(np.ones(n, dtype=bool))
    none = payoff(np.zeros(n, dtype=bool))
    mixed = payoff(np.arange(n) == 0)
    assert (all_c == -1).all() and (none == -2 * n + 1).all()
    assert mixed[0] == -2 * n and (mixed[1:] == 0).all()


def test_predation_scripted_joint_actions_two_agents():
    # prey at 10; agent 0 left of it (approach = right = 1), agent 1 right of it (approach = left = 0)
    cases = {(1, 0): ([-1, -1], "cc"), (1, 1): ([-4, 0], "cd"), (0, 0): ([0, -4], "cd"), (0, 1): ([-3, -3], "dd")}
    for joint, (expected, kind) in cases.items():
        env = _predation(2, [5.0, 20.0], 10.0)
        assert env.coop_action().tolist() == [[1, 0]]
        rewards, terminated, infos = env.step(np.array([joint]), np.array([True]))
        assert rewards.tolist() == [expected] and not terminated[0]
        assert env.x.tolist() == [[5.0 + (1 if joint[0] else -1), 20.0 + (1 if joint[1] else -1)]]
        assert env.get_extras()["cooperated"][0, :, 0].tolist() == [float(joint[0] == 1), float(joint[1] == 0)]


def test_predation_rates_state_neighbours_and_time_limit():
    env = _predation(2, [5.0, 20.0], 10.0)
    counts = np.zeros(3)  # steps with 2, 1, 0 cooperators
    rng = np.random.default_rng(0)
    for t in range(30):
        coop = env.coop_action()[0]
        joint = rng.integers(2, size=2)
        rewards, terminated, infos = env.step(joint[None], np.array([True]))
        assert rewards[0].tolist() == payoff(joint == coop).tolist()
        assert terminated[0] == (t == 29)
        counts[2 - (joint == coop).sum()] += 1
    info = infos[0]
    assert info["episode_limit"] and [info["cc_rate"], info["cd_rate"], info["dd_rate"]] == pytest.approx(counts / 30)
    assert info["collective_return"] == pytest.approx(sum(info[f"return_agent{i}"] for i in range(2)) / 60)
    env = _predation(3, [0.0, 2.9, 3.2], 15.0)
    assert env.get_state()[0].tolist() == pytest.approx([-0.5, (2.9 - 15) / 30, (3.2 - 15) / 30])
    nb = env.get_extras()["neighbours"][0]  # |x_i - x_j| / 30 <= 0.1
    assert nb.tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    env = CoopPredation(2, n_agents=3, seed=1)
    env.reset()
    check_time_limit_and_frozen_env(env, 30, np.zeros((2, 3), dtype=np.int64))


def test_predation_is_seeded():
    a, b = CoopPredation(4, seed=3), CoopPredation(4, seed=3)
    a.reset(), b.reset()
    assert np.array_equal(a.get_state(), b.get_state())


def test_navigation_proximity_collisions_and_adjacency():
    env = CoopNavigation(1, n_agents=3, size=5, seed=0)
    env.reset()
    env.pos = np.array([[[0, 0], [0, 2], [4, 4]]])
    env.landmarks = np.array([[[0, 1], [0, 1], [4, 4]]])
    # agent 0 right -> (0,1); agent 1 left -> (0,1): same cell; agent 2 stays on its landmark
    rewards, _, _ = env.step(np.array([[4, 3, 0]]), np.array([True]))
    assert rewards[0].tolist() == pytest.approx([0.0 - 1.0, 0.0 - 1.0, 0.0])
    env.pos = np.array([[[0, 0], [0, 1], [3, 3]]])
    rewards, _, _ = env.step(np.array([[1, 0, 0]]), np.array([True]))  # up off the grid: stays
    assert rewards[0].tolist() == pytest.approx([-1 / 8, 0.0, -2 / 8])
    assert env.get_extras()["neighbours"][0].tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    env = CoopNavigation(2, seed=1)
    env.reset()
    check_time_limit_and_frozen_env(env, 100, np.zeros((2, 3), dtype=np.int64))


def test_cleanup_waste_blocks_apples_and_cleaning_removes_waste():
    env = Cleanup(1, n_agents=2, seed=0)
    env.reset()
    assert env.apple_prob(np.array([0.0, 0.2, 0.4, 0.5])).tolist() == pytest.approx([0.05, 0.025, 0.0, 0.0])
    env.waste[:] = env.river  # density 1: no apples, no new waste
    for _ in range(20):
        env.step(np.zeros((1, 2), dtype=np.int64), np.array([True]))
    assert not env.apples.any() and env.waste_density()[0] == 1.0
    env.pos = np.array([[[5, 1], [5, 9]]])
    rewards, _, _ = env.step(np.array([[5, 5]]), np.array([True]))  # agent 0 cleans rows 3-7, cols 0-3
    assert not env.waste[0, 3:8, :3].any() and env.waste[0, :3, :3].all()
    assert env.get_extras()["cooperated"][0, :, 0].tolist() == [1.0, 0.0]  # agent 1 cleaned nothing
    assert rewards.tolist() == [[0.0, 0.0]]  # cleaning is unrewarded
    env.waste[:] = False
    env.apples[0, 2, 15] = True
    env.pos = np.array([[[2, 14], [8, 8]]])
    rewards, _, _ = env.step(np.array([[4, 0]]), np.array([True]))  # step right onto the apple
    assert rewards.tolist() == [[1.0, 0.0]] and not env.apples[0, 2, 15]


def test_cleanup_time_limit_and_frozen_env():
    env = Cleanup(2, n_agents=2, seed=2)
    env.reset()
    check_time_limit_and_frozen_env(env, 100, np.zeros((2, 2), dtype=np.int64))


def test_harvest_regrowth_depends_on_nearby_apples():
    env = Harvest(1, n_agents=1, regrowth_probs=[0.0, 1.0, 1.0, 1.0], seed=0)
    env.reset()
    first = (env.spot_cols < 6)  # the first patch
    env.apples[:] = False
    env.apples[0, env.spot_rows[first][0], env.spot_cols[first][0]] = True  # one apple left in patch 1
    env.pos = np.array([[[0, 37]]])
    env.step(np.zeros((1, 1), dtype=np.int64), np.array([True]))
    grown = env.apples[0, env.spot_rows, env.spot_cols]
    assert grown[first].sum() > 1 and not grown[~first].any()  # dead patches stay dead
    env = Harvest(1, n_agents=1, seed=0)
    env.reset()
    assert env.apples[0].sum() == env.patch.sum()
    env.pos = np.array([[[3, 0]]])  # centre row, column 0: the patch centred at column 3 reaches column 1
    rewards, _, _ = env.step(np.array([[4]]), np.array([True]))  # to (3, 1): an apple
    assert rewards.tolist() == [[1.0]] and env.get_extras()["cooperated"][0, 0, 0] == 0.0
    rewards, _, _ = env.step(np.array([[0]]), np.array([True]))  # stays next to (3, 2): abstains
    assert rewards.tolist() == [[0.0]] and env.get_extras()["cooperated"][0, 0, 0] == 1.0
    env = Harvest(2, n_agents=2, seed=2)
    env.reset()
    check_time_limit_and_frozen_env(env, 100, np.zeros((2, 2), dtype=np.int64))


def test_agents_never_share_cells_in_the_dilemmas():
    env = Harvest(3, n_agents=5, seed=4)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(50):
        env.step(rng.integers(5, size=(3, 5)), np.ones(3, dtype=bool))
        for e in range(3):
            assert len({tuple(p) for p in env.pos[e]}) == 5


@pytest.mark.parametrize("env,env_args,match", [
    ("coop_predation", {"n_agents": 1}, "n_agents"),
    ("coop_predation", {"neighbour_distance": 2.0}, "neighbour_distance"),
    ("coop_navigation", {"sise": 5}, "sise"),
    ("cleanup", {"initial_waste": -0.1}, "initial_waste"),
])
def test_bad_env_args_are_one_clear_line(env, env_args, match):
    with pytest.raises(SuiteError, match=match) as err:
        build_config("ss", env, {"env_args": env_args}, get_registry())
    assert "\n" not in str(err.value)


def test_impossible_layouts_are_refused():
    make = get_registry().get("env", "coop_navigation").make
    with pytest.raises(SuiteError, match="do not fit"):
        make({"n_agents": 30, "size": 5}, 1, 0)
    with pytest.raises(SuiteError, match="river_width"):
        get_registry().get("env", "cleanup").make({"river_width": 10, "orchard_width": 8}, 1, 0)


@pytest.mark.parametrize("cls", [CoopPredation, CoopNavigation, Cleanup, Harvest])
def test_env_state_round_trip_continues_the_same_stream(cls):
    a, b = cls(2, seed=5), cls(2, seed=9)
    a.reset()
    rng = np.random.default_rng(0)
    acts = [rng.integers(a.n_actions, size=(2, a.n_agents)) for _ in range(6)]
    for x in acts[:3]:
        a.step(x, np.ones(2, dtype=bool))
    b.reset()
    b.load_state_dict(a.state_dict())
    for x in acts[3:]:
        ra, _, _ = a.step(x, np.ones(2, dtype=bool))
        rb, _, _ = b.step(x, np.ones(2, dtype=bool))
        assert np.array_equal(ra, rb) and np.array_equal(a.get_state(), b.get_state())
