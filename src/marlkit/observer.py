"""The Sacred file observer of a run (see ``RunObserver``)."""
from __future__ import annotations

import json
import os
import threading

from sacred.observers import FileStorageObserver


class RunObserver(FileStorageObserver):
    """Sacred's file observer with three changes: run ids never reuse one that still has a models
    folder; a resumed run continues the folder of the run that saved the checkpoint (metrics after
    the checkpoint's step dropped, the resume recorded in run.json); metric writes are serialised
    (the loop flushes them at every checkpoint, next to Sacred's heartbeat thread)."""

    @classmethod
    def make(cls, base, models_root, resume, config):
        observer = cls(base)
        observer.models_root, observer.resume_dir, observer.resumed_at = models_root, None, None
        observer.lock = threading.Lock()
        if resume is not None and not config["evaluate"] and resume[1] is not None:
            path, state = resume
            sacred_dir = state.get("run", {}).get("sacred_dir")
            if sacred_dir and os.path.isdir(sacred_dir) and os.path.realpath(os.path.dirname(sacred_dir)) == \
                    os.path.realpath(base):
                observer.resume_dir, observer.resumed_at = sacred_dir, int(state["loop"]["t_env"])
                observer.resume_from = path
        return observer

    def _maximum_existing_run_id(self):
        taken = [super()._maximum_existing_run_id()]
        if os.path.isdir(self.models_root):
            taken += [int(d) for d in os.listdir(self.models_root) if d.isdigit()]
        return max(taken)

    def _make_run_dir(self, _id):
        if self.resume_dir is None:
            return super()._make_run_dir(_id)
        self.dir = self.resume_dir

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        if self.resume_dir is None:
            return super().started_event(ex_info, command, host_info, start_time, config, meta_info, _id)
        with self.lock:
            earlier = _read_json(os.path.join(self.resume_dir, "run.json")) or {}
            _drop_metrics_after(os.path.join(self.resume_dir, "metrics.json"), self.resumed_at)
            run_id = super().started_event(ex_info, command, host_info, start_time, config, meta_info, _id)
            self.run_entry["resumes"] = earlier.get("resumes", []) + [
                {"t_env": self.resumed_at, "checkpoint": self.resume_from, "time": start_time.isoformat(),
                 "previous_status": earlier.get("status")}]
            self.run_entry["start_time"] = earlier.get("start_time", self.run_entry["start_time"])
            self.save_json(self.run_entry, "run.json")
        return os.path.basename(self.dir) if run_id is None else run_id

    def log_metrics(self, metrics_by_name, info):
        with self.lock:
            super().log_metrics(metrics_by_name, info)

    def heartbeat_event(self, info, captured_out, beat_time, result):
        with self.lock:
            super().heartbeat_event(info, captured_out, beat_time, result)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _drop_metrics_after(path, t_env):
    """Remove metric entries logged after ``t_env`` (by a run killed after its last checkpoint)."""
    metrics = _read_json(path)
    if not metrics:
        return
    for entry in metrics.values():
        keep = [i for i, step in enumerate(entry["steps"]) if step <= t_env]
        for key in ("values", "steps", "timestamps"):
            entry[key] = [entry[key][i] for i in keep]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(metrics, f)
    os.replace(tmp, path)
