"""Exact price of anarchy and Nash gap of a neural BN policy on the coordination game.

The game is fully observed (every agent's observation is the n-bit state), so the policy with its
noise-free (test-mode) DAG defines pi(a | s) = prod_i pi^i(a^i | s, a^{P_i(s)}) exactly: it is
enumerated over all 2^n states x 2^n joint actions and evaluated with the env's Bellman solver
(coordination_game.py). The Nash gap needs fixed parent sets (deviations are over
pi^i(a^i | s, a^{P_i})), so it is reported for the fixed DAG modes only.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch as th
import torch.nn.functional as F

from . import coordination_game as cg

from .policy import parent_inputs


@lru_cache(maxsize=8)
def _model(env_args: tuple):
    kw = dict(env_args)
    game = cg.CoordinationGame(1, **{k: v for k, v in kw.items() if k != "seed"})
    model = game.model()
    return model, cg.optimal_return(model)


def conditionals(mac, model):
    """pi^i(. | s, a^{P_i}) at every (state, joint action): [S, A, n, 2], and the DAG per state."""
    policy, n = mac.agent, model.n
    bits = th.as_tensor(model.bits, dtype=th.float32)  # [S or A, n]: the same 2^n bit patterns
    S = A = len(bits)
    obs = bits[:, None, :].expand(S, n, n)  # every agent observes the state
    parts = [obs] + ([th.eye(n).expand(S, n, n)] if mac.args.obs_agent_id else [])
    x = th.cat(parts, -1)
    with th.no_grad():
        G = policy.dag(obs, test_mode=True)  # [S, n, n]
        onehot = F.one_hot(th.as_tensor(model.bits), 2).float()  # [A, n, 2]
        par = parent_inputs(G[:, None], onehot[None], obs[:, None] if policy.parent_obs else None)
        logits = policy.head(policy.own(x)[:, None], par)  # [S, A, n, 2]
    return F.softmax(logits, -1).numpy(), G.numpy()


def coordination_metrics(mac, args) -> dict:
    """{'poa', 'nash_gap'} of the current policy when the run's env is the coordination game."""
    if args.env != "coordination_game" or args.obs_last_action:
        return {}
    model, optimum = _model(tuple(sorted(args.env_args.items())))
    cond, G = conditionals(mac, model)
    own = model.bits  # [A, n]
    factors = np.take_along_axis(cond, own[None, :, :, None], -1)[..., 0]  # [S, A, n]
    joint = factors.prod(-1)
    out = {"poa": float(cg.price_of_anarchy(model, joint, optimum))}
    if mac.agent.graph is None:
        parents = [tuple(np.flatnonzero(G[0][:, i] > 0.5)) for i in range(model.n)]
        tables = []
        for i, ps in enumerate(parents):
            pid = cg.parent_index(model.bits, ps)
            table = np.zeros((model.n_states, 2 ** len(ps), 2))
            table[:, pid, :] = cond[:, :, i, :]  # rows sharing a parent configuration agree
            tables.append(table)
        out["nash_gap"] = float(cg.nash_gap(model, parents, tables))
    return out
