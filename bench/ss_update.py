"""Seconds per learner.train call: Suggestion Sharing (``ss``) vs independent PPO (``ss_ippo``).

Both learners are built by ``offline`` from their own configs on cooperative predation with N = 8
(paper 002's main setting) and train on the SAME batch of real episodes (collected once with the
``ss`` controller; ``ss_ippo`` reads the same fields). One call is a full update: GAE, K = 3
iterations of the policy objective (Eq. 16 for SS: N^2 = 64 policy heads, suggestions, messages,
penalties; the clipped PPO objective on N = 8 own policies for IPPO) and the value step. Calls
are timed in interleaved rounds in one process, so load changes on a shared machine hit both
alike; the median seconds per call and their ratio are reported (goal: SS <= 2x IPPO), with the
quartiles of the per-round ratios (the spread a shared machine adds), in wall time and in this
process's CPU time (torch runs one thread, so CPU time is the work done; on a shared machine it
moves less with the other jobs than wall time does), and the load average at start and end.

    python bench/ss_update.py [--agents 8] [--episodes 8] [--protocol env] [--calls 1] [--rounds 41]
                              [--out docs/bench/ss_update.json]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

import torch as th  # noqa: E402

from marlkit.experiment import offline  # noqa: E402

ALGS = ("ss", "ss_ippo")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=8, help="episodes per batch (the configs' batch_size_run)")
    parser.add_argument("--protocol", default="env", help="SS neighbourhood (env: distance 0.1; all: everyone)")
    parser.add_argument("--calls", type=int, default=1, help="calls per learner and round (1: finest interleaving)")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "ss_update.json"))
    opts = parser.parse_args(argv)
    th.set_num_threads(1)

    common = dict(seed=opts.seed, env_args={"n_agents": opts.agents}, batch_size_run=opts.episodes,
                  buffer_size=opts.episodes, batch_size=opts.episodes, learner_log_interval=10**12)
    learners, batch, t_env = {}, None, 0
    for alg in ALGS:
        extra = {"ss_protocol": opts.protocol} if alg == "ss" else {}
        with contextlib.redirect_stdout(io.StringIO()):
            _, runner, _, _, learner = offline(alg, "coop_predation", {**common, **extra})
        if batch is None:
            batch, _ = runner.run(test_mode=False)
            t_env = runner.t_env
        learners[alg] = learner
        learner.train(batch, t_env, 0)  # warm-up (allocations, first-use costs)

    load_before = os.getloadavg()
    per_call = {alg: [] for alg in ALGS}  # wall seconds per call, one entry per round
    cpu_call = {alg: [] for alg in ALGS}  # this process's CPU seconds per call (less sensitive to load)
    for r in range(opts.rounds):
        for alg, learner in learners.items():
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(opts.calls):
                learner.train(batch, t_env, 0)
            per_call[alg].append((time.perf_counter() - start) / opts.calls)
            cpu_call[alg].append((time.process_time() - cpu) / opts.calls)
        print(f"round {r + 1}/{opts.rounds}: " + ", ".join(
            f"{a} {per_call[a][-1] * 1000:.1f} ms wall, {cpu_call[a][-1] * 1000:.1f} ms cpu" for a in ALGS), flush=True)

    median = {alg: statistics.median(v) for alg, v in per_call.items()}
    cpu_median = {alg: statistics.median(v) for alg, v in cpu_call.items()}
    result = {
        "what": "seconds per learner.train call on the same batch (median over interleaved rounds)",
        "env": "coop_predation", "n_agents": opts.agents, "batch_episodes": opts.episodes,
        "batch_steps": int(batch.max_seq_length - 1) * opts.episodes, "ss_protocol": opts.protocol,
        "calls_per_round": opts.calls, "rounds": opts.rounds, "torch_threads": 1,
        "seconds_per_call": {k: round(v, 5) for k, v in median.items()},
        "seconds_per_call_rounds": {k: [round(x, 5) for x in v] for k, v in per_call.items()},
        "ratio_ss_over_ippo": round(median["ss"] / median["ss_ippo"], 3), "goal_ratio": 2.0,
        "cpu_seconds_per_call": {k: round(v, 5) for k, v in cpu_median.items()},
        "cpu_seconds_per_call_rounds": {k: [round(x, 5) for x in v] for k, v in cpu_call.items()},
        "cpu_ratio_ss_over_ippo": round(cpu_median["ss"] / cpu_median["ss_ippo"], 3),
        "round_ratio_quartiles": {kind: [round(q, 3) for q in statistics.quantiles(
            [a / b for a, b in zip(v["ss"], v["ss_ippo"])], n=4)] for kind, v in (("wall", per_call), ("cpu", cpu_call))},
        "machine": {"python": platform.python_version(), "torch": th.__version__, "cpus": os.cpu_count(),
                    "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
                    "note": "shared CPU: other jobs ran alongside; the ratio is the result, not absolute times"},
    }
    write_json(opts.out, result)
    print(json.dumps(result["seconds_per_call"]), "ratio", result["ratio_ss_over_ippo"],
          "| cpu", json.dumps(result["cpu_seconds_per_call"]), "ratio", result["cpu_ratio_ss_over_ippo"],
          "| per-round ratio quartiles", json.dumps(result["round_ratio_quartiles"]), "| load", json.dumps(result["machine"]["load_average_1min"]))
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
