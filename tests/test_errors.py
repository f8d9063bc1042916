"""Bad input gets one clear line on stderr and exit code 2, never a traceback."""
import os
import subprocess
import sys

import pytest

import marlkit.config as config_module
from marlkit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fails(capsys, *argv):
    """Run the CLI in-process; return its single stderr line (asserting exit code 2)."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_unknown_config_lists_and_suggests(capsys):
    line = fails(capsys, "--config=qmx", "--env-config=matrix_game")
    assert "unknown --config name 'qmx'" in line and "did you mean 'qmix'" in line and "vdn" in line


def test_unknown_env_config(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=smaxx")
    assert "unknown --env-config name 'smaxx'" in line and "did you mean 'smax'" in line


def test_unknown_key_in_with(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", "batch_sise=4")
    assert "unknown config key 'batch_sise'" in line and "batch_size" in line


def test_unknown_env_arg(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", "env_args.payof=[[1]]")
    assert "unknown env_args key 'payof'" in line and "payoff" in line


@pytest.mark.parametrize("token, words", [
    ("batch_size=abc", "expects int"),
    ("lr=fast", "expects float"),
    ("gamma=1.5", "must be <= 1.0"),
    ("t_max=0", "must be >= 1"),
    ("epsilon_start=-0.1", "must be >= 0.0"),
    ("batch_size=64", "exceeds buffer_size"),
    ("runner=parallell", "did you mean 'parallel'"),
    ("mixer=qmixx", "unknown mixer 'qmixx'"),
    ("evaluate=True", "needs checkpoint_path"),
])
def test_bad_values(capsys, token, words):
    extra = ["buffer_size=32"] if token.startswith("batch_size=64") else []
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", token, *extra)
    assert words in line


@pytest.mark.parametrize("appended, words", [
    ("mixing_embd_dim: 16\n", ["unknown config key 'mixing_embd_dim' in config/algs/qmix.yaml", "mixing_embed_dim"]),
    ("lr: [0.1\n", ["malformed YAML", "qmix.yaml", "line"]),
    ("base: vdnn\n", ["qmix.yaml: unknown base 'vdnn'", "did you mean 'vdn'"]),
])
def test_bad_alg_yaml(capsys, tmp_path, monkeypatch, appended, words):
    _config_copy(tmp_path, monkeypatch, "algs/qmix.yaml", appended)
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game")
    assert all(w in line for w in words), line


def test_malformed_with_file(capsys, tmp_path):
    bad = tmp_path / "extra.yaml"
    bad.write_text("t_max: : 3\n")
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", str(bad))
    assert "malformed YAML" in line


def test_bad_payoff(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", "env_args.payoff=[[1,2],[3]]")
    assert "payoff" in line


def test_missing_starcraft(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=sc2")
    assert "smac" in line.lower() and "docker" in line


def test_mismatched_checkpoint_path(capsys, tmp_path):
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game", "with", f"checkpoint_path={tmp_path}/nope")
    assert "is not a directory" in line


def test_missing_flags(capsys):
    assert "required" in fails(capsys, "--config=qmix")


def test_real_process_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "run.py", "--config=qmix", "--env-config=matrix_game", "with", "gamma=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: config key 'gamma' = 2.0 is out of range: must be <= 1.0"] or \
        proc.stderr.strip().splitlines() == ["error: config key 'gamma' = 2 is out of range: must be <= 1.0"]
    assert "Traceback" not in proc.stdout + proc.stderr


def _config_copy(tmp_path, monkeypatch, relative, extra_text):
    """A copy of config/ with ``extra_text`` appended to one file, used instead of the real one."""
    import shutil

    shutil.copytree(config_module.CONFIG_DIR, tmp_path / "config")
    with open(tmp_path / "config" / relative, "a") as f:
        f.write(extra_text)
    monkeypatch.setattr(config_module, "CONFIG_DIR", str(tmp_path / "config"))


def test_unknown_smax_map(capsys):
    line = fails(capsys, "--config=qmix", "--env-config=smax", "with", "env_args.map_name=3mm")
    assert "3mm" in line and "did you mean '3m'" in line


def test_circular_base_presets(capsys, tmp_path, monkeypatch):
    _config_copy(tmp_path, monkeypatch, "algs/qmix.yaml", "base: vdn\n")
    with open(tmp_path / "config" / "algs" / "vdn.yaml", "a") as f:
        f.write("base: qmix\n")
    line = fails(capsys, "--config=qmix", "--env-config=matrix_game")
    assert "circle: qmix -> vdn -> qmix" in line
