"""Seconds per learner.train call: pymarl2 QMIX (remix_qmix) vs OW-QMIX (ow_qmix) vs ReMIX (remix).

All three learners train on the SAME sampled batch of real episodes (SMAX 3m by default, collected
once with the remix_qmix controller), built from their own configs with the same seed. Calls are
timed in interleaved rounds (round robin) in one process, so load changes on a shared machine hit
every learner alike; the median seconds per call over rounds and the ratios are reported.
ReMIX's recent-episode buffer is fed the collected episodes, so its timed calls include the
on-policy mixing (a quarter of the batch's rows replaced by recent episodes), the mixer gradient
(closed form) and the Boltzmann policies.

    python bench/train_step.py [--env smax|matrix_game] [--batch-size 128] [--calls 5] [--rounds 5]
                               [--out docs/bench/train_step.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time

from bench_io import write_json
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

import torch as th  # noqa: E402

from marlkit.config import build_config  # noqa: E402
from marlkit.experiment import Logger, offline  # noqa: E402

ALGS = {"qmix": "remix_qmix", "ow_qmix": "ow_qmix", "remix": "remix"}
ENVS = {"smax": {"env_args": {"map_name": "3m"}}, "matrix_game": {}}


def collect(env, batch_size, seed, threads=1):
    """A batch of ``batch_size`` real episodes, the episodes themselves, and the run's objects."""
    updates = dict(ENVS[env], seed=seed, batch_size=batch_size, buffer_size=max(batch_size, 64), torch_threads=threads)
    with contextlib.redirect_stdout(io.StringIO()):
        args, runner, buffer, mac, _ = offline("remix_qmix", env, updates)
    episodes = []
    while buffer.episodes_in_buffer < batch_size:
        ep = runner.run(test_mode=False)[0]
        buffer.insert_episode_batch(ep)
        episodes.append(ep)
    th.manual_seed(seed)
    sample = buffer.sample(batch_size)
    return args, buffer, sample[:, :sample.max_t_filled()], episodes, runner.t_env


def build_learner(alg, env, base_args, buffer, batch_size, seed, registry):
    """The learner (and its controller) of config ``alg`` for the collected run's env shapes."""
    config = build_config(alg, env, dict(ENVS[env], seed=seed, batch_size=batch_size,
                                         buffer_size=max(batch_size, 64)), registry)
    args = SimpleNamespace(**config)
    for key in ("n_agents", "n_actions", "state_shape", "obs_shape", "unit_dim", "device"):
        setattr(args, key, getattr(base_args, key))
    args.alg_config, args.learner_log_interval = alg, 10**12  # no logging inside the timed calls
    args.components = registry.resolve(args)
    th.manual_seed(seed)
    mac = registry.get("controller", args.mac)(buffer.scheme, {"agents": args.n_agents}, args)
    learner = registry.get("learner", args.learner)(mac, buffer.scheme, Logger(args.t_max), args)
    mac.learner = learner
    return learner


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="smax", choices=list(ENVS))
    parser.add_argument("--batch-size", type=int, default=128, help="episodes per batch (pymarl2: 128)")
    parser.add_argument("--calls", type=int, default=5, help="timed train calls per learner per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "train_step.json"))
    opts = parser.parse_args(argv)
    th.set_num_threads(opts.threads)

    from marlkit.registry import get_registry

    registry = get_registry()
    print(f"collecting {opts.batch_size} episodes on {opts.env}", flush=True)
    base_args, buffer, batch, episodes, t_env = collect(opts.env, opts.batch_size, opts.seed, opts.threads)
    learners = {}
    for name, alg in ALGS.items():
        learners[name] = build_learner(alg, opts.env, base_args, buffer, opts.batch_size, opts.seed, registry)
        if hasattr(learners[name], "observe_episodes"):
            for ep in episodes:
                learners[name].observe_episodes(ep)
        learners[name].train(batch, t_env, 0)  # warm-up call (allocations, first-use costs)

    per_call = {name: [] for name in learners}
    for r in range(opts.rounds):
        for name, learner in learners.items():
            start = time.perf_counter()
            for _ in range(opts.calls):
                learner.train(batch, t_env, 0)
            per_call[name].append((time.perf_counter() - start) / opts.calls)
        print(f"round {r + 1}/{opts.rounds}: " + ", ".join(f"{n} {per_call[n][-1] * 1000:.1f} ms" for n in per_call),
              flush=True)

    median = {name: statistics.median(v) for name, v in per_call.items()}
    ratios = {"remix_over_ow_qmix": median["remix"] / median["ow_qmix"],
              "ow_qmix_over_qmix": median["ow_qmix"] / median["qmix"],
              "remix_over_qmix": median["remix"] / median["qmix"]}
    result = {
        "what": "seconds per learner.train call on the same sampled batch (median over interleaved rounds)",
        "configs": ALGS, "env": opts.env, "env_args": ENVS[opts.env].get("env_args", {}),
        "batch_episodes": opts.batch_size, "batch_max_t": int(batch.max_seq_length),
        "calls_per_round": opts.calls, "rounds": opts.rounds, "torch_threads": opts.threads,
        "seconds_per_call": {k: round(v, 5) for k, v in median.items()},
        "seconds_per_call_rounds": {k: [round(x, 5) for x in v] for k, v in per_call.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()}, "goal_remix_over_ow_qmix": 1.3,
        "machine": {"python": platform.python_version(), "torch": th.__version__, "cpus": os.cpu_count(),
                    "note": "shared CPU: other jobs ran alongside; ratios are the result, not absolute times"},
    }
    write_json(opts.out, result)
    print(json.dumps(result["seconds_per_call"]), json.dumps(result["ratios"]))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
