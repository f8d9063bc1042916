"""User-facing errors: one clear line, exit code 2, no traceback, and the command-line path that
prints them (``command_line``, used by run.py, sweep and analysis)."""
import argparse
import difflib
import sys


class SuiteError(Exception):
    """A mistake in the user's input (names, YAML, values, missing packages)."""

    exit_code = 2


def closest(name, choices):
    """' (did you mean X?)' for the closest of ``choices``, or ''."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown(what, name, choices):
    """SuiteError for a name that is not among ``choices``: lists them and suggests the closest."""
    listing = ", ".join(sorted(str(c) for c in choices)) or "none"
    return SuiteError(f"unknown {what} '{name}'{closest(name, choices)}; available: {listing}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the suite's commands: a usage mistake is a SuiteError like any other bad input."""

    def error(self, message):
        raise SuiteError(message)


def command_line(body, interrupted="interrupted") -> int:
    """Run a command's ``body()`` (returns an exit code or None for 0) with the suite's one error
    path, shared by run.py, ``python -m marlkit.sweep`` and ``python -m marlkit.analysis``: a
    SuiteError is one ``error: ...`` line on stderr and its exit code (2); Ctrl-C is exit code 130."""
    try:
        code = body()
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return 0 if code is None else code
