"""Base of the two sequential social dilemmas (Cleanup, Harvest): agents walking on a grid and
eating apples (+1 each, the only reward), batched over envs.

Shared rules: actions 0 stay, 1 up, 2 down, 3 left, 4 right (Cleanup adds 5 = clean); agents move
one at a time in a random order and a move into another agent or off the grid fails; an agent on
an apple eats it. State (seen by every agent, the MMDP of Section 3): the apple map, the task's
extra maps (Cleanup: waste), the agent occupancy map and every agent's (row, col) normalised.
Neighbours: everyone (the paper does not define a graph for these tasks; use the protocols).
"""
from __future__ import annotations

import numpy as np

from marlkit.errors import SuiteError

from .common import IndividualRewardEnv
from .grid import move_blocked, random_cells


class GridDilemma(IndividualRewardEnv):
    n_actions = 5
    extras = ("neighbours", "positions", "cooperated")
    state_keys = ("pos", "apples", "t", "returns", "cooperated", "eaten")

    def __init__(self, n_envs, n_agents, height, width, episode_limit, seed, spawn_cells):
        if n_agents > len(spawn_cells):
            raise SuiteError(f"{type(self).__name__.lower()}: {n_agents} agents do not fit in the "
                             f"{len(spawn_cells)} spawn cells; lower env_args.n_agents")
        super().__init__(n_envs, n_agents, episode_limit, seed)
        self.shape = (int(height), int(width))
        self.spawn_cells = spawn_cells
        self.apples = np.zeros((self.n_envs, *self.shape), dtype=bool)
        self.pos = np.zeros((self.n_envs, self.n_agents, 2), dtype=np.int64)
        self.eaten = np.zeros(self.n_envs)
        self.envs = np.arange(self.n_envs)

    def _reset(self):
        self.pos = random_cells(self.rng, self.n_envs, self.n_agents, self.spawn_cells)
        self.eaten[:] = 0
        self._reset_maps()

    def _move_and_eat(self, actions, active):
        """Moves (actions >= 5 stay), then eating; returns the +1 apple rewards [n_envs, n]."""
        walk = np.where(actions < 5, actions, 0)
        self.pos = move_blocked(self.rng, self.pos, walk, active, self.shape)
        rows, cols = self.pos[..., 0], self.pos[..., 1]
        ate = self.apples[self.envs[:, None], rows, cols] & active[:, None]
        self.apples[self.envs[:, None], rows, cols] &= ~ate
        self.eaten += ate.sum(1)
        return ate.astype(np.float64)

    def occupied(self):
        occ = np.zeros((self.n_envs, *self.shape), dtype=bool)
        occ[self.envs[:, None], self.pos[..., 0], self.pos[..., 1]] = True
        return occ

    def maps(self):
        """The task's grid channels other than agents, [n_envs, channels, H, W]."""
        return self.apples[:, None]

    def get_state(self):
        grid = np.concatenate([self.maps(), self.occupied()[:, None]], 1).reshape(self.n_envs, -1)
        return np.concatenate([grid, self.positions().reshape(self.n_envs, -1)], 1).astype(np.float32)

    def get_obs(self):
        return np.repeat(self.get_state()[:, None, :], self.n_agents, 1)

    def positions(self):
        return self.pos / (np.array(self.shape) - 1).clip(min=1)

    def _extra_infos(self, e):
        return {"apples_eaten": float(self.eaten[e]), "apples_left": float(self.apples[e].sum())}

