"""Seconds per action selection (one env step): DAG-BN controller (bn_mac) vs the host's MAPPO one.

Every controller is built through the suite's own machinery (``offline``) from its config: the
host's MAPPO (``mappo``: stock basic_mac, rnn agent, soft_policies selector) and DAG-BN (plugins/dagbn,
``bn_mac``) with the context DAG and learned order (``dagbn``, the default), the context DAG over
the identity order (``dagbn`` with dag_permutation=identity, as ``dagbn_anneal``), the fixed
fully connected DAG (``dagbn_full``) and no DAG (``dagbn_none``), and the learned order matched on the
noisy scores (``dag_perm_match=scores``, no Sinkhorn iterations at acting time). Same env, number of agents and
number of parallel envs for all; untrained (initial) weights. Each setting runs one episode first
so the batch holds real observations, then times ``mac.select_actions(batch, t_ep=t, ..., bs=all
envs, test_mode=False)`` exactly as the runner calls it, t cycling over the episode's steps.
MAPPO is timed as the runner calls it, autograd on (basic_mac does not disable it; its GRU state
is reset, with its graph, at each episode start), and also under torch.no_grad (``mappo_no_grad``,
reference only; bn_mac.select_actions is decorated with torch.no_grad).
Settings are interleaved in rounds (round robin, start rotated each round) so load changes on a
shared machine hit all alike; per round the median of the calls, then the median over rounds.
Calls are timed in CPU time of the thread by default (``--clock wall`` for wall time): on a busy
machine a 2 ms call is preempted far more often than a 0.5 ms one, which biases wall-time ratios.
BN/MAPPO ratios per (n, envs); the goal is at most 2x for n = 10.

Then a breakdown of the BN context controller (largest n) into its parts, timed the same way with
the plugin's own functions, plus a cProfile of select_actions (cumulative shares).

    python bench/bn_select.py [--env coordination_game|aloha] [--agents 5 10] [--envs 8 32]
                              [--calls 30] [--rounds 25] [--clock cpu|wall] [--out docs/bench/bn_select.json]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time

from bench_io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

import numpy as np  # noqa: E402
import torch as th  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from marlkit.experiment import offline  # noqa: E402

CONTROLLERS = {
    "mappo": ("mappo", {}),
    "mappo_no_grad": ("mappo", {}),  # reference: the same, called under torch.no_grad() (bn_mac's own choice)
    "bn_context": ("dagbn", {}),
    "bn_context_identity": ("dagbn", {"dag_permutation": "identity"}),
    "bn_context_scores": ("dagbn", {"dag_perm_match": "scores"}),  # learned order matched on the noisy scores
    "bn_full": ("dagbn_full", {}),
    "bn_none": ("dagbn_none", {}),
}
ENVS = {
    "coordination_game": lambda n: {"n": n},
    "aloha": lambda n: {"rows": 2, "cols": n // 2} if n > 5 and n % 2 == 0 else {"rows": 1, "cols": n},
}
GOAL = 2.0
DESCRIBE = ("mac", "agent", "action_selector", "hidden_dim", "use_rnn", "obs_last_action", "obs_agent_id",
            "dag_mode", "dag_permutation", "dag_perm_match", "dag_actor_arch", "dag_sinkhorn_iters")


class Setting:
    """One controller on one (env, n, envs), built once, with one collected episode to act on."""

    def __init__(self, name, env, n, n_envs, seed, threads=1):
        alg, updates = CONTROLLERS[name]
        updates = dict(updates, seed=seed, env_args=ENVS[env](n), batch_size_run=n_envs,
                       buffer_size=n_envs, batch_size=n_envs, torch_threads=threads)
        with contextlib.redirect_stdout(io.StringIO()):
            self.args, self.runner, _, self.mac, _ = offline(alg, env, updates)
        assert self.args.n_agents == n and self.runner.batch_size == n_envs
        self.batch = self.runner.run(test_mode=False)[0]
        self.steps = int(self.batch.max_t_filled()) - 1  # steps that chose actions (the last row is the final obs)
        self.envs = np.arange(n_envs)  # the runner passes the active envs' indices
        self.mac.init_hidden(n_envs)
        self.grad = th.no_grad() if name == "mappo_no_grad" else contextlib.nullcontext()
        self.k = 0
        self.call()  # warm-up (allocations, first-use costs)

    def call(self):
        t = self.k % self.steps
        self.k += 1
        if t == 0:  # a new episode, as in the runner: fresh RNN state (and autograd history) for MAPPO
            self.mac.init_hidden(len(self.envs))
        with self.grad:
            return self.mac.select_actions(self.batch, t_ep=t, t_env=self.runner.t_env, bs=self.envs, test_mode=False)

    def passes(self, samples=200):
        """Mean head passes per select_actions call (BNMAC.sample re-runs every agent's head until
        the actions stop changing: at most n, 1 without edges), counted on real calls."""
        policy, count = self.mac.agent, [0]
        head = policy.head

        def counted(*a, **k):
            count[0] += 1
            return head(*a, **k)

        policy.head = counted
        try:
            for _ in range(samples):
                self.call()
        finally:
            del policy.head  # back to the class method
        return count[0] / samples


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
CLOCK = [time.thread_time]  # --clock


def interleaved(funcs, calls, rounds, verbose=False):
    """{name: [median seconds per call, one per round]} for zero-argument callables, round robin
    with the start rotated each round (no callable always runs first)."""
    names, per_round, clock = list(funcs), {name: [] for name in funcs}, CLOCK[0]
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times = []
            for _ in range(calls):
                start = clock()
                funcs[name]()
                times.append(clock() - start)
            per_round[name].append(statistics.median(times))
        if verbose:
            print(f"round {r + 1}/{rounds} done", flush=True)
    return per_round


def parts(setting):
    """Zero-argument callables for the parts of BNMAC.select_actions (context DAG, learned order),
    built from the plugin's own functions; like the setting's calls, each cycles over the steps
    of its collected episode (inputs, and one DAG sample per step for the sample.* parts)."""
    from plugins.dagbn.graph import gumbel_sinkhorn, hungarian
    from plugins.dagbn.policy import NEG, parent_inputs

    mac, policy = setting.mac, setting.mac.agent
    graph, batch, envs = policy.graph, setting.batch, setting.envs
    steps = []
    for t in range(setting.steps):
        x, obs = mac.inputs(batch, t)
        x, obs, avail = x[envs], obs[envs], batch["avail_actions"][envs, t]
        joint = obs.reshape(*obs.shape[:-2], -1)
        scores = F.logsigmoid(graph.perm_net(joint).view(len(envs), graph.n, graph.n))
        soft = gumbel_sinkhorn(scores, **graph.sinkhorn)
        G = policy.dag(obs)
        own = policy.own(x)
        noise = -th.log(-th.log(th.rand(avail.shape).clamp_(1e-10, 1.0 - 1e-7)))
        steps.append(dict(t=t, x=x, obs=obs, avail=avail, joint=joint, scores=scores, soft=soft, G=G, own=own,
                          noise=noise, eye=th.eye(avail.shape[-1])))
    k = [0]

    def step():
        k[0] += 1
        return steps[k[0] % len(steps)]

    def select_actions():
        s = step()
        return mac.select_actions(batch, t_ep=s["t"], t_env=0, bs=envs, test_mode=False)

    def inputs():  # the first lines of select_actions: own features, observations, avail of the envs
        t = step()["t"]
        return [v[envs] for v in mac.inputs(batch, t)], batch["avail_actions"][envs, t]

    def head_pass(s):  # one pass of BNMAC.sample: every agent's head, Gumbel-max choice, one-hot
        avail = s["avail"]
        logits = policy.head(s["own"], parent_inputs(s["G"], th.zeros(*avail.shape))).masked_fill(avail == 0, NEG)
        return s["eye"][(logits + s["noise"]).argmax(-1)]

    return {
        "select_actions": select_actions,
        "inputs": inputs,
        "dag": lambda: policy.dag(step()["obs"]),
        "dag.edges": lambda: graph.edges(step()["joint"], False),
        "dag.perm_net": lambda: F.logsigmoid(graph.perm_net(step()["joint"])),
        "dag.sinkhorn": lambda: gumbel_sinkhorn(step()["scores"], **graph.sinkhorn),
        "dag.hungarian": lambda: hungarian(step()["soft"]),
        "sample": lambda: (lambda s: mac.sample(s["x"], s["obs"], s["avail"], s["G"]))(step()),
        "sample.own": lambda: policy.own(step()["x"]),
        "sample.one_head_pass": lambda: head_pass(step()),
    }


def profile(setting, calls, top=8):
    """cProfile of ``calls`` select_actions calls: cumulative seconds per call of every plugin
    function (dagbn/*.py) and of the ``top`` costliest torch/scipy built-ins (own time), with their
    share of select_actions. cProfile adds overhead per Python call, so shares are approximate."""
    prof = cProfile.Profile()
    with th.no_grad():
        prof.enable()
        for _ in range(calls):
            setting.call()
        prof.disable()
    plugin, builtins = {}, {}
    for (path, _line, func), (_cc, nc, tt, ct, _callers) in pstats.Stats(prof).stats.items():
        if "dagbn" in path:
            key = f"{os.path.basename(path)}:{func}"
            plugin[key] = plugin.get(key, 0.0) + ct / calls
        elif path == "~" and func.startswith("<"):
            builtins[func] = (tt / calls, nc / calls)
    total = plugin["policy.py:select_actions"]
    out = {k: {"seconds_per_call": round(v, 6), "share": round(v / total, 3)}
           for k, v in sorted(plugin.items(), key=lambda kv: -kv[1])}
    for func, (tt, nc) in sorted(builtins.items(), key=lambda kv: -kv[1][0])[:top]:
        out[func] = {"seconds_per_call": round(tt, 6), "share": round(tt / total, 3), "calls_per_call": round(nc, 1)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="coordination_game", choices=list(ENVS))
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 32], help="parallel envs (batch_size_run)")
    parser.add_argument("--only", nargs="*", default=list(CONTROLLERS), choices=list(CONTROLLERS))
    parser.add_argument("--calls", type=int, default=30, help="timed select_actions calls per setting per round")
    parser.add_argument("--rounds", type=int, default=25, help="many short rounds: load changes hit all alike")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clock", default="cpu", choices=list(CLOCKS),
                        help="cpu: this thread's CPU time (default; on a shared machine wall time also counts the "
                             "time the process waits for a core, which hits a long call more often than a short one)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the BN part timings and the cProfile")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "bn_select.json"))
    opts = parser.parse_args(argv)
    opts.only = ["mappo"] + [name for name in opts.only if name != "mappo"]
    CLOCK[0] = CLOCKS[opts.clock]
    load_start = os.getloadavg()

    settings = {}
    for n in opts.agents:
        for b in opts.envs:
            for name in opts.only:
                print(f"building {name} n={n} envs={b}", flush=True)
                settings[f"{name}/n{n}/envs{b}"] = Setting(name, opts.env, n, b, opts.seed, opts.threads)

    per_round = interleaved({key: s.call for key, s in settings.items()}, opts.calls, opts.rounds, verbose=True)

    median = {key: statistics.median(v) for key, v in per_round.items()}
    ratios, ratios_by_round, ratios_no_grad, table = {}, {}, {}, {}
    for n in opts.agents:
        for b in opts.envs:
            base = median[f"mappo/n{n}/envs{b}"]
            for name in opts.only:
                key = f"{name}/n{n}/envs{b}"
                if name.startswith("bn_"):
                    ratios[f"{name}_over_mappo/n{n}/envs{b}"] = round(median[key] / base, 3)
                    ratios_by_round[f"{name}_over_mappo/n{n}/envs{b}"] = round(statistics.median(
                        x / y for x, y in zip(per_round[key], per_round[f"mappo/n{n}/envs{b}"])), 3)
                    if f"mappo_no_grad/n{n}/envs{b}" in median:
                        ratios_no_grad[f"{name}_over_mappo_no_grad/n{n}/envs{b}"] = round(
                            median[key] / median[f"mappo_no_grad/n{n}/envs{b}"], 3)
                table.setdefault(f"n{n}/envs{b}", {})[name] = round(median[key] * 1000, 3)
    passes = {key: round(s.passes(), 2) for key, s in settings.items() if key.startswith("bn_")}
    n_max = max(opts.agents)
    goal_met = {key: ratio <= GOAL for key, ratio in ratios.items() if f"/n{n_max}/" in key}
    print("ms per call:", json.dumps(table))
    print("ratios:", json.dumps(ratios))

    breakdown, profiles = {}, {}
    if not opts.no_breakdown and "bn_context" in opts.only:
        for b in opts.envs:
            setting = settings[f"bn_context/n{n_max}/envs{b}"]
            print(f"breakdown of bn_context n={n_max} envs={b}", flush=True)
            with th.no_grad():
                part_rounds = interleaved(parts(setting), opts.calls, opts.rounds)
            breakdown[f"n{n_max}/envs{b}"] = {k: round(statistics.median(v), 6) for k, v in part_rounds.items()}
            profiles[f"n{n_max}/envs{b}"] = profile(setting, opts.calls)
        print("breakdown (s per call):", json.dumps(breakdown, indent=1))

    result = {
        "what": "seconds per mac.select_actions call (one env step of all parallel envs, test_mode=False), "
                "median over interleaved rounds of the per-round median; BN controllers vs the host's MAPPO",
        "configs": {name: {"alg": alg, "updates": upd} for name, (alg, upd) in CONTROLLERS.items() if name in opts.only},
        "controllers": {name: {k: getattr(settings[f"{name}/n{n_max}/envs{opts.envs[0]}"].args, k, None)
                               for k in DESCRIBE if name.startswith("bn_") or not k.startswith("dag_")}
                        for name in opts.only},
        "env": opts.env, "env_args": {f"n{n}": ENVS[opts.env](n) for n in opts.agents},
        "agents": opts.agents, "parallel_envs": opts.envs, "weights": "initial (untrained), seed %d" % opts.seed,
        "calls_per_round": opts.calls, "rounds": opts.rounds, "torch_threads": opts.threads,
        "clock": {"cpu": "time.thread_time (CPU time of the calling thread)", "wall": "time.perf_counter"}[opts.clock],
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "ms_per_call": table,
        "seconds_per_call": {k: round(v, 6) for k, v in median.items()},
        "seconds_per_call_rounds": {k: [round(x, 6) for x in v] for k, v in per_round.items()},
        "ratios": ratios, "goal_bn_over_mappo_at_max_n": GOAL, "goal_met": goal_met,
        "ratios_median_of_round_ratios": ratios_by_round,
        "ratios_vs_mappo_no_grad": ratios_no_grad,
        "mappo_note": "basic_mac.select_actions runs with autograd on in the runner (its GRU state keeps a graph "
                      "until init_hidden at the next episode), so 'mappo' is timed that way, with init_hidden at "
                      "each episode start; bn_mac.select_actions is decorated with torch.no_grad. 'mappo_no_grad' "
                      "is the same MAPPO call under torch.no_grad, for reference.",
        "bn_head_passes_per_call": passes,
        "breakdown_bn_context_seconds_per_call": breakdown,
        "breakdown_note": "parts timed alone, interleaved, on the same episode (cycling its steps; sample.* "
                          "on one sampled DAG per step); sample ~= sample.own + bn_head_passes_per_call x one_head_pass + log-probs; "
                          "dag = edges (net + Gumbel-Softmax) + perm_net + sinkhorn + hungarian + P^T M P and glue",
        "profile_bn_context_cprofile": profiles,
        "machine": {"python": platform.python_version(), "torch": th.__version__, "cpus": os.cpu_count(),
                    "note": "shared CPU: other jobs ran alongside; ratios are the result, not absolute times"},
    }
    write_json(opts.out, result)
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
