"""Checkpoints: save_model writes them, evaluate=True only tests, a resumed run loses nothing,
and a checkpoint of another task is refused with one line."""
import glob
import json
import os

import numpy as np
import pytest
import torch as th

from helpers import metrics, run_tiny
from marlkit import checkpoint
from marlkit.errors import SuiteError
from marlkit.experiment import offline, signature_of


def _fill(runner, buffer, learner, n=6):
    for _ in range(n):
        buffer.insert_episode_batch(runner.run()[0])
        if not buffer.can_sample(4):
            continue
        sample = buffer.sample(4)
        learner.train(sample[:, :sample.max_t_filled()], runner.t_env, 0)


def _flat(state):
    """Every tensor and number in a nested learner state, in a stable order."""
    if isinstance(state, dict):
        return [x for k in sorted(state, key=str) for x in _flat(state[k])]
    if isinstance(state, (list, tuple)):
        return [x for v in state for x in _flat(v)]
    return [state]


def test_round_trip_restores_everything(tmp_path):
    updates = dict(batch_size=4, buffer_size=16, t_max=100)
    args, runner, buffer, mac, learner = offline("qmix", "matrix_game", updates)
    _fill(runner, buffer, learner)
    learner.target_mixer.load_state_dict({k: v + 1 for k, v in learner.mixer.state_dict().items()})
    loop = {"t_env": runner.t_env, "episode": 6, "last_test_T": 3, "last_log_T": 2, "model_save_time": 1}
    checkpoint.save(str(tmp_path), learner, loop, signature_of(args), buffer)
    saved = _flat(checkpoint.learner_state(learner))
    saved_buffer = buffer.data.transition_data["actions"][:buffer.episodes_in_buffer].clone()
    rand_after_save = th.rand(3)

    args2, runner2, buffer2, mac2, learner2 = offline("qmix", "matrix_game", updates)
    restored = checkpoint.load(str(tmp_path), learner2, signature_of(args2), buffer2)
    assert restored == loop
    for a, b in zip(saved, _flat(checkpoint.learner_state(learner2)), strict=True):
        if isinstance(a, th.Tensor):
            assert th.equal(a, b)
        else:
            assert a == b
    # the target mixer (not saved by the host's learner) came back as it was, not as a copy
    assert not th.equal(next(learner2.target_mixer.parameters()), next(learner2.mixer.parameters()))
    assert buffer2.episodes_in_buffer == buffer.episodes_in_buffer
    assert th.equal(buffer2.data.transition_data["actions"][:buffer2.episodes_in_buffer], saved_buffer)
    assert th.equal(th.rand(3), rand_after_save)  # RNG continues where it was saved


def test_mismatched_checkpoint_is_refused(tmp_path):
    args, runner, buffer, mac, learner = offline("qmix", "matrix_game", dict(batch_size=4, buffer_size=16))
    checkpoint.save(str(tmp_path), learner, {"t_env": 0}, signature_of(args))
    other = dict(batch_size=4, buffer_size=16, env_args={"payoff": [[1, 0], [0, 1]]})
    args2, _, buffer2, _, learner2 = offline("qmix", "matrix_game", other)
    with pytest.raises(SuiteError, match="does not match this run: env_args"):
        checkpoint.load(str(tmp_path), learner2, signature_of(args2), buffer2)


def test_plain_pymarl_checkpoint_with_wrong_shapes_is_refused(tmp_path):
    args, _, _, _, learner = offline("qmix", "matrix_game", dict(batch_size=4, buffer_size=16))
    learner.save_models(str(tmp_path))  # weights only, as pymarl writes them
    args2, _, _, _, learner2 = offline("qmix", "matrix_game", dict(batch_size=4, buffer_size=16,
                                                                    env_args={"payoff": [[1, 0], [0, 1]]}))
    with pytest.raises(SuiteError, match="no suite_state.pt .* set checkpoint_weights_only=True"):
        checkpoint.load(str(tmp_path), learner2, signature_of(args2))
    with pytest.raises(SuiteError, match="does not match this config's networks"):
        checkpoint.load(str(tmp_path), learner2, signature_of(args2), weights_only=True)


def test_save_evaluate_and_resume_through_the_cli(tmp_path, capsys):
    first = run_tiny("qmix", "matrix_game", tmp_path, save_model=True, save_model_interval=50, t_max=120)
    run_id = os.path.basename(first)
    models = os.path.join(tmp_path, "models", "qmix", "matrix_game", run_id)
    steps = steps_saved = sorted(int(os.path.basename(p)) for p in glob.glob(os.path.join(models, "*")))
    assert len(steps) == 3 and steps[-1] > 120  # checkpoint_keep=3 (default): the newest three
    newest = os.path.join(models, str(steps[-1]))
    assert {"agent.th", "mixer.th", "opt.th", "suite_state.pt", "buffer.pt", "manifest.json"} <= set(os.listdir(newest))
    # checkpoint_buffer='last' (default): the replay buffer only in the newest checkpoint
    assert not any(os.path.exists(os.path.join(models, str(s), "buffer.pt")) for s in steps[:-1])

    capsys.readouterr()
    evaluation = run_tiny("qmix", "matrix_game", tmp_path, checkpoint_path=models, evaluate=True, test_nepisode=8)
    out = capsys.readouterr().out
    assert "evaluation over 8 episodes: return" in out
    assert "loss" not in metrics(evaluation)

    resumed = run_tiny("qmix", "matrix_game", tmp_path, checkpoint_path=models, t_max=240)
    assert resumed == first  # the same Sacred run continues, the resume recorded
    steps = metrics(resumed)["episode"]["steps"]
    assert steps == sorted(set(steps)) and max(steps) >= 240  # continued from the checkpoint's t_env, no repeats
    with open(os.path.join(resumed, "run.json")) as f:
        assert [r["t_env"] for r in json.load(f)["resumes"]] == [steps_saved[-1]]
