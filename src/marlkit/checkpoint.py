"""Checkpoints that resume a run with nothing lost, written atomically and checked before use
(docs/DESIGN.md section 7).

A checkpoint directory ``<models>/<t_env>/`` holds the learner's own files (pymarl-compatible:
agent.th, mixer.th, opt.th, ...), ``suite_state.pt`` with everything else a resumed run needs
(every network and optimiser the learner holds, found by walking its attributes; the loop and
runner counters with the not-yet-logged episode statistics; RNG and env states), optionally
``buffer.pt`` with the replay buffer, and ``manifest.json`` listing every file with its size and
SHA-256.

Why it is safe:
- A save writes into ``.tmp-<t_env>-<pid>/``, fsyncs every file and the folder, and renames it to
  ``<t_env>/`` only when complete: a kill during a save never leaves a half-written step folder.
- A load first checks the manifest (missing, truncated, altered files), then loads every file with
  torch's weights-only unpickler (tensors, numbers, strings, containers): a file that needs
  arbitrary unpickling is refused, never executed.
- ``resolve`` picks the newest complete step of a models folder and says in one line which newer
  ones it skipped and why.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import shutil
import zipfile

import numpy as np
import torch as th

from .errors import SuiteError

log = logging.getLogger("marlkit")

STATE_FILE = "suite_state.pt"
BUFFER_FILE = "buffer.pt"
MANIFEST = "manifest.json"
FORMAT = 1
_TMP, _OLD = ".tmp-", ".old-"

# ---- what goes into suite_state.pt --------------------------------------------------------------

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
    np.random.set_state(tuple(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


RUNNER_FIELDS = ("t_env", "log_train_stats_t", "train_returns", "test_returns", "train_stats", "test_stats")


def runner_state(runner) -> dict:
    """The runner's logging clock and the episode statistics not logged yet (a resumed run logs
    them at the same step as an uninterrupted one)."""
    return {k: getattr(runner, k) for k in RUNNER_FIELDS if hasattr(runner, k)}


def load_runner_state(runner, state):
    for k, v in state.items():
        setattr(runner, k, v)


def _small(v: th.Tensor) -> th.Tensor:
    """``v`` as uint8 when that is lossless (one-hot, masks, actions, small grids): the buffer is
    written back into tensors of the original dtype, so resuming stays bit-exact."""
    if v.numel() == 0 or v.dtype in (th.uint8, th.bool):
        return v
    if v.is_floating_point() and not th.equal(v, v.round()):
        return v
    if v.min() < 0 or v.max() > 255:
        return v
    return v.to(th.uint8)


def buffer_state(buffer) -> dict:
    n = buffer.episodes_in_buffer
    return {"transition_data": {k: _small(v[:n]).clone() for k, v in buffer.data.transition_data.items()},
            "episode_data": {k: _small(v[:n]).clone() for k, v in buffer.data.episode_data.items()},
            "buffer_index": buffer.buffer_index, "episodes_in_buffer": n}


def load_buffer_state(buffer, state):
    n = state["episodes_in_buffer"]
    for part in ("transition_data", "episode_data"):
        for k, v in state[part].items():
            getattr(buffer.data, part)[k][:n] = v
    buffer.buffer_index, buffer.episodes_in_buffer = state["buffer_index"], n


# Plain containers only, so that torch's weights-only unpickler can read the file back.
def _plain(x):
    if isinstance(x, np.ndarray):
        return {"__ndarray__": th.from_numpy(np.ascontiguousarray(x).astype(np.int64) if x.dtype == np.uint32
                                             else np.ascontiguousarray(x)), "dtype": str(x.dtype)}
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _native(x):
    if isinstance(x, dict):
        if "__ndarray__" in x and set(x) == {"__ndarray__", "dtype"}:
            return x["__ndarray__"].numpy().astype(x["dtype"])
        return {k: _native(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_native(v) for v in x)
    return x


# ---- writing ------------------------------------------------------------------------------------

def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_manifest(folder, manifest):
    tmp = os.path.join(folder, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, MANIFEST))
    _fsync(folder)


def save(path, learner, loop: dict, signature: dict, buffer=None, env=None, runner=None, run: dict | None = None):
    """Write a checkpoint to ``path`` atomically (temporary folder, fsync, rename)."""
    path = os.path.normpath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent or ".", exist_ok=True)
    tmp = os.path.join(parent, f"{_TMP}{name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    learner.save_models(tmp)
    state = {"format": FORMAT, "signature": signature, "loop": loop, "learner": learner_state(learner),
             "rng": rng_state(), "run": run or {}}
    if runner is not None:
        state["runner"] = runner_state(runner)
    if env is not None:
        state["env"] = env.state_dict()
    th.save(_plain(state), os.path.join(tmp, STATE_FILE))
    if buffer is not None:
        th.save(buffer_state(buffer), os.path.join(tmp, BUFFER_FILE))
    files = {}
    for f in sorted(os.listdir(tmp)):
        full = os.path.join(tmp, f)
        _fsync(full)
        files[f] = {"size": os.path.getsize(full), "sha256": _sha256(full)}
    _write_manifest(tmp, {"format": FORMAT, "t_env": loop.get("t_env"), "files": files})
    if os.path.lexists(path):  # the same step saved again (e.g. a final save): swap the old one out
        old = os.path.join(parent, f"{_OLD}{name}-{os.getpid()}")
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)
    _fsync(parent or ".")


def steps_in(models) -> list:
    """The complete-looking step folders of a models folder, oldest first (temporaries excluded)."""
    return sorted((int(d) for d in os.listdir(models) if d.isdigit() and os.path.isdir(os.path.join(models, d))))


def prune(models, keep: int, buffer_newest_only: bool):
    """Keep the newest ``keep`` checkpoints (0 = all); drop the buffer from all but the newest."""
    steps = steps_in(models)
    for d in os.listdir(models):  # temporaries of saves killed before their rename
        if d.startswith((_TMP, _OLD)) and not d.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(models, d), ignore_errors=True)
    doomed = steps[:-keep] if keep else []
    for step in doomed:
        shutil.rmtree(os.path.join(models, str(step)), ignore_errors=True)
    if buffer_newest_only:
        for step in steps[len(doomed):-1]:
            folder = os.path.join(models, str(step))
            if not os.path.exists(os.path.join(folder, BUFFER_FILE)):
                continue
            manifest = _read_manifest(folder)
            if manifest is not None:  # the manifest first, so a kill in between leaves it consistent
                manifest["files"].pop(BUFFER_FILE, None)
                manifest["buffer_dropped"] = True
                _write_manifest(folder, manifest)
            os.remove(os.path.join(folder, BUFFER_FILE))


# ---- checking and reading -----------------------------------------------------------------------

def _read_manifest(folder):
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("no file list")
        return manifest
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise _Bad(f"{MANIFEST} is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")


class _Bad(Exception):
    """What is wrong with one checkpoint folder (a short phrase naming the file)."""


def _check_files(folder, manifest):
    for name, meta in manifest["files"].items():
        full = os.path.join(folder, name)
        if not os.path.isfile(full):
            raise _Bad(f"{name} is missing" if not os.path.exists(full) else f"{name} is not a file")
        size = os.path.getsize(full)
        if size == 0 and meta["size"]:
            raise _Bad(f"{name} is empty (0 of {meta['size']} bytes)")
        if size < meta["size"]:
            raise _Bad(f"{name} is truncated or overwritten ({size} of {meta['size']} bytes)")
        if size != meta["size"]:
            raise _Bad(f"{name} has the wrong size ({size} bytes, {meta['size']} written)")
        if _sha256(full) != meta["sha256"]:
            raise _Bad(f"{name} is corrupt (its checksum differs from the one written)")


def _torch_load(folder, name):
    """th.load with the weights-only unpickler; any problem is a _Bad naming the file."""
    full = os.path.join(folder, name)
    if not os.path.isfile(full):
        raise _Bad(f"{name} is missing" if not os.path.exists(full) else f"{name} is not a file")
    if os.path.getsize(full) == 0:
        raise _Bad(f"{name} is empty (0 bytes)")
    try:
        return th.load(full, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise _Bad(f"{name} needs arbitrary unpickling (it holds Python objects, not plain tensors and "
                       "numbers); refused, since unpickling can run code: re-save it with this suite") from None
        raise _Bad(f"{name} is not a torch file or is corrupt ({_first(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError, KeyError,
            IndexError, TypeError, UnicodeDecodeError) as exc:
        raise _Bad(f"{name} is not a torch file or is truncated/corrupt ({_first(exc)})") from None


def _first(exc):
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)


def examine(folder, weights_only=False):
    """The state of a checkpoint folder, checked: (suite_state or None, manifest or None).
    Raises _Bad with what is wrong."""
    if not os.path.isdir(folder):
        raise _Bad("is not a folder")
    manifest = _read_manifest(folder)
    if manifest is not None:
        _check_files(folder, manifest)
    names = sorted(manifest["files"]) if manifest else sorted(
        f for f in os.listdir(folder) if f.endswith((".th", ".pt")))
    if not names:
        raise _Bad("holds no checkpoint files")
    state = None
    for name in names:
        if name.endswith((".th", ".pt")) and name != BUFFER_FILE:  # the buffer is read (and checked) by load
            loaded = _torch_load(folder, name)
            if name == STATE_FILE:
                state = loaded
    if state is None:
        if not weights_only:
            raise _Bad(f"has network files but no {STATE_FILE} (no counters, buffer or RNG states): set "
                       "checkpoint_weights_only=True to load the weights alone")
        return None, manifest
    if not isinstance(state, dict) or not {"signature", "loop", "learner", "rng"} <= set(state):
        raise _Bad(f"{STATE_FILE} is not a marlkit checkpoint state (foreign file)")
    return _native(state), manifest


def resolve(checkpoint_path, load_step=0, weights_only=False):
    """(step folder, checked state) to load: checkpoint_path itself if it holds files, else its newest
    complete step (or the complete one closest to load_step), saying in one line what it skipped."""
    if not os.path.isdir(checkpoint_path):
        why = " (it does not exist)" if not os.path.exists(checkpoint_path) else ""
        raise SuiteError(f"checkpoint_path '{checkpoint_path}' is not a directory{why}")
    steps = steps_in(checkpoint_path)
    if not steps:
        if any(f.endswith((".th", ".pt")) or f == MANIFEST for f in os.listdir(checkpoint_path)):
            try:
                return checkpoint_path, examine(checkpoint_path, weights_only)[0]
            except _Bad as exc:
                raise SuiteError(f"checkpoint {checkpoint_path}: {exc}") from None
        raise SuiteError(f"checkpoint_path '{checkpoint_path}' holds no saved models (expected <t_env>/ folders)")
    order = sorted(steps, key=lambda s: -s) if not load_step else sorted(steps, key=lambda s: (abs(s - load_step), -s))
    skipped = []
    for step in order:
        folder = os.path.join(checkpoint_path, str(step))
        try:
            state = examine(folder, weights_only)[0]
        except _Bad as exc:
            skipped.append(f"{step}/ ({exc})")
            continue
        if skipped:
            log.warning(f"checkpoint: skipped {'; '.join(skipped)}; loading step {step}")
        return folder, state
    raise SuiteError(f"no loadable checkpoint in {checkpoint_path}: {'; '.join(skipped)}")


def load(path, learner, signature: dict, buffer=None, env=None, runner=None, state=None, weights_only=False) -> dict:
    """Restore a checkpoint into ``learner`` (and buffer/env/runner/RNG); returns the loop counters.
    ``state`` is the folder's checked suite state when the caller already has it (see resolve)."""
    if state is None:
        try:
            state = examine(path, weights_only)[0]
        except _Bad as exc:
            raise SuiteError(f"checkpoint {path}: {exc}") from None
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
    except (RuntimeError, KeyError, FileNotFoundError, ValueError, TypeError) as exc:
        raise SuiteError(f"checkpoint {path} does not match this config's networks: {_first(exc)}") from None
    if state is None:  # network files only (checkpoint_weights_only=True)
        step = os.path.basename(os.path.normpath(path))
        log.warning(f"checkpoint {path}: weights only; counters, buffer and RNG start fresh")
        return {"t_env": int(step) if step.isdigit() else 0}
    if buffer is not None:
        if os.path.exists(os.path.join(path, BUFFER_FILE)):
            try:
                load_buffer_state(buffer, _torch_load(path, BUFFER_FILE))
            except _Bad as exc:
                raise SuiteError(f"checkpoint {path}: {exc}") from None
            except (RuntimeError, KeyError, IndexError, TypeError) as exc:
                raise SuiteError(f"checkpoint {path}: {BUFFER_FILE} does not fit this run's buffer ({_first(exc)})") from None
        elif "buffer" in state:  # an older checkpoint with the buffer inside suite_state.pt
            load_buffer_state(buffer, state["buffer"])
        else:
            log.warning(f"checkpoint {path} holds no replay buffer (checkpoint_buffer kept it only in newer "
                        "checkpoints, or was False): the resumed run starts with an empty buffer")
    if env is not None and "env" in state:
        env.load_state_dict(state["env"])
    if runner is not None and "runner" in state:
        load_runner_state(runner, state["runner"])
    set_rng_state(state["rng"])
    return state["loop"]
