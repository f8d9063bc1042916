"""Test episodes of policy-gradient algorithms are greedy when test_greedy is True."""
from types import SimpleNamespace

import pytest
import torch as th

from marlkit import host
from marlkit.registry import get_registry

# A fixed, non-degenerate policy for 2 agents over 4 actions; agent 1 cannot take its most likely
# action 0, so its greedy action is 1.
PROBS = th.tensor([[0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1]])
AVAIL = th.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
GREEDY = th.tensor([0, 1])


def fixed_policy_mac(test_greedy, name="mappo", n_envs=500):
    """The host's BasicMAC, built as a run builds it, with its network replaced by PROBS."""
    get_registry().activate()
    args = SimpleNamespace(n_agents=2, n_actions=4, agent="rnn", hidden_dim=8, use_rnn=True,
                           obs_last_action=False, obs_agent_id=False, agent_output_type="pi_logits",
                           action_selector="soft_policies", name=name, test_greedy=test_greedy)
    mac = host.controllers["basic_mac"]({"obs": {"vshape": 3}}, None, args)
    probs = (PROBS * AVAIL).expand(n_envs, 2, 4)
    mac.forward = lambda batch, t, test_mode=False: probs / probs.sum(-1, keepdim=True)
    batch = {"avail_actions": AVAIL.expand(n_envs, 1, 2, 4)}
    return mac, batch


def test_greedy_test_episodes_take_the_most_likely_available_action():
    mac, batch = fixed_policy_mac(test_greedy=True)
    actions, _ = mac.select_actions(batch, t_ep=0, t_env=0, test_mode=True)
    assert (actions == GREEDY).all()


@pytest.mark.parametrize("test_greedy,test_mode", [(True, False), (False, True)])
def test_training_and_non_greedy_test_episodes_sample(test_greedy, test_mode):
    mac, batch = fixed_policy_mac(test_greedy)
    actions, _ = mac.select_actions(batch, t_ep=0, t_env=0, test_mode=test_mode)
    assert (actions != GREEDY).any(dim=0).all()  # each agent: some of the 500 draws are not greedy
    assert (actions[:, 1] != 0).all()  # never an unavailable action
    share = (actions[:, 0] == 0).float().mean().item()
    assert abs(share - 0.4) < 0.1  # agent 0 draws its most likely action about 40% of the time


def test_happo_greedy_test_actions_come_with_their_log_probabilities():
    mac, batch = fixed_policy_mac(test_greedy=True, name="happo", n_envs=3)
    (actions, logp), _ = mac.select_actions(batch, t_ep=0, t_env=0, test_mode=True)
    assert (actions == GREEDY).all()
    assert th.allclose(logp[0], th.log(th.tensor([0.4, 0.3 / 0.6])))
