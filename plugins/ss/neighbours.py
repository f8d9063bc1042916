"""Neighbourhood protocols N_i (Section 4.3, Appendix A.4), one [B, T, N, N] 0/1 mask per batch.

``ss_protocol``:
  env       the env's own graph, per step (predation: normalised distance <= 0.1; navigation:
            adjacent agents; Cleanup/Harvest: everyone), read from the batch field ``neighbours``
  distance  agents within normalised distance ``ss_distance`` (batch field ``positions``)
  all       every other agent
  random    ``ss_random_m`` other agents per agent, drawn anew at every update (A.4, protocol 1)
  none      nobody (independent learners)
``ss_share_every`` k: agents share only at every k-th update (A.4, protocol 2); in between the
mask is empty, which drops xi_{N_i} and the two penalties from Eq. 16.
"""
from __future__ import annotations

import torch as th

from marlkit.errors import SuiteError

PROTOCOLS = ("env", "distance", "all", "random", "none")


def neighbour_mask(args, batch, steps, update, generator=None):
    """The neighbour mask [B, steps, N, N] as floats (row i = agent i's neighbours, no self-loops)."""
    return _mask(args, batch, steps, update, generator).float()


def _mask(args, batch, steps, update, generator):
    n, B = args.n_agents, batch.batch_size
    eye = th.eye(n, dtype=th.bool)
    protocol = args.ss_protocol
    if protocol == "none" or update % args.ss_share_every != 0:
        return th.zeros(B, steps, n, n)
    if protocol == "env":
        if "neighbours" not in batch.scheme:
            raise SuiteError(f"ss_protocol=env needs an env that reports a neighbour graph; env '{args.env}' "
                             "does not: use ss_protocol=all, distance or random")
        return (batch["neighbours"][:, :steps] > 0.5) & ~eye
    if protocol == "distance":
        if "positions" not in batch.scheme:
            raise SuiteError(f"ss_protocol=distance needs an env that reports positions; env '{args.env}' "
                             "does not: use ss_protocol=all or random")
        p = batch["positions"][:, :steps]
        return (th.cdist(p, p) <= args.ss_distance + 1e-9) & ~eye
    if protocol == "all":
        return (~eye).expand(B, steps, n, n)
    if protocol == "random":
        if args.ss_random_m > n - 1:
            raise SuiteError(f"ss_random_m={args.ss_random_m} exceeds the {n - 1} other agents; lower it")
        scores = th.rand(n, n, generator=generator).masked_fill(eye, -1.0)
        chosen = th.zeros(n, n, dtype=th.bool)
        chosen.scatter_(1, scores.topk(args.ss_random_m, dim=1).indices, True)
        return chosen.expand(B, steps, n, n)
    raise SuiteError(f"unknown ss_protocol '{protocol}'; allowed: {', '.join(PROTOCOLS)}")
