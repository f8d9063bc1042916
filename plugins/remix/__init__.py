"""ReMIX (paper 001): regret-minimising projection weights for QMIX.

Registers the learner ``remix_learner`` (learner.py: the WQMIX learner family of plugins/wqmix
with the ReMIX weight of Theorem 1 / eq. 4; weights.py holds the formulas) and its
hyperparameters. The keys shared with Weighted QMIX (central Q*, loss coefficients, the
episode-counted target update, the weight histogram) are declared once, in plugins/wqmix.

Defaults of the choices the paper leaves open (details in the docstrings of learner.py and
weights.py):
  remix_mapping=minmax      per-batch min-max map of the raw weights onto [w_min, 1]: the literal
                            reading of "map the projection weights to a given range" (Section 4.3);
                            rank (robust to heavy tails) and clip (raw / batch mean = 1/Z* of the
                            constraint E_mu[w] = 1, then clipped) are options;
  remix_fprime=closed_form  Lemma 1 for the host QMixer; autograd gives the same (the test oracle)
                            and works for any mixer;
  remix_epsilon=1e-3        raw weight of overestimated transitions (Algorithm 1's epsilon), also
                            the floor of underestimated ones;
  remix_grad_floor=0.05     floor of the mixer-gradient term, which is negative whenever
                            sum_j (1 - pi^j)/f'_j < 1 (0 = literal reading; see weights.py);
  on-policy ratio           recent-episode buffer of 128 episodes fed by observe_episodes, a quarter
                            of each batch drawn from it, ratio clip(N/M, 1, 2) for those rows and 1
                            for replay rows; ratio 1 and no mixing without the hook.
"""
from marlkit.params import Param

from .learner import ReMIXLearner
from .weights import FPRIME_MODES, MAPPINGS

REQUIRES = ("wqmix",)  # the learner subclasses plugins/wqmix's and uses its keys and Q*

PARAMS = {
    "w_min": Param(float, 0.1, low=0.0, high=1.0, doc="lower end of the ReMIX weight range [w_min, 1] (paper: 0.1 best)"),
    "remix_mapping": Param(str, "minmax", choices=MAPPINGS,
                           doc="how raw weights are mapped into [w_min, 1]: minmax (per batch), rank, or clip (raw/mean)"),
    "remix_epsilon": Param(float, 1e-3, low=0.0, doc="raw weight of overestimated transitions (Q_tot > target)"),
    "remix_fprime": Param(str, "closed_form", choices=FPRIME_MODES,
                          doc="mixer gradient dQ_tot/dQ^j: closed form (Lemma 1, host QMixer) or autograd"),
    "remix_fprime_min": Param(float, 1e-3, low=1e-12, doc="floor of f' before dividing by it"),
    "remix_grad_floor": Param(float, 0.05, low=0.0,
                              doc="floor of the mixer-gradient term sum_j (1-pi^j)/f'_j - 1 (0 = literal: negative -> weight 0)"),
    "remix_tau": Param(float, 1.0, low=1e-6, doc="temperature of the agents' Boltzmann policies pi^j"),
    "remix_exp_clip": Param(float, 10.0, low=0.0, high=80.0, doc="clamp of the exponent Q* - Q_tot"),
    "remix_use_bellman_error": Param(bool, True, doc="ablation switch: Bellman-error term (y - Q_tot)"),
    "remix_use_underestimation": Param(bool, True, doc="ablation switch: exp(Q* - Q_tot) term"),
    "remix_use_mixer_gradient": Param(bool, True, doc="ablation switch: sum_j (1 - pi^j)/f'_j - 1 term"),
    "remix_use_onpolicy": Param(bool, True, doc="ablation switch: on-policy ratio d^pi/mu (recent-episode buffer)"),
    "remix_recent_episodes": Param(int, 128, low=1, doc="size (episodes) of the recent-episode buffer"),
    "remix_recent_frac": Param(float, 0.25, low=0.0, high=0.95,
                               doc="share of each training batch drawn from the recent-episode buffer"),
    "remix_ratio_clip": Param(float, 2.0, low=1.0, doc="upper clip of the estimated d^pi/mu of recent rows"),
}


def register(registry):
    registry.add("learner", "remix_learner", ReMIXLearner)
    registry.add_params(PARAMS)
