"""What the four SS tasks share: episode bookkeeping, infos, extras and registration."""
from __future__ import annotations

import numpy as np

from marlkit.config import check_env_args
from marlkit.envs.base import VecEnv


class IndividualRewardEnv(VecEnv):
    """Base of the SS tasks: time limit, per-agent return bookkeeping and the episode-end infos.

    Subclasses implement ``_reset()``, ``_step(actions, active) -> rewards [n_envs, n]`` and the
    observation methods; ``_extra_infos(e)`` may add task metrics.
    """

    n_actions: int
    extras: tuple = ("neighbours", "positions")
    state_keys: tuple = ()  # array attributes a checkpoint keeps (besides the RNG)

    def __init__(self, n_envs, n_agents, episode_limit, seed):
        self.n_envs, self.n_agents, self.episode_limit = int(n_envs), int(n_agents), int(episode_limit)
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(self.n_envs, dtype=np.int64)
        self.returns = np.zeros((self.n_envs, self.n_agents))
        self.cooperated = np.zeros((self.n_envs, self.n_agents), dtype=np.float32)

    def get_env_info(self):
        n = self.n_agents
        shapes = {"neighbours": (n,), "positions": (self.positions().shape[-1],), "coop_action": (1,),
                  "cooperated": (1,)}
        return {"state_shape": self.get_state().shape[-1], "obs_shape": self.get_obs().shape[-1],
                "n_actions": self.n_actions, "n_agents": n, "episode_limit": self.episode_limit,
                "extras": {k: shapes[k] for k in self.extras}}

    def reset(self):
        self.t[:] = 0
        self.returns[:] = 0
        self.cooperated[:] = 0
        self._reset()

    def step(self, actions, active):
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_envs, self.n_agents)
        active = np.asarray(active, dtype=bool)
        if ((actions < 0) | (actions >= self.n_actions)).any():
            raise ValueError(f"{type(self).__name__}: actions must be in [0, {self.n_actions}), "
                             f"got {np.unique(actions).tolist()}")
        rewards = self._step(actions, active).astype(np.float32)
        rewards[~active] = 0.0
        self.returns += rewards
        self.t += active
        limit = (self.t >= self.episode_limit) & active
        infos = [self._infos(e) if limit[e] else {} for e in range(self.n_envs)]
        return rewards, limit, infos

    def _infos(self, e):
        steps = max(int(self.t[e]), 1)
        info = {"episode_limit": True, "collective_return": float(self.returns[e].sum()) / (self.n_agents * steps)}
        info.update({f"return_agent{i}": float(r) for i, r in enumerate(self.returns[e])})
        info.update(self._extra_infos(e))
        return info

    def _extra_infos(self, e):
        return {}

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)

    def get_extras(self):
        out = {"neighbours": self.neighbours().astype(np.float32), "positions": self.positions().astype(np.float32)}
        if "coop_action" in self.extras:
            out["coop_action"] = self.coop_action().astype(np.float32)[..., None]
        if "cooperated" in self.extras:
            out["cooperated"] = self.cooperated[..., None].copy()
        return out

    def neighbours(self):
        """[n_envs, n, n] 0/1, no self-loops: the env's fixed neighbour graph (default: everyone)."""
        eye = np.eye(self.n_agents, dtype=bool)
        return np.broadcast_to(~eye, (self.n_envs, self.n_agents, self.n_agents))

    def positions(self):
        """[n_envs, n, d] agent positions normalised to [0, 1]; every task defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define positions()")

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, **{k: getattr(self, k).copy() for k in self.state_keys}}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]
        for key in self.state_keys:
            setattr(self, key, np.array(state[key]))


def maker(key, cls, params):
    """``make(env_args, n_envs, seed)`` for ``cls``: env_args checked against ``params``."""

    def make(env_args, n_envs, seed):
        args = check_env_args(key, env_args, params)
        if seed is not None:
            args["seed"] = seed
        return cls(n_envs, **args)

    return make


def register_envs(registry):
    from . import cleanup, coop_navigation, coop_predation, harvest

    for module, doc in ((coop_predation, "cooperative predation, an N-agent sequential prisoner's dilemma (SS)"),
                        (coop_navigation, "5x5 grid cooperative navigation with individual rewards (SS)"),
                        (cleanup, "Cleanup public-goods dilemma, 11x18 (SS)"),
                        (harvest, "Harvest commons dilemma, 7x38 (SS)")):
        registry.add_env(module.KEY, maker(module.KEY, module.ENV, module.PARAMS), module.PARAMS, doc)
