"""Tabular softmax BN policy gradient (paper 003, Section 5): the exact gradient three ways
(autograd through the Bellman solution, Lemma 5.1 with exact occupancies, finite differences),
a learning test with a threshold, and the study's command on a tiny setting."""
import json
import os

import numpy as np
import pytest

from plugins.dagbn.coordination_game import bn_joint, build_model, policy_return
from plugins.dagbn.tabular_bn import (autograd_gradient, dag_parents, main, pg_theorem_gradient, softmax, train)


def test_dags():
    assert dag_parents("fully", 4) == ((), (0,), (0, 1), (0, 1, 2))
    assert dag_parents("line", 4) == ((), (0,), (1,), (2,))
    assert dag_parents("uncorrelated", 3) == ((), (), ())
    assert dag_parents("line", 2) == dag_parents("fully", 2)
    with pytest.raises(ValueError):
        dag_parents("star", 3)


def value_of(model, parents, logits):
    return policy_return(model, bn_joint(model, parents, [softmax(t) for t in logits]))


@pytest.mark.parametrize("n, dag", [(2, "fully"), (3, "line"), (3, "fully"), (3, "uncorrelated")])
def test_exact_gradient_against_finite_differences(n, dag):
    model = build_model(n)
    parents = dag_parents(dag, n)
    rng = np.random.default_rng(n)
    logits = [rng.normal(size=(model.n_states, 2 ** len(p), 2)) for p in parents]
    value, grads = autograd_gradient(model, parents, [t[None] for t in logits])
    pg = pg_theorem_gradient(model, parents, [t[None] for t in logits])
    assert value[0] == pytest.approx(value_of(model, parents, logits))
    eps = 1e-5
    for i, theta in enumerate(logits):
        fd = np.zeros_like(theta)
        for idx in np.ndindex(theta.shape):
            up = [t.copy() for t in logits]
            down = [t.copy() for t in logits]
            up[i][idx] += eps
            down[i][idx] -= eps
            fd[idx] = (value_of(model, parents, up) - value_of(model, parents, down)) / (2 * eps)
        assert np.allclose(grads[i][0], fd, atol=1e-6), np.abs(grads[i][0] - fd).max()
        assert np.allclose(pg[i][0], grads[i][0], atol=1e-10)


def test_gradients_are_batched_per_seed():
    model = build_model(3)
    parents = dag_parents("fully", 3)
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(4, model.n_states, 2 ** len(p), 2)) for p in parents]
    _, batched = autograd_gradient(model, parents, logits)
    for k in range(4):
        _, single = autograd_gradient(model, parents, [t[k:k + 1] for t in logits])
        assert all(np.allclose(b[k], s[0]) for b, s in zip(batched, single))


# n = 2, fully correlated, 50 seeds, 2000 iterations. The paper's step size 0.01 is too slow for
# a per-seed threshold (in the study's run 47 of 50 seeds end below 0.22, but seeds whose first
# agent still escapes a (1,1)-coordinated basin sit at up to 3.1), so the test takes step 0.25:
# over base seeds 0, 1, 2 (150 runs) the worst final Nash gap was 0.0068 and every seed was below
# 0.036 already after 1250 iterations (value scale: V* = 49). Bound 0.02 keeps a ~3x margin.
# About 3-6 s.
NASH_GAP_BOUND = 0.02


def test_fully_correlated_policy_gradient_reaches_nash_on_n2():
    res = train(2, "fully", n_seeds=50, iters=2000, lr=0.25, eval_every=1000)
    gaps, poa = res["nash_gap"], res["poa"]
    assert gaps.shape == (3, 50)
    assert (gaps[-1] < NASH_GAP_BOUND).all(), f"worst final Nash gap {gaps[-1].max():.4f}"
    assert (gaps[0] > 1.0).all()  # it starts far from Nash
    assert (np.diff(poa, axis=0) >= -1e-9).all()  # ascent: the value never drops
    assert poa[-1].mean() > 0.95  # most seeds find the optimum (always all zeros)


def test_study_command_writes_figure_and_numbers(tmp_path):
    out = tmp_path / "figs" / "tab.png"
    record = main(["--out", str(out), "--n", "2", "3", "--seeds", "3", "--iters", "20", "--eval-every", "5"])
    assert out.exists() and os.path.getsize(out) > 10000
    with open(tmp_path / "figs" / "tab.json") as f:
        saved = json.load(f)
    assert set(saved["final"]) == {f"n={n}/{d}" for n in (2, 3) for d in ("fully", "line", "uncorrelated")}
    assert saved["final"] == record["final"]
    curve = saved["curves"]["n=3/line"]
    assert curve["iters"] == [0, 5, 10, 15, 20] and len(curve["poa_mean"]) == len(curve["nash_gap_se"]) == 5
    assert len(curve["poa_final_per_seed"]) == 3
    assert np.mean(curve["poa_final_per_seed"]) == pytest.approx(curve["poa_mean"][-1], abs=1e-6)


def test_documented_command_still_runs_the_study():
    """``python -m marlkit.tabular_bn`` (README, docs) forwards to plugins/dagbn/tabular_bn.py."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.path.join(root, "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "marlkit.tabular_bn", "--help"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--reward-variant" in proc.stdout and "Tabular softmax BN policies" in proc.stdout
