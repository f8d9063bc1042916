"""RGMComm's online clustering (Section 4.2, Eq. 13; Appendix D): message generators, Q-vector
sampling, normalisation, cosine kNN, the RIM loss and the return-gap diagnostics of Thm. 4.3.

Pure tensor functions plus the generator module; the controller (controller.py) sends the labels
and the learner (learner.py) calls ``rim_loss`` on Q-vectors it samples with ``mix_samples``.
"""
from __future__ import annotations

import torch as th
import torch.nn as nn
import torch.nn.functional as F


class MessageGenerator(nn.Module):
    """g_j: local observation -> |M| label logits, one MLP per agent (two ReLU hidden layers; the
    public runs use 1200 units). Per-agent weights are stacked so all agents run in one batched
    matmul. ``shared=True``: one MLP for all agents with the agent id appended to the input."""

    def __init__(self, obs_dim, n_agents, n_labels, hidden=1200, shared=False):
        super().__init__()
        self.n_agents, self.shared = n_agents, shared
        in_dim = obs_dim + (n_agents if shared else 0)
        copies = 1 if shared else n_agents
        dims = [in_dim, hidden, hidden, n_labels]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers = [nn.Linear(d_in, d_out) for _ in range(copies)]  # nn.Linear's initialisation, per agent
            self.weights.append(nn.Parameter(th.stack([layer.weight.detach().T for layer in layers])))
            self.biases.append(nn.Parameter(th.stack([layer.bias.detach() for layer in layers])))
        self._views()

    def _views(self):
        """The layers as plain tuples: iterating a ParameterList costs more than a small layer's
        matmul at acting time. ``_layers``: the Parameters (training); ``_acting``: detached views
        of the same memory, biases shaped for baddbmm, so ``labels`` runs no reshaping op per layer.
        Views follow in-place updates (optimisers, load_state_dict); they are re-derived when
        .to / .cuda move the weights (``_apply``) and on copies (deepcopy, pickling)."""
        self._layers = tuple(zip(self.weights, self.biases))
        self._acting = self._shaped(detach=True)

    def _shaped(self, detach=False):
        """The layers as (weight, bias) for one batched affine map each: per agent for baddbmm
        (bias [n, 1, d]), or the single shared MLP's [d_in, d] and [d]."""
        layers = ((w.detach(), b.detach()) if detach else (w, b) for w, b in self._layers)
        return tuple((w[0], b[0]) if self.shared else (w, b.unsqueeze(1)) for w, b in layers)

    def _run(self, x, layers):
        """Agents-first inputs x [n, batch, d] through ``layers`` (from ``_shaped``) -> logits."""
        affine = th.baddbmm if not self.shared else (lambda b, x, w: x @ w + b)
        for k, (w, b) in enumerate(layers):
            x = affine(b, x, w)
            if k < len(layers) - 1:
                x = x.relu_()
        return x

    def _apply(self, fn, *args, **kwargs):
        module = super()._apply(fn, *args, **kwargs)
        self._views()
        return module

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_layers", "_acting")}

    def __setstate__(self, state):
        super().__setstate__(state)
        self._views()

    def _agents_first(self, obs):
        """obs [..., n_agents, obs_dim] -> [n_agents, batch, d] (contiguous; with the agent ids if
        shared). The copy matters: baddbmm on the transposed view is up to 2x slower."""
        x = obs.reshape(-1, self.n_agents, obs.shape[-1])
        if self.shared:
            ids = th.eye(self.n_agents, device=obs.device).expand(x.shape[0], -1, -1)
            x = th.cat([x, ids], -1)
        return x.transpose(0, 1).contiguous()

    def forward(self, obs):
        """obs [..., n_agents, obs_dim] -> logits [..., n_agents, n_labels]: one batched matmul
        per layer for all agents."""
        x = self._run(self._agents_first(obs), self._shaped())
        return x.transpose(0, 1).reshape(*obs.shape[:-1], -1)

    def labels(self, obs):
        """argmax_m g_j(o_j) for every agent: obs [batch, n_agents, obs_dim] -> [batch, n_agents]
        (long). The same operations and values as forward(obs).argmax(-1) (tests check it) on the
        cached detached views (no graph, no reshaping per layer), argmax on the agents-first logits."""
        return self._run(self._agents_first(obs), self._acting).argmax(-1).t()

    def forward_agent(self, obs_j, j):
        """Logits of agent j only: obs_j [K, obs_dim] -> [K, n_labels] (generator training)."""
        x = obs_j
        if self.shared:
            x = th.cat([x, F.one_hot(th.full((len(x),), j, device=x.device), self.n_agents).float()], -1)
        k = 0 if self.shared else j
        for i, (w, b) in enumerate(self._layers):
            x = x @ w[k] + b[k]
            if i < len(self._layers) - 1:
                x = F.relu(x)
        return x


# ---- Q-vector sampling (Section 4.2; Algorithm 2 lines 15-18) --------------------------------
def mix_agents(x, j, k2):
    """x [K1, n, ...] per-agent parts of K1 samples -> [K1, K2, n, ...]: entry (p, q) holds sample
    q's parts for every agent except j, whose part comes from sample p (q ranges over the first K2)."""
    k1 = x.shape[0]
    out = x[:k2].unsqueeze(0).expand(k1, *x[:k2].shape).clone()
    out[:, :, j] = x[:, j].unsqueeze(1)
    return out


def mix_state(state, j, k2, n_agents, chunked):
    """state [K1, S] -> [K1, K2, S]. ``chunked``: the state is the concatenation of the agents'
    local observations, so agent j's slice comes from sample p and the rest from sample q; otherwise
    the whole state comes from sample q (only j's own inputs carry o_j^p)."""
    k1, size = state.shape
    out = state[:k2].unsqueeze(0).expand(k1, k2, size).clone()
    if chunked:
        d = size // n_agents
        out[:, :, j * d:(j + 1) * d] = state[:, j * d:(j + 1) * d].unsqueeze(1)
    return out


# ---- normalisation (Appendix E.2; Fig. 7 ablation) ---------------------------------------------
def normalise(q, mode="tanh", scale="absmax"):
    """Each row (a Q-vector) -> f((Q - alpha) / beta), alpha = (max + min) / 2 of the row, beta =
    the row's max (scale='max', as the paper writes) or max |Q| (scale='absmax', default: equal to
    max on positive rows, and keeps the sign on tasks with negative values). f: tanh, softmax over
    the row, or none (the raw Q-vector, no normalisation)."""
    if mode == "none":
        return q
    hi, lo = q.max(-1, keepdim=True).values, q.min(-1, keepdim=True).values
    beta = hi if scale == "max" else q.abs().max(-1, keepdim=True).values
    z = (q - (hi + lo) / 2) / beta.clamp_min(1e-8) if scale == "absmax" else (q - (hi + lo) / 2) / beta
    if mode == "tanh":
        return th.tanh(z)
    if mode == "softmax":
        return th.softmax(z, -1)
    raise ValueError(f"unknown normalisation {mode!r}")


# ---- cosine kNN and the RIM loss (Eq. 13) ------------------------------------------------------
def cosine_knn(x, k):
    """Rows x [K, L] -> (idx [K, k], sim [K, k]): each row's k nearest other rows by cosine
    distance 1 - cos, with their cosine similarities."""
    u = F.normalize(x, dim=-1)
    sim = u @ u.T
    k = min(k, len(x) - 1)
    masked = sim.clone()
    masked.fill_diagonal_(-float("inf"))  # a row is not its own neighbour
    sim_k, idx = masked.topk(k, dim=-1)
    return idx, sim_k


def entropy(p, dim=-1):
    return -(p * th.log(p.clamp_min(1e-12))).sum(dim)


def rim_loss(logits, qvec, knn=16, weight="similarity", term="soft", cd_weight=1e-4, mi_weight=10.0,
             marginal_weight=4.0):
    """RIM loss of Eq. 13 for one agent: logits [K, M] of g_j(o_j^p), qvec [K, L] the normalised
    Q-vectors. Clustering term sum_p sum_{q in N(p)} w_pq ||m_p - m_q||^2 with m the softmax label
    distributions (term='soft', passes a gradient) or the argmax labels as numbers (term='integer',
    the public code's variant: no gradient); w_pq = cosine similarity (public code, default) or
    the cosine distance as Eq. 13 writes it (weight='distance'). Mutual-information term
    H(m|o) - marginal_weight * H(m) (IMSAT form of -I(o; m)). Returns (loss, parts dict)."""
    idx, sim = cosine_knn(qvec, knn)
    w = sim if weight == "similarity" else 1.0 - sim
    probs = th.softmax(logits, -1)
    if term == "soft":
        diff = ((probs.unsqueeze(1) - probs[idx]) ** 2).sum(-1)
    else:
        labels = probs.argmax(-1).float()
        diff = (labels.unsqueeze(1) - labels[idx]) ** 2
    cd = (w.detach() * diff).sum()
    h_cond = entropy(probs).mean()
    h_marg = entropy(probs.mean(0))
    mi = h_cond - marginal_weight * h_marg
    loss = cd_weight * cd + mi_weight * mi
    return loss, {"cd": cd.detach(), "h_cond": h_cond.detach(), "h_marg": h_marg.detach()}


def average_cosine_distance(qvec, labels):
    """epsilon of Eq. 6 with empirical frequencies (Appendix C.3): the label-frequency-weighted
    mean, over clusters, of the mean cosine distance between each member and the cluster centre
    H(m) (the members' mean)."""
    eps = qvec.new_zeros(())
    for m in labels.unique():
        members = qvec[labels == m]
        centre = members.mean(0, keepdim=True)
        dist = 1.0 - F.cosine_similarity(members, centre, dim=-1)
        eps = eps + dist.sum() / len(qvec)
    return eps


def gap_bound(eps, q_max, n_agents):
    """The return-gap bound of Thm. 4.3 with its constant set to 1: n * sqrt(epsilon) * Q_max."""
    return n_agents * float(eps) ** 0.5 * float(q_max)
