"""The generic env registry entries: SMAC family (smax, sc2, sc2v2), matrix_game, and the host's envs.

Paper-specific tasks live in their plugins and register there with ``registry.add_env``.

Heavy packages are imported lazily: JAX only when ``smax`` is built, smac/smacv2 only for real
StarCraft II. Each entry is ``make(env_args, n_envs, seed) -> VecEnv`` plus its env_args schema.
"""
from __future__ import annotations

import inspect

from ..errors import SuiteError
from .base import SerialVecEnv, VecEnv, derived_seeds

# The host's env keys; each stays available where its packages are installed.
HOST_ENV_KEYS = ("gymma", "pettingzoo", "overcooked", "pressureplate", "capturetarget", "boxpushing")


def make_host_env(key):
    """Factory for one of the host's env families, one host env per parallel slot."""

    def make(env_args, n_envs, seed):
        from ..host import host_envs

        try:
            factory = host_envs()[key]
        except ImportError as exc:
            raise SuiteError(f"env '{key}' needs a package that is not installed ({exc})") from None
        if key == "gymma":
            _check_gym_key(env_args.get("key"))
        cls = factory.keywords["env"]
        takes_seed = "seed" in inspect.signature(cls.__init__).parameters
        envs = []
        for s in derived_seeds(seed, n_envs):
            kwargs = {**env_args, "seed": s} if takes_seed else dict(env_args)
            try:
                envs.append(factory(**kwargs))
            except ImportError as exc:
                raise SuiteError(f"env '{key}' needs a package that is not installed ({_one_line(exc)})") from None
            except Exception as exc:  # the host's and gymnasium's errors span several lines: fold them
                raise SuiteError(f"env '{key}' with env_args {_shown(env_args)} failed: {type(exc).__name__}: "
                                 f"{_one_line(exc)}") from None
        return SerialVecEnv(envs)

    return make


def _check_gym_key(gym_key):
    """env_args.key of gymma is '<package>:<env id>' (the package registers the id) or a plain id."""
    import importlib.util

    if not isinstance(gym_key, str) or not gym_key:
        raise SuiteError(f"env 'gymma' needs env_args.key, a Gymnasium id such as "
                         f"lbforaging:Foraging-8x8-2p-3f-v3 (got {gym_key!r})")
    package = gym_key.split(":", 1)[0] if ":" in gym_key else None
    if package and importlib.util.find_spec(package.split(".")[0]) is None:
        raise SuiteError(f"env_args.key '{gym_key}': package '{package}' is not installed (the part before ':' "
                         "is the Python package that registers the env)")


def _one_line(exc, limit=400):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _shown(env_args):
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in env_args.items() if k != "seed") + "}"


def register(reg):
    from . import matrix_game, smax, starcraft

    reg.add_env("smax", smax.make, smax.PARAMS, "JaxMARL SMAX: SMAC-style maps on CPU")
    reg.add_env("sc2", starcraft.make_sc2, starcraft.SC2_PARAMS, "real SMAC (StarCraft II)")
    reg.add_env("sc2v2", starcraft.make_sc2v2, starcraft.SC2V2_PARAMS, "real SMACv2 (StarCraft II)")
    reg.add_env("matrix_game", matrix_game.make, matrix_game.PARAMS, "one-step n-agent matrix game")
    for key in HOST_ENV_KEYS:
        reg.add_env(key, make_host_env(key), None, f"the host's '{key}' envs")


__all__ = ["VecEnv", "SerialVecEnv", "derived_seeds", "register", "HOST_ENV_KEYS"]
