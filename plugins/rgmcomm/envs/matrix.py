"""``rgm_matrix``: the two-agent illustrative example of the RGMComm paper (Section 4.1, Fig. 1,
Appendix C.4), a one-step game with exact regrets.

Agent 1 observes o_1 in {o11, o12}, agent 2 observes o_2 in {o21, ..., o24}, uniformly and
independently. Agent 1 picks a_1 in {a11, a12}; agent 2 has a single action (its avail mask
allows action 0 only). The reward is Q[o_1, a_1, o_2] of the paper's table.

The table: the text gives every entry but two. Q(o21) = [53.2, 42.9, 31.8, 22.9] (rows
(o11,a11), (o11,a12), (o12,a11), (o12,a12)); the (o11, .) rows are read off the partial- and
full-observation sums of Appendix C.4; (o12, a12, o23) = 10.0 follows from the partial-observation
return 35.6 and the cosine distance 0.03 of Q(o21), Q(o23). The two entries (o12, a11, o22) and
(o12, a11, o24) are not legible from the text; any values with x22 + x24 <= 76.5, x22 <= 28 and
x24 <= 81.5 reproduce all the paper's returns, and 20.0 / 50.0 also give the stated cosine distance
0.02 between Q(o22) and Q(o24).

``exact_returns`` computes the optimal average returns exactly (no learning): full observation,
partial observation, and agent 1 given agent 2's message under a labelling of o_2.
"""
from __future__ import annotations

import itertools

import numpy as np

from marlkit.params import Param

from .base import LocalObsVecEnv

# Q[o1, a1, o2]
Q_TABLE = np.array([
    [[53.2, 4.5, 58.5, 0.3],     # o11, a11
     [42.9, 1.2, 64.0, 16.1]],   # o11, a12
    [[31.8, 20.0, 34.1, 50.0],   # o12, a11
     [22.9, 28.0, 10.0, 81.5]],  # o12, a12
])

PARAMS = {
    "observe_all": Param(bool, False, doc="agent 1 also sees o_2 (the ideal policy pi*)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


def q_vectors(table=Q_TABLE):
    """Q-vector of each o_2 (Eq. 5): the column of the table, over (o_1, a_1) pairs."""
    return table.reshape(-1, table.shape[-1]).T  # [n_o2, n_o1 * n_a1]


def exact_returns(labels=None, table=Q_TABLE):
    """Optimal average return of agent 1 when it knows o_1 and: everything (labels=None ->
    dict with 'full' and 'partial'), or the label of o_2 (labels: one int per o_2)."""
    n_o1, _, n_o2 = table.shape
    if labels is None:
        full = np.mean([table[o1, :, o2].max() for o1 in range(n_o1) for o2 in range(n_o2)])
        partial = np.mean([table[o1].mean(axis=1).max() for o1 in range(n_o1)])
        return {"full": float(full), "partial": float(partial)}
    labels = np.asarray(labels)
    total = 0.0
    for o1 in range(n_o1):
        for m in np.unique(labels):
            cols = labels == m  # agent 1 must take one action for all o_2 with this label
            total += table[o1][:, cols].sum(axis=1).max() / n_o2
    return float(total / n_o1)


def best_labelling(n_labels, table=Q_TABLE):
    """The labelling of o_2 with the highest exact return (enumeration; for tests)."""
    n_o2 = table.shape[-1]
    return max(itertools.product(range(n_labels), repeat=n_o2), key=lambda lab: exact_returns(lab, table))


class RGMMatrix(LocalObsVecEnv):
    n_agents, n_actions, episode_limit = 2, 2, 1
    local_dim = 4  # one-hot of the observation (agent 1 uses the first 2 entries)

    def __init__(self, n_envs, seed, observe_all=False):
        super().__init__(n_envs, seed, observe_all)
        self.o = np.zeros((n_envs, 2), dtype=np.int64)

    def _reset(self, idx):
        self.o[idx, 0] = self.rng.integers(0, 2, len(idx))
        self.o[idx, 1] = self.rng.integers(0, 4, len(idx))

    def _step(self, actions, idx):
        o1, o2 = self.o[idx, 0], self.o[idx, 1]
        reward = Q_TABLE[o1, actions[:, 0], o2]
        return reward, np.ones(len(idx), dtype=bool), {}

    def _local_obs(self):
        obs = np.zeros((self.n_envs, 2, 4))
        obs[np.arange(self.n_envs), 0, self.o[:, 0]] = 1.0
        obs[np.arange(self.n_envs), 1, self.o[:, 1]] = 1.0
        return obs

    def get_avail_actions(self):
        avail = np.ones((self.n_envs, 2, 2), dtype=np.float32)
        avail[:, 1, 1] = 0.0  # agent 2 has a single action
        return avail


def make(env_args, n_envs, seed):
    return RGMMatrix(n_envs, seed, env_args["observe_all"])
