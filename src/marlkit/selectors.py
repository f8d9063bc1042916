"""Action selectors the suite puts in place of a host one, and why.

``soft_policies`` (the selector of the host's policy-gradient learners: MAPPO, IPPO, MAA2C, ...)
samples from the policy in every episode, also in test episodes when the config asks for greedy
tests (``test_greedy: True``): its test numbers would be those of the stochastic policy. The
suite's version takes the most likely available action in test episodes when ``test_greedy`` is
True and samples exactly like the host otherwise (training episodes, or ``test_greedy: False``).
"""
from __future__ import annotations

from torch.distributions import Categorical

from .host import SoftPoliciesSelector


class GreedyTestSoftPolicies(SoftPoliciesSelector):
    """The host's ``soft_policies`` selector with greedy test episodes when ``test_greedy``."""

    def select_action(self, agent_inputs, avail_actions, t_env, test_mode=False):
        if not (test_mode and getattr(self.args, "test_greedy", True)):
            return super().select_action(agent_inputs, avail_actions, t_env, test_mode)
        # agent_inputs are probabilities [B, n, A]; unavailable actions are never picked, also
        # when the controller does not mask before its softmax (mask_before_softmax: False).
        actions = agent_inputs.masked_fill(avail_actions == 0, -1.0).argmax(dim=-1)
        if self.algo_name == "happo":  # the host's HAPPO also wants the log-probabilities
            return actions, Categorical(agent_inputs).log_prob(actions)
        return actions


# Host component names the suite's builtin registry maps to the suite's class instead.
REPLACED = {("action_selector", "soft_policies"): GreedyTestSoftPolicies}
