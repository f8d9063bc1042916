"""Throughput settings: torch_threads is applied before anything is built and recorded."""
import json
import os

import pytest
import torch as th

from helpers import run_tiny
from marlkit.errors import SuiteError
from marlkit.experiment import prepare


def test_torch_threads_applied_before_build_and_recorded(tmp_path):
    before = th.get_num_threads()
    try:
        seen = {}
        from marlkit.registry import get_registry

        spec = get_registry().get("env", "matrix_game")
        make = spec.make

        def spy(*a, **k):  # the env is the first thing built: the threads must be set by then
            seen["threads"] = th.get_num_threads()
            return make(*a, **k)

        spec.make = spy
        try:
            config, _, _ = prepare("qmix", "matrix_game", {"torch_threads": 2})
        finally:
            spec.make = make
        assert config["torch_threads"] == 2 and seen["threads"] == 2
        from threadpoolctl import threadpool_info  # numpy's and scipy's BLAS pools follow it too

        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {2}
        run_dir = run_tiny("qmix", "matrix_game", tmp_path)
        with open(os.path.join(run_dir, "config.json")) as f:
            assert json.load(f)["torch_threads"] == 1
        assert th.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
    finally:
        th.set_num_threads(before)


def test_torch_threads_must_be_positive():
    with pytest.raises(SuiteError, match="torch_threads"):
        prepare("qmix", "matrix_game", {"torch_threads": 0})


def _fresh_python(code, **env):
    """Run ``code`` in a new interpreter from the repository root (src/ first); its stdout."""
    import subprocess
    import sys

    from marlkit import REPO_ROOT

    prelude = f"import sys; sys.path[:0] = [{os.path.join(REPO_ROOT, 'src')!r}, {REPO_ROOT!r}]\n"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", prelude + code], cwd=REPO_ROOT, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_run_imports_only_the_host_modules_it_needs():
    out = _fresh_python(
        "import contextlib, io\n"
        "from marlkit.experiment import offline\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    offline('qmix', 'matrix_game', {'t_max': 10})\n"
        "print(sorted(m for m in ('pymarlzooplus.main', 'pymarlzooplus.envs', 'seaborn') if m in sys.modules))\n"
        "from pymarlzooplus import pymarlzooplus\n"  # the host's entry point is still reachable
        "print(callable(pymarlzooplus))\n")
    assert out.split() == ["[]", "True"]


def test_jax_cache_folder_is_overridable(monkeypatch, tmp_path):
    from marlkit.envs import smax

    monkeypatch.setenv("MARLKIT_JAX_CACHE", str(tmp_path / "c"))
    assert smax.cache_dir() == str(tmp_path / "c")
    monkeypatch.setenv("MARLKIT_JAX_CACHE", "off")
    assert smax.cache_dir() is None
    monkeypatch.delenv("MARLKIT_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert smax.cache_dir() == os.path.join(str(tmp_path), "marlkit", "jax")


def test_smax_compilations_are_stored_in_the_persistent_cache(tmp_path):
    pytest.importorskip("jaxmarl")
    code = ("import numpy as np\n"
            "from marlkit.envs.smax import SmaxVecEnv\n"
            "env = SmaxVecEnv(1, '3m', seed=1)\n"
            "env.reset()\n"
            "env.step(np.full((1, 3), 4), np.ones(1, bool))\n")
    _fresh_python(code, MARLKIT_JAX_CACHE=str(tmp_path))
    names = os.listdir(tmp_path)
    assert any(name.startswith("jit_reset_all") for name in names) and any("step" in name for name in names)
