"""Heatmaps of a logged histogram (``<prefix>_0`` ... ``<prefix>_<n-1>``, shares per bin) against env
steps, one panel per curve label: e.g. how a learner's per-transition weights are distributed
during training. The bins span the range the run logged as ``<prefix>_low`` / ``<prefix>_high``."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import SuiteError, unknown
from .plots import _fmt, human_steps
from .stats import aggregate, curves, label_of


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


def hist_range(run, prefix):
    """(low, high) of a run's histogram ``prefix``: its last logged ``<prefix>_low`` and
    ``<prefix>_high`` (the learner states what its bins cover), or None if it logged neither."""
    def last(name):
        series = run.metrics.get(f"{prefix}_{name}")
        return float(series[1][-1]) if series is not None and len(series[1]) else None

    low, high = last("low"), last("high")
    if low is None and high is None:
        return None
    low, high = 0.0 if low is None else low, 1.0 if high is None else high
    return (low, high) if low < high else None


def heatmaps(runs, prefix, label_by=None, until=None, window=1, notes=None, bin_range=None) -> list:
    """[Heatmap] per label: every bin's share aligned and averaged over seeds like a curve.

    The bins span what each run logged (``hist_range``); ``bin_range`` (low, high) overrides that for
    every run, e.g. for runs that predate the logged range. Runs with neither span [0, 1], with a note.
    """
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
        logged = [(r, hist_range(r, prefix)) for r in group] if bin_range is None else []
        unstated = [f"{r.alg}/{r.run_id}" for r, span in logged if span is None]
        if unstated:
            notes.append(f"{len(unstated)} run(s) did not log {prefix}_low/{prefix}_high: their bins are taken to "
                         f"span [0, 1] (give the span with --heatmap-range LOW HIGH): {', '.join(unstated)}")
        spans = [tuple(bin_range)] if bin_range is not None else [span or (0.0, 1.0) for _, span in logged]
        ranges = sorted(set(spans))
        if len(ranges) > 1:
            raise SuiteError(f"{first.label} pools runs whose {prefix} bins cover different ranges "
                             f"({', '.join(f'[{lo:g}, {hi:g}]' for lo, hi in ranges)}); separate them with "
                             f"--label-by or --filter")
        share = np.stack([np.interp(first.steps, aggs[j].steps, aggs[j].center) for aggs in per_bin])
        edges = np.round(np.linspace(*ranges[0], len(bins) + 1), 12)  # 0.46, not 0.45999999999999996
        out.append(Heatmap(first.label, first.steps, edges, share, first.seeds))
    return out


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
