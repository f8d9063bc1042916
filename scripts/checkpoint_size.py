#!/usr/bin/env python
"""Checkpoint size of the predator-prey preset (remix_pp on predator_prey), per checkpoint and on disk.

Runs ``run.py --config=remix_pp --env-config=predator_prey`` for ``--t-max`` steps with a checkpoint every
``--interval`` steps, then lists each step folder's size, the replay-buffer episodes it holds, and the
whole models folder. From the measured bytes per buffered episode it also gives the size of a
checkpoint with the preset's full buffer (1000 episodes), labelled as an extrapolation.
``--root`` runs another checkout (e.g. the code before the change).
Usage: ``OMP_NUM_THREADS=1 nice python scripts/checkpoint_size.py [--root DIR] [--out f.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--t-max", type=int, default=16000)
    p.add_argument("--interval", type=int, default=3200)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    root = os.path.abspath(a.root)
    work = tempfile.mkdtemp(prefix="ckpt_size_")
    cmd = [sys.executable, os.path.join(root, "run.py"), "--config=remix_pp", "--env-config=predator_prey", "with",
           f"t_max={a.t_max}", "save_model=True", f"save_model_interval={a.interval}", "test_nepisode=8",
           "test_interval=100000", f"local_results_path={work}", "seed=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.join(root, "src"))
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    models = os.path.join(work, "models", "remix_pp", "predator_prey", "1")
    import torch as th

    rows = []
    for step in sorted((int(d) for d in os.listdir(models) if d.isdigit())):
        folder = os.path.join(models, str(step))
        state = th.load(os.path.join(folder, "suite_state.pt"), weights_only=False)
        buf = state.get("buffer")
        if buf is None and os.path.exists(os.path.join(folder, "buffer.pt")):
            buf = th.load(os.path.join(folder, "buffer.pt"), weights_only=True)
        buffer_bytes = os.path.getsize(os.path.join(folder, "buffer.pt")) if os.path.exists(
            os.path.join(folder, "buffer.pt")) else None
        rows.append(dict(step=step, bytes=folder_size(folder), buffer_episodes=buf["episodes_in_buffer"] if buf else 0,
                         buffer_file_bytes=buffer_bytes, files={f: os.path.getsize(os.path.join(folder, f))
                                                               for f in sorted(os.listdir(folder))}))
    newest = rows[-1]
    n = newest["buffer_episodes"]
    files = newest["files"]
    # bytes per buffered episode of the replay buffer (buffer.pt, or its growth inside suite_state.pt)
    if "buffer.pt" in files:
        main_bytes = files["buffer.pt"]
        per_episode = main_bytes / n
    else:
        a0, a1 = rows[-2], rows[-1]
        per_episode = (a1["files"]["suite_state.pt"] - a0["files"]["suite_state.pt"]) / (a1["buffer_episodes"] - a0["buffer_episodes"])
        main_bytes = per_episode * n
    recent = files.get("remix_recent.th", 0)  # ReMIX's own recent-episode buffer (its learner file, 128 episodes max)
    recent_per_episode = recent / min(n, 128)
    rest = newest["bytes"] - main_bytes - recent
    full = rest + 1000 * per_episode + 128 * recent_per_episode
    summary = dict(checkpoints_on_disk=len(rows), models_folder_bytes=folder_size(models),
                   newest_bytes=newest["bytes"], newest_buffer_episodes=n,
                   older_checkpoint_bytes=[r["bytes"] for r in rows[:-1]],
                   replay_buffer_bytes_per_episode=round(per_episode), recent_buffer_bytes_per_episode=round(recent_per_episode),
                   other_bytes=round(rest),
                   full_buffer_checkpoint_bytes_extrapolated=round(full))
    print(json.dumps(summary, indent=1))
    for r in rows:
        print(r)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(summary=summary, checkpoints=rows, command=" ".join(cmd[1:])), f, indent=1)


if __name__ == "__main__":
    main()
