"""DAG-BN (paper 003): Bayesian-network joint policies with a context-aware differentiable DAG.

Registers the agent ``bn_mlp`` (policy.BNPolicy: actor + DAG nets in one module, so the host's
save/load and the suite's checkpoints cover both), the controller ``bn_mac`` (policy.BNMAC:
topological sampling; declares the batch fields ``parents`` and ``logp``, plus ``visible`` when
the env reports ally visibility) and the learner ``dagbn_learner`` (learner.py: MAPPO with
per-agent ratios, GAE, density regularisation and its annealing), and the paper's two tasks as
envs: ``coordination_game`` (coordination_game.py, with the exact Bellman solver behind the price
of anarchy and Nash gap) and ``aloha`` (aloha.py). tabular_bn.py is the tabular study (Fig. 3):
``python -m marlkit.tabular_bn`` (or ``python -m plugins.dagbn.tabular_bn``).

Choices the paper leaves open (defaults; each is a key below):
  dag_update_dag=fresh   parent inputs at update time come from a freshly sampled DAG (public runs)
  dag_actor_arch=late    the coordination-game/Aloha actor layout; `early` is the SMAC one
  dag_eta=0              the density target when annealing is off (only used with dag_alpha > 0)
  dag_perm_match=sinkhorn the learned order matches the Sinkhorn matrix, as first implemented; `scores`
                         matches the noisy scores as Charpentier et al.'s code (after Mena et al.'s) does
  edge net               an MLP for every env (the paper's CG edge net is a DeepSet)
"""
from marlkit.params import Param

from . import aloha, coordination_game
from .graph import DAG_MODES, PERM_MATCHES, PERMUTATIONS
from .learner import DAGBNLearner
from .policy import BNMAC, BNPolicy

PARAMS = {
    "dag_mode": Param(str, "context", choices=DAG_MODES,
                      doc="context: learned per-step DAG; full: j -> i for j < i; line: j -> j+1; none: product policy"),
    "dag_permutation": Param(str, "learned", choices=PERMUTATIONS,
                             doc="topological order: learned (Gumbel-Sinkhorn + Hungarian) or identity (paper's SMAC runs)"),
    "dag_perm_match": Param(str, "sinkhorn", choices=PERM_MATCHES,
                            doc="learned order: Hungarian matching of the Sinkhorn matrix (sinkhorn) or of the noisy "
                                "scores (scores: Charpentier et al.'s reference code; acting skips the Sinkhorn iterations)"),
    "dag_hidden": Param(int, 64, low=1, doc="hidden units of the edge and permutation nets"),
    "dag_gumbel_tau": Param(float, 1.0, low=1e-6, doc="temperature of the edges' straight-through Gumbel-Softmax"),
    "dag_sinkhorn_tau": Param(float, 1.0, low=1e-6, doc="Gumbel-Sinkhorn temperature"),
    "dag_sinkhorn_noise": Param(float, 1.0, low=0.0, doc="scale of the Gumbel noise in Gumbel-Sinkhorn (0 at test time)"),
    "dag_sinkhorn_iters": Param(int, 20, low=1, doc="Sinkhorn normalisation iterations"),
    "dag_actor_arch": Param(str, "late", choices=("early", "late"),
                            doc="early: Concat(o, a^P)-Base-FC (SMAC); late: Concat(Base(o), a^P)-FC (CG, Aloha)"),
    "dag_parent_obs": Param(bool, False, doc="parents' observations in the actor input too (the paper's Aloha runs)"),
    "dag_update_dag": Param(str, "fresh", choices=("fresh", "stored"),
                            doc="DAG for the parent inputs at update time: fresh sample (public runs) or the stored one"),
    "dag_alpha": Param(float, 0.0, low=0.0, doc="weight of the density regulariser alpha*|rho(G)-eta| (start value when annealing)"),
    "dag_eta": Param(float, 0.0, low=0.0, high=1.0, doc="density target eta when dag_anneal is off"),
    "dag_anneal": Param(bool, False, doc="Section 7.4.4 schedule: eta 1 -> 0 between a and b, alpha -> dag_alpha_end between b and c"),
    "dag_alpha_end": Param(float, 1.0, low=0.0, doc="alpha at the end of the annealing (6h_vs_8z: 1, MMM2: 0.5)"),
    "dag_anneal_a": Param(float, 0.4, low=0.0, high=1.0, doc="fraction of t_max where eta starts to fall"),
    "dag_anneal_b": Param(float, 0.7, low=0.0, high=1.0, doc="fraction of t_max where eta reaches 0 and alpha starts to rise"),
    "dag_anneal_c": Param(float, 1.0, low=0.0, high=1.0, doc="fraction of t_max where alpha reaches dag_alpha_end"),
    "dag_anneal_levels": Param(int, 10, low=1, doc="number of equal steps of each annealing ramp"),
}


def batch_fields(args, env_info):
    """Per step and agent: its parents (row of G^T), the behaviour log-probability, visibility."""
    n = env_info["n_agents"]
    fields = {"parents": {"vshape": (n,), "group": "agents"}, "logp": {"vshape": (1,), "group": "agents"}}
    if "visible" in env_info.get("extras", {}):
        fields["visible"] = {"vshape": (n,), "group": "agents"}
    return fields


def register(registry):
    registry.add("agent", "bn_mlp", BNPolicy)
    registry.add("controller", "bn_mac", BNMAC, scheme=batch_fields)
    registry.add("learner", "dagbn_learner", DAGBNLearner)
    registry.add_params(PARAMS)
    registry.add_env("coordination_game", coordination_game.make, coordination_game.PARAMS,
                     "n-bit coordination game of the BN-policy paper (DAG-BN)")
    registry.add_env("aloha", aloha.make, aloha.PARAMS, "Aloha packet transmission on a 2x5 grid (DAG-BN)")
