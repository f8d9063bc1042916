"""Line plots and tables: learning curves with their 95% bands (PNG), final values per curve (CSV and
markdown) and the aggregated curves (``<stem>_curves.csv``)."""
from __future__ import annotations

import math
import os

import numpy as np

from .stats import mean_ci


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
