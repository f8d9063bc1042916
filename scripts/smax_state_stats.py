"""Scale of SMAX's state under random play, raw and with ``normalise_state`` (docs/baselines).

Prints, per kind of state feature (health, x, y, weapon cooldown, unit-type bits, the team/type
tail), the largest absolute value and the standard deviation over every step of random-play
episodes. Usage (from the repository root):

    PYTHONPATH=src python scripts/smax_state_stats.py [--map 3m] [--episodes 64]
"""
import argparse

import numpy as np

from marlkit.envs.smax import make

KINDS = ("health", "x", "y", "cooldown")


def states(map_name, episodes, normalise, seed=0, n_envs=16):
    env = make({"map_name": map_name, "normalise_state": normalise}, n_envs, seed)
    rng = np.random.default_rng(seed)
    seen = []
    for _ in range(max(1, episodes // n_envs)):
        env.reset()
        active = np.ones(n_envs, bool)
        while active.any():
            seen.append(env.get_state()[active])
            avail = env.get_avail_actions()
            _, done, _ = env.step((rng.random(avail.shape) * avail).argmax(-1), active)
            active &= ~done
    return np.concatenate(seen), env


def report(map_name, episodes):
    for normalise in (False, True):
        state, env = states(map_name, episodes, normalise)
        n_units = env.n_agents + env.n_enemies
        per_unit = state.shape[1] // n_units - 2  # SMAX: own features per unit, then team and type
        units = state[:, : n_units * per_unit].reshape(len(state), n_units, per_unit)
        print(f"{map_name}, normalise_state={normalise}: {len(state)} states")
        for k, name in enumerate(KINDS):
            values = units[:, :, k]
            print(f"  {name:9s} max|.| {np.abs(values).max():7.2f}  std {values.std():6.2f}")
        rest = [("type bits", units[:, :, len(KINDS):]), ("team/type", state[:, n_units * per_unit:])]
        for name, values in rest:
            print(f"  {name:9s} max|.| {np.abs(values).max():7.2f}  std {values.std():6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--map", default="3m")
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args()
    report(args.map, args.episodes)
