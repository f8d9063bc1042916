"""Continuous-message baselines as agents for the host's MADDPG controller (Section 5 baselines).

The host's controllers call an agent on the inputs of all agents of a batch at once
([batch * n_agents, input]), so an agent module can let them communicate inside its forward:

* ``commnet`` (Sukhbaatar et al. 2016): h0 = ReLU(W_in x_i); ``comm_rounds`` times
  h_i <- tanh(H h_i + C mean_{j != i} h_j); logits = W_out h_i.
* ``tarmac`` (Das et al. 2019): h_i = ReLU(W_in x_i); each agent sends a key k_j = W_k h_j and a
  value v_j = W_v h_j, agent i attends with its query q_i = W_q h_i over the others' messages,
  c_i = sum_{j != i} softmax_j(q_i . k_j / sqrt(d)) v_j; ``comm_rounds`` times h_i <- tanh(W [h_i, c_i]).

Feed-forward (MADDPG's MLP actors); the hidden state is a placeholder the controllers expect.
"""
from __future__ import annotations

import math

import torch as th
import torch.nn as nn
import torch.nn.functional as F


class _CommAgent(nn.Module):
    def __init__(self, input_shape, args):
        super().__init__()
        self.n_agents, self.hidden = args.n_agents, args.hidden_dim
        self.rounds = args.comm_rounds
        self.fc_in = nn.Linear(input_shape, args.hidden_dim)
        self.fc_out = nn.Linear(args.hidden_dim, args.n_actions)

    def init_hidden(self):
        return self.fc_in.weight.new_zeros(1, self.hidden)

    def forward(self, inputs, hidden_state=None):
        h = F.relu(self.fc_in(inputs)).view(-1, self.n_agents, self.hidden)
        others = 1.0 - th.eye(self.n_agents, device=inputs.device)  # [receiver, sender]
        for _ in range(self.rounds):
            h = self.communicate(h, others)
        out = self.fc_out(h).view(-1, self.fc_out.out_features)
        return out, h.reshape(-1, self.hidden)


class CommNetAgent(_CommAgent):
    def __init__(self, input_shape, args):
        super().__init__(input_shape, args)
        self.H = nn.Linear(args.hidden_dim, args.hidden_dim)
        self.C = nn.Linear(args.hidden_dim, args.hidden_dim, bias=False)

    def communicate(self, h, others):
        mean_others = others @ h / max(self.n_agents - 1, 1)
        return th.tanh(self.H(h) + self.C(mean_others))


class TarMACAgent(_CommAgent):
    def __init__(self, input_shape, args):
        super().__init__(input_shape, args)
        d = args.hidden_dim
        self.key, self.query, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.update = nn.Linear(2 * d, d)

    def communicate(self, h, others):
        scores = self.query(h) @ self.key(h).transpose(1, 2) / math.sqrt(self.hidden)  # [b, recv, send]
        scores = scores.masked_fill(others == 0, -float("inf")) if self.n_agents > 1 else scores
        attention = th.softmax(scores, -1)
        context = attention @ self.value(h)
        return th.tanh(self.update(th.cat([h, context], -1)))
