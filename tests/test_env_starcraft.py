"""SMAC / SMACv2 adapters, tested against stand-ins that follow SMAC's documented API.

StarCraft II cannot run here: fake ``smac`` / ``smacv2`` packages are put into sys.modules, with a
scripted env, and a temporary directory plays the StarCraft II install (Versions/, Maps/SMAC_Maps).
"""
import importlib.machinery
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import yaml

from marlkit.envs import starcraft
from marlkit.envs.base import SerialVecEnv, derived_seeds
from marlkit.errors import SuiteError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A few entries of SMAC's map registry (n_agents, n_enemies, limit as SMAC has them, but a short
# limit for 3m so time-outs are quick to reach).
V1_MAPS = {
    "3m": {"n_agents": 3, "n_enemies": 3, "limit": 4, "a_race": "T", "b_race": "T",
           "unit_type_bits": 0, "map_type": "marines"},
    "8m": {"n_agents": 8, "n_enemies": 8, "limit": 120, "a_race": "T", "b_race": "T",
           "unit_type_bits": 0, "map_type": "marines"},
    "2s3z": {"n_agents": 5, "n_enemies": 5, "limit": 120, "a_race": "P", "b_race": "P",
             "unit_type_bits": 2, "map_type": "stalkers_and_zealots"},
}
V2_MAPS = {
    "10gen_protoss": {"n_agents": 10, "n_enemies": 10, "limit": 5, "a_race": "P", "b_race": "P",
                      "unit_type_bits": 3, "map_type": "protoss_gen", "map_name": "32x32_flat"},
    "10gen_terran": {"n_agents": 10, "n_enemies": 10, "limit": 200, "a_race": "T", "b_race": "T",
                     "unit_type_bits": 3, "map_type": "terran_gen", "map_name": "32x32_flat"},
}


class ScriptedSC2Env:
    """SMAC's StarCraft2Env API: reset, step -> (reward, terminated, info), get_* and close.

    script "win": the battle is won on the 2nd step; "timeout": nothing happens until the limit.
    """

    script = "win"
    registry = V1_MAPS
    instances = []

    def __init__(self, map_name="8m", seed=None, continuing_episode=False, **kwargs):
        params = self.registry[map_name]
        self.kwargs = {"map_name": map_name, "seed": seed, "continuing_episode": continuing_episode, **kwargs}
        self.n_agents, self.n_enemies = self._units(params, kwargs)
        self.episode_limit = params["limit"]
        self.continuing_episode = continuing_episode
        self.n_actions = 6 + self.n_enemies
        self.t = 0
        self.resets = 0
        self.closed = False
        self.actions_seen = []
        type(self).instances.append(self)

    def _units(self, params, kwargs):
        return params["n_agents"], params["n_enemies"]

    def get_env_info(self):
        return {"state_shape": 7 * self.n_agents, "obs_shape": 5 * self.n_agents, "n_actions": self.n_actions,
                "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def reset(self):
        self.t = 0
        self.resets += 1
        return self.get_obs(), self.get_state()

    def step(self, actions):
        assert isinstance(actions, list) and all(type(a) is int for a in actions)
        assert len(actions) == self.n_agents
        self.actions_seen.append(list(actions))
        self.t += 1
        info = {"battle_won": False, "dead_allies": 0, "dead_enemies": 0}
        if self.script == "win" and self.t == 2:
            info.update(battle_won=True, dead_enemies=self.n_enemies)
            return 10.0, True, info
        if self.t >= self.episode_limit:
            if self.continuing_episode:
                info["episode_limit"] = True
            return 0.5, True, info
        return 0.5, False, info

    def get_obs(self):
        return [[float(self.t + a)] * (5 * self.n_agents) for a in range(self.n_agents)]

    def get_state(self):
        return [float(self.t)] * (7 * self.n_agents)

    def get_avail_actions(self):
        alive = [0] + [1] * (self.n_actions - 1)
        dead = [1] + [0] * (self.n_actions - 1)  # no-op only
        return [alive] * (self.n_agents - 1) + [dead]

    def get_stats(self):
        return {"battles_won": 0}

    def close(self):
        self.closed = True


class ScriptedCapabilityWrapper(ScriptedSC2Env):
    """SMACv2's StarCraftCapabilityEnvWrapper: takes capability_config and writes into it."""

    registry = V2_MAPS
    instances = []

    def __init__(self, **kwargs):
        cap = kwargs["capability_config"]
        for key, sub in cap.items():  # what the real wrapper does while parsing distributions
            if key not in ("n_units", "n_enemies"):
                sub["env_key"] = key
                sub["n_units"], sub["n_enemies"] = cap["n_units"], cap["n_enemies"]
        super().__init__(**kwargs)

    def _units(self, params, kwargs):
        cap = kwargs["capability_config"]
        return cap["n_units"], cap["n_enemies"]


def _module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    mod.__path__ = []
    mod.__dict__.update(attrs)
    return mod


def _maps_modules(package, registry, monkeypatch):
    def get_map_params(map_name):
        return registry[map_name]  # SMAC raises KeyError for unknown names

    classes = {name: type(name, (), {"directory": "SMAC_Maps", "filename": p.get("map_name", name)})
               for name, p in registry.items()}
    smac_maps = _module(f"{package}.env.starcraft2.maps.smac_maps", get_smac_map_registry=lambda: registry,
                        **classes)
    maps = _module(f"{package}.env.starcraft2.maps", get_map_params=get_map_params, smac_maps=smac_maps)
    monkeypatch.setitem(sys.modules, smac_maps.__name__, smac_maps)
    monkeypatch.setitem(sys.modules, maps.__name__, maps)


@pytest.fixture
def fake_smac(monkeypatch):
    ScriptedSC2Env.instances = []
    ScriptedSC2Env.script = "win"
    for name, attrs in [("smac", {}), ("smac.env", {"StarCraft2Env": ScriptedSC2Env}), ("smac.env.starcraft2", {})]:
        monkeypatch.setitem(sys.modules, name, _module(name, **attrs))
    _maps_modules("smac", V1_MAPS, monkeypatch)
    return ScriptedSC2Env


@pytest.fixture
def fake_smacv2(monkeypatch):
    ScriptedCapabilityWrapper.instances = []
    ScriptedCapabilityWrapper.script = "win"
    wrapper = {"StarCraftCapabilityEnvWrapper": ScriptedCapabilityWrapper}
    for name, attrs in [("smacv2", {}), ("smacv2.env", {}), ("smacv2.env.starcraft2", {}),
                        ("smacv2.env.starcraft2.wrapper", wrapper)]:
        monkeypatch.setitem(sys.modules, name, _module(name, **attrs))
    _maps_modules("smacv2", V2_MAPS, monkeypatch)
    return ScriptedCapabilityWrapper


@pytest.fixture
def sc2_install(tmp_path, monkeypatch):
    root = tmp_path / "StarCraftII"
    (root / "Versions" / "Base75689").mkdir(parents=True)
    maps = root / "Maps" / "SMAC_Maps"
    maps.mkdir(parents=True)
    for name in ("3m", "8m", "2s3z", "32x32_flat"):
        (maps / f"{name}.SC2Map").write_bytes(b"")
    monkeypatch.setenv("SC2PATH", str(root))
    return root


# ---- schema and YAML ------------------------------------------------------------------------------------
PYMARL_SC2_KEYS = {
    "map_name", "continuing_episode", "difficulty", "game_version", "move_amount", "obs_all_health",
    "obs_own_health", "obs_last_action", "obs_pathing_grid", "obs_terrain_height", "obs_instead_of_state",
    "obs_timestep_number", "reward_death_value", "reward_defeat", "reward_negative_scale",
    "reward_only_positive", "reward_scale", "reward_scale_rate", "reward_sparse", "reward_win", "replay_dir",
    "replay_prefix", "state_last_action", "state_timestep_number", "step_mul", "heuristic_ai",
    "heuristic_rest", "debug", "seed",
}


def test_sc2_params_are_pymarls_keys_and_defaults():
    assert set(starcraft.SC2_PARAMS) == PYMARL_SC2_KEYS
    d = {k: p.default for k, p in starcraft.SC2_PARAMS.items()}
    assert d["map_name"] == "3m" and d["difficulty"] == "7" and d["game_version"] is None
    assert d["state_last_action"] is True and d["reward_win"] == 200 and d["step_mul"] == 8
    assert d["reward_scale_rate"] == 20 and d["reward_negative_scale"] == 0.5 and d["seed"] is None


def test_sc2v2_params_include_capability_config():
    p = starcraft.SC2V2_PARAMS
    assert PYMARL_SC2_KEYS - {"map_name"} <= set(p)
    assert p["map_name"].default == "10gen_protoss"
    cap = p["capability_config"].default
    assert cap["n_units"] == 5 and cap["n_enemies"] == 5
    assert cap["team_gen"]["unit_types"] == ["stalker", "zealot", "colossus"]
    assert cap["start_positions"]["dist_type"] == "surrounded_and_reflect"
    for key in ("conic_fov", "use_unit_ranges", "obs_own_pos", "min_attack_range", "num_fov_actions",
                "fully_observable", "kill_unit_step_mul", "action_mask"):
        assert key in p


@pytest.mark.parametrize("name, params", [("sc2", starcraft.SC2_PARAMS), ("sc2v2", starcraft.SC2V2_PARAMS)])
def test_yaml_env_args_match_the_schema(name, params):
    with open(os.path.join(REPO, "config", "envs", f"{name}.yaml")) as f:
        cfg = yaml.safe_load(f)
    assert cfg["env"] == name
    assert cfg["test_greedy"] is True and cfg["test_nepisode"] == 32 and cfg["test_interval"] == 10000
    for key, value in cfg["env_args"].items():
        assert key in params, key
        assert params[key].check(key, value) == params[key].default, key


def test_import_does_not_import_smac():
    code = ("import sys, marlkit.envs.starcraft; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('smac', 'smacv2', 'pysc2')]; "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": os.path.join(REPO, "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ---- SMAC translation -------------------------------------------------------------------------------------
def test_make_sc2_shapes_seeds_and_win(fake_smac, sc2_install):
    vec = starcraft.make_sc2({"map_name": "3m"}, 2, 7)
    assert isinstance(vec, SerialVecEnv) and vec.n_envs == 2
    info = vec.get_env_info()
    assert info == {"state_shape": 21, "obs_shape": 15, "n_actions": 9, "n_agents": 3, "episode_limit": 4}

    envs = fake_smac.instances
    assert [e.kwargs["seed"] for e in envs] == derived_seeds(7, 2)
    assert envs[0].kwargs["seed"] != envs[1].kwargs["seed"]
    assert envs[0].kwargs["difficulty"] == "7" and envs[0].kwargs["state_last_action"] is True

    vec.reset()
    assert all(e.resets == 1 for e in envs)
    assert vec.get_obs().shape == (2, 3, 15) and vec.get_obs().dtype == np.float32
    assert vec.get_state().shape == (2, 21)
    avail = vec.get_avail_actions()
    assert avail.shape == (2, 3, 9)
    assert avail[0, 0, 0] == 0 and avail[0, 0, 6] == 1 and list(avail[0, 2]) == [1] + [0] * 8

    actions = np.array([[1, 6, 0], [2, 7, 0]])
    rewards, terminated, infos = vec.step(actions, np.array([True, True]))
    assert envs[0].actions_seen == [[1, 6, 0]] and envs[1].actions_seen == [[2, 7, 0]]
    assert rewards.tolist() == [0.5, 0.5] and terminated.tolist() == [False, False]
    assert infos[0] == {"battle_won": False, "dead_allies": 0, "dead_enemies": 0}
    assert vec.get_state()[0, 0] == 1.0

    rewards, terminated, infos = vec.step(actions, np.array([True, True]))
    assert terminated.tolist() == [True, True] and rewards.tolist() == [10.0, 10.0]
    for i in infos:
        assert i["battle_won"] is True and i["dead_enemies"] == 3 and i["dead_allies"] == 0
        assert i["episode_limit"] is False  # a real ending, not a truncation

    vec.close()
    assert all(e.closed for e in envs)


def test_only_active_envs_are_stepped(fake_smac, sc2_install):
    vec = starcraft.make_sc2({}, 2, 0)  # default map 3m
    vec.reset()
    vec.step(np.ones((2, 3), dtype=np.int64), np.array([False, True]))
    assert [len(e.actions_seen) for e in fake_smac.instances] == [0, 1]


@pytest.mark.parametrize("continuing", [False, True])
def test_timeout_follows_continuing_episode(fake_smac, sc2_install, continuing):
    fake_smac.script = "timeout"
    vec = starcraft.make_sc2({"map_name": "3m", "continuing_episode": continuing}, 1, 3)
    vec.reset()
    for t in range(4):
        rewards, terminated, infos = vec.step(np.ones((1, 3)), np.array([True]))
        assert bool(terminated[0]) == (t == 3)
    assert infos[0]["battle_won"] is False
    # SMAC's default (continuing_episode False): the time-out is an ending, as in pymarl;
    # with continuing_episode True SMAC flags the truncation itself.
    assert infos[0]["episode_limit"] is continuing


def test_env_args_seed_overrides_run_seed(fake_smac, sc2_install):
    starcraft.make_sc2({"map_name": "8m", "seed": 123}, 3, 7)
    seeds = [e.kwargs["seed"] for e in fake_smac.instances]
    assert seeds == derived_seeds(123, 3) and len(set(seeds)) == 3


def test_bad_env_args_are_one_line_errors(fake_smac, sc2_install):
    with pytest.raises(SuiteError, match="unknown env_args key for 'sc2' 'difficulty_level'"):
        starcraft.make_sc2({"difficulty_level": "7"}, 1, 0)
    with pytest.raises(SuiteError, match="env_args.difficulty"):
        starcraft.make_sc2({"difficulty": "11"}, 1, 0)


# ---- SMACv2 translation -----------------------------------------------------------------------------------
def test_make_sc2v2_capability_config(fake_smacv2, sc2_install):
    cap = types.MappingProxyType({**starcraft.PROTOSS_5_VS_5, "n_units": 6, "n_enemies": 7})  # read-only
    vec = starcraft.make_sc2v2({"capability_config": cap, "seed": 5}, 2, 0)
    info = vec.get_env_info()
    assert info["n_agents"] == 6 and info["n_actions"] == 6 + 7 and info["episode_limit"] == 5

    envs = fake_smacv2.instances
    assert [e.kwargs["seed"] for e in envs] == derived_seeds(5, 2)
    c0, c1 = envs[0].kwargs["capability_config"], envs[1].kwargs["capability_config"]
    assert c0 is not c1 and c0["team_gen"] is not c1["team_gen"]
    assert c0["team_gen"]["n_units"] == 6  # written by the wrapper into its own copy
    assert "env_key" not in starcraft.PROTOSS_5_VS_5["team_gen"]  # default untouched
    assert envs[0].kwargs["map_name"] == "10gen_protoss" and envs[0].kwargs["use_unit_ranges"] is True
    assert "action_mask" not in envs[0].kwargs and "prob_obs_enemy" not in envs[0].kwargs

    vec.reset()
    assert vec.get_obs().shape == (2, 6, 30) and vec.get_avail_actions().shape == (2, 6, 13)
    vec.step(np.zeros((2, 6)), np.array([True, True]))
    _, terminated, infos = vec.step(np.zeros((2, 6)), np.array([True, True]))
    assert terminated.all() and all(i["battle_won"] for i in infos)
    vec.close()
    assert all(e.closed for e in envs)


def test_sc2v2_passes_changed_optional_keys(fake_smacv2, sc2_install):
    starcraft.make_sc2v2({"action_mask": False, "prob_obs_enemy": 0.0, "conic_fov": True}, 1, 0)
    kwargs = fake_smacv2.instances[0].kwargs
    assert kwargs["action_mask"] is False and kwargs["prob_obs_enemy"] == 0.0 and kwargs["conic_fov"] is True


def test_sc2v2_capability_config_needs_unit_counts(fake_smacv2, sc2_install):
    with pytest.raises(SuiteError, match="capability_config needs n_enemies"):
        starcraft.make_sc2v2({"capability_config": {"n_units": 5}}, 1, 0)


# ---- missing pieces ------------------------------------------------------------------------------------------
def test_no_smac(monkeypatch, sc2_install):
    monkeypatch.setitem(sys.modules, "smac", None)  # import smac -> ModuleNotFoundError
    with pytest.raises(SuiteError) as err:
        starcraft.make_sc2({}, 1, 0)
    msg = str(err.value)
    assert "pip install git+https://github.com/oxwhirl/smac.git" in msg
    assert "docker/" in msg and "--env-config=smax" in msg and "\n" not in msg


def test_no_smacv2(monkeypatch, sc2_install):
    monkeypatch.setitem(sys.modules, "smacv2", None)
    with pytest.raises(SuiteError, match=r"git\+https://github.com/oxwhirl/smacv2.git.*docker/.*smax"):
        starcraft.make_sc2v2({}, 1, 0)


def test_pypi_smac_lookalike_without_env_module(monkeypatch, sc2_install):
    monkeypatch.setitem(sys.modules, "smac", _module("smac"))  # a 'smac' without smac.env
    monkeypatch.delitem(sys.modules, "smac.env", raising=False)
    with pytest.raises(SuiteError) as err:
        starcraft.make_sc2({}, 1, 0)
    msg = str(err.value)
    assert "PyPI" in msg and "pip uninstall smac" in msg and "git+https://github.com/oxwhirl/smac.git" in msg


def _package(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _only_tmp_smac(monkeypatch, root):
    for name in [m for m in sys.modules if m == "smac" or m.startswith("smac.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(root))


def test_pypi_smac_lookalike_on_disk(tmp_path, monkeypatch, sc2_install):
    # The hyperparameter optimiser's layout: smac/facade, smac/runhistory, no smac/env.
    _package(tmp_path / "site", {"smac/__init__.py": "raise RuntimeError('must not be imported')\n",
                                 "smac/facade/__init__.py": "", "smac/runhistory/__init__.py": ""})
    _only_tmp_smac(monkeypatch, tmp_path / "site")
    with pytest.raises(SuiteError, match="PyPI hyperparameter optimiser.*pip uninstall smac"):
        starcraft.make_sc2({}, 1, 0)


def test_smac_with_missing_dependency(tmp_path, monkeypatch, sc2_install):
    _package(tmp_path / "site", {"smac/__init__.py": "", "smac/env/starcraft2/__init__.py": "",
                                 "smac/env/__init__.py": "import pysc2_absent_in_this_test\n"})
    _only_tmp_smac(monkeypatch, tmp_path / "site")
    with pytest.raises(SuiteError, match="dependency 'pysc2_absent_in_this_test' is missing: pip install pysc2==3.0.0"):
        starcraft.make_sc2({}, 1, 0)


def test_smac_with_too_new_protobuf(tmp_path, monkeypatch, sc2_install):
    too_new = "raise TypeError('Descriptors cannot be created directly.')\n"  # protobuf >= 3.21
    _package(tmp_path / "site", {"smac/__init__.py": "", "smac/env/starcraft2/__init__.py": "",
                                 "smac/env/__init__.py": too_new})
    _only_tmp_smac(monkeypatch, tmp_path / "site")
    with pytest.raises(SuiteError, match=r"Descriptors cannot be created directly.*protobuf<3.21"):
        starcraft.make_sc2({}, 1, 0)


def test_sc2path_unset_and_no_default(fake_smac, tmp_path, monkeypatch):
    monkeypatch.delenv("SC2PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/StarCraftII does not exist
    with pytest.raises(SuiteError) as err:
        starcraft.make_sc2({}, 1, 0)
    msg = str(err.value)
    assert "StarCraft II not found" in msg and "SC2PATH is not set" in msg
    assert "4.10" in msg and "docker/" in msg


def test_sc2path_without_versions(fake_smac, tmp_path, monkeypatch):
    (tmp_path / "NotSC2").mkdir()
    monkeypatch.setenv("SC2PATH", str(tmp_path / "NotSC2"))
    with pytest.raises(SuiteError, match="has no Versions/ directory.*set SC2PATH"):
        starcraft.make_sc2({}, 1, 0)


def test_missing_sc2_is_reported_before_an_unknown_map(fake_smac, tmp_path, monkeypatch):
    monkeypatch.setenv("SC2PATH", str(tmp_path / "absent"))
    with pytest.raises(SuiteError, match="StarCraft II not found"):
        starcraft.make_sc2({"map_name": "3n"}, 1, 0)


def test_unknown_map(fake_smac, sc2_install):
    with pytest.raises(SuiteError) as err:
        starcraft.make_sc2({"map_name": "3n"}, 1, 0)
    msg = str(err.value)
    assert "unknown SMAC map '3n'" in msg and "did you mean '3m'" in msg and "2s3z" in msg
    assert fake_smac.instances == []


def test_unknown_smacv2_map(fake_smacv2, sc2_install):
    with pytest.raises(SuiteError, match="unknown SMACv2 map '10gen_protos' \\(did you mean '10gen_protoss'"):
        starcraft.make_sc2v2({"map_name": "10gen_protos"}, 1, 0)


def test_missing_map_file(fake_smac, sc2_install):
    (sc2_install / "Maps" / "SMAC_Maps" / "8m.SC2Map").unlink()
    with pytest.raises(SuiteError, match=r"8m\.SC2Map, which is missing.*SMAC_Maps\.zip"):
        starcraft.make_sc2({"map_name": "8m"}, 1, 0)
