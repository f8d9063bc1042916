"""Run algorithms x env configs x seeds as parallel jobs, on this machine or on a Ray cluster.

Usage (from anywhere; jobs always run from the repository root)::

    python -m marlkit.sweep --configs qmix vdn --env-configs sc2 --n-seeds 3 --workers 4 \\
        with env_args.map_name=3m t_max=2000000

Every job is the subprocess ``<python> run.py --config=A --env-config=E with seed=S <with-tokens>``
(the tokens after the literal ``with`` go to every job), started in the repository root with
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to the jobs' ``torch_threads`` (a with-token; default
1, the config default every run applies to torch) unless those are set already, so that parallel jobs
do not oversubscribe the cores with torch/BLAS threads. A job's stdout and stderr go to
``<local_results_path>/sweeps/<name>/<alg>_<env>_seed<S>.log``; ``sweep.json`` next to the logs
records the commands, exit codes and durations. Each job is its own Sacred run: Sacred's
FileStorageObserver claims run directories with an atomic ``mkdir`` and retries on a clash, so
concurrent jobs writing into one results folder get distinct run ids.

Options: ``--configs`` and ``--env-configs`` (names as for run.py; several allowed), ``--seeds 1 2 3``
or ``--n-seeds N`` (seeds 1..N; default 1 2 3), ``--workers N`` (parallel jobs; default: the number of
usable cores), ``--name`` (sweep name; default a timestamp), ``--dry-run`` (print the commands and
exit), ``--ray-address ADDR`` (see below).

A progress line is printed as each job finishes (done/total, failures, elapsed, ETA), then a
summary; the exit code is 1 if any job failed (their log files are listed), 2 for bad input and
130 on Ctrl-C (running jobs are stopped).

Ray (optional, ``pip install ray``): with ``--ray-address ADDR`` (e.g. ``auto`` on a cluster node,
or ``ray://head:10001``) each job is a ``ray.remote`` task (``--cpus-per-job`` CPUs each, default 1)
that runs the same command on whichever worker node Ray picks. Every node must have this repository
at the same absolute path and the same Python at the same path (``sys.executable`` of the driver),
e.g. a shared filesystem or an identical image. Logs and Sacred results are written on the node that
ran the job, at the same paths as locally; without a shared filesystem collect them from the nodes
afterwards (the summary names the node of each failed job and shows the end of its log).
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import REPO_ROOT
from .errors import ArgumentParser, SuiteError, command_line

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_SEEDS = (1, 2, 3)
TAIL_LINES = 15


@dataclass(frozen=True)
class Job:
    """One run: algorithm config, env config, seed and the with-tokens shared by the sweep."""

    config: str
    env_config: str
    seed: int
    extra: tuple = ()

    @property
    def name(self) -> str:
        return f"{self.config}_{self.env_config}_seed{self.seed}"

    def command(self, python=None) -> list:
        """argv of the job, to be run in the repository root."""
        return [python or sys.executable, "run.py", f"--config={self.config}",
                f"--env-config={self.env_config}", "with", f"seed={self.seed}", *self.extra]

    def log_path(self, sweep_dir) -> str:
        return os.path.join(sweep_dir, self.name + ".log")


@dataclass
class Result:
    job: Job
    returncode: int
    seconds: float
    log: str
    host: str = field(default_factory=socket.gethostname)
    tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def expand(configs, env_configs, seeds, extra=()) -> list:
    """The jobs of a sweep: every config x env config x seed, seeds innermost."""
    return [Job(c, e, int(s), tuple(extra)) for c in configs for e in env_configs for s in seeds]


def child_env(base=None, threads="1") -> dict:
    """Environment of a job: ``threads`` BLAS/OpenMP threads unless the caller chose otherwise."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_VARS:
        env.setdefault(var, threads)
    return env


def job_threads(jobs) -> str:
    """CPU threads of each job: its ``torch_threads`` with-token, else 1 (the config default, which
    every run applies to torch itself; the thread variables cover BLAS/OpenMP outside torch)."""
    for token in jobs[0].extra if jobs else ():
        if token.startswith("torch_threads="):
            return token.split("=", 1)[1].strip()
    return "1"


def results_path(extra) -> str:
    """Absolute local_results_path the jobs will use (a with-token, else config/default.yaml)."""
    path = None
    for token in extra:
        if token.startswith("local_results_path="):
            path = token.split("=", 1)[1].strip().strip("'\"")
    if path is None:
        path = _default_results_path()
    return os.path.normpath(os.path.join(REPO_ROOT, os.path.expanduser(path)))


def _default_results_path() -> str:
    try:
        import yaml

        with open(os.path.join(REPO_ROOT, "config", "default.yaml")) as f:
            return str((yaml.safe_load(f) or {}).get("local_results_path") or "results")
    except (OSError, ImportError, ValueError):
        return "results"


def check_names(kind, names):
    """SuiteError if a config name does not exist; the registry (slow to import) only on a miss."""
    folder = os.path.join(REPO_ROOT, "config", kind)
    found = {os.path.splitext(f)[0] for f in os.listdir(folder) if f.endswith(".yaml")} \
        if os.path.isdir(folder) else set()
    missing = [n for n in names if n not in found]
    if not missing:
        return
    from .config import available
    from .errors import unknown

    choices = available(kind)
    for name in missing:
        if name not in choices:
            raise unknown("--configs name" if kind == "algs" else "--env-configs name", name, choices)


# ---------------------------------------------------------------------------------------- command line

def _names(values):
    return [n for v in values for n in v.split(",") if n]


def parse_args(argv):
    """(options, with-tokens): everything after a literal 'with' is passed to every job."""
    argv = list(argv)
    extra = []
    if "with" in argv:
        i = argv.index("with")
        argv, extra = argv[:i], argv[i + 1:]
    p = ArgumentParser(prog="python -m marlkit.sweep",
                description="Run configs x env configs x seeds in parallel (locally or on Ray). "
                            "Tokens after 'with' go to every job.",
                usage="%(prog)s --configs A [B ...] --env-configs E [F ...] [options] [with key=value ...]")
    p.add_argument("--configs", nargs="+", required=True, help="algorithm configs (config/algs)")
    p.add_argument("--env-configs", nargs="+", required=True, help="env configs (config/envs)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", nargs="+", type=int, help="seeds (default 1 2 3)")
    seeds.add_argument("--n-seeds", type=int, help="use seeds 1..N")
    p.add_argument("--workers", type=int, default=None, help="parallel jobs (default: usable cores)")
    p.add_argument("--name", default=None, help="sweep name (default: a timestamp)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--ray-address", default=None, help="run the jobs as Ray tasks on this cluster")
    p.add_argument("--cpus-per-job", type=float, default=1.0, help="CPUs Ray reserves per job")
    args = p.parse_args(argv)
    args.configs, args.env_configs = _names(args.configs), _names(args.env_configs)
    if args.n_seeds is not None:
        if args.n_seeds < 1:
            raise SuiteError("--n-seeds must be at least 1")
        args.seeds = list(range(1, args.n_seeds + 1))
    args.seeds = list(dict.fromkeys(args.seeds or DEFAULT_SEEDS))
    if args.workers is None:
        args.workers = default_workers()
    if args.workers < 1:
        raise SuiteError("--workers must be at least 1")
    if args.cpus_per_job <= 0:
        raise SuiteError("--cpus-per-job must be positive")
    for token in extra:
        if "=" not in token:
            raise SuiteError(f"with-token '{token}' is not key=value")
        if token.split("=", 1)[0] == "seed":
            raise SuiteError("give seeds with --seeds/--n-seeds, not 'with seed=...'")
    args.auto_name = args.name is None
    args.name = args.name or time.strftime("%Y%m%d-%H%M%S")
    if os.sep in args.name or args.name in (".", ".."):
        raise SuiteError(f"--name '{args.name}' must be a plain folder name")
    return args, extra


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------- running

class Progress:
    """Prints one line per finished job and keeps the tally."""

    def __init__(self, total, stream=None):
        self.total, self.done, self.failed = total, 0, 0
        self.start = time.time()
        self.stream = stream or sys.stdout

    def update(self, result: Result):
        self.done += 1
        self.failed += not result.ok
        elapsed = time.time() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        status = "ok  " if result.ok else f"FAIL (exit {result.returncode})"
        print(f"[{self.done}/{self.total}] {status} {result.job.name} in {_hms(result.seconds)} | "
              f"failures {self.failed} | elapsed {_hms(elapsed)} | ETA {_hms(eta)}",
              file=self.stream, flush=True)


def _hms(seconds) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _tail(path, lines=TAIL_LINES) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_local(jobs, sweep_dir, workers, progress, python=None, poll=0.2) -> list:
    """Run the jobs as subprocesses, at most ``workers`` at once; Results in order of completion."""
    pending, running, results = list(jobs), [], []
    env = child_env(threads=job_threads(jobs))
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                log = job.log_path(sweep_dir)
                with open(log, "w") as out:
                    out.write(f"$ cd {shlex.quote(REPO_ROOT)} && {shlex.join(job.command(python))}\n")
                    out.flush()
                    proc = subprocess.Popen(job.command(python), cwd=REPO_ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                running.append((job, proc, time.time(), log))
            still = []
            for job, proc, start, log in running:
                if proc.poll() is None:
                    still.append((job, proc, start, log))
                    continue
                result = Result(job, proc.returncode, time.time() - start, log)
                if not result.ok:
                    result.tail = _tail(log)
                results.append(result)
                progress.update(result)
            running = still
            if running:
                time.sleep(poll)
    except KeyboardInterrupt:
        for _, proc, _, _ in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc, _, _ in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    return results


def make_task(tail_lines=TAIL_LINES):
    """Body of a Ray task: runs a job's subprocess on the worker node and returns (exit code, node,
    seconds, log tail). Built as a closure with its imports inside, so that Ray ships it by value
    (the workers need not be able to import marlkit)."""

    def run_job(command, cwd, log, env_updates):
        import os as _os
        import shlex as _shlex
        import socket as _socket
        import subprocess as _subprocess
        import time as _time

        host = _socket.gethostname()
        for needed in (cwd, command[0]):
            if not _os.path.exists(needed):
                return 127, host, 0.0, f"{needed} does not exist on node {host}\n"
        env = dict(_os.environ)
        for key, value in env_updates.items():
            env.setdefault(key, value)
        _os.makedirs(_os.path.dirname(log), exist_ok=True)
        start = _time.time()
        with open(log, "w") as out:
            out.write(f"$ cd {_shlex.quote(cwd)} && {_shlex.join(command)}   # on {host}\n")
            out.flush()
            code = _subprocess.call(command, cwd=cwd, env=env, stdout=out, stderr=_subprocess.STDOUT,
                                    stdin=_subprocess.DEVNULL)
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-tail_lines:])
        return code, host, _time.time() - start, tail

    return run_job


def import_ray():
    try:
        import ray
    except ImportError:
        raise SuiteError("--ray-address needs Ray, which is not installed: pip install ray") from None
    return ray


def run_ray(jobs, sweep_dir, address, progress, cpus_per_job=1.0, python=None) -> list:
    """Run the jobs as Ray tasks on the cluster at ``address``; Results in order of completion."""
    ray = import_ray()
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    refs = {}
    try:
        task = ray.remote(make_task()).options(num_cpus=cpus_per_job, max_retries=0)
        env_updates = {var: job_threads(jobs) for var in THREAD_VARS}
        refs = {task.remote(job.command(python), REPO_ROOT, job.log_path(sweep_dir), env_updates): job
                for job in jobs}
        results, waiting = [], list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            job = refs[ready[0]]
            try:
                code, host, seconds, tail = ray.get(ready[0])
            except Exception as exc:  # the task itself failed (node lost, ...)
                code, host, seconds, tail = -1, "?", 0.0, f"ray task failed: {exc}\n"
            result = Result(job, code, seconds, job.log_path(sweep_dir), host, "" if code == 0 else tail)
            results.append(result)
            progress.update(result)
        return results
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()


def claim_folder(path) -> str:
    """Create ``path``, or ``path-2``, ``path-3``, ... if taken (atomic: mkdir fails on a clash)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for i in range(1, 10000):
        candidate = path if i == 1 else f"{path}-{i}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise SuiteError(f"no free sweep folder next to {path}")


def write_record(sweep_dir, name, results, elapsed):
    record = {"name": name, "seconds": round(elapsed, 1), "cwd": REPO_ROOT,
              "jobs": [{"name": r.job.name, "command": r.job.command(), "returncode": r.returncode,
                        "seconds": round(r.seconds, 1), "log": r.log, "host": r.host} for r in results]}
    with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
        json.dump(record, f, indent=2)


def summary(name, results, elapsed, sweep_dir, stream=None):
    """Final report; returns the number of failed jobs."""
    stream = stream or sys.stdout
    failed = [r for r in results if not r.ok]
    print(f"sweep '{name}': {len(results) - len(failed)}/{len(results)} jobs succeeded in {_hms(elapsed)}; "
          f"logs in {sweep_dir}", file=stream)
    for r in failed:
        where = "" if r.host == socket.gethostname() else f" (on node {r.host})"
        print(f"  FAILED {r.job.name} (exit {r.returncode}): {r.log}{where}", file=stream)
        if r.tail:
            print("    " + r.tail.rstrip().replace("\n", "\n    "), file=stream)
    return len(failed)


def sweep(argv=None, stream=None) -> int:
    """The whole command: parse, expand, run, report; returns the exit code."""
    stream = stream or sys.stdout
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    check_names("algs", args.configs)
    check_names("envs", args.env_configs)
    jobs = expand(args.configs, args.env_configs, args.seeds, extra)
    sweep_dir = os.path.join(results_path(extra), "sweeps", args.name)
    where = f"Ray cluster {args.ray_address}" if args.ray_address else f"{min(args.workers, len(jobs))} workers"
    if args.dry_run:
        print(f"# sweep '{args.name}': {len(jobs)} jobs on {where}; logs would go to {sweep_dir}", file=stream)
        print(f"cd {shlex.quote(REPO_ROOT)}", file=stream)
        for job in jobs:
            print(shlex.join(job.command()), file=stream)
        return 0
    if args.ray_address:
        import_ray()  # fail before anything is created
    if getattr(args, "auto_name", False):  # sweeps started in the same second get distinct folders
        sweep_dir = claim_folder(sweep_dir)
        args.name = os.path.basename(sweep_dir)
    else:
        os.makedirs(sweep_dir, exist_ok=True)
    print(f"sweep '{args.name}': {len(jobs)} jobs ({len(args.configs)} configs x {len(args.env_configs)} envs "
          f"x {len(args.seeds)} seeds) on {where}; logs in {sweep_dir}", file=stream, flush=True)
    progress = Progress(len(jobs), stream)
    if args.ray_address:
        results = run_ray(jobs, sweep_dir, args.ray_address, progress, args.cpus_per_job)
    else:
        results = run_local(jobs, sweep_dir, args.workers, progress)
    elapsed = time.time() - progress.start
    write_record(sweep_dir, args.name, results, elapsed)
    return 1 if summary(args.name, results, elapsed, sweep_dir, stream) else 0


def main(argv=None) -> int:
    return command_line(lambda: sweep(argv), interrupted="interrupted: running jobs were stopped")


if __name__ == "__main__":
    sys.exit(main())
