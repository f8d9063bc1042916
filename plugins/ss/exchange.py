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
    """Action distributions the agents send, on the rows of one batch (nets.Plan: one row per head
    and sample it was evaluated on). Agent j's rows are its own policy pi^{jj}(. | s) and its
    suggestions pi^{ji}(. | s); a receiver i reads pi^{jj} and pi^{ji} of its neighbours j only
    (objective.Links.theirs).

    dist       [R, A]   the distributions
    taken      [R]      each row's probability of its target agent's taken action
    behaviour  [N, M]   log pi^{jj}_old(a_j | s) of the taken action, sent when acting (the
                        denominator of the neighbours' xi_{N_i})
    """

    dist: th.Tensor
    taken: th.Tensor
    behaviour: th.Tensor


def exchange(dist, log_taken, behaviour_logp):
    """Messages from the senders' current distributions dist [R, A] and log-probabilities of the
    taken actions log_taken [R]; behaviour_logp [N, M] recorded at acting time."""
    return Messages(dist.detach(), log_taken.detach().exp(), behaviour_logp.detach())


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
