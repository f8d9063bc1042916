"""The suite's runner: collects episodes from a VecEnv with ``mac.select_actions``.

Registered twice: ``episode`` (one env, pymarl's EpisodeRunner) and ``parallel`` (batch_size_run
envs in one process, stepped together; pymarl's ParallelRunner without worker processes, since a
batched numpy/JAX env makes them unnecessary on 2 cores). Logs pymarl's metric names:
return_mean/std, ep_length_mean, <info key>_mean (e.g. battle_won_mean), epsilon, and the
``test_`` versions.
"""
from __future__ import annotations

import inspect
from functools import partial

import numpy as np
import torch as th

from .errors import SuiteError
from .host import EpisodeBatch


class Runner:
    def __init__(self, args, logger, env):
        self.args = args
        self.logger = logger
        self.env = env
        self.batch_size = env.n_envs
        self.env_info = env.get_env_info()
        self.episode_limit = self.env_info["episode_limit"]
        self.t_env = 0
        self.train_returns, self.test_returns = [], []
        self.train_stats, self.test_stats = {}, {}
        self.log_train_stats_t = -1000000
        self.mac = None
        self.new_batch = None

    def get_env_info(self):
        return self.env_info

    def setup(self, scheme, groups, preprocess, mac):
        self.new_batch = partial(EpisodeBatch, scheme, groups, self.batch_size, self.episode_limit + 1,
                                 preprocess=preprocess, device=self.args.device)
        self.mac = mac
        self.scheme = scheme
        # Controllers whose select_actions takes no ``bs`` (e.g. the host's MADDPG one) act on the whole batch.
        self._mac_takes_bs = "bs" in inspect.signature(mac.select_actions).parameters
        # The env's declared extras that some component's scheme asks for (usually none: no calls).
        self._extra_fields = frozenset(self.env_info.get("extras", {})) & frozenset(scheme)

    def close_env(self):
        self.env.close()

    def _put(self, batch, arrays, envs, t):
        """Write numpy arrays into the batch, cast to the scheme's dtypes."""
        batch.update({k: th.as_tensor(v, dtype=self.scheme[k].get("dtype", th.float32)) for k, v in arrays.items()},
                     bs=envs, ts=t)

    def _observe(self, batch, envs, t):
        if len(envs):
            arrays = {"state": self.env.get_state()[envs], "avail_actions": self.env.get_avail_actions()[envs],
                      "obs": self.env.get_obs()[envs]}
            if self._extra_fields:  # the env's optional per-step arrays, only those the scheme declares
                arrays.update({k: v[envs] for k, v in self.env.get_extras().items() if k in self._extra_fields})
            self._put(batch, arrays, envs, t)

    def run(self, test_mode=False):
        """One episode in every env; returns (EpisodeBatch, list of episode returns)."""
        batch = self.new_batch()
        self.env.reset()
        self.mac.init_hidden(batch_size=self.batch_size)
        n, all_envs = self.batch_size, np.arange(self.batch_size)
        active = np.ones(n, dtype=bool)
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        final_infos = [{} for _ in range(n)]
        self._observe(batch, all_envs, 0)
        t = 0
        while active.any():
            envs = np.flatnonzero(active)
            actions, extra = self._select(batch, t, envs, test_mode)
            step_data = {"actions": actions.unsqueeze(1)}
            step_data.update({k: v for k, v in extra.items() if k in self.scheme})
            batch.update(step_data, bs=envs, ts=t, mark_filled=False)
            full = np.zeros((n, self.env_info["n_agents"]), dtype=np.int64)
            full[envs] = actions.cpu().numpy()
            rewards, terminated, infos = self.env.step(full, active)
            rewards = np.asarray(rewards, dtype=np.float32)[envs]
            stored = self._reward_field(rewards)
            bootstrap = np.array([not infos[i].get("episode_limit", False) for i in envs])
            self._put(batch, {"reward": stored, "terminated": (terminated[envs] & bootstrap)[:, None]}, envs, t)
            returns[envs] += rewards.reshape(len(envs), -1).sum(-1) if rewards.ndim > 1 else rewards
            lengths[envs] += 1
            t += 1
            self._observe(batch, envs, t)  # next observation, also after the last step (targets use it)
            for i in envs[terminated[envs]]:
                final_infos[i] = infos[i]
            active[envs] = ~terminated[envs]
            if t >= self.episode_limit and active.any():
                raise RuntimeError(f"env did not terminate at its episode_limit={self.episode_limit}")
        if not test_mode:
            self.t_env += int(lengths.sum())
        self._record(test_mode, returns, lengths, final_infos)
        return batch, returns.tolist()

    def _select(self, batch, t, envs, test_mode):
        if self._mac_takes_bs:
            return _split(self.mac.select_actions(batch, t_ep=t, t_env=self.t_env, bs=envs, test_mode=test_mode))
        actions, extra = _split(self.mac.select_actions(batch, t_ep=t, t_env=self.t_env, test_mode=test_mode))
        return actions[envs], {k: v[envs] for k, v in extra.items()}

    def _reward_field(self, rewards):
        """Team reward as (1,), or per-agent rewards as (n_agents,) when the scheme asks for them."""
        width = self.scheme["reward"]["vshape"][0]
        if rewards.ndim == 1:
            if width != 1:
                raise SuiteError(f"algorithm '{self.args.alg_config}' needs per-agent rewards but env "
                                 f"'{self.args.env}' gives a team reward only")
            return rewards[:, None]
        return rewards if width != 1 else rewards.sum(-1, keepdims=True)

    def _record(self, test_mode, returns, lengths, infos):
        stats = self.test_stats if test_mode else self.train_stats
        stored = self.test_returns if test_mode else self.train_returns
        for info, length in zip(infos, lengths):
            for k, v in info.items():
                if isinstance(v, (bool, int, float, np.number)) and k != "episode_limit":
                    stats[k] = stats.get(k, 0) + float(v)
            stats["n_episodes"] = stats.get("n_episodes", 0) + 1
            stats["ep_length"] = stats.get("ep_length", 0) + int(length)
        stored.extend(returns.tolist())
        self.last_returns, self.last_infos = returns.tolist(), list(infos)
        if test_mode:
            if len(self.test_returns) >= self.args.test_nepisode:
                self._log(stored, stats, "test_")
        elif self.t_env - self.log_train_stats_t >= self.args.runner_log_interval:
            self._log(stored, stats, "")
            if hasattr(self.mac.action_selector, "epsilon"):
                self.logger.log_stat("epsilon", self.mac.action_selector.epsilon, self.t_env)
            self.log_train_stats_t = self.t_env

    def _log(self, returns, stats, prefix):
        self.logger.log_stat(prefix + "return_mean", float(np.mean(returns)), self.t_env)
        self.logger.log_stat(prefix + "return_std", float(np.std(returns)), self.t_env)
        n = stats.pop("n_episodes")
        for k, v in stats.items():
            self.logger.log_stat(prefix + k + "_mean", v / n, self.t_env)
        returns.clear()
        stats.clear()


def _split(selected):
    """Host MACs return (actions, extra); plain pymarl MACs return actions only."""
    if isinstance(selected, tuple):
        actions, extra = selected
        return actions, extra or {}
    return selected, {}


def register(reg):
    reg.add("runner", "episode", Runner)
    reg.add("runner", "parallel", Runner)
