"""The acting side: every agent samples from its own policy pi^{ii}(. | s) (Algorithm 1, line
"Execute action a_t^i ~ pi^{ii}(.|s_t)") and records log pi^{ii}(a_i | s), the action probability
it shares with its neighbours (the denominator of their xi_{N_j}) and its own pi_old."""
from __future__ import annotations

import torch as th
import torch.nn.functional as F

from marlkit import host

NEG = -1e10


class SSMAC(host.BasicMAC):
    def _get_input_shape(self, scheme):
        return scheme["state"]["vshape"]  # MMDP: policies see the state (Section 3)

    def init_hidden(self, batch_size):
        self.hidden_states = None  # feed-forward policies

    def own_probs(self, state, avail):
        """pi^{ii}(. | s) of every agent: state [B, S], avail [B, N, A] -> [B, N, A]."""
        logits = self.agent.own_logits(state).transpose(0, 1)
        return F.softmax(logits.masked_fill(avail == 0, NEG), -1)

    @th.no_grad()
    def select_actions(self, ep_batch, t_ep, t_env, bs=slice(None), test_mode=False):
        avail = ep_batch["avail_actions"][bs, t_ep]
        probs = self.own_probs(ep_batch["state"][bs, t_ep], avail)
        if test_mode and self.args.test_greedy:
            actions = probs.argmax(-1)
        else:
            actions = th.distributions.Categorical(probs=probs).sample()
        logp = probs.gather(-1, actions.unsqueeze(-1)).clamp(min=1e-30).log()
        return actions, {"logp": logp}

    def forward(self, ep_batch, t, test_mode=False):
        return self.own_probs(ep_batch["state"][:, t], ep_batch["avail_actions"][:, t])
