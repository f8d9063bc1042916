"""The plugin registry: one table per component kind, plus plugin hyperparameters and needs.

Plugins are packages under ``plugins/`` (and under the directories listed in the environment
variable ``MARLKIT_PLUGINS``) whose ``__init__.py`` defines ``register(registry)``. Components are
added by name; names a config asks for are resolved here, and at run time the learner, controller,
agent and action-selector tables are copied into the host's registries so a plugin component is
built exactly like a stock one. Each component a plugin adds is checked against the contract of
its kind (marlkit.contract) when it is added (docs/DESIGN.md section 3).
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from . import REPO_ROOT, contract, host
from .errors import SuiteError, unknown
from .params import Param

KINDS = ("learner", "controller", "agent", "action_selector", "mixer", "runner", "env", "critic")
# Tables the host looks names up in when it builds things itself (BasicMAC builds its agent and
# action selector from the host registries; learners build critics from the host's critic table).
_HOST_TABLES = {
    "learner": host.learners,
    "controller": host.controllers,
    "agent": host.agents,
    "action_selector": host.action_selectors,
    "critic": host.critics,
}
# The host's stock components, captured before any plugin is copied into the host tables.
_STOCK = {kind: dict(table) for kind, table in _HOST_TABLES.items()}
# Config keys whose values name a registered component.
NAME_KEYS = {"learner": "learner", "mac": "controller", "agent": "agent",
             "action_selector": "action_selector", "runner": "runner", "critic_type": "critic"}


@dataclass
class Needs:
    """What a component needs from the run, declared by its plugin."""

    scheme: Callable[[Any, dict], dict] | None = None  # (args, env_info) -> extra batch fields
    individual_rewards: bool = False  # reward field of shape (n_agents,)


@dataclass
class EnvSpec:
    """A registered environment family: ``make(env_args, n_envs, seed) -> VecEnv``."""

    make: Callable
    params: dict | None  # env_args schema; None = open (extra keys go to the env untouched)
    doc: str = ""


@dataclass
class Registry:
    tables: dict = field(default_factory=lambda: {k: {} for k in KINDS})
    needs: dict = field(default_factory=dict)  # (kind, name) -> Needs
    params: dict = field(default_factory=dict)  # config key -> Param (plugin hyperparameters)
    owners: dict = field(default_factory=dict)  # (kind, name) or ("param", key) -> plugin name
    plugins: list = field(default_factory=list)
    config_dirs: list = field(default_factory=list)  # config/ folders shipped inside out-of-tree plugins
    _owner: str = "marlkit"

    # ---- adding -------------------------------------------------------------------------
    def add(self, kind, name, obj, *, scheme=None, individual_rewards=False):
        """Register ``obj`` as component ``name`` of ``kind`` (see KINDS)."""
        if kind not in self.tables:
            raise unknown("component kind", kind, KINDS)
        if name in self.tables[kind]:
            raise SuiteError(
                f"duplicate {kind} name '{name}': registered by '{self.owners[(kind, name)]}' "
                f"and again by '{self._owner}'; rename one of them"
            )
        if not self._owner.startswith("host "):  # the host's stock components are the contract's model
            contract.check(kind, name, obj, self._owner)
        if scheme is not None and not callable(scheme):
            raise SuiteError(f"{self._owner}: scheme of {kind} '{name}' must be a callable "
                             "(args, env_info) -> {field: {'vshape': ...}}")
        self.tables[kind][name] = obj
        self.owners[(kind, name)] = self._owner
        if scheme is not None or individual_rewards:
            self.needs[(kind, name)] = Needs(scheme, individual_rewards)

    def add_env(self, name, make, params=None, doc=""):
        """Register an env family; ``params`` is its env_args schema ({key: Param}) or None (open)."""
        if params is not None and not (isinstance(params, dict) and all(isinstance(p, Param) for p in params.values())):
            raise SuiteError(f"{self._owner}: env '{name}' params must be a dict {{key: marlkit.params.Param}} or None")
        self.add("env", name, EnvSpec(make, params, doc))

    def add_params(self, params: dict):
        """Declare typed hyperparameters (config keys) with their defaults."""
        for key, spec in params.items():
            if not isinstance(spec, Param):
                raise TypeError(f"hyperparameter '{key}' must be declared with marlkit.params.Param")
            if key in self.params:
                raise SuiteError(
                    f"duplicate hyperparameter '{key}': declared by '{self.owners[('param', key)]}' "
                    f"and again by '{self._owner}'"
                )
            self.params[key] = spec
            self.owners[("param", key)] = self._owner

    # ---- looking up ---------------------------------------------------------------------
    def get(self, kind, name):
        table = self.tables[kind]
        if name not in table:
            raise unknown(kind.replace("_", " "), name, table)
        return table[name]

    def needs_of(self, args) -> list:
        """The declared needs of every component the config ``args`` uses."""
        found = []
        for key, kind in NAME_KEYS.items():
            name = getattr(args, key, None)
            if (kind, name) in self.needs:
                found.append(self.needs[(kind, name)])
        return found

    def activate(self):
        """Copy components into the host's registries so host code resolves plugin names too."""
        for kind, host_table in _HOST_TABLES.items():
            host_table.update(self.tables[kind])
        host.runners.update(self.tables["runner"])

    def resolve(self, args) -> dict:
        """Config key -> registered object, for every component the config ``args`` names.

        The run puts this on ``args.components`` so a learner that builds a component by name (a
        mixer, say) gets it passed in instead of asking a global registry. Names the host resolves
        internally (e.g. mixer 'dmaq' of QPLEX) are left out.
        """
        found = {}
        for key, kind in {**NAME_KEYS, "mixer": "mixer"}.items():
            name = getattr(args, key, None)
            if isinstance(name, str) and name in self.tables[kind]:
                found[key] = self.tables[kind][name]
        return found

    # ---- plugins ------------------------------------------------------------------------
    def load_plugins(self, dirs=None):
        """Import every plugin package in ``dirs`` and call its ``register(self)``.

        A plugin that builds on another names it in a module-level ``REQUIRES = ("other",)``; such
        plugins are registered after the ones they require (otherwise in name order), and a missing
        one is a one-line error.
        """
        dirs = plugin_dirs() if dirs is None else dirs
        found = {}  # plugin name -> (module, its folder, shipped in the repository's plugins/)
        for path in dirs:
            for name, entry in self._import_dir(os.path.abspath(path)).items():
                if name in found:
                    raise SuiteError(f"plugin '{name}' is found twice: in {found[name][1]} and in {entry[1]}; "
                                     f"remove or rename one")
                found[name] = entry
        for name in _dependency_order(found, dirs):
            module, path, main = found[name]
            self._owner = f"plugin {name}"
            try:
                module.register(self)
            finally:
                self._owner = "marlkit"
            self.plugins.append(name)
            own_config = os.path.join(path, "config")
            if not main and os.path.isdir(own_config):
                self.config_dirs.append(own_config)
        return self

    def _import_dir(self, path) -> dict:
        if not os.path.isdir(path):
            raise SuiteError(f"plugin directory '{path}' does not exist")
        parent, package = os.path.split(path)
        main = path == os.path.join(REPO_ROOT, "plugins")
        if (parent if main else path) not in sys.path:
            sys.path.insert(0, parent if main else path)
        found = {}
        for name in sorted(os.listdir(path)):
            if name.startswith(("_", ".")) or not os.path.isfile(os.path.join(path, name, "__init__.py")):
                continue
            module = importlib.import_module(f"{package}.{name}" if main else name)
            if not callable(getattr(module, "register", None)):
                raise SuiteError(f"plugin '{name}' ({path}) has no register(registry) function")
            found[name] = (module, os.path.join(path, name), main)
        return found


def _dependency_order(found: dict, dirs) -> list:
    """Plugin names with every plugin after those in its ``REQUIRES`` (name order otherwise)."""
    order, state = [], {}  # state: 1 = being visited, 2 = done

    def visit(name, chain):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise SuiteError(f"plugins require each other in a circle: {' -> '.join(chain + [name])}")
        state[name] = 1
        requires = getattr(found[name][0], "REQUIRES", ())
        if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
            raise SuiteError(f"plugin '{name}': REQUIRES must be a tuple of plugin names, got {requires!r}")
        for dep in requires:
            if dep not in found:
                raise SuiteError(f"plugin '{name}' requires plugin '{dep}', which is not installed "
                                 f"(looked in {os.pathsep.join(map(str, dirs))}; add its folder to MARLKIT_PLUGINS)")
            visit(dep, chain + [name])
        state[name] = 2
        order.append(name)

    for name in sorted(found):
        visit(name, [])
    return order


def plugin_dirs():
    """plugins/ of the repository plus any directories in $MARLKIT_PLUGINS."""
    extra = [d for d in os.environ.get("MARLKIT_PLUGINS", "").split(os.pathsep) if d]
    return [os.path.join(REPO_ROOT, "plugins"), *extra]


def builtin_registry() -> Registry:
    """A registry holding the host's stock components and the suite's runners and envs."""
    reg = Registry()
    reg._owner = f"host {host.HOST_PACKAGE}"
    from .selectors import REPLACED  # host components the suite fixes (e.g. greedy test episodes)

    for kind, stock in _STOCK.items():
        for name, obj in stock.items():
            reg.add(kind, name, REPLACED.get((kind, name), obj))
    for name, obj in host.mixers.items():
        reg.add("mixer", name, obj)
    reg._owner = "marlkit"
    from .runners import register as register_runners
    from .envs import register as register_envs

    register_runners(reg)
    register_envs(reg)
    return reg


_REGISTRY = None


def get_registry() -> Registry:
    """The process-wide registry: built-ins plus every plugin, built once."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = builtin_registry().load_plugins()
    return _REGISTRY
