"""The runner's bookkeeping: termination vs truncation, filled masks, rewards, t_env, seeds."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th

from marlkit.envs.base import SerialVecEnv, VecEnv, derived_seeds
from marlkit.experiment import build_scheme
from marlkit.registry import get_registry
from marlkit.runners import Runner

from helpers import Stats, runner_args


class Scripted(VecEnv):
    """Env i ends by itself after ends[i] steps; the time limit is `limit` (a truncation)."""

    def __init__(self, ends, limit):
        self.ends, self.limit, self.n_envs = np.asarray(ends), limit, len(ends)
        self.t = np.zeros(self.n_envs, dtype=int)

    def get_env_info(self):
        return {"state_shape": 1, "obs_shape": 1, "n_actions": 2, "n_agents": 2, "episode_limit": self.limit}

    def reset(self):
        self.t[:] = 0

    def step(self, actions, active):
        self.t[active] += 1
        natural = self.t >= self.ends
        truncated = (self.t >= self.limit) & ~natural
        infos = [{"episode_limit": bool(truncated[i]), "battle_won": int(natural[i])} for i in range(self.n_envs)]
        return self.t.astype(np.float32), natural | truncated, infos

    def get_obs(self):
        return self.t[:, None, None].repeat(2, 1).astype(np.float32)

    def get_state(self):
        return self.t[:, None].astype(np.float32)

    def get_avail_actions(self):
        return np.ones((self.n_envs, 2, 2), dtype=np.float32)


class FixedMAC:
    """Always picks action 1; records nothing else."""

    action_selector = SimpleNamespace()

    def __init__(self, scheme=None, groups=None, args=None):  # the controller constructor of the contract
        pass

    def init_hidden(self, batch_size):
        pass

    def select_actions(self, batch, t_ep, t_env, bs, test_mode=False):
        rows = batch.batch_size if isinstance(bs, slice) else len(bs)  # pymarl's bs: a slice or env indices
        return th.ones(rows, 2, dtype=th.long), {}


def make_runner(ends, limit, mac=None):
    args = runner_args(test_nepisode=len(ends), env="scripted")
    env = Scripted(ends, limit)
    runner, logger = Runner(args, Stats(), env), None
    scheme, groups, preprocess = build_scheme(args, env.get_env_info(), get_registry())
    runner.setup(scheme, groups, preprocess, mac or FixedMAC())
    return runner


def test_termination_truncation_and_masks():
    runner = make_runner(ends=[2, 5], limit=3)  # env 0 ends itself at 2; env 1 is cut at the limit 3
    batch, returns = runner.run()
    term = batch["terminated"][:, :, 0]
    assert term[0].tolist() == [0, 1, 0, 0]  # a real terminal state: no bootstrap
    assert term[1].tolist() == [0, 0, 0, 0]  # truncation at the limit: targets bootstrap
    # as in pymarl, the slot holding the observation after the last step is marked filled too;
    # learners mask it out through `terminated` (real ends) or because it is the last slot (limit)
    assert batch["filled"][:, :, 0].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["reward"][:, :, 0].tolist() == [[1, 2, 0, 0], [1, 2, 3, 0]]
    # the observation after the last step is stored (targets use it)
    assert batch["obs"][0, 2, 0, 0] == 2 and batch["obs"][1, 3, 0, 0] == 3
    assert returns == [3.0, 6.0] and runner.t_env == 5
    assert runner.logger.logged["battle_won_mean"] == 0.5 and runner.logger.logged["ep_length_mean"] == 2.5


def test_actions_are_selected_without_an_autograd_graph():
    seen = []

    class Recording(FixedMAC):
        def select_actions(self, batch, t_ep, t_env, bs, test_mode=False):
            seen.append(th.is_grad_enabled())
            return super().select_actions(batch, t_ep, t_env, bs, test_mode)

    make_runner(ends=[2, 2], limit=3, mac=Recording()).run()
    assert seen and not any(seen) and th.is_grad_enabled()


def test_test_episodes_do_not_count_env_steps():
    runner = make_runner(ends=[2, 2], limit=3)
    runner.run(test_mode=True)
    assert runner.t_env == 0 and runner.logger.logged["test_return_mean"] == 3.0


class Single:
    """A pymarl-style single env without its own truncation flag."""

    episode_limit = 2

    def get_env_info(self):
        return {"state_shape": 1, "obs_shape": 1, "n_actions": 1, "n_agents": 1, "episode_limit": 2}

    def reset(self):
        self.t = 0

    def step(self, actions):
        self.t += 1
        return 1.0, self.t >= 2, {}


def test_serial_vec_env_marks_time_limit_as_truncation():
    env = SerialVecEnv([Single(), Single()])
    env.reset()
    env.step(np.zeros((2, 1)), np.array([True, True]))
    _, terminated, infos = env.step(np.zeros((2, 1)), np.array([True, False]))
    assert terminated.tolist() == [True, False] and infos[0]["episode_limit"] is True and infos[1] == {}


def test_derived_seeds_differ_and_repeat():
    seeds = derived_seeds(7, 8)
    assert len(set(seeds)) == 8 and seeds == derived_seeds(7, 8) and seeds != derived_seeds(8, 8)


class WithExtras(Scripted):
    """Scripted plus two per-step extras: `count` [n_envs, 2 agents, 2] = 10 * t + 100 * env + agent,
    and `unused`, which no scheme declares. Counts its get_extras() calls."""

    def __init__(self, ends, limit):
        super().__init__(ends, limit)
        self.extras_calls = 0

    def get_env_info(self):
        return dict(super().get_env_info(), extras={"count": (2,), "unused": (1,)})

    def get_extras(self):
        self.extras_calls += 1
        count = 10 * self.t[:, None, None] + 100 * np.arange(self.n_envs)[:, None, None] + np.arange(2)[None, :, None]
        return {"count": np.broadcast_to(count, (self.n_envs, 2, 2)).astype(np.float32),
                "unused": np.full((self.n_envs, 2, 1), 7.0, dtype=np.float32)}


def count_field(args, env_info):
    """A plugin's scheme callable: declares the env extra `count` with the shape the env gives."""
    return {"count": {"vshape": env_info["extras"]["count"], "group": "agents"}}


def extras_runner(ends, limit, declare):
    from marlkit.registry import Registry

    reg = Registry()  # a private registry: the counting controller stays out of the shared one
    reg.add("controller", "counting_mac", FixedMAC, scheme=count_field if declare else None)
    args = runner_args(test_nepisode=len(ends), env="extras", mac="counting_mac")
    env = WithExtras(ends, limit)
    runner = Runner(args, Stats(), env)
    scheme, groups, preprocess = build_scheme(args, env.get_env_info(), reg)
    runner.setup(scheme, groups, preprocess, FixedMAC())
    return runner, env


def test_env_extras_declared_by_a_scheme_are_written_at_every_t():
    runner, env = extras_runner(ends=[2, 5], limit=3, declare=True)
    batch, _ = runner.run()
    assert "count" in batch.scheme and "unused" not in batch.scheme
    count = batch["count"]
    assert count.shape == (2, 4, 2, 2)
    # env 0 ends after 2 steps (t = 0..2 written, incl. the observation after the last step);
    # env 1 runs to the limit 3 (t = 0..3)
    for e, last in ((0, 2), (1, 3)):
        for t in range(4):
            want = (10 * t + 100 * e + np.arange(2))[:, None].repeat(2, 1) if t <= last else np.zeros((2, 2))
            np.testing.assert_array_equal(count[e, t].numpy(), want)
    assert env.extras_calls == 4  # reset + one per step


def test_undeclared_env_extras_are_not_written_or_asked_for():
    runner, env = extras_runner(ends=[2, 5], limit=3, declare=False)
    batch, _ = runner.run()
    assert "count" not in batch.scheme and "unused" not in batch.scheme
    assert env.extras_calls == 0  # no scheme field to fill: get_extras() is never called


def test_vec_env_has_no_extras_by_default():
    assert VecEnv().get_extras() == {}


def test_writer_matches_episode_batch_update():
    """The runner's in-place writer stores exactly what EpisodeBatch.update stores (dtype casts,
    actions -> actions_onehot), for all envs (views) and for a subset of rows."""
    from marlkit.host import EpisodeBatch
    from marlkit.runners import ALL, _Writer

    args = runner_args(test_nepisode=3, env="scripted")
    info = {"state_shape": 2, "obs_shape": 3, "n_actions": 4, "n_agents": 2, "episode_limit": 5}
    scheme, groups, preprocess = build_scheme(args, info, get_registry())
    rng = np.random.default_rng(0)
    mine, theirs = (EpisodeBatch(scheme, groups, 3, 6, preprocess=preprocess) for _ in range(2))
    for rows, t in ((ALL, 0), (np.array([0, 2]), 1), (ALL, 2), (np.array([1]), 4)):
        k = 3 if rows is ALL else len(rows)
        obs = {"state": rng.normal(size=(k, 2)).astype(np.float32), "obs": rng.normal(size=(k, 2, 3)).astype(np.float32),
               "avail_actions": rng.integers(0, 2, size=(k, 2, 4)).astype(np.float32)}
        step = {"actions": th.as_tensor(rng.integers(0, 4, size=(k, 2))), "reward": rng.normal(size=(k, 1)).astype(np.float32),
                "terminated": rng.integers(0, 2, size=k).astype(bool)}
        _Writer(mine)(obs, rows, t, mark_filled=True)
        _Writer(mine)(step, rows, t)
        theirs.update({key: th.as_tensor(v, dtype=scheme[key].get("dtype", th.float32)) for key, v in obs.items()},
                      bs=rows, ts=t)
        theirs.update({"actions": step["actions"].unsqueeze(-1), "reward": th.as_tensor(step["reward"]),
                       "terminated": th.as_tensor(step["terminated"], dtype=th.uint8)[:, None]}, bs=rows, ts=t, mark_filled=False)
    for key, value in theirs.data.transition_data.items():
        assert th.equal(mine[key], value), key
    assert mine["actions_onehot"].sum() == 2 * (3 + 2 + 3 + 1)  # one-hot rows written: one per agent and env step
