"""Predator-prey with miscapture punishment (Boehmer et al. 2020), the ReMIX benchmark task.

A batched numpy ``VecEnv``: every array is indexed [env, ...] and one ``step`` call advances all
``n_envs`` episodes: loops run over the k-th agent / k-th prey of each env's random order, and
every iteration is a whole-batch array operation.

Rules (defaults: 8 agents, 8 prey, 10x10 grid, 5x5 view, 200 steps; sources in brackets: [paper]
= ReMIX paper 001, Section 5.1 and Appendix D.1; [ref] = the facts of Boehmer et al.'s public
``stag_hunt`` env as configured by pymarl2's ``stag_hunt.yaml`` (ReMIX says it builds on pymarl2);
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

from marlkit.envs.base import VecEnv
from marlkit.errors import SuiteError
from marlkit.params import Param
from marlkit.params import check_env_args as check_schema

ACTIONS = ("right", "down", "left", "up", "stay", "catch")
STAY, CATCH = 4, 5
# (d_row, d_col) of actions 0-3 (right, down, left, up)
MOVES = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)
EMPTY, AGENT, PREY, WALL = 0, 1, 2, 3  # occupancy codes; WALL only in the off-grid sentinel cell

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
    args = check_schema("predator_prey", dict(env_args or {}), PARAMS)
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
    """n_envs predator-prey episodes stepped together (see the module docstring for the rules).

    Positions are kept as flat cell indices (row * width + col). Cell ``n_cells`` is an off-grid
    sentinel that is always "occupied" (WALL) and always empty in observations, so the neighbour
    table ``neighbours[cell, move]`` and the view table ``windows[cell]`` need no bounds checks.
    """

    def __init__(self, n_envs, n_agents=8, n_prey=8, grid_height=10, grid_width=10, toroidal=False,
                 view_radius=2, episode_limit=200, capture_reward=10.0, miscapture_punishment=0.0,
                 agents_needed=2, step_reward=0.0, p_prey_rest=0.0, mask_occupied_moves=False, seed=None):
        if n_envs < 1:
            raise SuiteError(f"predator_prey needs n_envs >= 1, got {n_envs}")
        self.n_envs, self.n_agents, self.n_prey = int(n_envs), int(n_agents), int(n_prey)
        self.height, self.width = int(grid_height), int(grid_width)
        self.n_cells = self.height * self.width
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
        self.neighbours = self._cell_table(MOVES)  # [n_cells + 1, 4]
        r = self.view_radius
        offsets = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij"), -1)
        self.windows = self._cell_table(offsets.reshape(-1, 2))  # [n_cells + 1, view * view]
        e, n, p = self.n_envs, self.n_agents, self.n_prey
        self._envs = np.arange(e)
        self.agent_cell = np.zeros((e, n), dtype=np.int64)
        self.agent_alive = np.zeros((e, n), dtype=bool)  # False once removed by a capture
        self.prey_cell = np.zeros((e, p), dtype=np.int64)
        self.prey_alive = np.zeros((e, p), dtype=bool)
        self.occ = np.zeros((e, self.n_cells + 1), dtype=np.int8)  # EMPTY / AGENT / PREY; last = WALL
        self.t = np.zeros(e, dtype=np.int64)
        self.prey_caught = np.zeros(e, dtype=np.int64)
        self.miscaptures = np.zeros(e, dtype=np.int64)
        self.done = np.ones(e, dtype=bool)
        self._started = False

    # ---- VecEnv -------------------------------------------------------------------------------
    def get_env_info(self):
        return {"state_shape": 2 * self.n_cells, "obs_shape": 2 * self.view * self.view,
                "n_actions": len(ACTIONS), "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def reset(self):
        n = self.n_agents
        cells = self.rng.random((self.n_envs, self.n_cells)).argsort(axis=1)[:, : n + self.n_prey]
        self.agent_cell[:] = cells[:, :n]  # distinct uniformly random cells per env
        self.prey_cell[:] = cells[:, n:]
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
        envs, occ = self._envs, self.occ
        reward = np.where(active, self.step_reward, 0.0)

        # (1) Agents move one by one in a random order; blocked moves leave them in place.
        is_move = (actions >= 0) & (actions < 4)
        wants = active[:, None] & self.agent_alive & is_move
        if wants.any():
            move = np.where(is_move, actions, 0)
            for k in range(n):
                a = agent_order[:, k]
                src = self.agent_cell[envs, a]
                dst = self.neighbours[src, move[envs, a]]
                ok = wants[envs, a] & (occ[envs, dst] == EMPTY)
                ei = envs[ok]
                occ[ei, src[ok]] = EMPTY
                occ[ei, dst[ok]] = AGENT
                self.agent_cell[ei, a[ok]] = dst[ok]

        # (2) Prey one by one in a random order: capture test, else a random move. Agents no longer
        # move and each prey is still at its start-of-step cell at its turn, so neighbourhoods and
        # catching neighbours are computed once; agent_alive is re-read at every prey's turn.
        around_all = self.neighbours[self.prey_cell]  # [e, p, 4]
        catching = (actions == CATCH) & self.agent_alive & active[:, None]
        any_catch = catching.any()
        if any_catch:
            near = (self.agent_cell[:, None, :, None] == around_all[:, :, None, :]).any(axis=3)
            near &= catching[:, None, :]  # [e, p, n]
        for k in range(p):
            q = prey_order[:, k]
            live = active & self.prey_alive[envs, q]
            if not live.any():
                continue
            pc = self.prey_cell[envs, q]
            around = around_all[envs, q]  # [e, 4]
            caught = np.zeros(e, dtype=bool)
            if any_catch:
                catchers = near[envs, q] & self.agent_alive & live[:, None]
                count = catchers.sum(axis=1)
                caught = count >= self.agents_needed
                missed = (count > 0) & ~caught
                reward += caught * self.capture_reward + missed * self.miscapture_punishment
                self.prey_caught += caught
                self.miscaptures += missed
                if caught.any():
                    self.prey_alive[envs[caught], q[caught]] = False
                    occ[envs[caught], pc[caught]] = EMPTY
                    re, ra = np.nonzero(catchers & caught[:, None])
                    self.agent_alive[re, ra] = False
                    occ[re, self.agent_cell[re, ra]] = EMPTY
            # The prey that are still there move to a random free neighbouring cell.
            free = occ[envs[:, None], around] == EMPTY  # [e, 4]
            n_free = free.sum(axis=1)
            go = live & ~caught & (n_free > 0) & (rest_draw[envs, q] >= self.p_prey_rest)
            if go.any():
                pick = np.minimum((move_draw[envs, q] * n_free).astype(np.int64), np.maximum(n_free - 1, 0))
                direction = (np.cumsum(free, axis=1) > pick[:, None]).argmax(axis=1)  # pick-th free one
                ei, dst = envs[go], around[go, direction[go]]
                occ[ei, pc[go]] = EMPTY
                occ[ei, dst] = PREY
                self.prey_cell[ei, q[go]] = dst

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
        grid = self._grid()  # [e, 2, n_cells + 1], sentinel cell empty
        cells = self.windows[self.agent_cell]  # [e, n, v * v]
        obs = grid[self._envs[:, None, None], :, cells]  # [e, n, v * v, 2]
        obs = obs.transpose(0, 1, 3, 2).reshape(self.n_envs, self.n_agents, -1)
        return obs * self.agent_alive[..., None]

    def get_state(self):
        return self._grid()[:, :, : self.n_cells].reshape(self.n_envs, -1)

    def get_avail_actions(self):
        avail = np.zeros((self.n_envs, self.n_agents, len(ACTIONS)), dtype=np.float32)
        around = self.neighbours[self.agent_cell]  # [e, n, 4]
        codes = self.occ[self._envs[:, None, None], around]
        moves = codes == EMPTY if self.mask_occupied_moves else codes != WALL
        alive = self.agent_alive
        avail[..., :4] = moves & alive[..., None]
        avail[..., STAY] = 1.0
        avail[..., CATCH] = (codes == PREY).any(axis=-1) & alive
        return avail

    def state_dict(self):
        """Everything needed to continue the same stream of episodes (RNG and the running episodes)."""
        state = {name: getattr(self, name).copy() for name in self._ARRAYS}
        state.update(rng=self.rng.bit_generator.state, started=self._started)
        return state

    def load_state_dict(self, state):
        for name in self._ARRAYS:
            getattr(self, name)[...] = state[name]
        self.rng.bit_generator.state = state["rng"]
        self._started = bool(state["started"])

    _ARRAYS = ("agent_cell", "agent_alive", "prey_cell", "prey_alive", "occ", "t", "prey_caught",
               "miscaptures", "done")

    # ---- positions, tests and debugging -------------------------------------------------------
    @property
    def agent_pos(self):
        """[n_envs, n_agents, 2] (row, col) of every agent (a removed agent keeps its last cell)."""
        return np.stack(np.divmod(self.agent_cell, self.width), axis=-1)

    @property
    def prey_pos(self):
        """[n_envs, n_prey, 2] (row, col) of every prey (a caught prey keeps its last cell)."""
        return np.stack(np.divmod(self.prey_cell, self.width), axis=-1)

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
        for kind, entries, cells, alive in (("agent", agents, self.agent_cell, self.agent_alive),
                                            ("prey", prey, self.prey_cell, self.prey_alive)):
            for j, pos in enumerate(entries):
                if pos is None:
                    alive[env_index, j] = False
                    continue
                row, col = int(pos[0]), int(pos[1])
                if not (0 <= row < self.height and 0 <= col < self.width):
                    raise ValueError(f"{kind} {j} at {(row, col)} is off the {self.height}x{self.width} grid")
                if (row, col) in taken:
                    raise ValueError(f"{kind} {j} at {(row, col)}: cell already occupied")
                taken.add((row, col))
                cells[env_index, j] = row * self.width + col
                alive[env_index, j] = True
        self.done[env_index] = False
        self._rebuild_occupancy()

    def render_text(self, env_index=0) -> str:
        """The grid of one env as text: agent digits (index mod 10), 'p' prey, '.' empty."""
        chars = ["."] * self.n_cells
        for j in np.flatnonzero(self.agent_alive[env_index]):
            chars[self.agent_cell[env_index, j]] = str(j % 10)
        for j in np.flatnonzero(self.prey_alive[env_index]):
            chars[self.prey_cell[env_index, j]] = "p"
        return "\n".join("".join(chars[r * self.width:(r + 1) * self.width]) for r in range(self.height))

    # ---- internals ----------------------------------------------------------------------------
    def _cell_table(self, offsets):
        """[n_cells + 1, len(offsets)]: the cell at each (d_row, d_col) offset from every cell,
        wrapped when toroidal, else the sentinel ``n_cells`` when off the grid (the sentinel row
        maps to the sentinel)."""
        rows, cols = np.divmod(np.arange(self.n_cells), self.width)
        r = rows[:, None] + offsets[None, :, 0]
        c = cols[:, None] + offsets[None, :, 1]
        if self.toroidal:
            table = (r % self.height) * self.width + c % self.width
        else:
            inside = (r >= 0) & (r < self.height) & (c >= 0) & (c < self.width)
            table = np.where(inside, r * self.width + c, self.n_cells)
        sentinel = np.full((1, len(offsets)), self.n_cells)
        return np.concatenate([table, sentinel]).astype(np.int64)

    def _grid(self):
        grid = np.zeros((self.n_envs, 2, self.n_cells + 1), dtype=np.float32)
        ea, aa = np.nonzero(self.agent_alive)
        grid[ea, 0, self.agent_cell[ea, aa]] = 1.0
        ep, pp = np.nonzero(self.prey_alive)
        grid[ep, 1, self.prey_cell[ep, pp]] = 1.0
        return grid

    def _rebuild_occupancy(self):
        self.occ[:] = EMPTY
        self.occ[:, self.n_cells] = WALL
        ea, aa = np.nonzero(self.agent_alive)
        self.occ[ea, self.agent_cell[ea, aa]] = AGENT
        ep, pp = np.nonzero(self.prey_alive)
        self.occ[ep, self.prey_cell[ep, pp]] = PREY


def make(env_args: dict, n_envs: int, seed: int) -> PredatorPrey:
    """The suite's entry point: validated env_args, run seed from the runner."""
    args = check_env_args(env_args)
    if seed is not None:
        args["seed"] = seed
    return PredatorPrey(n_envs, **args)
