"""Cooperative predation (paper 002, Section 5.1 and Fig. 7b): an N-agent sequential prisoner's dilemma.

Rules:
* Prey at x_tar and N predators at x_i, drawn uniformly in [0, size] (size 30) at reset; the prey
  does not move. Actions: 0 = left (-1), 1 = right (+1), one unit per step, positions clipped to
  [0, size].
* Agent i cooperates ("approaches the prey") when it moves towards the prey: right if
  x_tar >= x_i, else left. Per-step rewards (Section 5.1): everyone approaches: -1 each; nobody:
  -2N + 1 each; otherwise approachers -2N and the others 0. Defecting is dominant for each agent,
  everyone cooperating is collectively optimal.
* 30 steps, no early end. State s = [x_1 - x_tar, ..., x_N - x_tar] / size (the paper's state,
  divided by the size for the networks); every agent observes s.
* Neighbours: agents within normalised distance |x_i - x_j| / size <= neighbour_distance (0.1).
* Episode-end infos: ``collective_return``, ``return_agent<i>``, ``coop_rate`` (share of
  cooperative actions) and, for N = 2, ``cc_rate``, ``cd_rate``, ``dd_rate`` (shares of steps
  where both, one, none approached; paper Fig. 3).
"""
from __future__ import annotations

import numpy as np

from marlkit.params import Param

from .common import IndividualRewardEnv

KEY = "coop_predation"
PARAMS = {
    "n_agents": Param(int, 8, low=2, doc="predators (paper: 8 in the main runs, 2 in Fig. 3)"),
    "size": Param(float, 30.0, low=1.0, doc="positions live in [0, size]"),
    "step_size": Param(float, 1.0, low=0.0, doc="distance moved per step"),
    "episode_limit": Param(int, 30, low=1, doc="steps per episode"),
    "neighbour_distance": Param(float, 0.1, low=0.0, high=1.0, doc="normalised distance of the env's neighbour graph"),
    "time_in_state": Param(bool, False, doc="append t / episode_limit to the state (not in the paper's state)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


def payoff(coop: np.ndarray) -> np.ndarray:
    """Section 5.1's reward table: coop [..., N] bool -> rewards [..., N]."""
    n = coop.shape[-1]
    k = coop.sum(-1, keepdims=True)
    mixed = np.where(coop, -2.0 * n, 0.0)
    return np.where(k == n, -1.0, np.where(k == 0, -2.0 * n + 1.0, mixed))


class CoopPredation(IndividualRewardEnv):
    n_actions = 2
    extras = ("neighbours", "positions", "coop_action", "cooperated")
    state_keys = ("x", "prey", "t", "returns", "cooperated", "coop_steps", "coop_actions")

    def __init__(self, n_envs, n_agents=8, size=30.0, step_size=1.0, episode_limit=30, neighbour_distance=0.1,
                 time_in_state=False, seed=None):
        super().__init__(n_envs, n_agents, episode_limit, seed)
        self.size, self.step_size, self.neighbour_distance = float(size), float(step_size), float(neighbour_distance)
        self.time_in_state = bool(time_in_state)
        self.x = np.zeros((self.n_envs, self.n_agents))
        self.prey = np.zeros((self.n_envs, 1))
        self.coop_steps = np.zeros((self.n_envs, 3))  # C-C, C-D, D-D step counts (N = 2 only)
        self.coop_actions = np.zeros(self.n_envs)

    def _reset(self):
        self.x = self.rng.uniform(0.0, self.size, (self.n_envs, self.n_agents))
        self.prey = self.rng.uniform(0.0, self.size, (self.n_envs, 1))
        self.coop_steps[:] = 0
        self.coop_actions[:] = 0

    def coop_action(self):
        """The approaching action per agent: 1 (right) if the prey is at or right of it, else 0."""
        return (self.prey >= self.x).astype(np.int64)

    def _step(self, actions, active):
        coop = actions == self.coop_action()
        rewards = payoff(coop)
        move = np.where(actions == 1, 1.0, -1.0) * self.step_size
        self.x = np.where(active[:, None], np.clip(self.x + move, 0.0, self.size), self.x)
        self.cooperated = np.where(active[:, None], coop, False).astype(np.float32)
        k = coop.sum(1)
        if self.n_agents == 2:
            self.coop_steps[np.flatnonzero(active), 2 - k[active]] += 1  # column 0: C-C, 1: C-D, 2: D-D
        self.coop_actions += np.where(active, k, 0)
        return rewards

    def _extra_infos(self, e):
        steps = max(int(self.t[e]), 1)
        info = {"coop_rate": float(self.coop_actions[e]) / (steps * self.n_agents)}
        if self.n_agents == 2:
            info.update(cc_rate=self.coop_steps[e, 0] / steps, cd_rate=self.coop_steps[e, 1] / steps,
                        dd_rate=self.coop_steps[e, 2] / steps)
        return info

    def get_state(self):
        s = (self.x - self.prey) / self.size
        if self.time_in_state:
            s = np.concatenate([s, (self.t / self.episode_limit)[:, None]], 1)
        return s.astype(np.float32)

    def get_obs(self):
        s = self.get_state()
        return np.repeat(s[:, None, :], self.n_agents, 1)

    def positions(self):
        return (self.x / self.size)[..., None]

    def neighbours(self):
        p = self.x / self.size
        close = np.abs(p[:, :, None] - p[:, None, :]) <= self.neighbour_distance
        return close & ~np.eye(self.n_agents, dtype=bool)


ENV = CoopPredation
