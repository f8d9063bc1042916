"""One run: config -> Sacred run -> the training loop (pymarl's run_sequential), or evaluation.

The whole data path of docs/DESIGN.md section 4 is in ``run_sequential``: runner -> EpisodeBatch ->
ReplayBuffer -> learner.train -> logger, with periodic tests and checkpoints. The suite owns this
loop (the host's hard-codes its batch scheme) but builds the host's buffer, controllers, agents
and learners, and plugin ones, by name from the registry.
"""
from __future__ import annotations

import logging
import os
import random
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch as th

from . import checkpoint, contract, host, limits
from .observer import RunObserver
from .stopping import Interrupted, StopOnSignal
from .config import build_config
from .errors import SuiteError
from .registry import get_registry

log = logging.getLogger("marlkit")


class Logger(host.Logger):
    """The host's logger (Sacred metrics, TensorBoard) with a plain-text progress report."""

    def __init__(self, t_max):
        super().__init__(log)
        self.t_max = t_max
        self.start, self.t_start = time.time(), 0  # reset when training starts (or resumes)

    def setup_tb(self, directory_name):
        """The host's TensorBoard logger (tensorboard_logger). Its generated protobuf modules are too
        old for protobuf's compiled backend, so the pure-Python backend is selected before protobuf
        is first imported (it only writes a few scalars per log interval)."""
        if "google.protobuf" not in sys.modules:
            os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        try:
            super().setup_tb(directory_name)
        except ImportError as exc:
            raise SuiteError(f"use_tensorboard=True needs tensorboard-logger (pip install -r requirements.txt): {exc}") from None
        except TypeError as exc:  # protobuf imported earlier with its compiled backend
            raise SuiteError("use_tensorboard=True: tensorboard_logger cannot run with the protobuf already loaded "
                             f"({' '.join(str(exc).split())[:120]}); start the run with "
                             "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python") from None

    def print_recent_stats(self):
        t_env, episode = self.stats["episode"][-1]
        elapsed = time.time() - self.start
        rate = (t_env - self.t_start) / elapsed if elapsed > 0 else 0.0
        eta = (self.t_max - t_env) / rate if rate > 0 else float("inf")
        head = (f"t_env {t_env:,}/{self.t_max:,} ({100 * min(t_env / self.t_max, 1):.1f}%) | episode {episode:,} | "
                f"{rate:,.0f} steps/s | elapsed {_hms(elapsed)} | ETA {_hms(eta)}")
        cells = []
        for key in sorted(self.stats):
            if key == "episode":
                continue
            window = 1 if key == "epsilon" else 5
            values = [float(v) for _, v in self.stats[key][-window:]]
            cells.append(f"{key}: {np.mean(values):.4f}")
        log.info(head + "\n    " + "\n    ".join(" | ".join(cells[i:i + 4]) for i in range(0, len(cells), 4)))


def _hms(seconds):
    if not np.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def env_label(config) -> str:
    """Results folder name of the task: env key plus map/key, e.g. 'smax_3m'."""
    env_args = config.get("env_args") or {}
    task = env_args.get("map_name") or env_args.get("key")
    return config["env"] if not task else f"{config['env']}_{str(task).replace('/', '-').replace(':', '-')}"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    th.manual_seed(seed)


def set_threads(n):
    """CPU threads of this process: torch's intra-op pool, numpy's and scipy's BLAS pools (through
    threadpoolctl, a scikit-learn dependency), and with n = 1 also XLA's (its flags are read when
    JAX is first imported, so only if it is not yet). Beside other busy processes extra threads
    only contend: the ReMIX preset's batch update took 17x longer with torch's default."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency (requirements.txt)

    th.set_num_threads(n)
    threadpool_limits(n, user_api="blas")
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "jax" not in sys.modules and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def prepare(alg, env, updates, registry=None):
    """Validated config plus the built env, before any Sacred run exists (so bad input fails fast)."""
    registry = registry or get_registry()
    config = build_config(alg, env, updates, registry)
    set_threads(config["torch_threads"])
    if config["seed"] is None:
        config["seed"] = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    config["alg_config"] = alg
    config["use_cuda"] = bool(config["use_cuda"] and th.cuda.is_available())
    b = config["batch_size_run"]
    config["test_nepisode"] = max(b, config["test_nepisode"] // b * b)
    if config.get("prioritized_buffer"):
        raise SuiteError("prioritized_buffer=True is not supported by the suite's loop; set it to False")
    contract.check_learner_for_run(config, registry.get("learner", config["learner"]))
    seed_everything(config["seed"])
    registry.activate()
    with limits.memory_guard(f"env '{config['env']}' with these env_args"):
        vec_env = registry.get("env", config["env"]).make(config["env_args"], b, config["seed"])
    contract.check_env(config["env"], vec_env)
    limits.check_memory(config, vec_env.get_env_info())
    return config, vec_env, registry


def run(alg, env, updates, registry=None):
    """Run one experiment under a Sacred FileStorageObserver; returns the run directory."""
    from sacred import Experiment, SETTINGS
    from sacred.utils import apply_backspaces_and_linefeeds

    config, vec_env, registry = prepare(alg, env, updates, registry)
    limits.check_results_path(config["local_results_path"])
    resume = None
    if config["checkpoint_path"]:  # checked before anything is written: a bad checkpoint is one line
        resume = checkpoint.resolve(config["checkpoint_path"], config["load_step"], config["checkpoint_weights_only"])
    SETTINGS.CAPTURE_MODE = "sys"
    SETTINGS.CONFIG.READ_ONLY_CONFIG = False
    ex = Experiment(alg, save_git_info=False)
    ex.captured_out_filter = apply_backspaces_and_linefeeds
    ex.logger = log
    base = os.path.join(config["local_results_path"], "sacred", alg, env_label(config))
    models_root = os.path.join(config["local_results_path"], "models", alg, env_label(config))
    observer = RunObserver.make(base, models_root, resume, config)
    ex.observers.append(observer)
    ex.add_config(config)

    @ex.main
    def _main(_run, _config):
        _console(_run)
        args = SimpleNamespace(**dict(_config))
        args.device = "cuda" if args.use_cuda else "cpu"
        args.results_path = observer.dir
        args.run_id = os.path.basename(observer.dir)
        logger = Logger(args.t_max)
        if args.use_tensorboard:
            logger.setup_tb(os.path.join(args.local_results_path, "tb_logs", alg, env_label(config), args.run_id))
        logger.setup_sacred(_run)
        if observer.resumed_at is not None:
            log.info(f"run {observer.dir} continues from its checkpoint at t_env {observer.resumed_at:,}")
        log.info(f"run {observer.dir}: {alg} on {env_label(config)}, seed {args.seed}")
        with limits.memory_guard("this run's tensors (estimates are lower bounds)"):
            run_sequential(args, logger, vec_env, registry, resume)

    with StopOnSignal():
        ex.run()
    return observer.dir


def _console(_run):
    """Log to the (Sacred-captured) stdout, once per process."""
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    log.addHandler(handler)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (Sacred swaps it while capturing)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def build_scheme(args, env_info, registry):
    """pymarl's episode-batch scheme, extended by what the run's components declare."""
    needs = registry.needs_of(args)
    individual = not args.common_reward or any(n.individual_rewards for n in needs)
    scheme = {
        "state": {"vshape": env_info["state_shape"]},
        "obs": {"vshape": env_info["obs_shape"], "group": "agents"},
        "actions": {"vshape": (1,), "group": "agents", "dtype": th.long},
        "avail_actions": {"vshape": (env_info["n_actions"],), "group": "agents", "dtype": th.int},
        "reward": {"vshape": (env_info["n_agents"],) if individual else (1,)},
        "terminated": {"vshape": (1,), "dtype": th.uint8},
    }
    for need in needs:
        if need.scheme is None:
            continue
        for key, field in need.scheme(args, env_info).items():
            if key in scheme or key in ("actions_onehot", "filled"):
                raise SuiteError(f"a plugin declares episode-batch field '{key}', which already exists")
            scheme[key] = field
    groups = {"agents": env_info["n_agents"]}
    preprocess = {"actions": ("actions_onehot", [host.OneHot(out_dim=env_info["n_actions"])])}
    return scheme, groups, preprocess


def build(args, logger, vec_env, registry):
    """Runner, replay buffer, controller and learner of a run, wired as in pymarl."""
    runner = registry.get("runner", args.runner)(args, logger, vec_env)
    env_info = runner.get_env_info()
    args.n_agents, args.n_actions = env_info["n_agents"], env_info["n_actions"]
    args.state_shape, args.obs_shape = env_info["state_shape"], env_info["obs_shape"]
    args.unit_dim = env_info["obs_shape"]
    args.components = registry.resolve(args)  # what components build by name is passed in, not looked up
    scheme, groups, preprocess = build_scheme(args, env_info, registry)
    with limits.memory_guard("the replay buffer and networks of this config"):
        buffer = host.ReplayBuffer(scheme, groups, args, args.buffer_size, env_info["episode_limit"] + 1,
                                   preprocess=preprocess, device="cpu")
        mac = registry.get("controller", args.mac)(buffer.scheme, groups, args)
        runner.setup(scheme=scheme, groups=groups, preprocess=preprocess, mac=mac)
        learner = registry.get("learner", args.learner)(mac, buffer.scheme, logger, args)
    mac.learner = learner
    if args.use_cuda:
        learner.cuda()
    return runner, buffer, mac, learner


def signature_of(args) -> dict:
    """What a checkpoint must agree on with the run loading it."""
    task = {k: v for k, v in args.env_args.items() if k in ("map_name", "key", "payoff")}
    return {"alg": args.alg_config, "env": args.env, "env_args": task, "n_agents": args.n_agents,
            "n_actions": args.n_actions, "obs_shape": args.obs_shape, "state_shape": args.state_shape}


def train_iteration(args, runner, buffer, learner, episode):
    """Collect batch_size_run episodes, store them, train num_circle times; returns the episode count."""
    episode_batch, _ = runner.run(test_mode=False)
    buffer.insert_episode_batch(episode_batch)
    observe = getattr(learner, "observe_episodes", None)
    if observe is not None:  # optional learner hook (marlkit.contract): sees every new on-policy batch
        observe(episode_batch)
    for _ in range(args.num_circle):
        if buffer.can_sample(args.batch_size):
            sample = buffer.sample(args.batch_size)
            sample = sample[:, :sample.max_t_filled()]
            if sample.device != args.device:
                sample.to(args.device)
            learner.train(sample, runner.t_env, episode)
    return episode + args.batch_size_run


def run_sequential(args, logger, vec_env, registry, resume=None):
    runner, buffer, mac, learner = build(args, logger, vec_env, registry)
    signature = signature_of(args)
    loop = {"t_env": 0, "episode": 0, "last_test_T": -args.test_interval - 1, "last_log_T": 0, "model_save_time": 0}
    if args.checkpoint_path:
        path, state = resume or checkpoint.resolve(args.checkpoint_path, args.load_step, args.checkpoint_weights_only)
        log.info(f"loading checkpoint {path}")
        restored = checkpoint.load(path, learner, signature, None if args.evaluate else buffer, vec_env,
                                   None if args.evaluate else runner, state, args.checkpoint_weights_only)
        loop.update(restored)
        runner.t_env = loop["t_env"]
        if args.evaluate:
            evaluate(args, runner, logger)
            return

    start, episode = time.time(), loop["episode"]
    log.info(f"training for {args.t_max:,} env steps from t_env {runner.t_env:,}")
    logger.start, logger.t_start = start, runner.t_env
    while runner.t_env <= args.t_max:
        episode = train_iteration(args, runner, buffer, learner, episode)

        if (runner.t_env - loop["last_test_T"]) / args.test_interval >= 1.0:
            loop["last_test_T"] = runner.t_env
            for _ in range(args.test_nepisode // runner.batch_size):
                runner.run(test_mode=True)

        if (runner.t_env - loop["last_log_T"]) >= args.log_interval:
            logger.log_stat("episode", episode, runner.t_env)
            logger.print_recent_stats()
            loop["last_log_T"] = runner.t_env

        # Saved after this iteration's logging, so a resumed run logs at the same steps.
        stopping = StopOnSignal.signum is not None
        if args.save_model and (runner.t_env - loop["model_save_time"] >= args.save_model_interval
                                or loop["model_save_time"] == 0 or runner.t_env > args.t_max or stopping):
            loop["model_save_time"] = runner.t_env
            loop.update(t_env=runner.t_env, episode=episode)
            save_checkpoint(args, learner, loop, signature, buffer, vec_env, runner.t_env, runner, logger)
        if stopping:
            runner.close_env()
            saved = os.path.join(models_dir(args), str(runner.t_env)) if args.save_model else None
            raise Interrupted(StopOnSignal.signum, runner.t_env, saved)

    runner.close_env()
    log.info(f"finished training: {runner.t_env:,} env steps in {_hms(time.time() - start)}")


def models_dir(args):
    return os.path.join(args.local_results_path, "models", args.alg_config, env_label(vars(args)), str(args.run_id))


def save_checkpoint(args, learner, loop, signature, buffer, vec_env, t_env, runner=None, logger=None):
    """Atomic checkpoint, then the keep-last-K and buffer policies, then the metrics up to here
    flushed to Sacred (so a run killed later resumes into a metrics file without gaps)."""
    models = models_dir(args)
    path = os.path.join(models, str(t_env))
    log.info(f"saving checkpoint {path}")
    run = {"sacred_dir": getattr(args, "results_path", None)}
    checkpoint.save(path, learner, dict(loop), signature, buffer if args.checkpoint_buffer else None, vec_env,
                    runner, run)
    checkpoint.prune(models, args.checkpoint_keep, args.checkpoint_buffer == "last")
    sacred_run = getattr(logger, "_run_obj", None)
    if sacred_run is not None:
        sacred_run._emit_heartbeat()  # Sacred's own flush (its heartbeat thread calls the same)


def evaluate(args, runner, logger):
    """Only test episodes: report win rate and return (pymarl's evaluate=True)."""
    returns, wins = [], []
    for _ in range(args.test_nepisode // runner.batch_size):
        runner.run(test_mode=True)
        returns.extend(runner.last_returns)
        wins.extend(info.get("battle_won", np.nan) for info in runner.last_infos)
    logger.log_stat("episode", 0, runner.t_env)
    msg = f"evaluation over {len(returns)} episodes: return {np.mean(returns):.3f} +- {np.std(returns):.3f}"
    if not np.all(np.isnan(wins)):
        msg += f", win rate {100 * np.nanmean(wins):.1f}%"
    log.info(msg)
    runner.close_env()


def offline(alg, env, updates, registry=None):
    """A run's (args, runner, buffer, mac, learner) without Sacred or the loop: tests, benchmarks."""
    config, vec_env, registry = prepare(alg, env, updates, registry)
    args = SimpleNamespace(**config)
    args.device, args.run_id = "cuda" if args.use_cuda else "cpu", "offline"
    return (args, *build(args, Logger(args.t_max), vec_env, registry))
