"""Learning curves and final-value tables from the suite's Sacred results.

Run from the repository root as ``python -m marlkit.analysis`` (with ``src`` on the path, e.g.
``PYTHONPATH=src python -m marlkit.analysis``, or after ``pip install -e .``)::

    python -m marlkit.analysis --env smax_3m --algs qmix vdn --metric test_battle_won_mean
    python -m marlkit.analysis --env matrix_game --algs qmix --label-by w_min --stat iqm --smooth 3

It reads ``<results>/sacred/<alg>/<env_label>/<id>/`` (config.json, metrics.json, run.json, as
written by marlkit.experiment.run) and, for one env and several algorithms, draws a metric against
environment steps: the mean over seeds with a 95% confidence band (Student-t interval of the mean
across seeds) or, with ``--stat iqm``, the interquartile mean with a 95% percentile-bootstrap band
(seeds resampled). The seeds' curves are aligned by linear interpolation onto a common step grid
that ends at the shortest seed's last logged step (or at ``--until``, if that is earlier); with
``--smooth W`` each seed's curve is first averaged over a trailing window of W logged points.

Outputs: the PNG (``--out``, default ``<results>/plots/<env>_<metric>.png``; ``_iqm`` is added to
the default name with ``--stat iqm``), and next to it with the same stem a CSV and a markdown table
of the final values per curve (mean, 95% CI half-width, per-seed values, number of seeds, steps)
plus ``<stem>_curves.csv`` with the aggregated curves. The markdown table is also printed.

Selection: only COMPLETED runs by default; ``--include-running`` adds RUNNING ones; FAILED and
interrupted runs are skipped with a note. ``--filter key=value`` (repeatable, dotted keys such as
``env_args.map_name``) keeps runs whose config.json matches; ``--label-by key`` splits each
algorithm into one curve per value of a config key (e.g. ``w_min``). Bad input is reported as one
``error: ...`` line on stderr with exit code 2; notes about skipped runs go to stderr as ``note:``.

Heatmap mode (the ReMIX paper's Fig. 3: how the per-transition weights are distributed during
training)::

    python -m marlkit.analysis --env predator_prey --algs remix_pp ow_qmix_pp --heatmap weight_hist

``--heatmap PREFIX`` reads the histogram logged as ``<PREFIX>_0`` ... ``<PREFIX>_<n-1>`` (share of a
batch's transitions in each of n equal-width bins) and draws, instead of curves, one panel per curve
label side by side: x = env steps, y = weight (bin edges marked), colour = share of transitions in
the bin, the mean over seeds on the common step grid (as above; ``--until``/``--smooth`` apply), with
a shared colour bar (``--heatmap-log`` for a log colour scale). The bins span [low, high] as the
run logged them in ``<PREFIX>_low`` and ``<PREFIX>_high`` (e.g. the weighted learners log their
floor as ``weight_hist_low``); a run that logged neither is taken to bin [0, 1]. Outputs (default ``<results>/plots/<env>_<PREFIX>_heatmap.png``): the PNG,
``<stem>.csv`` (step, bin, label, share, bin_low, bin_high, n_seeds) and ``<stem>.md`` (per label: the
share in the lowest bin and the mean weight from bin centres at the first and last common step).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .errors import SuiteError, closest, unknown

DEFAULT_METRICS = ("test_battle_won_mean", "test_return_mean")
# Config keys that differ between seeds of one setting by design (not worth a note when pooled).
RUN_SPECIFIC_KEYS = {"seed", "env_args.seed", "local_results_path", "unique_token", "run_id", "results_path",
                     "checkpoint_path", "load_step", "label"}
N_BOOT = 2000


@dataclass
class Run:
    """One Sacred run directory."""

    alg: str
    env: str
    run_id: str
    path: str
    status: str
    config: dict
    metrics: dict = field(default_factory=dict)  # name -> (steps, values) as float arrays

    @property
    def seed(self):
        return self.config.get("seed")

    def get(self, key, default=None):
        """A config value by (dotted) key."""
        return lookup(self.config, key, default)


@dataclass
class Curve:
    """One seed's metric against env steps."""

    run: Run
    steps: np.ndarray
    values: np.ndarray


@dataclass
class Aggregate:
    """The seeds of one curve label on a common grid, with the statistic and its 95% band."""

    label: str
    steps: np.ndarray
    per_seed: np.ndarray  # (n seeds, len(steps))
    seeds: list
    center: np.ndarray
    low: np.ndarray
    high: np.ndarray
    stat: str = "mean"

    @property
    def n(self) -> int:
        return len(self.seeds)


_MISSING = object()


def lookup(config, key, default=None):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# ------------------------------------------------------------------------------------- loading

def sacred_root(results) -> str:
    """``<results>/sacred`` (or ``results`` itself if it is the sacred folder)."""
    if os.path.isdir(os.path.join(results, "sacred")):
        return os.path.join(results, "sacred")
    if os.path.isdir(results) and os.path.basename(os.path.normpath(results)) == "sacred":
        return results
    raise SuiteError(f"no results folder '{os.path.join(results, 'sacred')}' (runs are stored as "
                     f"<results>/sacred/<alg>/<env>/<id>/; point --results at the suite's results folder)")


def find_envs(results) -> dict:
    """env label -> sorted list of the algorithms that have runs on it."""
    root = sacred_root(results)
    envs = {}
    for alg in sorted(os.listdir(root)):
        alg_dir = os.path.join(root, alg)
        if not os.path.isdir(alg_dir):
            continue
        for env in sorted(os.listdir(alg_dir)):
            env_dir = os.path.join(alg_dir, env)
            if os.path.isdir(env_dir) and any(_is_run_dir(env_dir, d) for d in os.listdir(env_dir)):
                envs.setdefault(env, []).append(alg)
    return envs


def _is_run_dir(parent, name):
    return not name.startswith("_") and os.path.isfile(os.path.join(parent, name, "config.json"))


def choose_env(results, env=None) -> str:
    envs = find_envs(results)
    if not envs:
        raise SuiteError(f"no runs found under {sacred_root(results)}")
    if env is None:
        if len(envs) > 1:
            raise SuiteError(f"several envs in {results}: {', '.join(sorted(envs))}; choose one with --env")
        return next(iter(envs))
    if env not in envs:
        raise unknown("env", env, envs)
    return env


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def read_metrics(path) -> dict:
    """Sacred metrics.json -> {name: (steps, values)}, sorted by step, non-numbers dropped."""
    out = {}
    for name, entry in _read_json(path).items():
        pairs = {}
        for step, value in zip(entry.get("steps", []), entry.get("values", [])):
            try:
                step, value = float(step), float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(step) and math.isfinite(value):
                pairs[step] = value  # a repeated step keeps its last value
        if pairs:
            steps = np.array(sorted(pairs))
            out[name] = (steps, np.array([pairs[s] for s in steps]))
    return out


def load_runs(results, env, algs=None, include_running=False, filters=(), notes=None) -> list:
    """The runs of ``env`` for ``algs`` (default all) that pass the status and config filters."""
    notes = [] if notes is None else notes
    found = find_envs(results).get(env, [])
    algs = list(dict.fromkeys(algs or found))
    for alg in algs:
        if alg not in found:
            raise unknown(f"algorithm for env '{env}'", alg, found)
    root = sacred_root(results)
    runs, skipped = [], {}
    for alg in algs:
        env_dir = os.path.join(root, alg, env)
        ids = sorted((d for d in os.listdir(env_dir) if _is_run_dir(env_dir, d)),
                     key=lambda d: (not d.isdigit(), int(d) if d.isdigit() else 0, d))
        for run_id in ids:
            path = os.path.join(env_dir, run_id)
            try:
                config = _read_json(os.path.join(path, "config.json"))
                status = _read_json(os.path.join(path, "run.json")).get("status", "UNKNOWN")
            except (OSError, ValueError) as exc:
                notes.append(f"skipped {path}: unreadable ({exc.__class__.__name__})")
                continue
            if status != "COMPLETED" and not (status == "RUNNING" and include_running):
                skipped.setdefault(status, []).append(f"{alg}/{run_id}")
                continue
            try:
                metrics = read_metrics(os.path.join(path, "metrics.json"))
            except (OSError, ValueError):
                metrics = {}
            runs.append(Run(alg, env, run_id, path, status, config, metrics))
    for status, names in sorted(skipped.items()):
        hint = " (use --include-running)" if status == "RUNNING" else ""
        notes.append(f"skipped {len(names)} {status} run(s){hint}: {', '.join(names)}")
    runs = apply_filters(runs, filters)
    if not runs:
        raise SuiteError(f"no usable runs of {', '.join(algs)} on {env}" + (" match the filters" if filters else "")
                         + ("; " + "; ".join(notes) if notes else ""))
    return runs


def parse_value(text):
    """A --filter value as JSON (numbers, true/false/null, lists) where possible, else the string."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def matches(value, wanted: str) -> bool:
    parsed = parse_value(wanted)
    if isinstance(value, bool) or isinstance(parsed, bool):
        return value is parsed or str(value) == wanted
    if isinstance(value, (int, float)) and isinstance(parsed, (int, float)):
        return math.isclose(value, parsed, rel_tol=1e-9, abs_tol=0.0)
    return value == parsed or str(value) == wanted


def apply_filters(runs, filters) -> list:
    """Runs whose config matches every ``key=value`` of ``filters``."""
    for item in filters:
        if "=" not in item:
            raise SuiteError(f"--filter '{item}' is not key=value")
        key, wanted = item.split("=", 1)
        key = key.strip()
        if runs and all(lookup(r.config, key, _MISSING) is _MISSING for r in runs):
            raise unknown_key("--filter", key, runs)
        runs = [r for r in runs if matches(lookup(r.config, key, _MISSING), wanted.strip())]
    return runs


def unknown_key(option, key, runs) -> SuiteError:
    keys = sorted(set().union(*(flatten(r.config) for r in runs)))
    return SuiteError(f"unknown config key '{key}' in {option}{closest(key, keys)}; keys are those of "
                      f"config.json, dotted for nested ones (e.g. env_args.map_name)")


def flatten(config, prefix="") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


# ------------------------------------------------------------------------------------- curves

def default_metric(runs) -> str:
    names = set().union(*(r.metrics for r in runs))
    for metric in DEFAULT_METRICS:
        if metric in names:
            return metric
    raise SuiteError(f"none of {', '.join(DEFAULT_METRICS)} was logged; choose --metric from: "
                     f"{', '.join(sorted(names)) or 'none'}")


def label_of(run, label_by=None) -> str:
    if not label_by:
        return run.alg
    value = run.get(label_by)
    if isinstance(value, float):
        value = f"{value:g}"
    return f"{run.alg} {label_by}={value}"


def smooth(values, window) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    window = int(window)
    if window <= 1 or len(values) < 2:
        return np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (sums[idx] - sums[lo]) / (idx - lo)


def curves(runs, metric, label_by=None, window=1, notes=None) -> dict:
    """label -> [Curve per seed], labels in the order of the runs (algorithm order, then value)."""
    notes = [] if notes is None else notes
    available = set().union(*(r.metrics for r in runs))
    if metric not in available:
        raise unknown("metric", metric, available)
    if label_by and all(lookup(r.config, label_by, _MISSING) is _MISSING for r in runs):
        raise unknown_key("--label-by", label_by, runs)
    out, missing = {}, []
    alg_order = list(dict.fromkeys(r.alg for r in runs))
    order = sorted(runs, key=lambda r: (alg_order.index(r.alg), _sort_key(r.get(label_by)) if label_by else ()))
    for run in order:
        if metric not in run.metrics:
            missing.append(f"{run.alg}/{run.run_id}")
            continue
        steps, values = run.metrics[metric]
        out.setdefault(label_of(run, label_by), []).append(Curve(run, steps, smooth(values, window)))
    if missing:
        notes.append(f"{len(missing)} run(s) have not logged {metric} yet: {', '.join(missing)}")
    for label, group in out.items():
        _note_pooling(label, group, notes, label_by)
    return out


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def _note_pooling(label, group, notes, label_by):
    seeds = [c.run.seed for c in group]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
    if repeated:
        notes.append(f"{label}: seed(s) {', '.join(map(str, repeated))} appear in more than one run; all are counted")
    configs = [flatten(c.run.config) for c in group]
    # keys every run has: a key only some runs know came from a plugin added in between, whose
    # defaults cannot have affected the older runs
    keys = set.intersection(*(set(c) for c in configs)) - RUN_SPECIFIC_KEYS - ({label_by} if label_by else set())
    differ = sorted(k for k in keys if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs}) > 1)
    if differ:
        shown = ", ".join(differ[:6]) + (", ..." if len(differ) > 6 else "")
        notes.append(f"{label} pools runs whose configs differ in: {shown} (separate them with --filter or --label-by)")


# ------------------------------------------------------------------------------------- statistics

def t_quantile(df, q=0.975) -> float:
    """Student-t quantile (scipy if present, else a table for q=0.975 plus an expansion)."""
    try:
        from scipy import stats

        return float(stats.t.ppf(q, df))
    except ImportError:
        pass
    if q != 0.975:
        raise SuiteError("t quantiles other than 0.975 need scipy")
    table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
             2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
             2.045, 2.042]
    if df <= len(table):
        return table[int(df) - 1]
    z = 1.959963984540054
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(per_seed):
    """Mean over seeds (axis 0) and the 95% t-interval half-width (NaN for one seed)."""
    per_seed = np.asarray(per_seed, dtype=float)
    n = per_seed.shape[0]
    mean = per_seed.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, t_quantile(n - 1) * per_seed.std(axis=0, ddof=1) / math.sqrt(n)


def iqm(per_seed, axis=0):
    """Interquartile mean: mean of the middle 50% (floor(n/4) values cut at each end)."""
    x = np.sort(np.asarray(per_seed, dtype=float), axis=axis)
    n = x.shape[axis]
    k = n // 4
    return np.take(x, np.arange(k, n - k), axis=axis).mean(axis=axis)


def bootstrap_ci(per_seed, statistic=iqm, n_boot=N_BOOT, seed=0):
    """95% percentile-bootstrap interval of ``statistic`` over seeds, at every grid point."""
    per_seed = np.asarray(per_seed, dtype=float)
    n, t = per_seed.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, int(4e6 // max(n * t, 1)))
    stats = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        stats.append(statistic(per_seed[idx], axis=1))
    stats = np.concatenate(stats)
    return np.percentile(stats, 2.5, axis=0), np.percentile(stats, 97.5, axis=0)


def common_grid(group, until=None, label="", notes=None) -> np.ndarray:
    """Steps shared by all seeds: from the latest first step to the earliest last step (or until).

    The seeds' own steps if they agree there, else as many evenly spaced points as the densest seed."""
    notes = [] if notes is None else notes
    start = max(c.steps[0] for c in group)
    ends = [c.steps[-1] for c in group]
    end = min(ends)
    if until is not None:
        if until < start:
            raise SuiteError(f"--until {until:g} is before the first logged step ({start:g}) of {label}")
        if until > end:
            notes.append(f"{label}: its shortest seed ends at {end:,.0f} steps, before --until {until:,.0f}; "
                         f"curves stop there")
        end = min(end, until)
    elif len(group) > 1 and end < 0.5 * max(ends):
        notes.append(f"{label}: curves stop at {end:,.0f} steps where its shortest seed ends "
                     f"(longest: {max(ends):,.0f}); use --filter/--until to compare otherwise")
    if end < start:
        raise SuiteError(f"the seeds of {label} have no logged steps in common ({start:g} > {end:g})")
    inside = [c.steps[(c.steps >= start) & (c.steps <= end)] for c in group]
    if all(len(s) == len(inside[0]) and np.array_equal(s, inside[0]) for s in inside) and len(inside[0]):
        grid = inside[0]
    else:
        grid = np.linspace(start, end, max(2, max(len(s) for s in inside))) if end > start else np.array([start])
        if all(float(s).is_integer() for s in (start, end)):
            grid = np.unique(np.round(grid))
    if grid[-1] < end:
        grid = np.append(grid, end)
    return grid


def aggregate(by_label, until=None, stat="mean", notes=None, n_boot=N_BOOT) -> list:
    """[Aggregate] per label: seeds interpolated onto a common grid, statistic and 95% band."""
    if stat not in ("mean", "iqm"):
        raise SuiteError(f"unknown --stat '{stat}'; choose mean or iqm")
    out = []
    for label, group in by_label.items():
        grid = common_grid(group, until, label, notes)
        per_seed = np.stack([np.interp(grid, c.steps, c.values) for c in group])
        if stat == "mean":
            center, half = mean_ci(per_seed)
            low, high = center - half, center + half
        else:
            center = iqm(per_seed)
            low, high = bootstrap_ci(per_seed, n_boot=n_boot) if len(group) > 1 else (center * np.nan,) * 2
        out.append(Aggregate(label, grid, per_seed, [c.run.seed for c in group], center, low, high, stat))
    return out


# ------------------------------------------------------------------------------------- heatmaps

@dataclass
class Heatmap:
    """The mean over seeds of one label's histogram shares on a common step grid."""

    label: str
    steps: np.ndarray
    edges: np.ndarray  # (n bins + 1,) bin edges in weight units
    share: np.ndarray  # (n bins, len(steps))
    seeds: list

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2

    def mean_value(self) -> np.ndarray:
        """Mean of the histogram at every step, each bin counted at its centre."""
        return self.centres @ self.share / np.maximum(self.share.sum(axis=0), 1e-12)


def hist_bins(runs, prefix) -> list:
    """The metric names ``<prefix>_0`` ... ``<prefix>_<n-1>`` logged by the runs (one per bin)."""
    names = set().union(*(r.metrics for r in runs))
    prefixes = {n.rsplit("_", 1)[0] for n in names if "_" in n and n.rsplit("_", 1)[1].isdigit()}
    if prefix not in prefixes:
        raise SuiteError(f"{unknown('histogram prefix', prefix, prefixes)} (no metrics named {prefix}_0, "
                         f"{prefix}_1, ... were logged)")
    index = sorted(int(n[len(prefix) + 1:]) for n in names
                   if n.startswith(prefix + "_") and n[len(prefix) + 1:].isdigit())
    if index != list(range(len(index))):
        raise SuiteError(f"the bins of {prefix} are not numbered 0..n-1: {', '.join(map(str, index))}")
    return [f"{prefix}_{i}" for i in index]


def hist_range(run, prefix) -> tuple:
    """(low, high) of a run's histogram ``prefix``: its last logged ``<prefix>_low`` and
    ``<prefix>_high`` (the learner states what its bins cover), else (0, 1)."""
    def last(name, default):
        series = run.metrics.get(f"{prefix}_{name}")
        return float(series[1][-1]) if series is not None and len(series[1]) else default

    low, high = last("low", 0.0), last("high", 1.0)
    return (low, high) if low < high else (0.0, 1.0)


def heatmaps(runs, prefix, label_by=None, until=None, window=1, notes=None) -> list:
    """[Heatmap] per label: every bin's share aligned and averaged over seeds like a curve."""
    notes = [] if notes is None else notes
    bins = hist_bins(runs, prefix)
    complete = [r for r in runs if all(b in r.metrics for b in bins)]
    missing = [f"{r.alg}/{r.run_id}" for r in runs if not all(b in r.metrics for b in bins)]
    if missing:
        notes.append(f"{len(missing)} run(s) have not logged {prefix}_0..{len(bins) - 1}: {', '.join(missing)}")
    if not complete:
        raise SuiteError(f"no run logged all of {prefix}_0..{len(bins) - 1}")
    # Notes (pooling, --until) once, from the first bin; the other bins repeat them.
    per_bin = [aggregate(curves(complete, name, label_by, window, notes if i == 0 else []), until,
                         notes=notes if i == 0 else [])
               for i, name in enumerate(bins)]
    out = []
    for j, first in enumerate(per_bin[0]):
        group = [r for r in complete if label_of(r, label_by) == first.label]
        ranges = sorted({hist_range(r, prefix) for r in group})
        if len(ranges) > 1:
            raise SuiteError(f"{first.label} pools runs whose {prefix} bins cover different ranges "
                             f"({', '.join(f'[{lo:g}, {hi:g}]' for lo, hi in ranges)}); separate them with "
                             f"--label-by or --filter")
        share = np.stack([np.interp(first.steps, aggs[j].steps, aggs[j].center) for aggs in per_bin])
        edges = np.round(np.linspace(*ranges[0], len(bins) + 1), 12)  # 0.46, not 0.45999999999999996
        out.append(Heatmap(first.label, first.steps, edges, share, first.seeds))
    return out


# ------------------------------------------------------------------------------------- outputs

def table(aggregates):
    """pandas DataFrame of the final values: one row per curve label."""
    import pandas as pd

    rows = []
    for agg in aggregates:
        final = agg.per_seed[:, -1]
        mean, half = mean_ci(final[:, None])
        row = {"label": agg.label, "n_seeds": agg.n, "steps": int(round(agg.steps[-1])),
               "mean": float(mean[0]), "ci95": float(half[0])}
        if agg.stat == "iqm":
            row.update(iqm=float(agg.center[-1]), iqm_ci_low=float(agg.low[-1]), iqm_ci_high=float(agg.high[-1]))
        row["seeds"] = " ".join(str(s) for s in agg.seeds)
        row["per_seed"] = " ".join(f"{v:.6g}" for v in final)
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.3f}" if abs(x) < 1e4 else f"{x:.4g}"


def markdown(df, env, metric, stat="mean") -> str:
    """The final-values table as markdown."""
    head = ["curve", "seeds", "steps", "mean", "95% CI ±"]
    if stat == "iqm":
        head += ["IQM", "IQM 95% CI"]
    head.append("per seed (seed: value)")
    lines = [f"Final {metric} on {env}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|"]
    for row in df.to_dict("records"):
        cells = [row["label"], str(row["n_seeds"]), f"{row['steps']:,}", _fmt(row["mean"]), _fmt(row["ci95"])]
        if stat == "iqm":
            cells += [_fmt(row["iqm"]), f"[{_fmt(row['iqm_ci_low'])}, {_fmt(row['iqm_ci_high'])}]"]
        pairs = zip(row["seeds"].split(), (float(v) for v in row["per_seed"].split()))
        cells.append(", ".join(f"{s}: {_fmt(v)}" for s, v in pairs))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curves_frame(aggregates):
    import pandas as pd

    def steps(a):
        return a.steps.astype(np.int64) if np.all(np.mod(a.steps, 1) == 0) else a.steps

    frames = [pd.DataFrame({"label": a.label, "step": steps(a), a.stat: a.center, "ci_low": a.low,
                            "ci_high": a.high, "n_seeds": a.n}) for a in aggregates]
    return pd.concat(frames, ignore_index=True)


def human_steps(x, _pos=None) -> str:
    """Axis label of a step count: 0, 500, 1.5k, 2M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.4g}{suffix}"
    return f"{x:.4g}"


def plot(aggregates, env, metric, out, stat="mean", window=1) -> str:
    """Learning curves with 95% bands into the PNG ``out``; returns ``out``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(8, 5), dpi=150, layout="constrained")
    ax = fig.subplots()
    palette = [f"C{i}" for i in range(10)]
    if len(aggregates) > 10:
        from matplotlib import colormaps

        palette = [colormaps["tab20"](i % 20) for i in range(len(aggregates))]
    styles = ["-", "--", "-.", ":"]  # so that curves lying on top of each other stay visible
    for i, (agg, colour) in enumerate(zip(aggregates, palette)):
        marker = "o" if len(agg.steps) <= 30 else None
        ax.plot(agg.steps, agg.center, color=colour, lw=2, ls=styles[i % len(styles)], marker=marker, ms=3.5,
                label=f"{agg.label} (n={agg.n})")
        if np.isfinite(agg.low).any():
            ax.fill_between(agg.steps, agg.low, agg.high, color=colour, alpha=0.2, lw=0)
    ax.xaxis.set_major_formatter(FuncFormatter(human_steps))
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_xlim(left=0)
    values = np.concatenate([a.per_seed.ravel() for a in aggregates])
    if "won" in metric and values.min() >= 0 and values.max() <= 1:
        ax.set_ylim(-0.03, 1.03)
    band = "IQM, 95% bootstrap CI" if stat == "iqm" else "mean, 95% CI"
    extra = f", smoothed over {window} points" if window > 1 else ""
    ax.set_title(f"{env}: {metric}\n", fontsize=13)
    ax.text(0.5, 1.01, f"{band} over seeds{extra}", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=9, color="0.35")
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="best", fontsize=9, frameon=True, framealpha=0.85)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    return out


def write_outputs(aggregates, env, metric, out, stat="mean", window=1) -> dict:
    """PNG, final-values CSV and markdown, and the curves CSV; returns {kind: path}."""
    stem = os.path.splitext(out)[0]
    df = table(aggregates)
    paths = {"png": plot(aggregates, env, metric, out, stat, window), "csv": stem + ".csv",
             "md": stem + ".md", "curves": stem + "_curves.csv"}
    df.to_csv(paths["csv"], index=False)
    with open(paths["md"], "w") as f:
        f.write(markdown(df, env, metric, stat))
    curves_frame(aggregates).to_csv(paths["curves"], index=False)
    return paths


def heatmap_frame(maps):
    """Long table of the heatmaps: one row per label, step and bin."""
    import pandas as pd

    frames = []
    for m in maps:
        steps = m.steps.astype(np.int64) if np.all(np.mod(m.steps, 1) == 0) else m.steps
        n_bins, n_steps = len(m.centres), len(steps)
        frames.append(pd.DataFrame({"step": np.repeat(steps, n_bins), "bin": np.tile(np.arange(n_bins), n_steps),
                                    "label": m.label, "share": m.share.T.ravel(),
                                    "bin_low": np.tile(m.edges[:-1], n_steps),
                                    "bin_high": np.tile(m.edges[1:], n_steps), "n_seeds": m.n}))
    return pd.concat(frames, ignore_index=True)


def heatmap_markdown(maps, env, prefix) -> str:
    """Per label: share in the lowest bin and mean (from bin centres) at the first and last step."""
    head = ["label", "seeds", "bins", "first step", "last step", "lowest-bin share first", "last",
            "mean weight first", "last"]
    lines = [f"{prefix} on {env}: mean over seeds; mean weight from bin centres", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for m in maps:
        mean = m.mean_value()
        cells = [m.label, str(m.n), f"{len(m.centres)} on [{m.edges[0]:g}, {m.edges[-1]:g}]",
                 f"{m.steps[0]:,.0f}", f"{m.steps[-1]:,.0f}", _fmt(float(m.share[0, 0])),
                 _fmt(float(m.share[0, -1])), _fmt(float(mean[0])), _fmt(float(mean[-1]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell_edges(x) -> np.ndarray:
    """Cell boundaries around the points ``x``: midway between neighbours, half a gap beyond the ends
    (but not below step 0)."""
    x = np.asarray(x, dtype=float)
    if len(x) == 1:
        edges = np.array([x[0] - 0.5, x[0] + 0.5])
    else:
        mid = (x[:-1] + x[1:]) / 2
        edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    if x[0] >= 0:
        edges[0] = max(edges[0], 0.0)
    return edges


def plot_heatmap(maps, env, prefix, out, log=False, window=1) -> str:
    """One heatmap panel per label side by side with a shared colour bar into the PNG ``out``."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    top = max(float(m.share.max()) for m in maps) or 1.0
    if log:
        positive = [float(m.share[m.share > 0].min()) for m in maps if (m.share > 0).any()]
        norm = LogNorm(vmin=max(min(positive, default=1e-3), 1e-4), vmax=max(top, 1e-3))
    else:
        norm = Normalize(vmin=0.0, vmax=top)
    cmap = colormaps["viridis"]
    cmap = cmap.with_extremes(bad=cmap(0.0))  # zero shares on the log scale: drawn as the lowest colour
    fig = Figure(figsize=(1.5 + 4.2 * len(maps), 4.2), dpi=150, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(maps), squeeze=False)[0])
    for ax, m in zip(axes, maps):
        share = np.ma.masked_less_equal(m.share, 0) if log else m.share
        mesh = ax.pcolormesh(_cell_edges(m.steps), m.edges, share, cmap=cmap, norm=norm)
        ax.set_title(f"{m.label} (n={m.n})", fontsize=11)
        ax.xaxis.set_major_formatter(FuncFormatter(human_steps))
        ax.set_xlabel("environment steps")
        ticks = m.edges
        if m.edges[0] >= 0 and m.edges[-1] <= 1:
            ax.set_ylim(0, 1)  # weights: panels with different floors stay comparable
            ticks = np.unique(np.append(m.edges, 0.0))
        if len(ticks) <= 22:
            ax.set_yticks(ticks, [f"{e:.3g}" for e in ticks], fontsize=7)
    axes[0].set_ylabel("weight (bin edges)")
    scale = "log scale, " if log else ""
    extra = f", smoothed over {window} points" if window > 1 else ""
    fig.colorbar(mesh, ax=list(axes), label=f"share of transitions ({scale}mean over seeds{extra})")
    fig.suptitle(f"{env}: distribution of {prefix} during training", fontsize=13)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    return out


def write_heatmap_outputs(maps, env, prefix, out, log=False, window=1) -> dict:
    """PNG, long CSV (step, bin, label, share, ...) and markdown summary; returns {kind: path}."""
    stem = os.path.splitext(out)[0]
    paths = {"png": plot_heatmap(maps, env, prefix, out, log, window), "csv": stem + ".csv", "md": stem + ".md"}
    heatmap_frame(maps).to_csv(paths["csv"], index=False)
    with open(paths["md"], "w") as f:
        f.write(heatmap_markdown(maps, env, prefix))
    return paths


# ------------------------------------------------------------------------------------- command line

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SuiteError(message)


def parse_args(argv):
    p = _Parser(prog="python -m marlkit.analysis",
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
    p.add_argument("--heatmap", metavar="PREFIX",
                   help="instead of curves, a heatmap per curve label of the histogram logged as PREFIX_0, "
                        "PREFIX_1, ... (e.g. weight_hist): share of transitions per bin, mean over seeds, vs "
                        "env steps; writes PNG, CSV (step, bin, label, share) and MD "
                        "(default: <results>/plots/<env>_<PREFIX>_heatmap.png)")
    p.add_argument("--heatmap-log", action="store_true", help="log colour scale for --heatmap")
    args = p.parse_args(argv)
    if args.smooth < 1:
        raise SuiteError("--smooth must be at least 1")
    if args.heatmap_log and not args.heatmap:
        raise SuiteError("--heatmap-log needs --heatmap PREFIX")
    if args.heatmap and (args.metric or args.stat != "mean"):
        raise SuiteError("--heatmap draws the mean over seeds of the PREFIX_<i> metrics; drop --metric/--stat")
    return args


def analyse(args, notes=None) -> tuple:
    """Everything main does but printing: (paths, markdown table)."""
    notes = [] if notes is None else notes
    env = choose_env(args.results, args.env)
    runs = load_runs(args.results, env, args.algs, args.include_running, args.filter, notes)
    if args.heatmap:
        maps = heatmaps(runs, args.heatmap, args.label_by, args.until, args.smooth, notes)
        out = args.out or os.path.join(args.results, "plots", f"{env}_{args.heatmap}_heatmap.png")
        paths = write_heatmap_outputs(maps, env, args.heatmap, out, args.heatmap_log, args.smooth)
        with open(paths["md"]) as f:
            return paths, f.read()
    metric = args.metric or default_metric(runs)
    by_label = curves(runs, metric, args.label_by, args.smooth, notes)
    aggregates = aggregate(by_label, args.until, args.stat, notes)
    suffix = "_iqm" if args.stat == "iqm" else ""
    out = args.out or os.path.join(args.results, "plots", f"{env}_{metric}{suffix}.png")
    paths = write_outputs(aggregates, env, metric, out, args.stat, args.smooth)
    with open(paths["md"]) as f:
        return paths, f.read()


def main(argv=None) -> int:
    notes = []
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        paths, md = analyse(args, notes)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(md)
    print("wrote " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
