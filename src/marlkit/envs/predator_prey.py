"""Predator-prey with miscapture punishment (Boehmer et al. 2020), the ReMIX benchmark task.

A batched numpy ``VecEnv``: every array is indexed [env, ...] and one ``step`` call advances all
``n_envs`` episodes (loops run over the agents and prey of the per-env random order, each
iteration a whole-batch array operation).

Rules (defaults: 8 agents, 8 prey, 10x10 grid, 5x5 view, 200 steps; sources in brackets: [paper]
= ReMIX paper 001, Section 5.1 and Appendix D.1; [ref] = the facts of Boehmer et al.'s public
``stag_hunt`` env as configured by pymarl2's ``stag_hunt.yaml``, the config ReMIX's baselines ran;
[choice] = decided here):

* Grid: bounded by default (``toroidal: False``) [ref: pymarl2's stag_hunt.yaml sets
  ``toroidal: False``; the paper does not say]. Positions are (row, col); no two entities share a
  cell [ref]. Initial positions: uniformly random distinct cells per env [ref].
* Actions (``ACTIONS``): 0 right, 1 down, 2 left, 3 up, 4 stay, 5 catch [paper lists the set; the
  index order is [ref]'s].
* Step order [ref]: (1) the agents that are still on the grid move one at a time in a random
  order; a move into a wall or an occupied cell leaves the agent where it is. (2) Every prey still
  alive is then processed one at a time in a random order: first the capture test, then, if it was
  not caught, its move.
* Capture [paper, ref]: a prey is caught when at least ``agents_needed`` (2) agents that are still
  on the grid, chose ``catch`` and stand next to it (4-neighbourhood; across the edge when
  toroidal) at its turn. The team gets ``capture_reward`` (10); the prey and all of those catching
  agents are removed. An agent removed by an earlier prey of the same step no longer counts for
  later prey [ref], so two agents cannot take two prey at once.
* Miscapture [ref]: a prey with at least one but fewer than ``agents_needed`` catching neighbours
  adds ``miscapture_punishment`` (0 here; the paper sweeps 0, -0.5, -1.5, -2) once for that prey.
  So the rule is "once per prey with a failed catch attempt": a lone catching agent next to two
  prey is punished twice, two lone catchers at one prey are punished once (there they succeed).
  The reference env counts exactly this way, and the paper's "unsuccessful attempts by single
  agents are punished" matches it for the default ``agents_needed`` 2.
* Prey movement: with probability ``p_prey_rest`` (0) the prey stays; otherwise it moves to a
  uniformly chosen free neighbouring cell (not a wall, agent or prey), and stays only if none is
  free [ref: p_stags_rest 0.0, prey never "choose" to stay]. Set ``p_prey_rest`` > 0 for prey that
  also rest at random.
* Removed agents [ref: capture_freezes, remove_frozen]: off the grid (invisible, not blocking,
  not in the state), their observation is all zeros and only ``stay`` is available; their
  actions are ignored.
* Episode end [ref; the paper names the agents condition]: all prey caught or all agents removed
  (terminal, ``info["episode_limit"] = False``), else after ``episode_limit`` (200) steps
  (``terminated`` True with ``info["episode_limit"] = True``, so learners bootstrap). With 8 agents
  and 8 prey at most 4 prey can be caught, so episodes end early only when every agent is gone.
  The reference sets the flag whenever the limit is reached; here a real termination on the last
  step keeps it False [choice: that step is terminal].
* Reward per env and step: ``step_reward`` (0) + captures + miscapture punishments (team reward).
* Available actions [ref]: moves off a bounded grid are unavailable; stay always; catch only next
  to a prey. Moves into occupied cells stay available by default (the occupant may move away
  first, and a blocked move is a stay) [ref's code; the paper's text calls them unavailable:
  ``mask_occupied_moves: True`` masks moves into cells occupied at the start of the step].
* Observation [paper, ref]: the (2 * view_radius + 1)^2 window centred on the agent, channel 0 =
  agents on the grid (the agent itself included, at the centre), channel 1 = prey; cells outside a
  bounded grid are 0 (pymarl2 config: observe_walls False). Flattened channel-first:
  obs.reshape(2, V, V). The reference also carries an always-empty hare channel (its n_hare is
  0); it is left out here, so obs is 50 (not 75) and state 200 (not 300) values.
* State: the whole grid, channels (agents, prey), flattened channel-first [ref].
* Terminal info: ``prey_caught`` (prey caught this episode), ``miscaptures`` (failed prey catch
  attempts, the punished events) and ``episode_limit``.

Randomness: one ``np.random.default_rng(seed)``; each reset and step draws fixed-size arrays for
the whole batch, so an env's episode depends only on the seed, its index and its own actions.
"""
from __future__ import annotations

import numpy as np

from ..errors import SuiteError, unknown
from ..params import Param
from .base import VecEnv

ACTIONS = ("right", "down", "left", "up", "stay", "catch")
STAY, CATCH = 4, 5
# (d_row, d_col) of actions 0-3 (right, down, left, up)
MOVES = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)
EMPTY, AGENT, PREY = 0, 1, 2  # occupancy codes

PARAMS = {
    "n_agents": Param(int, 8, low=1, high=1000, doc="predators (learning agents)"),
    "n_prey": Param(int, 8, low=1, high=1000, doc="prey"),
    "grid_height": Param(int, 10, low=2, high=1000, doc="rows of the grid"),
    "grid_width": Param(int, 10, low=2, high=1000, doc="columns of the grid"),
    "toroidal": Param(bool, False, doc="wrap around the edges (False: bounded by walls)"),
    "view_radius": Param(int, 2, low=0, high=500, doc="agents see a (2r+1)x(2r+1) window; 2 -> 5x5"),
    "episode_limit": Param(int, 200, low=1, doc="steps per episode (time limit)"),
    "capture_reward": Param(float, 10.0, doc="team reward per caught prey"),
    "miscapture_punishment": Param(float, 0.0, high=0.0,
                                   doc="added once per prey with 1..agents_needed-1 catching agents"),
    "agents_needed": Param(int, 2, low=1, high=4, doc="adjacent agents that must catch together"),
    "step_reward": Param(float, 0.0, doc="added every step (negative for a step cost)"),
    "p_prey_rest": Param(float, 0.0, low=0.0, high=1.0, doc="probability a prey stays instead of moving"),
    "mask_occupied_moves": Param(bool, False,
                                 doc="also mark moves into occupied cells unavailable (reference: only walls)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed to make()"),
}


def check_env_args(env_args: dict) -> dict:
    """env_args with defaults filled in, or a one-line SuiteError for a bad key, value or combination."""
    env_args = dict(env_args or {})
    for key in env_args:
        if key not in PARAMS:
            raise unknown("env_args key for env 'predator_prey'", key, PARAMS)
    args = {key: spec.check(f"env_args.{key}", env_args.get(key, spec.default)) for key, spec in PARAMS.items()}
    h, w, r = args["grid_height"], args["grid_width"], args["view_radius"]
    if 2 * r + 1 > min(h, w):
        raise SuiteError(f"env_args.view_radius = {r} gives a {2 * r + 1}x{2 * r + 1} view that does not fit "
                         f"the {h}x{w} grid (need 2 * view_radius + 1 <= {min(h, w)})")
    if args["n_agents"] + args["n_prey"] > h * w:
        raise SuiteError(f"env_args.n_agents + n_prey = {args['n_agents'] + args['n_prey']} does not fit "
                         f"the {h}x{w} grid ({h * w} cells)")
    if args["agents_needed"] > args["n_agents"]:
        raise SuiteError(f"env_args.agents_needed = {args['agents_needed']} exceeds n_agents = "
                         f"{args['n_agents']}: no prey could ever be caught")
    return args


class PredatorPrey(VecEnv):
    """n_envs predator-prey episodes stepped together (see the module docstring for the rules)."""

    def __init__(self, n_envs, n_agents=8, n_prey=8, grid_height=10, grid_width=10, toroidal=False,
                 view_radius=2, episode_limit=200, capture_reward=10.0, miscapture_punishment=0.0,
                 agents_needed=2, step_reward=0.0, p_prey_rest=0.0, mask_occupied_moves=False, seed=None):
        if n_envs < 1:
            raise SuiteError(f"predator_prey needs n_envs >= 1, got {n_envs}")
        self.n_envs, self.n_agents, self.n_prey = int(n_envs), int(n_agents), int(n_prey)
        self.shape = np.array([grid_height, grid_width], dtype=np.int64)
        self.toroidal = bool(toroidal)
        self.view_radius = int(view_radius)
        self.view = 2 * self.view_radius + 1
        self.episode_limit = int(episode_limit)
        self.capture_reward = float(capture_reward)
        self.miscapture_punishment = float(miscapture_punishment)
        self.agents_needed = int(agents_needed)
        self.step_reward = float(step_reward)
        self.p_prey_rest = float(p_prey_rest)
        self.mask_occupied_moves = bool(mask_occupied_moves)
        self.rng = np.random.default_rng(seed)
        e, n, p = self.n_envs, self.n_agents, self.n_prey
        self._envs = np.arange(e)
        self.agent_pos = np.zeros((e, n, 2), dtype=np.int64)
        self.agent_alive = np.zeros((e, n), dtype=bool)  # False once removed by a capture
        self.prey_pos = np.zeros((e, p, 2), dtype=np.int64)
        self.prey_alive = np.zeros((e, p), dtype=bool)
        self.occ = np.zeros((e, grid_height, grid_width), dtype=np.int8)  # EMPTY / AGENT / PREY
        self.t = np.zeros(e, dtype=np.int64)
        self.prey_caught = np.zeros(e, dtype=np.int64)
        self.miscaptures = np.zeros(e, dtype=np.int64)
        self.done = np.ones(e, dtype=bool)
        self._started = False

    # ---- VecEnv -------------------------------------------------------------------------------
    def get_env_info(self):
        h, w = self.shape
        return {"state_shape": int(2 * h * w), "obs_shape": int(2 * self.view * self.view),
                "n_actions": len(ACTIONS), "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def reset(self):
        e, n, p = self.n_envs, self.n_agents, self.n_prey
        h, w = self.shape
        cells = self.rng.random((e, h * w)).argsort(axis=1)[:, : n + p]  # distinct random cells per env
        pos = np.stack([cells // w, cells % w], axis=-1)
        self.agent_pos[:] = pos[:, :n]
        self.prey_pos[:] = pos[:, n:]
        self.agent_alive[:] = True
        self.prey_alive[:] = True
        self.t[:] = 0
        self.prey_caught[:] = 0
        self.miscaptures[:] = 0
        self.done[:] = False
        self._rebuild_occupancy()
        self._started = True

    def step(self, actions, active):
        if not self._started:
            raise RuntimeError("PredatorPrey.step called before reset()")
        e, n, p = self.n_envs, self.n_agents, self.n_prey
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (e, n):
            raise ValueError(f"actions must have shape {(e, n)}, got {actions.shape}")
        active = np.asarray(active, dtype=bool).reshape(e) & ~self.done
        # Fixed-size draws for the whole batch (independent of actions and of which envs are active).
        agent_order = self.rng.random((e, n)).argsort(axis=1)
        prey_order = self.rng.random((e, p)).argsort(axis=1)
        rest_draw = self.rng.random((e, p))
        move_draw = self.rng.random((e, p))
        envs = self._envs
        reward = np.where(active, self.step_reward, 0.0)

        # (1) Agents move one by one in a random order; blocked moves leave them in place.
        for k in range(n):
            a = agent_order[:, k]
            u = actions[envs, a]
            moving = active & self.agent_alive[envs, a] & (u >= 0) & (u < 4)
            pos = self.agent_pos[envs, a]
            target, inside = self._shift(pos, MOVES[np.where(moving, u, 0)])
            ok = moving & inside & (self.occ[envs, target[:, 0], target[:, 1]] == EMPTY)
            ei, ti, pi = envs[ok], target[ok], pos[ok]
            self.occ[ei, pi[:, 0], pi[:, 1]] = EMPTY
            self.occ[ei, ti[:, 0], ti[:, 1]] = AGENT
            self.agent_pos[ei, a[ok]] = ti

        # (2) Prey one by one in a random order: capture test, else a random move.
        catching = actions == CATCH  # [e, n]; combined with agent_alive at each prey's turn
        for k in range(p):
            q = prey_order[:, k]
            live = active & self.prey_alive[envs, q]
            ppos = self.prey_pos[envs, q]
            catchers = catching & self.agent_alive & live[:, None] & self._adjacent(self.agent_pos, ppos[:, None])
            count = catchers.sum(axis=1)
            caught = live & (count >= self.agents_needed)
            missed = live & (count > 0) & ~caught
            reward += caught * self.capture_reward + missed * self.miscapture_punishment
            self.prey_caught += caught
            self.miscaptures += missed
            if caught.any():
                ei = envs[caught]
                self.prey_alive[ei, q[caught]] = False
                self.occ[ei, ppos[caught, 0], ppos[caught, 1]] = EMPTY
                removed = catchers & caught[:, None]
                re, ra = np.nonzero(removed)
                self.agent_alive[re, ra] = False
                self.occ[re, self.agent_pos[re, ra, 0], self.agent_pos[re, ra, 1]] = EMPTY
            # Move the prey that are still there.
            moving = live & ~caught
            cells, inside = self._shift(ppos[:, None, :], MOVES[None])  # [e, 4, 2], [e, 4]
            free = inside & (self.occ[envs[:, None], cells[..., 0], cells[..., 1]] == EMPTY)
            n_free = free.sum(axis=1)
            go = moving & (n_free > 0) & (rest_draw[envs, q] >= self.p_prey_rest)
            pick = np.minimum((move_draw[envs, q] * n_free).astype(np.int64), np.maximum(n_free - 1, 0))
            direction = (np.cumsum(free, axis=1) > pick[:, None]).argmax(axis=1)  # pick-th free direction
            ei, qi = envs[go], q[go]
            src, dst = ppos[go], cells[go, direction[go]]
            self.occ[ei, src[:, 0], src[:, 1]] = EMPTY
            self.occ[ei, dst[:, 0], dst[:, 1]] = PREY
            self.prey_pos[ei, qi] = dst

        # (3) Episode ends.
        self.t += active
        ended = active & (~self.prey_alive.any(axis=1) | ~self.agent_alive.any(axis=1))
        at_limit = active & ~ended & (self.t >= self.episode_limit)
        terminated = ended | at_limit
        self.done |= terminated
        infos = [{} for _ in range(e)]
        for i in np.flatnonzero(terminated):
            infos[i] = {"prey_caught": int(self.prey_caught[i]), "miscaptures": int(self.miscaptures[i]),
                        "episode_limit": bool(at_limit[i])}
        return reward.astype(np.float32), terminated, infos

    def get_obs(self):
        r, v = self.view_radius, self.view
        grid = self._grid()  # [e, 2, h, w]
        mode = "wrap" if self.toroidal else "constant"
        padded = np.pad(grid, ((0, 0), (0, 0), (r, r), (r, r)), mode=mode)
        padded = padded.transpose(0, 2, 3, 1)  # [e, h + 2r, w + 2r, 2]
        offsets = np.arange(v)
        rows = self.agent_pos[..., 0][:, :, None, None] + offsets[:, None]  # [e, n, v, 1]
        cols = self.agent_pos[..., 1][:, :, None, None] + offsets[None, :]  # [e, n, 1, v]
        windows = padded[self._envs[:, None, None, None], rows, cols]  # [e, n, v, v, 2]
        obs = windows.transpose(0, 1, 4, 2, 3).reshape(self.n_envs, self.n_agents, -1)
        return obs * self.agent_alive[..., None]

    def get_state(self):
        return self._grid().reshape(self.n_envs, -1)

    def get_avail_actions(self):
        e, n = self.n_envs, self.n_agents
        avail = np.zeros((e, n, len(ACTIONS)), dtype=np.float32)
        cells, inside = self._shift(self.agent_pos[:, :, None, :], MOVES)  # [e, n, 4, 2], [e, n, 4]
        codes = self.occ[self._envs[:, None, None], cells[..., 0], cells[..., 1]]
        moves = inside & (codes == EMPTY) if self.mask_occupied_moves else inside
        alive = self.agent_alive
        avail[..., :4] = moves & alive[..., None]
        avail[..., STAY] = 1.0
        avail[..., CATCH] = (inside & (codes == PREY)).any(axis=-1) & alive
        return avail

    def state_dict(self):
        """Everything needed to continue the same stream of episodes (RNG and the running episodes)."""
        arrays = ("agent_pos", "agent_alive", "prey_pos", "prey_alive", "occ", "t", "prey_caught",
                  "miscaptures", "done")
        state = {name: getattr(self, name).copy() for name in arrays}
        state.update(rng=self.rng.bit_generator.state, started=self._started)
        return state

    def load_state_dict(self, state):
        for name, value in state.items():
            if name == "rng":
                self.rng.bit_generator.state = value
            elif name == "started":
                self._started = bool(value)
            else:
                getattr(self, name)[...] = value

    # ---- tests and debugging ------------------------------------------------------------------
    def set_positions(self, env_index, agents, prey):
        """Place env ``env_index``'s entities by hand: ``agents`` (n_agents) and ``prey`` (n_prey)
        lists of (row, col), or None for an agent already removed / a prey already caught.

        Leaves the step counter and the episode's counts as they are; the env becomes active.
        """
        if not self._started:
            self.reset()
        if len(agents) != self.n_agents or len(prey) != self.n_prey:
            raise ValueError(f"need {self.n_agents} agent and {self.n_prey} prey entries, "
                             f"got {len(agents)} and {len(prey)}")
        taken = set()
        for kind, entries, pos, alive in (("agent", agents, self.agent_pos, self.agent_alive),
                                          ("prey", prey, self.prey_pos, self.prey_alive)):
            for j, cell in enumerate(entries):
                if cell is None:
                    alive[env_index, j] = False
                    continue
                cell = (int(cell[0]), int(cell[1]))
                if not (0 <= cell[0] < self.shape[0] and 0 <= cell[1] < self.shape[1]):
                    raise ValueError(f"{kind} {j} at {cell} is off the {self.shape[0]}x{self.shape[1]} grid")
                if cell in taken:
                    raise ValueError(f"{kind} {j} at {cell}: cell already occupied")
                taken.add(cell)
                pos[env_index, j] = cell
                alive[env_index, j] = True
        self.done[env_index] = False
        self._rebuild_occupancy()

    def render_text(self, env_index=0) -> str:
        """The grid of one env as text: agent digits (index mod 10), 'p' prey, '.' empty."""
        h, w = self.shape
        rows = [["."] * w for _ in range(h)]
        for j in np.flatnonzero(self.agent_alive[env_index]):
            r, c = self.agent_pos[env_index, j]
            rows[r][c] = str(j % 10)
        for j in np.flatnonzero(self.prey_alive[env_index]):
            r, c = self.prey_pos[env_index, j]
            rows[r][c] = "p"
        return "\n".join("".join(row) for row in rows)

    # ---- internals ----------------------------------------------------------------------------
    def _shift(self, pos, delta):
        """Cells ``pos + delta`` (wrapped when toroidal, else clipped for safe indexing) and
        whether each lies on the grid."""
        target = pos + delta
        if self.toroidal:
            return target % self.shape, np.ones(target.shape[:-1], dtype=bool)
        inside = ((target >= 0) & (target < self.shape)).all(axis=-1)
        return np.clip(target, 0, self.shape - 1), inside

    def _adjacent(self, a, b):
        """4-neighbourhood test between positions ``a`` and ``b`` (broadcast), wrapping when toroidal."""
        d = np.abs(a - b)
        if self.toroidal:
            d = np.minimum(d, self.shape - d)
        return d.sum(axis=-1) == 1

    def _grid(self):
        e = self.n_envs
        h, w = self.shape
        grid = np.zeros((e, 2, h, w), dtype=np.float32)
        ea, aa = np.nonzero(self.agent_alive)
        grid[ea, 0, self.agent_pos[ea, aa, 0], self.agent_pos[ea, aa, 1]] = 1.0
        ep, pp = np.nonzero(self.prey_alive)
        grid[ep, 1, self.prey_pos[ep, pp, 0], self.prey_pos[ep, pp, 1]] = 1.0
        return grid

    def _rebuild_occupancy(self):
        self.occ[:] = EMPTY
        ea, aa = np.nonzero(self.agent_alive)
        self.occ[ea, self.agent_pos[ea, aa, 0], self.agent_pos[ea, aa, 1]] = AGENT
        ep, pp = np.nonzero(self.prey_alive)
        self.occ[ep, self.prey_pos[ep, pp, 0], self.prey_pos[ep, pp, 1]] = PREY


def make(env_args: dict, n_envs: int, seed: int) -> PredatorPrey:
    """The suite's entry point: validated env_args, run seed from the runner."""
    args = check_env_args(env_args)
    if seed is not None:
        args["seed"] = seed
    return PredatorPrey(n_envs, **args)
