"""The context-aware differentiable DAG of paper 003 (Section 6.1) and the fixed baseline DAGs.

Convention (the paper's): ``G[..., j, i] = 1`` iff agent j is a parent of agent i.

A DAG is built as G = U * (P^T M P) (elementwise):
  * M: the strictly upper-triangular n x n mask (M[k, l] = 1 iff k < l), an acyclic order template;
  * P: a permutation matrix with P[k, i] = 1 iff agent i sits at position k of the topological
    order, so (P^T M P)[j, i] = M[pos(j), pos(i)]: j may be a parent of i iff j comes first;
  * U: a 0/1 edge matrix over ordered pairs, sampled by the edge net.
Acyclic by construction whatever U and P are. Both factors are hard in the forward pass and carry
straight-through gradients: U from a Gumbel-Softmax over 2 logits per ordered pair (Jang et al.),
P from Gumbel-Sinkhorn (Mena et al.) made hard by an exact maximum-weight matching (``hungarian``).
Test mode drops the noise.
"""
from __future__ import annotations

from functools import lru_cache
import itertools

import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

DAG_MODES = ("context", "full", "line", "none")
PERMUTATIONS = ("learned", "identity")
PERM_MATCHES = ("sinkhorn", "scores")


def order_mask(n: int, device=None) -> th.Tensor:
    """M: strictly upper-triangular ones (position k may precede position l iff k < l)."""
    return th.ones(n, n, device=device).triu(1)


def fixed_dag(mode: str, n: int, device=None) -> th.Tensor:
    """The paper's fixed baselines (Section 7.2), all in the order 1..n:
    ``full`` j -> i for every j < i; ``line`` j -> j + 1; ``none`` no edges (product policy)."""
    if mode == "full":
        return order_mask(n, device)
    if mode == "line":
        return th.diag(th.ones(max(n - 1, 0), device=device), 1)
    if mode == "none":
        return th.zeros(n, n, device=device)
    raise ValueError(f"no fixed DAG for mode {mode!r}")


def density(G: th.Tensor) -> th.Tensor:
    """rho(G) = sum_ij G[i, j] / (n (n - 1) / 2): edges over the most a DAG on n nodes can have."""
    n = G.shape[-1]
    return G.sum((-2, -1)) / max(n * (n - 1) / 2, 1)


def gumbel(shape, device=None, dtype=None) -> th.Tensor:
    """Standard Gumbel noise -log(-log(u)), u ~ U(0, 1) clamped away from 0 and 1 (in place)."""
    return th.rand(shape, device=device, dtype=dtype).clamp_(1e-10, 1.0 - 1e-7).log_().neg_().log_().neg_()


def gumbel_like(x: th.Tensor) -> th.Tensor:
    return gumbel(x.shape, x.device, x.dtype)


def noisy_scores(log_alpha: th.Tensor, tau: float = 1.0, noise: float = 1.0) -> th.Tensor:
    """(log_alpha + noise * Gumbel) / tau, the input of the Sinkhorn operator."""
    x = log_alpha
    if noise > 0:  # a factor or divisor of 1 is skipped: IEEE-exact no-ops, one kernel each
        g = gumbel_like(log_alpha)
        x = log_alpha + (g if noise == 1 else noise * g)
    return x / tau if tau != 1 else x


def sinkhorn(x: th.Tensor, iters: int = 20) -> th.Tensor:
    """Sinkhorn normalisation of exp(x) (alternating row/column log-normalisation); doubly
    stochastic up to the iteration tolerance."""
    if not th.is_grad_enabled():  # acting: the same normalisation with sums (3x fewer kernels), in place
        p = (x - x.amax((-2, -1), keepdim=True)).exp_()
        for _ in range(iters):
            p.div_(p.sum(-1, keepdim=True))
            p.div_(p.sum(-2, keepdim=True))
        return p
    for _ in range(iters):
        x = x - th.logsumexp(x, dim=-1, keepdim=True)
        x = x - th.logsumexp(x, dim=-2, keepdim=True)
    return x.exp()


def gumbel_sinkhorn(log_alpha: th.Tensor, tau: float = 1.0, noise: float = 1.0, iters: int = 20) -> th.Tensor:
    """Soft permutation: the Sinkhorn normalisation of (log_alpha + noise * Gumbel) / tau."""
    return sinkhorn(noisy_scores(log_alpha, tau, noise), iters)


ENUMERATE_UP_TO = 6  # n! = 720 candidate orders: one matrix product scores them all


@lru_cache(maxsize=None)
def _all_permutations(n: int, device) -> tuple:
    """(cells [n*n, n!], matrices [n!, n, n]) of every permutation matrix of size n: column p of
    ``cells`` marks the n cells of matrix p, so flat weights @ cells = each permutation's total."""
    order = th.tensor(list(itertools.permutations(range(n))), device=device)
    matrices = F.one_hot(order, n).to(th.float64)  # row k has its 1 in column order[k]
    return matrices.reshape(len(order), n * n).T.contiguous(), matrices


def hungarian(soft: th.Tensor) -> th.Tensor:
    """The permutation matrix of maximum total weight for each soft one (an exact matching), 0/1.

    Batched: for n <= ENUMERATE_UP_TO every permutation's total in one float64 matrix product
    and its argmax; for larger n scipy's exact Jonker-Volgenant solver per matrix (3 us each at
    n = 10; a vectorised O(n 2^n) subset DP measured 100x slower there), with one batched scatter.
    Both return the unique optimum whenever it is unique (almost surely, with Gumbel noise)."""
    n = soft.shape[-1]
    flat = soft.detach().reshape(-1, n, n)
    if n <= ENUMERATE_UP_TO:
        cells, matrices = _all_permutations(n, flat.device)
        hard = matrices[(flat.reshape(-1, n * n).to(th.float64) @ cells).argmax(-1)]
    else:
        weights = flat.cpu().numpy()
        cols = np.stack([linear_sum_assignment(m, maximize=True)[1] for m in weights])
        hard = th.as_tensor(np.eye(n, dtype=weights.dtype)[cols], device=soft.device)
    return hard.to(soft.dtype).reshape(soft.shape)


class _StraightThrough(th.autograd.Function):
    @staticmethod
    def forward(ctx, hard, soft):
        return hard.clone()

    @staticmethod
    def backward(ctx, grad):
        return None, grad


def straight_through(hard: th.Tensor, soft: th.Tensor) -> th.Tensor:
    """Exactly ``hard`` in the forward pass (``hard + soft - soft.detach()`` would leave rounding
    residue on the 0/1 values), the gradient of ``soft`` in the backward pass."""
    return _StraightThrough.apply(hard, soft)


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class DAGNet(nn.Module):
    """Edge net U and permutation net P over the joint observation -> G = U * (P^T M P).

    Architectures of the paper's Table 2 (Aloha/SMAC): Concat(o^1..o^n)-FC(hidden)-ReLU-FC(out);
    the edge net outputs 2 logits per ordered pair, the permutation net n x n scores that pass a
    log-sigmoid before Gumbel-Sinkhorn (the public runs). ``permutation=identity`` fixes P = I
    (the paper's SMAC runs). The hard order is the maximum-weight matching of the Sinkhorn matrix S
    (``perm_match=sinkhorn``, as first implemented) or of the noisy scores x (``scores``: the
    reference code of Charpentier et al., ported from Mena et al.'s; the same as matching log S, since Sinkhorn
    only subtracts row and column potentials, so acting needs no Sinkhorn iterations).
    """

    def __init__(self, n_agents, obs_dim, args):
        super().__init__()
        self.n = n_agents
        self.edge_tau = args.dag_gumbel_tau
        self.sinkhorn = dict(tau=args.dag_sinkhorn_tau, noise=args.dag_sinkhorn_noise, iters=args.dag_sinkhorn_iters)
        self.match = args.dag_perm_match
        self.edge_net = mlp(n_agents * obs_dim, args.dag_hidden, 2 * n_agents * n_agents)
        self.perm_net = mlp(n_agents * obs_dim, args.dag_hidden, n_agents * n_agents) \
            if args.dag_permutation == "learned" else None
        self.register_buffer("mask", order_mask(n_agents))

    def edges(self, joint_obs, test_mode):
        """U [..., n, n] (hard 0/1, straight-through Gumbel-Softmax; argmax without noise at test)."""
        logits = self.edge_net(joint_obs).view(*joint_obs.shape[:-1], self.n, self.n, 2)
        if test_mode:
            return (logits[..., 1] > logits[..., 0]).to(logits.dtype)
        if not th.is_grad_enabled():  # acting: the Gumbel-max sample the softmax's argmax picks
            noisy = logits + gumbel_like(logits)
            return (noisy[..., 1] > noisy[..., 0]).to(logits.dtype)
        soft = F.softmax((logits + gumbel_like(logits)) / self.edge_tau, dim=-1)
        hard = F.one_hot(soft.argmax(-1), 2).to(soft.dtype)
        return straight_through(hard, soft)[..., 1]

    def permutation(self, joint_obs, test_mode):
        """P [..., n, n] with P[k, i] = 1 iff agent i is at position k (identity when fixed)."""
        lead = joint_obs.shape[:-1]
        if self.perm_net is None:
            return th.eye(self.n, device=joint_obs.device).expand(*lead, self.n, self.n)
        scores = F.logsigmoid(self.perm_net(joint_obs).view(*lead, self.n, self.n))
        x = noisy_scores(scores, self.sinkhorn["tau"], 0.0 if test_mode else self.sinkhorn["noise"])
        grad = th.is_grad_enabled()
        if self.match == "scores" and not grad:  # the matching of x (= of log S(x)): acting needs no S
            return hungarian(x)
        soft = sinkhorn(x, self.sinkhorn["iters"])
        hard = hungarian(x if self.match == "scores" else soft)
        return straight_through(hard, soft) if grad else hard

    def forward(self, obs, test_mode=False):
        """obs [..., n, obs_dim] -> G [..., n, n] (parent j, child i)."""
        joint = obs.reshape(*obs.shape[:-2], -1)
        P = self.permutation(joint, test_mode)
        allowed = P.transpose(-2, -1) @ self.mask @ P
        return self.edges(joint, test_mode) * allowed
