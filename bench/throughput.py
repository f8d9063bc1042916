"""Training-loop throughput of stock QMIX: env steps per second, learning included.

Measured side by side in one process, so the ratios hold on a shared, noisy machine:
  * SMAX 3m with the episode runner (1 env) and with the parallel runner (8 envs stepped together);
  * LBF Foraging-8x8-2p-3f through the host's gymma wrapper, episode and parallel runner, the task
    every pymarl-family framework runs, so this loop can be compared with theirs.
Segments of the settings are interleaved (round robin) after a warm-up that fills the replay buffer
to one batch and compiles JAX, so load changes hit every setting alike.

    python bench/throughput.py [--seconds 60] [--rounds 3] [--out docs/bench/throughput.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time

from bench_io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

import torch as th  # noqa: E402

from marlkit.experiment import offline, train_iteration  # noqa: E402

LBF = {"env_args": {"key": "lbforaging:Foraging-8x8-2p-3f-v3", "time_limit": 50}}
SETTINGS = {
    "smax_3m_episode": ("qmix", "smax", {"env_args": {"map_name": "3m"}}),
    "smax_3m_parallel8": ("qmix", "smax", {"env_args": {"map_name": "3m"}, "runner": "parallel", "batch_size_run": 8}),
    "lbf_8x8_2p_3f_episode": ("qmix", "gymma", LBF),
    "lbf_8x8_2p_3f_parallel8": ("qmix", "gymma", {**LBF, "runner": "parallel", "batch_size_run": 8}),
}


class Setting:
    """One configuration, built once, advanced in timed segments."""

    def __init__(self, alg, env, updates):
        with contextlib.redirect_stdout(io.StringIO()):
            self.args, self.runner, self.buffer, _, self.learner = offline(alg, env, dict(updates, seed=1))
        self.episode, self.steps, self.seconds, self.train_calls = 0, 0, 0.0, 0
        self.args.learner_log_interval = 10**12  # no logging inside the timed loop

    def warm_up(self):
        while not self.buffer.can_sample(self.args.batch_size):
            self.episode = train_iteration(self.args, self.runner, self.buffer, self.learner, self.episode)
        self.episode = train_iteration(self.args, self.runner, self.buffer, self.learner, self.episode)

    def segment(self, seconds):
        start_t, start = self.runner.t_env, time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.episode = train_iteration(self.args, self.runner, self.buffer, self.learner, self.episode)
            self.train_calls += self.args.num_circle
        self.seconds += time.perf_counter() - start
        self.steps += self.runner.t_env - start_t

    def result(self):
        return {"env_steps": self.steps, "seconds": round(self.seconds, 2),
                "steps_per_second": round(self.steps / self.seconds, 1), "train_calls": self.train_calls,
                "batch_size_run": self.args.batch_size_run, "runner": self.args.runner}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="timed seconds per setting (split into rounds)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "throughput.json"))
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    settings = {name: Setting(*SETTINGS[name]) for name in args.only}
    for name, setting in settings.items():
        print(f"warming up {name}", flush=True)
        setting.warm_up()
    for r in range(args.rounds):
        for name, setting in settings.items():
            setting.segment(args.seconds / args.rounds)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    results = {name: s.result() for name, s in settings.items()}
    ratios = {}
    for task in ("smax_3m", "lbf_8x8_2p_3f"):
        ep, par = results.get(f"{task}_episode"), results.get(f"{task}_parallel8")
        if ep and par:
            ratios[f"{task}_parallel8_over_episode"] = round(par["steps_per_second"] / ep["steps_per_second"], 2)
    report = {"what": "stock QMIX (host q_learner, EPyMARL defaults), env steps/s including learning",
              "torch_threads": 1, "python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "results": results, "ratios": ratios}
    write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
