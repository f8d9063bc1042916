"""Aloha (paper 003, Section 7.1): scripted steps check success, collisions, non-neighbours,
packet arrivals with a seeded rng, the capacity cap and the 20-step limit."""
import numpy as np
import pytest

from helpers import check_time_limit_and_frozen_env
from marlkit.errors import SuiteError
from plugins.dagbn.aloha import Aloha, adjacency, make

ALL = np.ones(1, bool)


def neighbours(adj, k):
    return set(np.flatnonzero(adj[k]).tolist())


def scripted(**kw):
    """One env, no arrivals unless asked: a deterministic stage for scripted actions."""
    env = Aloha(1, **{"arrival_prob": 0.0, "seed": 0, **kw})
    env.reset()
    return env


def act(*transmitters, n=10):
    a = np.zeros((1, n), dtype=int)
    a[0, list(transmitters)] = 1
    return a


def test_grid_neighbourhood():
    adj = adjacency(2, 5)
    assert (adj == adj.T).all() and adj.trace() == 0
    assert neighbours(adj, 0) == {1, 5}
    assert neighbours(adj, 4) == {3, 9}
    assert neighbours(adj, 5) == {0, 6}
    assert neighbours(adj, 6) == {1, 5, 7}
    assert adj.sum() == 2 * 13  # 8 horizontal + 5 vertical edges
    chain = adjacency(2, 5, "chain")  # the reference code's matrix: grid plus 4 ~ 5
    assert neighbours(chain, 4) == {3, 5, 9} and (chain - adj).sum() == 2


def test_lone_transmission_succeeds():
    env = scripted()
    rewards, terminated, infos = env.step(act(3), ALL)
    assert rewards.tolist() == pytest.approx([0.1])
    assert env.get_obs()[0, :, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
    assert infos[0]["transmitted"] == 1 and infos[0]["collisions"] == 0 and not terminated[0]


def test_neighbours_transmitting_together_collide():
    env = scripted()
    rewards, _, infos = env.step(act(0, 1), ALL)  # horizontal neighbours: -10 each
    assert rewards.tolist() == pytest.approx([-20.0])
    assert env.get_state()[0].tolist() == [1] * 10 and infos[0]["collisions"] == 2
    rewards, _, _ = env.step(act(2, 7, 8), ALL)  # 2~7 vertical, 7~8 horizontal: all three collide
    assert rewards.tolist() == pytest.approx([-30.0])


def test_non_neighbours_transmitting_together_both_succeed():
    env = scripted()
    rewards, _, _ = env.step(act(0, 2, 6, 9), ALL)  # 0, 2, 6 diagonal / two apart; 9 far
    assert rewards.tolist() == pytest.approx([0.4])
    assert env.get_state()[0].tolist() == [0, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    env = scripted(neighbourhood="chain")
    rewards, _, _ = env.step(act(4, 5), ALL)  # neighbours only in the reference adjacency
    assert rewards.tolist() == pytest.approx([-20.0])
    env = scripted()
    assert env.step(act(4, 5), ALL)[0].tolist() == pytest.approx([0.2])


def test_empty_backlogs():
    env = scripted(initial_backlog=0)
    assert env.step(act(0), ALL)[0].tolist() == [0.0]  # nothing to send: no reward, no penalty
    env = scripted()
    env.step(act(0), ALL)  # agent 0 empties its backlog
    rewards, _, _ = env.step(act(0, 1), ALL)  # agent 0 "transmits" nothing but still blocks 1
    assert rewards.tolist() == pytest.approx([-10.0])
    env = scripted(empty_transmit_collides=False)
    env.step(act(0), ALL)
    rewards, _, _ = env.step(act(0, 1), ALL)
    assert rewards.tolist() == pytest.approx([0.1])


def test_arrivals_follow_the_seeded_rng():
    env = Aloha(3, seed=11)
    env.reset()
    rewards, _, _ = env.step(np.zeros((3, 10), int), np.ones(3, bool))
    expected = 1 + (np.random.default_rng(11).random((3, 10)) < 0.6)
    assert (env.get_state() == expected).all() and rewards.tolist() == [0, 0, 0]
    big = Aloha(5000, seed=1)
    big.reset()
    big.step(np.zeros((5000, 10), int), np.ones(5000, bool))
    assert abs((big.get_state() - 1).mean() - 0.6) < 0.01


def test_capacity_cap():
    env = scripted(arrival_prob=1.0)
    for _ in range(10):
        env.step(act(), ALL)
    assert env.get_state()[0].tolist() == [5] * 10
    rewards, _, _ = env.step(act(0), ALL)  # send one, receive one: stays at the cap
    assert rewards.tolist() == pytest.approx([0.1]) and env.get_state()[0, 0] == 5


def test_twenty_step_limit_and_inactive_envs():
    env = Aloha(2, seed=0)
    env.reset()
    assert env.get_env_info() == {"state_shape": 10, "obs_shape": 1, "n_actions": 2, "n_agents": 10,
                                  "episode_limit": 20}
    check_time_limit_and_frozen_env(env, 20, np.ones((2, 10), int))
    env.reset()
    assert (env.get_state() == 1).all() and env.t.tolist() == [0, 0]


def test_obs_scaling_checkpoint_and_registry():
    env = Aloha(2, obs_normalise=True, seed=4)
    env.reset()
    assert env.get_obs().shape == (2, 10, 1) and np.allclose(env.get_obs(), 0.2)
    acts = np.random.default_rng(0).integers(0, 2, (6, 2, 10))
    env.step(acts[0], np.ones(2, bool))
    state = env.state_dict()
    first = [env.step(a, np.ones(2, bool))[0] for a in acts[1:]]
    env.load_state_dict(state)
    again = [env.step(a, np.ones(2, bool))[0] for a in acts[1:]]
    assert np.array_equal(first, again)
    from marlkit.registry import get_registry

    built = get_registry().get("env", "aloha").make({"rows": 3, "cols": 3}, 4, 0)
    assert built.get_env_info()["n_agents"] == 9
    with pytest.raises(SuiteError, match="neighbourhood"):
        make({"neighbourhood": "hex"}, 1, 0)
    with pytest.raises(SuiteError, match="initial_backlog"):
        make({"initial_backlog": 6}, 1, 0)
