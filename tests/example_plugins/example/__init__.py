"""A tiny plugin that exercises every part of the plugin contract (marlkit.contract; used by the
tests only, loaded from outside the repository's plugins/ through MARLKIT_PLUGINS).

It registers an env family with per-agent rewards, a per-step extra array (``get_extras``) and
checkpointed env state (``state_dict``); a controller that records an extra episode-batch field
(``select_actions`` returning ``(actions, extra)``); an agent; a mixer; a learner that needs
per-agent rewards and both extra fields, sees every new batch (``observe_episodes``) and keeps a
counter that checkpoints restore; and a typed hyperparameter.
"""
import numpy as np
import torch as th

from marlkit import host
from marlkit.envs.base import VecEnv
from marlkit.params import Param


class SplitRewardGame(VecEnv):
    """One-step game: agent i is rewarded 1 for action i % n_actions, 0 otherwise.

    Extras: ``episode_parity`` (per agent, the parity of the episodes played so far), an env-side
    counter that checkpoints keep through ``state_dict``.
    """

    def __init__(self, n_envs, n_agents=2, n_actions=3):
        self.n_envs, self.n_agents, self.n_actions = n_envs, n_agents, n_actions
        self.episodes = 0

    def get_env_info(self):
        return {"state_shape": 2, "obs_shape": 2, "n_actions": self.n_actions, "n_agents": self.n_agents,
                "episode_limit": 1, "extras": {"episode_parity": (1,)}}

    def reset(self):
        self.episodes += 1

    def step(self, actions, active):
        target = np.arange(self.n_agents) % self.n_actions
        rewards = (np.asarray(actions) == target).astype(np.float32)
        return rewards, np.ones(self.n_envs, dtype=bool), [{"episode_limit": False}] * self.n_envs

    def get_extras(self):
        return {"episode_parity": np.full((self.n_envs, self.n_agents, 1), self.episodes % 2, dtype=np.float32)}

    def state_dict(self):
        return {"episodes": self.episodes}

    def load_state_dict(self, state):
        self.episodes = state["episodes"]

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
    """Stock Q-learner on the sum of per-agent rewards, scaled by ``example_scale``; counts the
    episodes it is shown through the optional ``observe_episodes`` hook (a checkpointed counter)."""

    seen_fields = None

    def __init__(self, mac, scheme, logger, args):
        super().__init__(mac, scheme, logger, args)
        self.observed_episodes = 0

    def observe_episodes(self, episode_batch):
        self.observed_episodes += episode_batch.batch_size

    def train(self, batch, t_env, episode_num):
        assert batch["reward"].shape[-1] == self.args.n_agents, "per-agent rewards expected"
        IndividualQLearner.seen_fields = set(batch.scheme)
        team = batch["reward"].sum(-1, keepdim=True) * self.args.example_scale
        batch.data.transition_data["reward"] = team
        return super().train(batch, t_env, episode_num)


def greedy_q_field(args, env_info):
    return {"greedy_q": {"vshape": (1,), "group": "agents"}}


def parity_field(args, env_info):
    """The env's extra array, declared with the shape the env reports (nothing on other envs)."""
    shape = env_info.get("extras", {}).get("episode_parity")
    return {} if shape is None else {"episode_parity": {"vshape": shape, "group": "agents"}}


def register(registry):
    registry.add_env("example_split", lambda env_args, n_envs, seed: SplitRewardGame(n_envs, **env_args),
                     {"n_agents": Param(int, 2, low=1), "n_actions": Param(int, 3, low=1)},
                     "test-only game with per-agent rewards")
    registry.add("controller", "example_mac", RecordingMAC, scheme=greedy_q_field)
    registry.add("agent", "example_rnn", WideAgent)
    registry.add("mixer", "example_sum", SumMixer)
    registry.add("learner", "example_learner", IndividualQLearner, scheme=parity_field, individual_rewards=True)
    registry.add_params({"example_scale": Param(float, 1.0, low=0.0, doc="reward multiplier")})
