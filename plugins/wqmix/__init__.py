"""Weighted QMIX (Rashid et al. 2020) as specified by pymarl2, and pymarl2's tuned QMIX.

Registers the learner family ``wqmix_learner`` (learner.py; configs ``remix_qmix``, ``ow_qmix``,
``cw_qmix`` and the predator-prey presets ``remix_qmix_pp``, ``ow_qmix_pp``, ``cw_qmix_pp``), the
central mixer ``wqmix_central`` (central.py) and the hyperparameters of the family. The keys of
the unrestricted Q*, the loss coefficients, the episode-counted target update and the weight
histogram are declared here once and are shared with plugins/remix, which subclasses the learner.
It also registers the predator-prey task both papers evaluate on (env ``predator_prey``,
predator_prey.py: relative overgeneralisation with miscapture punishment).
"""
from marlkit.params import Param

from . import predator_prey
from .central import CentralMixer
from .learner import WQMixLearner

PARAMS = {
    "wqmix_weighting": Param(str, "none", choices=WQMixLearner.WEIGHTINGS,
                             doc="weighting of the QMIX TD loss: none (plain QMIX), ow or cw (Weighted QMIX)"),
    "w": Param(float, 0.5, low=0.0, high=1.0,
               doc="OW/CW-QMIX weight of the down-weighted transitions (pymarl2: 0.5 SMAC, 0.1 predator-prey)"),
    "target_update_interval": Param((int, float), 200, low=1,
                                    doc="EPISODES between hard target updates (pymarl2 semantics)"),
    "central_rnn_hidden_dim": Param(int, 64, low=1, doc="GRU width of the central agent network of Q*"),
    "central_mixing_embed_dim": Param(int, 256, low=1, doc="width of the central (non-monotonic) mixer"),
    "central_mixer_layers": Param(int, 3, low=1, doc="ReLU hidden layers of the central mixer"),
    "central_loss": Param(float, 1.0, low=0.0, doc="coefficient of the Q* TD loss"),
    "qmix_loss": Param(float, 1.0, low=0.0, doc="coefficient of the weighted QMIX TD loss"),
    "weight_hist_bins": Param(int, 10, low=1, high=100,
                              doc="bins of the logged weight histogram weight_hist_<i> on [floor, 1]"),
}


def register(registry):
    registry.add("learner", "wqmix_learner", WQMixLearner)
    registry.add("mixer", "wqmix_central", CentralMixer)
    registry.add_params(PARAMS)
    registry.add_env("predator_prey", predator_prey.make, predator_prey.PARAMS,
                     "grid predator-prey with miscapture punishment (WQMIX, ReMIX)")
