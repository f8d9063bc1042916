"""The dual-clipped objective of Eq. 16 (Section 4.3, with the choices of Section 4.4).

For agent i on samples (s, a) drawn with the old joint policy:

  xi_i      = pi^{ii}(a_i|s) / pi^{ii}_old(a_i|s)                                   (Eq. 13)
  xi_{N_i}  = prod_{j in N_i} pi^{ij}(a_j|s) / pi^{jj}_old(a_j|s)                    (Eq. 13)
  surrogate = min(xi_i xi_{N_i} A_i, clip(xi_i, 1 - eps, 1 + eps) xi_{N_i} A_i)      (only xi_i clipped)
  X^{ij}    = {(s, a): pi^{ij}(a_j|s) / pi^{jj}(a_j|s) * A_i >= A_i}                  (Eq. 14)
  X^{ii}    = {(s, a): pi^{ii}(a_i|s) / pi^{ji}(a_i|s) * A_i >= A_i}   (one set per j)
  penalty   = kappa_i * rho * sum_{j in N_i} [ 1_{X^{ij}} ||pi^{ij}(.|s) - pi^{jj}(.|s)||^2
                                              + 1_{X^{ii}} ||pi^{ii}(.|s) - pi^{ji}(.|s)||^2 ]
  J_i       = E[surrogate - penalty],   kappa_i = E|A_i| (Section 4.4), one rho for all j.

pi^{jj}, pi^{ji} and pi^{jj}_old come from agent j's messages (exchange.py) and are constants for
agent i; the indicator sets are evaluated at the current parameters and carry no gradient.
Everything is computed for all agents at once; agent i's terms depend on agent i's networks only,
so the sum over agents has exactly the per-agent gradients. The distributions come as rows
[R, A] (one row per head and sample it was evaluated on, nets.Plan); the sums over j in N_i run
over ``Links``, one entry per (i, j in N_i, sample), so only neighbour pairs cost anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch as th


@dataclass
class Links:
    """Where Eq. 16 reads its distributions: one entry e per (i, j, m) with j in N_i at sample m.

    own [N * M]   row of pi^{ii}(.|s_m), at i * M + m
    at [E]        i * M + m: agent i's sample (sums over j land here; A_i is read here)
    recv [E]      j * M + m: the neighbour's sample (pi^{jj}_old(a_j|s_m) is read here)
    pair [E]      row of pi^{ij}(.|s_m), agent i's suggestion for j
    mine, theirs [2E]  the two discrepancies of entry e as row pairs: (pi^{ij}, pi^{jj}) for
                  penalty (b), then (pi^{ii}, pi^{ji}) for penalty (c); ``theirs`` are received
    """

    own: th.Tensor
    at: th.Tensor
    recv: th.Tensor
    pair: th.Tensor
    mine: th.Tensor
    theirs: th.Tensor

    @staticmethod
    def build(nbr, rows):
        """From the neighbour mask nbr [N, N, M] (1 where j in N_i) and rows [N, N, M] (the row of
        head (i, j) on sample m; every head a link reads must have one)."""
        n, _, M = nbr.shape
        idx = th.arange(n, device=rows.device)
        own = rows[idx, idx].reshape(-1)
        i, j, m = (nbr > 0).nonzero(as_tuple=True)
        at, recv, pair = i * M + m, j * M + m, rows[i, j, m]
        return Links(own, at, recv, pair, th.cat([pair, own[at]]), th.cat([own[recv], rows[j, i, m]]))


@dataclass
class Terms:
    """J_i's parts, each [N] (masked means over the samples), plus per-sample diagnostics."""

    objective: th.Tensor   # J_i (maximised)
    surrogate: th.Tensor
    penalty: th.Tensor
    kappa: th.Tensor
    xi_n: th.Tensor        # [N, M] xi_{N_i}


def masked_mean(x, mask):
    """Mean over the last dim of x [..., M] where mask [M] is 1."""
    return (x * mask).sum(-1) / mask.sum().clamp(min=1)


def eq16(adv, mask, log_own, old_own, log_taken, dist, msgs, links, eps, rho):
    """J_i of Eq. 16 for every agent i.

    adv [N, M] (A_i), mask [M], log_own [N, M] (log pi^{ii}(a_i|s)), old_own [N, M]
    (log pi^{ii}_old(a_i|s)); log_taken [R] and dist [R, A]: every row's log-probability of its
    target agent's taken action and its distribution (agent i's own rows carry i's gradients),
    msgs: exchange.Messages (the same rows as sent, constants), links: where j in N_i.
    """
    n, M = adv.shape
    kappa = masked_mean(adv.abs(), mask).detach()
    ratio = th.exp(log_own - old_own)
    if len(links.at) == 0:  # no neighbours (or no suggestion policies): xi_{N_i} = 1 and no penalties
        xi_n = th.ones_like(ratio)
        penalty = th.zeros_like(ratio)
    else:
        # xi_{N_i} = prod_j pi^{ij}(a_j|s) / pi^{jj}_old(a_j|s), as a sum of logs over the links
        log_xi_n = log_taken[links.pair] - msgs.behaviour.reshape(-1)[links.recv]
        xi_n = th.exp(adv.new_zeros(n * M).index_add(0, links.at, log_xi_n))
        # penalties (b) then (c): ||pi^{ij} - pi^{jj}||^2 on X^{ij}, ||pi^{ii} - pi^{ji}||^2 on X^{ii}
        at = links.at.repeat(2)
        with th.no_grad():  # X^{ij}: pi^{ij}(a_j|s) / pi^{jj}(a_j|s) A_i >= A_i; X^{ii} likewise with pi^{ii} / pi^{ji}
            A = adv.reshape(-1)[at]
            inside = (msgs.taken[links.mine] / msgs.taken[links.theirs] * A >= A).float()
        gaps = ((dist[links.mine] - msgs.dist[links.theirs]) ** 2).sum(-1)
        both = adv.new_zeros(n * M).index_add(0, at, inside * gaps)
        xi_n, penalty = xi_n.view(n, M), kappa[:, None] * rho * both.view(n, M)
    surrogate = th.min(ratio * xi_n * adv, ratio.clamp(1 - eps, 1 + eps) * xi_n * adv)
    return Terms(masked_mean(surrogate - penalty, mask), masked_mean(surrogate, mask), masked_mean(penalty, mask),
                 kappa, xi_n)
