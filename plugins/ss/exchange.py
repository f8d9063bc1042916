"""What crosses between agents, and nothing else: the boundary of Algorithm 1.

SS exchanges only action distributions (Section 4.2, Algorithm 1): agent j sends its own policy's
distribution pi^{jj}(. | s) and its suggestion pi^{ji}(. | s) for agent i, on the batch's states.
``Messages`` is that packet; ``exchange`` builds it from the senders' networks (detached: a
receiver cannot push gradients into a sender's parameters). Each agent's objective (objective.py)
reads its own networks plus the messages of its neighbours, never another agent's parameters,
rewards or values.

The baselines of Section 5.2 exchange other things, also only through this module:
``share_values`` (VS: neighbours' value outputs), ``consensus_weights`` + GroupMLP.average_groups
(VPS: value parameters; PS: policy parameters) and ``central_reward`` (CL: the sum of rewards,
which needs a central unit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch as th


@dataclass
class Messages:
    """Action distributions every agent j sends, on M samples (states) of the batch.

    actual       [N (sender j), M, A]              pi^{jj}(. | s), j's own policy
    suggestions  [N (sender j), N (receiver i), M, A]  pi^{ji}(. | s), j's suggestion for i
    behaviour    [N (sender j), M]                 log pi^{jj}_old(a_j | s) of the taken action,
                                                   sent when acting (the ratio's denominator)
    """

    actual: th.Tensor
    suggestions: th.Tensor | None
    behaviour: th.Tensor


def exchange(probs, behaviour_logp):
    """Messages from the senders' current distributions.

    probs: [N, N, M, A] (pi^{ij} for all i, j; own policies on the diagonal) or [N, M, A] (own only);
    behaviour_logp: [N, M] log-probabilities of the taken actions recorded at acting time.
    """
    probs = probs.detach()
    if probs.dim() == 4:
        n = probs.shape[0]
        actual = probs[th.arange(n), th.arange(n)]
        return Messages(actual, probs, behaviour_logp.detach())
    return Messages(probs, None, behaviour_logp.detach())


def share_values(values, nbr):
    """VS (Du et al. 2022): agent i's value is the mean of its own and its neighbours' value outputs.

    values [..., N], nbr [..., N, N] (row i = i's neighbours) -> [..., N]."""
    total = values + (nbr * values.unsqueeze(-2)).sum(-1)
    return total / (1.0 + nbr.sum(-1))


def consensus_weights(nbr, mask):
    """Row-stochastic consensus matrix W [N, N] for parameter averaging (VPS, PS): agent i averages
    uniformly over itself and every agent that was its neighbour at some valid step of the batch.
    nbr [B, T, N, N], mask [B, T]."""
    linked = ((nbr * mask[..., None, None]).sum((0, 1)) > 0).float()
    linked = linked + th.eye(linked.shape[0], device=linked.device)
    linked = (linked > 0).float()
    return linked / linked.sum(-1, keepdim=True)


def central_reward(rewards):
    """CL: the centralised critic learns on the sum of the individual rewards [..., N] -> [..., 1]."""
    return rewards.sum(-1, keepdim=True)
