"""The predator-prey env (ReMIX's relative-overgeneralisation task): rules on hand-placed
positions, observation/state layout, masking, episode ends, seeding and batch independence."""
import numpy as np
import pytest

from marlkit.config import build_config
from marlkit.errors import SuiteError
from marlkit.registry import get_registry
from plugins.wqmix.predator_prey import ACTIONS, CATCH, STAY, PARAMS, PredatorPrey, check_env_args, make

RIGHT, DOWN, LEFT, UP = (ACTIONS.index(name) for name in ("right", "down", "left", "up"))


def env_with(n_envs=1, seed=0, **args):
    env = make(args, n_envs, seed)
    env.reset()
    return env


def step(env, actions, active=None):
    actions = np.asarray(actions, dtype=np.int64).reshape(env.n_envs, env.n_agents)
    active = np.ones(env.n_envs, dtype=bool) if active is None else np.asarray(active)
    return env.step(actions, active)


def test_defaults_match_the_paper():
    env = env_with()
    assert env.get_env_info() == {"state_shape": 200, "obs_shape": 50, "n_actions": 6, "n_agents": 8,
                                  "episode_limit": 200}
    assert ACTIONS == ("right", "down", "left", "up", "stay", "catch") and (STAY, CATCH) == (4, 5)
    assert env.agent_alive.all() and env.prey_alive.all()
    cells = {tuple(c) for c in np.concatenate([env.agent_pos[0], env.prey_pos[0]])}
    assert len(cells) == 16  # 8 agents and 8 prey on distinct cells
    assert PARAMS["miscapture_punishment"].default == 0.0 and not PARAMS["toroidal"].default


# ---- capture, punishment, removal ---------------------------------------------------------------
def test_two_adjacent_catchers_capture_and_are_removed():
    env = env_with(n_agents=3, n_prey=2, miscapture_punishment=-2.0)
    env.set_positions(0, agents=[(4, 5), (5, 4), (0, 0)], prey=[(5, 5), (9, 9)])
    rewards, terminated, infos = step(env, [CATCH, CATCH, STAY])
    assert rewards.tolist() == [10.0] and not terminated[0] and infos == [{}]
    assert env.prey_alive[0].tolist() == [False, True]
    assert env.agent_alive[0].tolist() == [False, False, True]
    obs, state = env.get_obs()[0], env.get_state()[0].reshape(2, 10, 10)
    assert not obs[:2].any() and obs[2].any()  # removed agents see nothing
    assert state[0].sum() == 1 and state[0, 0, 0] == 1  # only agent 2 is left on the grid
    assert state[1, 5, 5] == 0 and state[1].sum() == 1
    avail = env.get_avail_actions()[0]
    assert avail[0].tolist() == [0, 0, 0, 0, 1, 0] and avail[1].tolist() == [0, 0, 0, 0, 1, 0]
    # Removed agents' actions are ignored; the freed cells can be entered again.
    step(env, [RIGHT, UP, STAY])
    assert env.get_state()[0].reshape(2, 10, 10)[0].sum() == 1
    assert env.prey_caught[0] == 1 and env.miscaptures[0] == 0


@pytest.mark.parametrize("punishment", [0.0, -0.5, -1.5, -2.0])
def test_lone_catch_gets_the_punishment(punishment):
    env = env_with(n_agents=2, n_prey=1, miscapture_punishment=punishment)
    env.set_positions(0, agents=[(4, 5), (0, 0)], prey=[(5, 5)])
    assert env.get_avail_actions()[0, 0, CATCH] == 1 and env.get_avail_actions()[0, 1, CATCH] == 0
    rewards, terminated, _ = step(env, [CATCH, STAY])
    assert rewards[0] == pytest.approx(punishment) and not terminated[0]
    assert env.prey_alive[0, 0] and env.agent_alive[0].all() and env.miscaptures[0] == 1


def test_punishment_is_counted_once_per_prey_with_a_failed_attempt():
    env = env_with(n_agents=3, n_prey=2, miscapture_punishment=-1.0)
    # Agent 0 catches alone next to two prey: two failed prey catch attempts, punished twice.
    env.set_positions(0, agents=[(5, 5), (9, 9), (0, 0)], prey=[(5, 6), (6, 5)])
    rewards, _, _ = step(env, [CATCH, STAY, STAY])
    assert rewards[0] == -2.0 and env.miscaptures[0] == 2
    # A non-catching neighbour neither helps nor is punished.
    env = env_with(n_agents=2, n_prey=1, miscapture_punishment=-1.0)
    env.set_positions(0, agents=[(4, 5), (5, 4)], prey=[(5, 5)])
    rewards, _, _ = step(env, [CATCH, STAY])
    assert rewards[0] == -1.0 and env.prey_alive[0, 0]


def test_three_catchers_all_removed_and_agents_needed_option():
    env = env_with(n_agents=4, n_prey=2, miscapture_punishment=-1.0)
    env.set_positions(0, agents=[(4, 5), (5, 4), (6, 5), (0, 0)], prey=[(5, 5), (9, 9)])
    rewards, _, _ = step(env, [CATCH, CATCH, CATCH, STAY])
    assert rewards[0] == 10.0 and env.agent_alive[0].tolist() == [False, False, False, True]
    env = env_with(n_agents=4, n_prey=2, agents_needed=3, miscapture_punishment=-1.0, capture_reward=5.0)
    env.set_positions(0, agents=[(4, 5), (5, 4), (6, 5), (0, 0)], prey=[(5, 5), (9, 9)])
    rewards, _, _ = step(env, [CATCH, CATCH, STAY, STAY])
    assert rewards[0] == -1.0 and env.prey_alive[0, 0]
    env.set_positions(0, agents=[(4, 5), (5, 4), (6, 5), (0, 0)], prey=[(5, 5), (9, 9)])
    rewards, _, _ = step(env, [CATCH, CATCH, CATCH, STAY])
    assert rewards[0] == 5.0 and not env.prey_alive[0, 0]


def test_two_agents_cannot_take_two_prey_at_once():
    # Agents 0 and 1 are both next to prey 0 and prey 1: the first prey in the random order is
    # caught, the catchers are removed and so cannot catch (or be punished at) the second one.
    for seed in range(6):
        env = env_with(seed=seed, n_agents=3, n_prey=3, miscapture_punishment=-1.0)
        env.set_positions(0, agents=[(0, 0), (1, 1), (9, 9)], prey=[(0, 1), (1, 0), (5, 5)])
        rewards, _, _ = step(env, [CATCH, CATCH, STAY])
        assert rewards[0] == 10.0 and env.prey_alive[0, :2].sum() == 1
        assert env.agent_alive[0].tolist() == [False, False, True]


def test_capture_uses_the_prey_position_at_the_start_of_the_step():
    # The prey cannot escape a catch: catch is resolved before it moves.
    for seed in range(5):
        env = env_with(seed=seed, n_agents=3, n_prey=2)
        env.set_positions(0, agents=[(4, 5), (5, 6), (0, 0)], prey=[(5, 5), (9, 9)])
        rewards, _, _ = step(env, [CATCH, CATCH, STAY])
        assert rewards[0] == 10.0


def test_step_reward_is_added_every_step():
    env = env_with(n_agents=2, n_prey=1, step_reward=-0.1, miscapture_punishment=-1.0)
    env.set_positions(0, agents=[(4, 5), (0, 0)], prey=[(5, 5)])
    assert step(env, [CATCH, STAY])[0][0] == pytest.approx(-1.1)
    assert step(env, [STAY, STAY])[0][0] == pytest.approx(-0.1)


# ---- masking and movement -----------------------------------------------------------------------
def test_walls_and_catch_masking():
    env = env_with(n_agents=2, n_prey=2)
    env.set_positions(0, agents=[(0, 0), (9, 5)], prey=[(1, 1), (8, 5)])
    avail = env.get_avail_actions()[0]
    assert avail[0].tolist() == [1, 1, 0, 0, 1, 0]  # corner: no left/up; diagonal prey: no catch
    assert avail[1].tolist() == [1, 0, 1, 1, 1, 1]  # bottom row: no down; prey above: catch
    assert (avail.sum(-1) > 0).all()


def test_occupied_cells_blocking_and_optional_mask():
    env = env_with(n_agents=2, n_prey=1)
    env.set_positions(0, agents=[(5, 5), (5, 6)], prey=[(0, 9)])
    # Reference rule: a move into an occupied cell is available but leaves the agent in place.
    assert env.get_avail_actions()[0, 0, RIGHT] == 1
    step(env, [RIGHT, STAY])
    assert env.agent_pos[0, 0].tolist() == [5, 5]
    # A move into a cell its occupant leaves in the same step may succeed (random agent order).
    moved = 0
    for seed in range(20):
        env = env_with(seed=seed, n_agents=2, n_prey=1)
        env.set_positions(0, agents=[(5, 5), (5, 6)], prey=[(0, 9)])
        step(env, [RIGHT, RIGHT])
        assert env.agent_pos[0, 1].tolist() == [5, 7]
        moved += env.agent_pos[0, 0].tolist() == [5, 6]
    assert 0 < moved < 20
    env = env_with(n_agents=2, n_prey=1, mask_occupied_moves=True)
    env.set_positions(0, agents=[(5, 5), (5, 6)], prey=[(4, 5)])
    assert env.get_avail_actions()[0, 0].tolist() == [0, 1, 1, 0, 1, 1]


def test_two_agents_into_one_cell_only_one_gets_it():
    for seed in range(5):
        env = env_with(seed=seed, n_agents=2, n_prey=1)
        env.set_positions(0, agents=[(5, 4), (5, 6)], prey=[(0, 0)])
        step(env, [RIGHT, LEFT])
        cells = sorted(map(tuple, env.agent_pos[0].tolist()))
        assert cells in ([(5, 4), (5, 5)], [(5, 5), (5, 6)])


def test_toroidal_option_wraps_moves_catch_and_view():
    env = env_with(n_agents=2, n_prey=1, toroidal=True)
    env.set_positions(0, agents=[(0, 0), (5, 5)], prey=[(9, 0)])
    avail = env.get_avail_actions()[0]
    assert avail[0].tolist() == [1, 1, 1, 1, 1, 1]  # prey across the top edge is adjacent
    obs = env.get_obs()[0, 0].reshape(2, 5, 5)
    assert obs[1, 1, 2] == 1 and obs[0, 2, 2] == 1 and obs.sum() == 2
    step(env, [UP, STAY])
    assert env.agent_pos[0, 0].tolist() in ([9, 0], [0, 0])  # wrapped, or blocked by the prey
    env.set_positions(0, agents=[(0, 0), (5, 5)], prey=[(3, 3)])
    step(env, [LEFT, STAY])
    assert env.agent_pos[0, 0].tolist() == [0, 9]


def test_prey_moves_to_a_free_neighbour_or_rests():
    env = env_with(seed=3, n_agents=1, n_prey=1, agents_needed=1)
    for _ in range(20):
        env.set_positions(0, agents=[(0, 0)], prey=[(5, 5)])
        step(env, [STAY])
        assert np.abs(env.prey_pos[0, 0] - [5, 5]).sum() == 1  # p_prey_rest 0: always moves
    # Boxed in by three agents and a wall: it stays.
    env = env_with(n_agents=3, n_prey=1)
    env.set_positions(0, agents=[(0, 4), (0, 6), (1, 5)], prey=[(0, 5)])
    step(env, [STAY, STAY, STAY])
    assert env.prey_pos[0, 0].tolist() == [0, 5]
    env = env_with(n_agents=1, n_prey=1, agents_needed=1, p_prey_rest=1.0)
    env.set_positions(0, agents=[(0, 0)], prey=[(5, 5)])
    for _ in range(5):
        step(env, [STAY])
    assert env.prey_pos[0, 0].tolist() == [5, 5]


# ---- observations and state ---------------------------------------------------------------------
def test_obs_and_state_channels_for_a_hand_placed_configuration():
    env = env_with(n_agents=3, n_prey=2)
    env.set_positions(0, agents=[(0, 0), (1, 2), (7, 7)], prey=[(2, 1), (9, 9)])
    obs, state = env.get_obs(), env.get_state()
    assert obs.shape == (1, 3, 50) and state.shape == (1, 200)
    assert obs.dtype == np.float32 and state.dtype == np.float32
    own = obs[0, 0].reshape(2, 5, 5)  # window cell (i, j) is grid cell (i - 2, j - 2)
    expect_agents = np.zeros((5, 5))
    expect_agents[2, 2] = expect_agents[3, 4] = 1  # itself, agent 1 at (1, 2)
    expect_prey = np.zeros((5, 5))
    expect_prey[4, 3] = 1  # prey at (2, 1)
    np.testing.assert_array_equal(own[0], expect_agents)
    np.testing.assert_array_equal(own[1], expect_prey)
    far = obs[0, 2].reshape(2, 5, 5)  # agent at (7, 7): sees itself and the prey at (9, 9)
    assert far[0].sum() == 1 and far[0, 2, 2] == 1 and far[1].sum() == 1 and far[1, 4, 4] == 1
    grid = state[0].reshape(2, 10, 10)
    assert {tuple(c) for c in np.argwhere(grid[0])} == {(0, 0), (1, 2), (7, 7)}
    assert {tuple(c) for c in np.argwhere(grid[1])} == {(2, 1), (9, 9)}


def test_view_radius_option_changes_obs_size():
    env = env_with(n_agents=2, n_prey=1, view_radius=1, grid_height=6, grid_width=8)
    info = env.get_env_info()
    assert info["obs_shape"] == 18 and info["state_shape"] == 96
    assert env.get_obs().shape == (1, 2, 18) and env.get_state().shape == (1, 96)


# ---- episode ends -------------------------------------------------------------------------------
def test_episode_limit_at_exactly_200_steps():
    env = env_with(n_agents=2, n_prey=1)
    env.set_positions(0, agents=[(0, 0), (0, 2)], prey=[(9, 9)])
    for t in range(199):
        rewards, terminated, infos = step(env, [STAY, STAY])
        assert not terminated[0] and infos[0] == {}, t
    rewards, terminated, infos = step(env, [STAY, STAY])
    assert terminated[0] and infos[0] == {"prey_caught": 0, "miscaptures": 0, "episode_limit": True}


def test_all_prey_caught_is_terminal_not_a_time_limit():
    env = env_with(n_agents=3, n_prey=1, episode_limit=3)
    env.set_positions(0, agents=[(4, 5), (5, 4), (0, 0)], prey=[(5, 5)])
    rewards, terminated, infos = step(env, [CATCH, CATCH, STAY])
    assert terminated[0] and rewards[0] == 10.0
    assert infos[0] == {"prey_caught": 1, "miscaptures": 0, "episode_limit": False}
    # Also on the last step of the limit: a real end keeps episode_limit False.
    env.reset()
    env.set_positions(0, agents=[(0, 0), (0, 9), (9, 9)], prey=[(5, 5)])
    step(env, [STAY] * 3)
    step(env, [STAY] * 3)
    env.set_positions(0, agents=[(4, 5), (5, 4), (0, 0)], prey=[(5, 5)])
    _, terminated, infos = step(env, [CATCH, CATCH, STAY])
    assert terminated[0] and infos[0]["episode_limit"] is False and env.t[0] == 3


def test_all_agents_removed_ends_the_episode():
    env = env_with(n_agents=2, n_prey=2)
    env.set_positions(0, agents=[(4, 5), (5, 4)], prey=[(5, 5), (0, 0)])
    _, terminated, infos = step(env, [CATCH, CATCH])
    assert terminated[0] and infos[0] == {"prey_caught": 1, "miscaptures": 0, "episode_limit": False}


def test_inactive_and_finished_envs_do_not_change():
    env = env_with(n_envs=2, n_agents=3, n_prey=1)
    env.set_positions(0, agents=[(4, 5), (5, 4), (0, 0)], prey=[(5, 5)])
    env.set_positions(1, agents=[(4, 5), (5, 4), (0, 0)], prey=[(5, 5)])
    before = env.get_state()[1].copy()
    rewards, terminated, _ = step(env, [[CATCH, CATCH, STAY], [CATCH, CATCH, STAY]], active=[True, False])
    assert terminated.tolist() == [True, False] and rewards.tolist() == [10.0, 0.0]
    np.testing.assert_array_equal(env.get_state()[1], before)
    rewards, terminated, _ = step(env, [[CATCH, CATCH, STAY], [STAY] * 3])  # env 0 is finished
    assert rewards[0] == 0.0 and not terminated[0] and env.t.tolist() == [1, 1]


# ---- seeding, batches, rollouts -----------------------------------------------------------------
def random_actions(avail, rng):
    return ((rng.random(avail.shape) + 1e-3) * avail).argmax(-1)


def rollout(env, steps, policy_rng, override=None):
    """Uniformly random available actions (fixed-size draws, so envs' action streams do not
    interact); returns (obs, state, rewards, terminated) per step."""
    trace = []
    for _ in range(steps):
        avail = env.get_avail_actions()
        actions = random_actions(avail, policy_rng)
        if override is not None:
            actions[0] = override(actions[0], avail[0])
        rewards, terminated, _ = env.step(actions, ~env.done)
        trace.append((env.get_obs().copy(), env.get_state().copy(), rewards.copy(), terminated.copy()))
    return trace


def test_reproducible_with_the_seed_and_envs_differ():
    a, b, c = (make({}, 4, seed) for seed in (7, 7, 8))
    for env in (a, b, c):
        env.reset()
    np.testing.assert_array_equal(a.get_state(), b.get_state())
    assert not np.array_equal(a.get_state(), c.get_state())
    starts = {a.get_state()[i].tobytes() for i in range(4)}
    assert len(starts) == 4  # each env has its own initial positions
    for (oa, sa, ra, ta), (ob, sb, rb, tb) in zip(rollout(a, 60, np.random.default_rng(1)),
                                                  rollout(b, 60, np.random.default_rng(1))):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(ra, rb)
    a.reset()
    b.reset()
    np.testing.assert_array_equal(a.get_state(), b.get_state())


def test_envs_of_a_batch_are_independent():
    a, b = make({}, 3, 5), make({}, 3, 5)
    a.reset()
    b.reset()

    def all_stay(actions, avail):
        return np.full_like(actions, STAY)

    # Same seed and policy stream for envs 1-2; env 0 acts differently in b.
    trace_a = rollout(a, 80, np.random.default_rng(2))
    trace_b = rollout(b, 80, np.random.default_rng(2), override=all_stay)
    differs = False
    for (oa, sa, ra, _), (ob, sb, rb, _) in zip(trace_a, trace_b):
        np.testing.assert_array_equal(sa[1:], sb[1:])
        np.testing.assert_array_equal(oa[1:], ob[1:])
        np.testing.assert_array_equal(ra[1:], rb[1:])
        differs |= not np.array_equal(sa[0], sb[0])
    assert differs


def test_random_rollout_keeps_the_invariants():
    env = make({"miscapture_punishment": -0.5}, 4, 11)
    policy = np.random.default_rng(0)
    caught = 0
    for episode in range(3):
        env.reset()
        length = np.zeros(4, dtype=int)
        while not env.done.all():
            avail = env.get_avail_actions()
            assert (avail.sum(-1) > 0).all() and (avail[..., STAY] == 1).all()
            # catch is available exactly when a live prey is in the 4-neighbourhood
            dist = np.abs(env.agent_pos[:, :, None] - env.prey_pos[:, None]).sum(-1)  # [e, agent, prey]
            near = ((dist == 1) & env.prey_alive[:, None]).any(-1) & env.agent_alive
            np.testing.assert_array_equal(avail[..., CATCH], near)
            actions = random_actions(avail, policy)
            active = ~env.done
            rewards, terminated, infos = env.step(actions, active)
            length += active
            state = env.get_state().reshape(4, 2, 10, 10)
            assert (state.sum(1) <= 1).all()  # no two entities in one cell
            assert (state[:, 0].sum((1, 2)) == env.agent_alive.sum(1)).all()
            assert (state[:, 1].sum((1, 2)) == env.prey_alive.sum(1)).all()
            assert (8 - env.prey_alive.sum(1) == env.prey_caught).all()
            assert (env.agent_alive.sum(1) <= 8 - 2 * env.prey_caught).all()
            assert np.isfinite(env.get_obs()).all()
            for i in np.flatnonzero(terminated):
                assert set(infos[i]) == {"prey_caught", "miscaptures", "episode_limit"}
                caught += infos[i]["prey_caught"]
        assert (length <= 200).all()
    assert caught >= 0


def test_state_dict_continues_the_same_stream():
    env = make({}, 2, 3)
    env.reset()
    rollout(env, 5, np.random.default_rng(0))
    saved = env.state_dict()
    first = rollout(env, 10, np.random.default_rng(1))
    env.load_state_dict(saved)
    again = rollout(env, 10, np.random.default_rng(1))
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x[1], y[1])


def test_set_positions_rejects_bad_layouts():
    env = env_with(n_agents=2, n_prey=1)
    with pytest.raises(ValueError):
        env.set_positions(0, agents=[(0, 0), (0, 0)], prey=[(1, 1)])
    with pytest.raises(ValueError):
        env.set_positions(0, agents=[(0, 0), (10, 0)], prey=[(1, 1)])
    with pytest.raises(ValueError):
        env.set_positions(0, agents=[(0, 0)], prey=[(1, 1)])


# ---- options and configs ------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    ({"view_radius": 5}, "view_radius"),
    ({"grid_height": 3, "grid_width": 4, "view_radius": 1}, "n_agents + n_prey"),
    ({"miscapture_punishment": 2.0}, "miscapture_punishment"),
    ({"n_agents": 1}, "agents_needed"),
    ({"agents_needed": 5}, "agents_needed"),
    ({"n_preys": 3}, "n_prey"),
    ({"toroidal": "yes"}, "toroidal"),
])
def test_bad_env_args_are_one_line_errors(args, words):
    with pytest.raises(SuiteError) as err:
        check_env_args(args)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_make_validates_and_uses_the_run_seed():
    env = make({"seed": 1}, 2, 9)
    assert isinstance(env, PredatorPrey)
    env.reset()
    other = PredatorPrey(2, seed=9)
    other.reset()
    np.testing.assert_array_equal(env.get_state(), other.get_state())
    with pytest.raises(SuiteError):
        make({"view_radius": 7}, 1, 0)


@pytest.mark.parametrize("name, punishment", [("predator_prey", 0.0), ("predator_prey_p05", -0.5),
                                              ("predator_prey_p15", -1.5), ("predator_prey_p2", -2.0)])
def test_yaml_presets(name, punishment):
    config = build_config("qmix", name, {}, get_registry())
    args = config["env_args"]
    assert config["env"] == "predator_prey" and args["miscapture_punishment"] == punishment
    assert (args["n_agents"], args["n_prey"], args["grid_height"], args["grid_width"]) == (8, 8, 10, 10)
    assert args["episode_limit"] == 200 and config["t_max"] == 1050000 and config["test_nepisode"] == 16
    assert args == check_env_args({**args})


# ---- an independent per-env oracle ----------------------------------------------------------------
class Oracle:
    """The rules written as plain per-env Python loops, fed the env's own random draws."""

    def __init__(self, h, w, toroidal, needed, punishment, capture=10.0, step_reward=0.0, p_rest=0.0,
                 limit=200):
        self.h, self.w, self.toroidal, self.needed = h, w, toroidal, needed
        self.punishment, self.capture, self.step_reward, self.p_rest, self.limit = (
            punishment, capture, step_reward, p_rest, limit)

    def reset(self, agents, prey):
        self.agents, self.prey = [tuple(a) for a in agents], [tuple(q) for q in prey]
        self.agent_alive, self.prey_alive = [True] * len(agents), [True] * len(prey)
        self.t, self.done = 0, False

    def around(self, pos):
        out = []
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            r, c = pos[0] + dr, pos[1] + dc
            if self.toroidal:
                out.append((r % self.h, c % self.w))
            else:
                out.append((r, c) if 0 <= r < self.h and 0 <= c < self.w else None)
        return out

    def occupied(self):
        cells = {p for p, alive in zip(self.agents, self.agent_alive) if alive}
        return cells | {p for p, alive in zip(self.prey, self.prey_alive) if alive}

    def step(self, actions, agent_order, prey_order, rest, move):
        reward = self.step_reward
        for a in agent_order:
            if self.agent_alive[a] and 0 <= actions[a] < 4:
                target = self.around(self.agents[a])[actions[a]]
                if target is not None and target not in self.occupied():
                    self.agents[a] = target
        for q in prey_order:
            if not self.prey_alive[q]:
                continue
            near = self.around(self.prey[q])
            catchers = [a for a in range(len(self.agents))
                        if self.agent_alive[a] and actions[a] == CATCH and self.agents[a] in near]
            if len(catchers) >= self.needed:
                reward += self.capture
                self.prey_alive[q] = False
                for a in catchers:
                    self.agent_alive[a] = False
                continue
            if catchers:
                reward += self.punishment
            free = [c for c in near if c is not None and c not in self.occupied()]
            if free and rest[q] >= self.p_rest:
                self.prey[q] = free[min(int(move[q] * len(free)), len(free) - 1)]
        self.t += 1
        ended = not any(self.prey_alive) or not any(self.agent_alive)
        self.done = ended or self.t >= self.limit
        return reward, self.done

    def state(self):
        grid = np.zeros((2, self.h, self.w), dtype=np.float32)
        for ch, cells, alive in ((0, self.agents, self.agent_alive), (1, self.prey, self.prey_alive)):
            for pos, on in zip(cells, alive):
                if on:
                    grid[ch][pos] = 1
        return grid.reshape(-1)


@pytest.mark.parametrize("args, masked", [
    ({"miscapture_punishment": -1.5}, True),
    ({"miscapture_punishment": -2.0}, False),  # unmasked random actions: blocked moves, empty catches
    ({"toroidal": True, "grid_height": 6, "grid_width": 7, "n_agents": 6, "n_prey": 5,
      "miscapture_punishment": -0.5, "step_reward": -0.1, "p_prey_rest": 0.3, "episode_limit": 60}, True),
    ({"n_agents": 9, "n_prey": 4, "grid_height": 5, "grid_width": 5, "agents_needed": 3,
      "miscapture_punishment": -1.0, "capture_reward": 4.0}, False),
])
def test_vectorised_env_matches_a_per_env_oracle(args, masked):
    n_envs, seed = 4, 21
    env = make(args, n_envs, seed)
    full = check_env_args(args)
    draws = np.random.default_rng(seed)  # mirrors the env's draw sequence
    policy = np.random.default_rng(0)
    oracles = [Oracle(full["grid_height"], full["grid_width"], full["toroidal"], full["agents_needed"],
                      full["miscapture_punishment"], full["capture_reward"], full["step_reward"],
                      full["p_prey_rest"], full["episode_limit"]) for _ in range(n_envs)]
    n, p = full["n_agents"], full["n_prey"]
    for episode in range(2):
        env.reset()
        cells = draws.random((n_envs, full["grid_height"] * full["grid_width"])).argsort(axis=1)[:, : n + p]
        for i, oracle in enumerate(oracles):
            pos = np.stack(np.divmod(cells[i], full["grid_width"]), -1)
            oracle.reset(pos[:n], pos[n:])
        while not env.done.all():
            avail = env.get_avail_actions()
            actions = random_actions(avail if masked else np.ones_like(avail), policy)
            active = ~env.done
            rewards, terminated, _ = env.step(actions, active)
            agent_order = draws.random((n_envs, n)).argsort(axis=1)
            prey_order = draws.random((n_envs, p)).argsort(axis=1)
            rest, move = draws.random((n_envs, p)), draws.random((n_envs, p))
            for i in np.flatnonzero(active):
                reward, done = oracles[i].step(actions[i], agent_order[i], prey_order[i], rest[i], move[i])
                assert rewards[i] == pytest.approx(reward) and terminated[i] == done
                np.testing.assert_array_equal(env.get_state()[i], oracles[i].state())
