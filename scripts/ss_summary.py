"""Final-value tables of the SS reproduction (docs/reproduction/ss.md): per method, task and seed.

Reads results/sacred/<alg>/<env>/<id>/{config,metrics}.json of the SS-core algorithms, groups runs
by task (env, n_agents) and variant (rho, protocol, sharing period, actor learning rate when they
differ from the presets), and writes a markdown table of the final value of a metric per seed (mean of the
last ``--last`` logged points), the mean over seeds, and that mean normalised per task to [0, 1]
between the worst and the best method (the paper's Fig. 2 normalisation is not specified; min-max
over the methods shown is ours).

    python scripts/ss_summary.py [--results results [results/ss_rho ...]] [--metric collective_return_mean]
        [--last 3] [--filter test_greedy=True] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from collections import defaultdict
from functools import lru_cache

import numpy as np
import yaml

ALGS = ("ss", "ss_rho0", "ss_ippo", "vs", "vps", "ps", "cl", "imr")
ENVS = ("coop_predation", "coop_navigation", "cleanup", "harvest")
ENV_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config", "envs")


@lru_cache(maxsize=None)
def presets(env):
    """The env preset's rho, protocol and actor learning rate (config/envs/<env>.yaml, Table 2)."""
    with open(os.path.join(ENV_CONFIGS, f"{env}.yaml")) as f:
        cfg = yaml.safe_load(f)
    return cfg.get("ss_rho"), cfg.get("ss_protocol", "env"), cfg.get("ss_actor_lr")


def variant(alg, config):
    """A label for runs whose sharing settings or actor learning rate differ from the presets."""
    rho, protocol, actor_lr = presets(config["env"])
    parts = []
    if config.get("ss_protocol") not in (protocol, "none") and alg in ("ss", "ss_rho0", "ps"):
        parts.append(f"protocol {config['ss_protocol']}" + (f" m={config['ss_random_m']}"
                                                           if config["ss_protocol"] == "random" else ""))
    if alg == "ss" and rho is not None and config.get("ss_rho") != rho:
        parts.append(f"rho={config['ss_rho']:g}")
    if config.get("ss_share_every", 1) != 1:
        parts.append(f"every {config['ss_share_every']}")
    if actor_lr is not None and config.get("ss_actor_lr") != actor_lr:
        parts.append(f"lr {config['ss_actor_lr']:g}")
    return alg + (f" ({', '.join(parts)})" if parts else "")


def matches(config, filters):
    """True if every KEY=VALUE of ``filters`` equals the run's config value (compared as text)."""
    for item in filters:
        key, _, value = item.partition("=")
        if str(config.get(key)) != value:
            return False
    return True


def collect(folders, metric, last, filters=()):
    table = defaultdict(dict)  # (task) -> {label: {seed: value}}
    for results, alg in [(r, a) for r in folders for a in ALGS]:
        for env in ENVS:
            for run in sorted(glob.glob(os.path.join(results, "sacred", alg, env, "*", "metrics.json"))):
                folder = os.path.dirname(run)
                try:
                    config = json.load(open(os.path.join(folder, "config.json")))
                    status = json.load(open(os.path.join(folder, "run.json")))["status"]
                    values = json.load(open(run))[metric]["values"]
                except (OSError, KeyError, ValueError):
                    continue
                if status != "COMPLETED" or not values or not matches(config, filters):
                    continue
                task = f"{env} N={config['env_args'].get('n_agents')}"
                table[task].setdefault(variant(alg, config), {})[config["seed"]] = float(np.mean(values[-last:]))
    return table


def markdown(table, metric):
    lines = []
    for task in sorted(table):
        rows = table[task]
        means = {label: np.mean(list(v.values())) for label, v in rows.items()}
        lo, hi = min(means.values()), max(means.values())
        seeds = sorted({s for v in rows.values() for s in v})
        lines += [f"### {task}: final `{metric}`", "",
                  "| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | normalised |",
                  "|---|" + "---|" * (len(seeds) + 2)]
        for label in sorted(rows, key=lambda k: -means[k]):
            cells = [f"{rows[label][s]:.3f}" if s in rows[label] else "-" for s in seeds]
            norm = (means[label] - lo) / (hi - lo) if hi > lo else 1.0
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {means[label]:.3f} | {norm:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", nargs="+", default=["results"], help="results folders (variants may live apart)")
    parser.add_argument("--metric", default="collective_return_mean")
    parser.add_argument("--last", type=int, default=3, help="logged points averaged for the final value")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config has this value, e.g. test_greedy=True (repeatable)")
    parser.add_argument("--out", default=None)
    opts = parser.parse_args(argv)
    text = markdown(collect(opts.results, opts.metric, opts.last, opts.filter), opts.metric)
    if opts.out:
        os.makedirs(os.path.dirname(opts.out) or ".", exist_ok=True)
        with open(opts.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
