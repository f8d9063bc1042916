"""Independent networks evaluated together: G MLPs stored as stacked weights [G, in, out].

No parameter is shared between groups (each group is one agent's own network; the paper's N^2
policies and N values), the stacking only turns G small matmuls into one batched matmul. Each
group is initialised like ``nn.Linear`` would initialise it on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch as th
import torch.nn as nn
import torch.nn.functional as F

from .objective import Links


class GroupMLP(nn.Module):
    """G ReLU MLPs of sizes (n_in, *hidden, n_out) (paper Table 2: e.g. (128, 64, d_a))."""

    def __init__(self, groups, n_in, hidden, n_out):
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        self.groups = groups
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(th.empty(groups, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(th.empty(groups, 1, b).uniform_(-bound, bound)))

    def forward(self, x, index=None):
        """x [M, n_in] (the same input for every group) or [G', M, n_in] (one input set per group)
        -> [G', M, n_out]; ``index`` picks the G' groups (default: all)."""
        W = [w if index is None else w[index] for w in self.weights]
        b = [v if index is None else v[index] for v in self.biases]
        return self.apply_layers(x, W, b)

    def select(self, index, sizes):
        """The weights of groups ``index`` (None: all, in order), split into consecutive parts of
        ``sizes`` groups: a list (one per part) of (weights, biases) for ``apply_layers``. One
        gather per parameter (not one per part) keeps the backward to one full-size gradient per
        parameter and step, which the optimiser takes over as ``.grad`` (zero_grad(set_to_none))."""
        params = [*self.weights, *self.biases]
        if index is None:
            parts = [p.split(sizes) if len(sizes) > 1 else (p,) for p in params]
        else:
            parts = [p.index_select(0, index).split(sizes) for p in params]
        W, b = parts[:len(self.weights)], parts[len(self.weights):]
        return [([w[k] for w in W], [v[k] for v in b]) for k in range(len(sizes))]

    @staticmethod
    def apply_layers(x, W, b):
        """The MLP with given per-group weights W, b (lists over layers, each [G', ...])."""
        G, (n_in, h) = W[0].shape[0], W[0].shape[1:]
        if x.dim() == 3:
            out = th.baddbmm(b[0], x, W[0])
        else:  # one matmul for all groups
            out = (x @ W[0].transpose(0, 1).reshape(n_in, G * h)).reshape(-1, G, h).transpose(0, 1) + b[0]
        for w, v in zip(W[1:], b[1:]):
            out = th.baddbmm(v, F.relu(out), w)
        return out

    def average_groups(self, weights):
        """Consensus step: parameters of group g <- sum_k weights[g, k] * parameters of group k."""
        with th.no_grad():
            for p in [*self.weights, *self.biases]:
                p.copy_(th.einsum("gk,k...->g...", weights.to(p.dtype), p))


def buckets(counts, cost):
    """Split heads with sample counts ``counts`` (descending) into consecutive buckets, each
    padded to its first count, minimising padded rows + ``cost`` per bucket (exact, by dynamic
    programming over the split points). Returns the bucket sizes."""
    best, cut = [0], [0]
    for end in range(1, len(counts) + 1):
        total, start = min((best[s] + (end - s) * counts[s] + cost, s) for s in range(end))
        best.append(total)
        cut.append(start)
    sizes, end = [], len(counts)
    while end > 0:
        sizes.append(end - cut[end])
        end = cut[end]
    return sizes[::-1]


@dataclass
class Plan:
    """How ``SSPolicies.logits`` evaluates the heads on one batch: fixed for the K iterations.

    The logits come as rows [R, A], part after part: part k is ``sizes[k]`` heads (``groups``,
    None: all heads in order) on ``inputs[k]`` ([M, S]: every sample, or [P, K, S]: each head its
    own samples). ``target`` [R] is j * M + m for a row of head pi^{ij} on sample m (the agent and
    sample whose action the row's distribution is over); ``links`` indexes the rows for Eq. 16."""

    groups: th.Tensor | None
    sizes: list
    inputs: list
    target: th.Tensor
    links: Links


class SSPolicies(nn.Module):
    """pi^{ij}(. | s) for every agent i and j (suggestions, Denotation 1) or pi^{ii} only.

    Group g = i * N + j holds agent i's policy for agent j (j = i: its own policy pi^{ii}); with
    ``ss_suggestions`` off there are N groups, group i = pi^{ii}. Input: the state (the MMDP of
    Section 3: every policy sees s).
    """

    def __init__(self, input_shape, args):
        super().__init__()
        n = args.n_agents
        self.n, self.suggest = n, bool(args.ss_suggestions)
        self.bucket_cost = 128  # sparse evaluation: one more bucket costs about as much as 128 padded rows
        self.net = GroupMLP(n * n if self.suggest else n, input_shape, list(args.ss_actor_hidden), args.n_actions)
        own = th.arange(n) * (n + 1) if self.suggest else th.arange(n)
        self.register_buffer("own_groups", own, persistent=False)

    def own_logits(self, state):
        """Logits of pi^{ii}(. | s) for every agent: state [M, S] -> [N, M, A]."""
        return self.net(state, self.own_groups)

    def all_logits(self, state):
        """Logits of every head on every sample (the dense reference): [N, N, M, A] with
        suggestions, else [N, M, A]."""
        out = self.net(state)
        return out.reshape(self.n, self.n, *out.shape[1:]) if self.suggest else out

    def plan(self, state, nbr):
        """The rows to evaluate on samples ``state`` [M, S] with neighbours ``nbr`` [N, N, M].

        A suggestion head pi^{ij} enters Eq. 16 only on the samples where j is i's neighbour
        (agent i's xi_{N_i} and penalty (b)) or i is j's (agent j's penalty (c) reads pi^{ij} as
        the suggestion it receives), so it is evaluated only there: the active pairs, sorted by
        their sample count, go in a few buckets, each padded to its largest count (``buckets``);
        the own policies come first, on every sample. When most pairs are active anyway, every
        head is evaluated on every sample instead (no gather, no padding)."""
        n, M = self.n, state.shape[0]
        dev = state.device
        rows = th.full((n, n, M), -1, dtype=th.long, device=dev)                # row of head (i, j) on m
        if not self.suggest:  # own policies only, row i * M + m; no links
            rows[th.arange(n), th.arange(n)] = th.arange(n * M, device=dev).view(n, M)
            return Plan(None, [n], [state], th.arange(n * M, device=dev), Links.build(th.zeros_like(nbr), rows))
        active = (nbr > 0) | (nbr > 0).transpose(0, 1)                          # [N, N, M] heads needed
        if active.float().mean() > 0.5:  # every head on every sample, row (i * N + j) * M + m
            cells = th.arange(n * n * M, device=dev)
            return Plan(None, [n * n], [state], cells % (n * M), Links.build(nbr, cells.view(n, n, M)))
        counts = active.sum(-1).view(-1)                                        # samples per head g = i * N + j
        heads = counts.nonzero().squeeze(-1)
        heads = heads[counts[heads].argsort(descending=True, stable=True)]      # the P active pairs, busiest first
        counts = counts[heads].tolist()
        order = th.argsort((~active.view(n * n, M)[heads]).to(th.int8), dim=-1, stable=True)  # theirs first
        own_cells = (self.own_groups.unsqueeze(1) * M + th.arange(M, device=dev)).reshape(-1)  # [N * M]
        inputs, sizes, cells, target = [state], [n], [own_cells], [th.arange(n * M, device=dev)]
        start = 0
        for size in buckets(counts, self.bucket_cost):                          # consecutive heads
            stop = start + size
            o = order[start:stop, :counts[start]]                              # [P_b, K_b], padded to the largest
            inputs.append(state[o])                                             # [P_b, K_b, S]; padding unused
            sizes.append(size)
            cells.append((heads[start:stop, None] * M + o).reshape(-1))
            target.append((heads[start:stop, None] % n * M + o).reshape(-1))
            start = stop
        cells = th.cat(cells)
        rows.view(-1)[cells] = th.arange(len(cells), device=dev)               # each cell once: no clash
        groups = th.cat([self.own_groups, heads])
        return Plan(groups, sizes, inputs, th.cat(target), Links.build(nbr, rows))

    def logits(self, plan):
        """The logits of ``plan``'s rows: [R, A] (one gather of the stacked weights for all parts)."""
        parts = self.net.select(plan.groups, plan.sizes)
        out = [GroupMLP.apply_layers(x, *part) for x, part in zip(plan.inputs, parts)]
        return th.cat([o.reshape(-1, o.shape[-1]) for o in out])
