"""Tabular softmax BN policies trained by exact policy gradient on the coordination game
(paper 003, Section 5 and Figure 3; issue 4 part 3).

Setting (paper Sections 4, 5, 7.2, 7.3 and Appendix B.1):

* BN policy with a fixed DAG and identity topological order: agent i's local policy is
  pi^i(a^i | s, a^{P_i}) = softmax_{a^i}(theta^i[s, a^{P_i}, :]) (Equation 1), one logit per
  (state, parent configuration, own action).
* DAGs: ``fully`` (parents of i = all j < i), ``line`` (parent of i = i - 1), ``uncorrelated``
  (no edges, i.e. a product policy). For n = 2, line and fully coincide.
* Objective: V_theta(mu), the infinite-horizon discounted value (gamma = 0.95) from the uniform
  initial distribution (paper Table 1). Update: theta <- theta + eta * grad V_theta(mu)
  (Equation 2), eta = 0.01, 2000 iterations, 50 seeds.
* Gradient: exact, by automatic differentiation through the exact Bellman solution
  V = (I - gamma P_pi)^{-1} r_pi (torch, float64, all seeds in one batched solve).
  ``pg_theorem_gradient`` computes the same gradient from Lemma 5.1 with exact occupancy
  measures; the tests check the two against each other and against finite differences.
* Initialisation: the paper gives none beyond "random seeds"; logits are drawn i.i.d. from
  N(0, init_std^2) with init_std = 1 per seed (``--init-std``).
* Metrics (Section 7.1): price of anarchy V_pi(mu) / V*(mu) and Nash gap
  max_i max_{pi'^i} V_{pi'^i, pi^-i}(mu) - V_pi(mu), both exact
  (plugins/dagbn/coordination_game.py).

Command (one figure, 2 rows x 3 panels: PoA and Nash gap vs iteration, mean +- standard error):
    python -m marlkit.tabular_bn --out docs/reproduction/figures/tabular_bn.png
It also writes the curves and final numbers next to the figure (same name, .json).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from .coordination_game import (ExactModel, bn_joint, build_model, nash_gap, optimal_return,
                                     parent_index, policy_value)

DAGS = ("fully", "line", "uncorrelated")
DAG_LABELS = {"fully": "Fully-correlated", "line": "Line-correlated", "uncorrelated": "Uncorrelated"}
DAG_COLOURS = {"fully": "tab:blue", "line": "tab:orange", "uncorrelated": "tab:green"}


def dag_parents(name: str, n: int) -> tuple:
    """Parent lists of the paper's fixed DAGs (Section 7.2), identity topological order."""
    if name == "fully":
        return tuple(tuple(range(i)) for i in range(n))
    if name == "line":
        return tuple((i - 1,) if i > 0 else () for i in range(n))
    if name == "uncorrelated":
        return tuple(() for _ in range(n))
    raise ValueError(f"unknown DAG '{name}'; available: {', '.join(DAGS)}")


# ---------------------------------------------------------------------------------------------
# Exact objective and gradients
# ---------------------------------------------------------------------------------------------
def binary_softmax(theta):
    """softmax over a last axis of size 2, as (1 - sigmoid(d), sigmoid(d)) with d = theta_1 - theta_0
    (identical values; several times faster than torch.softmax on such small trailing axes)."""
    p1 = torch.sigmoid(theta[..., 1] - theta[..., 0])
    return torch.stack((1.0 - p1, p1), dim=-1)


class TorchBN:
    """Constant tensors to evaluate V_theta(mu) of a softmax BN policy with torch (batched)."""

    def __init__(self, model: ExactModel, parents):
        self.model, self.parents = model, tuple(parents)
        f64 = torch.float64
        self.kernel = torch.as_tensor(model.kernel, dtype=f64)
        self.reward = torch.as_tensor(model.reward, dtype=f64)
        self.mu = torch.as_tensor(model.mu, dtype=f64)
        self.eye = torch.eye(model.n_states, dtype=f64)
        # flat index of (parent config of a, own action in a) into a [2^|P_i| * 2] table, per joint action a
        self.flat = [torch.as_tensor(parent_index(model.bits, ps) * 2 + model.bits[:, i])
                     for i, ps in enumerate(self.parents)]

    def shapes(self):
        return [(self.model.n_states, 2 ** len(ps), 2) for ps in self.parents]

    def joint(self, logits):
        """[B, S, A] joint-action probabilities from per-agent logits [B, S, 2^|P_i|, 2]."""
        joint = None
        for i, theta in enumerate(logits):
            table = binary_softmax(theta)
            probs = table.reshape(table.shape[:2] + (-1,)).index_select(-1, self.flat[i])  # [B, S, A]
            joint = probs if joint is None else joint * probs
        return joint

    def value(self, logits):
        """V_theta(mu) per batch element, [B]."""
        joint = self.joint(logits)
        P = joint @ self.kernel  # [B, S, S]
        r = joint @ self.reward  # [B, S]
        V = torch.linalg.solve(self.eye - self.model.gamma * P, r.unsqueeze(-1)).squeeze(-1)
        return V @ self.mu


def autograd_gradient(model: ExactModel, parents, logits) -> tuple:
    """(V(mu) [B], [dV/dtheta^i]) by autograd through the exact Bellman solution (numpy in/out)."""
    tb = TorchBN(model, parents)
    thetas = [torch.tensor(np.asarray(t, dtype=np.float64), requires_grad=True) for t in logits]
    value = tb.value(thetas)
    grads = torch.autograd.grad(value.sum(), thetas)
    return value.detach().numpy(), [g.numpy() for g in grads]


def softmax(x, axis=-1):
    z = np.exp(x - x.max(axis, keepdims=True))
    return z / z.sum(axis, keepdims=True)


def pg_theorem_gradient(model: ExactModel, parents, logits) -> list:
    """dV(mu)/dtheta^i[s, p, b] = d(s) P(p | s) pi^i(b | s, p) (Q^i(s, p, b) - Q^i(s, p)) (Lemma 5.1).

    d(s) = sum_t gamma^t Pr(s_t = s | s_0 ~ mu) is the unnormalised discounted occupancy (so the
    lemma's 1/(1 - gamma) factor, which goes with the normalised occupancy, is absorbed);
    Q^i(s, p, b) = E[Q(s, a) | a^{P_i} = p, a^i = b] and Q^i(s, p) = E[Q(s, a) | a^{P_i} = p]
    under pi. Computed from exact occupancies and Q-values; batched over a leading axis.
    """
    tables = [softmax(np.asarray(t, dtype=np.float64)) for t in logits]
    joint = bn_joint(model, parents, tables)  # [B, S, A]
    V = policy_value(model, joint)
    Q = model.q_values(V)  # [B, S, A]
    P = joint @ model.kernel
    eye = np.eye(model.n_states)
    occupancy = np.linalg.solve(np.swapaxes(eye - model.gamma * P, -1, -2), model.mu[..., None])[..., 0]
    grads = []
    for i, ps in enumerate(parents):
        pid, own = parent_index(model.bits, ps), model.bits[:, i]
        n_p = 2 ** len(ps)
        onehot = np.zeros((n_p, 2, model.n_joint_actions))
        onehot[pid, own, np.arange(model.n_joint_actions)] = 1.0
        mass_pb = np.einsum("...sa,pba->...spb", joint, onehot)  # P(p, b | s)
        value_pb = np.einsum("...sa,pba->...spb", joint * Q, onehot)  # E[Q 1(p, b) | s]
        mass_p = mass_pb.sum(-1, keepdims=True)
        q_pb = value_pb / np.where(mass_pb > 0, mass_pb, 1.0)
        q_p = value_pb.sum(-1, keepdims=True) / np.where(mass_p > 0, mass_p, 1.0)
        grads.append(occupancy[..., :, None, None] * mass_pb * (q_pb - q_p))  # mass_pb = P(p|s) pi^i(b|s,p)
    return grads


# ---------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------
def init_logits(model: ExactModel, parents, n_seeds: int, init_std: float, seed: int) -> list:
    """Per agent [n_seeds, S, 2^|P_i|, 2] logits ~ N(0, init_std^2), one generator per (n, seed)."""
    gen = torch.Generator().manual_seed(int(seed))
    return [torch.randn((n_seeds, model.n_states, 2 ** len(ps), 2), generator=gen, dtype=torch.float64) * init_std
            for ps in parents]


def train(n: int, dag: str, n_seeds: int = 50, iters: int = 2000, lr: float = 0.01, init_std: float = 1.0,
          seed: int = 0, eval_every: int = 10, reward_variant: str = "public", gamma: float = 0.95) -> dict:
    """Exact policy-gradient ascent for all seeds at once; PoA and Nash gap every eval_every iterations.

    Returns {"iters": [T], "poa": [T, n_seeds], "nash_gap": [T, n_seeds], "seconds": float}.
    """
    torch.set_num_threads(1)
    t0 = time.time()
    model = build_model(n, reward_variant=reward_variant, gamma=gamma)
    parents = dag_parents(dag, n)
    optimum = optimal_return(model)
    tb = TorchBN(model, parents)
    thetas = [t.requires_grad_(True) for t in init_logits(model, parents, n_seeds, init_std, seed + 1000 * n)]
    steps, poa, gaps = [], [], []

    def record(it):
        tables = [binary_softmax(t.detach()).numpy() for t in thetas]
        value = tb.value([t.detach() for t in thetas]).numpy()
        steps.append(it)
        poa.append(value / optimum)
        gaps.append(nash_gap(model, parents, tables))

    for it in range(iters):
        if it % eval_every == 0:
            record(it)
        value = tb.value(thetas)
        grads = torch.autograd.grad(value.sum(), thetas)  # seeds are independent: d(sum)/d(theta_b) = dV_b
        with torch.no_grad():
            for t, g in zip(thetas, grads):
                t.add_(lr * g)
    record(iters)
    return {"iters": np.array(steps), "poa": np.array(poa), "nash_gap": np.array(gaps),
            "seconds": time.time() - t0}


def _job(kwargs):
    return (kwargs["n"], kwargs["dag"]), train(**kwargs)


def run_study(ns, dags, n_seeds, iters, lr, init_std, seed, eval_every, workers, reward_variant="public"):
    jobs = [dict(n=n, dag=d, n_seeds=n_seeds, iters=iters, lr=lr, init_std=init_std, seed=seed,
                 eval_every=eval_every, reward_variant=reward_variant) for n in ns for d in dags]
    results = {}
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for key, res in pool.map(_job, jobs):
                results[key] = res
    else:
        for job in jobs:
            key, res = _job(job)
            results[key] = res
            print(f"n={key[0]} {key[1]:>12}: PoA {res['poa'][-1].mean():.4f} Nash gap "
                  f"{res['nash_gap'][-1].mean():.4f} ({res['seconds']:.1f} s)", flush=True)
    return results


def mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(-1), x.std(-1, ddof=1) / np.sqrt(x.shape[-1]) if x.shape[-1] > 1 else np.zeros(x.shape[:-1])


def plot(results, ns, dags, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(ns), figsize=(4.2 * len(ns), 6.4), squeeze=False)
    for col, n in enumerate(ns):
        for row, metric in enumerate(("poa", "nash_gap")):
            ax = axes[row, col]
            for d in dags:
                res = results[(n, d)]
                m, se = mean_se(res[metric])
                style = "--" if (n == 2 and d == "line") else "-"
                ax.plot(res["iters"], m, style, color=DAG_COLOURS[d], label=DAG_LABELS[d], lw=1.6)
                ax.fill_between(res["iters"], m - se, m + se, color=DAG_COLOURS[d], alpha=0.25, lw=0)
            ax.set_xlabel("Iteration")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"Coordination Game, N={n}")
            if col == 0:
                ax.set_ylabel("Price of anarchy" if metric == "poa" else "Nash gap")
    n_seeds = next(iter(results.values()))["poa"].shape[1]
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(dags), frameon=False)
    fig.suptitle(f"Tabular softmax BN policy, exact policy gradient (mean +- s.e. over {n_seeds} seeds)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)


def summary(results) -> dict:
    out = {}
    for (n, d), res in results.items():
        poa_m, poa_se = mean_se(res["poa"][-1])
        gap_m, gap_se = mean_se(res["nash_gap"][-1])
        out[f"n={n}/{d}"] = {"poa_mean": float(poa_m), "poa_se": float(poa_se), "nash_gap_mean": float(gap_m),
                             "nash_gap_se": float(gap_se), "seconds": float(res["seconds"]),
                             "poa_final_min": float(res["poa"][-1].min()),
                             "nash_gap_final_max": float(res["nash_gap"][-1].max())}
    return out


def curves(res) -> dict:
    """Mean and standard error per evaluation, plus every seed's final value (what the JSON keeps)."""
    out = {"iters": res["iters"].tolist()}
    for metric in ("poa", "nash_gap"):
        m, se = mean_se(res[metric])
        out[f"{metric}_mean"] = np.round(m, 6).tolist()
        out[f"{metric}_se"] = np.round(se, 6).tolist()
        out[f"{metric}_final_per_seed"] = np.round(res[metric][-1], 6).tolist()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="docs/reproduction/figures/tabular_bn.png", help="figure path (.png)")
    p.add_argument("--n", type=int, nargs="+", default=[2, 3, 5], help="numbers of agents")
    p.add_argument("--seeds", type=int, default=50, help="random initialisations (batched)")
    p.add_argument("--iters", type=int, default=2000, help="policy-gradient iterations")
    p.add_argument("--lr", type=float, default=0.01, help="step size eta")
    p.add_argument("--dags", nargs="+", default=list(DAGS), choices=DAGS, help="fixed DAGs")
    p.add_argument("--workers", type=int, default=1, help="processes (one (n, DAG) pair each)")
    p.add_argument("--eval-every", type=int, default=10, help="iterations between PoA/Nash-gap evaluations")
    p.add_argument("--init-std", type=float, default=1.0, help="std of the N(0, std^2) initial logits")
    p.add_argument("--seed", type=int, default=0, help="base seed of the initialisations")
    p.add_argument("--reward-variant", default="public", choices=("public", "paper"))
    args = p.parse_args(argv)
    t0 = time.time()
    results = run_study(args.n, args.dags, args.seeds, args.iters, args.lr, args.init_std, args.seed,
                        args.eval_every, args.workers, args.reward_variant)
    plot(results, args.n, args.dags, args.out)
    record = {"settings": {k: v for k, v in vars(args).items()}, "wall_seconds": time.time() - t0,
              "final": summary(results),
              "curves": {f"n={n}/{d}": curves(r) for (n, d), r in results.items()}}
    json_path = os.path.splitext(args.out)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(record, f)
    print(f"wrote {args.out} and {json_path} in {record['wall_seconds']:.1f} s")
    for key, s in record["final"].items():
        print(f"{key:>18}: PoA {s['poa_mean']:.4f} +- {s['poa_se']:.4f}   "
              f"Nash gap {s['nash_gap_mean']:.4f} +- {s['nash_gap_se']:.4f}")
    return record


if __name__ == "__main__":
    main()
