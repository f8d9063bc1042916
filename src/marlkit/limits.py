"""Value checks beyond a key's type and range: each refuses input that would break a run later
with one line saying why (issue 10, item 5 and 7).

- numbers anywhere in the config (nested env_args such as a payoff matrix included) must be finite
  and fit in float32, the dtype they end up in;
- values that make a run meaningless (``RULES``) are refused with the reason;
- a run whose replay buffer and networks cannot fit in memory is refused before they are
  allocated, with the estimate (``check_memory``); an allocation that fails anyway is one line too;
- the results path must be creatable;
- YAML numbers in scientific notation without a dot (``5e-4``, ``2e6``) are numbers, as Sacred
  reads them (PyYAML alone reads them as strings).
"""
from __future__ import annotations

import math
import os
import re
import resource
import tempfile
from contextlib import contextmanager

import numpy as np
import yaml

from .errors import SuiteError

FLOAT32_MAX = float(np.finfo(np.float32).max)


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``5e-4``/``2E6`` (no dot) as floats, like Sacred's command line."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _numbers(value, path):
    """(dotted path, number) for every float in a nested config value."""
    if isinstance(value, float):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")


def check_finite(config: dict):
    """NaN, infinity and floats beyond float32 are refused wherever a number appears."""
    for path, x in _numbers(config, ""):
        top = path.split(".")[0].split("[")[0]
        if math.isnan(x):
            raise SuiteError(f"config key '{path}' is NaN: give a number")
        if math.isinf(x):
            raise SuiteError(f"config key '{path}' is {'-' if x < 0 else ''}infinite: give a finite number")
        if abs(x) > FLOAT32_MAX and top in ("env_args",):
            raise SuiteError(f"config key '{path}' = {x:g} overflows float32 (max {FLOAT32_MAX:.3g}): "
                             "rewards and observations are float32")


# key -> (predicate on the value, why the value is refused)
RULES = {
    "epsilon_anneal_time": (lambda v: v > 0, "must be > 0: epsilon is annealed over this many steps "
                                             "(use 1 to jump to epsilon_finish at once)"),
    "target_update_interval_or_tau": (lambda v: v > 0, "must be > 0: a value <= 1 is the soft-update rate tau, "
                                                       "above 1 the hard-update interval in episodes; 0 never "
                                                       "updates the target networks"),
    "load_step": (lambda v: v >= 0, "must be >= 0: it is the t_env of the checkpoint to load (0 = the newest)"),
}


def check_meaning(config: dict):
    for key, (ok, why) in RULES.items():
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not ok(value):
            raise SuiteError(f"config key '{key}' = {value} {why}")


# ---- memory ---------------------------------------------------------------------------------------

def _gb(n):
    return f"{n / 2**30:,.1f} GB" if n >= 2**27 else f"{n / 2**20:,.0f} MB"


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, capped by an address-space limit."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            used = 0
        avail = min(avail, soft - used)
    return avail


def estimate(config: dict, env_info: dict) -> dict:
    """Bytes of the big allocations of a run, by part (a lower bound: float32, pymarl's layout)."""
    n, a = int(env_info["n_agents"]), int(env_info["n_actions"])
    obs, state = int(np.prod(env_info["obs_shape"])), int(np.prod(env_info["state_shape"]))
    steps = int(env_info["episode_limit"]) + 1
    # state, obs, reward, terminated, filled (float/uint8) + per agent: action (int64),
    # avail_actions (int32), actions_onehot (float32)
    per_step = 4 * (state + n * obs + n + 1) + 2 + n * (8 + 4 * a + 4 * a)
    h = int(config.get("hidden_dim") or 64)
    e, he = int(config.get("mixing_embed_dim") or 32), int(config.get("hypernet_embed") or 64)
    inputs = obs + a + n
    agent = inputs * h + 6 * h * h + h * a  # fc1, GRU cell, fc2
    mixer = 2 * state * he + he * e * (n + 1) + 2 * state * e if config.get("mixer") else 0
    b, bs = int(config["batch_size"]), int(config["batch_size_run"])
    return {
        "replay buffer": int(config["buffer_size"]) * steps * per_step,
        "episode batches": (b + 2 * bs) * steps * per_step,
        "networks": 4 * 5 * (agent + mixer),  # weights, targets, gradients, two Adam moments
        "activations": 4 * 8 * b * steps * n * h,  # recurrent states and gates kept for backward
        "env": 4 * bs * (state + n * obs),
        "rollout hidden states": 4 * 4 * bs * n * h,  # the agents' recurrent states of batch_size_run envs
    }


def check_memory(config: dict, env_info: dict):
    parts = estimate(config, env_info)
    total, avail = sum(parts.values()), available_memory()
    if total > avail:
        biggest = max(parts, key=parts.get)
        detail = ""
        if biggest in ("replay buffer", "episode batches"):
            detail = (f" (buffer_size={config['buffer_size']} episodes x {env_info['episode_limit'] + 1} steps"
                      f" x {env_info['n_agents']} agents, obs {env_info['obs_shape']}, state {env_info['state_shape']})")
        raise SuiteError(f"this run needs about {_gb(total)} of memory, mostly the {biggest}: {_gb(parts[biggest])}"
                         f"{detail}, but only {_gb(avail)} is available; lower buffer_size, hidden_dim, "
                         "episode_limit or the env's size")


@contextmanager
def memory_guard(what):
    """An allocation that fails anyway (estimates are lower bounds) becomes one line."""
    try:
        yield
    except MemoryError as exc:  # numpy says how much it tried: "Unable to allocate 7.28 TiB for an array ..."
        said = f" ({' '.join(str(exc).split())[:160]})" if str(exc) else ""
        raise SuiteError(f"out of memory while allocating {what}{said}: lower their sizes") from None
    except RuntimeError as exc:
        text = str(exc)
        if "can't allocate memory" not in text and "not enough memory" not in text:
            raise
        found = re.search(r"allocate (\d+) bytes", text)
        size = f" ({_gb(int(found.group(1)))} requested)" if found else ""
        raise SuiteError(f"out of memory while allocating {what}{size}: lower their sizes") from None


# ---- results path -----------------------------------------------------------------------------------

def check_results_path(path):
    """local_results_path must be non-empty and a folder this process can write into (created here,
    before the run starts, so a bad path is one line instead of a failure after the Sacred run began)."""
    if not isinstance(path, str) or not path.strip():
        raise SuiteError("local_results_path is empty: give a folder for results (default 'results')")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason = "a regular file is in the way"
        raise SuiteError(f"local_results_path '{path}' cannot be used as a results folder ({reason}): "
                         "choose another path") from None
