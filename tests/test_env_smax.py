"""The SMAX wrapper against SMAX itself: shapes, avail actions, termination, rewards and seeding.

The oracle steps a separately built HeuristicEnemySMAX one env at a time with ``step_env`` and the
key schedule documented in marlkit/envs/smax.py, and must agree with the batched wrapper.
JIT compilation dominates the runtime, so wrappers share one configuration where possible
(``smax._COMPILED`` reuses compiled functions across instances).
"""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

import jax  # noqa: E402

from marlkit.envs import smax  # noqa: E402
from marlkit.errors import SuiteError  # noqa: E402

from helpers import Stats, runner_args  # noqa: E402

N_ENVS = 4
SEED = 7
STOP = smax.STOP_ACTION


def quiet_jaxmarl():
    smax._jax_modules()  # imports jaxmarl without its stdout noise
    import jaxmarl
    from jaxmarl.environments.smax import map_name_to_scenario
    return jaxmarl, map_name_to_scenario


@pytest.fixture(scope="module")
def make3m():
    """Fresh 3m wrappers (episode counter 0) sharing one compilation."""
    return lambda seed=SEED, **args: smax.make({"map_name": "3m", **args}, N_ENVS, seed)


@pytest.fixture(scope="module")
def oracle_env():
    jaxmarl, map_name_to_scenario = quiet_jaxmarl()
    return jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario("3m"))


def focus_fire(avail, rng, eps=0.15):
    """Attack the lowest-index enemy in range, else walk right (action 1 = +x), with eps random."""
    attack = avail[..., STOP + 1:]
    scripted = np.where(attack.any(-1), STOP + 1 + attack.argmax(-1),
                        np.where(avail[..., 1] > 0, 1, STOP))
    return np.where(rng.random(scripted.shape) < eps, masked_random(avail, rng), scripted)


def masked_random(avail, rng):
    return (rng.random(avail.shape) * avail).argmax(-1)


def run_episode(venv, policy, rng):
    """One episode in every env; per step (actions, obs, state, avail, rewards, terminated, infos)."""
    venv.reset()
    active = np.ones(venv.n_envs, bool)
    trace = []
    while active.any():
        actions = policy(venv.get_avail_actions(), rng)
        rewards, terminated, infos = venv.step(actions, active)
        trace.append((actions, venv.get_obs().copy(), venv.get_state().copy(),
                      venv.get_avail_actions().copy(), rewards * active, terminated & active,
                      [info if a else None for info, a in zip(infos, active)]))
        active &= ~terminated
    return trace


# ---- names, errors, import hygiene ----------------------------------------------------------
def test_maps_match_installed_jaxmarl():
    quiet_jaxmarl()
    from jaxmarl.environments.smax.smax_env import MAP_NAME_TO_SCENARIO

    assert smax.MAPS == tuple(MAP_NAME_TO_SCENARIO)
    assert smax.PARAMS["map_name"].choices == smax.MAPS


def test_import_does_not_load_jax():
    code = "import sys, marlkit.envs.smax; assert 'jax' not in sys.modules and 'jaxmarl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=smax.__file__.rsplit("/marlkit/", 1)[0])


def test_bad_env_args_are_one_line_suite_errors():
    with pytest.raises(SuiteError, match="did you mean '3m'") as err:
        smax.make({"map_name": "3n"}, 1, 0)
    assert "\n" not in str(err.value)
    with pytest.raises(SuiteError, match="did you mean 'map_name'"):
        smax.make({"map_nme": "3m"}, 1, 0)
    with pytest.raises(SuiteError, match="episode_limit"):
        smax.make({"episode_limit": 0}, 1, 0)


def test_missing_jaxmarl_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # makes `import jaxmarl` fail
    monkeypatch.setattr(smax, "_COMPILED", {})
    with pytest.raises(SuiteError, match="pip install jaxmarl"):
        smax.make({"map_name": "3m"}, 1, 0)


# ---- shapes -------------------------------------------------------------------------------
def test_env_info_and_shapes_3m(make3m):
    venv = make3m()
    # SMAX unit_list obs: 13 features per other unit + 10 own; state: 12 per unit; 5 + n_enemies actions.
    assert venv.get_env_info() == {"state_shape": 72, "obs_shape": 75, "n_actions": 8,
                                   "n_agents": 3, "episode_limit": 100, "extras": {"visible": (3,)}}
    venv.reset()
    assert venv.get_obs().shape == (N_ENVS, 3, 75) and venv.get_obs().dtype == np.float32
    assert venv.get_state().shape == (N_ENVS, 72) and venv.get_state().dtype == np.float32
    assert venv.get_avail_actions().shape == (N_ENVS, 3, 8)
    assert venv.get_avail_actions().dtype == np.float32


def test_env_info_and_shapes_3s_vs_5z():
    venv = smax.make({"map_name": "3s_vs_5z"}, 2, 0)
    info = venv.get_env_info()
    assert info == {"state_shape": 12 * 8, "obs_shape": 13 * 2 + 13 * 5 + 10, "n_actions": 10,
                    "n_agents": 3, "episode_limit": 100, "extras": {"visible": (3,)}}
    venv.reset()
    assert venv.get_obs().shape == (2, 3, info["obs_shape"])
    assert venv.get_state().shape == (2, info["state_shape"])
    assert venv.get_avail_actions().shape == (2, 3, 10)


# ---- against SMAX itself ------------------------------------------------------------------
def oracle_start(env, seed, episode, i):
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), episode), i)
    reset_key, chain = jax.random.split(key)
    obs, state = env.reset(reset_key)
    # Same values, strong dtypes: spares a second compilation of the oracle's step_env.
    return obs, jax.tree.map(lambda x: x.astype(x.dtype), state), chain


def oracle_avail(env, state):
    avail = env.get_avail_actions(state)
    return np.stack([np.asarray(avail[a]) for a in env.agents]).astype(np.float32)


def oracle_obs(env, obs):
    return np.stack([np.asarray(obs[a]) for a in env.agents]), np.asarray(obs["world_state"])


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_reset_matches_smax_and_envs_differ(make3m, oracle_env):
    venv = make3m()
    venv.reset()
    for i in range(N_ENVS):
        obs, state, _ = oracle_start(oracle_env, SEED, 0, i)
        close(venv.get_obs()[i], oracle_obs(oracle_env, obs)[0])
        close(venv.get_state()[i], oracle_obs(oracle_env, obs)[1])
        np.testing.assert_array_equal(venv.get_avail_actions()[i], oracle_avail(oracle_env, state))
    assert len({venv.get_state()[i].tobytes() for i in range(N_ENVS)}) == N_ENVS


def test_rollouts_match_smax_step_env(make3m, oracle_env):
    env = oracle_env
    venv = make3m()
    rng = np.random.default_rng(3)
    outcomes = []
    for episode in range(2):
        trace = run_episode(venv, focus_fire, rng)
        for i in range(N_ENVS):
            _, state, chain = oracle_start(env, SEED, episode, i)
            ret = 0.0
            for t, (actions, obs, wstate, avail, rewards, terminated, infos) in enumerate(trace):
                if infos[i] is None:  # finished earlier: the wrapper kept its last outputs
                    close(obs[i], trace[t - 1][1][i])
                    continue
                step_key, chain = jax.random.split(chain)
                acts = {a: np.int32(actions[i, j]) for j, a in enumerate(env.agents)}
                o_obs, state, o_rew, o_dones, _ = env.step_env(step_key, state, acts)
                team = [float(o_rew[a]) for a in env.agents]
                assert max(team) == min(team)  # one shared team reward
                close(rewards[i], 10.0 * team[0])
                ret += rewards[i]
                close(obs[i], oracle_obs(env, o_obs)[0])
                close(wstate[i], oracle_obs(env, o_obs)[1])
                o_avail = oracle_avail(env, state)
                np.testing.assert_array_equal(avail[i], o_avail)
                alive = np.asarray(state.state.unit_alive)
                for j in np.flatnonzero(~alive[:3]):  # dead allies may only stop
                    np.testing.assert_array_equal(avail[i, j], np.eye(8)[STOP])
                assert avail[i].sum(-1).min() >= 1
                # SMAX's own limit fires one step late (after max_steps + 1 steps).
                assert bool(terminated[i]) == (bool(o_dones["__all__"]) or t + 1 == 100)
                if not terminated[i]:
                    assert infos[i] == {}
                    continue
                won = not alive[3:].any() and alive[:3].any()
                assert infos[i] == {"battle_won": int(won), "dead_allies": int((~alive[:3]).sum()),
                                    "dead_enemies": int((~alive[3:]).sum()),
                                    "episode_limit": bool(alive[:3].any() and alive[3:].any())}
                assert infos[i]["episode_limit"] == (t + 1 == 100)
                if won:  # all enemy health (1) + win bonus (1), times reward_scale 10
                    assert abs(ret - 20.0) < 1e-3
                outcomes.append(infos[i]["battle_won"])
    assert len(outcomes) == 2 * N_ENVS and 0 < sum(outcomes) < len(outcomes)  # wins and losses


def test_episode_limit_truncates_at_exactly_the_limit(make3m):
    # Random 3m battles last about 20 steps: a limit of 12 cuts most of them.
    venv = make3m(seed=1, episode_limit=12)
    assert venv.get_env_info()["episode_limit"] == 12
    rng = np.random.default_rng(0)
    truncated = 0
    for _ in range(2):
        trace = run_episode(venv, masked_random, rng)
        assert len(trace) <= 12
        for i in range(N_ENVS):
            end = [t for t, step in enumerate(trace) if step[6][i] is not None][-1]
            info = trace[end][6][i]
            assert trace[end][5][i] and "battle_won" in info
            assert info["episode_limit"] == (end + 1 == 12 and info["dead_allies"] < 3
                                             and info["dead_enemies"] < 3)
            truncated += info["episode_limit"]
    assert truncated > 0


def test_seeding_and_reward_scale(make3m):
    def rollout(venv):
        return run_episode(venv, masked_random, np.random.default_rng(0))

    a, b = rollout(make3m(seed=11)), rollout(make3m(seed=11))
    scaled = rollout(make3m(seed=11, reward_scale=1.0))
    assert len(a) == len(b) == len(scaled)
    for sa, sb, ss in zip(a, b, scaled):
        np.testing.assert_array_equal(sa[1], sb[1])
        np.testing.assert_array_equal(sa[4], sb[4])
        np.testing.assert_array_equal(sa[5], sb[5])
        assert sa[6] == sb[6] == ss[6]
        np.testing.assert_allclose(sa[4], 10.0 * ss[4], rtol=1e-6)
    assert any(step[4].any() for step in a)  # some reward was seen
    same, other = make3m(seed=11), make3m(seed=12)
    same.reset()
    other.reset()
    first = same.get_state().copy()
    assert not np.array_equal(first, other.get_state())
    same.reset()  # the next episode gets new keys
    assert not np.array_equal(first, same.get_state())


def test_normalise_state_scales_positions_and_cooldowns(make3m):
    """Same seed and actions: the normalised state is the raw one with x, y / 32 and cooldowns
    clipped at 0 and divided by the marine's 0.61 s; obs, rewards and ends are unchanged."""
    raw = run_episode(make3m(seed=3), masked_random, np.random.default_rng(1))
    scaled = run_episode(make3m(seed=3, normalise_state=True), masked_random, np.random.default_rng(1))
    assert len(raw) == len(scaled) > 5
    saw_negative_cooldown = False
    for r, s in zip(raw, scaled):
        np.testing.assert_array_equal(r[1], s[1])
        np.testing.assert_array_equal(r[4], s[4])
        units_raw, units = r[2][:, :60].reshape(N_ENVS, 6, 10), s[2][:, :60].reshape(N_ENVS, 6, 10)
        expected = units_raw.copy()
        expected[..., 1:3] /= 32.0
        expected[..., 3] = np.maximum(expected[..., 3], 0.0) / 0.61
        saw_negative_cooldown |= bool((units_raw[..., 3] < -1.0).any())
        np.testing.assert_allclose(units, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(r[2][:, 60:], s[2][:, 60:])
        assert units[..., 1:4].min() >= 0.0 and units[..., 1:3].max() <= 1.0 and units[..., 3].max() < 2.0
    assert saw_negative_cooldown  # the raw state needed it: idle cooldowns fall without bound


# ---- the `visible` extra ------------------------------------------------------------------
UNIT_FEATURES = 13  # SMAX unit_list obs: 13 features per other unit, allies first, health first


def visible_from_positions(venv):
    """visible [n_envs, n_allies, n_allies] recomputed from the wrapper's SMAX state (numpy)."""
    st = venv._carry[0].state  # HeuristicEnemySMAX state -> SMAX State
    n = venv.n_agents
    pos = np.asarray(st.unit_positions)[:, :n]
    alive = np.asarray(st.unit_alive)[:, :n]
    sight = np.asarray(venv.env.unit_type_sight_ranges)[np.asarray(st.unit_types)[:, :n]]
    dist = np.linalg.norm(pos[:, None, :, :] - pos[:, :, None, :], axis=-1)  # [e, i, j]: |pos_j - pos_i|
    # SMAX's obs test is strict: norm(pos_j - pos_i) < sight range of unit i
    return ((dist < sight[:, :, None]) & alive[:, :, None] & alive[:, None, :]).astype(np.float32), alive


def visible_from_obs(obs):
    """Which allies each ally's SMAX observation shows (a non-zero health feature), [.., n, n]."""
    n = obs.shape[-2]
    seen = np.zeros(obs.shape[:-1] + (n,), dtype=np.float32)
    for i in range(n):
        others = [j for j in range(n) if j != i]  # slot k of ally i's obs holds unit others[k]
        for k, j in enumerate(others):
            seen[..., i, j] = obs[..., i, k * UNIT_FEATURES] > 0
        own = obs.shape[-1] - 10  # own features (10 in 3m) come last, health first
        seen[..., i, i] = obs[..., i, own] > 0
    return seen


def test_visible_extra_mirrors_smax_sight(make3m):
    venv = make3m(seed=5)
    venv.reset()
    vis = venv.get_extras()["visible"]
    assert set(venv.get_extras()) == {"visible"}
    assert vis.shape == (N_ENVS, 3, 3) and vis.dtype == np.float32
    np.testing.assert_array_equal(vis[:, np.arange(3), np.arange(3)], 1.0)  # all alive at reset
    types = np.asarray(venv._carry[0].state.unit_types)[:, :3]
    assert (types == types[:, :1]).all()  # 3m: one unit type, one sight range ...
    np.testing.assert_array_equal(vis, vis.transpose(0, 2, 1))  # ... so visibility is symmetric
    np.testing.assert_array_equal(vis, visible_from_positions(venv)[0])
    rng = np.random.default_rng(1)
    active = np.ones(N_ENVS, bool)
    hidden_alive = dead = 0
    while active.any():
        _, terminated, _ = venv.step(masked_random(venv.get_avail_actions(), rng), active)
        active &= ~terminated
        vis = venv.get_extras()["visible"]
        want, alive = visible_from_positions(venv)
        np.testing.assert_array_equal(vis, want)
        np.testing.assert_array_equal(vis, vis.transpose(0, 2, 1))
        np.testing.assert_array_equal(vis, visible_from_obs(venv.get_obs()))  # SMAX's own obs agrees
        np.testing.assert_array_equal(vis[:, np.arange(3), np.arange(3)], alive)
        dead += int((~alive).sum())
        both = alive[:, :, None] & alive[:, None, :]
        hidden_alive += int((both & (vis == 0)).sum())
    assert dead > 0 and hidden_alive > 0  # the rollout covered dead allies and out-of-sight allies
    # the extra rides in the same jitted call: still one compilation each of reset and step
    if hasattr(venv._step_fn, "_cache_size"):
        assert venv._step_fn._cache_size() == 1 and venv._reset_fn._cache_size() == 1


def test_runner_writes_visible_when_a_scheme_declares_it(make3m):
    from types import SimpleNamespace

    import torch as th

    from marlkit.experiment import build_scheme
    from marlkit.registry import Registry
    from marlkit.runners import Runner

    class RandomMAC:
        action_selector = SimpleNamespace()

        def __init__(self, scheme=None, groups=None, args=None):  # the controller constructor of the contract
            pass

        def init_hidden(self, batch_size):
            self.rng = np.random.default_rng(2)

        def select_actions(self, batch, t_ep, t_env, bs, test_mode=False):
            avail = batch["avail_actions"][bs, t_ep].numpy()
            return th.as_tensor(masked_random(avail, self.rng)), {}

    reg = Registry()
    reg.add("controller", "vis_mac", RandomMAC,
            scheme=lambda args, info: {"visible": {"vshape": info["extras"]["visible"], "group": "agents"}})
    args = runner_args(runner_log_interval=10**9, test_nepisode=N_ENVS, env="smax", mac="vis_mac")
    venv = make3m(seed=9, episode_limit=15)
    runner = Runner(args, Stats(), venv)
    scheme, groups, preprocess = build_scheme(args, venv.get_env_info(), reg)
    runner.setup(scheme, groups, preprocess, RandomMAC())
    batch, _ = runner.run()
    filled = batch["filled"][:, :, 0].numpy().astype(bool)
    vis, obs = batch["visible"].numpy(), batch["obs"].numpy()
    assert vis.shape == (N_ENVS, 16, 3, 3)
    # written at the same t as the obs it belongs to, at every filled t (incl. after the last step)
    np.testing.assert_array_equal(vis[filled], visible_from_obs(obs[filled]))
    assert (vis[~filled] == 0).all()
    np.testing.assert_array_equal(vis[np.arange(N_ENVS), filled.sum(1) - 1], venv.get_extras()["visible"])
