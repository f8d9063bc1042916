"""Loading runs: Sacred run folders ``<results>/sacred/<alg>/<env>/<id>/`` into ``Run`` objects,
selected by status and by ``--filter key=value`` on their config.json; and external reference curves
(``--reference``: CSV files with columns label, seed, step, value) as ``Run`` objects of their own."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import SuiteError, closest, unknown


@dataclass
class Run:
    """One Sacred run directory."""

    alg: str
    env: str
    run_id: str
    path: str
    status: str
    config: dict
    metrics: dict = field(default_factory=dict)  # name -> (steps, values) as float arrays

    @property
    def seed(self):
        return self.config.get("seed")

    def get(self, key, default=None):
        """A config value by (dotted) key."""
        return lookup(self.config, key, default)


_MISSING = object()


def lookup(config, key, default=None):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def sacred_root(results) -> str:
    """``<results>/sacred`` (or ``results`` itself if it is the sacred folder)."""
    if os.path.isdir(os.path.join(results, "sacred")):
        return os.path.join(results, "sacred")
    if os.path.isdir(results) and os.path.basename(os.path.normpath(results)) == "sacred":
        return results
    raise SuiteError(f"no results folder '{os.path.join(results, 'sacred')}' (runs are stored as "
                     f"<results>/sacred/<alg>/<env>/<id>/; point --results at the suite's results folder)")


def find_envs(results) -> dict:
    """env label -> sorted list of the algorithms that have runs on it."""
    root = sacred_root(results)
    envs = {}
    for alg in sorted(os.listdir(root)):
        alg_dir = os.path.join(root, alg)
        if not os.path.isdir(alg_dir):
            continue
        for env in sorted(os.listdir(alg_dir)):
            env_dir = os.path.join(alg_dir, env)
            if os.path.isdir(env_dir) and any(_is_run_dir(env_dir, d) for d in os.listdir(env_dir)):
                envs.setdefault(env, []).append(alg)
    return envs


def _is_run_dir(parent, name):
    return not name.startswith("_") and os.path.isfile(os.path.join(parent, name, "config.json"))


def choose_env(results, env=None) -> str:
    envs = find_envs(results)
    if not envs:
        raise SuiteError(f"no runs found under {sacred_root(results)}")
    if env is None:
        if len(envs) > 1:
            raise SuiteError(f"several envs in {results}: {', '.join(sorted(envs))}; choose one with --env")
        return next(iter(envs))
    if env not in envs:
        raise unknown("env", env, envs)
    return env


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def read_metrics(path) -> dict:
    """Sacred metrics.json -> {name: (steps, values)}, sorted by step, non-numbers dropped."""
    out = {}
    for name, entry in _read_json(path).items():
        pairs = {}
        for step, value in zip(entry.get("steps", []), entry.get("values", [])):
            try:
                step, value = float(step), float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(step) and math.isfinite(value):
                pairs[step] = value  # a repeated step keeps its last value
        if pairs:
            steps = np.array(sorted(pairs))
            out[name] = (steps, np.array([pairs[s] for s in steps]))
    return out


def load_runs(results, env, algs=None, include_running=False, filters=(), notes=None) -> list:
    """The runs of ``env`` for ``algs`` (default all) that pass the status and config filters."""
    notes = [] if notes is None else notes
    found = find_envs(results).get(env, [])
    algs = list(dict.fromkeys(algs or found))
    for alg in algs:
        if alg not in found:
            raise unknown(f"algorithm for env '{env}'", alg, found)
    root = sacred_root(results)
    runs, skipped = [], {}
    for alg in algs:
        env_dir = os.path.join(root, alg, env)
        ids = sorted((d for d in os.listdir(env_dir) if _is_run_dir(env_dir, d)),
                     key=lambda d: (not d.isdigit(), int(d) if d.isdigit() else 0, d))
        for run_id in ids:
            path = os.path.join(env_dir, run_id)
            try:
                config = _read_json(os.path.join(path, "config.json"))
                status = _read_json(os.path.join(path, "run.json")).get("status", "UNKNOWN")
            except (OSError, ValueError) as exc:
                notes.append(f"skipped {path}: unreadable ({exc.__class__.__name__})")
                continue
            if status != "COMPLETED" and not (status == "RUNNING" and include_running):
                skipped.setdefault(status, []).append(f"{alg}/{run_id}")
                continue
            try:
                metrics = read_metrics(os.path.join(path, "metrics.json"))
            except (OSError, ValueError):
                metrics = {}
            runs.append(Run(alg, env, run_id, path, status, config, metrics))
    for status, names in sorted(skipped.items()):
        hint = " (use --include-running)" if status == "RUNNING" else ""
        notes.append(f"skipped {len(names)} {status} run(s){hint}: {', '.join(names)}")
    runs = apply_filters(runs, filters)
    if not runs:
        raise SuiteError(f"no usable runs of {', '.join(algs)} on {env}" + (" match the filters" if filters else "")
                         + ("; " + "; ".join(notes) if notes else ""))
    return runs


def parse_value(text):
    """A --filter value as JSON (numbers, true/false/null, lists) where possible, else the string."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def matches(value, wanted: str) -> bool:
    parsed = parse_value(wanted)
    if isinstance(value, bool) or isinstance(parsed, bool):
        return value is parsed or str(value) == wanted
    if isinstance(value, (int, float)) and isinstance(parsed, (int, float)):
        return math.isclose(value, parsed, rel_tol=1e-9, abs_tol=0.0)
    return value == parsed or str(value) == wanted


def apply_filters(runs, filters) -> list:
    """Runs whose config matches every ``key=value`` of ``filters``."""
    for item in filters:
        if "=" not in item:
            raise SuiteError(f"--filter '{item}' is not key=value")
        key, wanted = item.split("=", 1)
        key = key.strip()
        if runs and all(lookup(r.config, key, _MISSING) is _MISSING for r in runs):
            raise unknown_key("--filter", key, runs)
        runs = [r for r in runs if matches(lookup(r.config, key, _MISSING), wanted.strip())]
    return runs


def unknown_key(option, key, runs) -> SuiteError:
    keys = sorted(set().union(*(flatten(r.config) for r in runs)))
    return SuiteError(f"unknown config key '{key}' in {option}{closest(key, keys)}; keys are those of "
                      f"config.json, dotted for nested ones (e.g. env_args.map_name)")


def flatten(config, prefix="") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


REFERENCE_COLUMNS = ("label", "step", "value")  # plus an optional "seed"


def load_references(paths, metric, env="") -> list:
    """External curves as ``Run`` objects (status REFERENCE), one per label and seed of the CSVs.

    A CSV needs the columns label, step, value and may have seed (default: one seed, 0); other
    columns are ignored. ``value`` is taken to be ``metric``, so the curves are drawn, smoothed and
    tabulated with the suite's runs of that metric."""
    import pandas as pd

    runs = []
    for path in paths:
        try:
            df = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise SuiteError(f"--reference {path}: cannot read it as CSV ({exc.__class__.__name__}: {exc})")
        missing = [c for c in REFERENCE_COLUMNS if c not in df.columns]
        if missing:
            raise SuiteError(f"--reference {path}: missing column(s) {', '.join(missing)}; a reference CSV has "
                             f"the columns label, step, value and optionally seed (one row per evaluation)")
        if "seed" not in df.columns:
            df["seed"] = 0
        for column in ("step", "value"):
            numbers = pd.to_numeric(df[column], errors="coerce")
            if numbers.isna().any():
                row = int(numbers.isna().to_numpy().nonzero()[0][0]) + 2  # header is line 1
                raise SuiteError(f"--reference {path}: line {row}: {column} '{df[column].iloc[row - 2]}' is not "
                                 f"a number")
            df[column] = numbers
        for (label, seed), group in df.groupby(["label", "seed"], sort=False):
            group = group.groupby("step", sort=True)["value"].last()  # a repeated step keeps its last value
            seed = seed.item() if hasattr(seed, "item") else seed
            runs.append(Run(str(label), env, f"{os.path.basename(path)}:{seed}", path, "REFERENCE",
                            {"seed": seed, "reference": path},
                            {metric: (group.index.to_numpy(dtype=float), group.to_numpy(dtype=float))}))
    if not runs:
        raise SuiteError(f"--reference {' '.join(paths)}: no rows")
    return runs
