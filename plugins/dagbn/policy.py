"""The Bayesian-network joint policy of paper 003: actor, DAG and the controller that samples it.

pi(a | o) = prod_i pi^i(a^i | o^i, a^{P_i}) (Section 4) with the DAG G from graph.py. The actor
sees its own features (obs, agent id, optionally last action) and its parents' one-hot actions,
zero-padded for non-parents (Section 7.4), optionally also the parents' observations (the
paper's Aloha runs). MLP actor without recurrence, as in the paper's MAPPO runs.

Two input layouts of the paper's Table 2 (``dag_actor_arch``):
  early  Concat(o^i, a^P [, o^P]) -> Base(hidden) -> FC(actions)            (SMAC)
  late   Concat(Base(o^i), a^P) -> FC(actions)                              (coordination game)
         Concat(Base(o^i), Base(Concat(o^P, a^P))) -> FC(actions)  with dag_parent_obs (Aloha)
Base(h) = FC(h)-ReLU-FC(h)-ReLU. Each layout is split into ``own`` (depends on the agent's own
features only, computed once per step) and ``head`` (adds the parent part), so sampling in
topological order re-runs only the head.
"""
from __future__ import annotations

import torch as th
import torch.nn as nn
import torch.nn.functional as F

from marlkit import host

from .graph import DAGNet, fixed_dag, gumbel

NEG = -1e10  # logit of unavailable actions


def base(n_in, hidden):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


def parent_inputs(G, onehot, obs=None):
    """Per child i, the parents' one-hot actions (and observations) with zeros for non-parents:
    G [..., n, n] (parent j, child i), onehot [..., n, A], obs [..., n, O] -> [..., n, n*A (+ n*O)]."""
    child_parent = G.transpose(-2, -1).unsqueeze(-1)  # [..., i, j, 1]: G[..., j, i]
    parts = [(child_parent * onehot.unsqueeze(-3)).flatten(-2)]  # products of 0/1 values: exact
    if obs is not None:
        parts.append((child_parent * obs.unsqueeze(-3)).flatten(-2))
    return th.cat(parts, -1) if len(parts) > 1 else parts[0]


class BNPolicy(nn.Module):
    """Actor pi^i(a^i | o^i, a^{P_i}) shared by the agents (agent id in the input) plus the DAG."""

    def __init__(self, input_shape, args):
        super().__init__()
        n, A, O = args.n_agents, args.n_actions, args.obs_shape
        self.n, self.mode, self.arch, self.parent_obs = n, args.dag_mode, args.dag_actor_arch, args.dag_parent_obs
        n_parent = n * A + (n * O if self.parent_obs else 0)
        if self.arch == "early":
            self.own_in = nn.Linear(input_shape, args.hidden_dim)
            self.parent_in = nn.Linear(n_parent, args.hidden_dim, bias=False)
            self.trunk = nn.Sequential(nn.ReLU(), nn.Linear(args.hidden_dim, args.hidden_dim), nn.ReLU(),
                                       nn.Linear(args.hidden_dim, A))
        else:
            self.own_base = nn.Sequential(base(input_shape, args.hidden_dim), nn.Linear(args.hidden_dim, A))
            self.parent_net = (nn.Sequential(base(n_parent, args.hidden_dim), nn.Linear(args.hidden_dim, A, bias=False))
                               if self.parent_obs else nn.Linear(n_parent, A, bias=False))
        self.graph = DAGNet(n, O, args) if self.mode == "context" else None
        if self.graph is None:
            self.register_buffer("fixed", fixed_dag(self.mode, n))

    def dag(self, obs, test_mode=False):
        """G [..., n, n] for observations [..., n, O]: learned (context) or the fixed DAG."""
        if self.graph is not None:
            return self.graph(obs, test_mode)
        return self.fixed.expand(*obs.shape[:-2], self.n, self.n)

    def own(self, x):
        """The part of the logits (or first layer) that depends on own features x [..., n, d] only."""
        return self.own_in(x) if self.arch == "early" else self.own_base(x)

    def head(self, own, parents):
        """Logits [..., n, A] from ``own`` and the parent inputs [..., n, P]."""
        if self.arch == "early":
            return self.trunk(own + self.parent_in(parents))
        return own + self.parent_net(parents)

    def logits(self, x, G, onehot, obs, avail):
        """Masked logits of every agent given all agents' (stored) actions and the DAG."""
        out = self.head(self.own(x), parent_inputs(G, onehot, obs if self.parent_obs else None))
        return out.masked_fill(avail == 0, NEG)


class BNMAC(host.BasicMAC):
    """Controller of the BN policy: one DAG per step from all agents' observations, then actions in
    topological order (``sample``: batched fixed-point passes, at most n); test
    mode uses the noise-free DAG and greedy actions.
    Writes the batch fields ``parents`` (row i = agent i's parents, i.e. G transposed) and
    ``logp`` (log pi^i of the taken action), which the learner reads."""

    def __init__(self, scheme, groups, args):
        super().__init__(scheme, groups, args)
        self.action_selector = None  # sampling happens here, in topological order
        self.n_actions = args.n_actions

    def init_hidden(self, batch_size):
        self.hidden_states = None  # feed-forward actor

    def inputs(self, batch, t=None):
        """Own features [B, (T,) n, d]: obs, last action and agent id as the args ask."""
        ts = slice(None) if t is None else t
        obs = batch["obs"][:, ts]
        parts = [obs]
        if self.args.obs_last_action:
            last = th.zeros_like(batch["actions_onehot"][:, ts])
            if t is None:
                last[:, 1:] = batch["actions_onehot"][:, :-1]
            elif t > 0:
                last = batch["actions_onehot"][:, t - 1]
            parts.append(last)
        if self.args.obs_agent_id:
            parts.append(th.eye(self.n_agents, device=obs.device).expand(*obs.shape[:-1], self.n_agents))
        return th.cat(parts, -1), obs

    @th.no_grad()
    def select_actions(self, ep_batch, t_ep, t_env, bs=slice(None), test_mode=False):
        x, obs = self.inputs(ep_batch, t_ep)
        x, obs, avail = x[bs], obs[bs], ep_batch["avail_actions"][bs, t_ep]
        G = self.agent.dag(obs, test_mode)
        actions, logp = self.sample(x, obs, avail, G, greedy=test_mode)
        extra = {"parents": G.transpose(-2, -1).contiguous(), "logp": logp.unsqueeze(-1)}
        return actions, extra

    def sample(self, x, obs, avail, G, greedy=False):
        """Actions [B, n] and their log-probabilities, exactly as sampling in topological order.

        Gumbel-max with the noise drawn up front: a^i = argmax(logits^i(a^{P_i}) + g^i). Passes
        recompute every agent's choice from the current parent actions until nothing changes
        (at most n passes; one without edges): after pass d every agent of depth < d is final,
        and the fixed point is the topological-order sample (unique on a DAG).
        """
        policy = self.agent
        own = policy.own(x)
        parent_obs = obs if policy.parent_obs else None
        noise = 0.0 if greedy else gumbel(avail.shape, own.device)
        eye = th.eye(self.n_actions, dtype=own.dtype, device=own.device)  # eye[a]: the one-hot of a
        onehot = th.zeros(avail.shape, dtype=own.dtype, device=own.device)
        passes = avail.shape[1] if bool(G.any()) else 1  # n passes always suffice (path <= n - 1)
        unavailable = avail == 0
        for k in range(passes):
            logits = policy.head(own, parent_inputs(G, onehot, parent_obs)).masked_fill(unavailable, NEG)
            chosen = (logits + noise).argmax(-1)
            if k > 0 and bool((chosen == actions).all()):
                break
            actions = chosen
            onehot = eye[actions]
        logp = F.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return actions, logp

    def forward(self, ep_batch, t, test_mode=False):
        """pi^i(. | o^i, a^{P_i}) at step t under the stored DAG and stored actions [B, n, A]."""
        x, obs = self.inputs(ep_batch, t)
        G = ep_batch["parents"][:, t].transpose(-2, -1)
        logits = self.agent.logits(x, G, ep_batch["actions_onehot"][:, t], obs, ep_batch["avail_actions"][:, t])
        return F.softmax(logits, -1)
