"""Cleanup (paper 002, Section 5.1): the public-goods dilemma of the sequential social dilemma
games, at the paper's 11 x 18 size with 100-step episodes.

Layout: a river in the leftmost ``river_width`` columns (where waste builds up), an orchard in the
rightmost ``orchard_width`` columns (where apples grow), agents spawning in between.
Rules, per step, in this order:
1. Moves (shared grid rules, dilemma.py); an agent on an apple eats it (+1).
2. Cleaning: action 5 removes all waste within Chebyshev distance ``clean_radius`` of the agent
   (an orientation-free stand-in for the cleaning beam). Cleaning gives no reward and costs
   nothing (paper Section 5.1); an agent that removed waste this step "cooperated" (IMR's signal).
3. Spawning (the SSD rules): waste density w = waste cells / river cells. If w >= depletion
   threshold (0.4): no apples and no new waste. Otherwise one random river cell receives waste
   with probability ``waste_spawn_prob`` (0.5), and every empty, unoccupied orchard cell grows an
   apple with probability apple_respawn_prob * (1 - (w - restoration) / (depletion -
   restoration)) clipped to [0, apple_respawn_prob] (restoration threshold 0).
At reset the river holds waste at density ``initial_waste`` (random cells) and the orchard is empty.
The size-dependent constants of Christoffersen et al. (2023) are not in the paper; these are the
SSD defaults, as env_args.
"""
from __future__ import annotations

import numpy as np

from marlkit.errors import SuiteError
from marlkit.params import Param

from .dilemma import GridDilemma

KEY = "cleanup"
PARAMS = {
    "n_agents": Param(int, 5, low=1, doc="agents"),
    "height": Param(int, 11, low=3, doc="grid rows"),
    "width": Param(int, 18, low=5, doc="grid columns"),
    "river_width": Param(int, 3, low=1, doc="columns of river on the left"),
    "orchard_width": Param(int, 4, low=1, doc="columns of orchard on the right"),
    "episode_limit": Param(int, 100, low=1, doc="steps per episode"),
    "initial_waste": Param(float, 0.3, low=0.0, high=1.0, doc="waste density of the river at reset"),
    "waste_spawn_prob": Param(float, 0.5, low=0.0, high=1.0, doc="chance of one new waste cell per step"),
    "apple_respawn_prob": Param(float, 0.05, low=0.0, high=1.0, doc="apple growth chance per orchard cell at zero waste"),
    "depletion_threshold": Param(float, 0.4, low=0.0, high=1.0, doc="waste density that stops apples (and waste)"),
    "restoration_threshold": Param(float, 0.0, low=0.0, high=1.0, doc="waste density below which apples grow at full rate"),
    "clean_radius": Param(int, 2, low=0, doc="cleaning reach (Chebyshev distance)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


class Cleanup(GridDilemma):
    n_actions = 6
    state_keys = ("pos", "apples", "waste", "t", "returns", "cooperated", "eaten", "cleaned")

    def __init__(self, n_envs, n_agents=5, height=11, width=18, river_width=3, orchard_width=4, episode_limit=100,
                 initial_waste=0.3, waste_spawn_prob=0.5, apple_respawn_prob=0.05, depletion_threshold=0.4,
                 restoration_threshold=0.0, clean_radius=2, seed=None):
        if river_width + orchard_width >= width:
            raise SuiteError(f"cleanup: river_width + orchard_width = {river_width + orchard_width} leaves no "
                             f"room in width {width}; lower them or widen the grid")
        if restoration_threshold >= depletion_threshold:
            raise SuiteError("cleanup: restoration_threshold must be below depletion_threshold")
        rows, cols = np.meshgrid(np.arange(height), np.arange(river_width, width - orchard_width), indexing="ij")
        super().__init__(n_envs, n_agents, height, width, episode_limit, seed,
                         np.stack([rows.ravel(), cols.ravel()], -1))
        self.river = np.zeros((height, width), dtype=bool)
        self.river[:, :river_width] = True
        self.orchard = np.zeros((height, width), dtype=bool)
        self.orchard[:, width - orchard_width:] = True
        self.initial_waste, self.waste_spawn_prob = float(initial_waste), float(waste_spawn_prob)
        self.apple_respawn_prob, self.clean_radius = float(apple_respawn_prob), int(clean_radius)
        self.depletion, self.restoration = float(depletion_threshold), float(restoration_threshold)
        self.waste = np.zeros((self.n_envs, height, width), dtype=bool)
        self.cleaned = np.zeros(self.n_envs)

    def _reset_maps(self):
        self.apples[:] = False
        self.waste = (self.rng.random(self.waste.shape) < self.initial_waste) & self.river
        self.cleaned[:] = 0

    def waste_density(self):
        return self.waste.sum((1, 2)) / self.river.sum()

    def apple_prob(self, density):
        """SSD apple growth chance per empty orchard cell at waste density ``density`` [n_envs]."""
        scale = 1.0 - (density - self.restoration) / (self.depletion - self.restoration)
        return np.where(density >= self.depletion, 0.0, self.apple_respawn_prob * np.clip(scale, 0.0, 1.0))

    def _step(self, actions, active):
        rewards = self._move_and_eat(actions, active)
        # cleaning: every agent choosing 5 clears the waste around it
        rows, cols = np.arange(self.shape[0]), np.arange(self.shape[1])
        near = ((np.abs(rows[None, None, :, None] - self.pos[..., 0, None, None]) <= self.clean_radius)
                & (np.abs(cols[None, None, None, :] - self.pos[..., 1, None, None]) <= self.clean_radius))
        cleaning = near & ((actions == 5) & active[:, None])[..., None, None]  # [n_envs, n, H, W]
        removed = (cleaning & self.waste[:, None]).sum((2, 3))
        self.waste &= ~cleaning.any(1)
        self.cleaned += removed.sum(1)
        self.cooperated = (removed > 0).astype(np.float32)
        # spawning (frozen envs keep their maps)
        density = self.waste_density()
        p_apple = np.where(active, self.apple_prob(density), 0.0)
        grow = (self.rng.random(self.apples.shape) < p_apple[:, None, None]) & self.orchard & ~self.apples & ~self.occupied()
        self.apples |= grow
        spawn = active & (density < self.depletion) & (self.rng.random(self.n_envs) < self.waste_spawn_prob)
        river_cells = np.flatnonzero(self.river)
        pick = river_cells[self.rng.integers(len(river_cells), size=self.n_envs)]
        flat = self.waste.reshape(self.n_envs, -1)
        flat[self.envs[spawn], pick[spawn]] = True
        return rewards

    def maps(self):
        return np.stack([self.apples, self.waste], 1)

    def _extra_infos(self, e):
        return {**super()._extra_infos(e), "waste_cleaned": float(self.cleaned[e]),
                "waste_density": float(self.waste[e].sum() / self.river.sum())}


ENV = Cleanup
