"""Real StarCraft II: SMAC (``sc2``) and SMACv2 (``sc2v2``) behind the suite's VecEnv.

Each of the ``n_envs`` parallel slots holds one SMAC env (its own StarCraft II process) wrapped in
``SMACAdapter``, which exposes the pymarl single-env API that ``SerialVecEnv`` steps. Nothing here
imports smac or smacv2 at module load: they are imported inside ``make_sc2`` / ``make_sc2v2`` only
(importing both in one process makes pysc2 see every map twice, so never import them together).

Before any StarCraft II process starts, the missing pieces are checked in this order, each giving
one line (SuiteError): the package itself (smac / smacv2 from git, with its pysc2 / protobuf
dependencies), the unrelated PyPI package that is also called ``smac``, the StarCraft II install
(SC2PATH or the default path, with a ``Versions/`` directory), the map name (SMAC's own map
registry, with a did-you-mean), and the map file under ``Maps/SMAC_Maps``.

Semantics kept from SMAC and pymarl:
- info keys are SMAC's own (``battle_won``, ``dead_allies``, ``dead_enemies`` and, when SMAC sets
  it, ``episode_limit``), so win rates are logged exactly as pymarl logs them.
- A time-out is a truncation (``episode_limit`` True, learners bootstrap) only when
  ``continuing_episode`` is True, as in SMAC. With SMAC's default ``continuing_episode: False``
  SMAC reports the time-out as a plain termination, and the adapter makes that explicit by adding
  ``episode_limit: False`` to the info of a terminal step that lacks the key (otherwise
  SerialVecEnv would turn the time-out into a truncation, unlike pymarl's SMAC runs).
- Each slot gets its own game seed, ``derived_seeds(base, n_envs)``, where ``base`` is
  ``env_args.seed`` when set and the run seed otherwise. SMACv2 draws its unit types and start
  positions from its own unseeded generators, so those draws are not reproducible from the seed.
"""
from __future__ import annotations

import copy
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Mapping

import numpy as np

from ..errors import SuiteError, unknown
from ..params import Param
from .base import SerialVecEnv, derived_seeds

SMAC_GIT = "git+https://github.com/oxwhirl/smac.git"
SMACV2_GIT = "git+https://github.com/oxwhirl/smacv2.git"
SMAC_MAPS_URL = "https://github.com/oxwhirl/smac/releases/download/v0.1-beta1/SMAC_Maps.zip"
SMACV2_MAPS_URL = "https://github.com/oxwhirl/smacv2/releases/download/maps/SMAC_Maps.zip"
SC2_DEPS = "pip install pysc2==3.0.0 s2clientprotocol==4.10.1.75800.0 'protobuf<3.21'"
DOCKER_HINT = "real StarCraft II runs go through docker/ (see docker/README.md)"
SMAX_HINT = "SMAX (--env-config=smax) runs SMAC-style maps on CPU without StarCraft II"

# ---- env_args schemas ---------------------------------------------------------------------------
# StarCraft2Env keyword arguments as pymarl's config/envs/sc2.yaml sets them (pymarl's defaults).
_COMMON = {
    "continuing_episode": Param(bool, False, doc="time-out is a truncation (info episode_limit) instead of an end"),
    "difficulty": Param(str, "7", choices=tuple("123456789A"), doc="built-in AI level, '7' = VeryHard"),
    "game_version": Param(str, None, nullable=True, doc="StarCraft II version to launch; null = latest installed"),
    "move_amount": Param((int, float), 2, low=0, doc="distance of one move action"),
    "obs_all_health": Param(bool, True),
    "obs_instead_of_state": Param(bool, False, doc="state = concatenated observations"),
    "obs_last_action": Param(bool, False),
    "obs_own_health": Param(bool, True),
    "obs_pathing_grid": Param(bool, False),
    "obs_terrain_height": Param(bool, False),
    "obs_timestep_number": Param(bool, False),
    "reward_death_value": Param((int, float), 10),
    "reward_defeat": Param((int, float), 0),
    "reward_negative_scale": Param((int, float), 0.5),
    "reward_only_positive": Param(bool, True),
    "reward_scale": Param(bool, True),
    "reward_scale_rate": Param((int, float), 20),
    "reward_sparse": Param(bool, False),
    "reward_win": Param((int, float), 200),
    "replay_dir": Param(str, "", doc="directory for .SC2Replay files; '' = StarCraftII/Replays"),
    "replay_prefix": Param(str, ""),
    "state_last_action": Param(bool, True),
    "state_timestep_number": Param(bool, False),
    "step_mul": Param(int, 8, low=1, doc="game steps per agent step"),
    "heuristic_ai": Param(bool, False),
    "heuristic_rest": Param(bool, False),
    "debug": Param(bool, False),
    "seed": Param(int, None, low=0, high=2**31 - 1, nullable=True,
                  doc="base of the per-env game seeds; null = the run seed"),
}

SC2_PARAMS = {"map_name": Param(str, "3m", doc="SMAC map, e.g. 3m, 8m, 2s3z, 3s5z, 5m_vs_6m, MMM2"), **_COMMON}

# SMACv2's protoss_5_vs_5 scenario (sc2_gen_protoss.yaml of the smacv2 repository).
PROTOSS_5_VS_5 = {
    "n_units": 5,
    "n_enemies": 5,
    "team_gen": {
        "dist_type": "weighted_teams",
        "unit_types": ["stalker", "zealot", "colossus"],
        "weights": [0.45, 0.45, 0.1],
        "observe": True,
    },
    "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32},
}

SC2V2_PARAMS = {
    "map_name": Param(str, "10gen_protoss", doc="10gen_protoss, 10gen_terran or 10gen_zerg"),
    "capability_config": Param(dict, PROTOSS_5_VS_5,
                               doc="SMACv2 scenario generator: n_units, n_enemies, team_gen, start_positions"),
    **_COMMON,
    "conic_fov": Param(bool, False, doc="agents see a cone and get num_fov_actions turn actions"),
    "num_fov_actions": Param(int, 12, low=1),
    "use_unit_ranges": Param(bool, True, doc="true sight/attack ranges per unit type"),
    "min_attack_range": Param((int, float), 2, low=0),
    "obs_own_pos": Param(bool, True),
    # Keys of smacv2's StarCraft2Env that its example configs leave at the env's default; they are
    # passed only when changed, so smacv2 versions without them still build.
    "fully_observable": Param(bool, False),
    "kill_unit_step_mul": Param(int, 2, low=0),
    "action_mask": Param(bool, True),
    "prob_obs_enemy": Param(float, 1.0, low=0.0, high=1.0),
    "obs_starcraft": Param(bool, True),
}
_V2_PASS_IF_CHANGED = ("fully_observable", "kill_unit_step_mul", "action_mask", "prob_obs_enemy", "obs_starcraft")

ENV_INFO_KEYS = ("state_shape", "obs_shape", "n_actions", "n_agents", "episode_limit")


# ---- the adapter ------------------------------------------------------------------------------------
class SMACAdapter:
    """One SMAC / SMACv2 env with the pymarl single-env API that SerialVecEnv steps."""

    def __init__(self, env):
        self.env = env
        info = dict(env.get_env_info())
        missing = [k for k in ENV_INFO_KEYS if k not in info]
        if missing:
            raise SuiteError(f"the StarCraft env's get_env_info() lacks {', '.join(missing)}")
        self._info = info

    def get_env_info(self):
        return dict(self._info)

    def reset(self):
        self.env.reset()
        return self.get_obs(), self.get_state()

    def step(self, actions):
        actions = [int(a) for a in np.asarray(actions).reshape(-1)]
        reward, terminated, info = self.env.step(actions)
        info = dict(info or {})
        terminated = bool(terminated)
        if terminated and "episode_limit" not in info:
            info["episode_limit"] = False  # SMAC ended the episode itself (see module docstring)
        return float(reward), terminated, info

    def get_obs(self):
        return np.asarray(self.env.get_obs(), dtype=np.float32)

    def get_state(self):
        return np.asarray(self.env.get_state(), dtype=np.float32)

    def get_avail_actions(self):
        return np.asarray(self.env.get_avail_actions(), dtype=np.float32)

    def get_stats(self):
        return self.env.get_stats()

    def save_replay(self):
        self.env.save_replay()

    def close(self):
        self.env.close()


# ---- factories ------------------------------------------------------------------------------------------
def make_sc2(env_args, n_envs, seed):
    """``n_envs`` SMAC envs (``smac.env.StarCraft2Env``) as one SerialVecEnv."""
    kwargs = _merged(SC2_PARAMS, env_args, "sc2")
    backend = _import_backend("smac")
    _check_install()
    _check_map(backend, kwargs["map_name"])
    return _build(backend.env_cls, kwargs, n_envs, seed)


def make_sc2v2(env_args, n_envs, seed):
    """``n_envs`` SMACv2 envs (``StarCraftCapabilityEnvWrapper``) as one SerialVecEnv."""
    kwargs = _merged(SC2V2_PARAMS, env_args, "sc2v2")
    for key in _V2_PASS_IF_CHANGED:
        if kwargs[key] == SC2V2_PARAMS[key].default:
            del kwargs[key]
    cap = kwargs["capability_config"]
    absent = [k for k in ("n_units", "n_enemies") if k not in cap]
    if absent:
        raise SuiteError(f"env_args.capability_config needs {' and '.join(absent)} (SMACv2 reads both)")
    backend = _import_backend("smacv2")
    _check_install()
    _check_map(backend, kwargs["map_name"])
    return _build(backend.env_cls, kwargs, n_envs, seed)


def _build(env_cls, kwargs, n_envs, seed):
    _absl_flags_parsed()
    base = kwargs["seed"] if kwargs.get("seed") is not None else seed
    envs = []
    try:
        for s in derived_seeds(base, n_envs):
            # Fresh copies per env: SMACv2's wrapper writes into its capability_config.
            envs.append(SMACAdapter(env_cls(**{**_plain(kwargs), "seed": s})))
    except BaseException:
        for env in envs:
            env.close()
        raise
    return SerialVecEnv(envs)


def _merged(params, env_args, env_name):
    """Defaults overlaid with ``env_args`` as plain dicts/lists (Sacred's are read-only)."""
    env_args = _plain(dict(env_args or {}))
    extra = [k for k in env_args if k not in params]
    if extra:
        raise unknown(f"env_args key for '{env_name}'", extra[0], params)
    merged = {k: copy.deepcopy(p.default) for k, p in params.items()}
    for key, value in env_args.items():
        merged[key] = params[key].check(f"env_args.{key}", value)
    return merged


def _plain(obj):
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _absl_flags_parsed():
    """pysc2 reads absl flags when it launches the game; mark them parsed (defaults) if nobody has."""
    try:
        from absl import flags
    except ImportError:
        return
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


# ---- the checks, in order ---------------------------------------------------------------------------
class _Backend:
    def __init__(self, package, env_cls, maps):
        self.package = package  # "smac" or "smacv2"
        self.env_cls = env_cls
        self.maps = maps  # <package>.env.starcraft2.maps: get_map_params, smac_maps


_MODULES = {
    "smac": ("smac.env", "StarCraft2Env"),
    "smacv2": ("smacv2.env.starcraft2.wrapper", "StarCraftCapabilityEnvWrapper"),
}


def _missing_message(package):
    env, git = ("sc2", SMAC_GIT) if package == "smac" else ("sc2v2", SMACV2_GIT)
    label = "SMAC" if package == "smac" else "SMACv2"
    return (f"env '{env}' needs {label}, which is not installed: pip install {git} (from git, not PyPI); "
            f"{DOCKER_HINT}; {SMAX_HINT}")


def _lookalike_message(evidence):
    return (f"the installed package 'smac' is the PyPI hyperparameter optimiser (SMAC3), not StarCraft's "
            f"SMAC ({evidence}): pip uninstall smac && pip install {SMAC_GIT}; {DOCKER_HINT}")


def _package_present(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: in sys.modules without a __spec__
        return sys.modules.get(name) is not None


def _pypi_smac_evidence():
    """Why the importable ``smac`` looks like the PyPI optimiser, or '' (checked without importing it)."""
    try:
        spec = importlib.util.find_spec("smac")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(os.path.join(loc, "env", "starcraft2")):
            return ""  # oxwhirl's package
        marks = [d for d in ("facade", "runhistory", "intensifier", "runner") if os.path.isdir(os.path.join(loc, d))]
        if marks:
            return f"{loc} has smac/{marks[0]}/ and no smac/env/"
    try:
        meta = importlib.metadata.metadata("smac")
    except importlib.metadata.PackageNotFoundError:
        return ""
    urls = " ".join([meta.get("Home-page") or ""] + list(meta.get_all("Project-URL") or []))
    if "automl" in urls.lower():
        return f"distribution smac {meta.get('Version', '?')} from {urls.split()[0] if urls.split() else 'automl'}"
    return ""


def _import_backend(package):
    """(1) package importable with its dependencies, (2) not the PyPI lookalike."""
    if not _package_present(package):
        raise SuiteError(_missing_message(package))
    if package == "smac":
        evidence = _pypi_smac_evidence()
        if evidence:
            raise SuiteError(_lookalike_message(evidence))
    module_name, cls_name = _MODULES[package]
    try:
        env_module = importlib.import_module(module_name)
        maps = importlib.import_module(f"{package}.env.starcraft2.maps")
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if name == f"{package}.env" or name.startswith(f"{package}.env."):
            if package == "smac":
                raise SuiteError(_lookalike_message(f"it has no module {name}")) from None
            raise SuiteError(f"the installed smacv2 has no module {name}: "
                             f"pip install --force-reinstall {SMACV2_GIT}") from None
        raise SuiteError(f"{package} is installed but its dependency '{name.split('.')[0]}' is missing: "
                         f"{SC2_DEPS}; {DOCKER_HINT}") from None
    except Exception as exc:  # e.g. protobuf >= 3.21: "Descriptors cannot be created directly"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SuiteError(f"importing {package} failed ({type(exc).__name__}: {first}); pysc2 needs "
                         f"old protobuf: {SC2_DEPS}; {DOCKER_HINT}") from None
    env_cls = getattr(env_module, cls_name, None)
    if env_cls is None:
        raise SuiteError(f"{module_name} has no {cls_name}: reinstall {package} from git "
                         f"(pip install {SMAC_GIT if package == 'smac' else SMACV2_GIT})")
    return _Backend(package, env_cls, maps)


_DEFAULT_SC2PATH = {"Linux": "~/StarCraftII", "Darwin": "/Applications/StarCraft II",
                    "Windows": "C:/Program Files (x86)/StarCraft II"}


def sc2_path():
    """Where pysc2 will look for StarCraft II: $SC2PATH, else the platform's default."""
    return os.path.expanduser(os.environ.get("SC2PATH") or _DEFAULT_SC2PATH.get(platform.system(), "~/StarCraftII"))


def _check_install():
    """(3) a StarCraft II install with a Versions/ directory."""
    path = sc2_path()
    if not os.environ.get("SC2PATH") and not os.path.isdir(path):
        problem = f"SC2PATH is not set and the default {path} does not exist"
    elif not os.path.isdir(path):
        problem = f"SC2PATH={path} does not exist"
    elif not os.path.isdir(os.path.join(path, "Versions")):
        problem = f"{path} has no Versions/ directory (not a StarCraft II install)"
    else:
        return path
    raise SuiteError(f"StarCraft II not found: {problem}; install StarCraft II 4.10 for Linux "
                     f"(SC2.4.10.zip from Blizzard's s2client-proto, password iagreetotheeula) and set "
                     f"SC2PATH to its StarCraftII directory, or use docker/ (see docker/README.md)")


def _map_registry(maps):
    registry_fn = getattr(getattr(maps, "smac_maps", None), "get_smac_map_registry", None)
    try:
        return dict(registry_fn()) if registry_fn else {}
    except Exception:
        return {}


def _check_map(backend, map_name):
    """(4) map known to SMAC's registry, (5) its map file installed under Maps/."""
    label = "SMAC map" if backend.package == "smac" else "SMACv2 map"
    try:
        params = backend.maps.get_map_params(map_name)
    except Exception:
        params = None
    if params is None:
        raise unknown(label, map_name, _map_registry(backend.maps))
    map_cls = getattr(getattr(backend.maps, "smac_maps", None), str(map_name), None)
    directory = getattr(map_cls, "directory", None) or "SMAC_Maps"
    filename = getattr(map_cls, "filename", None) or params.get("map_name", map_name)
    if not filename.endswith(".SC2Map"):
        filename += ".SC2Map"
    path = os.path.join(sc2_path(), "Maps", directory, filename)
    if not os.path.isfile(path):
        zip_url = SMAC_MAPS_URL if backend.package == "smac" else SMACV2_MAPS_URL
        raise SuiteError(f"{label} '{map_name}' needs {path}, which is missing: unzip SMAC_Maps.zip "
                         f"({zip_url}) into {os.path.join(sc2_path(), 'Maps')}/, or use docker/")
    return params


__all__ = ["SC2_PARAMS", "SC2V2_PARAMS", "PROTOSS_5_VS_5", "SMACAdapter", "make_sc2", "make_sc2v2", "sc2_path"]
