"""Throughput settings: torch_threads is applied before anything is built and recorded."""
import json
import os

import pytest
import torch as th

from helpers import run_tiny
from marlkit.errors import SuiteError
from marlkit.experiment import prepare


def test_torch_threads_applied_before_build_and_recorded(tmp_path):
    before = th.get_num_threads()
    try:
        seen = {}
        from marlkit.registry import get_registry

        spec = get_registry().get("env", "matrix_game")
        make = spec.make

        def spy(*a, **k):  # the env is the first thing built: the threads must be set by then
            seen["threads"] = th.get_num_threads()
            return make(*a, **k)

        spec.make = spy
        try:
            config, _, _ = prepare("qmix", "matrix_game", {"torch_threads": 2})
        finally:
            spec.make = make
        assert config["torch_threads"] == 2 and seen["threads"] == 2
        run_dir = run_tiny("qmix", "matrix_game", tmp_path)
        with open(os.path.join(run_dir, "config.json")) as f:
            assert json.load(f)["torch_threads"] == 1
        assert th.get_num_threads() == 1
    finally:
        th.set_num_threads(before)


def test_torch_threads_must_be_positive():
    with pytest.raises(SuiteError, match="torch_threads"):
        prepare("qmix", "matrix_game", {"torch_threads": 0})
