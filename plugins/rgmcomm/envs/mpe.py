"""``mpe_tag`` and ``mpe_spread``: the multi-agent particle tasks of the RGMComm paper, batched.

Physics: a batched numpy port of MPE's particle world (Lowe et al. 2017; the host's bundled
``multiagent_particle_envs`` core and PettingZoo/mpe2 share it), step for step:
dt = 0.1, damping 0.25, mass 1, contact force 100 with margin 1e-3 between colliding entities
(force = 100 * delta/|delta| * 1e-3 * log(1 + exp(-(|delta| - size_a - size_b) / 1e-3)), summed
over pairs), then v <- v (1 - damping) + F/m dt, speed clipped at max_speed, x <- x + v dt.
Discrete actions 0 noop, 1 -x, 2 +x, 3 -y, 4 +y, scaled by the agent's accel (5 if unset).
Why a port rather than the kept package: bench/rgmcomm.py measures both (the host's MPE steps one
env at a time in Python loops over entity pairs; this steps all n_envs with array operations),
and the scaled reproduction needs many episodes on 2 shared cores. tests/test_rgmcomm_envs.py
checks the port against the host's MPE core on random trajectories.

``mpe_tag`` (simple_tag, Appendix E.1): ``n_predators`` learning predators (size 0.075, accel 3,
max speed 1), one prey moving at random (size 0.05, accel 4, max speed 1.3), ``n_landmarks``
obstacles (size 0.2, colliding, fixed). Predators and prey start uniform in [-1, 1]^2, landmarks in
[-0.9, 0.9]^2. Shared predator reward per step: -0.1 * sum_i min_k |p_i - q_k| + 10 per
(predator, prey) pair in contact. A predator observes its velocity and position, the landmarks'
and the prey's relative positions and the prey's velocity, but not the other predators.
Info ``catches``: contacts per episode.

``mpe_spread`` (simple_spread, Section 5.2): ``n_agents`` agents (size 0.15, accel 5, colliding)
and as many landmarks (size 0.05, not colliding), all uniform in [-1, 1]^2. Team reward per step:
-sum_l min_i |x_i - l| - 1 per agent in contact with another agent (a pair costs 2; MPE's own
count, minus its self-collision bug). An agent observes its velocity, its position and the relative
position of its nearest landmark only. Info ``collisions``: agent contacts per episode.
"""
from __future__ import annotations

import numpy as np

from marlkit.params import Param

from .base import LocalObsVecEnv

DT, DAMPING, CONTACT_FORCE, CONTACT_MARGIN = 0.1, 0.25, 100.0, 1e-3
DIRECTIONS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)


def contact_forces(pos, sizes, collide):
    """Sum of MPE's soft contact forces on each entity: pos [E, K, 2] -> [E, K, 2]."""
    delta = pos[:, :, None, :] - pos[:, None, :, :]  # a - b
    dist = np.sqrt((delta ** 2).sum(-1))
    dist_min = sizes[:, None] + sizes[None, :]
    k = CONTACT_MARGIN
    penetration = np.logaddexp(0.0, -(dist - dist_min) / k) * k
    pair = collide[:, None] & collide[None, :] & ~np.eye(len(sizes), dtype=bool)
    scale = np.where(pair, CONTACT_FORCE * penetration / np.maximum(dist, 1e-12), 0.0)
    return (delta * scale[..., None]).sum(2)


def integrate(pos, vel, force, movable, max_speed):
    """MPE's integrate_state for all entities at once (mass 1); updates pos and vel in place."""
    vel[:, movable] = vel[:, movable] * (1 - DAMPING) + force[:, movable] * DT
    speed = np.sqrt((vel ** 2).sum(-1))
    cap = np.where(np.isfinite(max_speed), max_speed, np.inf)
    over = speed > cap
    vel[over] = vel[over] / speed[over][:, None] * np.broadcast_to(cap, speed.shape)[over][:, None]
    pos[:, movable] += vel[:, movable] * DT


class ParticleWorld(LocalObsVecEnv):
    """Entities 0..n_agents-1 are the learning agents; the rest are set by the subclass."""

    def __init__(self, n_envs, seed, observe_all, sizes, accel, max_speed, movable, collide, episode_limit):
        super().__init__(n_envs, seed, observe_all)
        self.sizes, self.accel = np.asarray(sizes, float), np.asarray(accel, float)
        self.max_speed = np.asarray(max_speed, float)
        self.movable, self.collide = np.asarray(movable, bool), np.asarray(collide, bool)
        self.episode_limit = episode_limit
        k = len(self.sizes)
        self.pos = np.zeros((n_envs, k, 2))
        self.vel = np.zeros((n_envs, k, 2))

    def physics(self, idx, entity_actions):
        """One world step of envs ``idx``; entity_actions [len(idx), n_controlled] for entities 0.."""
        pos, vel = self.pos[idx], self.vel[idx]
        force = contact_forces(pos, self.sizes, self.collide)
        m = entity_actions.shape[1]
        force[:, :m] += DIRECTIONS[entity_actions] * self.accel[:m, None]
        integrate(pos, vel, force, self.movable, self.max_speed)
        self.pos[idx], self.vel[idx] = pos, vel

    def touching(self, a, b):
        """[E, |a|, |b|] contact matrix of entity index lists a and b (MPE's is_collision)."""
        d = np.sqrt(((self.pos[:, a, None] - self.pos[:, None, b]) ** 2).sum(-1))
        return d < self.sizes[a][:, None] + self.sizes[b][None, :]


class Tag(ParticleWorld):
    n_actions = 5

    def __init__(self, n_envs, seed, n_predators=2, n_landmarks=2, episode_limit=25, observe_all=False):
        n = self.n_agents = n_predators
        self.n_landmarks = n_landmarks
        k = n + 1 + n_landmarks
        self.prey = n
        self.landmarks = list(range(n + 1, k))
        super().__init__(n_envs, seed, observe_all,
                         sizes=[0.075] * n + [0.05] + [0.2] * n_landmarks,
                         accel=[3.0] * n + [4.0] + [0.0] * n_landmarks,
                         max_speed=[1.0] * n + [1.3] + [np.inf] * n_landmarks,
                         movable=[True] * (n + 1) + [False] * n_landmarks,
                         collide=[True] * k, episode_limit=episode_limit)
        self.local_dim = 8 + 2 * n_landmarks
        self.catches = np.zeros(n_envs)

    def _reset(self, idx):
        n = self.n_agents
        self.pos[idx, :n + 1] = self.rng.uniform(-1, 1, (len(idx), n + 1, 2))
        self.pos[idx, n + 1:] = self.rng.uniform(-0.9, 0.9, (len(idx), self.n_landmarks, 2))
        self.vel[idx] = 0.0
        self.catches[idx] = 0

    def _step(self, actions, idx):
        prey_action = self.rng.integers(0, 5, (len(idx), 1))  # the prey moves at random
        self.physics(idx, np.concatenate([actions, prey_action], 1))
        preds = list(range(self.n_agents))
        dist = np.sqrt(((self.pos[idx][:, preds] - self.pos[idx][:, [self.prey]]) ** 2).sum(-1))  # [e, n, 1 prey]
        contacts = self.touching(preds, [self.prey])[idx].sum((1, 2))
        self.catches[idx] += contacts
        reward = -0.1 * dist.sum(1) + 10.0 * contacts
        return reward, np.zeros(len(idx), dtype=bool), {"catches": self.catches[idx].copy()}

    def _local_obs(self):
        n = self.n_agents
        own_vel, own_pos = self.vel[:, :n], self.pos[:, :n]
        lm = (self.pos[:, None, self.landmarks] - own_pos[:, :, None]).reshape(self.n_envs, n, -1)
        prey_rel = self.pos[:, None, self.prey] - own_pos
        prey_vel = np.broadcast_to(self.vel[:, None, self.prey], own_vel.shape)
        return np.concatenate([own_vel, own_pos, lm, prey_rel, prey_vel], -1)


class Spread(ParticleWorld):
    n_actions = 5
    local_dim = 6

    def __init__(self, n_envs, seed, n_agents=3, episode_limit=25, observe_all=False):
        n = self.n_agents = n_agents
        super().__init__(n_envs, seed, observe_all,
                         sizes=[0.15] * n + [0.05] * n, accel=[5.0] * n + [0.0] * n,
                         max_speed=[np.inf] * 2 * n, movable=[True] * n + [False] * n,
                         collide=[True] * n + [False] * n, episode_limit=episode_limit)
        self.collisions = np.zeros(n_envs)

    def _reset(self, idx):
        self.pos[idx] = self.rng.uniform(-1, 1, (len(idx), 2 * self.n_agents, 2))
        self.vel[idx] = 0.0
        self.collisions[idx] = 0

    def _landmark_dist(self):
        n = self.n_agents
        return np.sqrt(((self.pos[:, :n, None] - self.pos[:, None, n:]) ** 2).sum(-1))  # [E, agent, landmark]

    def _step(self, actions, idx):
        self.physics(idx, actions)
        n = self.n_agents
        cover = self._landmark_dist()[idx].min(1).sum(1)
        touch = self.touching(list(range(n)), list(range(n)))[idx] & ~np.eye(n, dtype=bool)
        hits = touch.sum((1, 2))
        self.collisions[idx] += hits
        return -cover - hits, np.zeros(len(idx), dtype=bool), {"collisions": self.collisions[idx].copy()}

    def _local_obs(self):
        n = self.n_agents
        nearest = self._landmark_dist().argmin(-1)  # [E, n]
        lm_pos = np.take_along_axis(self.pos[:, n:], nearest[..., None], 1)
        return np.concatenate([self.vel[:, :n], self.pos[:, :n], lm_pos - self.pos[:, :n]], -1)


TAG_PARAMS = {
    "n_predators": Param(int, 2, low=1, doc="learning predators (paper: 2, 3, 6)"),
    "n_landmarks": Param(int, 2, low=0, doc="fixed obstacles"),
    "episode_limit": Param(int, 25, low=1, doc="steps per episode (MPE default 25)"),
    "observe_all": Param(bool, False, doc="every predator sees all predators' local observations (pi*)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}
SPREAD_PARAMS = {
    "n_agents": Param(int, 3, low=2, doc="agents and landmarks (paper: 2, 3)"),
    "episode_limit": Param(int, 25, low=1, doc="steps per episode (MPE default 25)"),
    "observe_all": Param(bool, False, doc="every agent sees all agents' local observations (pi*)"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


def make_tag(env_args, n_envs, seed):
    return Tag(n_envs, seed, **{k: v for k, v in env_args.items() if k != "seed"})


def make_spread(env_args, n_envs, seed):
    return Spread(n_envs, seed, **{k: v for k, v in env_args.items() if k != "seed"})
