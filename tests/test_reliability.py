"""Reliability (issue 10): every bad input is one line, checkpoints survive kills and corruption,
SIGTERM stops a run cleanly, and a resumed run logs at the same steps as an uninterrupted one.
One parametrized test per defect class; scripts/bad_inputs.py sweeps many more inputs."""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch as th

from helpers import metrics, run_tiny
from marlkit import checkpoint, limits
from marlkit.errors import SuiteError
from marlkit.experiment import offline, signature_of
from test_errors import ROOT, fails

TINY = dict(batch_size=4, buffer_size=16, t_max=100)
BASE = ("--config=qmix", "--env-config=matrix_game", "with", "t_max=100", "batch_size=4", "buffer_size=16")


# ---- 1. checkpoints: corrupt, truncated, empty, foreign, missing files -------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A models folder with two complete steps of a tiny qmix run."""
    models = tmp_path_factory.mktemp("models")
    args, runner, buffer, mac, learner = offline("qmix", "matrix_game", TINY)
    for step in (10, 20):
        buffer.insert_episode_batch(runner.run()[0])
        checkpoint.save(str(models / str(step)), learner, {"t_env": step}, signature_of(args), buffer, runner=runner)
    return str(models)


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _empty(path):
    open(path, "wb").close()


def _random(path):
    with open(path, "wb") as f:
        f.write(random.Random(0).randbytes(2048))


def _flip(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))


CORRUPTIONS = {"truncated": (_truncate, "truncated"), "emptied": (_empty, "empty"), "random bytes": (_random, ""),
               "one byte flipped": (_flip, "checksum"), "missing": (os.remove, "missing")}


@pytest.mark.parametrize("name", ["suite_state.pt", "agent.th", "mixer.th", "opt.th", "buffer.pt", "manifest.json"])
@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_damaged_file_is_named_in_one_line_and_the_previous_step_is_used(saved, tmp_path, name, how):
    damage, words = CORRUPTIONS[how]
    models = shutil.copytree(saved, tmp_path / "m")
    damage(str(models / "20" / name))
    if name == "manifest.json":  # without its manifest the step is checked file by file, so it loads
        words = "unreadable" if how != "missing" else None
    if words is None:
        assert checkpoint.resolve(str(models))[0].endswith("20")
        return
    with pytest.raises(SuiteError) as err:
        checkpoint.resolve(str(models / "20"))
    line = str(err.value)
    assert "\n" not in line and name in line and words in line, line
    folder, state = checkpoint.resolve(str(models))  # the models folder: falls back to the complete step
    assert folder.endswith("10") and state["loop"]["t_env"] == 10


@pytest.mark.parametrize("evaluate", [False, True])
def test_the_cli_refuses_a_damaged_checkpoint_in_one_line(capsys, saved, tmp_path, evaluate):
    models = shutil.copytree(saved, tmp_path / "m")
    _truncate(str(models / "20" / "agent.th"))
    os.remove(str(models / "20" / "opt.th"))
    line = fails(capsys, *BASE, f"checkpoint_path={models / '20'}", f"evaluate={evaluate}",
                 f"local_results_path={tmp_path / 'r'}")
    assert "agent.th is truncated" in line


def test_files_needing_arbitrary_unpickling_or_foreign_are_refused(saved, tmp_path):
    models = shutil.copytree(saved, tmp_path / "m")
    state_file = str(models / "20" / "suite_state.pt")
    th.save({"payload": argparse_namespace()}, state_file)
    os.remove(str(models / "20" / "manifest.json"))  # as an older or hand-made checkpoint
    with pytest.raises(SuiteError, match="needs arbitrary unpickling .* refused"):
        checkpoint.resolve(str(models / "20"))
    th.save({"hello": th.zeros(2)}, state_file)
    with pytest.raises(SuiteError, match="not a marlkit checkpoint state"):
        checkpoint.resolve(str(models / "20"))
    os.remove(state_file)
    with pytest.raises(SuiteError, match="no suite_state.pt .* checkpoint_weights_only=True"):
        checkpoint.resolve(str(models / "20"))
    assert checkpoint.resolve(str(models / "20"), weights_only=True) == (str(models / "20"), None)


def argparse_namespace():
    import argparse

    return argparse.Namespace(x=1)


def test_keep_last_k_and_buffer_only_in_the_newest(tmp_path):
    args, runner, buffer, mac, learner = offline("qmix", "matrix_game", TINY)
    buffer.insert_episode_batch(runner.run()[0])
    for step in range(1, 6):
        checkpoint.save(str(tmp_path / str(step)), learner, {"t_env": step}, signature_of(args), buffer)
        checkpoint.prune(str(tmp_path), keep=2, buffer_newest_only=True)
    assert checkpoint.steps_in(str(tmp_path)) == [4, 5]
    assert not (tmp_path / "4" / "buffer.pt").exists() and (tmp_path / "5" / "buffer.pt").exists()
    assert checkpoint.resolve(str(tmp_path / "4"))[0]  # still complete after dropping its buffer
    # the buffer is stored lossless but compact: small integer-valued fields as uint8
    stored = th.load(str(tmp_path / "5" / "buffer.pt"), weights_only=True)["transition_data"]
    assert stored["actions_onehot"].dtype == th.uint8 and stored["obs"].dtype == th.uint8
    fresh = offline("qmix", "matrix_game", TINY)
    checkpoint.load(str(tmp_path / "5"), fresh[4], signature_of(fresh[0]), fresh[2])
    for k, v in buffer.data.transition_data.items():
        assert th.equal(v, fresh[2].data.transition_data[k]), k


# ---- 2. kill during save ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:os.fork")  # the child only saves with torch; SIGKILL ends it in any state
def test_sigkill_during_saves_never_leaves_an_unloadable_newest_checkpoint(tmp_path):
    """Many SIGKILLs at random moments of a loop of saves: the newest step folder is always complete
    and loads; the temporary folders of killed saves are ignored and cleaned up by the next save."""
    args, runner, buffer, mac, learner = offline("qmix", "matrix_game", dict(TINY, hidden_dim=128, buffer_size=64))
    for _ in range(4):
        buffer.insert_episode_batch(runner.run()[0])
    checkpoint.save(str(tmp_path / "1"), learner, {"t_env": 1}, signature_of(args), buffer)  # one complete save
    save_time = 0.0  # the slowest of three more saves (outside the step folders) scales the kill times:
    for k in range(3):  # one cold save underestimates a loaded machine's, and too few saves then complete
        start = time.time()
        checkpoint.save(str(tmp_path / "warm" / str(k)), learner, {"t_env": 1}, signature_of(args), buffer)
        save_time = max(save_time, time.time() - start)
    shutil.rmtree(tmp_path / "warm")
    rng, kills, during = random.Random(1), 0, 0
    step = 0
    for _ in range(25):
        step += 1000
        pid = os.fork()
        if pid == 0:  # child: save, save, save... until killed
            try:
                s = step
                while True:
                    checkpoint.save(str(tmp_path / str(s)), learner, {"t_env": s}, signature_of(args), buffer)
                    s += 1
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 3 * save_time))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        during += any(d.startswith(".tmp-") and d.endswith(f"-{pid}") for d in os.listdir(tmp_path))  # this kill's
        newest = checkpoint.steps_in(str(tmp_path))
        if newest:
            folder, state = checkpoint.resolve(str(tmp_path / str(newest[-1])))  # raises if incomplete
            assert state["loop"]["t_env"] == newest[-1]
    assert kills == 25 and during >= 3, during  # enough kills landed inside a save
    assert len(checkpoint.steps_in(str(tmp_path))) >= 3  # and saves between kills completed
    fresh = offline("qmix", "matrix_game", dict(TINY, hidden_dim=128, buffer_size=64))
    folder, state = checkpoint.resolve(str(tmp_path))
    assert checkpoint.load(folder, fresh[4], signature_of(fresh[0]), fresh[2], state=state)["t_env"] > 0
    assert fresh[2].episodes_in_buffer == buffer.episodes_in_buffer
    checkpoint.prune(str(tmp_path), keep=3, buffer_newest_only=True)
    assert not [d for d in os.listdir(tmp_path) if not d.isdigit()]


# ---- 3. SIGTERM and resume -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_saves_flushes_marks_interrupted_and_exits_non_zero(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "run.py", *BASE[:3], "t_max=100000000", "batch_size=4", "buffer_size=16",
                             "save_model=True", "save_model_interval=1000000", "log_interval=20", "test_interval=20",
                             f"local_results_path={tmp_path}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run_dir = os.path.join(tmp_path, "sacred", "qmix", "matrix_game", "1")
    deadline = time.time() + 120
    while time.time() < deadline and not glob.glob(os.path.join(tmp_path, "models", "*", "*", "1", "*")):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {sig.name} at t_env" in lines[0] and "Traceback" not in out + err
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["status"] == "INTERRUPTED"
    models = os.path.join(tmp_path, "models", "qmix", "matrix_game", "1")
    final = max(checkpoint.steps_in(models))
    assert final > 1 and checkpoint.resolve(models)[1]["loop"]["t_env"] == final  # the final checkpoint
    steps = metrics(run_dir)["episode"]["steps"]
    assert steps and max(steps) <= final and final - max(steps) < 20  # flushed up to the stop


def test_resumed_run_logs_at_the_same_steps_as_an_uninterrupted_one(tmp_path):
    whole = run_tiny("qmix", "matrix_game", tmp_path / "a", t_max=240, seed=3, save_model=True, save_model_interval=1000)
    first = run_tiny("qmix", "matrix_game", tmp_path / "b", t_max=120, seed=3, save_model=True, save_model_interval=1000)
    models = os.path.join(tmp_path, "b", "models", "qmix", "matrix_game", os.path.basename(first))
    resumed = run_tiny("qmix", "matrix_game", tmp_path / "b", checkpoint_path=models, t_max=240, seed=3)
    assert resumed == first  # one Sacred run, so the analysis sees one seed
    a, b = metrics(whole), metrics(resumed)
    assert set(a) == set(b)
    for key in a:
        assert b[key]["steps"] == a[key]["steps"], key
    # bit-exact resume: the same values as well
    assert b["return_mean"]["values"] == a["return_mean"]["values"]
    assert b["loss"]["values"] == a["loss"]["values"]


# ---- 4. values: NaN/inf, meaningless, memory, scientific notation, encodings ---------------------

@pytest.mark.parametrize("token, words", [
    ("lr=.nan", "'lr' is NaN"), ("lr=.inf", "'lr' is infinite"), ("gamma=.nan", "'gamma' is NaN"),
    ("grad_norm_clip=-.inf", "is -infinite"), ("env_args.payoff=[[.nan,0],[0,1]]", "env_args.payoff[0][0]' is NaN"),
    ("env_args.payoff=[[.inf,0],[0,1]]", "is infinite"), ("env_args.payoff=[[1e40,0],[0,1]]", "overflows float32"),
    ("epsilon_anneal_time=0", "epsilon is annealed over"), ("target_update_interval_or_tau=0", "never updates"),
    ("load_step=-5", "0 = the newest"), ("t_max=2.5", "expects int"), ("checkpoint_keep=-1", "must be >= 0"),
    ("hidden_dim=1000000", "needs about"), ("buffer_size=1000000000", "mostly the replay buffer"),
])
def test_bad_values_are_one_line(capsys, token, words):
    assert words in fails(capsys, *BASE, token)


@pytest.mark.parametrize("env, tokens", [
    ("predator_prey", ["buffer_size=10000000"]),
    ("predator_prey", ["env_args.grid_height=1000", "env_args.grid_width=1000"]),
    ("predator_prey", ["env_args.episode_limit=1000000000"]),
    ("aloha", ["env_args.rows=1000", "env_args.cols=1000"]),
])
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(capsys, env, tokens):
    line = fails(capsys, "--config=qmix", f"--env-config={env}", "with", "batch_size=4", *tokens)
    estimated = "this run needs about" in line and "GB" in line and "available" in line
    refused_by_numpy = "out of memory" in line and "Unable to allocate" in line and "TiB" in line  # nothing allocated
    assert estimated or refused_by_numpy, line


def test_scientific_notation_is_a_number():
    from marlkit.config import build_config, parse_updates
    from marlkit.registry import get_registry

    config = build_config("qmix", "matrix_game", parse_updates(["lr=5e-4", "t_max=2e2", "test_interval=1E2"]),
                          get_registry())
    assert config["lr"] == 5e-4 and config["t_max"] == 200 and isinstance(config["t_max"], int)
    assert config["test_interval"] == 100


@pytest.mark.parametrize("content, words", [
    ("lr: 0.001 # caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
    (bytes(range(256)) * 4, "UTF-8"),
    ("t_max: 200\n".encode("utf-16"), "UTF-8"),
    (b"lr: .nan\n", "'lr' is NaN"),
])
def test_bad_yaml_files_are_one_line(capsys, tmp_path, content, words):
    path = tmp_path / "extra.yaml"
    path.write_bytes(content)
    assert words in fails(capsys, *BASE, str(path))


# ---- 5. host envs, results paths, sweeps, tensorboard ----------------------------------------------

@pytest.mark.parametrize("tokens, words", [
    (["env_args.key=lbforaging:Foraging-9x9-nope-v3"], "Foraging-9x9-nope"),
    (["env_args.key=nosuchpkg:Env-v0"], "nosuchpkg"),
    (["env_args.key=lbforaging:Foraging-8x8-2p-3f-v3", "env_args.frobnicate=1"], "frobnicate"),
])
def test_host_env_errors_are_folded_into_one_line(capsys, tokens, words):
    line = fails(capsys, "--config=qmix", "--env-config=gymma", "with", "env_args.time_limit=25", *tokens)
    assert words in line


def test_pettingzoo_error_is_one_line(capsys):
    assert "pettingzoo" in fails(capsys, "--config=qmix", "--env-config=pettingzoo")


@pytest.mark.parametrize("kind", ["under a file", "a file", "empty"])
def test_unusable_results_paths_are_refused_up_front(capsys, tmp_path, kind):
    (tmp_path / "f").write_text("x")
    path = {"under a file": f"{tmp_path}/f/results", "a file": f"{tmp_path}/f", "empty": ""}[kind]
    line = fails(capsys, *BASE, f"local_results_path={path}")
    assert "local_results_path" in line
    assert not glob.glob(os.path.join(tmp_path, "**", "sacred"), recursive=True)


def test_a_deleted_run_folder_never_reuses_an_old_models_folder(tmp_path):
    first = run_tiny("qmix", "matrix_game", tmp_path, save_model=True, t_max=30)
    shutil.rmtree(first)  # the Sacred folder deleted, its models kept
    second = run_tiny("qmix", "matrix_game", tmp_path, save_model=True, t_max=30)
    assert os.path.basename(second) != os.path.basename(first)
    assert len(os.listdir(os.path.join(tmp_path, "models", "qmix", "matrix_game"))) == 2


def test_sweeps_started_in_the_same_second_get_distinct_folders(tmp_path):
    from marlkit.sweep import claim_folder

    base = str(tmp_path / "sweeps" / "20260101-120000")
    assert [os.path.basename(claim_folder(base)) for _ in range(3)] == \
        ["20260101-120000", "20260101-120000-2", "20260101-120000-3"]


def test_use_tensorboard_writes_events(tmp_path):
    proc = subprocess.run([sys.executable, "run.py", *BASE, "use_tensorboard=True", "log_interval=20",
                           f"local_results_path={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert glob.glob(os.path.join(tmp_path, "tb_logs", "qmix", "matrix_game", "1", "events.out.tfevents.*"))


def test_memory_estimate_counts_the_buffer():
    info = dict(n_agents=2, n_actions=3, obs_shape=5, state_shape=7, episode_limit=9)
    parts = limits.estimate(dict(buffer_size=10, batch_size=2, batch_size_run=1, hidden_dim=4), info)
    per_step = 4 * (7 + 2 * 5 + 2 + 1) + 2 + 2 * (8 + 12 + 12)
    assert parts["replay buffer"] == 10 * 10 * per_step
    assert parts["rollout hidden states"] == 16 * 1 * 2 * 4
