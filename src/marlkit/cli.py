"""Command line of run.py: ``--config=ALG --env-config=ENV [with key=value ...]``."""
from __future__ import annotations

import sys
import warnings

from .errors import SuiteError, command_line

USAGE = "usage: python run.py --config=ALG --env-config=ENV [with key=value ...]"


def parse_argv(argv):
    """(alg, env, with-tokens) from pymarl-style arguments."""
    alg = env = None
    tokens = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "with":
            tokens = argv[i + 1:]
            break
        for flag in ("--config", "--env-config"):
            if arg == flag or arg.startswith(flag + "="):
                if arg == flag:
                    if i + 1 >= len(argv):
                        raise SuiteError(f"{flag} needs a name; {USAGE}")
                    value = argv[i + 1]
                    i += 1
                else:
                    value = arg.split("=", 1)[1]
                if flag == "--config":
                    alg = value
                else:
                    env = value
                break
        else:
            if arg in ("-h", "--help"):
                raise SystemExit(_help())
            raise SuiteError(f"unexpected argument '{arg}'; {USAGE}")
        i += 1
    if alg is None or env is None:
        raise SuiteError(f"both --config and --env-config are required; {USAGE}")
    return alg, env, tokens


def _help():
    from .config import available

    return (f"{USAGE}\n  algorithms (--config): {', '.join(available('algs'))}\n"
            f"  environments (--env-config): {', '.join(available('envs'))}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # sacred's import
    return command_line(lambda: _run(argv))


def _run(argv):
    from .config import parse_updates
    from .experiment import run

    alg, env, tokens = parse_argv(argv)
    run(alg, env, parse_updates(tokens))
