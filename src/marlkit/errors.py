"""User-facing errors: one clear line, exit code 2, no traceback (see run.py)."""
import difflib


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
