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

    def all_logits(self, state, nbr=None):
        """Logits of pi^{ij}(. | s): [N, N, M, A] with suggestions, else [N, M, A] (own only).

        With ``nbr`` [N, N, M] (1 where j is i's neighbour) a suggestion head pi^{ij} is evaluated
        only on the samples where j is i's neighbour, the only ones where it enters Eq. 16; its
        other entries are 0. Dense evaluation when most pairs are neighbours anyway.
        """
        if not self.suggest:
            return self.net(state)
        if nbr is None or nbr.mean() > 0.5:
            out = self.net(state)
            return out.reshape(self.n, self.n, *out.shape[1:])
        n, M = self.n, state.shape[0]
        active = nbr > 0
        pairs = active.any(-1).nonzero()                                        # [P, 2] pairs (i, j)
        counts = active[pairs[:, 0], pairs[:, 1]].sum(-1)
        pairs = pairs[counts.argsort(descending=True)]
        # pairs in a few buckets of similar sample counts, each padded to its own largest count;
        # the own policies and every bucket's heads come from one gather of the stacked weights
        chunks = pairs.tensor_split(min(self.buckets, len(pairs))) if len(pairs) else ()
        groups = th.cat([self.own_groups, pairs[:, 0] * n + pairs[:, 1]])
        parts = self.net.select(groups, [n] + [len(c) for c in chunks])
        own = GroupMLP.apply_layers(state, *parts[0])                           # [N, M, A]
        A, idx = own.shape[-1], th.arange(n, device=state.device)
        out = own.new_zeros(n, n, M, A).index_put((idx, idx), own)
        rows = []
        for chunk, part in zip(chunks, parts[1:]):
            act = active[chunk[:, 0], chunk[:, 1]]                              # [P, M]
            K = int(act.sum(-1).max())
            order = th.argsort((~act).to(th.int8), dim=-1, stable=True)[:, :K]  # their samples first
            logits = GroupMLP.apply_layers(state[order], *part) * act.gather(1, order).unsqueeze(-1)
            rows.append(own.new_zeros(len(chunk), M, A).scatter(1, order.unsqueeze(-1).expand(-1, -1, A), logits))
        return out.index_put((pairs[:, 0], pairs[:, 1]), th.cat(rows)) if rows else out
