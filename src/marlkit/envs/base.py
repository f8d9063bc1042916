"""The batched env interface the suite's runners step (docs/DESIGN.md sections 4-5).

A ``VecEnv`` holds ``n_envs`` episodes of one task and steps them together, which lets numpy and
JAX envs advance a whole batch per call. Arrays are indexed [env, agent, ...]. ``SerialVecEnv``
adapts any list of pymarl-style single envs (the host's and SMAC's) to the same interface.
"""
from __future__ import annotations

import numpy as np


class VecEnv:
    """n_envs copies of a pymarl-style env, stepped together.

    Extras (optional): an env may offer more per-step arrays than obs, state and avail actions
    through ``get_extras()``. They are written into the episode batch only for fields some
    component's scheme declares (a ``scheme=`` callable in the registry), so an env can offer
    them at no cost to runs that do not ask. ``get_env_info()`` lists them under an ``"extras"``
    key (only listed extras are read), which also lets scheme callables declare the field with the
    right shape:
    ``{name: vshape tuple}``, the shape of one batch entry per agent for fields of group
    ``"agents"`` (e.g. ``{"visible": (n_agents,)}`` for an [n_envs, n_agents, n_agents] array).
    """

    n_envs: int

    def get_env_info(self) -> dict:
        """state_shape, obs_shape, n_actions, n_agents, episode_limit (pymarl keys).

        Optionally ``"extras"``: {name: per-agent vshape tuple} of the arrays ``get_extras`` gives.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Start a new episode in every env."""
        raise NotImplementedError

    def step(self, actions: np.ndarray, active: np.ndarray):
        """Advance the envs where ``active`` is True with ``actions`` [n_envs, n_agents].

        Returns (rewards [n_envs] or [n_envs, n_agents], terminated [n_envs] bool, infos: list of
        n_envs dicts). A time-limit stop sets ``info["episode_limit"] = True`` so learners
        bootstrap. Entries for inactive envs are ignored by the caller.
        """
        raise NotImplementedError

    def get_obs(self) -> np.ndarray:  # [n_envs, n_agents, obs_dim]
        raise NotImplementedError

    def get_state(self) -> np.ndarray:  # [n_envs, state_dim]
        raise NotImplementedError

    def get_avail_actions(self) -> np.ndarray:  # [n_envs, n_agents, n_actions]
        raise NotImplementedError

    def get_extras(self) -> dict:
        """Optional per-step arrays, written into the episode batch only for fields some
        component's scheme declares: {name: array [n_envs, ...]} for the current step (after
        ``reset()`` and after every ``step()``, like ``get_obs``). None by default."""
        return {}

    def close(self) -> None:
        pass

    def state_dict(self) -> dict:
        """Env-side state a checkpoint must keep to continue the same episode stream (optional)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def derived_seeds(seed: int, n: int) -> list:
    """``n`` distinct, reproducible 31-bit seeds derived from one run seed."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n) % (2**31 - 1)]


class SerialVecEnv(VecEnv):
    """Steps a list of single pymarl-style envs (``step(actions) -> reward, terminated, info``)."""

    def __init__(self, envs):
        self.envs = list(envs)
        self.n_envs = len(self.envs)
        self.episode_limit = self.envs[0].get_env_info()["episode_limit"]
        self._t = np.zeros(self.n_envs, dtype=np.int64)

    def get_env_info(self):
        return self.envs[0].get_env_info()

    def reset(self):
        for env in self.envs:
            env.reset()
        self._t[:] = 0

    def step(self, actions, active):
        rewards = [0.0] * self.n_envs
        terminated = np.zeros(self.n_envs, dtype=bool)
        infos = [{} for _ in range(self.n_envs)]
        for i in np.flatnonzero(active):
            reward, term, info = self.envs[i].step(actions[i])
            self._t[i] += 1
            info = dict(info or {})
            # Envs without their own truncation flag: hitting the limit is a truncation.
            if "episode_limit" not in info and self._t[i] >= self.episode_limit:
                info["episode_limit"] = True
                term = True
            rewards[i], terminated[i], infos[i] = reward, bool(term), info
        return np.asarray(rewards, dtype=np.float32), terminated, infos

    def get_obs(self):
        return np.stack([np.asarray(e.get_obs(), dtype=np.float32) for e in self.envs])

    def get_state(self):
        return np.stack([np.asarray(e.get_state(), dtype=np.float32) for e in self.envs])

    def get_avail_actions(self):
        return np.stack([np.asarray(e.get_avail_actions(), dtype=np.float32) for e in self.envs])

    def close(self):
        for env in self.envs:
            env.close()
