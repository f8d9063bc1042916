"""The suite's runner: collects episodes from a VecEnv with ``mac.select_actions``.

Registered twice: ``episode`` (one env, pymarl's EpisodeRunner) and ``parallel`` (batch_size_run
envs in one process, stepped together; pymarl's ParallelRunner without worker processes, since a
batched numpy/JAX env makes them unnecessary on 2 cores). Logs pymarl's metric names:
return_mean/std, ep_length_mean, <info key>_mean (e.g. battle_won_mean), epsilon, and the
``test_`` versions.
"""
from __future__ import annotations

import inspect
import warnings
from functools import partial

import numpy as np
import torch as th

from .errors import SuiteError
from .host import EpisodeBatch

# The writer wraps env arrays without copying and only reads them (one copy into the batch), so
# torch's notice about read-only numpy arrays (JAX gives those) does not apply.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


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

    def _observation(self, rows):
        """obs, state, avail actions (and the declared extras) of the envs ``rows`` (a slice or an
        index array), as numpy arrays (views when ``rows`` is a slice)."""
        arrays = {"state": self.env.get_state()[rows], "avail_actions": self.env.get_avail_actions()[rows],
                  "obs": self.env.get_obs()[rows]}
        if self._extra_fields:  # the env's optional per-step arrays, only those the scheme declares
            arrays.update({k: v[rows] for k, v in self.env.get_extras().items() if k in self._extra_fields})
        return arrays

    def run(self, test_mode=False):
        """One episode in every env; returns (EpisodeBatch, list of episode returns).

        Per step two writes into the batch: the step (actions, controller extras, reward,
        terminated) at t and the next observation at t + 1. While every env is active they go
        into views of the batch (``bs=slice(None)``, as pymarl's EpisodeRunner); afterwards into
        the rows of the active envs."""
        batch = self.new_batch()
        self.env.reset()
        self.mac.init_hidden(batch_size=self.batch_size)
        n, everyone = self.batch_size, np.arange(self.batch_size)
        active = np.ones(n, dtype=bool)
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        final_infos = [{} for _ in range(n)]
        write = _Writer(batch)
        write(self._observation(ALL), ALL, 0, mark_filled=True)
        t = 0
        while True:
            envs = everyone if active.all() else np.flatnonzero(active)
            rows = ALL if len(envs) == n else envs
            actions, extra = self._select(batch, t, rows, test_mode)
            chosen = picked = actions.cpu().numpy()
            if rows is not ALL:  # the env takes a row per env; inactive rows are ignored
                chosen = np.zeros((n, *picked.shape[1:]), dtype=picked.dtype)
                chosen[envs] = picked
            rewards, terminated, infos = self.env.step(chosen, active)
            rewards = np.asarray(rewards, dtype=np.float32)[rows]
            ended = np.asarray(terminated, dtype=bool)[rows]
            bootstrap = np.array([not infos[i].get("episode_limit", False) for i in envs])
            step = {"actions": actions, "reward": self._reward_field(rewards), "terminated": (ended & bootstrap)}
            step.update({k: v for k, v in extra.items() if k in self.scheme})
            write(step, rows, t)
            returns[rows] += rewards.reshape(len(envs), -1).sum(-1) if rewards.ndim > 1 else rewards
            lengths[rows] += 1
            t += 1
            write(self._observation(rows), rows, t, mark_filled=True)  # also after the last step (targets use it)
            for i in envs[ended]:
                final_infos[i] = infos[i]
            active[envs[ended]] = False
            if not active.any():
                break
            if t >= self.episode_limit:
                raise RuntimeError(f"env did not terminate at its episode_limit={self.episode_limit}")
        if not test_mode:
            self.t_env += int(lengths.sum())
        self._record(test_mode, returns, lengths, final_infos)
        return batch, returns.tolist()

    @th.no_grad()  # acting needs no autograd graph (pymarl's runners build one at every step)
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


ALL = slice(None)  # every env of the batch: indexing with it gives views, writing through it no copies


class _Writer:
    """Writes one time step of several fields into an EpisodeBatch in place.

    The same result as ``EpisodeBatch.update(data, bs=rows, ts=t)`` (values cast to the field's
    dtype, the scheme's preprocessing, e.g. actions -> actions_onehot, applied), without its
    per-call list and shape checks or tensor copies of numpy inputs: numpy arrays are wrapped
    without copying and copied once, into a view of the batch when ``rows`` is ``ALL`` or into
    the given rows otherwise. Shapes must match the field exactly up to size-1 dimensions.
    """

    def __init__(self, batch):
        self.data, self.filled = batch.data.transition_data, batch.data.transition_data["filled"]
        self.preprocess = batch.preprocess

    def __call__(self, arrays, rows, t, mark_filled=False):
        index = (rows, t) if rows is ALL else (th.as_tensor(rows), t)
        k = self.filled.shape[0] if rows is ALL else len(rows)
        if mark_filled:
            self.filled[index] = 1
        for key, value in arrays.items():
            dest = self.data[key]
            value = th.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
            value = value.reshape(k, *dest.shape[2:])
            if rows is ALL:
                dest[:, t].copy_(value)  # a view: one copy, cast to the field's dtype
            else:
                dest[index] = value.to(dest.dtype)
            if key in self.preprocess:
                out_key, transforms = self.preprocess[key]
                value = dest[index]
                for transform in transforms:
                    value = transform.transform(value)
                self.data[out_key][index] = value.reshape(k, *self.data[out_key].shape[2:])


def _split(selected):
    """Host MACs return (actions, extra); plain pymarl MACs return actions only."""
    if isinstance(selected, tuple):
        actions, extra = selected
        return actions, extra or {}
    return selected, {}


def register(reg):
    reg.add("runner", "episode", Runner)
    reg.add("runner", "parallel", Runner)
