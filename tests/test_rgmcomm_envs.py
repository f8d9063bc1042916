"""RGMComm tasks (plugins/rgmcomm/envs): the matrix example's exact returns, maze rules on
scripted episodes, the batched MPE physics against the host's MPE core, tag and spread rewards and
observations, observe_all, and one-line refusals of bad env_args."""
import numpy as np
import pytest

from marlkit.config import build_config
from marlkit.errors import SuiteError
from marlkit.registry import get_registry
from plugins.rgmcomm.envs import matrix, maze, mpe

ALL = np.ones(1, bool)


# ---- rgm_matrix ------------------------------------------------------------------------------
def test_matrix_table_matches_the_papers_stated_numbers():
    q = matrix.q_vectors()
    assert q[0].tolist() == [53.2, 42.9, 31.8, 22.9]  # Q(o21) as printed in Appendix C.4
    u = q / np.linalg.norm(q, axis=1, keepdims=True)
    dist = 1 - u @ u.T
    assert round(dist[0, 2], 2) == 0.03 and round(dist[1, 3], 2) == 0.02  # Fig. 1 (right)
    # agent 1's averages under partial observation (Appendix C.4): 29.125, 31.05 and 35.6
    assert np.allclose(matrix.Q_TABLE[0].mean(1), [29.125, 31.05]) and np.isclose(matrix.Q_TABLE[1].mean(1).max(), 35.6)


def test_matrix_exact_returns_and_regrets():
    """Exact returns from the table: full 39.15, partial 33.325 (regret 5.825), the paper's
    clustering {o21, o23} / {o22, o24} 38.05 (regret 1.1), which is the best 2-label code.
    The paper prints 39.1375 / 5.8125 / 0.3625: its arithmetic has two slips, reproduced below
    (53.2 + 4.5 + 64.0 + 16.1 taken as 137.7, and 53.2 + 58.5 as 117.5)."""
    r = matrix.exact_returns()
    assert r["full"] == pytest.approx(39.15) and r["partial"] == pytest.approx(33.325)
    clustered = matrix.exact_returns([0, 1, 0, 1])
    assert clustered == pytest.approx(38.05)
    assert r["full"] - r["partial"] == pytest.approx(5.825) and r["full"] - clustered == pytest.approx(1.1)
    best = matrix.best_labelling(2)
    assert best in ((0, 1, 0, 1), (1, 0, 1, 0))
    assert matrix.exact_returns(matrix.best_labelling(4)) == pytest.approx(r["full"])  # 4 labels lose nothing
    # the paper's printed numbers follow from its two sums
    full_paper = (137.7 / 4 + 175.4 / 4) / 2
    assert full_paper == pytest.approx(39.1375)
    assert full_paper - r["partial"] == pytest.approx(5.8125)
    assert full_paper - ((117.5 + 17.3) / 4 + 43.85) / 2 == pytest.approx(0.3625)


def test_matrix_env_rewards_and_masks():
    env = matrix.RGMMatrix(64, seed=0)
    env.reset()
    o = env.o.copy()
    obs = env.get_obs()
    assert (obs[np.arange(64), 0, o[:, 0]] == 1).all() and (obs.sum(-1) == 1).all()
    assert (env.get_avail_actions()[:, 1] == [1, 0]).all()
    actions = np.stack([np.arange(64) % 2, np.zeros(64, int)], 1)
    r, term, _ = env.step(actions, np.ones(64, bool))
    assert np.allclose(r, matrix.Q_TABLE[o[:, 0], actions[:, 0], o[:, 1]]) and term.all()


# ---- maze ------------------------------------------------------------------------------------
def maze_at(p1, p2, **kw):
    env = maze.Maze(1, seed=0, **kw)
    env.reset()
    env.pos[0] = [p1, p2]
    return env


def test_maze_high_landmark_needs_both_agents():
    env = maze_at((1, 0), (0, 2))
    r, term, info = env.step(np.array([[1, 3]]), ALL)  # up, left -> (0,0) and (0,1)
    assert r[0] == 0 and not term[0]
    r, term, info = env.step(np.array([[0, 3]]), ALL)  # stay, left -> both on (0,0)
    assert r[0] == 1.0 and term[0] and info[0]["high"] == 1 and not info[0]["episode_limit"]


def test_maze_low_landmark_walls_and_time_limit():
    env = maze_at((2, 3), (3, 2), r_low=0.5)
    r, term, info = env.step(np.array([[3, 1]]), ALL)  # left, up -> both on (2,2)
    assert r[0] == 0.5 and term[0] and info[0]["low"] == 1
    env = maze_at((0, 3), (3, 0))
    for t in range(3):
        r, term, info = env.step(np.array([[1, 3]]), ALL)  # into the walls: nobody moves
        assert (env.pos[0] == [[0, 3], [3, 0]]).all() and r[0] == 0
    assert term[0] and info[0]["episode_limit"]


def test_maze_observations_and_observe_all():
    env = maze_at((1, 2), (3, 3))
    obs = env.get_obs()[0]
    assert obs.shape == (2, 16) and obs[0, 6] == 1 and obs[1, 15] == 1 and obs.sum() == 2
    full = maze_at((1, 2), (3, 3), observe_all=True)
    f = full.get_obs()[0]
    assert f.shape == (2, 32) and (f[0] == np.concatenate([obs[0], obs[1]])).all()
    assert (f[1] == np.concatenate([obs[1], obs[0]])).all()
    assert (full.get_state()[0] == obs.reshape(-1)).all()
    assert full.get_env_info()["obs_shape"] == 32 and full.get_env_info()["state_shape"] == 32


# ---- MPE physics against the host's MPE core ------------------------------------------------
def test_mpe_physics_matches_the_host_mpe_core():
    """Same start, same actions: positions and velocities of the port equal the host's MPE world
    (Python loops over entity pairs) after 25 steps with contacts."""
    from pymarlzooplus.envs.multiagent_particle_envs.mpe import scenarios

    scenario = scenarios.load("simple_tag.py").Scenario()
    world = scenario.make_world()  # 3 predators, 1 prey, 2 landmarks
    env = mpe.Tag(1, seed=3, n_predators=3)
    env.reset()
    env.pos[0, :4] = np.random.default_rng(0).uniform(-0.3, 0.3, (4, 2))  # crowded: many contacts
    entities = world.agents + world.landmarks  # host order: 3 adversaries, 1 good, landmarks
    for k, e in enumerate(entities):
        e.state.p_pos = env.pos[0, k].copy()
        e.state.p_vel = env.vel[0, k].copy()
    rng = np.random.default_rng(1)
    for _ in range(25):
        acts = rng.integers(0, 5, (1, 4))
        for k, agent in enumerate(world.agents):
            agent.action.u = mpe.DIRECTIONS[acts[0, k]] * agent.accel
            agent.action.c = np.zeros(world.dim_c)
        world.step()
        env.physics(np.array([0]), acts)
    host_pos = np.array([e.state.p_pos for e in entities])
    host_vel = np.array([e.state.p_vel for e in entities])
    assert np.allclose(env.pos[0], host_pos, atol=1e-9) and np.allclose(env.vel[0], host_vel, atol=1e-9)


def test_tag_reward_observation_and_catches():
    env = mpe.Tag(1, seed=0, n_predators=2)
    env.reset()
    env.pos[0] = [[0.0, 0.0], [0.5, 0.0], [0.02, 0.0], [-0.8, 0.8], [0.8, -0.8]]
    env.vel[0] = 0.0
    obs = env.get_obs()[0]
    assert obs.shape == (2, 12)
    assert np.allclose(obs[1, 2:4], [0.5, 0.0]) and np.allclose(obs[1, 8:10], [0.02 - 0.5, 0.0])
    assert np.allclose(obs[0, 4:6], [-0.8, 0.8])  # landmark 1 relative to predator 0
    # predator 0 runs into the prey: from x = -0.17 at speed 1 it ends at -0.07, the prey moves
    # at most 0.04, so they touch (< 0.075 + 0.05); the reward uses the positions after the step
    env.pos[0, 0] = [-0.17, 0.0]
    env.pos[0, 2] = [0.0, 0.0]
    env.vel[0, 0] = [1.0, 0.0]
    r, term, info = env.step(np.array([[2, 0]]), ALL)
    p = env.pos[0]
    dist = np.linalg.norm(p[:2] - p[2], axis=1)
    contacts = int((dist < 0.125).sum())
    assert contacts >= 1 and r[0] == pytest.approx(-0.1 * dist.sum() + 10 * contacts)
    assert info[0]["catches"] == contacts and not term[0]


def test_spread_reward_collisions_and_nearest_landmark():
    env = mpe.Spread(1, seed=0, n_agents=2)
    env.reset()
    env.pos[0] = [[0.0, 0.0], [0.1, 0.0], [0.9, 0.9], [-0.5, 0.0]]  # agents touch (0.1 < 0.3)
    env.vel[0] = 0.0
    obs = env.get_obs()[0]
    assert obs.shape == (2, 6) and np.allclose(obs[0, 4:6], [-0.5, 0.0])  # nearest landmark of agent 0
    r, term, info = env.step(np.array([[0, 0]]), ALL)
    p = env.pos[0]
    cover = np.linalg.norm(p[:2, None] - p[None, 2:], axis=-1).min(0).sum()
    touching = np.linalg.norm(p[0] - p[1]) < 0.3
    assert r[0] == pytest.approx(-cover - 2 * touching) and info[0]["collisions"] == 2 * touching


@pytest.mark.parametrize("make", [lambda o: mpe.Tag(2, seed=3, n_predators=3, observe_all=o),
                                  lambda o: mpe.Spread(2, seed=3, n_agents=3, observe_all=o)])
def test_mpe_observe_all_is_every_agents_local_observation(make):
    """Full observation (pi*) on the same trajectory: agent i sees its own local observation, then
    the others' in agent order; state, rewards and dynamics are unchanged."""
    part, full = make(False), make(True)
    part.reset(), full.reset()
    acts = np.random.default_rng(0).integers(0, 5, (6, 2, 3))
    for a in acts:
        r_part, _, _ = part.step(a, np.ones(2, bool))
        r_full, _, _ = full.step(a, np.ones(2, bool))
        local, seen = part.get_obs(), full.get_obs()
        assert np.array_equal(r_part, r_full) and np.array_equal(part.get_state(), full.get_state())
        for i, others in enumerate([[1, 2], [0, 2], [0, 1]]):
            assert np.array_equal(seen[:, i], np.concatenate([local[:, i]] + [local[:, j] for j in others], -1))
    assert full.get_env_info()["obs_shape"] == 3 * part.get_env_info()["obs_shape"]


def test_mpe_time_limit_is_a_truncation():
    env = mpe.Spread(2, seed=0, n_agents=3, episode_limit=4)
    env.reset()
    for t in range(4):
        r, term, info = env.step(np.zeros((2, 3), int), np.array([True, True]))
    assert term.all() and all(i["episode_limit"] for i in info)


@pytest.mark.parametrize("env,args,needle", [
    ("mpe_tag", {"n_predators": 0}, "n_predators"),
    ("mpe_tag", {"n_prey": 2}, "unknown env_args key 'n_prey'"),
    ("mpe_spread", {"n_agents": 1}, "n_agents"),
    ("maze", {"episode_limit": "three"}, "episode_limit"),
    ("rgm_matrix", {"observe_all": 3}, "observe_all"),
])
def test_bad_env_args_are_refused_in_one_line(env, args, needle):
    with pytest.raises(SuiteError, match=needle) as err:
        build_config("rgmcomm_maddpg", env, {"env_args": args}, get_registry())
    assert "\n" not in str(err.value)


def test_maze_refuses_a_low_landmark_worth_more():
    with pytest.raises(SuiteError, match="r_high"):
        maze.make({"r_high": 0.5, "r_low": 0.7, "episode_limit": 3, "observe_all": False, "seed": None}, 1, 0)
