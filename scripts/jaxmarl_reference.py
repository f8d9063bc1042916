"""Run JaxMARL's own SMAX baselines (recurrent IPPO, MAPPO or QMIX) and record greedy test win rates.

The references for docs/baselines/smax_3m.md and smax_2s3z.md (issue 9, item 2). `--alg` picks one of JaxMARL's
published scripts and configs (repository https://github.com/FLAIROx/JaxMARL, folder baselines/):

    ippo   IPPO/ippo_rnn_smax.py     + IPPO/config/ippo_rnn_smax.yaml
    mappo  MAPPO/mappo_rnn_smax.py   + MAPPO/config/mappo_homogenous_rnn_smax.yaml
    qmix   QLearning/qmix_rnn.py     + QLearning/config/config.yaml + config/alg/ql_rnn_smax.yaml

They run unchanged, except the map, the seed and the step budget, in their own virtual
environment (not a dependency of the suite; never vendored into this repository).

Set up (outside this repository):

    python3 -m venv /path/to/jaxref_venv
    /path/to/jaxref_venv/bin/pip install jax==0.10.2 jaxlib==0.10.2 jaxmarl==0.2.0 \
        optax flax distrax hydra-core omegaconf
    /path/to/jaxref_venv/bin/pip install --no-deps flashbax     # QMIX only (0.1.3 was used)
    git clone https://github.com/FLAIROx/JaxMARL /path/to/JaxMARL   # for its baselines/ folder

Run (one JAX process, single-threaded XLA):

    OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
      /path/to/jaxref_venv/bin/python scripts/jaxmarl_reference.py --alg mappo \
      --baselines-dir /path/to/JaxMARL/baselines --map 3m --seed 0 --steps 150000 --out mappo_3m_s0.json
    python scripts/jaxmarl_reference.py summarize mappo_3m_s*.json --csv mappo_3m.csv   # any python

What is measured: the reference trains for whole updates of its own size (IPPO/MAPPO: NUM_ENVS x
NUM_STEPS = 128 x 128 = 16,384 env steps; QMIX: 16 x 128 = 2,048) until `--steps` is reached.
Its source is not modified: the driver replaces the module's TrainState class by a subclass that
copies the policy's parameters to the host after every gradient step (and at creation), and after
training evaluates the initial parameters and the parameters as they were at the end of an update,
every `--eval-interval` env steps and at the end, with greedy (argmax over available actions) actions on
`--eval-episodes` fresh episodes of the same env (HeuristicEnemySMAX with the config's
ENV_KWARGS; for QMIX through its CTRolloutManager, which adds the agent id to the observations).
A win is counted as in JaxMARL's SMAXLogWrapper (the last step's reward >= 1: the win bonus was
paid). The training metrics the PPO scripts log (stochastic policy) are recorded too; `wandb` is
replaced by a stub that captures them.

Schedules: the published configs anneal over TOTAL_TIMESTEPS = 1e7 (PPO: the learning rate,
linearly to 0; QMIX: epsilon from 1.0 to 0.05 over the first 10% of updates, i.e. 1M steps). A
short run with TOTAL_TIMESTEPS set to the budget would compress these schedules, which is not the
published run. By default the driver keeps the published schedules over the short budget (PPO:
ANNEAL_LR off, so the rate stays within 1.5% of its value over 150k steps; QMIX: EPS_DECAY
rescaled so epsilon follows the 1e7-step schedule). `--anneal` compresses them to the budget
instead. QMIX's own periodic greedy test (512 envs) is switched off: this driver's evaluation
replaces it.
"""

import argparse
import copy
import importlib.util
import json
import math
import sys
import time
import types

PUBLISHED_TIMESTEPS = 1e7  # TOTAL_TIMESTEPS of all three published SMAX configs

ALGS = {
    "ippo": {"script": "IPPO/ippo_rnn_smax.py", "configs": ["IPPO/config/ippo_rnn_smax.yaml"],
             "train_state": "TrainState", "policy": "ActorCriticRNN"},
    "mappo": {"script": "MAPPO/mappo_rnn_smax.py",
              "configs": ["MAPPO/config/mappo_homogenous_rnn_smax.yaml"],
              "train_state": "TrainState", "policy": "ActorRNN"},
    "qmix": {"script": "QLearning/qmix_rnn.py",
             "configs": ["QLearning/config/config.yaml", "QLearning/config/alg/ql_rnn_smax.yaml"],
             "train_state": "CustomTrainState", "policy": "RNNQNetwork"},
}


def _wandb_stub(log):
    """A stand-in for the `wandb` module: the references only call init and log."""
    stub = types.ModuleType("wandb")
    stub.init = lambda *a, **k: None
    stub.log = lambda d, *a, **k: log.append({k2: float(v) for k2, v in d.items()})
    return stub


def _load_reference(baselines_dir, alg, log):
    sys.modules["wandb"] = _wandb_stub(log)
    path = f"{baselines_dir}/{ALGS[alg]['script']}"
    spec = importlib.util.spec_from_file_location(f"jaxmarl_{alg}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_config(baselines_dir, args):
    from omegaconf import OmegaConf

    cfg = {}
    for name in ALGS[args.alg]["configs"]:
        part = OmegaConf.to_container(OmegaConf.load(f"{baselines_dir}/{name}"), resolve=False)
        part.pop("defaults", None)  # hydra's composition list (QMIX: we merge the alg file here)
        cfg.update(part)
    cfg.pop("ENTITY", None)  # an env-var interpolation for wandb, unused here
    cfg["WANDB_MODE"] = "disabled"
    cfg["MAP_NAME"] = args.map
    cfg["SEED"] = args.seed
    per_update = cfg["NUM_ENVS"] * cfg["NUM_STEPS"]
    updates = math.ceil(args.steps / per_update)
    cfg["TOTAL_TIMESTEPS"] = updates * per_update
    if args.alg == "qmix":
        cfg["TEST_DURING_TRAINING"] = False
        cfg["SAVE_PATH"] = None
        if not args.anneal:  # epsilon over EPS_DECAY x NUM_UPDATES updates, as with 1e7 steps
            cfg["EPS_DECAY"] = cfg["EPS_DECAY"] * (PUBLISHED_TIMESTEPS // per_update) / updates
    else:
        cfg["ANNEAL_LR"] = bool(args.anneal)
    return cfg, per_update, updates


def _recording_state(module, alg, record):
    """A subclass of the reference's TrainState that sends the policy's parameters to `record`
    when created and after every gradient step (MAPPO's critic state is skipped)."""
    import jax

    base = getattr(module, ALGS[alg]["train_state"])
    policy = ALGS[alg]["policy"]

    def send(state):
        owner = getattr(state.apply_fn, "__self__", None)
        if type(owner).__name__ != policy:
            return
        params = state.params["agent"] if alg == "qmix" else state.params
        # QMIX counts env steps itself; the PPO scripts make a fixed number of steps per update
        env_steps = state.timesteps if alg == "qmix" else -1
        jax.debug.callback(record, env_steps, state.step, params)

    class Recording(base):
        @classmethod
        def create(cls, **kwargs):
            state = super().create(**kwargs)
            send(state)
            return state

        def apply_gradients(self, *, grads, **kwargs):
            new = super().apply_gradients(grads=grads, **kwargs)
            send(new)
            return new

    setattr(module, ALGS[alg]["train_state"], Recording)


def _ppo_episodes(module, alg, cfg, n_episodes):
    """(reset, step, act, init_h) for the PPO references: the raw SMAX env, one actor per agent
    and episode, the actor network applied to a single time step."""
    import jax
    import jax.numpy as jnp

    env = module.HeuristicEnemySMAX(
        scenario=module.map_name_to_scenario(cfg["MAP_NAME"]), **cfg["ENV_KWARGS"])
    agents, n_agents = env.agents, env.num_agents
    net = getattr(module, ALGS[alg]["policy"])(env.action_space(agents[0]).n, config=cfg)
    n_actors = n_agents * n_episodes

    def stack(d):
        return jnp.stack([d[a] for a in agents]).reshape((n_actors, -1))

    def reset(key):
        obs, state = jax.vmap(env.reset)(jax.random.split(key, n_episodes))
        return stack(obs), state, jnp.zeros(n_actors, bool)

    def step(key, state, act):
        act = act.reshape((n_agents, n_episodes))
        obs, state, rew, done, _ = jax.vmap(env.step)(
            jax.random.split(key, n_episodes), state, {a: act[i] for i, a in enumerate(agents)})
        return stack(obs), state, rew[agents[0]], done["__all__"], stack(done).squeeze(-1)

    def act(params, h, obs, dones, state):
        avail = stack(jax.vmap(env.get_avail_actions)(state))
        out = net.apply(params, h, (obs[None], dones[None], avail[None]))
        return out[0], jnp.argmax(out[1].logits, axis=-1).reshape(-1)  # out[1]: the policy

    init_h = module.ScannedRNN.initialize_carry(n_actors, cfg["GRU_HIDDEN_DIM"])
    return reset, step, act, init_h, env.max_steps


def _qmix_episodes(module, cfg, n_episodes):
    """(reset, step, act, init_h) for the QMIX reference: its CTRolloutManager (agent ids in the
    observations), its agent network per agent, argmax over available actions."""
    import jax
    import jax.numpy as jnp

    env, _ = module.env_from_config(copy.deepcopy(cfg))
    agents = env.agents
    ct = module.CTRolloutManager(env, batch_size=n_episodes)
    net = module.RNNQNetwork(action_dim=ct.max_action_space, hidden_dim=cfg["HIDDEN_SIZE"])

    def stack(d):
        return jnp.stack([d[a] for a in agents])

    def reset(key):
        obs, state = ct.batch_reset(key)
        return stack(obs), state, jnp.zeros((len(agents), n_episodes), bool)

    def step(key, state, act):
        obs, state, rew, done, _ = ct.batch_step(key, state, {a: act[i] for i, a in enumerate(agents)})
        return stack(obs), state, rew[agents[0]], done["__all__"], stack(done)

    def act(params, h, obs, dones, state):
        avail = stack(ct.get_valid_actions(state.env_state))
        h, q = jax.vmap(net.apply, in_axes=(None, 0, 0, 0))(params, h, obs[:, None], dones[:, None])
        return h, jnp.argmax(q.squeeze(1) - (1 - avail) * 1e10, axis=-1)

    init_h = module.ScannedRNN.initialize_carry(cfg["HIDDEN_SIZE"], len(agents), n_episodes)
    return reset, step, act, init_h, env.max_steps


def _greedy_evaluator(module, alg, cfg, n_episodes):
    """A jitted (params, key) -> (finished, won) fractions: greedy actions, first episode of each
    of n_episodes parallel envs."""
    import jax
    import jax.numpy as jnp

    if alg == "qmix":
        reset, env_step, act, init_h, max_steps = _qmix_episodes(module, cfg, n_episodes)
    else:
        reset, env_step, act, init_h, max_steps = _ppo_episodes(module, alg, cfg, n_episodes)

    def run(params, key):
        key, k = jax.random.split(key)
        obs, state, dones = reset(k)
        none = jnp.zeros(n_episodes, bool)

        def step(carry, _):
            obs, state, h, dones, finished, won, key = carry
            h, action = act(params, h, obs, dones, state)
            key, k = jax.random.split(key)
            obs, state, rew, done_all, dones = env_step(k, state, action)
            won = won | (done_all & ~finished & (rew >= 1.0))
            return (obs, state, h, dones, finished | done_all, won, key), None

        carry, _ = jax.lax.scan(step, (obs, state, init_h, dones, none, none, key), None,
                                max_steps + 1)
        return carry[4].mean(), carry[5].mean()

    return jax.jit(run)


def _params_at(snapshots, env_steps):
    """The last recorded parameters at or before env_steps (the initial ones if none)."""
    return snapshots[max(s for s in snapshots if s <= env_steps)]


def summarize(paths, out):
    """Write one CSV row per (seed, checkpoint) of the JSON files; print the mean over seeds.
    Columns label, seed, step, value are what `python -m marlkit.analysis --reference` reads."""
    import csv
    import statistics

    runs = [json.load(open(path)) for path in paths]
    fields = ["label", "map", "seed", "update", "step", "value", "eval_episodes",
              "train_win_rate", "train_return", "entropy"]
    by_step = {}
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for run in runs:
            label = f"JaxMARL {run.get('alg', 'ippo').upper()}"
            for row in run["checkpoints"]:
                writer.writerow({**row, "label": label, "map": run["map"], "seed": run["seed"],
                                 "step": row["env_steps"], "value": row["greedy_test_win_rate"],
                                 "eval_episodes": run["eval_episodes"]})
                by_step.setdefault((label, row["env_steps"]), []).append(row["greedy_test_win_rate"])
    for (label, step), wins in sorted(by_step.items()):
        sd = statistics.stdev(wins) if len(wins) > 1 else float("nan")
        print(f"{label} {step:>7} seeds={len(wins)} mean={statistics.mean(wins):.3f} sd={sd:.3f} "
              f"per seed: {' '.join(f'{w:.2f}' for w in wins)}")


def main():
    if sys.argv[1:2] == ["summarize"]:
        p = argparse.ArgumentParser(description="Collect result JSONs into one CSV")
        p.add_argument("jsons", nargs="+")
        p.add_argument("--csv", required=True)
        a = p.parse_args(sys.argv[2:])
        return summarize(a.jsons, a.csv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alg", choices=sorted(ALGS), default="ippo")
    p.add_argument("--baselines-dir", required=True, help="JaxMARL's baselines/ folder")
    p.add_argument("--map", default="3m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=150_000,
                   help="env-step budget, rounded up to whole updates of the reference")
    p.add_argument("--eval-interval", type=int, default=16_384,
                   help="env steps between greedy evaluations (at update ends)")
    p.add_argument("--eval-episodes", type=int, default=64)
    p.add_argument("--anneal", action="store_true",
                   help="compress the published 1e7-step schedules (LR / epsilon) to the budget")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args()

    import jax

    log = []
    module = _load_reference(args.baselines_dir, args.alg, log)
    cfg, per_update, updates = _load_config(args.baselines_dir, args)
    snapshots, latest = {}, {}  # env steps at the end of an update -> policy parameters

    grads_per_update = cfg.get("UPDATE_EPOCHS", 1) * cfg.get("NUM_MINIBATCHES", 1)

    def record(env_steps, grad_step, params):
        env_steps, grad_step = int(env_steps), int(grad_step)
        if env_steps < 0:  # PPO: gradient steps -> env steps, whole updates only
            if grad_step % grads_per_update:
                return
            env_steps = grad_step // grads_per_update * per_update
        if grad_step >= latest.get(env_steps, -1):  # QMIX: the update's last gradient step
            latest[env_steps] = grad_step
            snapshots[env_steps] = jax.tree.map(lambda x: x.copy(), params)

    _recording_state(module, args.alg, record)
    t0 = time.time()
    if args.alg == "qmix":
        env, _ = module.env_from_config(copy.deepcopy(cfg))
        train = jax.jit(module.make_train(copy.deepcopy(cfg), env))
    else:
        train = jax.jit(module.make_train(cfg))
    out = train(jax.random.PRNGKey(cfg["SEED"]))
    jax.block_until_ready(out)
    train_seconds = time.time() - t0

    evaluate = _greedy_evaluator(module, args.alg, cfg, args.eval_episodes)
    every = max(1, args.eval_interval // per_update)
    rows = []
    for u in sorted({0, *range(every, updates + 1, every), updates}):  # 0: the initial policy
        env_steps = u * per_update
        key = jax.random.PRNGKey(10_000 + 1_000 * args.seed + u)
        finished, win = (float(x) for x in evaluate(_params_at(snapshots, env_steps), key))
        train_row = log[u - 1] if 1 <= u <= len(log) else {}
        rows.append({"update": u, "env_steps": env_steps, "greedy_test_win_rate": win,
                     "eval_episodes_finished": finished,
                     "train_win_rate": train_row.get("win_rate"),
                     "train_return": train_row.get("returns"),
                     "entropy": train_row.get("entropy")})
        print(json.dumps(rows[-1]), flush=True)
    result = {"reference": f"JaxMARL baselines/{ALGS[args.alg]['script']} + "
                           + " + ".join(ALGS[args.alg]["configs"]),
              "alg": args.alg, "map": args.map, "seed": args.seed,
              "eval_episodes": args.eval_episodes, "anneal": bool(args.anneal),
              "train_seconds": round(train_seconds, 1),
              "total_seconds": round(time.time() - t0, 1),
              "config": {k: v for k, v in cfg.items() if k not in ("PROJECT", "WANDB_MODE")},
              "checkpoints": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
