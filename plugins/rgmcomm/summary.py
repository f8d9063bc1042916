"""Tables of the RGMComm reproduction from Sacred runs, per method and seed:

    PYTHONPATH=src python -m plugins.rgmcomm.summary --results results/rgmcomm [--last 3] > table.md

A method is the algorithm plus the settings that tell the study's runs apart (observe_all,
comm_labels, rgm_norm, n_predators). Final value = mean of the last ``--last`` test evaluations
of each metric. With RGMComm runs, also the last logged epsilon (average within-cluster cosine
distance), Q_max and the Thm. 4.3 bound, and, per task, the return gap to full observation and the share
of the partial-to-full-observation gap each method closes (Fig. 4 / Fig. 6 analogues).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from collections import defaultdict

import numpy as np

METRICS = ("test_return_mean", "test_catches_mean", "test_high_mean", "test_low_mean", "test_collisions_mean")
RGM_LOGS = ("rgm_epsilon", "rgm_q_max", "rgm_gap_bound", "message_entropy")


def method(config):
    env_args = config.get("env_args", {})
    name = config["alg_config"]
    if env_args.get("observe_all"):
        name += " (full obs)"
    elif config["mac"] == "rgmcomm_mac":
        name += f" M={config['comm_labels']}" + ("" if config.get("rgm_norm", "tanh") == "tanh" else f" {config['rgm_norm']}")
    task = config["env"] + (f" N={env_args['n_predators']}" if "n_predators" in env_args else "") \
        + (f" N={env_args['n_agents']}" if config["env"] == "mpe_spread" else "")
    return task, name


def load(results, last, include_running=False):
    rows = defaultdict(dict)  # (task, method) -> seed -> values
    for run in glob.glob(os.path.join(results, "sacred", "*", "*", "*", "run.json")):
        d = os.path.dirname(run)
        status = json.load(open(run)).get("status")
        if status != "COMPLETED" and not (include_running and status == "RUNNING"):
            continue
        config = json.load(open(os.path.join(d, "config.json")))
        metrics = json.load(open(os.path.join(d, "metrics.json")))
        if "test_return_mean" not in metrics:
            continue
        values = {k: float(np.mean(metrics[k]["values"][-last:])) for k in METRICS if k in metrics}
        values.update({k: float(metrics[k]["values"][-1]) for k in RGM_LOGS if k in metrics})
        values["t_env"] = metrics["test_return_mean"]["steps"][-1]
        rows[method(config)][config["seed"]] = values
    return rows


def table(rows):
    lines = ["| task | method | seed | steps | " + " | ".join(k.replace("test_", "").replace("_mean", "") for k in METRICS)
             + " | epsilon | Q_max | bound |", "|" + "---|" * (len(METRICS) + 7)]
    for (task, name), seeds in sorted(rows.items()):
        for seed, v in sorted(seeds.items()):
            cells = [f"{v[k]:.3f}" if k in v else "" for k in METRICS + RGM_LOGS[:3]]
            lines.append(f"| {task} | {name} | {seed} | {v['t_env']} | " + " | ".join(cells) + " |")
        mean = {k: np.mean([v[k] for v in seeds.values() if k in v]) for k in METRICS + RGM_LOGS[:3]
                if any(k in v for v in seeds.values())}
        cells = [f"**{mean[k]:.3f}**" if k in mean else "" for k in METRICS + RGM_LOGS[:3]]
        lines.append(f"| {task} | {name} | mean | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gaps(rows):
    """Per task, every method against partial (PO) and full observation (FO): the gap to FO and the
    share of the PO -> FO gap it closes, (R - R_PO) / (R_FO - R_PO) (returns can be negative, so
    this replaces the paper's R / R_FO of Fig. 4)."""
    lines = ["| task | method | return | PO return | FO return | gap to FO | share of PO->FO gap closed | epsilon | bound |",
             "|---|---|---|---|---|---|---|---|---|"]

    def mean_return(task, pick):
        vals = [v["test_return_mean"] for (t, n), s in rows.items() if t == task and pick(n) for v in s.values()]
        return float(np.mean(vals)) if vals else None

    for task in sorted({t for t, _ in rows}):
        fo = mean_return(task, lambda n: "full obs" in n)
        po = mean_return(task, lambda n: n in ("maddpg", "qmix"))
        if fo is None or po is None:
            continue
        for (t, name), seeds in sorted(rows.items()):
            if t != task or "full obs" in name:
                continue
            ret = float(np.mean([v["test_return_mean"] for v in seeds.values()]))
            eps = [v["rgm_epsilon"] for v in seeds.values() if "rgm_epsilon" in v]
            bound = [v["rgm_gap_bound"] for v in seeds.values() if "rgm_gap_bound" in v]
            closed = (ret - po) / (fo - po) if fo != po else float("nan")
            lines.append(f"| {task} | {name} | {ret:.3f} | {po:.3f} | {fo:.3f} | {fo - ret:.3f} | {closed:.2f} | "
                         + (f"{np.mean(eps):.4f} | {np.mean(bound):.2f} |" if eps else " | |"))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results/rgmcomm")
    p.add_argument("--last", type=int, default=3)
    p.add_argument("--include-running", action="store_true", help="also runs still RUNNING (their steps column says how far)")
    a = p.parse_args(argv)
    rows = load(a.results, a.last, a.include_running)
    print(table(rows))
    print()
    print(gaps(rows))


if __name__ == "__main__":
    main()
