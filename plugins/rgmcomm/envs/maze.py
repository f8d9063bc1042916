"""``maze``: the 4x4 two-agent maze of the RGMComm paper (Appendix E.1, Fig. 9c; message study of
Section 5.4).

Cells are (row, col) with 1 <= row, col <= 4; (1, 1) is the upper-left corner. Landmark 1 (high
reward ``r_high``) is at (1, 1), landmark 2 (low reward ``r_low``) at (3, 3). Both agents start on
independent uniformly random cells and observe only their own position (one-hot of the 16 cells).
Actions: 0 stay, 1 up, 2 down, 3 left, 4 right (moves off the grid leave the agent in place).
No collisions, no movement cost. After every step, if both agents stand on the same landmark the
episode ends with that landmark's reward; otherwise the reward is 0. The game stops after
``episode_limit`` = 3 steps (a time limit, so it is a truncation).

The paper gives no reward values; defaults r_high = 1.0, r_low = 0.7 (an option each): with
them the best policy without messages sends both agents to the low landmark (about 0.62 per
episode), while with a 1-bit message they meet on the high one whenever both can reach it
(about 0.78), so the high-landmark rate shows whether messages are used.
Infos: ``high`` (1 if the episode ended on landmark 1), ``low`` (likewise landmark 2).
"""
from __future__ import annotations

import numpy as np

from marlkit.errors import SuiteError
from marlkit.params import Param

from .base import LocalObsVecEnv

SIZE = 4
HIGH, LOW = (0, 0), (2, 2)  # 0-based (row, col) of (1, 1) and (3, 3)
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # stay, up, down, left, right
ACTION_NAMES = ("stay", "up", "down", "left", "right")

PARAMS = {
    "r_high": Param(float, 1.0, doc="reward when both agents stand on landmark 1 at (1,1)"),
    "r_low": Param(float, 0.7, doc="reward when both agents stand on landmark 2 at (3,3)"),
    "episode_limit": Param(int, 3, low=1, doc="steps per episode (paper: 3)"),
    "observe_all": Param(bool, False, doc="each agent also sees the other's position (ideal policy pi*)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


class Maze(LocalObsVecEnv):
    n_agents, n_actions = 2, len(MOVES)
    local_dim = SIZE * SIZE

    def __init__(self, n_envs, seed, r_high=1.0, r_low=0.7, episode_limit=3, observe_all=False):
        if r_high <= r_low:
            raise SuiteError(f"maze: env_args.r_high={r_high} must exceed env_args.r_low={r_low} "
                             "(landmark 1 is the high-reward one)")
        super().__init__(n_envs, seed, observe_all)
        self.r_high, self.r_low, self.episode_limit = r_high, r_low, episode_limit
        self.pos = np.zeros((n_envs, 2, 2), dtype=np.int64)

    def _reset(self, idx):
        self.pos[idx] = self.rng.integers(0, SIZE, (len(idx), 2, 2))

    def _step(self, actions, idx):
        self.pos[idx] = np.clip(self.pos[idx] + MOVES[actions], 0, SIZE - 1)
        p = self.pos[idx]
        on_high = (p == HIGH).all(-1).all(-1)
        on_low = (p == LOW).all(-1).all(-1)
        reward = np.where(on_high, self.r_high, np.where(on_low, self.r_low, 0.0))
        return reward, on_high | on_low, {"high": on_high, "low": on_low}

    def cells(self):
        """Cell index row * 4 + col of each agent: [n_envs, 2]."""
        return self.pos[..., 0] * SIZE + self.pos[..., 1]

    def _local_obs(self):
        obs = np.zeros((self.n_envs, 2, self.local_dim))
        e = np.arange(self.n_envs)[:, None]
        obs[e, np.arange(2)[None], self.cells()] = 1.0
        return obs


def make(env_args, n_envs, seed):
    args = {k: v for k, v in env_args.items() if k != "seed"}
    return Maze(n_envs, seed, **args)
