"""Shared skeleton of the RGMComm tasks: batched numpy envs with partial observations.

Every task here defines each agent's *local* observation. The state is the concatenation of the
local observations of all agents in agent order (so the centralized critic sees everything, and
agent j's part of the state is the slice ``[j*d, (j+1)*d)``, which the Q-vector sampler of
RGMComm swaps between samples). ``observe_all=True`` gives every agent the full observation
(own local observation first, then the others' in agent order): the ideal policy pi* of the paper.
Episodes end at ``episode_limit`` as a truncation (``info["episode_limit"] = True``).
"""
from __future__ import annotations

import numpy as np

from marlkit.envs.base import VecEnv


class LocalObsVecEnv(VecEnv):
    """Subclasses set n_agents, n_actions, local_dim, episode_limit and implement
    ``_reset(idx)``, ``_step(actions, idx) -> (rewards, done, info_arrays)`` and ``_local_obs()``."""

    n_agents: int
    n_actions: int
    local_dim: int
    episode_limit: int

    def __init__(self, n_envs: int, seed: int, observe_all: bool):
        self.n_envs = n_envs
        self.observe_all = observe_all
        self.rng = np.random.default_rng(seed)
        self._t = np.zeros(n_envs, dtype=np.int64)

    # ---- VecEnv ----------------------------------------------------------------------
    def get_env_info(self):
        obs_dim = self.local_dim * (self.n_agents if self.observe_all else 1)
        return {"state_shape": self.local_dim * self.n_agents, "obs_shape": obs_dim,
                "n_actions": self.n_actions, "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def reset(self):
        self._t[:] = 0
        self._reset(np.arange(self.n_envs))

    def step(self, actions, active):
        idx = np.flatnonzero(active)
        rewards = np.zeros(self.n_envs, dtype=np.float32)
        terminated = np.zeros(self.n_envs, dtype=bool)
        infos = [{} for _ in range(self.n_envs)]
        if len(idx) == 0:
            return rewards, terminated, infos
        r, done, extra = self._step(np.asarray(actions)[idx], idx)
        self._t[idx] += 1
        limit = self._t[idx] >= self.episode_limit
        rewards[idx], terminated[idx] = r, done | limit
        for k, i in enumerate(idx):
            info = {key: float(v[k]) for key, v in extra.items()}
            info["episode_limit"] = bool(limit[k] and not done[k])
            infos[i] = info
        return rewards, terminated, infos

    def get_obs(self):
        local = self._local_obs()  # [E, n, d]
        if not self.observe_all:
            return local.astype(np.float32)
        n = self.n_agents
        order = np.array([[i] + [j for j in range(n) if j != i] for i in range(n)])  # own first
        return local[:, order].reshape(self.n_envs, n, -1).astype(np.float32)

    def get_state(self):
        return self._local_obs().reshape(self.n_envs, -1).astype(np.float32)

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
