"""Aloha (paper 003, Section 7.1, "the version in Wang et al. 2022"), a batched numpy ``VecEnv``.

Rules (paper Section 7.1; IMPLEMENTATION_NOTES.md "BN policy / DAG-BN"; where both are silent, the
public reference implementation of this env, whose facts are recorded below):

* 10 agents (islands) on a 2 x 5 grid, agent k at row k // cols, column k % cols. Neighbours:
  ``neighbourhood: grid`` (default) = the 4-neighbourhood of the grid, as the notes say.
  ``neighbourhood: chain`` = the reference implementation's hard-coded adjacency, which is the
  grid plus an edge between the last agent of a row and the first of the next (k ~ k +- 1 along
  the row-major order, and k ~ k +- cols), i.e. for 2 x 5 also 4 ~ 5.
* Actions: 0 = wait, 1 = transmit. All actions are always available.
* Each agent holds a backlog of packets, initially 1 (``initial_backlog``), capacity 5.
* A step, in this order (reference implementation):
  1. Every agent that transmits with a non-empty backlog either succeeds or collides. It
     succeeds when no neighbour transmits: reward +0.1 and its backlog drops by 1. Otherwise it
     collides: reward -10 and its backlog is unchanged. The penalty is per colliding agent (two
     neighbours transmitting together cost -20), as in the paper ("for each successfully sent
     message ... 0.1 reward, and a -10 reward if with collision") and the reference code.
     A neighbour "transmits" when it chooses action 1, also with an empty backlog
     (``empty_transmit_collides: true``, reference behaviour); with ``false`` only neighbours that
     actually send a packet cause collisions. Transmitting with an empty backlog earns nothing.
  2. Each agent receives a new packet with probability 0.6 (``arrival_prob``); backlogs are capped
     at the capacity.
* Team reward (the sum above, shared by all agents). Episodes last 20 steps (time limit: info
  ["episode_limit"] = True). The paper's Table 2 says 25 for Aloha (and 20 for the coordination
  game); the notes and the reference implementation use 20, the default here.
* Observation of agent k: its own backlog, one number (paper 7.4.3: "each agent observes the
  backlog of its own messages"). Raw packet counts as in the reference implementation by default;
  ``obs_normalise: true`` divides by the capacity. State: all backlogs (same scaling).

Infos carry episode totals so far: ``transmitted`` (successful packets), ``collisions`` (colliding
transmissions) and ``backlog_left`` (sum of backlogs).
"""
from __future__ import annotations

import numpy as np

from marlkit.envs.base import VecEnv
from marlkit.errors import SuiteError
from marlkit.params import Param, check_env_args

from .coordination_game import binary_actions

PARAMS = {
    "rows": Param(int, 2, low=1, doc="grid rows"),
    "cols": Param(int, 5, low=1, doc="grid columns (n_agents = rows * cols)"),
    "capacity": Param(int, 5, low=1, doc="maximum backlog per agent"),
    "initial_backlog": Param(int, 1, low=0, doc="backlog of every agent at reset"),
    "arrival_prob": Param(float, 0.6, low=0.0, high=1.0, doc="probability of a new packet per agent and step"),
    "success_reward": Param(float, 0.1, doc="team reward per successful transmission"),
    "collision_reward": Param(float, -10.0, doc="team reward per colliding transmission"),
    "episode_limit": Param(int, 20, low=1, doc="steps per episode"),
    "neighbourhood": Param(str, "grid", choices=("grid", "chain"),
                           doc="grid: 4-neighbourhood; chain: the reference code's adjacency (grid + row wrap)"),
    "empty_transmit_collides": Param(bool, True,
                                     doc="a neighbour choosing transmit with an empty backlog still collides"),
    "obs_normalise": Param(bool, False, doc="divide backlogs by the capacity in obs and state"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


def adjacency(rows: int, cols: int, neighbourhood: str = "grid") -> np.ndarray:
    """Symmetric 0/1 [n, n] matrix of neighbours (no self-loops)."""
    n = rows * cols
    adj = np.zeros((n, n), dtype=np.int64)
    for k in range(n):
        r, c = divmod(k, cols)
        if neighbourhood == "grid":
            candidates = [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]
            for rr, cc in candidates:
                if 0 <= rr < rows and 0 <= cc < cols:
                    adj[k, rr * cols + cc] = 1
        elif neighbourhood == "chain":
            for j in (k - 1, k + 1, k - cols, k + cols):
                if 0 <= j < n:
                    adj[k, j] = 1
        else:
            raise SuiteError(f"aloha: neighbourhood must be 'grid' or 'chain', got {neighbourhood!r}")
    return adj


class Aloha(VecEnv):
    def __init__(self, n_envs, rows=2, cols=5, capacity=5, initial_backlog=1, arrival_prob=0.6,
                 success_reward=0.1, collision_reward=-10.0, episode_limit=20, neighbourhood="grid",
                 empty_transmit_collides=True, obs_normalise=False, seed=None):
        if initial_backlog > capacity:
            raise SuiteError(f"aloha: initial_backlog {initial_backlog} exceeds capacity {capacity}")
        self.n_envs, self.n_agents = int(n_envs), int(rows * cols)
        self.adj = adjacency(rows, cols, neighbourhood)
        self.capacity, self.initial_backlog = int(capacity), int(initial_backlog)
        self.arrival_prob = float(arrival_prob)
        self.success_reward, self.collision_reward = float(success_reward), float(collision_reward)
        self.episode_limit = int(episode_limit)
        self.empty_transmit_collides, self.obs_normalise = bool(empty_transmit_collides), bool(obs_normalise)
        self.rng = np.random.default_rng(seed)
        self.backlog = np.full((self.n_envs, self.n_agents), self.initial_backlog, dtype=np.int64)
        self.t = np.zeros(self.n_envs, dtype=np.int64)
        self.transmitted = np.zeros(self.n_envs, dtype=np.int64)
        self.collisions = np.zeros(self.n_envs, dtype=np.int64)

    def get_env_info(self):
        return {"state_shape": self.n_agents, "obs_shape": 1, "n_actions": 2, "n_agents": self.n_agents,
                "episode_limit": self.episode_limit}

    def reset(self):
        self.backlog[:] = self.initial_backlog
        self.t[:] = 0
        self.transmitted[:] = 0
        self.collisions[:] = 0

    def step(self, actions, active):
        actions, active = binary_actions(self, "aloha", actions, active, "0 (wait) or 1 (transmit)")
        transmit = actions == 1
        sending = transmit & (self.backlog > 0)
        blocking = transmit if self.empty_transmit_collides else sending
        neighbour_busy = (blocking.astype(np.int64) @ self.adj) > 0
        success = sending & ~neighbour_busy & active[:, None]
        collide = sending & neighbour_busy & active[:, None]
        rewards = self.success_reward * success.sum(1) + self.collision_reward * collide.sum(1)
        arrivals = (self.rng.random((self.n_envs, self.n_agents)) < self.arrival_prob) & active[:, None]
        self.backlog = np.minimum(self.backlog - success + arrivals, self.capacity)
        self.transmitted += success.sum(1)
        self.collisions += collide.sum(1)
        self.t += active
        limit = self.t >= self.episode_limit
        left = self.backlog.sum(1)
        infos = [{"episode_limit": bool(limit[e]), "transmitted": int(self.transmitted[e]),
                  "collisions": int(self.collisions[e]), "backlog_left": int(left[e])}
                 for e in range(self.n_envs)]
        return rewards.astype(np.float32), limit & active, infos

    def _scaled(self):
        b = self.backlog.astype(np.float32)
        return b / self.capacity if self.obs_normalise else b

    def get_obs(self):
        return self._scaled()[:, :, None]

    def get_state(self):
        return self._scaled()

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, 2), dtype=np.float32)

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, "backlog": self.backlog.copy(), "t": self.t.copy(),
                "transmitted": self.transmitted.copy(), "collisions": self.collisions.copy()}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]
        for key in ("backlog", "t", "transmitted", "collisions"):
            setattr(self, key, np.array(state[key]))


def make(env_args, n_envs, seed):
    args = check_env_args("aloha", env_args, PARAMS)
    if seed is not None:
        args["seed"] = seed
    return Aloha(n_envs, **args)
