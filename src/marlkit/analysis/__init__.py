"""Learning curves, heatmaps and final-value tables from the suite's Sacred results.

A small package: ``runs`` (loading and selecting runs), ``stats`` (curves per seed, aggregation
and 95% bands), ``plots`` (line plots and tables), ``heatmap`` (logged histograms against steps),
``cli`` (the command line). Everything public is importable from ``marlkit.analysis``.

Run from the repository root as ``python -m marlkit.analysis`` (with ``src`` on the path, e.g.
``PYTHONPATH=src python -m marlkit.analysis``, or after ``pip install -e .``)::

    python -m marlkit.analysis --env smax_3m --algs qmix vdn --metric test_battle_won_mean
    python -m marlkit.analysis --env matrix_game --algs qmix --label-by w_min --stat iqm --smooth 3

It reads ``<results>/sacred/<alg>/<env_label>/<id>/`` (config.json, metrics.json, run.json, as
written by marlkit.experiment.run) and, for one env and several algorithms, draws a metric against
environment steps: the mean over seeds with a 95% confidence band (Student-t interval of the mean
across seeds) or, with ``--stat iqm``, the interquartile mean with a 95% percentile-bootstrap band
(seeds resampled). The seeds' curves are aligned by linear interpolation onto a common step grid
that ends at the shortest seed's last logged step (or at ``--until``, if that is earlier); with
``--smooth W`` each seed's curve is first averaged over a trailing window of W logged points.

Outputs: the PNG (``--out``, default ``<results>/plots/<env>_<metric>.png``; ``_iqm`` is added to
the default name with ``--stat iqm``), and next to it with the same stem a CSV and a markdown table
of the final values per curve (mean, 95% CI half-width, per-seed values, number of seeds, steps)
plus ``<stem>_curves.csv`` with the aggregated curves. The markdown table is also printed.

External curves: ``--reference CSV [CSV ...]`` adds curves from CSV files with the columns label,
seed, step, value (``value`` in the units of the metric; seed optional), e.g. another library's
baselines evaluated the same way (``scripts/jaxmarl_reference.py summarize`` writes such a CSV).
Each label becomes one curve, aggregated over its seeds with the same statistic, band, smoothing and
``--until`` as the runs, and gets a row in the tables::

    python -m marlkit.analysis --env smax_3m --algs qmix_smax mappo_smax --reference jaxmarl_3m.csv

Selection: only COMPLETED runs by default; ``--include-running`` adds RUNNING ones; FAILED and
interrupted runs are skipped with a note. ``--filter key=value`` (repeatable, dotted keys such as
``env_args.map_name``) keeps runs whose config.json matches; ``--label-by key`` splits each
algorithm into one curve per value of a config key (e.g. ``w_min``). Bad input is reported as one
``error: ...`` line on stderr with exit code 2; notes about skipped runs go to stderr as ``note:``.

Heatmap mode (the ReMIX paper's Fig. 3: how the per-transition weights are distributed during
training)::

    python -m marlkit.analysis --env predator_prey --algs remix_pp ow_qmix_pp --heatmap weight_hist

``--heatmap PREFIX`` reads the histogram logged as ``<PREFIX>_0`` ... ``<PREFIX>_<n-1>`` (share of a
batch's transitions in each of n equal-width bins) and draws, instead of curves, one panel per curve
label side by side: x = env steps, y = weight (bin edges marked), colour = share of transitions in
the bin, the mean over seeds on the common step grid (as above; ``--until``/``--smooth`` apply), with
a shared colour bar (``--heatmap-log`` for a log colour scale). The bins span [low, high] as the
run logged them in ``<PREFIX>_low`` and ``<PREFIX>_high`` (e.g. the weighted learners log their
floor as ``weight_hist_low``); ``--heatmap-range LOW HIGH`` sets the span for every run instead
(runs that logged neither are taken to bin [0, 1], with a note). Outputs (default
``<results>/plots/<env>_<PREFIX>_heatmap.png``): the PNG,
``<stem>.csv`` (step, bin, label, share, bin_low, bin_high, n_seeds) and ``<stem>.md`` (per label: the
share in the lowest bin and the mean weight from bin centres at the first and last common step).
"""

from .cli import analyse, main, parse_args
from .heatmap import (Heatmap, heatmap_frame, heatmap_markdown, heatmaps, hist_bins, hist_range, plot_heatmap,
                      write_heatmap_outputs)
from .plots import curves_frame, human_steps, markdown, plot, table, write_outputs
from .runs import (REFERENCE_COLUMNS, Run, apply_filters, choose_env, find_envs, flatten, load_references, load_runs,
                   lookup, matches, parse_value, read_metrics, sacred_root, unknown_key)
from .stats import (DEFAULT_METRICS, N_BOOT, RUN_SPECIFIC_KEYS, Aggregate, Curve, aggregate, bootstrap_ci,
                    common_grid, curves, default_metric, iqm, label_of, mean_ci, smooth, t_quantile)

__all__ = [
    "analyse", "main", "parse_args", "Heatmap", "heatmap_frame", "heatmap_markdown", "heatmaps", "hist_bins",
    "hist_range", "plot_heatmap", "write_heatmap_outputs", "curves_frame", "human_steps", "markdown", "plot",
    "table", "write_outputs", "REFERENCE_COLUMNS", "Run", "apply_filters", "choose_env", "find_envs", "flatten",
    "load_references", "load_runs", "lookup",
    "matches", "parse_value", "read_metrics", "sacred_root", "unknown_key", "DEFAULT_METRICS", "N_BOOT",
    "RUN_SPECIFIC_KEYS", "Aggregate", "Curve", "aggregate", "bootstrap_ci", "common_grid", "curves",
    "default_metric", "iqm", "label_of", "mean_ci", "smooth", "t_quantile",
]
