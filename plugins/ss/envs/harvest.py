"""Harvest (paper 002, Section 5.1): the commons dilemma of the sequential social dilemma games,
at the paper's 7 x 38 size with 100-step episodes.

Layout: apple patches, diamonds of L1 radius ``patch_radius`` (2) centred on the middle row every
``patch_spacing`` (6) columns; all patch cells hold an apple at reset; agents spawn on random cells
outside the patches.
Rules, per step: moves, then eating (+1, the only reward), then regrowth: every empty patch cell
without an agent grows an apple with probability p[k], k = apples within L1 distance
``regrowth_radius`` (2) of it, p = [0, 0.005, 0.02, 0.05] for k = 0, 1, 2, >= 3 (the SSD rates):
an over-harvested patch never comes back. An agent that had an apple within reach (L1 <= 1) before
moving and ate none this step "cooperated" (abstained; IMR's signal).
"""
from __future__ import annotations

import numpy as np

from marlkit.errors import SuiteError
from marlkit.params import Param

from .dilemma import GridDilemma

KEY = "harvest"
PARAMS = {
    "n_agents": Param(int, 5, low=1, doc="agents"),
    "height": Param(int, 7, low=1, doc="grid rows"),
    "width": Param(int, 38, low=1, doc="grid columns"),
    "patch_radius": Param(int, 2, low=0, doc="L1 radius of an apple patch"),
    "patch_spacing": Param(int, 6, low=1, doc="columns between patch centres"),
    "regrowth_radius": Param(int, 2, low=1, doc="L1 radius in which apples count for regrowth"),
    "regrowth_probs": Param(list, [0.0, 0.005, 0.02, 0.05], doc="growth chance for 0, 1, 2, >=3 apples nearby"),
    "episode_limit": Param(int, 100, low=1, doc="steps per episode"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


class Harvest(GridDilemma):
    def __init__(self, n_envs, n_agents=5, height=7, width=38, patch_radius=2, patch_spacing=6, regrowth_radius=2,
                 regrowth_probs=(0.0, 0.005, 0.02, 0.05), episode_limit=100, seed=None):
        probs = np.asarray(regrowth_probs, dtype=float)
        if probs.ndim != 1 or len(probs) < 1 or ((probs < 0) | (probs > 1)).any():
            raise SuiteError(f"harvest: regrowth_probs must be a list of probabilities, got {regrowth_probs!r}")
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        patch = np.zeros((height, width), dtype=bool)
        for c in range(patch_spacing // 2, width, patch_spacing):
            patch |= np.abs(rows - height // 2) + np.abs(cols - c) <= patch_radius
        free = np.stack([rows[~patch], cols[~patch]], -1)
        super().__init__(n_envs, n_agents, height, width, episode_limit, seed, free)
        self.patch = patch
        spots = np.argwhere(patch)
        d = np.abs(spots[:, None, :] - spots[None, :, :]).sum(-1)
        self.spot_rows, self.spot_cols = spots[:, 0], spots[:, 1]
        self.spot_near = ((d <= regrowth_radius) & (d > 0)).astype(np.float64)  # [S, S]
        self.probs = probs

    def _reset_maps(self):
        self.apples[:] = self.patch

    def _step(self, actions, active):
        before = self.pos.copy()
        rows, cols = np.arange(self.shape[0]), np.arange(self.shape[1])
        reach = (np.abs(rows[None, None, :, None] - before[..., 0, None, None])
                 + np.abs(cols[None, None, None, :] - before[..., 1, None, None])) <= 1
        tempted = (reach & self.apples[:, None]).any((2, 3))
        rewards = self._move_and_eat(actions, active)
        self.cooperated = (tempted & (rewards == 0) & active[:, None]).astype(np.float32)
        at_spots = self.apples[:, self.spot_rows, self.spot_cols]  # [n_envs, S]
        k = (at_spots @ self.spot_near).astype(np.int64)
        p = self.probs[np.minimum(k, len(self.probs) - 1)]
        empty = ~at_spots & ~self.occupied()[:, self.spot_rows, self.spot_cols] & active[:, None]
        grow = empty & (self.rng.random(p.shape) < p)
        self.apples[:, self.spot_rows, self.spot_cols] |= grow
        return rewards


ENV = Harvest
