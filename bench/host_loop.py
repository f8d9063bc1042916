"""The suite's training loop against the host's own: env steps/s of stock QMIX, learning included.

Both loops train the same config from scratch for ``--steps`` env steps in this process, in
interleaved rounds (each round runs both, the order alternating), so load changes on a shared
machine hit both alike:
  * ``host``: pymarlzooplus's ``run_sequential`` (its runner, env wrapper, buffer, learner) on the
    suite's merged config, exactly what ``python -m pymarlzooplus`` would run;
  * ``suite``: marlkit's ``run_sequential`` (the suite's runner over a ``VecEnv``, the host's
    buffer, controller and learner).
The task is LBF Foraging-8x8-2p-3f-v3 (through the host's gymma wrapper) with EPyMARL's qmix.yaml
settings (``use_rnn=False``, ``obs_last_action=False``), with the episode runner (1 env) and the
parallel runner (8 envs; the host's uses one worker process per env). Per round the ratio
suite seconds / host seconds for the same env steps (< 1: the suite is faster); the median over
rounds is the result. Goal: episode runner <= 1.0x.

    python bench/host_loop.py [--runners episode parallel] [--steps 4000] [--rounds 4]
                              [--out docs/bench/host_loop.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
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

from marlkit import experiment  # noqa: E402

TASK = {"env_args": {"key": "lbforaging:Foraging-8x8-2p-3f-v3", "time_limit": 50},
        "use_rnn": False, "obs_last_action": False}  # EPyMARL qmix.yaml
RUNNERS = {"episode": {}, "parallel": {"runner": "parallel", "batch_size_run": 8}}
QUIET = {"test_interval": 10**9, "log_interval": 10**9, "runner_log_interval": 10**9,
         "learner_log_interval": 10**9, "use_tensorboard": False, "save_model": False}


THREADS = [1]  # torch_threads of both loops (--threads); prepare() applies it to this process


def updates(runner, steps, seed):
    """The run's `with` updates: task, runner, length; one test episode batch at the start (both
    loops run it), no logging or saving inside the timed loop."""
    return {**TASK, **RUNNERS[runner], **QUIET, "t_max": steps, "seed": seed, "torch_threads": THREADS[0],
            "test_nepisode": RUNNERS[runner].get("batch_size_run", 1)}


def run_host(runner, steps, seed):
    """Seconds and env steps of the host's run_sequential on the same merged config."""
    from pymarlzooplus.run import run_sequential
    from pymarlzooplus.utils.logging_setup import Logger

    config, vec_env, _ = experiment.prepare("qmix", "gymma", updates(runner, steps, seed))
    vec_env.close()  # the host builds its own envs
    config["env_args"]["seed"] = config["seed"]  # as the host's main does
    args = SimpleNamespace(**config)
    args.device, args.device_cnn_modules = "cpu", "cpu"
    args.results_path, args.unique_token = "", "host_loop"
    quiet = logging.getLogger("host_loop")
    quiet.setLevel(logging.ERROR)
    seen = {}
    original = run_sequential.__globals__["r_REGISTRY"][args.runner]

    def capture(*a, **k):  # remember the runner to read its t_env afterwards
        seen["runner"] = original(*a, **k)
        return seen["runner"]

    run_sequential.__globals__["r_REGISTRY"][args.runner] = capture
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            run_sequential(args, Logger(quiet))
            seconds = time.perf_counter() - start
    finally:
        run_sequential.__globals__["r_REGISTRY"][args.runner] = original
    return seconds, seen["runner"].t_env


def run_suite(runner, steps, seed):
    """Seconds and env steps of the suite's run_sequential on the same config."""
    config, vec_env, registry = experiment.prepare("qmix", "gymma", updates(runner, steps, seed))
    args = SimpleNamespace(**config)
    args.device, args.run_id, args.results_path = "cpu", "host_loop", ""
    logger = experiment.Logger(args.t_max)
    seen = {}
    build = experiment.build

    def wrapped(*a, **k):  # run_sequential calls build(): keep its runner to read t_env afterwards
        out = build(*a, **k)
        seen["runner"] = out[0]
        return out

    experiment.build = wrapped
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            experiment.run_sequential(args, logger, vec_env, registry)
            seconds = time.perf_counter() - start
    finally:
        experiment.build = build
    return seconds, seen["runner"].t_env


LOOPS = {"host": run_host, "suite": run_suite}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    parser.add_argument("--steps", type=int, default=4000, help="env steps per loop per round (episode runner; "
                        "the parallel runner runs 4x as many)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch_threads of both loops")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "host_loop.json"))
    parser.add_argument("--keep-other-runners", action="store_true",
                        help="keep the results of runners not run now from the existing --out file")
    opts = parser.parse_args(argv)
    THREADS[0] = opts.threads
    load_start = os.getloadavg()
    for loop in LOOPS.values():  # first-use costs (imports: torch._dynamo via Adam, the env packages) before timing
        loop("episode", 200, opts.seed)
    rows = {runner: {"host": [], "suite": []} for runner in opts.runners}
    for r in range(opts.rounds):
        for runner in opts.runners:
            steps = opts.steps * (4 if runner == "parallel" else 1)
            order = ["host", "suite"] if (r + opts.runners.index(runner)) % 2 == 0 else ["suite", "host"]
            for loop in order:
                seconds, t_env = LOOPS[loop](runner, steps, opts.seed + r)
                rows[runner][loop].append({"seconds": round(seconds, 2), "env_steps": t_env,
                                           "steps_per_second": round(t_env / seconds, 1)})
            rows[runner]["suite"][-1]["load_average"] = [round(x, 2) for x in os.getloadavg()]
            h, s = rows[runner]["host"][-1], rows[runner]["suite"][-1]
            print(f"round {r + 1}/{opts.rounds} {runner}: host {h['steps_per_second']} steps/s, suite "
                  f"{s['steps_per_second']} steps/s, suite/host time {h['steps_per_second'] / s['steps_per_second']:.3f}",
                  flush=True)
    report = {"what": "stock QMIX, LBF Foraging-8x8-2p-3f-v3, EPyMARL qmix.yaml settings (use_rnn=False, "
                      "obs_last_action=False): env steps/s of a whole training run of --steps env steps, "
                      "learning included, the host's run_sequential vs the suite's, interleaved",
              "updates": {r: updates(r, opts.steps * (4 if r == "parallel" else 1), opts.seed) for r in opts.runners},
              "torch_threads": opts.threads, "python": platform.python_version(),
              "torch": th.__version__, "cpus": os.cpu_count(), "results": {}}
    for runner, loops in rows.items():
        ratios = [h["steps_per_second"] / s["steps_per_second"] for h, s in zip(loops["host"], loops["suite"])]
        report["results"][runner] = {
            **loops, "rounds": opts.rounds, "env_steps_per_loop": report["updates"][runner]["t_max"],
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "suite_time_over_host_time_per_round": [round(x, 3) for x in ratios],
            "suite_time_over_host_time_median": round(statistics.median(ratios), 3),
            "host_steps_per_second_median": statistics.median(x["steps_per_second"] for x in loops["host"]),
            "suite_steps_per_second_median": statistics.median(x["steps_per_second"] for x in loops["suite"]),
        }
    if opts.keep_other_runners and os.path.exists(opts.out):
        with open(opts.out) as f:
            old = json.load(f)
        for runner, result in old["results"].items():
            if runner not in report["results"]:
                report["results"][runner], report["updates"][runner] = result, old["updates"][runner]
    write_json(opts.out, report)
    print(json.dumps({r: v["suite_time_over_host_time_median"] for r, v in report["results"].items()}))


if __name__ == "__main__":
    main()
