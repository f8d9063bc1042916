"""Per-seed final values of every method of an RGMComm study on one task, as dots over a bar of
their mean (the Fig. 4 / Fig. 7 analogues of docs/reproduction/rgmcomm.md):

    PYTHONPATH=src python scripts/rgmcomm_final_figure.py --results results/rgmcomm_raw \
        --last 1 --out docs/reproduction/figures/rgmcomm_maze_raw_study.png

Methods and final values come from plugins.rgmcomm.summary (mean of the last ``--last`` test
evaluations); one panel per metric (return and, when logged, the high-landmark rate).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # the worktree's plugins/
from plugins.rgmcomm.summary import load  # noqa: E402

PANELS = (("test_return_mean", "final test return"), ("test_high_mean", "high-landmark rate"))


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
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for i, name in enumerate(names):
            vals = [v[key] for v in rows[(task, name)].values() if key in v]
            ax.bar(i, sum(vals) / len(vals), color="#9ecae1" if " M=" in name else "#d9d9d9")
            ax.plot([i] * len(vals), vals, "k.", alpha=0.7)
        ax.set_xticks(range(len(names)), [n.replace("rgmcomm_qmix ", "") for n in names], rotation=35, ha="right")
        ax.set_title(f"{task}: {title} (dots = seeds)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
