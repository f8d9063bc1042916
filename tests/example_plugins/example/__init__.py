"""A tiny plugin that exercises every part of the plugin contract (used by the tests only).

It registers an env family with per-agent rewards, a controller that records an extra
episode-batch field, an agent, a mixer, a learner that needs per-agent rewards and that extra
field, and a typed hyperparameter.
"""
import numpy as np
import torch as th

from marlkit import host
from marlkit.envs.base import VecEnv
from marlkit.params import Param


class SplitRewardGame(VecEnv):
    """One-step game: agent i is rewarded 1 for action i % n_actions, 0 otherwise."""

    def __init__(self, n_envs, n_agents=2, n_actions=3):
        self.n_envs, self.n_agents, self.n_actions = n_envs, n_agents, n_actions

    def get_env_info(self):
        return {"state_shape": 2, "obs_shape": 2, "n_actions": self.n_actions, "n_agents": self.n_agents,
                "episode_limit": 1}

    def reset(self):
        pass

    def step(self, actions, active):
        target = np.arange(self.n_agents) % self.n_actions
        rewards = (np.asarray(actions) == target).astype(np.float32)
        return rewards, np.ones(self.n_envs, dtype=bool), [{"episode_limit": False}] * self.n_envs

    def get_obs(self):
        return np.ones((self.n_envs, self.n_agents, 2), dtype=np.float32)

    def get_state(self):
        return np.ones((self.n_envs, 2), dtype=np.float32)

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, self.n_actions), dtype=np.float32)


class RecordingMAC(host.BasicMAC):
    """Stock controller that also returns each agent's greedy utility as an extra batch field."""

    def select_actions(self, ep_batch, t_ep, t_env, bs=slice(None), test_mode=False):
        actions, extra = super().select_actions(ep_batch, t_ep, t_env, bs, test_mode)
        extra = dict(extra, greedy_q=self._last_q[bs].max(-1, keepdim=True)[0].detach())
        return actions, extra

    def forward(self, ep_batch, t, test_mode=False):
        self._last_q = super().forward(ep_batch, t, test_mode)
        return self._last_q

    def init_hidden(self, batch_size):
        # The host's BasicMAC only knows its own agent names; any agent with init_hidden() works here.
        self.hidden_states = self.agent.init_hidden().unsqueeze(0).expand(batch_size, self.n_agents, -1)


class WideAgent(host.RNNAgent):
    """The stock RNN agent; registered under a new name to prove agents resolve through the host."""


class SumMixer(th.nn.Module):
    def forward(self, agent_qs, states):
        return agent_qs.sum(-1, keepdim=True)


class IndividualQLearner(host.learners["q_learner"]):
    """Stock Q-learner on the sum of per-agent rewards, scaled by ``example_scale``."""

    seen_fields = None

    def train(self, batch, t_env, episode_num):
        assert batch["reward"].shape[-1] == self.args.n_agents, "per-agent rewards expected"
        IndividualQLearner.seen_fields = set(batch.scheme)
        team = batch["reward"].sum(-1, keepdim=True) * self.args.example_scale
        batch.data.transition_data["reward"] = team
        return super().train(batch, t_env, episode_num)


def greedy_q_field(args, env_info):
    return {"greedy_q": {"vshape": (1,), "group": "agents"}}


def register(registry):
    registry.add_env("example_split", lambda env_args, n_envs, seed: SplitRewardGame(n_envs, **env_args),
                     {"n_agents": Param(int, 2, low=1), "n_actions": Param(int, 3, low=1)},
                     "test-only game with per-agent rewards")
    registry.add("controller", "example_mac", RecordingMAC, scheme=greedy_q_field)
    registry.add("agent", "example_rnn", WideAgent)
    registry.add("mixer", "example_sum", SumMixer)
    registry.add("learner", "example_learner", IndividualQLearner, individual_rewards=True)
    registry.add_params({"example_scale": Param(float, 1.0, low=0.0, doc="reward multiplier")})
