"""marlkit.sweep: job expansion, commands, dry run, the local and (stand-in) Ray runners, and one
real two-job sweep on the matrix game."""
import json
import os
import shlex
import sys
import types

import pytest

from marlkit import REPO_ROOT, analysis, sweep
from marlkit.errors import SuiteError

TINY = ["t_max=200", "test_interval=100", "log_interval=100", "runner_log_interval=100",
        "learner_log_interval=100", "batch_size=8", "test_nepisode=8"]


def test_expand_configs_x_envs_x_seeds():
    jobs = sweep.expand(["qmix", "vdn"], ["matrix_game", "sc2"], [1, 2, 3], ["t_max=100"])
    assert len(jobs) == 12
    assert [(j.config, j.env_config, j.seed) for j in jobs[:4]] == [
        ("qmix", "matrix_game", 1), ("qmix", "matrix_game", 2), ("qmix", "matrix_game", 3), ("qmix", "sc2", 1)]
    assert jobs[-1] == sweep.Job("vdn", "sc2", 3, ("t_max=100",))
    assert len({j.name for j in jobs}) == 12


def test_command_and_log_path():
    job = sweep.Job("qmix", "matrix_game", 2, ("t_max=100", "env_args.payoff=[[1, 0], [0, 1]]"))
    assert job.command("/py") == ["/py", "run.py", "--config=qmix", "--env-config=matrix_game", "with", "seed=2",
                                  "t_max=100", "env_args.payoff=[[1, 0], [0, 1]]"]
    assert job.command()[0] == sys.executable
    assert job.log_path("/r/sweeps/s") == "/r/sweeps/s/qmix_matrix_game_seed2.log"


def test_parse_args_with_tokens_and_seeds():
    args, extra = sweep.parse_args(["--configs", "qmix", "vdn", "--env-configs", "matrix_game", "--n-seeds", "3",
                                    "--workers", "2", "--name", "s1", "with", "t_max=50", "lr=0.001"])
    assert args.configs == ["qmix", "vdn"] and args.env_configs == ["matrix_game"]
    assert args.seeds == [1, 2, 3] and args.workers == 2 and args.name == "s1"
    assert extra == ["t_max=50", "lr=0.001"]
    args, extra = sweep.parse_args(["--configs", "qmix,vdn", "--env-configs", "matrix_game", "--seeds", "7", "9"])
    assert args.configs == ["qmix", "vdn"] and args.seeds == [7, 9] and extra == []
    assert args.workers == sweep.default_workers() and args.name
    args, _ = sweep.parse_args(["--configs", "qmix", "--env-configs", "matrix_game"])
    assert args.seeds == list(sweep.DEFAULT_SEEDS)


@pytest.mark.parametrize("argv, message", [
    (["--env-configs", "matrix_game"], "--configs"),
    (["--configs", "qmix", "--env-configs", "m", "--seeds", "1", "--n-seeds", "2"], "not allowed with"),
    (["--configs", "qmix", "--env-configs", "m", "with", "seed=3"], "--seeds"),
    (["--configs", "qmix", "--env-configs", "m", "with", "t_max"], "key=value"),
    (["--configs", "qmix", "--env-configs", "m", "--workers", "0"], "--workers"),
])
def test_parse_args_errors(argv, message):
    with pytest.raises(SuiteError, match=message):
        sweep.parse_args(argv)


def test_results_path_and_child_env(tmp_path):
    assert sweep.results_path([f"local_results_path={tmp_path}"]) == str(tmp_path)
    assert sweep.results_path(["local_results_path=res2"]) == os.path.join(REPO_ROOT, "res2")
    assert sweep.results_path([]) == os.path.join(REPO_ROOT, sweep._default_results_path())
    env = sweep.child_env({"PATH": "/bin", "MKL_NUM_THREADS": "4"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "4"}


def test_job_threads_follow_torch_threads():
    assert sweep.job_threads(sweep.expand(["qmix"], ["smax"], [1], ["t_max=10"])) == "1"
    jobs = sweep.expand(["qmix"], ["smax"], [1, 2], ["torch_threads=2"])
    assert sweep.job_threads(jobs) == "2" and sweep.child_env({}, threads="2")["OMP_NUM_THREADS"] == "2"


def test_dry_run_prints_commands(tmp_path, capsys):
    res = tmp_path / "res"
    code = sweep.main(["--configs", "qmix", "vdn", "--env-configs", "matrix_game", "--seeds", "1", "2",
                       "--name", "dry", "--dry-run", "with", f"local_results_path={res}", "t_max=100"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("# sweep 'dry': 4 jobs") and str(res / "sweeps" / "dry") in lines[0]
    assert lines[1] == f"cd {shlex.quote(REPO_ROOT)}"
    commands = [shlex.split(line) for line in lines[2:]]
    assert len(commands) == 4
    assert commands[0] == [sys.executable, "run.py", "--config=qmix", "--env-config=matrix_game", "with", "seed=1",
                           f"local_results_path={res}", "t_max=100"]
    assert commands[3][2:6] == ["--config=vdn", "--env-config=matrix_game", "with", "seed=2"]
    assert not res.exists()


def test_unknown_config_name_is_one_error_line(capsys):
    code = sweep.main(["--configs", "qmixx", "--env-configs", "matrix_game", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "qmix" in err


def test_ray_missing_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = sweep.main(["--configs", "qmix", "--env-configs", "matrix_game", "--ray-address", "auto",
                       "with", f"local_results_path={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "pip install ray" in err
    assert not (tmp_path / "sweeps").exists()


def test_local_runner_progress_and_failures(tmp_path):
    jobs = sweep.expand(["a"], ["e"], [1, 2, 3])
    lines = []
    stream = types.SimpleNamespace(write=lines.append, flush=lambda: None)
    results = sweep.run_local(jobs, str(tmp_path), 2, sweep.Progress(3, stream), python="/bin/echo", poll=0.01)
    assert sorted(r.job.seed for r in results) == [1, 2, 3] and all(r.ok for r in results)
    progress = [line for line in "".join(lines).splitlines() if line]
    assert progress[-1].startswith("[3/3] ok") and "failures 0" in progress[-1] and "ETA" in progress[-1]
    log = open(jobs[0].log_path(str(tmp_path))).read()
    assert "run.py --config=a --env-config=e with seed=1" in log.splitlines()[1]  # echo's output

    failed = sweep.run_local(jobs[:1], str(tmp_path), 1, sweep.Progress(1, stream), python="/bin/false", poll=0.01)
    assert failed[0].returncode == 1
    report = []
    n = sweep.summary("s", failed, 1.0, str(tmp_path), types.SimpleNamespace(write=report.append))
    assert n == 1 and jobs[0].log_path(str(tmp_path)) in "".join(report)


def test_failed_job_gives_exit_code_1_naming_logs(tmp_path, capsys, monkeypatch):
    def fake_local(jobs, sweep_dir, workers, progress, python=None):
        results = [sweep.Result(j, 0 if j.seed == 1 else 3, 0.5, j.log_path(sweep_dir)) for j in jobs]
        for r in results:
            progress.update(r)
        return results

    monkeypatch.setattr(sweep, "run_local", fake_local)
    code = sweep.main(["--configs", "qmix", "--env-configs", "matrix_game", "--n-seeds", "2", "--name", "f",
                       "with", f"local_results_path={tmp_path}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1/2 jobs succeeded" in out and str(tmp_path / "sweeps" / "f" / "qmix_matrix_game_seed2.log") in out
    record = json.load(open(tmp_path / "sweeps" / "f" / "sweep.json"))
    assert [j["returncode"] for j in record["jobs"]] == [0, 3]


class FakeRay(types.ModuleType):
    """Just enough of Ray's API for run_ray: tasks run at once, in this process."""

    def __init__(self):
        super().__init__("ray")
        self.calls = []

    def init(self, address=None, **kwargs):
        self.calls.append(("init", address))

    def shutdown(self):
        self.calls.append(("shutdown",))

    def remote(self, fn):
        ray = self

        class Remote:
            def options(self, **opts):
                ray.calls.append(("options", opts))
                return self

            def remote(self, *args):
                return ("ref", len(ray.calls), fn(*args))

        return Remote()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref[2]

    def cancel(self, ref, force=False):
        pass


def test_ray_runner_with_stand_in(tmp_path, monkeypatch):
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    jobs = sweep.expand(["a", "b"], ["e"], [1])
    lines = []
    stream = types.SimpleNamespace(write=lines.append, flush=lambda: None)
    results = sweep.run_ray(jobs, str(tmp_path / "logs"), "ray://head:10001", sweep.Progress(2, stream),
                            cpus_per_job=2, python="/bin/echo")
    assert [r.ok for r in results] == [True, True]
    assert fake.calls[0] == ("init", "ray://head:10001") and fake.calls[-1] == ("shutdown",)
    assert ("options", {"num_cpus": 2, "max_retries": 0}) in fake.calls
    assert "--config=b" in open(jobs[1].log_path(str(tmp_path / "logs"))).read()
    assert "[2/2] ok" in "".join(lines)
    missing = sweep.run_ray(jobs[:1], str(tmp_path), "auto", sweep.Progress(1, stream), python="/no/such/python")
    assert missing[0].returncode == 127 and "does not exist" in missing[0].tail


def test_real_sweep_two_jobs(tmp_path, capsys):
    """Two tiny QMIX runs on the matrix game, in parallel, into one results folder."""
    code = sweep.main(["--configs", "qmix", "--env-configs", "matrix_game", "--seeds", "1", "2", "--workers", "2",
                       "--name", "tiny", "with", f"local_results_path={tmp_path}", *TINY])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[2/2]" in out and "2/2 jobs succeeded" in out
    base = tmp_path / "sacred" / "qmix" / "matrix_game"
    run_dirs = sorted(d for d in os.listdir(base) if d.isdigit())
    assert len(run_dirs) == 2
    seeds = sorted(json.load(open(base / d / "config.json"))["seed"] for d in run_dirs)
    assert seeds == [1, 2]
    assert all(json.load(open(base / d / "run.json"))["status"] == "COMPLETED" for d in run_dirs)
    logs = tmp_path / "sweeps" / "tiny"
    assert sorted(os.listdir(logs)) == ["qmix_matrix_game_seed1.log", "qmix_matrix_game_seed2.log", "sweep.json"]
    # and the analysis reads what the sweep produced
    assert analysis.main(["--results", str(tmp_path), "--out", str(tmp_path / "plot.png")]) == 0
    assert "| qmix | 2 |" in capsys.readouterr().out and (tmp_path / "plot.png").is_file()
