"""Config loading, merging and validation (pymarl conventions, checked before any training).

Order of precedence, lowest first: the host's default.yaml, the suite's config/default.yaml, the
env YAML (config/envs/<env>.yaml), the algorithm YAML (config/algs/<alg>.yaml; either may extend
another with ``base: <name>``, see ``named_yaml``), then ``with``
updates (``key=value``, dotted keys for nesting, values parsed as YAML, as Sacred does). Every key
must be known: a host key (types inferred from the host's YAMLs), a core key (typed with ranges,
params.CORE_PARAMS), a plugin hyperparameter (declared with its type) or an env argument of the
chosen env. Names of components are checked against the registry.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from functools import lru_cache
import glob
import os

import yaml

from . import REPO_ROOT
from .errors import SuiteError, closest, unknown
from .limits import Loader, check_finite, check_meaning
from .params import CORE_PARAMS, Param, check_env_args, infer
from .registry import NAME_KEYS

CONFIG_DIR = os.path.join(REPO_ROOT, "config")


def load_yaml(path) -> dict:
    """A YAML mapping from ``path``; malformed YAML is a one-line SuiteError with the position."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"malformed YAML in {path}{where}: {problem}") from None
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SuiteError(f"{path} must hold a mapping of config keys, not a {type(data).__name__}")
    return data


def config_files(kind) -> dict:
    """name -> path of the YAMLs in config/<kind> (kind 'algs' or 'envs'), plus those shipped in
    out-of-tree plugins' own config/ folders (the repository's config/ wins on a clash)."""
    from .registry import get_registry

    found = {}
    for root in [*reversed(get_registry().config_dirs), CONFIG_DIR]:
        for path in glob.glob(os.path.join(root, kind, "*.yaml")):
            found[os.path.splitext(os.path.basename(path))[0]] = path
    return found


def available(kind) -> list:
    return sorted(config_files(kind))


def named_yaml(kind, name, _children=()) -> dict:
    """The YAML ``name`` of config/<kind> with its presets resolved: a file may name the preset it
    extends (``base: remix``) and state only what differs; the base's keys come first, the file's
    own keys override them (nested mappings such as env_args are merged key by key)."""
    files = config_files(kind)
    if name not in files:
        if _children:
            raise SuiteError(f"{files[_children[-1]]}: unknown base '{name}'{closest(name, files)}; "
                             f"base names another file of config/{kind}")
        what = "--config" if kind == "algs" else "--env-config"
        raise unknown(f"{what} name", name, files)
    if name in _children:
        raise SuiteError(f"config/{kind}: the base presets form a circle: {' -> '.join((*_children, name))}")
    data = load_yaml(files[name])
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise SuiteError(f"{files[name]}: base must be the name of another config/{kind} file, got {base!r}")
    return merge(named_yaml(kind, base, (*_children, name)), data)


def merge(base: dict, update: dict) -> dict:
    """Recursive dict update (pymarl's recursive_dict_update), returning a new dict."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_updates(tokens) -> dict:
    """Sacred-style ``with`` tokens (``a.b=1``, ``file.yaml``) into one nested update dict."""
    updates: dict = {}
    for token in tokens:
        if "=" not in token:
            if token.endswith((".yaml", ".yml")):
                updates = merge(updates, load_yaml(token))
                continue
            raise SuiteError(f"cannot parse '{token}' after 'with': use key=value (e.g. t_max=20000)")
        key, raw = token.split("=", 1)
        if not key or any(not part for part in key.split(".")):
            raise SuiteError(f"cannot parse '{token}' after 'with': empty key")
        try:
            value = yaml.load(raw, Loader=Loader) if raw != "" else ""
        except yaml.YAMLError:
            value = raw  # unparsable as YAML: keep the plain string
        node = updates
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SuiteError(f"'{key}' sets a sub-key of a non-mapping value")
        node[leaf] = value
    return updates


@lru_cache(maxsize=1)
def _host_alg_yamls() -> tuple:
    """The host's default.yaml followed by its algs/*.yaml, parsed once per process."""
    from .host import host_config_dir

    root = host_config_dir()
    files = [os.path.join(root, "default.yaml"), *sorted(glob.glob(os.path.join(root, "algs", "*.yaml")))]
    return tuple(load_yaml(path) for path in files)


def host_schema() -> dict:
    """Param for every key the host's YAMLs use (types inferred from their values)."""
    schema: dict = {}
    for layer in _host_alg_yamls():
        for key, value in layer.items():
            seen = schema.get(key)
            if seen is None:
                schema[key] = infer(value)
            elif value is None:
                schema[key] = replace(seen, nullable=True)  # the host sets it to null somewhere
            elif seen.type is not None and not _fits(seen, value):
                schema[key] = Param(None, seen.default)  # the host uses several types: accept any
    return schema


def _fits(param: Param, value) -> bool:
    try:
        param.check("_", value)
        return True
    except SuiteError:
        return False


def suite_schema(registry) -> dict:
    """Every legal top-level key with its Param (core > plugin > suite default > host)."""
    schema = host_schema()
    for key, value in load_yaml(os.path.join(CONFIG_DIR, "default.yaml")).items():
        schema[key] = infer(value) if key not in schema else schema[key]
    schema.update(registry.params)
    schema.update(CORE_PARAMS)
    return schema


def build_config(alg: str, env: str, updates: dict, registry) -> dict:
    """The merged, validated config of one run."""
    from .host import host_config_dir

    config = load_yaml(os.path.join(host_config_dir(), "default.yaml"))
    config = merge(config, load_yaml(os.path.join(CONFIG_DIR, "default.yaml")))
    env_yaml, alg_yaml = named_yaml("envs", env), named_yaml("algs", alg)
    schema = suite_schema(registry)
    for source, layer in ((f"config/envs/{env}.yaml", env_yaml), (f"config/algs/{alg}.yaml", alg_yaml), ("'with'", updates)):
        _check_keys(layer, schema, source)
        config = merge(config, layer)
    # Plugin hyperparameters not set anywhere take their declared defaults.
    for key, param in registry.params.items():
        config.setdefault(key, copy.deepcopy(param.default))
    config["env_config"] = env
    return validate(config, schema, registry)


def _check_keys(layer, schema, source):
    for key in layer:
        if key not in schema and key != "env_args":
            raise SuiteError(f"unknown config key '{key}' in {source}{closest(key, schema)}")


def validate(config: dict, schema: dict, registry) -> dict:
    """Type- and range-check every key, the component names and the env arguments."""
    check_finite(config)
    for key in list(config):
        if key == "env_args" or key not in schema:
            continue
        config[key] = schema[key].check(key, config[key])
    for key, kind in NAME_KEYS.items():
        value = config.get(key)
        if value is not None:
            registry.get(kind, value)
    mixer = config.get("mixer")
    if mixer is not None and mixer not in registry.tables["mixer"] and mixer not in _host_mixer_names():
        raise unknown("mixer", mixer, [*registry.tables["mixer"], *_host_mixer_names()])
    spec = registry.get("env", config["env"])
    config["env_args"] = check_env_args(config["env"], config.get("env_args") or {}, spec.params)
    _check_consistency(config)
    check_meaning(config)
    return config


def _host_mixer_names():
    """Mixer names the host's own learners resolve internally (e.g. 'dmaq' for QPLEX)."""
    return {layer["mixer"] for layer in _host_alg_yamls() if isinstance(layer.get("mixer"), str)}


def _check_consistency(config):
    if config["runner"] == "episode" and config["batch_size_run"] != 1:
        raise SuiteError(
            f"runner 'episode' steps one env but batch_size_run={config['batch_size_run']}; "
            "use runner=parallel for several envs"
        )
    if config["batch_size"] > config["buffer_size"]:
        raise SuiteError(
            f"batch_size={config['batch_size']} exceeds buffer_size={config['buffer_size']}: "
            "the buffer could never be sampled"
        )
    if config.get("epsilon_finish", 0) > config.get("epsilon_start", 1):
        raise SuiteError("epsilon_finish must not exceed epsilon_start")
    if config["evaluate"] and not config["checkpoint_path"]:
        raise SuiteError("evaluate=True needs checkpoint_path=<run's models directory>")
