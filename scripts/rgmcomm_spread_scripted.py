"""How much can partial observation cost on ``mpe_spread``? Returns of two scripted policies on the
plugin's env (no learning), as a yardstick for the learned partial / full observation returns of
docs/reproduction/rgmcomm.md:

    PYTHONPATH=src python scripts/rgmcomm_spread_scripted.py --episodes 2000

* ``nearest``: every agent steers to the landmark it observes (its nearest one), which is all a
  partially observing agent knows: agents that share a nearest landmark pile up on it.
* ``assigned``: every agent steers to its landmark in the distance-minimising one-to-one
  assignment of agents to landmarks, computed from the full state at the start of the episode
  (more than even ``observe_all`` shows, since it also uses landmarks nobody has as nearest).

Both steer with the same discrete controller: the action whose direction best matches the desired
acceleration kp * (target - position) - kd * velocity (noop when that is small).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # the worktree's plugins/
from plugins.rgmcomm.envs.mpe import DIRECTIONS, Spread  # noqa: E402


def steer(pos, vel, target, kp=2.0, kd=1.0, dead=0.05):
    """Discrete action per agent towards target: pos, vel, target [E, n, 2] -> [E, n]."""
    want = kp * (target - pos) - kd * vel
    act = (want[..., None, :] * DIRECTIONS[1:]).sum(-1).argmax(-1) + 1
    return np.where(np.linalg.norm(want, axis=-1) < dead, 0, act)


def run(policy, episodes, n_agents, seed, n_envs=100):
    env = Spread(n_envs, seed, n_agents=n_agents)
    n = n_agents
    perms = np.array(list(itertools.permutations(range(n))))  # agent i -> landmark perm[i]
    returns, collisions = [], []
    for _ in range(episodes // n_envs):
        env.reset()
        landmarks = env.pos[:, n:].copy()
        dist = np.linalg.norm(env.pos[:, :n, None] - landmarks[:, None], axis=-1)  # [E, agent, landmark]
        best = perms[dist[:, np.arange(n), perms].sum(-1).argmin(-1)]  # [E, n]
        total = np.zeros(n_envs)
        for _ in range(env.episode_limit):
            if policy == "nearest":
                idx = np.linalg.norm(env.pos[:, :n, None] - landmarks[:, None], axis=-1).argmin(-1)
            else:
                idx = best
            target = np.take_along_axis(landmarks, idx[..., None], 1)
            r, _, info = env.step(steer(env.pos[:, :n], env.vel[:, :n], target), np.ones(n_envs, bool))
            total += r
        returns += total.tolist()
        collisions += [i["collisions"] for i in info]
    return np.mean(returns), np.std(returns) / np.sqrt(len(returns)), np.mean(collisions)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--n-agents", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print("| policy | episodes | return (mean +- s.e.) | collisions |\n|---|---|---|---|")
    for policy in ("nearest", "assigned"):
        ret, se, col = run(policy, a.episodes, a.n_agents, a.seed)
        print(f"| {policy} | {a.episodes} | {ret:.2f} +- {se:.2f} | {col:.2f} |")


if __name__ == "__main__":
    main()
