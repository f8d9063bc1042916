"""The n-agent coordination game of the BN-policy paper (paper 003, Section 7.1 and Appendix B.1),
as a batched ``VecEnv`` plus an exact model for evaluating tabular joint policies.

Rules
-----
* State: n bits s = (s_1, ..., s_n); every agent observes all of them (full observability), so
  obs[agent] = state = the n bits.
* Actions: a_i in {0, 1}. The next bit of agent i follows its own action only:
  P(s'_i = a_i) = 0.9, P(s'_i = 1 - a_i) = 0.1 (paper: P(s^i=0|a^i=0) = 1-eps, P(s^i=0|a^i=1) = eps,
  eps = 0.1; ``success_prob`` = 1 - eps). The kernel does not depend on the current state.
* Team reward of a step: a function of the counts of zeros and ones in the NEXT joint state
  (the state the step lands in), with difference bound l:

  - ``reward_variant: public`` (default; the public reference runs, IMPLEMENTATION_NOTES.md):
    l = {2: 1, 3: 1, 5: 2, 10: 3}[n];
    if |#0 - #1| <= l: reward = 1 if #1 > #0 else 0; else reward = 3 if #0 > #1 else 2.
  - ``reward_variant: paper`` (the paper's Algorithm 1, Appendix B.1.1, verbatim):
    difference_bound = 1 if N in {2, 3} else 2;
    if |count(0) - count(1)| < difference_bound: reward = 1 if count(0) < count(1) else 0;
    elif count(0) > count(1): reward = 3; else reward = 2.

  ``bound`` overrides l (or difference_bound) for either variant. The two variants agree for
  n = 2 and n = 5 (|#0 - #1| has the parity of n) and differ for n = 3 (public: two ones -> 1,
  two zeros -> 0; paper: the strict test never holds, so two or three zeros -> 3, else 2).
* Initial state: uniform over the 2^n states (paper Table 1, mu = Uniform); ``initial_state:
  zeros`` starts from all zeros instead.
* Episodes: 25 steps (IMPLEMENTATION_NOTES.md; the time limit sets info["episode_limit"] = True).
  Note: the paper's Table 2 lists "episode length 20, 25, 400 for CG, Aloha, SMAC", the reverse of
  the public runs for CG/Aloha; ``episode_limit`` is an option. gamma = 0.95 (paper Table 1).

Exact evaluation (``build_model`` and the functions below) follows the paper's definitions
(Section 3): the value of a joint policy is the *infinite-horizon discounted* return
V_pi(mu) = E[sum_t gamma^t r_t | s_0 ~ mu] with gamma = 0.95, obtained by solving the Bellman
equations (I - gamma P_pi) V = r_pi over all 2^n states x 2^n joint actions. The episode limit
only applies to the sampled env. Price of anarchy = V_pi(mu) / V*(mu) (rewards are >= 0, so it lies
in [0, 1]); Nash gap = max_i (max_{pi'^i} V_{pi'^i, pi^-i}(mu) - V_pi(mu)), where agent i deviates
over its local policy pi^i(a^i | s, a^{P_i}) while the other agents keep their (possibly
parent-conditioned) local policies (Definition 3.1 applied to BN policies, Section 4).

Indexing: a joint state or joint action (x_1, ..., x_n) has index sum_i x_i 2^(n-1-i) (C order,
agent 0 is the most significant bit), i.e. ``np.ravel_multi_index(x, (2,) * n)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marlkit.envs.base import VecEnv
from marlkit.errors import SuiteError
from marlkit.params import Param, check_env_args

PUBLIC_BOUNDS = {2: 1, 3: 1, 5: 2, 10: 3}  # the public runs' difference bound per n
MAX_EXACT_AGENTS = 8  # exact evaluation holds 2^n x 2^n tables

PARAMS = {
    "n": Param(int, 2, low=2, high=20, doc="number of agents (bits)"),
    "reward_variant": Param(str, "public", choices=("public", "paper"),
                            doc="public: |#0-#1| <= l with l={2:1,3:1,5:2,10:3}[n]; paper: Algorithm 1, "
                                "strict < with bound 1 (n<=3) or 2"),
    "bound": Param(int, None, low=0, nullable=True, doc="override of the difference bound l"),
    "success_prob": Param(float, 0.9, low=0.0, high=1.0,
                          doc="probability that the next bit equals the action (paper: 1 - eps)"),
    "episode_limit": Param(int, 25, low=1, doc="steps per episode (time limit)"),
    "gamma": Param(float, 0.95, low=0.0, high=0.999999,
                   doc="discount of the exact evaluator (PoA, Nash gap); paper Table 1"),
    "initial_state": Param(str, "uniform", choices=("uniform", "zeros"),
                           doc="uniform over the 2^n states (paper Table 1) or all zeros"),
    "seed": Param(int, None, low=0, nullable=True, doc="fallback only: the runner passes the run seed"),
}


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------
def difference_bound(n: int, reward_variant: str = "public", bound: int | None = None) -> int:
    if bound is not None:
        return int(bound)
    if reward_variant == "paper":
        return 1 if n in (2, 3) else 2
    if reward_variant == "public":
        if n not in PUBLIC_BOUNDS:
            raise SuiteError(f"coordination_game: the public runs define the bound only for n in "
                             f"{sorted(PUBLIC_BOUNDS)}; set env_args.bound for n={n}")
        return PUBLIC_BOUNDS[n]
    raise SuiteError(f"coordination_game: reward_variant must be 'public' or 'paper', got {reward_variant!r}")


def reward_of_counts(n: int, reward_variant: str = "public", bound: int | None = None) -> np.ndarray:
    """Reward of landing in a joint state with k ones, for k = 0..n (array of length n + 1)."""
    l = difference_bound(n, reward_variant, bound)
    out = np.zeros(n + 1)
    for ones in range(n + 1):
        zeros = n - ones
        diff = abs(zeros - ones)
        close = diff <= l if reward_variant == "public" else diff < l
        if close:
            out[ones] = 1.0 if ones > zeros else 0.0
        else:
            out[ones] = 3.0 if zeros > ones else 2.0
    return out


def index_bits(n: int) -> np.ndarray:
    """[2^n, n] int array: row k holds the bits of joint index k (agent 0 most significant)."""
    k = np.arange(2**n)
    return ((k[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Exact model and evaluation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactModel:
    """The coordination game as explicit tables.

    kernel[a, s'] = P(s' | s, a) (the same for every s); reward[a] = E[r | s, a] (the expected
    reward of the next state, again the same for every s); mu[s] = initial distribution.
    """

    n: int
    gamma: float
    bits: np.ndarray  # [S, n]
    kernel: np.ndarray  # [A, S]
    reward: np.ndarray  # [A]
    state_reward: np.ndarray  # [S] reward of landing in s'
    mu: np.ndarray  # [S]

    @property
    def n_states(self):
        return 2**self.n

    @property
    def n_joint_actions(self):
        return 2**self.n

    def q_values(self, V):
        """Q[..., s, a] = reward[a] + gamma * sum_s' kernel[a, s'] V[..., s'] (state-independent rows)."""
        q = self.reward + self.gamma * np.einsum("at,...t->...a", self.kernel, V)
        return np.broadcast_to(q[..., None, :], q.shape[:-1] + (self.n_states, self.n_joint_actions))


def build_model(n=2, reward_variant="public", bound=None, success_prob=0.9, gamma=0.95,
                initial_state="uniform", **_ignored) -> ExactModel:
    """Exact tables of the game (accepts the env's env_args; episode_limit/seed are ignored)."""
    if n > MAX_EXACT_AGENTS:
        raise SuiteError(f"coordination_game: exact evaluation holds 2^n x 2^n tables; n={n} > {MAX_EXACT_AGENTS}")
    bits = index_bits(n)
    # P(s'_i | a_i) for every (a, s') pair: success_prob where the bits agree, else 1 - success_prob.
    agree = bits[:, None, :] == bits[None, :, :]  # [A, S, n]
    kernel = np.where(agree, success_prob, 1.0 - success_prob).prod(-1)
    state_reward = reward_of_counts(n, reward_variant, bound)[bits.sum(1)]
    mu = np.full(2**n, 1.0 / 2**n) if initial_state == "uniform" else np.eye(2**n)[0]
    return ExactModel(n, float(gamma), bits, kernel, kernel @ state_reward, state_reward, mu)


def joint_table(model: ExactModel, policy) -> np.ndarray:
    """A joint policy as an array [..., S, A] of joint-action probabilities per state.

    ``policy`` is such an array already, or a callable taking the n bits of a state and returning
    the joint-action distribution (length 2^n, or shape (2,) * n).
    """
    if callable(policy):
        rows = [np.asarray(policy(b), dtype=float).reshape(-1) for b in model.bits]
        policy = np.stack(rows)
    table = np.asarray(policy, dtype=float)
    shape = (model.n_states, model.n_joint_actions)
    if table.shape[-2:] != shape:
        raise SuiteError(f"joint policy must have shape [..., {shape[0]}, {shape[1]}], got {table.shape}")
    if not np.allclose(table.sum(-1), 1.0, atol=1e-8) or (table < -1e-12).any():
        raise SuiteError("joint policy rows must be probability distributions over joint actions")
    return table


def policy_value(model: ExactModel, joint) -> np.ndarray:
    """V_pi[..., s]: exact discounted values, solving (I - gamma P_pi) V = r_pi."""
    joint = joint_table(model, joint)
    P = joint @ model.kernel  # [..., S, S]
    r = joint @ model.reward  # [..., S]
    eye = np.eye(model.n_states)
    return np.linalg.solve(eye - model.gamma * P, r[..., None])[..., 0]


def policy_return(model: ExactModel, joint) -> np.ndarray:
    """V_pi(mu) = sum_s mu(s) V_pi(s)."""
    return policy_value(model, joint) @ model.mu


def optimal_solution(model: ExactModel, max_iter=1000):
    """(V*, a deterministic optimal joint policy [S, A]) by policy iteration over joint actions."""
    greedy = np.zeros(model.n_states, dtype=np.int64)
    for _ in range(max_iter):
        joint = np.eye(model.n_joint_actions)[greedy]
        V = policy_value(model, joint)
        Q = model.q_values(V)
        best = Q.max(-1)
        current = np.take_along_axis(Q, greedy[:, None], -1)[:, 0]
        improve = best > current + 1e-12 * (1.0 + np.abs(best))
        if not improve.any():
            return V, joint
        greedy = np.where(improve, Q.argmax(-1), greedy)
    raise RuntimeError("policy iteration did not converge")


def optimal_return(model: ExactModel) -> float:
    """V*(mu)."""
    return float(optimal_solution(model)[0] @ model.mu)


def price_of_anarchy(model: ExactModel, joint, optimum: float | None = None) -> np.ndarray:
    """V_pi(mu) / V*(mu) (in [0, 1]: the rewards are non-negative)."""
    optimum = optimal_return(model) if optimum is None else optimum
    return policy_return(model, joint) / optimum


# ---------------------------------------------------------------------------------------------
# Bayesian-network (BN) policies: local tables pi^i(a^i | s, a^{P_i})
# ---------------------------------------------------------------------------------------------
def check_dag(parents, n):
    """``parents[i]`` = sorted tuple of agent i's parents; raises unless it is a DAG on n agents."""
    parents = tuple(tuple(sorted(int(j) for j in p)) for p in parents)
    if len(parents) != n:
        raise SuiteError(f"a BN policy needs one parent list per agent ({n}), got {len(parents)}")
    for i, ps in enumerate(parents):
        if len(set(ps)) != len(ps) or i in ps or any(j < 0 or j >= n for j in ps):
            raise SuiteError(f"agent {i} has invalid parents {ps}")
    done, visiting = set(), set()

    def visit(i):
        if i in done:
            return
        if i in visiting:
            raise SuiteError(f"the parent lists {parents} contain a cycle through agent {i}")
        visiting.add(i)
        for j in parents[i]:
            visit(j)
        visiting.discard(i)
        done.add(i)

    for i in range(n):
        visit(i)
    return parents


def parent_index(bits: np.ndarray, parents_i) -> np.ndarray:
    """For every joint action (rows of ``bits``): the index of its parent configuration a^{P_i}."""
    k = len(parents_i)
    idx = np.zeros(len(bits), dtype=np.int64)
    for m, j in enumerate(parents_i):
        idx += bits[:, j] << (k - 1 - m)
    return idx


def bn_factors(model: ExactModel, parents, tables) -> list:
    """Per agent i: the factor pi^i(a^i | s, a^{P_i}) evaluated at every joint action, [..., S, A]."""
    parents = check_dag(parents, model.n)
    out = []
    for i, ps in enumerate(parents):
        t = np.asarray(tables[i], dtype=float)
        if t.shape[-3:] != (model.n_states, 2 ** len(ps), 2):
            raise SuiteError(f"agent {i}: local table must have shape [..., {model.n_states}, "
                             f"{2 ** len(ps)}, 2], got {t.shape}")
        out.append(t[..., parent_index(model.bits, ps), model.bits[:, i]])
    return out


def bn_joint(model: ExactModel, parents, tables) -> np.ndarray:
    """Joint policy [..., S, A] of a BN policy: pi(a|s) = prod_i pi^i(a^i | s, a^{P_i})."""
    factors = bn_factors(model, parents, tables)
    joint = factors[0]
    for f in factors[1:]:
        joint = joint * f
    return joint


def factorise(model: ExactModel, joint) -> tuple:
    """(parents, tables) of the fully-correlated BN (parents of i = all j < i) equal to ``joint``.

    Chain rule: pi^i(a^i | s, a^{<i}) = pi(a^{<=i} | s) / pi(a^{<i} | s). Parent configurations of
    probability zero get the uniform conditional (a convention: it does not change the joint
    policy, but it can change what a unilateral deviation of an earlier agent leads to).
    """
    joint = joint_table(model, joint)
    n = model.n
    lead = joint.shape[:-1]
    marg = joint.reshape(lead + (2,) * n)
    parents, tables = [], []
    for i in range(n):
        prefix = marg.sum(axis=tuple(range(len(lead) + i + 1, len(lead) + n))) if i < n - 1 else marg
        prefix = prefix.reshape(lead + (2**i, 2))  # pi(a^{<i}, a^i | s)
        denom = prefix.sum(-1, keepdims=True)
        cond = np.where(denom > 0, prefix / np.where(denom > 0, denom, 1.0), 0.5)
        parents.append(tuple(range(i)))
        tables.append(cond)
    return tuple(parents), tables


def best_response_return(model: ExactModel, parents, tables, agent: int, max_iter=500) -> np.ndarray:
    """max over agent's local policy pi'^i(a^i | s, a^{P_i}) of V(mu), the others held fixed.

    With the other local policies fixed, the joint-action distribution under a deterministic
    decision rule delta(s, p) of agent i is W_i[s, a] * 1[a^i = delta(s, p(a))], where
    W_i = prod_{j != i} pi^j. Expected one-step values separate over the parent configurations p,
    so exact policy iteration over (s, p) -> a^i finds the best response (stochastic deviations
    are mixtures of deterministic ones and cannot do better). Batched over leading axes.
    """
    parents = check_dag(parents, model.n)
    factors = bn_factors(model, parents, tables)
    others = np.ones(factors[0].shape)
    for j, f in enumerate(factors):
        if j != agent:
            others = others * f
    pid = parent_index(model.bits, parents[agent])
    own = model.bits[:, agent]
    n_p = 2 ** len(parents[agent])
    # select[p, b, a] = 1 where joint action a has parent config p and own action b
    select = np.zeros((n_p, 2, model.n_joint_actions))
    select[pid, own, np.arange(model.n_joint_actions)] = 1.0
    delta = np.asarray(tables[agent]).argmax(-1)  # [..., S, n_p]: start from the greedy policy
    for _ in range(max_iter):
        joint = others * (delta[..., pid] == own)  # delta[..., s, p(a)] == a^i
        V = policy_value(model, joint)
        Q = model.q_values(V)
        G = np.einsum("...sa,pba->...spb", others * Q, select)  # value of choosing b at (s, p)
        best = G.max(-1)
        current = np.take_along_axis(G, delta[..., None], -1)[..., 0]
        improve = best > current + 1e-12 * (1.0 + np.abs(best))
        if not improve.any():
            return V @ model.mu
        delta = np.where(improve, G.argmax(-1), delta)
    raise RuntimeError("best-response policy iteration did not converge")


def nash_gap(model: ExactModel, parents, tables, per_agent=False):
    """max_i (best-response value of agent i) - V_pi(mu), >= 0 (clipped at rounding level).

    For a general joint policy use ``nash_gap(model, *factorise(model, joint))``.
    """
    value = policy_return(model, bn_joint(model, parents, tables))
    gaps = np.stack([best_response_return(model, parents, tables, i) - value for i in range(model.n)], -1)
    gaps = np.maximum(gaps, 0.0)
    return gaps if per_agent else gaps.max(-1)


# ---------------------------------------------------------------------------------------------
# The batched env
# ---------------------------------------------------------------------------------------------
class CoordinationGame(VecEnv):
    """n_envs coordination games stepped together (numpy, seeded)."""

    def __init__(self, n_envs, n=2, reward_variant="public", bound=None, success_prob=0.9, episode_limit=25,
                 gamma=0.95, initial_state="uniform", seed=None):
        self.n_envs, self.n_agents = int(n_envs), int(n)
        self.reward_variant, self.bound = reward_variant, bound
        self.success_prob, self.episode_limit = float(success_prob), int(episode_limit)
        self.gamma, self.initial_state = float(gamma), initial_state
        self.count_reward = reward_of_counts(self.n_agents, reward_variant, bound).astype(np.float32)
        self.rng = np.random.default_rng(seed)
        self.bits = np.zeros((self.n_envs, self.n_agents), dtype=np.int64)
        self.t = np.zeros(self.n_envs, dtype=np.int64)

    def model(self) -> ExactModel:
        """The exact tables of this game (for PoA / Nash gap)."""
        return build_model(self.n_agents, self.reward_variant, self.bound, self.success_prob, self.gamma,
                           self.initial_state)

    def get_env_info(self):
        return {"state_shape": self.n_agents, "obs_shape": self.n_agents, "n_actions": 2,
                "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def reset(self):
        if self.initial_state == "uniform":
            self.bits = self.rng.integers(0, 2, size=(self.n_envs, self.n_agents))
        else:
            self.bits = np.zeros((self.n_envs, self.n_agents), dtype=np.int64)
        self.t[:] = 0

    def step(self, actions, active):
        actions, active = binary_actions(self, "coordination_game", actions, active)
        follow = self.rng.random((self.n_envs, self.n_agents)) < self.success_prob
        nxt = np.where(follow, actions, 1 - actions)
        self.bits = np.where(active[:, None], nxt, self.bits)
        self.t += active
        rewards = np.where(active, self.count_reward[self.bits.sum(1)], 0.0).astype(np.float32)
        limit = self.t >= self.episode_limit
        infos = [{"episode_limit": bool(limit[e])} for e in range(self.n_envs)]
        return rewards, limit & active, infos

    def get_obs(self):
        state = self.bits.astype(np.float32)
        return np.repeat(state[:, None, :], self.n_agents, axis=1)

    def get_state(self):
        return self.bits.astype(np.float32)

    def get_avail_actions(self):
        return np.ones((self.n_envs, self.n_agents, 2), dtype=np.float32)

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state, "bits": self.bits.copy(), "t": self.t.copy()}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.bits, self.t = np.array(state["bits"]), np.array(state["t"])


def binary_actions(env, name, actions, active, meaning="0 or 1"):
    """``(actions [n_envs, n_agents] int64, active [n_envs] bool)`` of a binary-action env (this
    game and Aloha), or a one-line SuiteError for any other action."""
    actions = np.asarray(actions, dtype=np.int64).reshape(env.n_envs, env.n_agents)
    if ((actions < 0) | (actions > 1)).any():
        raise SuiteError(f"{name} actions must be {meaning}, got {np.unique(actions).tolist()}")
    return actions, np.asarray(active, dtype=bool)


def make(env_args, n_envs, seed):
    args = check_env_args("coordination_game", env_args, PARAMS)
    if seed is not None:
        args["seed"] = seed
    difference_bound(args["n"], args["reward_variant"], args["bound"])  # fail fast on an undefined bound
    return CoordinationGame(n_envs, **args)
