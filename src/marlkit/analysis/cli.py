"""Command line of ``python -m marlkit.analysis`` (options in the package docstring)."""
from __future__ import annotations

import os
import sys

from ..errors import ArgumentParser, SuiteError, command_line
from .heatmap import heatmaps, write_heatmap_outputs
from .plots import write_outputs
from .runs import choose_env, load_references, load_runs
from .stats import aggregate, curves, default_metric


def parse_args(argv):
    p = ArgumentParser(prog="python -m marlkit.analysis",
                description="Learning curves (mean or IQM over seeds, 95%% bands) and final-value tables "
                            "of several algorithms on one env, from <results>/sacred; with --heatmap, one "
                            "heatmap per algorithm of a logged histogram (e.g. the weight distribution) "
                            "against env steps.")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--env", help="env label, e.g. smax_3m (default: the only one present)")
    p.add_argument("--algs", nargs="+", help="algorithms (default: all with runs on the env)")
    p.add_argument("--metric", help="metric (default: test_battle_won_mean if logged, else test_return_mean)")
    p.add_argument("--out", help="PNG path; CSV/MD get the same stem (default: <results>/plots/<env>_<metric>.png)")
    p.add_argument("--until", type=float, help="end the curves at this env step")
    p.add_argument("--smooth", type=int, default=1, help="moving-average window in logged points (default 1)")
    p.add_argument("--stat", choices=("mean", "iqm"), default="mean",
                   help="mean with t-CI (default) or interquartile mean with bootstrap CI")
    p.add_argument("--include-running", action="store_true", help="also use runs that are still RUNNING")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep runs whose config matches (dotted keys allowed; repeatable)")
    p.add_argument("--label-by", metavar="KEY", help="one curve per algorithm and value of this config key")
    p.add_argument("--reference", nargs="+", metavar="CSV",
                   help="also draw external curves (e.g. another library's baselines) from CSVs with columns "
                        "label, seed, step, value (value = the metric); each label becomes one curve with its "
                        "band over seeds, smoothed and tabulated like the runs")
    p.add_argument("--heatmap", metavar="PREFIX",
                   help="instead of curves, a heatmap per curve label of the histogram logged as PREFIX_0, "
                        "PREFIX_1, ... (e.g. weight_hist): share of transitions per bin, mean over seeds, vs "
                        "env steps; writes PNG, CSV (step, bin, label, share) and MD "
                        "(default: <results>/plots/<env>_<PREFIX>_heatmap.png)")
    p.add_argument("--heatmap-log", action="store_true", help="log colour scale for --heatmap")
    p.add_argument("--heatmap-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="the span of the histogram's bins for every run (default: what each run logged as "
                        "PREFIX_low/PREFIX_high, else [0, 1])")
    args = p.parse_args(argv)
    if args.smooth < 1:
        raise SuiteError("--smooth must be at least 1")
    if (args.heatmap_log or args.heatmap_range) and not args.heatmap:
        raise SuiteError(f"{'--heatmap-log' if args.heatmap_log else '--heatmap-range'} needs --heatmap PREFIX")
    if args.heatmap_range and not args.heatmap_range[0] < args.heatmap_range[1]:
        raise SuiteError("--heatmap-range LOW HIGH needs LOW < HIGH")
    if args.heatmap and args.reference:
        raise SuiteError("--reference adds curves; it does not combine with --heatmap")
    if args.heatmap and (args.metric or args.stat != "mean"):
        raise SuiteError("--heatmap draws the mean over seeds of the PREFIX_<i> metrics; drop --metric/--stat")
    return args


def analyse(args, notes=None) -> tuple:
    """Everything main does but printing: (paths, markdown table)."""
    notes = [] if notes is None else notes
    env = choose_env(args.results, args.env)
    runs = load_runs(args.results, env, args.algs, args.include_running, args.filter, notes)
    if args.heatmap:
        maps = heatmaps(runs, args.heatmap, args.label_by, args.until, args.smooth, notes, args.heatmap_range)
        out = args.out or os.path.join(args.results, "plots", f"{env}_{args.heatmap}_heatmap.png")
        paths = write_heatmap_outputs(maps, env, args.heatmap, out, args.heatmap_log, args.smooth)
        with open(paths["md"]) as f:
            return paths, f.read()
    metric = args.metric or default_metric(runs)
    by_label = curves(runs, metric, args.label_by, args.smooth, notes)
    if args.reference:
        references = curves(load_references(args.reference, metric, env), metric, None, args.smooth, notes)
        clash = sorted(set(references) & set(by_label))
        if clash:
            raise SuiteError(f"--reference label(s) {', '.join(clash)} are also curve labels of the runs; "
                             f"rename them in the CSV")
        by_label.update(references)
    aggregates = aggregate(by_label, args.until, args.stat, notes)
    suffix = "_iqm" if args.stat == "iqm" else ""
    out = args.out or os.path.join(args.results, "plots", f"{env}_{metric}{suffix}.png")
    paths = write_outputs(aggregates, env, metric, out, args.stat, args.smooth)
    with open(paths["md"]) as f:
        return paths, f.read()


def main(argv=None) -> int:
    return command_line(lambda: _main(sys.argv[1:] if argv is None else argv))


def _main(argv):
    notes = []
    paths, md = analyse(parse_args(argv), notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(md)
    print("wrote " + ", ".join(paths.values()))
