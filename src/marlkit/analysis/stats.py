"""Statistics over seeds: one curve per seed and label, aligned on a common step grid, then the mean
with a 95% Student-t band or the interquartile mean with a 95% percentile-bootstrap band."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import SuiteError, unknown
from .runs import _MISSING, Run, flatten, lookup, unknown_key

DEFAULT_METRICS = ("test_battle_won_mean", "test_return_mean")
# Config keys that differ between seeds of one setting by design (not worth a note when pooled).
RUN_SPECIFIC_KEYS = {"seed", "env_args.seed", "local_results_path", "unique_token", "run_id", "results_path",
                     "checkpoint_path", "load_step", "label", "reference"}
N_BOOT = 2000


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
