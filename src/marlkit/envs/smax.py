"""JaxMARL SMAX (SMAC-like micromanagement in JAX) as a batched ``VecEnv``.

Allies are the learning agents; enemies are played by SMAX's heuristic AI
(``HeuristicEnemySMAX``), the counterpart of SMAC's built-in bot. All ``n_envs`` episodes advance
in one jitted, vmapped call; obs, state, avail actions and the ``visible`` extra (which allies
each ally can see, see ``get_extras``) are computed in that call and cached as numpy, so the
``get_*`` methods are free.

Facts from jaxmarl 0.2.0's source that shape this wrapper:

* Ally actions: 0-3 move, 4 stop, 5.. attack enemy k (``n_actions = 5 + n_enemies``). SMAX
  always marks stop (index 4) available, also for dead allies, so a mask row is never all zero
  (``STOP_ACTION``; the wrapper re-asserts it).
* Reward: every ally gets the same team reward: the mean fraction of enemy health removed this
  step plus ``won_battle_bonus`` (1.0) on a win, so an episode returns at most about 2. The
  default ``reward_scale`` 10 brings that to about 20, the scale SMAC normalises its reward to.
* ``env.step`` auto-resets; this wrapper calls the non-resetting ``step_env`` so the last
  observation of an episode is the real one.
* SMAX ends an episode when one side is wiped out or when its step limit ``max_steps`` (100 by
  default) is reached, but it checks the limit before counting the step, so its episodes last
  max_steps + 1 steps. The wrapper ends them at exactly ``episode_limit`` steps (pymarl buffers
  hold episode_limit + 1 entries) and sets info["episode_limit"] when no side was wiped out.

Keys: episode ``e`` (count of ``reset()`` calls, from 0) of env ``i`` starts from
``fold_in(fold_in(PRNGKey(seed), e), i)``, split into (reset key, chain key); every step splits
the chain key into (step key, next chain key). Inactive envs keep their state and keys.

Compilation (10-16% of a 30k-step run) goes through JAX's persistent compilation cache, so every
later process with the same map, batch and JAX version loads it instead (see ``cache_dir``).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np

from ..params import check_env_args as check_schema
from ..errors import SuiteError
from ..params import Param
from .base import VecEnv

# Every map of jaxmarl 0.2.0's map_name_to_scenario, listed here so importing this module does not
# import JAX (a test checks it against the installed jaxmarl).
MAPS = (
    "3m", "2s3z", "25m", "3s5z", "8m", "5m_vs_6m", "10m_vs_11m", "27m_vs_30m", "3s5z_vs_3s6z",
    "3s_vs_5z", "6h_vs_8z", "smacv2_5_units", "smacv2_10_units", "smacv2_20_units",
)

STOP_ACTION = 4  # SMAX's stop: always available, the only action of a dead ally

PARAMS = {
    "map_name": Param(str, "3m", choices=MAPS, doc="SMAX scenario (SMAC map name)"),
    "reward_scale": Param(float, 10.0, low=0.0,
                          doc="multiplies SMAX's team reward (<= ~2 per episode; x10 ~ SMAC's 20)"),
    "episode_limit": Param(int, None, low=1, nullable=True,
                           doc="steps per episode; null = SMAX's own max_steps (100)"),
    "seed": Param(int, None, low=0, nullable=True,
                  doc="fallback only: the runner passes the run seed to make()"),
    "see_enemy_actions": Param(bool, True, doc="obs include enemies' last actions"),
    "walls_cause_death": Param(bool, True, doc="units touching the map edge die"),
    "won_battle_bonus": Param(float, 1.0, low=0.0, doc="SMAX reward for winning, before scaling"),
    "world_steps_per_env_step": Param(int, 8, low=1, doc="physics sub-steps per env step"),
    "enemy_shoots": Param(bool, True, doc="heuristic enemies attack (False: they only move)"),
    "attack_mode": Param(str, "closest", choices=("closest", "random"),
                         doc="how heuristic enemies pick a target in range"),
    "normalise_state": Param(bool, False,
                             doc="state positions / map size, weapon cooldowns / the unit type's "
                                 "cooldown, clipped at 0 (SMAX's raw state has positions 0-32 and "
                                 "cooldowns falling without bound while a unit does not shoot)"),
}


@contextlib.contextmanager
def _quiet_stdout():
    """Silence stdout while importing jaxmarl and undo its stream swap.

    Importing jaxmarl 0.2.0 prints notes about optional environments, and its mabrax module sets
    sys.stdout/sys.stderr to sys.__stdout__/sys.__stderr__, which would drop any redirection the
    caller installed (log tees, pytest capture). Restore all four streams afterwards.
    """
    saved = sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__
    sink = io.StringIO()
    sys.stdout = sys.__stdout__ = sink
    sys.__stderr__ = sys.stderr
    try:
        yield
    finally:
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved


def _jax_modules():
    """(jax, jnp, jaxmarl) or a SuiteError saying what to install."""
    try:
        import jax
        import jax.numpy as jnp
        with _quiet_stdout():
            import jaxmarl
            from jaxmarl.environments.smax import map_name_to_scenario  # noqa: F401
    except ImportError as exc:
        raise SuiteError(f"env 'smax' needs jaxmarl (and jax): pip install jaxmarl ({exc})") from None
    _use_compilation_cache(jax)
    return jax, jnp, jaxmarl


CACHE_VARIABLE = "MARLKIT_JAX_CACHE"


def cache_dir():
    """Folder of JAX's persistent compilation cache for SMAX: ``$MARLKIT_JAX_CACHE`` if set ("off"
    or empty disables the cache), else ``marlkit/jax`` in the user cache dir (``$XDG_CACHE_HOME``
    or ``~/.cache``). JAX keys entries by program, JAX version and compile options, so one folder
    can serve every run, sweep and checkout on a machine (or a shared one on a cluster)."""
    value = os.environ.get(CACHE_VARIABLE)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false", "none") else os.path.expanduser(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "marlkit", "jax")


def _use_compilation_cache(jax):
    """Point JAX's persistent cache at ``cache_dir()`` unless JAX was given one already (e.g. by
    ``JAX_COMPILATION_CACHE_DIR``). Entries of programs that compile in over 1 s are kept (JAX's
    default threshold): SMAX's reset and step functions."""
    path = cache_dir()
    if path is None or jax.config.jax_compilation_cache_dir:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot create the JAX compilation cache {path} ({exc.strerror}); "
                         f"set {CACHE_VARIABLE} to a writable folder, or to 'off'") from None
    jax.config.update("jax_compilation_cache_dir", path)


def check_env_args(env_args: dict) -> dict:
    """env_args with defaults filled in, or a one-line SuiteError for an unknown key or bad value."""
    return check_schema("smax", dict(env_args or {}), PARAMS)


# (map_name, SMAX kwargs, n_envs) -> (env, jitted reset, jitted step). Envs that differ only in
# seed or reward_scale (e.g. a run's training and test envs) share one compilation.
_COMPILED: dict = {}


def _compiled(map_name, env_kwargs, n_envs, normalise_state=False):
    key = (map_name, tuple(sorted(env_kwargs.items())), n_envs, normalise_state)
    if key not in _COMPILED:
        _COMPILED[key] = _compile(map_name, env_kwargs, n_envs, normalise_state)
    return _COMPILED[key]


def _compile(map_name, env_kwargs, n_envs, normalise_state=False):
    jax, jnp, jaxmarl = _jax_modules()
    from jaxmarl.environments.smax import map_name_to_scenario

    env = jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name), **env_kwargs)
    agents = list(env.agents)  # the allies, in SMAX's order
    n_allies, n_enemies = env.num_allies, env.num_enemies

    def visible_allies(smax_state):
        """[n_allies, n_allies] 0/1: ally j within ally i's sight, both alive.

        Mirrors SMAX's unit_list observation (SMAX.get_obs_unit_list): unit i sees unit j iff
        ``norm(pos[j] - pos[i]) < unit_type_sight_ranges[unit_types[i]]`` (strict) and both are
        alive. The diagonal is 1 for alive allies; rows and columns of dead allies are 0.
        """
        pos = smax_state.unit_positions[:n_allies]
        alive = smax_state.unit_alive[:n_allies]
        sight = env.unit_type_sight_ranges[smax_state.unit_types[:n_allies]]
        dist = jnp.linalg.norm(pos[None, :, :] - pos[:, None, :], axis=-1)  # [i, j]: |pos_j - pos_i|
        return ((dist < sight[:, None]) & alive[:, None] & alive[None, :]).astype(jnp.float32)

    def scaled_state(world_state, smax_state):
        """SMAX's world state (per unit: health, x, y, weapon cooldown, type bits; then teams and
        types) with x, y in [0, 1] and cooldowns in [0, ~1.5] as in SMAX's own observations;
        dead units' rows stay 0."""
        n_units, n_features = n_allies + n_enemies, len(env.own_features)
        units = world_state[: n_units * n_features].reshape(n_units, n_features)
        size = jnp.array([env.map_width, env.map_height], dtype=units.dtype)
        cooldown = jnp.maximum(units[:, 3], 0.0) / env.unit_type_weapon_cooldowns[smax_state.unit_types]
        units = units.at[:, 1:3].divide(size).at[:, 3].set(cooldown)
        return jnp.concatenate([units.reshape(-1), world_state[n_units * n_features:]])

    def observe(obs_dict, state):
        obs = jnp.stack([obs_dict[a] for a in agents]).astype(jnp.float32)
        avail_dict = env.get_avail_actions(state)
        avail = jnp.stack([avail_dict[a] for a in agents]).astype(jnp.float32)
        avail = avail.at[:, STOP_ACTION].set(1.0)
        world_state = obs_dict["world_state"].astype(jnp.float32)
        if normalise_state:
            world_state = scaled_state(world_state, state.state)
        return obs, world_state, avail, visible_allies(state.state)

    def reset_one(key):
        reset_key, chain = jax.random.split(key)
        obs_dict, state = env.reset(reset_key)
        return (state, chain, *observe(obs_dict, state))

    def reset_all(root, episode):
        base = jax.random.fold_in(root, episode)
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(n_envs))
        # Strong dtypes: a weakly typed leaf (the heuristic's -1 target) would make the step
        # function compile twice, once for the carry from reset and once for its own output.
        return jax.tree.map(lambda x: x.astype(x.dtype), jax.vmap(reset_one)(keys))

    def step_one(carry, actions, active, scale, limit):
        state, chain = carry[0], carry[1]
        step_key, next_chain = jax.random.split(chain)
        acts = {a: actions[i] for i, a in enumerate(agents)}
        # step_env, not step: step auto-resets and would hide the episode's last observation.
        obs_dict, new_state, rewards, dones, _ = env.step_env(step_key, state, acts)
        new_carry = (new_state, next_chain, *observe(obs_dict, new_state))
        # Inactive envs keep everything (the runner ignores their outputs).
        carry = jax.tree.map(lambda new, old: jnp.where(active, new, old), new_carry, carry)
        alive = new_state.state.unit_alive
        allies_alive = jnp.sum(alive[:n_allies])
        enemies_alive = jnp.sum(alive[n_allies:])
        # SMAX tests its max_steps before counting the step (it ends at max_steps + 1), so the
        # limit is applied here, at exactly `limit` steps.
        done = (dones["__all__"] | (new_state.state.step >= limit)) & active
        won = (enemies_alive == 0) & (allies_alive > 0)
        at_limit = done & (allies_alive > 0) & (enemies_alive > 0)  # time ran out, no side wiped
        reward = jnp.where(active, rewards[agents[0]] * scale, 0.0).astype(jnp.float32)
        return carry, (reward, done, won, at_limit, n_allies - allies_alive, n_enemies - enemies_alive)

    step_all = jax.vmap(step_one, in_axes=(0, 0, 0, None, None))
    return env, jax.jit(reset_all), jax.jit(step_all)


def _smax_default_max_steps():
    import inspect

    from jaxmarl.environments.smax import SMAX

    return inspect.signature(SMAX.__init__).parameters["max_steps"].default


class SmaxVecEnv(VecEnv):
    """n_envs HeuristicEnemySMAX episodes stepped by one jitted, vmapped function."""

    def __init__(self, n_envs, map_name="3m", reward_scale=10.0, episode_limit=None, seed=None,
                 see_enemy_actions=True, walls_cause_death=True, won_battle_bonus=1.0,
                 world_steps_per_env_step=8, enemy_shoots=True, attack_mode="closest",
                 normalise_state=False):
        if n_envs < 1:
            raise SuiteError(f"smax needs n_envs >= 1, got {n_envs}")
        kwargs = dict(see_enemy_actions=see_enemy_actions, walls_cause_death=walls_cause_death,
                      won_battle_bonus=won_battle_bonus,
                      world_steps_per_env_step=world_steps_per_env_step,
                      enemy_shoots=enemy_shoots, attack_mode=attack_mode)
        # SMAX's own limit is pushed out of reach; the step function applies episode_limit (a
        # traced argument, so envs differing only in episode_limit share one compilation).
        kwargs["max_steps"] = 2**30
        self.env, self._reset_fn, self._step_fn = _compiled(map_name, kwargs, n_envs, normalise_state)
        self._jax, jnp, _ = _jax_modules()
        self.map_name = map_name
        self.n_envs = n_envs
        self.seed = 0 if seed is None else int(seed)
        self.reward_scale = float(reward_scale)
        self._scale = jnp.float32(self.reward_scale)
        self.n_agents = self.env.num_allies
        self.n_enemies = self.env.num_enemies
        self.n_actions = self.env.num_ally_actions
        self.episode_limit = int(_smax_default_max_steps() if episode_limit is None else episode_limit)
        self._limit = jnp.int32(self.episode_limit)
        self._root = self._jax.random.PRNGKey(self.seed)
        self._episode = 0
        self._carry = None  # device pytree: (state, chain key, obs, world state, avail, visible)
        self._obs = self._state = self._avail = self._visible = None

    # ---- VecEnv -----------------------------------------------------------------------------
    def get_env_info(self):
        return {"state_shape": int(self.env.state_size), "obs_shape": int(self.env.obs_size),
                "n_actions": int(self.n_actions), "n_agents": int(self.n_agents),
                "episode_limit": self.episode_limit,
                # get_extras(): per agent i, the row visible[i, :] over the n_agents allies
                "extras": {"visible": (int(self.n_agents),)}}

    def state_dict(self):
        """What a checkpoint needs to continue the same stream of episodes."""
        return {"episode": self._episode}

    def load_state_dict(self, state):
        self._episode = int(state["episode"])

    def reset(self):
        self._carry = self._reset_fn(self._root, self._episode)
        self._episode += 1
        self._cache(self._jax.device_get(self._carry[2:]))

    def step(self, actions, active):
        if self._carry is None:
            raise RuntimeError("SmaxVecEnv.step called before reset()")
        actions = np.asarray(actions, dtype=np.int32)
        if actions.shape != (self.n_envs, self.n_agents):
            raise ValueError(f"actions must have shape {(self.n_envs, self.n_agents)}, got {actions.shape}")
        active = np.asarray(active, dtype=bool).reshape(self.n_envs)
        self._carry, outs = self._step_fn(self._carry, actions, active, self._scale, self._limit)
        views, outs = self._jax.device_get((self._carry[2:], outs))  # one device->host copy
        self._cache(views)
        reward, done, won, at_limit, dead_allies, dead_enemies = outs
        infos = []
        for i in range(self.n_envs):
            if done[i]:
                infos.append({"battle_won": int(won[i]), "dead_allies": int(dead_allies[i]),
                              "dead_enemies": int(dead_enemies[i]),
                              "episode_limit": bool(at_limit[i])})
            else:
                infos.append({})
        return np.asarray(reward, dtype=np.float32), np.asarray(done, dtype=bool), infos

    def _cache(self, views):
        # Writable copies (device_get gives read-only arrays; torch.as_tensor warns on those).
        self._obs, self._state, self._avail, self._visible = (np.array(v, dtype=np.float32) for v in views)

    def get_obs(self):
        return self._obs

    def get_state(self):
        return self._state

    def get_avail_actions(self):
        return self._avail

    def get_extras(self):
        """``visible`` [n_envs, n_agents, n_agents] float32: visible[e, i, j] = 1 iff ally j is
        within ally i's sight range in env e and both are alive (SMAX's own obs visibility test;
        i == i is 1 for an alive ally, dead allies' rows and columns are 0)."""
        return {"visible": self._visible}


def make(env_args: dict, n_envs: int, seed: int) -> SmaxVecEnv:
    """The suite's entry point: validated env_args, run seed from the runner."""
    args = check_env_args(env_args)
    if seed is not None:
        args["seed"] = seed
    return SmaxVecEnv(n_envs, **args)
