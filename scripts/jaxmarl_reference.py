"""Run JaxMARL's own recurrent IPPO for SMAX and record its greedy test win rate vs env steps.

This is the reference for docs/baselines/smax_3m.md (issue 9, item 2). It runs JaxMARL's
published `baselines/IPPO/ippo_rnn_smax.py` with its `config/ippo_rnn_smax.yaml` unchanged, except
the map, the seed and the step budget, in its own virtual environment (not a dependency of the
suite; never vendored into this repository).

Set up (outside this repository):

    python3 -m venv /path/to/jaxref_venv
    /path/to/jaxref_venv/bin/pip install jax==0.10.2 jaxlib==0.10.2 jaxmarl==0.2.0 \
        optax flax distrax hydra-core omegaconf
    git clone https://github.com/FLAIROx/JaxMARL /path/to/JaxMARL   # its baselines/IPPO folder

Run (one JAX process, single-threaded XLA):

    OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
      /path/to/jaxref_venv/bin/python scripts/jaxmarl_reference.py \
      --ippo-dir /path/to/JaxMARL/baselines/IPPO --map 3m --seed 0 --updates 9 --out ref_3m_s0.json
    python scripts/jaxmarl_reference.py summarize ref_3m_s*.json --csv ref_3m.csv   # any python

What is measured: the reference trains for `--updates` PPO updates of NUM_ENVS x NUM_STEPS
(128 x 128 = 16,384) env steps each. Its source is not modified: the driver replaces the
module's `TrainState` by a subclass that copies the parameters to the host after every gradient
step, and after training evaluates the parameters as they were at the end of every update with
greedy (argmax over available actions) actions on `--eval-episodes` fresh episodes of the same
env (HeuristicEnemySMAX with the config's ENV_KWARGS). A win is counted as in JaxMARL's
SMAXLogWrapper (the last step's reward >= 1, i.e. the win bonus was paid). The training win rate
the script itself logs (stochastic policy, episodes finished during that update's rollout) is
recorded too. `wandb` is replaced by a stub that captures the logged metrics.

Learning rate: the published config anneals the rate linearly over TOTAL_TIMESTEPS = 1e7, so over
its first 150k steps the rate is 0.004 within 1.5%. By default this driver keeps that (ANNEAL_LR
off, constant 0.004); `--anneal` instead anneals to zero over the short budget, as running the
script with TOTAL_TIMESTEPS set to the budget would.
"""

import argparse
import importlib.util
import json
import sys
import time
import types


def _wandb_stub(log):
    """A stand-in for the `wandb` module: the reference only calls init and log."""
    stub = types.ModuleType("wandb")
    stub.init = lambda *a, **k: None
    stub.log = lambda d, *a, **k: log.append({k2: float(v) for k2, v in d.items()})
    return stub


def _load_reference(ippo_dir, log):
    sys.modules["wandb"] = _wandb_stub(log)
    spec = importlib.util.spec_from_file_location("ippo_rnn_smax", f"{ippo_dir}/ippo_rnn_smax.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_config(ippo_dir, args):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(f"{ippo_dir}/config/ippo_rnn_smax.yaml"), resolve=False)
    cfg.pop("ENTITY", None)  # an env-var interpolation for wandb, unused here
    cfg["MAP_NAME"] = args.map
    cfg["SEED"] = args.seed
    cfg["TOTAL_TIMESTEPS"] = args.updates * cfg["NUM_ENVS"] * cfg["NUM_STEPS"]
    cfg["ANNEAL_LR"] = bool(args.anneal)
    return cfg


def _greedy_evaluator(module, cfg, n_episodes):
    """A jitted (params, key) -> (finished, won) fractions: argmax actions, first episode of
    each of n_episodes parallel envs."""
    import jax
    import jax.numpy as jnp

    env = module.HeuristicEnemySMAX(
        scenario=module.map_name_to_scenario(cfg["MAP_NAME"]), **cfg["ENV_KWARGS"])
    agents, n_agents = env.agents, env.num_agents
    net = module.ActorCriticRNN(env.action_space(agents[0]).n, config=cfg)
    n_actors = n_agents * n_episodes

    def stack(d):
        return jnp.stack([d[a] for a in agents]).reshape((n_actors, -1))

    def run(params, key):
        key, k = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k, n_episodes))
        h = module.ScannedRNN.initialize_carry(n_actors, cfg["GRU_HIDDEN_DIM"])
        carry = (obs, state, h, jnp.zeros(n_actors, bool), jnp.zeros(n_episodes, bool),
                 jnp.zeros(n_episodes, bool), key)

        def step(carry, _):
            obs, state, h, last_done, finished, won, key = carry
            avail = stack(jax.vmap(env.get_avail_actions)(state))
            h, pi, _ = net.apply(params, h, (stack(obs)[None], last_done[None], avail[None]))
            act = jnp.argmax(pi.logits, axis=-1).reshape((n_agents, n_episodes))
            key, k = jax.random.split(key)
            obs, state, rew, done, _ = jax.vmap(env.step)(
                jax.random.split(k, n_episodes), state, {a: act[i] for i, a in enumerate(agents)})
            ends = done["__all__"] & ~finished
            won = won | (ends & (rew[agents[0]] >= 1.0))
            finished = finished | done["__all__"]
            return (obs, state, h, stack(done).squeeze(-1), finished, won, key), None

        carry, _ = jax.lax.scan(step, carry, None, env.max_steps + 1)
        return carry[4].mean(), carry[5].mean()

    return jax.jit(run)


def summarize(paths, out):
    """Write one CSV row per (seed, checkpoint) of the JSON files; print the mean over seeds."""
    import csv
    import statistics

    runs = [json.load(open(path)) for path in paths]
    fields = ["map", "seed", "update", "env_steps", "greedy_test_win_rate", "eval_episodes",
              "train_win_rate", "train_return", "entropy"]
    by_step = {}
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for run in runs:
            for row in run["checkpoints"]:
                writer.writerow({**row, "map": run["map"], "seed": run["seed"],
                                 "eval_episodes": run["eval_episodes"]})
                by_step.setdefault(row["env_steps"], []).append(row["greedy_test_win_rate"])
    for step, wins in sorted(by_step.items()):
        sd = statistics.stdev(wins) if len(wins) > 1 else float("nan")
        print(f"{step:>7} seeds={len(wins)} mean={statistics.mean(wins):.3f} sd={sd:.3f} "
              f"per seed: {' '.join(f'{w:.2f}' for w in wins)}")


def main():
    if sys.argv[1:2] == ["summarize"]:
        p = argparse.ArgumentParser(description="Collect result JSONs into one CSV")
        p.add_argument("jsons", nargs="+")
        p.add_argument("--csv", required=True)
        a = p.parse_args(sys.argv[2:])
        return summarize(a.jsons, a.csv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ippo-dir", required=True, help="JaxMARL's baselines/IPPO folder")
    p.add_argument("--map", default="3m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--updates", type=int, default=10, help="PPO updates (16,384 env steps each)")
    p.add_argument("--eval-episodes", type=int, default=64)
    p.add_argument("--anneal", action="store_true", help="anneal the LR to 0 over --updates")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args()

    import jax

    log = []
    module = _load_reference(args.ippo_dir, log)
    cfg = _load_config(args.ippo_dir, args)
    snapshots = {}

    def record(step, params):
        snapshots[int(step)] = jax.tree.map(lambda x: x.copy(), params)

    class RecordingTrainState(module.TrainState):
        def apply_gradients(self, *, grads, **kwargs):
            new = super().apply_gradients(grads=grads, **kwargs)
            jax.debug.callback(record, new.step, new.params)
            return new

    module.TrainState = RecordingTrainState
    t0 = time.time()
    train = jax.jit(module.make_train(cfg))
    out = train(jax.random.PRNGKey(cfg["SEED"]))
    jax.block_until_ready(out)
    train_seconds = time.time() - t0

    grads_per_update = cfg["UPDATE_EPOCHS"] * cfg["NUM_MINIBATCHES"]
    steps_per_update = cfg["NUM_ENVS"] * cfg["NUM_STEPS"]
    evaluate = _greedy_evaluator(module, cfg, args.eval_episodes)
    rows = []
    for u in range(1, args.updates + 1):
        params = snapshots[u * grads_per_update]
        key = jax.random.PRNGKey(10_000 + 1_000 * args.seed + u)
        finished, win = (float(x) for x in evaluate(params, key))
        train_row = log[u - 1] if len(log) >= u else {}
        rows.append({"update": u, "env_steps": u * steps_per_update, "greedy_test_win_rate": win,
                     "eval_episodes_finished": finished,
                     "train_win_rate": train_row.get("win_rate"),
                     "train_return": train_row.get("returns"),
                     "entropy": train_row.get("entropy")})
        print(json.dumps(rows[-1]), flush=True)
    result = {"reference": "JaxMARL baselines/IPPO/ippo_rnn_smax.py + config/ippo_rnn_smax.yaml",
              "map": args.map, "seed": args.seed, "eval_episodes": args.eval_episodes,
              "anneal_lr": bool(args.anneal), "train_seconds": round(train_seconds, 1),
              "total_seconds": round(time.time() - t0, 1),
              "config": {k: v for k, v in cfg.items() if k not in ("PROJECT", "WANDB_MODE")},
              "checkpoints": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
