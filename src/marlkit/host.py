"""The one seam to the host framework (EPyMARL API, installed as PyPI ``pymarlzooplus``).

Everything in the suite and in plugins imports host things from here, never from the host
package directly, so supporting a second host (an EPyMARL v2 or pymarl2 checkout) means
extending this module only.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

HOST_PACKAGE = "pymarlzooplus"

# The host's EpisodeBatch indexes tensors with lists of slices, which torch reports on every batch
# write. Importing the host's env wrappers used to silence all UserWarnings as a side effect; since
# the suite imports only the host modules a run needs, this one harmless notice is silenced here.
warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing",
                        category=UserWarning)


def _host_package():
    """The host package, registered without running its ``__init__``.

    pymarlzooplus's ``__init__`` imports its main module, which imports every bundled env wrapper
    (MPE scenarios, seaborn, ...): about 2 s per process that most runs never use. Registered
    bare, the package still imports its submodules on demand (``__path__`` is set), so a run
    loads only the host modules it needs; the one name ``__init__`` defines (``pymarlzooplus``,
    the main entry) is resolved on first access.
    """
    if HOST_PACKAGE in sys.modules:
        return sys.modules[HOST_PACKAGE]
    spec = importlib.util.find_spec(HOST_PACKAGE)
    if spec is None or spec.submodule_search_locations is None:  # pragma: no cover - broken installs
        raise ImportError(
            f"the host framework '{HOST_PACKAGE}' is not importable; "
            f"install it with: pip install --no-deps {HOST_PACKAGE}==1.1.0 (see README, Set-up)"
        )
    package = importlib.util.module_from_spec(spec)

    def main_entry(name):
        if name == HOST_PACKAGE:
            return getattr(importlib.import_module(f"{HOST_PACKAGE}.main"), name)
        raise AttributeError(f"module '{HOST_PACKAGE}' has no attribute '{name}'")

    package.__getattr__ = main_entry
    sys.modules[HOST_PACKAGE] = package
    return package


_host = _host_package()

from pymarlzooplus.components.action_selectors import REGISTRY as action_selectors  # noqa: E402
from pymarlzooplus.components.action_selectors import SoftPoliciesSelector  # noqa: E402
from pymarlzooplus.components.episode_buffer import EpisodeBatch, ReplayBuffer  # noqa: E402
from pymarlzooplus.components.transforms import OneHot  # noqa: E402
from pymarlzooplus.controllers import REGISTRY as controllers  # noqa: E402
from pymarlzooplus.controllers.basic_controller import BasicMAC  # noqa: E402
from pymarlzooplus.learners import REGISTRY as learners  # noqa: E402
from pymarlzooplus.modules.agents import REGISTRY as agents  # noqa: E402
from pymarlzooplus.modules.agents.rnn_agent import RNNAgent  # noqa: E402
from pymarlzooplus.modules.critics import REGISTRY as critics  # noqa: E402
from pymarlzooplus.modules.mixers.qmix import QMixer  # noqa: E402
from pymarlzooplus.modules.mixers.vdn import VDNMixer  # noqa: E402
from pymarlzooplus.utils.logging_setup import Logger  # noqa: E402
from pymarlzooplus.utils.rl_utils import build_td_lambda_targets  # noqa: E402

# The host's env registry imports every bundled env wrapper; it is loaded on first use only.


def host_envs():
    """The host's env factories (``gymma``, ``pettingzoo``, ...), imported lazily."""
    from pymarlzooplus.envs import REGISTRY

    return REGISTRY


def host_config_dir():
    """Directory holding the host's default.yaml, algs/ and envs/."""
    import os

    return os.path.join(os.path.dirname(_host.__file__), "config")


# Mixers: the host picks VDN/QMIX by if/else inside its learners; the suite keeps a mixer
# registry for plugin learners and seeds it with the host's own mixers.
mixers = {"vdn": VDNMixer, "qmix": QMixer}

# Runners are owned by the suite (see docs/DESIGN.md section 3); the host registry is not used.
runners: dict = {}

__all__ = [
    "HOST_PACKAGE", "action_selectors", "EpisodeBatch", "ReplayBuffer", "OneHot", "controllers",
    "BasicMAC", "critics", "learners", "agents", "RNNAgent", "QMixer", "VDNMixer", "Logger",
    "build_td_lambda_targets", "SoftPoliciesSelector", "host_envs", "host_config_dir", "mixers", "runners",
]
