"""The unrestricted joint action-value Q*(s, u) of Weighted QMIX (Rashid et al. 2020, pymarl2).

Q* = central agents + central mixer:
  * central agents: a second GRU agent network with the agents' own inputs (observation, last
    action, agent id) and ``central_rnn_hidden_dim`` hidden units; one value per agent and action;
  * central mixer: a feed-forward, NON-monotonic network on [state, chosen per-agent central
    values] with ``central_mixer_layers`` ReLU layers of ``central_mixing_embed_dim`` units, plus a
    state value V(s) (pymarl2: 3 x 256 and V(s)).
"""
from __future__ import annotations

from types import SimpleNamespace

import torch as th
import torch.nn as nn

from marlkit import host
from marlkit.errors import SuiteError


def state_dim(args) -> int:
    shape = args.state_shape
    if isinstance(shape, int):
        return shape
    if isinstance(shape, (tuple, list)) and len(shape) == 1:
        return int(shape[0])
    raise SuiteError(f"the WQMIX/ReMIX central mixer needs a vector state, got state_shape {shape!r}")


class CentralMixer(nn.Module):
    """Q*(s, u) = MLP([s, q_1(u_1), ..., q_n(u_n)]) + V(s); no sign constraint on any weight."""

    def __init__(self, args):
        super().__init__()
        self.n_agents, self.state_dim = args.n_agents, state_dim(args)
        width, embed = self.state_dim + self.n_agents, args.central_mixing_embed_dim
        layers = []
        for _ in range(args.central_mixer_layers):
            layers += [nn.Linear(width, embed), nn.ReLU()]
            width = embed
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.V = nn.Sequential(nn.Linear(self.state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, agent_qs, states):
        """agent_qs [..., n_agents], states [..., state_dim] -> Q* [..., 1]."""
        lead = agent_qs.shape[:-1]
        s = states.reshape(-1, self.state_dim)
        q = agent_qs.reshape(-1, self.n_agents)
        return (self.net(th.cat([s, q], dim=-1)) + self.V(s)).view(*lead, 1)


def build_central_mac(scheme, args):
    """A host BasicMAC whose agent is the central GRU network (same inputs as the agents)."""
    central_args = SimpleNamespace(**vars(args))
    central_args.hidden_dim = args.central_rnn_hidden_dim
    central_args.agent = "rnn"
    return host.BasicMAC(scheme, {"agents": args.n_agents}, central_args)
