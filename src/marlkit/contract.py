"""The plugin contract, written down once: what the suite and the host call on each component kind.

Every component a plugin adds is checked against its Protocol by ``Registry.add`` (``check``): a
missing method or a constructor that cannot take the arguments the run passes is one
``SuiteError`` line naming the plugin, the component and what is missing. The host's stock
components are the model of this contract and are not re-checked. Methods a run calls only with
some settings (a learner's checkpoint files) are checked when such a run starts.

Optional hooks (the suite calls them only when present; docs/DESIGN.md section 3):
  * ``Learner.observe_episodes(episode_batch)``: sees every new on-policy batch before the update;
  * ``Controller.select_actions`` may return ``(actions, extra)``: ``extra`` maps batch-field
    names (declared by a ``scheme`` callable) to per-step tensors the runner writes into the batch;
  * ``VecEnv.get_extras()`` with ``get_env_info()["extras"]``: per-step env arrays, read only for
    fields some component's scheme declares;
  * checkpoint state: the learner's ``save_models`` / ``load_models`` files, plus every
    ``nn.Module``, optimiser, running-statistics object and number among its attributes (found by
    marlkit.checkpoint); ``VecEnv.state_dict`` / ``load_state_dict`` for env-side state.
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, Protocol, runtime_checkable

from .errors import SuiteError


@runtime_checkable
class Learner(Protocol):
    """``Learner(mac, scheme, logger, args)``; the loop calls ``train`` on every sampled batch.

    Methods the run calls only with some settings are checked when such a run starts
    (``check_learner_for_run``): ``save_models`` (save_model=True), ``load_models``
    (checkpoint_path), ``cuda`` (use_cuda=True)."""

    def train(self, batch, t_env: int, episode_num: int) -> Any: ...


@runtime_checkable
class Controller(Protocol):
    """``Controller(scheme, groups, args)`` (a multi-agent controller, pymarl's MAC). The runner
    calls these two; the learner a config pairs it with calls more (the host's learners use
    pymarl's ``forward``, ``parameters``, ``load_state``, ``save_models``: subclass host.BasicMAC)."""

    def select_actions(self, ep_batch, t_ep: int, t_env: int, bs=..., test_mode: bool = False) -> Any:
        """Actions [len(bs), n_agents], or ``(actions, extra)`` (see the module docstring)."""
    def init_hidden(self, batch_size: int) -> None: ...


@runtime_checkable
class Agent(Protocol):
    """``Agent(input_shape, args)``: ``forward(inputs, hidden) -> (outputs, hidden)``. Agents of
    controllers that keep a recurrent state (the host's BasicMAC) also need ``init_hidden()``."""

    def forward(self, inputs, hidden_state) -> Any: ...


@runtime_checkable
class Mixer(Protocol):
    """``Mixer(args)`` (or ``Mixer()``): ``forward(agent_qs [B, T, n], states [B, T, s]) -> [B, T, 1]``."""

    def forward(self, agent_qs, states) -> Any: ...


@runtime_checkable
class ActionSelector(Protocol):
    """``ActionSelector(args)``."""

    def select_action(self, agent_inputs, avail_actions, t_env: int, test_mode: bool = False) -> Any: ...


@runtime_checkable
class Critic(Protocol):
    """``Critic(scheme, args)``, built by the host's actor-critic learners."""

    def forward(self, batch, t=None) -> Any: ...


@runtime_checkable
class Runner(Protocol):
    """``Runner(args, logger, env)``; also has ``t_env``, ``batch_size`` and, after a test run,
    ``last_returns`` / ``last_infos`` (used by evaluation)."""

    def get_env_info(self) -> dict: ...
    def setup(self, scheme, groups, preprocess, mac) -> None: ...
    def run(self, test_mode: bool = False) -> Any: ...
    def close_env(self) -> None: ...


@runtime_checkable
class VecEnv(Protocol):
    """n_envs episodes stepped together; marlkit.envs.base.VecEnv is the base class to extend."""

    n_envs: int

    def get_env_info(self) -> dict: ...
    def reset(self) -> None: ...
    def step(self, actions, active) -> Any: ...
    def get_obs(self) -> Any: ...
    def get_state(self) -> Any: ...
    def get_avail_actions(self) -> Any: ...


# An env family: ``make(env_args, n_envs, seed) -> VecEnv``.
EnvFactory = Callable[[dict, int, int], VecEnv]
# What a component needs in the episode batch: ``scheme(args, env_info) -> {field: {"vshape": ...}}``.
SchemeFn = Callable[[Any, dict], dict]

# kind -> (Protocol, the positional arguments its constructor is called with)
PROTOCOLS = {
    "learner": (Learner, ("mac", "scheme", "logger", "args")),
    "controller": (Controller, ("scheme", "groups", "args")),
    "agent": (Agent, ("input_shape", "args")),
    "mixer": (Mixer, None),  # Mixer(args) or Mixer(): the learner that builds it decides
    "action_selector": (ActionSelector, ("args",)),
    "critic": (Critic, ("scheme", "args")),
    "runner": (Runner, ("args", "logger", "env")),
}


def members(protocol) -> list:
    """The methods a Protocol requires, in declaration order."""
    return [name for name, value in vars(protocol).items() if not name.startswith("_") and callable(value)]


def check(kind: str, name: str, obj, owner: str) -> None:
    """Raise one SuiteError line if component ``obj`` does not fit the Protocol of ``kind``."""
    if kind == "env":
        return check_env_factory(name, obj.make, owner)
    protocol, ctor_args = PROTOCOLS[kind]
    where = f"{owner}: {kind} '{name}' ({getattr(obj, '__name__', type(obj).__name__)})"
    if not isinstance(obj, type):
        # A factory function (e.g. one composing a wrapper over a base class chosen by config) is
        # allowed: its product is checked when built; only its call signature is checked here.
        if not inspect.isfunction(obj):
            raise SuiteError(f"{where} must be a class or a factory function (the run builds it by name), "
                             f"got an instance")
        if ctor_args is not None and not _accepts(obj, len(ctor_args)):
            raise SuiteError(f"{where} must be callable as {obj.__name__}({', '.join(ctor_args)})")
        return
    missing = [m for m in members(protocol) if not callable(getattr(obj, m, None))]
    if missing:
        raise SuiteError(f"{where} lacks {', '.join(m + '()' for m in missing)} of the {kind} contract "
                         f"(marlkit.contract.{protocol.__name__})")
    if ctor_args is not None and not _accepts(obj, len(ctor_args)):
        raise SuiteError(f"{where} must be constructible as {obj.__name__}({', '.join(ctor_args)})")


# Learner methods a run calls only with some settings: config key -> method.
WHEN = {"save_model": "save_models", "checkpoint_path": "load_models", "use_cuda": "cuda"}


def check_learner_for_run(config: dict, learner) -> None:
    """Before a run starts: the learner class has the methods its settings will call (one line)."""
    need = {key: method for key, method in WHEN.items()
            if config.get(key) and not callable(getattr(learner, method, None))}
    if need:
        raise SuiteError(f"learner '{config['learner']}' ({learner.__name__}) has no "
                         f"{', '.join(m + '()' for m in need.values())}, which {', '.join(need)} needs; "
                         f"drop {', '.join(need)} for this algorithm")


def check_env_factory(name: str, make, owner: str) -> None:
    if not callable(make) or not _accepts(make, 3):
        shown = f"{getattr(make, '__name__', type(make).__name__)}{_signature(make)}"
        raise SuiteError(f"{owner}: env '{name}' needs make(env_args, n_envs, seed) -> VecEnv, got {shown}")


def check_env(name: str, env) -> None:
    """An env family's ``make`` returned ``env``: it must be a VecEnv (one line otherwise)."""
    missing = [m for m in members(VecEnv) if not callable(getattr(env, m, None))]
    if missing or not isinstance(getattr(env, "n_envs", None), numbers.Integral):
        what = ", ".join(m + "()" for m in missing) or "an int n_envs"
        raise SuiteError(f"env '{name}': make() returned {type(env).__name__}, which lacks {what} "
                         f"(subclass marlkit.envs.base.VecEnv)")


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return ""


def _accepts(fn, n: int) -> bool:
    """Whether ``fn`` (a class or function) can be called with ``n`` positional arguments."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature available (builtins): do not guess
        return True
    return True
