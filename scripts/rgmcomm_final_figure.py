"""Per-seed final values of every method of an RGMComm study on one task, as dots over a bar of
their mean (the Fig. 4 / Fig. 7 analogues of docs/reproduction/rgmcomm.md):

    PYTHONPATH=src python scripts/rgmcomm_final_figure.py --results results/rgmcomm_raw \
        --last 1 --out docs/reproduction/figures/rgmcomm_maze_raw_study.png

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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # the worktree's plugins/
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True)
    p.add_argument("--last", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = load(a.results, a.last)
    names = sorted({n for _, n in rows}, key=order)
    task = sorted({t for t, _ in rows})[0]
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
