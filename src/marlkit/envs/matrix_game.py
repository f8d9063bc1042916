"""One-step cooperative matrix game for n agents (value-factorisation sanity checks).

``env_args.payoff`` is a nested list with one axis per agent; the team reward of joint action
(a_1, ..., a_n) is payoff[a_1]...[a_n]. Observations and state are a constant 1, so the task is
pure coordination. The default is the non-monotonic 3x3 game of the Weighted QMIX paper
(optimum 8 at (0, 0), QMIX typically settles on a 0-valued joint action).
"""
from __future__ import annotations

import numpy as np

from ..errors import SuiteError
from ..params import Param
from .base import VecEnv

NON_MONOTONIC = [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]

PARAMS = {
    "payoff": Param(list, NON_MONOTONIC, doc="nested list, one axis per agent"),
    "seed": Param(int, None, nullable=True, doc="unused (deterministic); set from the run seed"),
}


def payoff_array(payoff) -> np.ndarray:
    if _holds_bool(payoff):
        raise SuiteError("env_args.payoff must hold numbers, not true/false")
    try:
        table = np.asarray(payoff, dtype=np.float32)
    except (TypeError, ValueError):
        raise SuiteError("env_args.payoff must be a rectangular nested list of numbers") from None
    if table.ndim < 1 or 0 in table.shape:
        raise SuiteError("env_args.payoff must have at least one agent axis with >= 1 action")
    if len(set(table.shape)) != 1:
        raise SuiteError(f"env_args.payoff must give every agent the same number of actions, got shape {table.shape}")
    return table


def _holds_bool(value):
    return isinstance(value, bool) or (isinstance(value, (list, tuple)) and any(_holds_bool(v) for v in value))


class MatrixGame(VecEnv):
    def __init__(self, n_envs, payoff=NON_MONOTONIC, seed=None):
        self.payoff = payoff_array(payoff)
        self.n_envs = n_envs
        self.n_agents = self.payoff.ndim
        self.n_actions = self.payoff.shape[0]

    def get_env_info(self):
        return {"state_shape": 1, "obs_shape": 1, "n_actions": self.n_actions,
                "n_agents": self.n_agents, "episode_limit": 1}

    def reset(self):
        pass

    def step(self, actions, active):
        actions = np.asarray(actions, dtype=np.int64)
        rewards = self.payoff[tuple(actions.T)]
        infos = [{"episode_limit": False} for _ in range(self.n_envs)]
        return rewards.astype(np.float32), np.ones(self.n_envs, dtype=bool), infos

    def get_obs(self):
        return np.ones((self.n_envs, self.n_agents, 1), dtype=np.float32)

    def get_state(self):
        return np.ones((self.n_envs, 1), dtype=np.float32)

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)


def make(env_args, n_envs, seed):
    return MatrixGame(n_envs, **{**env_args, "seed": seed})
