"""Contract tests: every algorithm config trains on a tiny env; every YAML validates; the plugin
contract (registration, needs, extra fields, per-agent rewards, hyperparameters) holds."""
import glob
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
# The host's MADDPG learner masks by `terminated` only, so one-step episodes (matrix_game) leave it
# nothing to average: the MADDPG family trains on the 25-step mpe_tag. Per-agent-reward algorithms
# (Suggestion Sharing and its baselines) train on coop_predation.
TINY_ENV = {"example_alg": "example_split",
            **{alg: "mpe_tag" for alg in ("maddpg", "rgmcomm_maddpg", "commnet_maddpg", "tarmac_maddpg")},
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
    assert {"greedy_q", "episode_parity", "reward", "actions_onehot"} <= IndividualQLearner.seen_fields
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["example_scale"] == 2.0 and config["env_args"] == {"n_agents": 3, "n_actions": 2}
    with pytest.raises(SuiteError, match="example_scale"):
        build_config("example_alg", "example_split", dict(updates, example_scale=-1.0), registry)
    with pytest.raises(SuiteError, match="n_agentz"):
        build_config("example_alg", "example_split", dict(updates, env_args={"n_agentz": 2}), registry)


def test_example_plugin_hooks_reach_checkpoints(tmp_path):
    """observe_episodes sees every training episode; the learner's counter and the env's state_dict
    are in the checkpoint, and a resumed run continues from them."""
    import torch as th

    run_tiny("example_alg", "example_split", tmp_path, save_model=True, save_model_interval=60)
    [last] = sorted(glob.glob(str(tmp_path / "models" / "example_alg" / "*" / "*")))[-1:]
    step = max(os.listdir(last), key=int)
    state = th.load(os.path.join(last, step, "suite_state.pt"), weights_only=False)
    assert state["learner"]["observed_episodes"] == state["loop"]["episode"] > 0
    assert state["env"]["episodes"] > state["loop"]["episode"]  # test episodes reset the env too
    resumed = run_tiny("example_alg", "example_split", tmp_path, checkpoint_path=last, t_max=int(step) + 20)
    assert json.load(open(os.path.join(resumed, "run.json")))["status"] == "COMPLETED"


def test_components_are_checked_against_the_contract_when_added():
    from example import IndividualQLearner, SplitRewardGame

    reg = Registry()
    reg._owner = "plugin demo"
    with pytest.raises(SuiteError, match=r"^plugin demo: learner 'half' \(Half\) lacks train\(\) of the learner contract"):
        reg.add("learner", "half", type("Half", (), {"cuda": lambda self: None}))
    with pytest.raises(SuiteError, match=r"^plugin demo: controller 'mute' \(Mute\) lacks select_actions\(\)"):
        reg.add("controller", "mute", type("Mute", (), {"init_hidden": lambda self, n: None}))
    with pytest.raises(SuiteError, match="must be constructible as Odd\\(mac, scheme, logger, args\\)"):
        reg.add("learner", "odd", type("Odd", (IndividualQLearner,), {"__init__": lambda self, args: None}))
    with pytest.raises(SuiteError, match="must be a class"):
        reg.add("mixer", "made", th_module())
    with pytest.raises(SuiteError, match=r"env 'two' needs make\(env_args, n_envs, seed\)"):
        reg.add_env("two", lambda env_args, n_envs: SplitRewardGame(n_envs))
    with pytest.raises(SuiteError, match="params must be a dict"):
        reg.add_env("loose", lambda env_args, n_envs, seed: SplitRewardGame(n_envs), {"n": 2})
    with pytest.raises(SuiteError, match="scheme of controller"):
        reg.add("controller", "bad_scheme", get_registry().get("controller", "basic_mac"), scheme={"f": 1})
    reg.add_env("not_vec", lambda env_args, n_envs, seed: object())
    with pytest.raises(SuiteError, match="env 'not_vec': make\\(\\) returned object, which lacks get_env_info"):
        from marlkit.contract import check_env

        check_env("not_vec", reg.get("env", "not_vec").make({}, 1, 0))


def test_learner_methods_a_run_needs_are_checked_when_it_starts():
    from marlkit.contract import check_learner_for_run

    trains_only = type("TrainsOnly", (), {"train": lambda self, b, t, e: None})
    check_learner_for_run({"learner": "t", "save_model": False, "checkpoint_path": "", "use_cuda": False}, trains_only)
    with pytest.raises(SuiteError, match=r"learner 't' \(TrainsOnly\) has no save_models\(\), load_models\(\), "
                                         r"which save_model, checkpoint_path needs"):
        check_learner_for_run({"learner": "t", "save_model": True, "checkpoint_path": "x"}, trains_only)


def th_module():
    from example import SumMixer

    return SumMixer()


def test_plugin_hyperparameter_defaults_are_recorded():
    config = build_config("qmix", "matrix_game", {}, get_registry())
    assert config["example_scale"] == 1.0


def test_duplicate_and_unknown_names_are_clear():
    from example import SumMixer

    reg = Registry()
    reg.add("mixer", "sum", SumMixer)
    with pytest.raises(SuiteError, match="duplicate mixer name 'sum'"):
        reg.add("mixer", "sum", SumMixer)
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


# ------------------------------------------------------------------------------------------ plugin dependencies

def _plugin(root, name, body):
    os.makedirs(root / name)
    (root / name / "__init__.py").write_text(body)


def test_plugins_register_after_the_plugins_they_require(tmp_path):
    """An out-of-tree plugin declares REQUIRES like an in-tree one (remix requires wqmix); each is
    registered after what it requires, whatever the name order."""
    seen = "SEEN = []\n"
    _plugin(tmp_path, "aa_dep_child", seen + 'REQUIRES = ("zz_dep_base", "remix")\n'
            "def register(registry):\n    SEEN.extend(registry.plugins)\n")
    _plugin(tmp_path, "zz_dep_base", "def register(registry):\n    pass\n")
    reg = builtin_registry().load_plugins([os.path.join(os.path.dirname(CONFIG_DIR), "plugins"), str(tmp_path)])
    import aa_dep_child

    assert {"zz_dep_base", "remix", "wqmix"} <= set(aa_dep_child.SEEN)
    assert reg.plugins.index("wqmix") < reg.plugins.index("remix")
    order = reg.plugins.index
    assert order("zz_dep_base") < order("aa_dep_child") and order("remix") < order("aa_dep_child")


@pytest.mark.parametrize("requires, message", [
    ('("dep_nowhere",)', "plugin 'dep_missing' requires plugin 'dep_nowhere', which is not installed"),
    ('"dep_missing"', "REQUIRES must be a tuple of plugin names"),
])
def test_missing_or_malformed_requirement_is_one_line(tmp_path, requires, message):
    _plugin(tmp_path, "dep_missing", f"REQUIRES = {requires}\ndef register(registry):\n    pass\n")
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Registry().load_plugins([str(tmp_path)])
    import sys

    sys.modules.pop("dep_missing", None)


def test_circular_requirements_are_refused(tmp_path):
    _plugin(tmp_path, "dep_circle_a", 'REQUIRES = ("dep_circle_b",)\ndef register(registry):\n    pass\n')
    _plugin(tmp_path, "dep_circle_b", 'REQUIRES = ("dep_circle_a",)\ndef register(registry):\n    pass\n')
    with pytest.raises(SuiteError, match="circle: dep_circle_a -> dep_circle_b -> dep_circle_a"):
        Registry().load_plugins([str(tmp_path)])


# ------------------------------------------------------------------------------------------ presets (base:)

def test_presets_extend_their_base():
    """A YAML with `base:` is its base with the file's own keys on top (nested env_args merged)."""
    from marlkit.config import named_yaml

    child, base = named_yaml("algs", "remix_pp"), named_yaml("algs", "remix")
    assert "base" not in child and child["name"] == "remix_pp" and child["learner"] == "remix_learner"
    assert (child["buffer_size"], base["buffer_size"]) == (1000, 10000)
    own = ("name", "buffer_size", "t_max", "td_lambda")  # the keys remix_pp.yaml states itself
    assert {k: v for k, v in child.items() if k not in own} == {k: v for k, v in base.items() if k not in own}
    env = named_yaml("envs", "predator_prey_p2")
    assert env["env_args"] == dict(named_yaml("envs", "predator_prey")["env_args"], miscapture_punishment=-2.0)
    config = build_config("remix_pp", "predator_prey_p2", {}, get_registry())
    assert config["env_args"]["n_prey"] == 8 and config["w_min"] == 0.1 and config["lr"] == 0.001


def test_out_of_tree_plugin_trains_from_the_command_line(tmp_path):
    """Issue 8's proof: the example plugin, copied outside the repository and named only in
    MARLKIT_PLUGINS, adds an env (with its own config/ folder), a learner and batch fields, and
    run.py trains it; nothing under src/ knows it."""
    import shutil
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copytree(os.path.join(root, "tests", "example_plugins"), tmp_path / "elsewhere")
    env = dict(os.environ, MARLKIT_PLUGINS=str(tmp_path / "elsewhere"), OMP_NUM_THREADS="1")
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "run.py", "--config=example_alg", "--env-config=example_split", "with",
                           "t_max=60", "test_interval=30", "log_interval=30", "runner_log_interval=30",
                           "learner_log_interval=30", "test_nepisode=2", f"local_results_path={results}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run_dir] = sacred_dirs(str(results))
    assert {"return_mean", "test_return_mean", "loss"} <= set(metrics(run_dir))
    for path in glob.glob(os.path.join(root, "src", "marlkit", "**", "*.py"), recursive=True):
        assert "example_" not in open(path).read(), path  # none of the plugin's names
