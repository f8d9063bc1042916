"""Weighting functions of Weighted QMIX and the weight-distribution statistics every weighted
learner logs (so OW/CW-QMIX and ReMIX give the same metric series, e.g. for a Fig. 3 heatmap).

All tensors are [B, T, 1] (per transition) unless stated otherwise.
"""
from __future__ import annotations

import torch as th


def ow_weights(q_tot, targets, w):
    """Optimistic weighting (WQMIX; ReMIX paper eq. 2): 1 where Q_tot < target, else w."""
    return th.where(q_tot < targets, th.ones_like(q_tot), th.full_like(q_tot, w))


def cw_weights(actions, greedy_actions, targets, q_star_greedy, w):
    """Centralised weighting (WQMIX): 1 where the taken joint action is the QMIX greedy one or the
    target exceeds Q*(s, greedy joint action), else w.

    actions, greedy_actions: [B, T, n_agents, 1] (long); targets, q_star_greedy: [B, T, 1].
    """
    is_greedy = (actions == greedy_actions).all(dim=2)  # [B, T, 1]
    better = targets > q_star_greedy
    return th.where(is_greedy | better, th.ones_like(targets), th.full_like(targets, w))


def weight_stats(weights, mask, floor, bins):
    """Distribution of the weights of the real (mask > 0) transitions of one batch.

    Returns {name: float}: weight_mean, weight_std, weight_q10/q50/q90, weight_at_min (share at the
    floor) and weight_hist_<i>, i = 0..bins-1: the share of transitions in bin i of ``bins`` equal
    bins on [floor, 1] (the last bin includes 1). Bin i covers
    [floor + i (1 - floor) / bins, floor + (i + 1) (1 - floor) / bins). The range itself is logged
    as weight_hist_low (= floor) and weight_hist_high (= 1), so analysis can label the bins without
    knowing which learner or config key set the floor.
    """
    values = weights[mask > 0].detach().float().flatten()
    if values.numel() == 0:
        return {}
    q = th.quantile(values, th.tensor([0.1, 0.5, 0.9]))
    stats = {
        "weight_mean": values.mean().item(),
        "weight_std": values.std(unbiased=False).item(),
        "weight_q10": q[0].item(), "weight_q50": q[1].item(), "weight_q90": q[2].item(),
        "weight_at_min": (values <= floor + 1e-6).float().mean().item(),
    }
    if floor < 1.0:
        idx = ((values - floor) / (1.0 - floor) * bins).floor().clamp(0, bins - 1).long()
        hist = th.bincount(idx, minlength=bins).float() / values.numel()
    else:  # every weight is 1: all mass in the last bin
        hist = th.zeros(bins)
        hist[-1] = 1.0
    stats.update({f"weight_hist_{i}": hist[i].item() for i in range(bins)})
    stats.update(weight_hist_low=float(floor), weight_hist_high=1.0)
    return stats
