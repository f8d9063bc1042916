"""Independent networks evaluated together: G MLPs stored as stacked weights [G, in, out].

No parameter is shared between groups (each group is one agent's own network; the paper's N^2
policies and N values), the stacking only turns G small matmuls into one batched matmul. Each
group is initialised like ``nn.Linear`` would initialise it on its own.
"""
from __future__ import annotations

import math

import torch as th
import torch.nn as nn
import torch.nn.functional as F


class _GatherGroups(th.autograd.Function):
    """``weight.index_select(0, index)`` whose backward scatters into a reused buffer.

    Autograd's own backward allocates a fresh full-size zero gradient on every call; for the N^2
    stacked policy heads that allocation (page faults, not arithmetic) cost more than the sparse
    heads saved. The returned gradient is that buffer: it is valid until the next backward of the
    same parameter, which is how optimisers consume it (accumulated into ``.grad``)."""

    @staticmethod
    def forward(ctx, weight, index, buffer):
        ctx.save_for_backward(index)
        ctx.buffer = buffer
        return weight.index_select(0, index)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return ctx.buffer.zero_().index_add_(0, index, grad), None, None


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
        """The weights of groups ``index``, gathered once and split into consecutive parts of
        ``sizes`` groups: a list (one per part) of (weights, biases) for ``apply_layers``. One
        gather per parameter keeps the backward to one scatter into the full-size gradient."""
        if not hasattr(self, "_grad_buffers"):
            self._grad_buffers = {}
        parts = []
        for p in [*self.weights, *self.biases]:
            buffer = self._grad_buffers.get(id(p))
            if buffer is None or buffer.shape != p.shape or buffer.device != p.device:
                buffer = self._grad_buffers[id(p)] = th.zeros_like(p)
            parts.append(_GatherGroups.apply(p, index, buffer).split(sizes))
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
        self.buckets = 8  # sparse evaluation: pair buckets padded separately
        self.net = GroupMLP(n * n if self.suggest else n, input_shape, list(args.ss_actor_hidden), args.n_actions)
        own = th.arange(n) * (n + 1) if self.suggest else th.arange(n)
        self.register_buffer("own_groups", own, persistent=False)

    def own_logits(self, state):
        """Logits of pi^{ii}(. | s) for every agent: state [M, S] -> [N, M, A]."""
        return self.net(state, self.own_groups)

    def plan(self, state, nbr):
        """How ``all_logits`` evaluates the heads on a batch, fixed for all K iterations of an update.

        A suggestion head pi^{ij} enters Eq. 16 only on the samples where j is i's neighbour
        (``nbr`` [N, N, M] > 0: agent i's xi_{N_i} and penalty (b)) or i is j's (agent j's penalty
        (c) reads pi^{ij} as the suggestion it receives), so it is evaluated only there: the active
        pairs, sorted by their sample count, go in a few buckets, each padded to its largest count.
        Returns None (dense evaluation) without suggestions, without ``nbr``, or when most pairs
        are neighbours anyway.
        """
        if not self.suggest or nbr is None or nbr.mean() > 0.5:
            return None
        n, M = self.n, state.shape[0]
        active = (nbr > 0) | (nbr > 0).transpose(0, 1)  # neighbourhoods need not be symmetric (random m)
        pairs = active.any(-1).nonzero()                                        # [P, 2] pairs (i, j)
        pairs = pairs[active[pairs[:, 0], pairs[:, 1]].sum(-1).argsort(descending=True)]
        chunks = pairs.tensor_split(min(self.buckets, len(pairs))) if len(pairs) else ()
        own_rows = self.own_groups.unsqueeze(1) * M + th.arange(M, device=state.device)  # [N, M] into [N*N*M]
        inputs, keep, rows = [], [], [own_rows.reshape(-1)]
        for chunk in chunks:
            act = active[chunk[:, 0], chunk[:, 1]]                              # [P, M]
            K = int(act.sum(-1).max())
            order = th.argsort((~act).to(th.int8), dim=-1, stable=True)[:, :K]  # their samples first
            inputs.append(state[order])                                         # [P, K, S]
            keep.append(act.gather(1, order).unsqueeze(-1).to(state.dtype))     # 0 on padding
            rows.append(((chunk[:, 0] * n + chunk[:, 1]).unsqueeze(1) * M + order).reshape(-1))
        groups = th.cat([self.own_groups, pairs[:, 0] * n + pairs[:, 1]])
        return {"groups": groups, "sizes": [n] + [len(c) for c in chunks], "inputs": inputs, "keep": keep,
                "rows": th.cat(rows)}

    def all_logits(self, state, nbr=None, plan=None):
        """Logits of pi^{ij}(. | s): [N, N, M, A] with suggestions, else [N, M, A] (own only).

        With ``nbr`` [N, N, M] (or its precomputed ``plan``) a suggestion head is evaluated only
        where it enters Eq. 16 (see ``plan``); its other entries are 0.
        """
        if plan is None:
            plan = self.plan(state, nbr)
        if plan is None:
            out = self.net(state)
            return out.reshape(self.n, self.n, *out.shape[1:]) if self.suggest else out
        n, M = self.n, state.shape[0]
        # own policies and every bucket's heads from one gather of the stacked weights
        parts = self.net.select(plan["groups"], plan["sizes"])
        own = GroupMLP.apply_layers(state, *parts[0])                           # [N, M, A]
        A = own.shape[-1]
        values = [own.reshape(-1, A)]
        for x, keep, part in zip(plan["inputs"], plan["keep"], parts[1:]):
            values.append((GroupMLP.apply_layers(x, *part) * keep).reshape(-1, A))
        # rows are distinct (each pair's samples are a permutation), so one scatter places them all
        out = own.new_zeros(n * n * M, A).index_put((plan["rows"],), th.cat(values))
        return out.reshape(n, n, M, A)
