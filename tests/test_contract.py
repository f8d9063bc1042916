"""Contract tests: every algorithm config trains on a tiny env; every YAML validates; the plugin
contract (registration, needs, extra fields, per-agent rewards, hyperparameters) holds."""
import json
import os

import pytest

from helpers import metrics, run_tiny, sacred_dirs
from marlkit.config import available, build_config, config_files, load_yaml, CONFIG_DIR
from marlkit.errors import SuiteError
from marlkit.params import Param
from marlkit.registry import Registry, builtin_registry, get_registry

ALGS = available("algs")
ENVS = available("envs")
# The tiny env each algorithm is trained on (per-agent-reward algorithms need such an env).
TINY_ENV = {"example_alg": "example_split",
            **{alg: "coop_predation" for alg in ("ss", "ss_rho0", "ss_ippo", "vs", "vps", "ps", "cl", "imr")}}


def test_stock_baselines_are_shipped():
    assert {"qmix", "vdn", "iql", "qplex", "mappo", "ippo"} <= set(ALGS)


@pytest.mark.parametrize("alg", ALGS)
def test_every_algorithm_trains_on_a_tiny_env(alg, tmp_path):
    run_dir = run_tiny(alg, TINY_ENV.get(alg, "matrix_game"), tmp_path)
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["status"] == "COMPLETED"
    m = metrics(run_dir)
    assert {"return_mean", "test_return_mean", "ep_length_mean"} <= set(m)
    assert m["test_return_mean"]["steps"][-1] >= 60  # tested again after the first test interval
    assert any(key in m for key in ("loss", "pg_loss", "critic_loss", "advantage_mean")), sorted(m)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["alg_config"] == alg and config["seed"] is not None


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("env", ENVS)
def test_every_yaml_pair_loads_and_validates(alg, env):
    config = build_config(alg, env, {}, get_registry())
    assert config["env"] in get_registry().tables["env"]
    assert config["name"]


def test_every_yaml_file_parses():
    for kind in ("algs", "envs"):
        for path in config_files(kind).values():
            assert isinstance(load_yaml(path), dict)
    assert isinstance(load_yaml(os.path.join(CONFIG_DIR, "default.yaml")), dict)


def test_alg_yaml_name_matches_file():
    for alg, path in config_files("algs").items():
        assert load_yaml(path).get("name") == alg


def test_example_plugin_full_contract(tmp_path):
    """A plugin learner, controller, agent and env are built like stock ones; the declared extra
    field and per-agent rewards reach the learner; the declared hyperparameter is validated."""
    from example import IndividualQLearner

    registry = get_registry()
    assert "example" in registry.plugins
    updates = dict(example_scale=2.0, env_args={"n_agents": 3, "n_actions": 2})
    run_dir = run_tiny("example_alg", "example_split", tmp_path, **updates)
    assert {"greedy_q", "reward", "actions_onehot"} <= IndividualQLearner.seen_fields
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["example_scale"] == 2.0 and config["env_args"] == {"n_agents": 3, "n_actions": 2}
    with pytest.raises(SuiteError, match="example_scale"):
        build_config("example_alg", "example_split", dict(updates, example_scale=-1.0), registry)
    with pytest.raises(SuiteError, match="n_agentz"):
        build_config("example_alg", "example_split", dict(updates, env_args={"n_agentz": 2}), registry)


def test_plugin_hyperparameter_defaults_are_recorded():
    config = build_config("qmix", "matrix_game", {}, get_registry())
    assert config["example_scale"] == 1.0


def test_duplicate_and_unknown_names_are_clear():
    reg = Registry()
    reg.add("mixer", "sum", object)
    with pytest.raises(SuiteError, match="duplicate mixer name 'sum'"):
        reg.add("mixer", "sum", object)
    with pytest.raises(SuiteError, match=r"unknown mixer 'summ' \(did you mean 'sum'\?\); available: sum"):
        reg.get("mixer", "summ")
    reg.add_params({"w": Param(float, 0.1)})
    with pytest.raises(SuiteError, match="duplicate hyperparameter 'w'"):
        reg.add_params({"w": Param(float, 0.2)})


def test_plugin_names_reach_the_host_registries():
    from marlkit import host

    get_registry().activate()
    assert host.learners["example_learner"].__name__ == "IndividualQLearner"
    assert host.agents["example_rnn"].__name__ == "WideAgent"


def test_builtin_registry_lists_envs_and_runners():
    reg = builtin_registry()
    assert {"smax", "sc2", "sc2v2", "matrix_game", "gymma", "pettingzoo"} <= set(reg.tables["env"])
    assert {"episode", "parallel"} <= set(reg.tables["runner"])
    assert {"qmix", "vdn"} <= set(reg.tables["mixer"])


def test_concurrent_style_runs_get_distinct_dirs(tmp_path):
    a = run_tiny("vdn", "matrix_game", tmp_path, t_max=20)
    b = run_tiny("vdn", "matrix_game", tmp_path, t_max=20)
    assert a != b and len(sacred_dirs(str(tmp_path))) == 2
