"""Coordination game (paper 003): rules, reward variants, the batched env, and the exact evaluator
(values, price of anarchy, Nash gap) against hand-computed cases."""
import numpy as np
import pytest

from helpers import check_time_limit_and_frozen_env
from marlkit.errors import SuiteError
from plugins.dagbn.coordination_game import (CoordinationGame, bn_joint, build_model, factorise, make,
                                            nash_gap, optimal_return, optimal_solution, policy_return,
                                            policy_value, price_of_anarchy, reward_of_counts)

GAMMA = 0.95
# n = 2, public rules: landing in (0,0) pays 3, (1,1) pays 2, a mixed state 0. With P(follow) = 0.9,
# the expected one-step reward of joint action (0,0) is 0.81*3 + 0.01*2 = 2.45, of (1,1)
# 0.81*2 + 0.01*3 = 1.65, of a mixed action 0.09*3 + 0.09*2 = 0.45.
R00, R11, RMIX = 2.45, 1.65, 0.45


# ---- rules ---------------------------------------------------------------------------------
def test_public_rewards_by_number_of_ones():
    assert reward_of_counts(2, "public").tolist() == [3, 0, 2]
    # n=3, l=1: |#0-#1| = 1 -> (1 if more ones else 0); |#0-#1| = 3 -> 3 (all zeros) / 2 (all ones)
    assert reward_of_counts(3, "public").tolist() == [3, 0, 1, 2]
    # n=5, l=2: three ones -> 1, three zeros -> 0, otherwise 3 / 2
    assert reward_of_counts(5, "public").tolist() == [3, 3, 0, 1, 2, 2]
    # n=10, l=3: |#0-#1| in {0, 2} -> 1 if #1 > #0 else 0
    assert reward_of_counts(10, "public").tolist() == [3, 3, 3, 3, 0, 0, 1, 2, 2, 2, 2]


def test_paper_algorithm_1_rewards():
    # bound 1 for N in {2,3}, else 2; strict "<"
    assert reward_of_counts(2, "paper").tolist() == [3, 0, 2]
    assert reward_of_counts(3, "paper").tolist() == [3, 3, 2, 2]  # |diff| < 1 never holds for odd n
    assert reward_of_counts(5, "paper").tolist() == [3, 3, 0, 1, 2, 2]
    assert reward_of_counts(10, "paper").tolist() == [3, 3, 3, 3, 3, 0, 2, 2, 2, 2, 2]


def test_bound_override_and_undefined_public_bound():
    assert reward_of_counts(3, "public", bound=3).tolist() == [0, 0, 1, 1]
    assert reward_of_counts(4, "paper").tolist() == [3, 3, 0, 2, 2]
    with pytest.raises(SuiteError, match="bound"):
        reward_of_counts(4, "public")
    with pytest.raises(SuiteError, match="bound"):
        make({"n": 4}, 1, 0)
    assert make({"n": 4, "bound": 1}, 1, 0).n_agents == 4


# ---- the env -------------------------------------------------------------------------------
def test_deterministic_transitions_reward_the_next_state():
    env = CoordinationGame(3, n=3, success_prob=1.0, seed=0)
    env.reset()
    actions = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]])
    rewards, terminated, infos = env.step(actions, np.ones(3, bool))
    assert env.get_state().tolist() == actions.tolist()
    assert rewards.tolist() == [3, 1, 2] and not terminated.any()
    obs = env.get_obs()
    assert obs.shape == (3, 3, 3) and (obs == env.get_state()[:, None, :]).all()  # everyone sees all bits
    env = CoordinationGame(1, n=3, success_prob=0.0, seed=0)  # always the other value
    env.reset()
    rewards, _, _ = env.step(np.array([[0, 0, 0]]), np.ones(1, bool))
    assert env.get_state().tolist() == [[1, 1, 1]] and rewards.tolist() == [2]


def test_paper_variant_in_the_env():
    env = CoordinationGame(1, n=3, reward_variant="paper", success_prob=1.0, seed=0)
    env.reset()
    assert env.step(np.array([[0, 0, 1]]), np.ones(1, bool))[0].tolist() == [3]
    assert env.step(np.array([[0, 1, 1]]), np.ones(1, bool))[0].tolist() == [2]


def test_follow_probability_and_uniform_start():
    env = CoordinationGame(20000, n=2, seed=1)
    env.reset()
    start = env.get_state()
    assert abs(start.mean() - 0.5) < 0.02
    counts = np.bincount((start[:, 0] * 2 + start[:, 1]).astype(int), minlength=4) / 20000
    assert np.allclose(counts, 0.25, atol=0.02)
    actions = np.zeros((20000, 2), dtype=int)
    actions[:10000] = 1
    env.step(actions, np.ones(20000, bool))
    follow = (env.get_state() == actions).mean()
    assert abs(follow - 0.9) < 0.01


def test_sampled_first_reward_matches_the_model():
    model = build_model(3)
    env = CoordinationGame(40000, n=3, seed=2)
    env.reset()
    for a in (0, 3, 6):  # joint actions (0,0,0), (0,1,1), (1,1,0)
        env.reset()
        rewards, _, _ = env.step(np.tile(model.bits[a], (40000, 1)), np.ones(40000, bool))
        assert abs(rewards.mean() - model.reward[a]) < 0.03, (a, rewards.mean(), model.reward[a])


def test_episode_limit_and_inactive_envs():
    env = CoordinationGame(2, n=2, seed=3)
    env.reset()
    assert env.get_env_info() == {"state_shape": 2, "obs_shape": 2, "n_actions": 2, "n_agents": 2,
                                  "episode_limit": 25}
    terminated = check_time_limit_and_frozen_env(env, 25, np.ones((2, 2), int))
    assert not terminated[1]


def test_seeded_and_checkpointable():
    a, b = CoordinationGame(4, n=3, seed=7), CoordinationGame(4, n=3, seed=7)
    for env in (a, b):
        env.reset()
    assert (a.get_state() == b.get_state()).all()
    acts = np.ones((4, 3), int)
    a.step(acts, np.ones(4, bool))
    state = a.state_dict()
    ra = [a.step(acts, np.ones(4, bool))[0] for _ in range(5)]
    b.load_state_dict(state)
    rb = [b.step(acts, np.ones(4, bool))[0] for _ in range(5)]
    assert np.array_equal(np.array(ra), np.array(rb))


def test_registry_and_bad_args():
    from marlkit.registry import get_registry

    spec = get_registry().get("env", "coordination_game")
    env = spec.make({"n": 5}, 3, 1)
    assert env.get_env_info()["n_agents"] == 5 and env.gamma == 0.95
    with pytest.raises(SuiteError, match="reward_variant"):
        make({"reward_variant": "strict"}, 1, 0)
    with pytest.raises(SuiteError, match="unknown env_args key 'nn'"):
        make({"nn": 2}, 1, 0)


# ---- exact evaluation ----------------------------------------------------------------------
def constant_policy(model, joint_action):
    return np.tile(np.eye(model.n_joint_actions)[joint_action], (model.n_states, 1))


def value_iteration(model, tol=1e-12):
    """An independent oracle: V <- max_a r(a) + gamma K V until it stops moving."""
    V = np.zeros(model.n_states)
    while True:
        new = np.max(model.reward + model.gamma * model.kernel @ V) * np.ones(model.n_states)
        if np.abs(new - V).max() < tol:
            return new
        V = new


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("variant", ["public", "paper"])
def test_optimal_policy_has_price_of_anarchy_one(n, variant):
    model = build_model(n, reward_variant=variant)
    V_vi = value_iteration(model)
    V_star, policy = optimal_solution(model)
    assert np.allclose(V_star, V_vi, atol=1e-8)
    assert price_of_anarchy(model, policy) == pytest.approx(1.0, abs=1e-12)
    assert optimal_return(model) == pytest.approx(V_vi @ model.mu)


def test_hand_values_for_n2():
    model = build_model(2, gamma=GAMMA)
    assert model.reward.tolist() == pytest.approx([R00, RMIX, RMIX, R11])
    assert optimal_return(model) == pytest.approx(R00 / (1 - GAMMA))  # 49: always (0, 0)
    assert policy_return(model, constant_policy(model, 3)) == pytest.approx(R11 / (1 - GAMMA))  # 33
    assert price_of_anarchy(model, constant_policy(model, 3)) == pytest.approx(33 / 49)
    assert policy_return(model, constant_policy(model, 1)) == pytest.approx(RMIX / (1 - GAMMA))  # 9


def test_hand_value_of_a_stochastic_product_policy():
    # each agent plays 0 w.p. q in every state: each next bit is 0 w.p. z = 0.9q + 0.1(1-q),
    # independently, so r = 3 z^2 + 2 (1-z)^2 every step and V = r / (1 - gamma) in every state.
    model = build_model(2)
    q = 0.3
    z = 0.9 * q + 0.1 * (1 - q)
    joint = np.tile(np.outer([q, 1 - q], [q, 1 - q]).reshape(-1), (4, 1))
    assert np.allclose(policy_value(model, joint), (3 * z**2 + 2 * (1 - z) ** 2) / (1 - GAMMA))


def test_hand_value_of_a_state_dependent_policy():
    # "copy": play the current bits. By symmetry the states form 3 classes: Z=(0,0), O=(1,1), M mixed.
    # From Z: Z .81, O .01, M .18, r 2.45; from O: O .81, Z .01, M .18, r 1.65;
    # from M: M .82, Z .09, O .09, r 0.45. Solve the 3x3 system by Cramer's rule.
    model = build_model(2)
    g = GAMMA
    A = np.array([[1 - g * .81, -g * .01, -g * .18],
                  [-g * .01, 1 - g * .81, -g * .18],
                  [-g * .09, -g * .09, 1 - g * .82]])
    r = np.array([R00, R11, RMIX])
    det = np.linalg.det(A)
    V = [np.linalg.det(np.column_stack([r if k == j else A[:, k] for k in range(3)])) / det for j in range(3)]
    copy = lambda bits: np.eye(4)[bits[0] * 2 + bits[1]]  # noqa: E731  (callable policy)
    got = policy_value(model, copy)
    assert got[0] == pytest.approx(V[0]) and got[3] == pytest.approx(V[1])
    assert got[1] == pytest.approx(V[2]) and got[2] == pytest.approx(V[2])


def deterministic_product(model, actions):
    """Product policy whose agent i always plays actions[i]: tables [S, 1, 2]."""
    return tuple(() for _ in actions), [np.tile(np.eye(2)[a], (model.n_states, 1, 1)) for a in actions]


def test_nash_gap_of_nash_and_non_nash_product_policies():
    model = build_model(2)
    assert nash_gap(model, *deterministic_product(model, [1, 1])) == pytest.approx(0.0, abs=1e-9)  # value 33
    assert nash_gap(model, *deterministic_product(model, [0, 0])) == pytest.approx(0.0, abs=1e-9)  # optimum
    # (0, 1) is worth 9; agent 0 switching to 1 gives 33 (+24), agent 1 switching to 0 gives 49 (+40)
    per_agent = nash_gap(model, *deterministic_product(model, [0, 1]), per_agent=True)
    assert per_agent.tolist() == pytest.approx([24.0, 40.0])
    assert nash_gap(model, *deterministic_product(model, [0, 1])) == pytest.approx(40.0)


def test_nash_gap_of_a_bn_policy():
    # Agent 0 plays uniformly, agent 1 copies agent 0: joint 1/2 (0,0) + 1/2 (1,1), value
    # (2.45 + 1.65) / 2 / 0.05 = 41. Agent 0's best deviation: always 0 (agent 1 follows) -> 49;
    # agent 1 already plays its best response to its parent. Nash gap 8.
    model = build_model(2)
    parents = ((), (0,))
    t0 = np.full((4, 1, 2), 0.5)
    t1 = np.tile(np.eye(2), (4, 1, 1))  # pi^1(a1 | s, a0) = 1[a1 = a0]
    assert policy_return(model, bn_joint(model, parents, [t0, t1])) == pytest.approx(41.0)
    assert nash_gap(model, parents, [t0, t1], per_agent=True).tolist() == pytest.approx([8.0, 0.0], abs=1e-9)


def test_nash_gap_is_batched_and_factorise_round_trips():
    model = build_model(3)
    rng = np.random.default_rng(0)
    joint = rng.dirichlet(np.ones(8), size=(4, 8))  # 4 random general joint policies
    parents, tables = factorise(model, joint)
    assert np.allclose(bn_joint(model, parents, tables), joint)
    gaps = nash_gap(model, parents, tables)
    assert gaps.shape == (4,) and (gaps > 0).all()
    single = [nash_gap(model, parents, [t[k] for t in tables]) for k in range(4)]
    assert np.allclose(gaps, single)
    # the optimum (always all zeros) is a Nash policy under any factorisation
    assert nash_gap(model, *factorise(model, constant_policy(model, 0))) == pytest.approx(0.0, abs=1e-9)


def test_bad_policies_and_dags_are_rejected():
    model = build_model(2)
    with pytest.raises(SuiteError):
        policy_value(model, np.full((4, 4), 0.3))
    with pytest.raises(SuiteError, match="cycle"):
        nash_gap(model, ((1,), (0,)), [np.full((4, 2, 2), .5)] * 2)
