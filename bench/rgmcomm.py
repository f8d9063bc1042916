"""RGMComm costs, side by side in one process (interleaved rounds, medians):

1. action selection: ``mac.select_actions`` of the message controller (rgmcomm_maddpg: the host's
   MADDPG controller plus labels from the generators) against the same controller without
   messages (maddpg), on mpe_tag with N predators and 8 envs, as the runner calls it (every env
   active: ``bs`` = all rows). Goal: at most 1.3x at N = 6. Generator widths: the paper's 1200
   units (Appendix E.2), the 256 of the scaled runs and 128. The runner selects under no_grad;
   the message controller adds inference mode, which makes the host's ops cheaper too:
   ``inference_ratio_<h>`` divides by the host's controller in inference mode, i.e. the cost of
   the messages alone. ``floor_<h>`` = (maddpg + one generator pass alone) / maddpg: the ratio
   if labels cost nothing but the generator's arithmetic; ``memory_floor_<h>`` = (maddpg + the
   time to read the generator's weights once) / maddpg, with the read timed as a sum over a tensor
   of the same size (``weight_mb``, ``read_gb_per_s``): no implementation that reads every weight
   per step gets below it; ``ratio_null``: the generator off (null labels: the wrapper alone);
   ``cpu_ratio_<h>``: ratio_<h> on the thread's CPU time; ``episode_ratio_<h>``: whole episodes
   with the runner (env steps included).
2. one generator update (Q-vector sampling + RIM loss + Adam step, all agents) against one
   update of the MADDPG learner underneath, on the same batch of 32 episodes; K1 = K2 = 256
   (public code) and 128 (scaled runs).
3. env steps per second of mpe_tag (3 predators): the host's bundled MPE world (one env, Python
   loops over entity pairs) against this plugin's batched port at 1, 8 and 32 envs.

    python bench/rgmcomm.py [--agents 2 6] [--rounds 15] [--parts selection updates env] [--out docs/bench/rgmcomm.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from bench_io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

import numpy as np  # noqa: E402
import torch as th  # noqa: E402

from marlkit.experiment import offline  # noqa: E402

GOAL = 1.3
PARTS = ("selection", "updates", "env")


def build(alg, n, **extra):
    updates = dict(env_args={"n_predators": n}, batch_size_run=8, batch_size=32, buffer_size=64, t_max=10**6)
    updates.update(extra)
    return offline(alg, "mpe_tag", updates)


def rounds(settings, calls, n_rounds, cpu=None):
    """settings: name -> callable; per round the median seconds of `calls` calls; median of rounds.
    ``cpu``: a dict to fill with the same medians of the thread's CPU time (without the time other
    processes held the core: on a loaded machine, long calls are preempted)."""
    per = {k: [] for k in settings}
    per_cpu = {k: [] for k in settings}
    names = list(settings)
    for r in range(n_rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times, cpu_times = [], []
            for _ in range(calls):
                c0, t0 = time.thread_time(), time.perf_counter()
                settings[name]()
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.thread_time() - c0)
            per[name].append(statistics.median(times))
            per_cpu[name].append(statistics.median(cpu_times))
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in per_cpu.items()})
    return {k: statistics.median(v) for k, v in per.items()}


WIDTHS = (1200, 256, 128)


def selection(n, n_rounds):
    """select_actions of maddpg (under no_grad, as the runner calls it, and in inference mode)
    and of rgmcomm_maddpg with each generator width, plus the labels alone (one generator pass
    for all agents) and a read of as many bytes as the generator's weights; and whole episodes of
    the runner (8 envs x 25 steps, env steps included)."""
    from marlkit.runners import ALL

    settings, episodes, weight_bytes = {}, {}, {}
    for name, alg, extra in (("maddpg", "maddpg", {}), ("rgmcomm_null", "rgmcomm_maddpg", {"rgm_gen_hidden": 128}),
                             *((f"rgmcomm_{h}", "rgmcomm_maddpg", {"rgm_gen_hidden": h}) for h in WIDTHS)):
        args, runner, buffer, mac, learner = build(alg, n, **extra)
        if hasattr(mac, "comm"):
            mac.comm.active = name != "rgmcomm_null"  # null labels: the wrapper without a generator pass
        batch, _ = runner.run(test_mode=False)
        state = {"t": 0}

        def call(mac=mac, batch=batch, runner=runner, state=state):
            if state["t"] == 0:
                mac.init_hidden(runner.batch_size)
            runner._select(batch, state["t"], ALL, False)
            state["t"] = (state["t"] + 1) % 25
        settings[name] = call
        if name == "maddpg":
            def in_inference(call=call):
                with th.inference_mode():
                    call()
            settings["maddpg_inference"] = in_inference
        if getattr(getattr(mac, "comm", None), "active", False):
            h, obs = extra["rgm_gen_hidden"], batch["obs"][:, 0]
            settings[f"labels_{h}"] = lambda comm=mac.comm, obs=obs: comm.labels(obs)
            weight_bytes[h] = sum(p.numel() * p.element_size() for p in mac.comm.generator.parameters())
            weights = th.ones(weight_bytes[h] // 4)
            settings[f"read_{h}"] = weights.sum
        episodes[name] = lambda runner=runner: runner.run(test_mode=False)
    cpu = {}
    sec = rounds(settings, 25, n_rounds, cpu)
    out = {"seconds": sec, "cpu_seconds": cpu, "ratio_null": sec["rgmcomm_null"] / sec["maddpg"],
           "inference_ratio_null": sec["rgmcomm_null"] / sec["maddpg_inference"]}
    for h in WIDTHS:
        out[f"ratio_{h}"] = sec[f"rgmcomm_{h}"] / sec["maddpg"]
        out[f"cpu_ratio_{h}"] = cpu[f"rgmcomm_{h}"] / cpu["maddpg"]
        out[f"inference_ratio_{h}"] = sec[f"rgmcomm_{h}"] / sec["maddpg_inference"]
        out[f"floor_{h}"] = (sec["maddpg"] + sec[f"labels_{h}"]) / sec["maddpg"]  # base + the generator pass
        out[f"memory_floor_{h}"] = (sec["maddpg"] + sec[f"read_{h}"]) / sec["maddpg"]
        out[f"weight_mb_{h}"] = weight_bytes[h] / 1e6
        out[f"read_gb_per_s_{h}"] = weight_bytes[h] / sec[f"read_{h}"] / 1e9
    ep = rounds(episodes, 2, n_rounds)
    out["episode_seconds"] = ep
    for h in WIDTHS:
        out[f"episode_ratio_{h}"] = ep[f"rgmcomm_{h}"] / ep["maddpg"]
    return out


def updates(n, n_rounds):
    from plugins.rgmcomm.learner import RGMCommMixin

    out = {}
    settings = {}
    for k in (256, 128):
        args, runner, buffer, mac, learner = build("rgmcomm_maddpg", n, rgm_gen_hidden=1200 if k == 256 else 256,
                                                   rgm_k1=k, rgm_k2=k)
        while not buffer.can_sample(32):
            buffer.insert_episode_batch(runner.run(test_mode=False)[0])
        sample = buffer.sample(32)
        settings[f"generator_k{k}"] = lambda learner=learner, sample=sample: learner.train_generator(sample, 0)
        if k == 256:
            settings["maddpg_update"] = lambda learner=learner, sample=sample: super(RGMCommMixin, learner).train(sample, 0, 0)
    sec = rounds(settings, 3, n_rounds)
    out["seconds"] = sec
    out["ratio_generator_k256"] = sec["generator_k256"] / sec["maddpg_update"]
    out["ratio_generator_k128"] = sec["generator_k128"] / sec["maddpg_update"]
    return out


def env_speed(n_rounds):
    from pymarlzooplus.envs.multiagent_particle_envs.mpe import scenarios
    from plugins.rgmcomm.envs import mpe

    scenario = scenarios.load("simple_tag.py").Scenario()
    world = scenario.make_world()
    rng = np.random.default_rng(0)

    def host_step():
        for k, agent in enumerate(world.agents):
            agent.action.u = mpe.DIRECTIONS[rng.integers(5)] * agent.accel
            agent.action.c = np.zeros(world.dim_c)
        world.step()
        [scenario.observation(a, world) for a in world.agents]
        [scenario.reward(a, world) for a in world.agents]

    settings = {"host_mpe_1env": host_step}
    ports = {}
    for e in (1, 8, 32):
        env = mpe.Tag(e, seed=0, n_predators=3, episode_limit=10**9)
        env.reset()
        ports[e] = env
        settings[f"port_{e}env"] = lambda env=env, e=e: (env.step(rng.integers(0, 5, (e, 3)), np.ones(e, bool)), env.get_obs())
    sec = rounds(settings, 50, n_rounds)
    steps = {k: (int(k.split("_")[1].rstrip("env")) if k.startswith("port") else 1) / v for k, v in sec.items()}
    return {"seconds_per_call": sec, "env_steps_per_second": steps,
            "ratio_port_32env_vs_host": steps["port_32env"] / steps["host_mpe_1env"],
            "ratio_port_1env_vs_host": steps["port_1env"] / steps["host_mpe_1env"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "rgmcomm.json"))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="measure only these; the other parts of an existing --out file are kept")
    a = parser.parse_args()
    th.set_num_threads(1)
    result = {"machine": platform.processor() or platform.machine(), "torch_threads": 1, "goal_selection_ratio": GOAL,
              "selection": {}, "updates": {}, "load_average": {}}  # load: 1-minute average after each part
    if set(a.parts) != set(PARTS) and os.path.exists(a.out):
        with open(a.out) as f:
            old = json.load(f)
        result.update({k: v for k, v in old.items() if k in PARTS and k not in a.parts})
        result["load_average"].update({k: v for k, v in old.get("load_average", {}).items() if k not in a.parts})
    if "selection" in a.parts:
        for n in a.agents:
            result["selection"][str(n)] = selection(n, a.rounds)
            print(f"select_actions N={n}: {json.dumps(result['selection'][str(n)])}", flush=True)
        result["load_average"]["selection"] = round(os.getloadavg()[0], 1)
    if "updates" in a.parts:
        result["updates"][str(max(a.agents))] = updates(max(a.agents), max(3, a.rounds // 3))
        print(f"updates N={max(a.agents)}: {json.dumps(result['updates'][str(max(a.agents))])}", flush=True)
        result["load_average"]["updates"] = round(os.getloadavg()[0], 1)
    if "env" in a.parts:
        result["env"] = env_speed(a.rounds)
        print(f"env: {json.dumps(result['env'])}", flush=True)
        result["load_average"]["env"] = round(os.getloadavg()[0], 1)
    write_json(a.out, result)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
