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
so the sum over agents has exactly the per-agent gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch as th


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


def eq16(adv, mask, actions, log_own, old_own, log_sugg, dist_own, dist_sugg, msgs, nbr, eps, rho):
    """J_i of Eq. 16 for every agent i.

    adv [N, M] (A_i), mask [M], actions [N, M] (a_j, long), log_own [N, M] (log pi^{ii}(a_i|s)),
    old_own [N, M] (log pi^{ii}_old(a_i|s)), log_sugg [N, N, M] (log pi^{ij}(a_j|s), diagonal unused)
    or None, dist_own [N, M, A], dist_sugg [N, N, M, A] or None, msgs: exchange.Messages,
    nbr [N, N, M] (1 where j in N_i, zero diagonal).
    """
    kappa = masked_mean(adv.abs(), mask).detach()
    ratio = th.exp(log_own - old_own)
    if log_sugg is None:  # no suggestion policies: xi_{N_i} = 1 and no penalties
        xi_n = th.ones_like(ratio)
        penalty = th.zeros_like(ratio)
    else:
        xi_n = th.exp((nbr * (log_sugg - msgs.behaviour.unsqueeze(0))).sum(1))
        # pi^{jj}(a_j|s) and pi^{ji}(a_i|s) as received
        actual_taken = msgs.actual.gather(-1, actions.unsqueeze(-1)).squeeze(-1)           # [N(j), M]
        idx = actions.unsqueeze(0).unsqueeze(-1).expand(msgs.suggestions.shape[0], -1, -1, 1)
        sugg_for_me = msgs.suggestions.gather(-1, idx).squeeze(-1).transpose(0, 1)        # [N(i), N(j), M] = pi^{ji}(a_i|s)
        A = adv.unsqueeze(1)                                                               # [N(i), 1, M]
        with th.no_grad():
            in_xij = (log_sugg.exp() / actual_taken.unsqueeze(0) * A >= A).float()
            in_xii = (log_own.exp().unsqueeze(1) / sugg_for_me * A >= A).float()
        gap_ij = ((dist_sugg - msgs.actual.unsqueeze(0)) ** 2).sum(-1)                     # ||pi^{ij} - pi^{jj}||^2
        gap_ii = ((dist_own.unsqueeze(1) - msgs.suggestions.transpose(0, 1)) ** 2).sum(-1) # ||pi^{ii} - pi^{ji}||^2
        penalty = kappa[:, None] * rho * (nbr * (in_xij * gap_ij + in_xii * gap_ii)).sum(1)
    surrogate = th.min(ratio * xi_n * adv, ratio.clamp(1 - eps, 1 + eps) * xi_n * adv)
    return Terms(masked_mean(surrogate - penalty, mask), masked_mean(surrogate, mask), masked_mean(penalty, mask),
                 kappa, xi_n)
