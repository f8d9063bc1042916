"""Before/after: env steps/s of the four reproduction workloads, learning included, idle and busy.

Two checkouts of the suite run side by side from this one script: ``--before`` (e.g. an export of
an older commit: ``git archive d754c68 | tar -x -C <dir>``) and ``--after`` (default: this
checkout). For each checkout and workload a worker process builds the run with that checkout's own
``offline`` (its config, plugins, runner and learner), warms up (fills the buffer, compiles JAX,
trains once), then waits; one workload at a time. The driver times segments of ``--seconds`` of
training (``train_iteration``: collect batch_size_run episodes, store, train) in interleaved rounds: per
round each condition (``idle``: nothing added; ``busy``: one extra CPU-bound process beside them,
as when another training job runs) and each workload, before and after in alternating order. The
result is after/before of env steps/s per round, and its median. Workers run as a plain
``python run.py`` would: no OMP_NUM_THREADS (so the before checkout gets torch's default thread
count and the after checkout its ``torch_threads`` default of 1) and the default JAX cache folder.
A third variant, ``before_1thread``, runs the before checkout with the thread variables the after
one applies itself (OMP/MKL 1, single-threaded XLA): after/before_1thread is the code's share.
Worker start-up (imports, JAX compilation, warm-up) is reported separately.

    python bench/end_to_end.py --before DIR [--after DIR] [--seconds 12] [--rounds 3]
                               [--workloads remix_pp ...] [--out docs/bench/end_to_end.json]
                               [--keep-other-workloads]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from bench_io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = {"test_interval": 10**9, "log_interval": 10**9, "runner_log_interval": 10**9,
         "learner_log_interval": 10**9, "t_max": 10**9, "seed": 1}
# The reproduction presets (scripts/reproduce_remix.sh, scripts/reproduce_dagbn.sh), logging off.
WORKLOADS = {
    "remix_pp": ("remix_pp", "predator_prey", {"batch_size": 32, "epsilon_anneal_time": 50000}),
    "qmix_pymarl2_smax_3m": ("qmix_pymarl2", "smax", {"env_args": {"map_name": "3m"}}),
    "dagbn_anneal_smax_6h_vs_8z": ("dagbn_anneal", "smax", {"env_args": {"map_name": "6h_vs_8z"}}),
    "dagbn_coordination_game": ("dagbn", "coordination_game", {}),
}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


def worker(tree, workload):
    """Build the workload with the checkout ``tree``'s suite, warm up, then serve 'run S' lines."""
    sys.path[:0] = [os.path.join(tree, "src"), tree]
    os.chdir(tree)
    import contextlib
    import io

    start = time.perf_counter()
    from marlkit.experiment import offline, train_iteration

    alg, env, updates = WORKLOADS[workload]
    with contextlib.redirect_stdout(io.StringIO()):
        args, runner, buffer, _, learner = offline(alg, env, {**updates, **QUIET})
        episode = 0
        while not buffer.can_sample(args.batch_size):
            episode = train_iteration(args, runner, buffer, learner, episode)
        episode = train_iteration(args, runner, buffer, learner, episode)
    import torch

    print(json.dumps({"ready": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads()}),
          flush=True)
    for line in sys.stdin:
        if not line.startswith("run"):
            break
        seconds = float(line.split()[1])
        t0, begin = runner.t_env, time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            while time.perf_counter() - begin < seconds:
                episode = train_iteration(args, runner, buffer, learner, episode)
        elapsed = time.perf_counter() - begin
        print(json.dumps({"steps": runner.t_env - t0, "seconds": round(elapsed, 3)}), flush=True)


PINNED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
          "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


class Worker:
    def __init__(self, tree, workload, pinned=False):
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
        env.pop("PYTHONPATH", None)
        if pinned:  # what the after checkout applies itself (torch_threads=1), given from outside
            env.update(PINNED)
        self.proc = subprocess.Popen([sys.executable, "-W", "ignore", os.path.abspath(__file__), "--worker", tree, workload],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ready = json.loads(self._line())

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[-2:]} ended early")
        return line

    def run(self, seconds):
        self.proc.stdin.write(f"run {seconds}\n")
        self.proc.stdin.flush()
        result = json.loads(self._line())
        return result["steps"] / result["seconds"]

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="checkout of the earlier version (its root folder)")
    parser.add_argument("--after", default=ROOT)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--seconds", type=float, default=12.0, help="timed seconds per segment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "end_to_end.json"))
    parser.add_argument("--keep-other-workloads", action="store_true",
                        help="keep the results of workloads not run now from the existing --out file")
    opts = parser.parse_args(argv)
    trees = {"before": os.path.abspath(opts.before), "after": os.path.abspath(opts.after)}
    # before_1thread: the before checkout with the thread pinning of the after one (the code's share)
    variants = {"before": (trees["before"], False), "before_1thread": (trees["before"], True),
                "after": (trees["after"], False)}
    load = {"start": os.getloadavg()}
    startup = {}
    rows = {f"{cond}/{w}": {name: [] for name in variants} for cond in ("idle", "busy") for w in opts.workloads}
    for i, workload in enumerate(opts.workloads):  # one workload at a time: 3 workers in memory
        workers = {}
        try:
            for name, (tree, pinned) in variants.items():
                print(f"starting {name} {workload}", flush=True)
                workers[name] = Worker(tree, workload, pinned)
                startup[f"{name}/{workload}"] = workers[name].ready
            for r in range(opts.rounds):
                for cond in (("idle", "busy") if r % 2 == 0 else ("busy", "idle")):
                    burner = None
                    if cond == "busy":  # one extra CPU-bound process, as another training job
                        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    try:
                        names = list(variants)
                        order = names[(r + i) % 3:] + names[:(r + i) % 3]  # rotate who goes first
                        row = rows[f"{cond}/{workload}"]
                        for name in order:
                            row[name].append(round(workers[name].run(opts.seconds), 1))
                        print(f"round {r + 1} {cond} {workload}: " + ", ".join(f"{k} {v[-1]}" for k, v in row.items())
                              + " steps/s", flush=True)
                    finally:
                        if burner is not None:
                            burner.kill()
                            burner.wait()
                load[f"{workload} round {r + 1}"] = os.getloadavg()
        finally:
            for w in workers.values():
                w.close()
        write(opts, trees, load, startup, rows)


def write(opts, trees, load, startup, rows):
    """The report so far (after each workload, so a cut-short run keeps what it measured)."""
    results = {}
    for key, row in rows.items():
        if not row["after"]:
            continue
        workload = key.split("/", 1)[1]
        results[key] = {"trees": {k: os.path.basename(v) for k, v in trees.items()},
                        "seconds": opts.seconds, "rounds": len(row["after"]),
                        "load_average": {k: v for k, v in load.items() if k == "start" or k.startswith(workload)},
                        **{f"{name}_steps_per_second": v for name, v in row.items()}}
        for base in ("before", "before_1thread"):
            ratios = [a / b for a, b in zip(row["after"], row[base])]
            results[key][f"after_over_{base}"] = [round(x, 2) for x in ratios]
            results[key][f"after_over_{base}_median"] = round(statistics.median(ratios), 2)
        results[key]["medians"] = {name: statistics.median(v) for name, v in row.items()}
    report = {"what": "env steps/s including learning (train_iteration), after/before, segments of --seconds "
                      "interleaved in rounds; busy = one extra CPU-bound process",
              "workloads": {w: {"alg": a, "env": e, "updates": u} for w, (a, e, u) in WORKLOADS.items() if w in opts.workloads},
              "trees": {k: os.path.basename(v) for k, v in trees.items()}, "seconds": opts.seconds, "rounds": opts.rounds,
              "cpus": os.cpu_count(), "python": platform.python_version(), "load_average": load,
              "startup_seconds": startup, "results": results}
    if opts.keep_other_workloads and os.path.exists(opts.out):
        with open(opts.out) as f:
            old = json.load(f)
        for key, result in old["results"].items():
            if key in results:
                continue
            workload = key.split("/", 1)[1]  # an earlier run's workload keeps its own settings and load
            result.setdefault("trees", old["trees"])
            result.setdefault("seconds", old["seconds"])
            result.setdefault("rounds", old["rounds"])
            result.setdefault("load_average", {k: v for k, v in old["load_average"].items() if k.startswith(workload)})
            results[key] = result
            startup.update({k: v for k, v in old["startup_seconds"].items() if k.endswith(workload)})
        report["workloads"] = {**old["workloads"], **report["workloads"]}
    write_json(opts.out, report)
    print(json.dumps({k: [v["after_over_before_median"], v["after_over_before_1thread_median"]]
                      for k, v in report["results"].items()}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
