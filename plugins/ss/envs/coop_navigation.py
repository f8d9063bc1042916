"""Cooperative navigation on a grid (paper 002, Section 5.1 and Fig. 7a; after Zhang et al. 2018b).

Rules (the paper gives the grid, the agent count, the horizon, "proximity" rewards, -1 per
collision and adjacency-limited communication; the rest is ours, as env_args):
* A size x size grid (5), N agents (3), one landmark per agent; agents and landmarks are placed
  at random distinct cells at reset (landmarks may share cells with agents).
* Actions: 0 stay, 1 up, 2 down, 3 left, 4 right; moves off the grid do nothing. Agents move
  simultaneously and may end in the same cell (that is the collision).
* Reward of agent i per step: -d_i / (2 (size - 1)) (Manhattan distance to its own landmark,
  normalised to [-1, 0]: "proximity") plus collision_reward (-1) for every other agent in its cell.
* 100 steps. State (seen by every agent): all agents' and landmarks' (row, col) / (size - 1).
* Neighbours: adjacent agents, Manhattan distance <= 1 (the same cell included).
"""
from __future__ import annotations

import numpy as np

from marlkit.errors import SuiteError
from marlkit.params import Param

from .common import IndividualRewardEnv
from .grid import MOVES, random_cells

KEY = "coop_navigation"
PARAMS = {
    "n_agents": Param(int, 3, low=1, doc="agents (one landmark each)"),
    "size": Param(int, 5, low=2, doc="grid side"),
    "episode_limit": Param(int, 100, low=1, doc="steps per episode"),
    "collision_reward": Param(float, -1.0, doc="reward per other agent sharing the cell"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


class CoopNavigation(IndividualRewardEnv):
    n_actions = 5
    state_keys = ("pos", "landmarks", "t", "returns", "collisions")

    def __init__(self, n_envs, n_agents=3, size=5, episode_limit=100, collision_reward=-1.0, seed=None):
        if n_agents > size * size:
            raise SuiteError(f"coop_navigation: {n_agents} agents do not fit on a {size}x{size} grid; "
                             f"lower env_args.n_agents or raise env_args.size")
        super().__init__(n_envs, n_agents, episode_limit, seed)
        self.size, self.collision_reward = int(size), float(collision_reward)
        self.cells = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2)
        self.pos = np.zeros((self.n_envs, self.n_agents, 2), dtype=np.int64)
        self.landmarks = np.zeros_like(self.pos)
        self.collisions = np.zeros(self.n_envs)

    def _reset(self):
        self.pos = random_cells(self.rng, self.n_envs, self.n_agents, self.cells)
        self.landmarks = random_cells(self.rng, self.n_envs, self.n_agents, self.cells)
        self.collisions[:] = 0

    def _step(self, actions, active):
        moved = np.clip(self.pos + MOVES[actions], 0, self.size - 1)
        self.pos = np.where(active[:, None, None], moved, self.pos)
        distance = np.abs(self.pos - self.landmarks).sum(-1)
        same = (self.pos[:, :, None, :] == self.pos[:, None, :, :]).all(-1).sum(-1) - 1  # others in my cell
        self.collisions += np.where(active, same.sum(1) / 2, 0)
        return -distance / (2.0 * (self.size - 1)) + self.collision_reward * same

    def _extra_infos(self, e):
        return {"collisions": float(self.collisions[e]),
                "on_landmark": float((self.pos[e] == self.landmarks[e]).all(-1).mean())}

    def get_state(self):
        both = np.concatenate([self.pos, self.landmarks], 1).reshape(self.n_envs, -1)
        return (both / (self.size - 1)).astype(np.float32)

    def get_obs(self):
        return np.repeat(self.get_state()[:, None, :], self.n_agents, 1)

    def positions(self):
        return self.pos / (self.size - 1)

    def neighbours(self):
        d = np.abs(self.pos[:, :, None, :] - self.pos[:, None, :, :]).sum(-1)
        return (d <= 1) & ~np.eye(self.n_agents, dtype=bool)


ENV = CoopNavigation
