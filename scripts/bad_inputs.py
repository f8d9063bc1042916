#!/usr/bin/env python
"""Bad-input sweep: tries many wrong inputs on ``run.py`` and classifies each outcome.

Every case is one command line (``--config=qmix --env-config=matrix_game with t_max=200 ...`` unless
it says otherwise), run in a forked child of this process (the imports are paid once). The outcome is

- ``clean``: non-zero exit and exactly one ``error: ...`` line on stderr (what the suite promises);
- ``traceback``: a Python traceback, or an error spread over several lines;
- ``accepted``: exit code 0 (silently accepted when the case expects a refusal);
- ``timeout``: the child did not finish in time (killed).

Cases marked ``accept`` must run (e.g. ``lr=5e-4``); for them ``accepted`` is the good outcome.
Usage: ``OMP_NUM_THREADS=1 nice python scripts/bad_inputs.py [--root DIR] [--only WORD] [--out table.md]``
(``--root`` runs another checkout's src/, e.g. the code before a fix).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time

BASE = ["--config=qmix", "--env-config=matrix_game", "with", "t_max=200", "test_interval=100", "log_interval=100",
        "test_nepisode=2", "batch_size=4", "buffer_size=16"]
MEMORY_LIMIT = 6 * 2**30  # address-space cap of each child, so a huge allocation fails instead of swapping


def case(name, tokens=(), expect="refuse", argv=None, setup=None, group="", must_say=None):
    """One input. ``must_say``: a word an accepted run must print (e.g. the checkpoint fallback line)."""
    return dict(name=name, tokens=list(tokens), expect=expect, argv=argv, setup=setup, group=group, must_say=must_say)


def on(alg, env, *tokens):
    """argv of a case on another algorithm or env (tiny settings first, the case's tokens win)."""
    tiny = ("t_max=200", "test_interval=1000", "log_interval=1000", "test_nepisode=1", "batch_size=4", "buffer_size=16")
    return ["--config=" + alg, "--env-config=" + env, "with", *tiny, *tokens]


# ---- checkpoint corruptions (applied to a copy of a real checkpoint's newest step) --------------

def _newest(models):
    steps = sorted((d for d in os.listdir(models) if d.isdigit()), key=int)
    return os.path.join(models, steps[-1])


def truncate(name, keep=0.5):
    def do(step):
        path = os.path.join(step, name)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(int(size * keep))
    return do


def empty(name):
    return truncate(name, 0.0)


def random_bytes(name):
    def do(step):
        with open(os.path.join(step, name), "wb") as f:
            f.write(os.urandom(4096))
    return do


def flip_byte(name):
    def do(step):
        path = os.path.join(step, name)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
    return do


def remove(name):
    def do(step):
        os.remove(os.path.join(step, name))
    return do


def pickled_object(name):
    def do(step):
        import collections

        import torch as th
        th.save({"signature": collections.OrderedDict(a=1), "payload": argparse.Namespace(x=1)}, os.path.join(step, name))
    return do


def foreign_dict(name):
    def do(step):
        import torch as th
        th.save({"hello": th.zeros(3)}, os.path.join(step, name))
    return do


def directory_instead(name):
    def do(step):
        os.remove(os.path.join(step, name))
        os.mkdir(os.path.join(step, name))
    return do


def chain(*fns):
    def do(step):
        for fn in fns:
            fn(step)
    return do


def partial_newest(models):
    """A newer step folder with only some files, as a save killed half-way leaves behind."""
    newest = _newest(models)
    newer = os.path.join(models, str(int(os.path.basename(newest)) + 1000))
    os.mkdir(newer)
    shutil.copy(os.path.join(newest, "agent.th"), newer)


def leftover_tmp(models):
    os.mkdir(os.path.join(models, ".tmp-999999"))


def ckpt_case(name, corrupt, evaluate=False, fallback=False):
    """Resume (or evaluate) from a corrupted copy of the sweep's reference checkpoint. The corrupted
    newest step is named directly (checkpoint_path=<models>/<step>: must be refused), or with
    ``fallback`` the models folder is named (the newest complete older step must be used, saying so)."""
    def setup(tmp, reference):
        models = os.path.join(tmp, "models_copy")
        shutil.copytree(reference, models)
        newest = _newest(models)
        corrupt(newest)
        return models if fallback else newest
    tokens = ["checkpoint_path={models}", *(["evaluate=True"] if evaluate else [])]
    label = name + (" (evaluate=True)" if evaluate else "") + (", models folder: falls back" if fallback else "")
    return case(label, tokens, "accept" if fallback else "refuse", setup=setup, group="checkpoint",
                must_say="skipped" if fallback else None)


def models_case(name, change, expect="accept", must_say=None):
    """A case on a copy of the whole reference models folder, changed by ``change(models)``."""
    def setup(tmp, reference):
        models = os.path.join(tmp, "models_copy")
        shutil.copytree(reference, models)
        change(models)
        return models
    return case(name, ["checkpoint_path={models}"], expect, setup=setup, group="checkpoint", must_say=must_say)


def path_under_file(tmp, reference):
    path = os.path.join(tmp, "a_file")
    open(path, "w").close()
    return path


def write_file(content: bytes, suffix=".yaml"):
    def setup(tmp, reference):
        path = os.path.join(tmp, "extra" + suffix)
        with open(path, "wb") as f:
            f.write(content)
        return path
    return setup


def make_dir(tmp, reference):
    path = os.path.join(tmp, "dir.yaml")
    os.mkdir(path)
    return path


def cases():
    c = []
    g = "cli"
    c += [case("unknown --config", argv=["--config=qmx", "--env-config=matrix_game"], group=g),
          case("unknown --env-config", argv=["--config=qmix", "--env-config=nope"], group=g),
          case("missing --env-config", argv=["--config=qmix"], group=g),
          case("missing --config", argv=["--env-config=matrix_game"], group=g),
          case("--config without value", argv=["--env-config=matrix_game", "--config"], group=g),
          case("stray argument", argv=["--config=qmix", "--env-config=matrix_game", "t_max=5"], group=g),
          case("token without =", ["t_max"], group=g),
          case("empty key", ["=5"], group=g),
          case("empty dotted part", ["env_args..payoff=1"], group=g),
          case("sub-key of a number", ["t_max.x=1"], group=g),
          case("unknown key", ["batch_sise=4"], group=g),
          case("unknown env_args key", ["env_args.payof=[[1]]"], group=g),
          case("env_args not a mapping", ["env_args=5"], group=g)]
    g = "types and ranges"
    c += [case(t, [t], group=g) for t in (
        "lr=fast", "batch_size=abc", "t_max=abc", "t_max=-1", "t_max=0", "t_max=2.5", "gamma=1.5", "gamma=-0.1",
        "epsilon_start=-0.1", "epsilon_finish=2", "runner=parallell", "mixer=qmixx", "learner=nope", "mac=nope",
        "agent=nope", "action_selector=nope", "evaluate=True", "seed=-1", "seed=abc", "seed=99999999999",
        "hidden_dim=0", "hidden_dim=1.5", "use_cuda=maybe", "lr=[1]", "batch_size_run=0", "buffer_size=0",
        "test_nepisode=0", "save_model_interval=0", "test_interval=0", "log_interval=0", "num_circle=0", "lr=0",
        "lr=-1e-3", "grad_norm_clip=-1", "mixing_embed_dim=0", "epsilon_anneal_time=-5",
        "target_update_interval_or_tau=-1", "checkpoint_buffer=maybe", "save_model=maybe")]
    c += [case("batch_size > buffer_size", ["batch_size=64", "buffer_size=32"], group=g),
          case("episode runner with 4 envs", ["batch_size_run=4", "runner=episode"], group=g),
          case("epsilon_finish > epsilon_start", ["epsilon_start=0.5", "epsilon_finish=0.9"], group=g)]
    g = "NaN and infinity"
    c += [case(t, [t], group=g) for t in (
        "lr=.nan", "lr=.inf", "lr=-.inf", "gamma=.nan", "td_lambda=.nan", "epsilon_start=.nan", "epsilon_finish=.nan",
        "grad_norm_clip=.inf", "grad_norm_clip=.nan", "target_update_interval_or_tau=.nan", "epsilon_anneal_time=.inf",
        "t_max=.inf", "batch_size=.nan", "evaluation_epsilon=.nan", "optim_alpha=.nan", "optim_eps=.inf",
        "td_lambda=.inf", "env_args.payoff=[[.nan,0],[0,1]]", "env_args.payoff=[[.inf,0],[0,1]]",
        "env_args.payoff=[[-.inf,0],[0,1]]", "env_args.payoff=[[1e40,0],[0,1]]", "env_args.payoff=[[1.0e+39,0],[0,1]]",
        "lr=NaN", "lr=inf", "gamma=nan")]
    c += [case("predator_prey capture_reward=.nan", on("qmix", "predator_prey", "env_args.capture_reward=.nan"), group=g),
          case("predator_prey miscapture_punishment=-.inf", on("qmix", "predator_prey", "env_args.miscapture_punishment=-.inf"), group=g),
          case("predator_prey p_prey_rest=.nan", on("qmix", "predator_prey", "env_args.p_prey_rest=.nan"), group=g),
          case("aloha arrival_prob=.nan", on("qmix", "aloha", "env_args.arrival_prob=.nan"), group=g),
          case("aloha success_reward=.inf", on("qmix", "aloha", "env_args.success_reward=.inf"), group=g),
          case("coordination_game success_prob=.nan", on("qmix", "coordination_game", "env_args.success_prob=.nan"), group=g),
          case("smax reward_scale=.nan", on("qmix", "smax", "env_args.reward_scale=.nan"), group=g),
          case("remix w_min=.nan", on("remix", "matrix_game", "w_min=.nan", "batch_size=4", "buffer_size=16", "batch_size_run=1", "runner=episode"), group=g)]
    g = "meaningless values"
    c += [case(t, [t], group=g) for t in (
        "epsilon_anneal_time=0", "target_update_interval_or_tau=0", "load_step=-5", "load_step=abc",
        "env_args.payoff=[]", "env_args.payoff=[[1,2],[3]]", "env_args.payoff=abc", "env_args.payoff=[[[a]]]",
        "env_args.payoff=5", "env_args.payoff=[[true,false],[false,true]]")]
    c += [case("predator_prey n_agents=0", on("qmix", "predator_prey", "env_args.n_agents=0"), group=g),
          case("predator_prey episode_limit=0", on("qmix", "predator_prey", "env_args.episode_limit=0"), group=g),
          case("predator_prey grid_height=1", on("qmix", "predator_prey", "env_args.grid_height=1"), group=g),
          case("predator_prey agents_needed=5", on("qmix", "predator_prey", "env_args.agents_needed=5"), group=g),
          case("predator_prey view_radius=-1", on("qmix", "predator_prey", "env_args.view_radius=-1"), group=g),
          case("aloha capacity=0", on("qmix", "aloha", "env_args.capacity=0"), group=g),
          case("aloha neighbourhood=ring", on("qmix", "aloha", "env_args.neighbourhood=ring"), group=g),
          case("coordination_game n=1", on("qmix", "coordination_game", "env_args.n=1"), group=g),
          case("coordination_game n=50", on("qmix", "coordination_game", "env_args.n=50"), group=g),
          case("smax map_name=3mm", on("qmix", "smax", "env_args.map_name=3mm"), group=g),
          case("smax reward_scale=-1", on("qmix", "smax", "env_args.reward_scale=-1"), group=g),
          case("sc2 without StarCraft II", on("qmix", "sc2"), group=g)]
    g = "scientific notation (must be accepted)"
    c += [case(t, [t], "accept", group=g) for t in (
        "lr=5e-4", "t_max=2e2", "lr=1E-3", "gamma=9.9e-1", "test_interval=1e2", "buffer_size=1.6e1", "t_max=2.05e2")]
    c += [case("YAML file with lr: 5e-4", ["{file}"], "accept", setup=write_file(b"lr: 5e-4\nt_max: 2e2\n"), group=g)]
    g = "sizes that cannot fit in memory"
    c += [case(t, [t], group=g) for t in (
        "hidden_dim=1000000", "mixing_embed_dim=10000000", "hypernet_embed=100000000", "buffer_size=1000000000")]
    c += [case("batch_size_run=1000000", ["batch_size_run=1000000", "runner=parallel"], group=g)]
    c += [case("predator_prey buffer_size=10000000", on("qmix", "predator_prey", "buffer_size=10000000"), group=g),
          case("predator_prey grid 1000x1000", on("qmix", "predator_prey", "env_args.grid_height=1000", "env_args.grid_width=1000"), group=g),
          case("predator_prey episode_limit=1000000000", on("qmix", "predator_prey", "env_args.episode_limit=1000000000"), group=g),
          case("predator_prey view_radius=500", on("qmix", "predator_prey", "env_args.view_radius=500", "env_args.grid_height=1000", "env_args.grid_width=1000"), group=g),
          case("aloha rows=1000 cols=1000", on("qmix", "aloha", "env_args.rows=1000", "env_args.cols=1000"), group=g),
          case("aloha episode_limit=1000000000", on("qmix", "aloha", "env_args.episode_limit=1000000000"), group=g),
          case("coordination_game episode_limit=1000000000", on("qmix", "coordination_game", "env_args.episode_limit=1000000000"), group=g)]
    g = "YAML files"
    c += [case("non-UTF-8 YAML file", ["{file}"], setup=write_file("lr: 0.001 # caf\xe9\n".encode("latin-1")), group=g),
          case("binary file as with file.yaml", ["{file}"], setup=write_file(bytes(range(256)) * 8), group=g),
          case("YAML file holding a list", ["{file}"], setup=write_file(b"- 1\n- 2\n"), group=g),
          case("malformed YAML file", ["{file}"], setup=write_file(b"t_max: : 3\n"), group=g),
          case("YAML file with unknown key", ["{file}"], setup=write_file(b"t_maxx: 3\n"), group=g),
          case("YAML file with lr: .nan", ["{file}"], setup=write_file(b"lr: .nan\n"), group=g),
          case("YAML file with tab indentation", ["{file}"], setup=write_file(b"env_args:\n\tpayoff: 1\n"), group=g),
          case("missing YAML file", ["{tmp}/nope.yaml"], group=g),
          case("directory named .yaml", ["{file}"], setup=make_dir, group=g),
          case("empty YAML file", ["{file}"], "accept", setup=write_file(b""), group=g),
          case("UTF-16 YAML file", ["{file}"], setup=write_file("t_max: 200\n".encode("utf-16")), group=g)]
    g = "checkpoints"
    for evaluate in (False, True):
        c += [ckpt_case("suite_state.pt truncated", truncate("suite_state.pt"), evaluate=evaluate),
              ckpt_case("suite_state.pt emptied", empty("suite_state.pt"), evaluate=evaluate),
              ckpt_case("suite_state.pt random bytes", random_bytes("suite_state.pt"), evaluate=evaluate),
              ckpt_case("agent.th truncated", truncate("agent.th"), evaluate=evaluate),
              ckpt_case("mixer.th truncated", truncate("mixer.th"), evaluate=evaluate),
              ckpt_case("opt.th truncated + agent.th missing", chain(truncate("opt.th"), remove("agent.th")), evaluate=evaluate),
              ckpt_case("agent.th random bytes", random_bytes("agent.th"), evaluate=evaluate),
              ckpt_case("agent.th one byte flipped", flip_byte("agent.th"), evaluate=evaluate),
              ckpt_case("suite_state.pt needs arbitrary unpickling", pickled_object("suite_state.pt"), evaluate=evaluate)]
    c += [ckpt_case("opt.th truncated", truncate("opt.th")),
          ckpt_case("opt.th emptied", empty("opt.th")),
          ckpt_case("mixer.th emptied", empty("mixer.th")),
          ckpt_case("agent.th missing", remove("agent.th")),
          ckpt_case("suite_state.pt missing (weights only, no flag)", remove("suite_state.pt")),
          ckpt_case("suite_state.pt foreign dict", foreign_dict("suite_state.pt")),
          ckpt_case("suite_state.pt one byte flipped", flip_byte("suite_state.pt")),
          ckpt_case("agent.th is a directory", directory_instead("agent.th")),
          ckpt_case("suite_state.pt truncated", truncate("suite_state.pt"), fallback=True),
          ckpt_case("agent.th random bytes", random_bytes("agent.th"), fallback=True),
          ckpt_case("mixer.th one byte flipped", flip_byte("mixer.th"), fallback=True),
          models_case("newest step half-written (no manifest): falls back", partial_newest, must_say="skipped"),
          models_case("leftover temporary folder of a killed save", leftover_tmp),
          case("checkpoint_path missing", ["checkpoint_path={tmp}/nope"], group=g),
          case("checkpoint_path is a file", ["checkpoint_path={file}"], setup=write_file(b"x", ".txt"), group=g),
          case("checkpoint_path empty folder", ["checkpoint_path={tmp}"], group=g),
          case("evaluate=True, checkpoint_path empty folder", ["checkpoint_path={tmp}", "evaluate=True"], group=g),
          case("checkpoint of another algorithm", on("vdn", "matrix_game", "checkpoint_path={models}", "batch_size=4", "buffer_size=16"),
               setup=lambda tmp, ref: ref, group=g),
          case("checkpoint of another payoff", ["checkpoint_path={models}", "env_args.payoff=[[1,0],[0,1]]"],
               setup=lambda tmp, ref: ref, group=g),
          case("resume from a good checkpoint", ["checkpoint_path={models}", "t_max=400"], "accept",
               setup=lambda tmp, ref: ref, group=g),
          case("evaluate a good checkpoint", ["checkpoint_path={models}", "evaluate=True"], "accept",
               setup=lambda tmp, ref: ref, group=g)]
    g = "host envs"
    c += [case("gymma unknown env id", on("qmix", "gymma", "env_args.key=lbforaging:Foraging-9x9-nope-v3", "env_args.time_limit=25"), group=g),
          case("gymma unknown package prefix", on("qmix", "gymma", "env_args.key=nosuchpkg:Env-v0", "env_args.time_limit=25"), group=g),
          case("gymma unknown env argument", on("qmix", "gymma", "env_args.key=lbforaging:Foraging-8x8-2p-3f-v3", "env_args.time_limit=25", "env_args.frobnicate=1"), group=g),
          case("gymma without key", on("qmix", "gymma", "env_args.key=null"), group=g),
          case("gymma key is a number", on("qmix", "gymma", "env_args.key=5"), group=g),
          case("pettingzoo default", on("qmix", "pettingzoo"), group=g),
          case("pettingzoo unknown key", on("qmix", "pettingzoo", "env_args.key=nope_v1"), group=g),
          case("overcooked", on("qmix", "overcooked"), group=g),
          case("pressureplate bad key", on("qmix", "pressureplate", "env_args.key=nope"), group=g),
          case("capturetarget bad key", on("qmix", "capturetarget", "env_args.key=nope"), group=g)]
    g = "results paths"
    c += [case("local_results_path under a regular file", ["local_results_path={file}/results"], setup=path_under_file, group=g),
          case("local_results_path empty", ["local_results_path="], group=g),
          case("local_results_path is a regular file", ["local_results_path={file}"], setup=path_under_file, group=g),
          case("local_results_path under /proc", ["local_results_path=/proc/marlkit_results"], group=g),
          case("local_results_path under /dev/null", ["local_results_path=/dev/null/results"], group=g)]
    g = "options"
    c += [case("use_tensorboard=True", ["use_tensorboard=True"], "accept", group=g),
          case("save_model=True (good run)", ["save_model=True", "save_model_interval=100"], "accept", group=g),
          case("checkpoint_keep=0 (keep all)", ["checkpoint_keep=0", "save_model=True"], "accept", group=g),
          case("checkpoint_keep=-1", ["checkpoint_keep=-1"], group=g),
          case("checkpoint_buffer=last", ["checkpoint_buffer=last", "save_model=True"], "accept", group=g)]
    return c


# ---- running ------------------------------------------------------------------------------------

def run_case(spec, tmp, reference, timeout):
    """Fork, run the CLI on the case's argv in the child; returns (outcome, rc, first stderr line)."""
    workdir = tempfile.mkdtemp(dir=tmp)
    fmt = {"tmp": workdir, "models": reference, "file": ""}
    if spec["setup"] is not None:
        made = spec["setup"](workdir, reference)
        fmt["file"] = fmt["models"] = made
    argv, tokens = spec["argv"], spec["tokens"]
    if argv is None:
        argv = list(tokens) if tokens and tokens[0].startswith("--config") else BASE + list(tokens)
    argv = [a.format(**fmt) for a in argv]
    if not any(a.startswith("local_results_path=") for a in argv):
        argv += ([] if "with" in argv else ["with"]) + [f"local_results_path={workdir}/results"]
    out, err = os.path.join(workdir, "stdout"), os.path.join(workdir, "stderr")
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            os.chdir(workdir)
            fo, fe = os.open(out, os.O_WRONLY | os.O_CREAT), os.open(err, os.O_WRONLY | os.O_CREAT)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            from marlkit.cli import main
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 1)
    start = time.time()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", None, "", argv
        time.sleep(0.05)
    rc = os.waitstatus_to_exitcode(status)
    stdout, stderr = open(out, errors="replace").read(), open(err, errors="replace").read()
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if rc == 0:
        outcome = "accepted" if not spec["must_say"] or spec["must_say"] in stdout + stderr else "silent"
    elif "Traceback" not in stdout + stderr and len(lines) == 1 and lines[0].startswith("error: "):
        outcome = "clean"
    else:
        outcome = "traceback"
    shown = lines[0] if outcome == "clean" else (lines[-1] if lines else f"exit {rc}")
    shutil.rmtree(workdir, ignore_errors=True)
    return outcome, rc, shown[:300], argv


def reference_checkpoint(tmp):
    """A real checkpoint folder (several steps) of the base run, made in a child process."""
    root = os.path.join(tmp, "reference")
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(os.path.join(tmp, "reference.log"), os.O_WRONLY | os.O_CREAT)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            from marlkit.cli import main
            os._exit(main(BASE + ["save_model=True", "save_model_interval=100", f"local_results_path={root}"]))
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("could not make the reference checkpoint: " + open(os.path.join(tmp, "reference.log")).read()[-2000:])
    runs = os.path.join(root, "models", "qmix", "matrix_game")
    return os.path.join(runs, sorted(os.listdir(runs))[0])


def verdict(spec, outcome):
    if outcome == "silent":
        return "fallback not reported"
    if spec["expect"] == "accept":
        return "ok" if outcome == "accepted" else "wrongly refused" if outcome == "clean" else outcome
    return {"clean": "ok", "accepted": "silently accepted"}.get(outcome, outcome)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--only", default=None, help="run only cases whose name contains this")
    p.add_argument("--out", default=None, help="write the markdown table here")
    p.add_argument("--json", default=None, help="write per-case results here")
    p.add_argument("--timeout", type=float, default=240)
    p.add_argument("--from-json", nargs="+", default=None,
                   help="no runs: the tables of saved --json results (a later file replaces a group's rows)")
    a = p.parse_args()
    if a.from_json:
        results = merged(a.from_json)
        print(summary(results) + "\n\n" + details(results))
        return
    root = os.path.abspath(a.root)
    sys.path.insert(0, os.path.join(root, "src"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings
    warnings.filterwarnings("ignore")
    import marlkit.cli  # noqa: F401  (import once, before forking)
    import marlkit.experiment  # noqa: F401
    import marlkit.config as cfg
    cfg.config_files("algs")
    specs = [s for s in cases() if a.only is None or a.only in s["name"] or a.only in s["group"]]
    tmp = tempfile.mkdtemp(prefix="bad_inputs_")
    try:
        reference = reference_checkpoint(tmp)
        results = []
        for i, spec in enumerate(specs, 1):
            t0 = time.time()
            outcome, rc, line, argv = run_case(spec, tmp, reference, a.timeout)
            v = verdict(spec, outcome)
            results.append(dict(name=spec["name"], group=spec["group"], expect=spec["expect"], outcome=outcome,
                                verdict=v, rc=rc, line=line, seconds=round(time.time() - t0, 1)))
            print(f"[{i}/{len(specs)}] {v:18s} {spec['group']}: {spec['name']}  ->  {line}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = summary(results)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n\n" + details(results) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def merged(paths):
    """Rows of several --json files for the current cases, in their order; a later file's row of a
    case replaces an earlier one (e.g. a rerun of one group)."""
    rows = {}
    for path in paths:
        with open(path) as f:
            rows.update({(r["group"], r["name"]): r for r in json.load(f)})
    keys = [(c["group"], c["name"]) for c in cases()]
    return [rows[k] for k in keys if k in rows]


def summary(results):
    refuse = [r for r in results if r["expect"] == "refuse"]
    accept = [r for r in results if r["expect"] == "accept"]
    count = lambda rs, o: sum(r["outcome"] == o for r in rs)  # noqa: E731
    rows = ["| inputs | tried | clean one-line refusal | traceback or multi-line | silently accepted | timeout |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| must be refused | {len(refuse)} | {count(refuse, 'clean')} | {count(refuse, 'traceback')} | "
            f"{count(refuse, 'accepted')} | {count(refuse, 'timeout')} |",
            f"| must be accepted | {len(accept)} | {count(accept, 'clean')} (wrongly refused) | {count(accept, 'traceback')} | "
            f"{count(accept, 'accepted')} (ok) | {count(accept, 'timeout')} |"]
    return "\n".join(rows)


def details(results):
    rows = ["| group | input | expected | outcome | first line |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        line = r["line"].replace("|", "\\|")
        rows.append(f"| {r['group']} | {r['name'].replace('|', '/')} | {r['expect']} | {r['verdict']} | {line} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
