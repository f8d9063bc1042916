"""Per-seed final values of every method of an RGMComm study on one task, as dots over a bar of
their mean (the Fig. 4 / Fig. 7 analogues of docs/reproduction/rgmcomm.md):

    PYTHONPATH=src python scripts/rgmcomm_final_figure.py --results results/rgmcomm_raw \
        --last 1 --out docs/reproduction/figures/rgmcomm_maze_raw_study.png

With ``--vs-labels``, the alphabet-size sweep instead (Fig. 4 / Fig. 6 analogue): final return and
logged epsilon of RGMComm (tanh) against |M|, no messages at |M| = 0, full observation as a band,
and the sweep table (mean, 95% t-interval, share of the partial -> full observation gap closed,
epsilon, Q_max, bound) as markdown on stdout. Several ``--results`` folders are read as one study.

Methods and final values come from plugins.rgmcomm.summary (mean of the last ``--last`` test
evaluations); one panel per metric (return and, when logged, the high-landmark rate, catches or
collisions), and with
RGMComm and full-observation runs a Fig. 6 analogue: each RGMComm seed's logged epsilon against its
return gap to the full-observation mean.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # the worktree's plugins/
from marlkit.analysis.stats import mean_ci  # noqa: E402  (mean and 95% t-interval over seeds)
from plugins.rgmcomm.summary import load  # noqa: E402

PANELS = (("test_return_mean", "final test return"), ("test_high_mean", "high-landmark rate"),
          ("test_catches_mean", "catches per episode"), ("test_collisions_mean", "collisions per episode"))


def order(name):
    """No messages first, then RGMComm by label count and normalisation, full observation last."""
    if "full obs" in name:
        return (2, 0, name)
    if " M=" in name:
        m = name.split(" M=")[1].split()[0]
        return (1, int(m), name)
    return (0, 0, name)


def load_all(folders, last):
    """summary.load over several results folders; a (task, method, seed) found twice is an error."""
    rows = {}
    for folder in folders:
        for key, seeds in load(folder, last).items():
            both = set(seeds) & set(rows.get(key, {}))
            if both:
                sys.exit(f"{key} seed(s) {sorted(both)} found in more than one of {folders}: pass each run once")
            rows.setdefault(key, {}).update(seeds)
    return rows


def labels_sweep(rows, task, out, plt):
    """Fig. 4 / Fig. 6 analogue: return and epsilon vs |M| (tanh runs; |M| = 0 is no messages)."""
    def returns(pick):
        return {m: [v["test_return_mean"] for _, v in sorted(s.items())] for (t, n), s in rows.items() if t == task
                for m in [pick(n)] if m is not None}

    sweep = returns(lambda n: 0 if n in ("maddpg", "qmix") else
                    int(n.split(" M=")[1]) if " M=" in n and n.split(" M=")[1].isdigit() else None)
    eps = {int(n.split(" M=")[1]): [v for v in s.values() if "rgm_epsilon" in v] for (t, n), s in rows.items()
           if t == task and " M=" in n and n.split(" M=")[1].isdigit()}
    fo = [v for vals in returns(lambda n: 1 if "full obs" in n else None).values() for v in vals]
    po_mean, fo_mean = np.mean(sweep.get(0, [np.nan])), np.mean(fo) if fo else np.nan
    print(f"| {task}: labels | seeds | return (mean +- 95% CI) | per seed (seed order) | share of PO->FO gap closed | epsilon | Q_max | bound |")
    print("|---|---|---|---|---|---|---|---|")
    for m in sorted(sweep) + (["full obs"] if fo else []):
        vals = fo if m == "full obs" else sweep[m]
        mean, half = mean_ci(vals)
        e = eps.get(m, [])
        logged = " | ".join(f"{np.mean([v[k] for v in e]):.3f}" if e else "" for k in ("rgm_epsilon", "rgm_q_max", "rgm_gap_bound"))
        print(f"| {m} | {len(vals)} | {mean:.2f} +- {half:.2f} | {', '.join(f'{v:.2f}' for v in vals)} | "
              f"{(mean - po_mean) / (fo_mean - po_mean):.2f} | {logged} |")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = sorted(sweep)
    pos = {m: i for i, m in enumerate(xs)}
    for m in xs:
        mean, half = mean_ci(sweep[m])
        ax.errorbar(pos[m], mean, yerr=half if np.isfinite(half) else None, fmt="o", color="C0", capsize=4)
        ax.plot([pos[m]] * len(sweep[m]), sweep[m], "k.", alpha=0.6)
    if fo:
        mean, half = mean_ci(fo)
        ax.axhline(mean, color="C3", label="full observation (mean, 95% CI)")
        if np.isfinite(half):
            ax.axhspan(mean - half, mean + half, color="C3", alpha=0.15)
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(xs)), ["none" if m == 0 else str(m) for m in xs])
    ax.set_xlabel("|M| (message labels)")
    ax.set_title(f"{task}: final return vs |M| (mean, 95% CI, dots = seeds)", fontsize=9)
    for m, e in sorted(eps.items()):
        ax2.plot([pos[m]] * len(e), [v["rgm_epsilon"] for v in e], "o", color="C0", alpha=0.7)
    ax2.set_xticks(range(len(xs)), ["none" if m == 0 else str(m) for m in xs])
    ax2.set_xlabel("|M| (message labels)")
    ax2.set_ylabel("epsilon")
    ax2.set_title(f"{task}: within-cluster cosine distance epsilon (dots = seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, nargs="+")
    p.add_argument("--last", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--vs-labels", action="store_true", help="the alphabet-size sweep (Fig. 4 / 6) instead")
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = load_all(a.results, a.last)
    task = sorted({t for t, _ in rows})[0]
    if a.vs_labels:
        labels_sweep(rows, task, a.out, plt)
        print(f"wrote {a.out}", file=sys.stderr)
        return
    names = sorted({n for _, n in rows}, key=order)
    panels = [(k, t) for k, t in PANELS if any(k in v for s in rows.values() for v in s.values())]
    fo = [v["test_return_mean"] for (t, n), s in rows.items() if t == task and "full obs" in n for v in s.values()]
    gap_panel = bool(fo) and any("rgm_epsilon" in v for s in rows.values() for v in s.values())
    fig, axes = plt.subplots(1, len(panels) + gap_panel, figsize=(5 * (len(panels) + gap_panel), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        every = []
        for i, name in enumerate(names):
            vals = [v[key] for v in rows[(task, name)].values() if key in v]
            every += vals
            ax.bar(i, sum(vals) / len(vals), color="#9ecae1" if " M=" in name else "#d9d9d9")
            ax.plot([i] * len(vals), vals, "k.", alpha=0.7)
        if every and max(every) < 0:  # all negative (MPE returns): zoom on the values, not on 0
            pad = 0.15 * (max(every) - min(every)) + 1e-9
            ax.set_ylim(min(every) - pad, max(every) + pad)
        ax.set_xticks(range(len(names)), [n.replace("rgmcomm_qmix ", "").replace("rgmcomm_maddpg ", "rgmcomm ") for n in names],
                      rotation=35, ha="right")
        ax.set_title(f"{task}: {title} (dots = seeds)")
    if gap_panel:  # Fig. 6 analogue: each RGMComm seed's epsilon against its return gap to full observation
        ax = axes[0][-1]
        for name in names:
            seeds = [v for v in rows[(task, name)].values() if "rgm_epsilon" in v]
            if seeds:
                ax.plot([v["rgm_epsilon"] for v in seeds], [sum(fo) / len(fo) - v["test_return_mean"] for v in seeds],
                        "o", label=name.replace("rgmcomm_qmix ", "").replace("rgmcomm_maddpg ", "rgmcomm "))
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("epsilon (mean within-cluster cosine distance)")
        ax.set_ylabel("full-obs. mean return - return")
        ax.set_title(f"{task}: epsilon vs return gap (dots = seeds)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
