"""Checkpoints that resume a run with nothing lost (docs/DESIGN.md section 7).

A checkpoint directory ``<models>/<t_env>/`` holds the learner's own files (pymarl-compatible:
agent.th, mixer.th, opt.th, ...) plus ``suite_state.pt`` with everything else a resumed run needs:
every network and optimiser the learner holds (target and central networks included, found by
walking its attributes), its counters, the loop counters, RNG states and, optionally, the replay
buffer.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch as th

from .errors import SuiteError

STATE_FILE = "suite_state.pt"


def _stateful(obj):
    """(get, set) for objects whose state we can capture, else None."""
    if isinstance(obj, (th.nn.Module, th.optim.Optimizer)):
        return obj.state_dict, obj.load_state_dict
    agent = getattr(obj, "agent", None)
    if isinstance(agent, th.nn.Module):  # a MAC
        return agent.state_dict, agent.load_state_dict
    if hasattr(obj, "mean") and hasattr(obj, "var") and hasattr(obj, "count"):  # RunningMeanStd

        def get():
            return {"mean": obj.mean, "var": obj.var, "count": obj.count}

        def put(state):
            obj.mean, obj.var, obj.count = state["mean"], state["var"], state["count"]

        return get, put
    return None


def learner_state(learner) -> dict:
    state = {}
    for name, value in vars(learner).items():
        if name in ("args", "logger"):
            continue
        access = _stateful(value)
        if access is not None:
            state[name] = access[0]()
        elif isinstance(value, (bool, int, float)):
            state[name] = value
    return state


def load_learner_state(learner, state):
    for name, saved in state.items():
        current = getattr(learner, name, None)
        access = _stateful(current)
        if access is not None:
            access[1](saved)
        elif name in vars(learner):
            setattr(learner, name, saved)


def rng_state() -> dict:
    return {"torch": th.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state):
    th.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def buffer_state(buffer) -> dict:
    n = buffer.episodes_in_buffer
    return {"transition_data": {k: v[:n].clone() for k, v in buffer.data.transition_data.items()},
            "episode_data": {k: v[:n].clone() for k, v in buffer.data.episode_data.items()},
            "buffer_index": buffer.buffer_index, "episodes_in_buffer": n}


def load_buffer_state(buffer, state):
    n = state["episodes_in_buffer"]
    for part in ("transition_data", "episode_data"):
        for k, v in state[part].items():
            getattr(buffer.data, part)[k][:n] = v
    buffer.buffer_index, buffer.episodes_in_buffer = state["buffer_index"], n


def save(path, learner, loop: dict, signature: dict, buffer=None, env=None):
    os.makedirs(path, exist_ok=True)
    learner.save_models(path)
    state = {"signature": signature, "loop": loop, "learner": learner_state(learner), "rng": rng_state()}
    if buffer is not None:
        state["buffer"] = buffer_state(buffer)
    if env is not None:
        state["env"] = env.state_dict()
    th.save(state, os.path.join(path, STATE_FILE))


def resolve(checkpoint_path, load_step=0) -> str:
    """The step directory to load: checkpoint_path itself, or its newest (or load_step-closest) step."""
    if not os.path.isdir(checkpoint_path):
        raise SuiteError(f"checkpoint_path '{checkpoint_path}' is not a directory")
    steps = [int(d) for d in os.listdir(checkpoint_path) if d.isdigit() and os.path.isdir(os.path.join(checkpoint_path, d))]
    if not steps:
        if any(f.endswith(".th") or f == STATE_FILE for f in os.listdir(checkpoint_path)):
            return checkpoint_path
        raise SuiteError(f"checkpoint_path '{checkpoint_path}' holds no saved models (expected <t_env>/ folders)")
    step = max(steps) if not load_step else min(steps, key=lambda s: abs(s - load_step))
    return os.path.join(checkpoint_path, str(step))


def load(path, learner, signature: dict, buffer=None, env=None) -> dict:
    """Restore a checkpoint into ``learner`` (and buffer/env/RNG); returns the loop counters."""
    state_file = os.path.join(path, STATE_FILE)
    state = th.load(state_file, weights_only=False) if os.path.exists(state_file) else None
    if state is not None:
        for key, value in signature.items():
            saved = state["signature"].get(key)
            if saved != value:
                raise SuiteError(
                    f"checkpoint {path} does not match this run: {key} is {saved!r} there and {value!r} here "
                    "(use the same --config, --env-config and map as the run that saved it)"
                )
    try:
        learner.load_models(path)
        if state is not None:
            load_learner_state(learner, state["learner"])
    except (RuntimeError, KeyError, FileNotFoundError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SuiteError(f"checkpoint {path} does not match this config's networks: {first}") from None
    if state is None:  # a plain pymarl checkpoint: weights and optimiser only
        step = os.path.basename(os.path.normpath(path))
        return {"t_env": int(step) if step.isdigit() else 0}
    if buffer is not None and "buffer" in state:
        load_buffer_state(buffer, state["buffer"])
    if env is not None and "env" in state:
        env.load_state_dict(state["env"])
    set_rng_state(state["rng"])
    return state["loop"]
