"""marlkit.analysis on synthetic Sacred run folders with known metric values."""
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import pytest

from marlkit import analysis
from marlkit.errors import SuiteError

T_975_DF2 = 4.302652729911275  # Student-t 97.5% quantile, 2 degrees of freedom


def make_run(results, alg, env, run_id, seed, metrics, status="COMPLETED", **config):
    """A Sacred FileStorageObserver run folder; metrics: {name: (steps, values)}."""
    path = os.path.join(results, "sacred", alg, env, str(run_id))
    os.makedirs(path)
    cfg = {"seed": seed, "name": alg, "env": env.split("_")[0], "env_args": {"seed": None}, "alg_config": alg,
           "t_max": 1000, "lr": 0.0005}
    for key, value in config.items():
        if key == "map_name":
            cfg["env_args"]["map_name"] = value
        elif key == "env_args":
            cfg["env_args"].update(value)
        else:
            cfg[key] = value
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(path, "run.json"), "w") as f:
        json.dump({"status": status}, f)
    body = {name: {"steps": list(steps), "values": list(values), "timestamps": ["t"] * len(steps)}
            for name, (steps, values) in metrics.items()}
    with open(os.path.join(path, "metrics.json"), "w") as f:
        json.dump(body, f)
    return path


STEPS = [0, 100, 200]


@pytest.fixture
def results(tmp_path):
    """qmix: seeds 1-3 with constant values 0, 1, 2; vdn: seeds 1-2 rising; both on smax_3m."""
    root = str(tmp_path / "results")
    for seed, value in zip((1, 2, 3), (0.0, 1.0, 2.0)):
        make_run(root, "qmix", "smax_3m", seed, seed, {
            "test_return_mean": (STEPS, [value] * 3), "test_battle_won_mean": (STEPS, [value / 2] * 3),
            "return_mean": (STEPS, [10 * value] * 3)}, map_name="3m")
    for seed in (1, 2):
        make_run(root, "vdn", "smax_3m", seed, seed, {
            "test_return_mean": (STEPS, [0.0, seed * 1.0, seed * 2.0]),
            "test_battle_won_mean": (STEPS, [0.0, 0.1 * seed, 0.2 * seed])}, map_name="3m")
    return root


def run_main(argv, capsys):
    code = analysis.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------ statistics

def test_mean_and_ci_match_hand_computation(results):
    runs = analysis.load_runs(results, "smax_3m", ["qmix"])
    [agg] = analysis.aggregate(analysis.curves(runs, "test_return_mean"))
    assert agg.label == "qmix" and agg.n == 3 and sorted(agg.seeds) == [1, 2, 3]
    np.testing.assert_allclose(agg.steps, STEPS)
    # values 0, 1, 2: mean 1, sample std 1, half-width t(0.975, 2) * 1 / sqrt(3)
    half = T_975_DF2 / math.sqrt(3)
    np.testing.assert_allclose(agg.center, [1, 1, 1])
    np.testing.assert_allclose(agg.high - agg.center, [half] * 3)
    np.testing.assert_allclose(agg.center - agg.low, [half] * 3)


def test_t_quantile_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    assert analysis.t_quantile(2) == pytest.approx(T_975_DF2, abs=1e-3)
    assert analysis.t_quantile(50) == pytest.approx(2.008559, abs=1e-3)


def test_single_seed_has_no_band():
    mean, half = analysis.mean_ci(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(mean, [1, 2])
    assert np.isnan(half).all()


def test_interpolation_onto_common_grid(tmp_path):
    root = str(tmp_path)
    # Both seeds follow value = step / 10 but log at different steps; seed 2 stops at 250.
    make_run(root, "qmix", "matrix_game", 1, 1, {"test_return_mean": ([0, 100, 200, 300], [0, 10, 20, 30])})
    make_run(root, "qmix", "matrix_game", 2, 2, {"test_return_mean": ([0, 150, 250], [0, 15, 25])})
    runs = analysis.load_runs(root, "matrix_game")
    [agg] = analysis.aggregate(analysis.curves(runs, "test_return_mean"))
    np.testing.assert_allclose(agg.steps, [0, 125, 250])  # up to the shortest run's last step
    np.testing.assert_allclose(agg.per_seed, [agg.steps / 10] * 2)
    np.testing.assert_allclose(agg.center, agg.steps / 10)
    np.testing.assert_allclose(agg.low, agg.center)  # the seeds agree: zero-width band

    [cut] = analysis.aggregate(analysis.curves(runs, "test_return_mean"), until=120)
    assert cut.steps[-1] == 120 and cut.center[-1] == pytest.approx(12)


def test_until_beyond_the_data_stops_at_shortest_and_notes(results):
    notes = []
    runs = analysis.load_runs(results, "smax_3m", ["vdn"])
    [agg] = analysis.aggregate(analysis.curves(runs, "test_return_mean"), until=500, notes=notes)
    assert agg.steps[-1] == 200
    assert any("--until" in n for n in notes)


def test_smoothing_is_a_trailing_moving_average():
    np.testing.assert_allclose(analysis.smooth([0, 2, 4, 6], 2), [0, 1, 3, 5])
    np.testing.assert_allclose(analysis.smooth([0, 2, 4, 6], 1), [0, 2, 4, 6])


def test_iqm_and_bootstrap_band():
    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [100.0]])
    assert analysis.iqm(x)[0] == pytest.approx(3.5)  # cuts 2 at each end: mean of 2..5
    low, high = analysis.bootstrap_ci(x, n_boot=500)
    assert low[0] <= 3.5 <= high[0] and high[0] < 100


def test_iqm_stat_table(results, tmp_path):
    runs = analysis.load_runs(results, "smax_3m", ["qmix"])
    aggs = analysis.aggregate(analysis.curves(runs, "test_return_mean"), stat="iqm")
    df = analysis.table(aggs)
    assert df.loc[0, "iqm"] == pytest.approx(1.0)  # 3 seeds: nothing is trimmed
    assert df.loc[0, "iqm_ci_low"] <= 1.0 <= df.loc[0, "iqm_ci_high"]


def test_human_step_labels():
    assert [analysis.human_steps(x) for x in (0, 500, 1500, 2_000_000, 250_000)] == ["0", "500", "1.5k", "2M", "250k"]


# ------------------------------------------------------------------------------------------ command line

def test_outputs_csv_md_png(results, tmp_path, capsys):
    out = str(tmp_path / "plots" / "fig.png")
    code, stdout, err = run_main(["--results", results, "--metric", "test_return_mean", "--out", out], capsys)
    assert code == 0, err
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    df = pd.read_csv(str(tmp_path / "plots" / "fig.csv"))
    assert list(df["label"]) == ["qmix", "vdn"]
    qmix = df.set_index("label").loc["qmix"]
    assert qmix["n_seeds"] == 3 and qmix["steps"] == 200
    assert qmix["mean"] == pytest.approx(1.0) and qmix["ci95"] == pytest.approx(T_975_DF2 / math.sqrt(3))
    assert [float(v) for v in qmix["per_seed"].split()] == [0.0, 1.0, 2.0]
    vdn = df.set_index("label").loc["vdn"]
    assert vdn["mean"] == pytest.approx(3.0) and vdn["per_seed"] == "2 4"
    md = open(tmp_path / "plots" / "fig.md").read()
    assert "| qmix | 3 | 200 | 1.000 | 2.484 | 1: 0.000, 2: 1.000, 3: 2.000 |" in md
    assert "Final test_return_mean on smax_3m" in md and md in stdout
    curves = pd.read_csv(str(tmp_path / "plots" / "fig_curves.csv"))
    assert set(curves.columns) >= {"label", "step", "mean", "ci_low", "ci_high", "n_seeds"}
    assert len(curves) == 6


def test_defaults_env_metric_and_out(results, capsys):
    code, stdout, err = run_main(["--results", results], capsys)
    assert code == 0, err
    # battle_won is preferred when logged; the env is the only one present
    assert os.path.isfile(os.path.join(results, "plots", "smax_3m_test_battle_won_mean.png"))
    assert os.path.isfile(os.path.join(results, "plots", "smax_3m_test_battle_won_mean.md"))
    assert "Final test_battle_won_mean on smax_3m" in stdout


def test_algs_selects_curves(results, tmp_path, capsys):
    out = str(tmp_path / "v.png")
    code, _, err = run_main(["--results", results, "--algs", "vdn", "--out", out], capsys)
    assert code == 0, err
    assert list(pd.read_csv(str(tmp_path / "v.csv"))["label"]) == ["vdn"]


def test_status_handling(results, capsys):
    make_run(results, "qmix", "smax_3m", 4, 4, {"test_return_mean": (STEPS, [9, 9, 9])}, status="RUNNING")
    make_run(results, "qmix", "smax_3m", 5, 5, {"test_return_mean": (STEPS, [9, 9, 9])}, status="FAILED")
    notes = []
    runs = analysis.load_runs(results, "smax_3m", ["qmix"], notes=notes)
    assert sorted(r.seed for r in runs) == [1, 2, 3]
    assert any("FAILED" in n for n in notes) and any("--include-running" in n for n in notes)
    runs = analysis.load_runs(results, "smax_3m", ["qmix"], include_running=True)
    assert sorted(r.seed for r in runs) == [1, 2, 3, 4]
    code, _, err = run_main(["--results", results, "--metric", "test_return_mean"], capsys)
    assert code == 0 and "note: skipped 1 FAILED run(s)" in err


def test_filters_and_label_by(tmp_path, capsys):
    root = str(tmp_path)
    for run_id, (seed, w_min, value) in enumerate([(1, 0.1, 1.0), (2, 0.1, 3.0), (1, 0.5, 10.0), (2, 0.5, 20.0)]):
        make_run(root, "owqmix", "smax_3m", run_id + 1, seed, {"test_return_mean": (STEPS, [value] * 3)},
                 map_name="3m", w_min=w_min)
    runs = analysis.load_runs(root, "smax_3m", filters=["w_min=0.5"])
    assert sorted(r.seed for r in runs) == [1, 2] and {r.get("w_min") for r in runs} == {0.5}
    assert len(analysis.load_runs(root, "smax_3m", filters=["env_args.map_name=3m", "lr=5e-4"])) == 4
    with pytest.raises(SuiteError, match="no usable runs"):
        analysis.load_runs(root, "smax_3m", filters=["env_args.map_name=8m"])

    notes = []
    pooled = analysis.curves(analysis.load_runs(root, "smax_3m"), "test_return_mean", notes=notes)
    assert list(pooled) == ["owqmix"] and any("w_min" in n for n in notes)

    runs = analysis.load_runs(root, "smax_3m")
    aggs = analysis.aggregate(analysis.curves(runs, "test_return_mean", label_by="w_min"))
    assert [a.label for a in aggs] == ["owqmix w_min=0.1", "owqmix w_min=0.5"]
    assert [a.center[-1] for a in aggs] == [2.0, 15.0]

    out = str(tmp_path / "w.png")
    code, _, err = run_main(["--results", root, "--label-by", "w_min", "--filter", "w_min=0.1", "--out", out], capsys)
    assert code == 0, err
    assert list(pd.read_csv(str(tmp_path / "w.csv"))["label"]) == ["owqmix w_min=0.1"]


# ------------------------------------------------------------------------------------------ heatmap mode

# weight_hist_<i> (4 bins) per seed at STEPS; the mean over the 2 seeds is written out by hand below.
HIST = {
    "ow_qmix_pp": {1: [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25]],
                   2: [[1, 0, 0, 0], [0.7, 0.1, 0.1, 0.1], [0.75, 0, 0, 0.25]]},
    "remix_pp": {1: [[0.9, 0.1, 0, 0]] * 3,
                 2: [[0.9, 0.1, 0, 0], [0.8, 0, 0, 0.2], [0.6, 0.2, 0.2, 0]]},
}
HIST_MEAN = {"ow_qmix_pp": [[1, 0, 0, 0], [0.6, 0.3, 0.05, 0.05], [0.5, 0.125, 0.125, 0.25]],
             "remix_pp": [[0.9, 0.1, 0, 0], [0.85, 0.05, 0, 0.1], [0.75, 0.15, 0.1, 0]]}
# The learners bin on [floor, 1] and log the floor as weight_hist_low: w (OW-QMIX, here 0.1) or
# w_min (ReMIX, here 0.2; its w is unused).
FLOOR_CONFIG = {"ow_qmix_pp": {"learner": "wqmix_learner", "w": 0.1},
                "remix_pp": {"learner": "remix_learner", "w_min": 0.2, "w": 0.5}}
FLOOR = {"ow_qmix_pp": 0.1, "remix_pp": 0.2}


def hist_metrics(shares, floor=0.0):
    """weight_hist_<i> series from shares[step][bin] and the logged range [floor, 1], plus metrics
    that only look like bins."""
    metrics = {f"weight_hist_{i}": (STEPS, [row[i] for row in shares]) for i in range(4)}
    metrics.update({"weight_hist_low": (STEPS, [floor] * 3), "weight_hist_high": (STEPS, [1.0] * 3)})
    metrics.update({"weight_q10": (STEPS, [0.1] * 3), "weight_mean": (STEPS, [0.3] * 3),
                    "test_return_mean": (STEPS, [0.0] * 3)})
    return metrics


@pytest.fixture
def hist_results(tmp_path):
    """ow_qmix_pp and remix_pp on predator_prey, seeds 1-2 at punishment -2 (HIST) plus a -0.5 decoy each."""
    root = str(tmp_path / "results")
    for alg, seeds in HIST.items():
        for seed, shares in seeds.items():
            make_run(root, alg, "predator_prey", seed, seed, hist_metrics(shares, FLOOR[alg]),
                     env_args={"miscapture_punishment": -2.0}, **FLOOR_CONFIG[alg])
        make_run(root, alg, "predator_prey", 3, 3, hist_metrics([[0, 0, 0, 1]] * 3, FLOOR[alg]),
                 env_args={"miscapture_punishment": -0.5}, **FLOOR_CONFIG[alg])
    return root


def test_heatmap_averages_shares_over_seeds(hist_results, tmp_path, capsys):
    out = str(tmp_path / "plots" / "pp_weights.png")
    code, stdout, err = run_main(["--results", hist_results, "--env", "predator_prey", "--algs", "remix_pp",
                                  "ow_qmix_pp", "--filter", "env_args.miscapture_punishment=-2",
                                  "--heatmap", "weight_hist", "--out", out], capsys)
    assert code == 0, err
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    df = pd.read_csv(str(tmp_path / "plots" / "pp_weights.csv"))
    assert list(df.columns[:4]) == ["step", "bin", "label", "share"]
    assert list(dict.fromkeys(df["label"])) == ["remix_pp", "ow_qmix_pp"]  # the order of --algs
    assert len(df) == 2 * 3 * 4 and set(df["n_seeds"]) == {2}
    for label, mean in HIST_MEAN.items():
        rows = df[df["label"] == label].sort_values(["step", "bin"])
        np.testing.assert_allclose(rows["share"].to_numpy().reshape(3, 4), mean, atol=1e-12)
        assert sorted(set(rows["step"])) == STEPS
    remix = df[(df["label"] == "remix_pp") & (df["step"] == 0)]
    np.testing.assert_allclose(remix["bin_low"], [0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(remix["bin_high"], [0.4, 0.6, 0.8, 1.0])
    ow = df[(df["label"] == "ow_qmix_pp") & (df["step"] == 0)]
    np.testing.assert_allclose(ow["bin_low"], [0.1, 0.325, 0.55, 0.775])
    md = open(tmp_path / "plots" / "pp_weights.md").read()
    # remix_pp: lowest bin 0.9 -> 0.75; mean weight 0.9*0.3 + 0.1*0.5 = 0.32 -> 0.75*0.3 + 0.15*0.5 + 0.1*0.7 = 0.37
    assert "| remix_pp | 2 | 4 on [0.2, 1] | 0 | 200 | 0.900 | 0.750 | 0.320 | 0.370 |" in md
    assert "| ow_qmix_pp | 2 | 4 on [0.1, 1] | 0 | 200 | 1.000 | 0.500 |" in md
    assert md in stdout and "pp_weights.png" in stdout and "pp_weights.md" in stdout


def test_heatmap_api_default_out_and_log_scale(hist_results, capsys):
    runs = analysis.load_runs(hist_results, "predator_prey", ["ow_qmix_pp"],
                              filters=["env_args.miscapture_punishment=-2"])
    [m] = analysis.heatmaps(runs, "weight_hist")
    np.testing.assert_allclose(m.share.T, HIST_MEAN["ow_qmix_pp"])
    # centres 0.2125, 0.4375, 0.6625, 0.8875
    np.testing.assert_allclose(m.mean_value()[[0, -1]], [0.2125, 0.5 * 0.2125 + 0.125 * (0.4375 + 0.6625)
                                                         + 0.25 * 0.8875])
    code, _, err = run_main(["--results", hist_results, "--heatmap", "weight_hist", "--heatmap-log"], capsys)
    assert code == 0, err
    assert os.path.isfile(os.path.join(hist_results, "plots", "predator_prey_weight_hist_heatmap.png"))
    assert os.path.isfile(os.path.join(hist_results, "plots", "predator_prey_weight_hist_heatmap.csv"))


def test_heatmap_bad_prefix_and_mixed_ranges(hist_results, capsys):
    code, stdout, err = run_main(["--results", hist_results, "--heatmap", "weight_hst"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert "unknown histogram prefix 'weight_hst'" in err and "did you mean 'weight_hist'" in err
    make_run(hist_results, "remix_pp", "predator_prey", 4, 4, hist_metrics(HIST["remix_pp"][1], 0.3),
             env_args={"miscapture_punishment": -2.0}, learner="remix_learner", w_min=0.3)
    argv = ["--results", hist_results, "--algs", "remix_pp", "--filter", "env_args.miscapture_punishment=-2",
            "--heatmap", "weight_hist"]
    code, _, err = run_main(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "different ranges" in err and "--label-by" in err
    code, _, err = run_main(argv + ["--label-by", "w_min", "--out", str(os.path.join(hist_results, "w.png"))], capsys)
    assert code == 0, err


def test_heatmap_range_of_runs_that_did_not_log_it(hist_results, capsys):
    """Runs without <prefix>_low/_high bin on [0, 1] with a note, or on --heatmap-range."""
    runs = analysis.load_runs(hist_results, "predator_prey", ["ow_qmix_pp"],
                              filters=["env_args.miscapture_punishment=-2"])
    for run in runs:
        del run.metrics["weight_hist_low"], run.metrics["weight_hist_high"]
    notes = []
    [m] = analysis.heatmaps(runs, "weight_hist", notes=notes)
    np.testing.assert_allclose(m.edges, [0, 0.25, 0.5, 0.75, 1])
    assert any("did not log weight_hist_low/weight_hist_high" in n and "--heatmap-range" in n for n in notes)
    [m] = analysis.heatmaps(runs, "weight_hist", bin_range=(0.1, 1.0))
    np.testing.assert_allclose(m.edges, [0.1, 0.325, 0.55, 0.775, 1])
    code, _, err = run_main(["--results", hist_results, "--heatmap", "weight_hist", "--heatmap-range", "0.1", "1",
                             "--algs", "ow_qmix_pp", "--filter", "env_args.miscapture_punishment=-0.5"], capsys)
    assert code == 0, err


# ------------------------------------------------------------------------------------------ references

def write_reference(path, rows, columns=("label", "seed", "step", "value")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return str(path)


def test_reference_curves_are_aggregated_and_tabulated(results, tmp_path, capsys):
    # two seeds on their own grid (0, 150, 300): ends after the runs' 200 steps, so --until 200
    # interpolates: seed 0 rises 0 -> 0.3 (0.2 at 200), seed 1 is 0.4 throughout
    ref = write_reference(tmp_path / "ref.csv", [("JaxMARL IPPO", 0, 0, 0.0), ("JaxMARL IPPO", 0, 150, 0.15),
                                                 ("JaxMARL IPPO", 0, 300, 0.3), ("JaxMARL IPPO", 1, 0, 0.4),
                                                 ("JaxMARL IPPO", 1, 150, 0.4), ("JaxMARL IPPO", 1, 300, 0.4)])
    out = str(tmp_path / "fig.png")
    code, stdout, err = run_main(["--results", results, "--algs", "qmix", "--reference", ref, "--until", "200",
                                  "--out", out], capsys)
    assert code == 0, err
    df = pd.read_csv(str(tmp_path / "fig.csv")).set_index("label")
    assert list(df.index) == ["qmix", "JaxMARL IPPO"]
    row = df.loc["JaxMARL IPPO"]
    assert row["n_seeds"] == 2 and row["steps"] == 200 and row["seeds"] == "0 1"
    assert [float(v) for v in row["per_seed"].split()] == pytest.approx([0.2, 0.4])
    assert row["mean"] == pytest.approx(0.3)
    assert row["ci95"] == pytest.approx(12.706204736 * np.std([0.2, 0.4], ddof=1) / math.sqrt(2))
    assert "| JaxMARL IPPO | 2 | 200 | 0.300 |" in stdout
    curves = pd.read_csv(str(tmp_path / "fig_curves.csv"))
    assert set(curves["label"]) == {"qmix", "JaxMARL IPPO"}


def test_reference_seed_column_is_optional_and_smoothing_applies(results, tmp_path):
    ref = write_reference(tmp_path / "r.csv", [("ref", 0, 0.0), ("ref", 100, 1.0), ("ref", 200, 0.5)],
                          columns=("label", "step", "value"))
    runs = analysis.load_references([ref], "test_return_mean")
    assert [(r.alg, r.seed, r.status) for r in runs] == [("ref", 0, "REFERENCE")]
    by_label = analysis.curves(runs, "test_return_mean", window=2)
    assert list(by_label["ref"][0].values) == pytest.approx([0.0, 0.5, 0.75])


@pytest.mark.parametrize("rows, columns, message", [
    ([("a", 0, 1)], ("label", "seed", "value"), "missing column(s) step"),
    ([("a", 0, 0, "high")], ("label", "seed", "step", "value"), "line 2: value 'high' is not a number"),
    ([("qmix", 0, 0, 0.1)], ("label", "seed", "step", "value"), "also curve labels of the runs"),
])
def test_bad_reference_is_one_error_line(results, tmp_path, capsys, rows, columns, message):
    ref = write_reference(tmp_path / "bad.csv", rows, columns)
    code, _, err = run_main(["--results", results, "--reference", ref], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_reference_missing_file_and_heatmap(results, tmp_path, capsys):
    code, _, err = run_main(["--results", results, "--reference", str(tmp_path / "none.csv")], capsys)
    assert code == 2 and "cannot read it as CSV" in err and err.count("\n") == 1
    code, _, err = run_main(["--results", results, "--heatmap", "w", "--reference", "x.csv"], capsys)
    assert code == 2 and "does not combine with --heatmap" in err


@pytest.mark.parametrize("argv, message", [
    (["--env", "smax_8m"], "unknown env 'smax_8m'"),
    (["--algs", "qmxi"], "did you mean 'qmix'"),
    (["--metric", "test_won"], "unknown metric 'test_won'"),
    (["--filter", "w_min"], "not key=value"),
    (["--filter", "nokey=1"], "unknown config key 'nokey' in --filter"),
    (["--filter", "env_args.map=3m"], "did you mean 'env_args.map_name'"),
    (["--label-by", "nokey"], "unknown config key 'nokey' in --label-by"),
    (["--smooth", "0"], "--smooth"),
    (["--stat", "median"], "invalid choice"),
    (["--until", "-5"], "--until"),
    (["--heatmap", "weight_hist"], "unknown histogram prefix 'weight_hist'"),
    (["--heatmap", "weight_hist", "--stat", "iqm"], "drop --metric/--stat"),
    (["--heatmap-log"], "--heatmap-log needs --heatmap"),
    (["--heatmap-range", "0", "1"], "--heatmap-range needs --heatmap"),
    (["--heatmap", "weight_hist", "--heatmap-range", "1", "0"], "needs LOW < HIGH"),
])
def test_bad_input_is_one_error_line(results, capsys, argv, message):
    code, stdout, err = run_main(["--results", results, *argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_missing_results_and_several_envs(tmp_path, results, capsys):
    code, _, err = run_main(["--results", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and err.startswith("error: no results folder") and err.count("\n") == 1
    make_run(results, "qmix", "matrix_game", 1, 1, {"test_return_mean": (STEPS, [0, 0, 0])})
    code, _, err = run_main(["--results", results], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "matrix_game" in err and "smax_3m" in err and "--env" in err


def test_module_docstring_names_the_command():
    assert "python -m marlkit.analysis" in analysis.__doc__
