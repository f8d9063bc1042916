"""A clean stop on SIGTERM or Ctrl-C: the training loop finishes its iteration, writes a final
checkpoint (with save_model), Sacred flushes the metrics and records INTERRUPTED, and the command
exits non-zero with one line saying where to resume from."""
from __future__ import annotations

import logging
import os
import signal
import threading

from sacred.utils import SacredInterrupt

from .errors import SuiteError

log = logging.getLogger("marlkit")


class Interrupted(SacredInterrupt, SuiteError):
    """SIGTERM or Ctrl-C stopped the run cleanly: Sacred records STATUS, the CLI prints one line and
    exits with 128 + the signal number."""

    STATUS = "INTERRUPTED"

    def __init__(self, signum, t_env, saved):
        name = signal.Signals(signum).name
        where = f"; final checkpoint {saved} (resume with checkpoint_path={os.path.dirname(saved)})" if saved else ""
        super().__init__(f"interrupted by {name} at t_env {t_env:,}{where}")
        self.exit_code = 128 + signum


class StopOnSignal:
    """While a run trains, the first SIGTERM/SIGINT asks the loop to stop at the end of its iteration
    (final checkpoint, metrics flushed); a second one stops at once."""

    signum = None

    def __enter__(self):
        StopOnSignal.signum = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    @staticmethod
    def _handle(signum, _frame):
        if StopOnSignal.signum is not None:
            raise KeyboardInterrupt
        StopOnSignal.signum = signum
        log.warning(f"{signal.Signals(signum).name} received: stopping after this iteration (again to stop now)")

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        StopOnSignal.signum = None
        return False
