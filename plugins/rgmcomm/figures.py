"""Interpretability figures of RGMComm on the maze (Fig. 8 analogues), by one command:

    PYTHONPATH=src python -m plugins.rgmcomm.figures --out docs/reproduction/figures [--t-max 16000] [--seed 1]

Trains ``rgmcomm_qmix`` (4 labels) on the maze in-process (or loads ``--checkpoint``, a models
directory of a run saved with save_model=True), then plays ``--episodes`` greedy test episodes and
counts, per agent, (a) the labels it sends from each cell (label-frequency map: the colour is the
most frequent label, its share is printed in the cell; circle = high-reward landmark (1,1),
triangle = low-reward landmark (3,3)) and (b) the actions it takes given the label it receives
(row-normalised table). Writes rgmcomm_maze_labels.png, rgmcomm_maze_actions.png and a .json
with the counts.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch as th

from marlkit.experiment import offline, train_iteration

from .envs.maze import ACTION_NAMES, SIZE

COLOURS = ["tab:red", "gold", "tab:purple", "tab:green", "tab:blue", "tab:orange", "tab:brown", "tab:pink"]


def train(t_max, seed, checkpoint=None):
    updates = dict(t_max=t_max, seed=seed, epsilon_anneal_time=int(0.4 * t_max), rgm_gen_hidden=128, rgm_k1=128,
                   rgm_k2=64, test_nepisode=8)
    if checkpoint:
        updates["checkpoint_path"] = checkpoint
    args, runner, buffer, mac, learner = offline("rgmcomm_qmix", "maze", updates)
    if checkpoint:
        from marlkit import checkpoint as ckpt
        from marlkit.experiment import signature_of

        ckpt.load(ckpt.resolve(checkpoint, 0), learner, signature_of(args), None, runner.env)
    else:
        episode = 0
        while runner.t_env < t_max:
            episode = train_iteration(args, runner, buffer, learner, episode)
    mac.comm.active = True
    return args, runner, mac


def collect(args, runner, mac, episodes):
    """Counts: sent[agent, cell, label] and acted[agent, received label, action]."""
    n_labels = args.comm_labels + 1
    sent = np.zeros((2, SIZE * SIZE, n_labels))
    acted = np.zeros((2, n_labels, len(ACTION_NAMES)))
    returns = []
    for _ in range(max(1, episodes // runner.batch_size)):
        batch, ret = runner.run(test_mode=True)
        returns += ret
        filled = batch["filled"][:, :-1, 0].bool()
        cells = batch["obs"][:, :-1].argmax(-1)  # one-hot cell of each agent
        labels = batch["messages"][:, :-1, :, 0]
        actions = batch["actions"][:, :-1, :, 0]
        for i in range(2):
            other = 1 - i
            for c, m, heard, a in zip(cells[..., i][filled], labels[..., i][filled], labels[..., other][filled],
                                      actions[..., i][filled]):
                sent[i, int(c), int(m)] += 1
                acted[i, int(heard), int(a)] += 1
    return sent, acted, float(np.mean(returns))


def draw(sent, acted, n_labels, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for i, ax in enumerate(axes):
        img = np.ones((SIZE, SIZE, 3))
        for cell in range(SIZE * SIZE):
            total = sent[i, cell].sum()
            r, c = divmod(cell, SIZE)
            if total == 0:
                ax.text(c, r, "-", ha="center", va="center", color="grey")
                continue
            m = int(sent[i, cell].argmax())
            share = sent[i, cell, m] / total
            img[r, c] = 1 - share * (1 - np.array(to_rgb(COLOURS[m % len(COLOURS)])))
            ax.text(c, r + 0.3, f"'{m}' {100 * share:.0f}%", ha="center", va="center", fontsize=8)
        ax.imshow(img)
        ax.scatter([0], [0], marker="o", s=250, facecolors="none", edgecolors="k")
        ax.scatter([2], [2], marker="^", s=250, facecolors="none", edgecolors="k")
        ax.set_xticks(range(SIZE), [str(k + 1) for k in range(SIZE)])
        ax.set_yticks(range(SIZE), [str(k + 1) for k in range(SIZE)])
        ax.set_title(f"agent {i + 1}: label sent per cell")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rgmcomm_maze_labels.png"), dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, ax in enumerate(axes):
        rows = acted[i] / np.maximum(acted[i].sum(1, keepdims=True), 1)
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for m in range(n_labels):
            for a in range(len(ACTION_NAMES)):
                if acted[i, m].sum():
                    ax.text(a, m, f"{rows[m, a]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(ACTION_NAMES)), ACTION_NAMES)
        ax.set_yticks(range(n_labels), [f"'{m}'" for m in range(n_labels - 1)] + ["null"])
        ax.set_title(f"agent {i + 1}: P(action | label received)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rgmcomm_maze_actions.png"), dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description="RGMComm maze interpretability figures (Fig. 8 analogues)")
    p.add_argument("--out", default="results/plots")
    p.add_argument("--t-max", type=int, default=16000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--episodes", type=int, default=2048)
    p.add_argument("--checkpoint", default="")
    a = p.parse_args(argv)
    th.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    args, runner, mac = train(a.t_max, a.seed, a.checkpoint or None)
    sent, acted, mean_return = collect(args, runner, mac, a.episodes)
    draw(sent, acted, args.comm_labels + 1, a.out)
    with open(os.path.join(a.out, "rgmcomm_maze_counts.json"), "w") as f:
        json.dump({"t_max": a.t_max, "seed": a.seed, "test_return_mean": mean_return,
                   "sent": sent.tolist(), "acted": acted.tolist()}, f)
    print(f"wrote {a.out}/rgmcomm_maze_labels.png, rgmcomm_maze_actions.png (test return {mean_return:.3f})")


if __name__ == "__main__":
    main()
