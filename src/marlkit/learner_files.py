"""The pymarl model files of a learner: ``save_models``/``load_models`` from one table.

pymarl learners save their controller plus a few networks and optimisers as ``<name>.th`` files
in a checkpoint folder. A learner that mixes in ``ModelFiles`` lists them once, as
``MODEL_FILES = {"critic.th": "critic", ...}`` (file name -> attribute), instead of writing the
two methods by hand.
"""
from __future__ import annotations

import os

import torch as th


class ModelFiles:
    """``save_models``/``load_models`` for ``self.mac`` plus the attributes of ``MODEL_FILES``."""

    MODEL_FILES: dict = {}

    def save_models(self, path):
        self.mac.save_models(path)
        for name, attr in self.MODEL_FILES.items():
            th.save(getattr(self, attr).state_dict(), os.path.join(path, name))

    def load_models(self, path):
        self.mac.load_models(path)
        for name, attr in self.MODEL_FILES.items():
            getattr(self, attr).load_state_dict(th.load(os.path.join(path, name), map_location="cpu"))
