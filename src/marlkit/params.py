"""Typed hyperparameter declarations, shared by the suite, envs and plugins.

A ``Param`` states a key's type, default and legal range once; ``Param.check`` turns a bad value
into a one-line ``SuiteError`` naming the key (docs/DESIGN.md section 3).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .errors import SuiteError, closest

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Param:
    type: Any  # one of bool/int/float/str/list/dict, or a tuple of them; None = any type
    default: Any = None
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple | None = None
    nullable: bool = False  # None is accepted
    doc: str = ""

    def types(self):
        if self.type is None:
            return ()
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def check(self, key: str, value):
        """Return ``value`` (ints widened where floats are expected) or raise SuiteError."""
        if value is None:
            if self.nullable or self.default is None:
                return None
            raise SuiteError(f"config key '{key}' must not be null (expected {self.type_name()})")
        types = self.types()
        if isinstance(value, float) and value.is_integer() and int in types and float not in types:
            value = int(value)  # 2e6 for an int key, as Sacred's command line accepts it
        if types and not _matches(value, types):
            raise SuiteError(
                f"config key '{key}' expects {self.type_name()}, got {type(value).__name__} {value!r}"
            )
        if self.choices is not None and value not in self.choices:
            raise SuiteError(
                f"config key '{key}' has value {value!r}{closest(value, self.choices)}; "
                f"allowed: {', '.join(map(str, self.choices))}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.low is not None and value < self.low:
                raise SuiteError(f"config key '{key}' = {value} is out of range: must be >= {self.low}")
            if self.high is not None and value > self.high:
                raise SuiteError(f"config key '{key}' = {value} is out of range: must be <= {self.high}")
            if float in types and int not in types:
                value = float(value)
        return value

    def type_name(self):
        types = self.types()
        return " or ".join(_TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in types) or "any"


def _matches(value, types):
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int):
        return int in types or float in types
    if isinstance(value, tuple):
        return list in types
    return isinstance(value, tuple(types))


def check_env_args(env, env_args, params):
    """``env_args`` checked against an env's schema ({key: Param}) with defaults filled in.

    Shared by config validation and by env factories (which may be called directly), so that it
    lives here, below both. ``params=None`` is an open schema: the args pass through untouched.
    """
    if not isinstance(env_args, dict):
        raise SuiteError(f"env_args must be a mapping, got {env_args!r}")
    if params is None:  # open schema (host envs take extra keyword arguments)
        return env_args
    out = {}
    for key, value in env_args.items():
        if key not in params:
            raise SuiteError(
                f"unknown env_args key '{key}' for env '{env}'{closest(key, params)}; "
                f"available: {', '.join(sorted(params))}"
            )
        out[key] = params[key].check(f"env_args.{key}", value)
    for key, param in params.items():
        out.setdefault(key, copy.deepcopy(param.default))
    return out


def infer(value) -> Param:
    """A permissive Param for a key known only from a YAML default: same type family as it."""
    if value is None:
        return Param(None, None)
    if isinstance(value, bool):
        return Param(bool, value)
    if isinstance(value, (int, float)):
        return Param((int, float), value)
    if isinstance(value, (list, tuple)):
        return Param(list, list(value))
    return Param(type(value), value)


# Keys of the core loop with their legal ranges (types of all other host keys are inferred
# from the host's own YAML files).
POS_INT = dict(type=int, low=1)
CORE_PARAMS = {
    "t_max": Param(**POS_INT, default=10000, doc="environment steps to train for"),
    "batch_size": Param(**POS_INT, default=32, doc="episodes per learner update"),
    "buffer_size": Param(**POS_INT, default=32, doc="replay buffer capacity in episodes"),
    "batch_size_run": Param(**POS_INT, default=1, doc="environments stepped together"),
    "test_nepisode": Param(**POS_INT, default=20),
    "test_interval": Param(**POS_INT, default=2000),
    "log_interval": Param(**POS_INT, default=2000),
    "runner_log_interval": Param(**POS_INT, default=2000),
    "learner_log_interval": Param(**POS_INT, default=2000),
    "save_model_interval": Param(**POS_INT, default=50000),
    "hidden_dim": Param(**POS_INT, default=64),
    "mixing_embed_dim": Param(**POS_INT, default=32),
    "hypernet_embed": Param(**POS_INT, default=64),
    "num_circle": Param(**POS_INT, default=1),
    "epochs": Param(**POS_INT, default=4),
    "lr": Param(float, 0.0005, low=1e-12),
    "gamma": Param(float, 0.99, low=0.0, high=1.0),
    "td_lambda": Param(float, 0.6, low=0.0, high=1.0),
    "epsilon_start": Param(float, 1.0, low=0.0, high=1.0),
    "epsilon_finish": Param(float, 0.05, low=0.0, high=1.0),
    "epsilon_anneal_time": Param((int, float), 50000, low=0),
    "evaluation_epsilon": Param(float, 0.0, low=0.0, high=1.0),
    "grad_norm_clip": Param(float, 10, low=0.0),
    "target_update_interval_or_tau": Param((int, float), 200, low=0.0),
    "seed": Param(int, None, low=0, high=2**31 - 1, nullable=True),
    "torch_threads": Param(**POS_INT, default=1, doc="CPU threads of torch (and XLA) in this run, set before "
                           "anything is built; 1 keeps parallel runs from oversubscribing the cores"),
    "checkpoint_keep": Param(int, 3, low=0, doc="checkpoints kept per run (the newest K); 0 keeps all"),
    "checkpoint_buffer": Param((bool, str), "last", choices=(True, False, "last"),
                               doc="replay buffer in checkpoints: True in every kept one, 'last' only in the newest"),
    "checkpoint_weights_only": Param(bool, False, doc="load a checkpoint that has network files only"),
}
