"""Shared helpers of the tests: tiny run settings and an in-process runner."""
import glob
import json
import os
from types import SimpleNamespace

from marlkit.experiment import run

TINY = dict(t_max=120, test_interval=60, log_interval=60, runner_log_interval=60, learner_log_interval=60,
            test_nepisode=4)


def tiny_updates(alg, **extra):
    """Settings that make any algorithm config train a few hundred steps quickly."""
    from marlkit.config import named_yaml

    updates = dict(TINY)
    cfg = named_yaml("algs", alg)  # with its base presets resolved
    if cfg.get("buffer_size", 32) > 64:  # off-policy: small buffer so learning starts at once
        updates.update(batch_size=4, buffer_size=16)
    updates.update(extra)
    return updates


def run_tiny(alg, env_config, tmp_path, **extra):
    updates = tiny_updates(alg, local_results_path=str(tmp_path), **extra)
    return run(alg, env_config, updates)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return json.load(f)


def sacred_dirs(root):
    paths = glob.glob(os.path.join(root, "sacred", "*", "*", "*"))
    return sorted(p for p in paths if os.path.basename(p).isdigit())


def check_time_limit_and_frozen_env(env, limit, actions):
    """Env 0 runs to the time limit (episode_limit set only then); env 1, inactive, never changes."""
    import numpy as np

    active = np.array([True, False])
    frozen = env.get_state()[1].copy()
    for t in range(1, limit + 1):
        rewards, terminated, infos = env.step(actions, active)
        assert rewards[1] == 0 and (env.get_state()[1] == frozen).all()
        assert terminated[0] == (t == limit) and infos[0]["episode_limit"] == (t == limit)
    return terminated


class Stats:
    """A logger that keeps the last value of every stat (``logged[key]``)."""

    def __init__(self):
        self.logged = {}

    def log_stat(self, key, value, t):
        self.logged[key] = value


def runner_args(**over):
    """The args a bare Runner (plus build_scheme) needs, for runner tests without a full config."""
    base = dict(device="cpu", common_reward=True, runner_log_interval=1, test_nepisode=1, alg_config="t",
                env="test", learner="q_learner", mac="basic_mac", agent="rnn", action_selector="epsilon_greedy",
                runner="parallel", critic_type=None)
    return SimpleNamespace(**{**base, **over})
