#!/usr/bin/env python
"""Kill-during-save trial: SIGKILL a training run while it writes a checkpoint, then resume it.

Each trial starts ``run.py`` (qmix on matrix_game, hidden_dim 256 so a save takes a while, a save every
50 steps), waits for one complete checkpoint, then watches the models folder and sends SIGKILL a
random 0-40 ms after the next save starts. It then records whether the kill landed during the save,
whether the newest step folder can be loaded (all of agent.th, mixer.th, opt.th, suite_state.pt
present and readable by torch), and whether resuming from the models folder succeeds (exit 0, no
traceback). ``--root`` runs another checkout (e.g. the code before the atomic saves).
Usage: ``OMP_NUM_THREADS=1 nice python scripts/kill_during_save.py --trials 20 [--root DIR] [--out f.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NEEDED = ("agent.th", "mixer.th", "opt.th", "suite_state.pt")
ARGS = ["--config=qmix", "--env-config=matrix_game", "with", "hidden_dim=256", "batch_size=4", "buffer_size=64",
        "test_interval=100000", "log_interval=100000", "save_model=True", "save_model_interval=50"]


def steps(models):
    return sorted((int(d) for d in os.listdir(models) if d.isdigit()), key=int) if os.path.isdir(models) else []


def loadable(folder):
    import torch as th

    for name in NEEDED:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return False, f"{name} missing"
        try:
            th.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # any failure to read counts as unloadable
            return False, f"{name}: {type(exc).__name__}"
    return True, ""


def trial(root, work, rng, timeout=300):
    results = os.path.join(work, "results")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.join(root, "src"))
    cmd = [sys.executable, os.path.join(root, "run.py"), *ARGS, "t_max=10000000", f"local_results_path={results}"]
    if "checkpoint_keep" in open(os.path.join(root, "config", "default.yaml")).read():
        cmd.append("checkpoint_keep=0")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    models = os.path.join(results, "models", "qmix", "matrix_game", "1")
    start = time.time()
    try:
        while len(steps(models)) < 2:  # one complete checkpoint before, so there is one to fall back to
            if time.time() - start > timeout or proc.poll() is not None:
                return None
            time.sleep(0.01)
        seen = set(os.listdir(models))
        while True:  # the next save starts: a new step folder (old code) or temporary folder (atomic saves)
            now = set(os.listdir(models))
            if now - seen:
                break
            if time.time() - start > timeout or proc.poll() is not None:
                return None
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.04))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    leftovers = [d for d in os.listdir(models) if not d.isdigit()]
    newest = os.path.join(models, str(steps(models)[-1]))
    ok, why = loadable(newest)
    during = bool(leftovers) or not ok
    resume = subprocess.run([sys.executable, os.path.join(root, "run.py"), *ARGS, f"checkpoint_path={models}",
                             f"t_max={steps(models)[-1] + 60}", f"local_results_path={results}"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    resumed = resume.returncode == 0 and "Traceback" not in resume.stdout + resume.stderr
    last = (resume.stderr.strip().splitlines() or [""])[-1]
    fallback = "skipped" in resume.stdout + resume.stderr
    return dict(during_save=during, newest_loadable=ok, why=why, resumed=resumed, fallback_reported=fallback,
                resume_line=last[:200])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rng = random.Random(a.seed)
    rows = []
    for i in range(a.trials):
        work = tempfile.mkdtemp(prefix="kill_")
        try:
            row = trial(os.path.abspath(a.root), work, rng)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if row is None:
            print(f"[{i + 1}] run ended or timed out before a kill", flush=True)
            continue
        rows.append(row)
        print(f"[{i + 1}] {row}", flush=True)
    during = [r for r in rows if r["during_save"]]
    summary = dict(kills=len(rows), during_save=len(during),
                   newest_unloadable=sum(not r["newest_loadable"] for r in rows),
                   resumed=sum(r["resumed"] for r in rows),
                   fallback_reported=sum(r["fallback_reported"] for r in rows))
    print(json.dumps(summary))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(summary=summary, trials=rows), f, indent=1)


if __name__ == "__main__":
    main()
