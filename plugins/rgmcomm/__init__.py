"""RGMComm (paper 000, "Minimizing Return Gaps with Discrete Communications in Decentralized
POMDP"): discrete messages as cluster labels of sampled Q-vectors, on any CTDE learner.

Registers:
* controller ``rgmcomm_mac`` (controller.py): the base MAC named by ``rgm_base_mac`` whose agents
  also receive the others' one-hot labels; declares the batch field ``messages``;
* learner ``rgmcomm_learner`` (learner.py): the base learner named by ``rgm_base_learner`` plus
  generator training with the RIM loss (clustering.py) on the paper's three-stage or an online
  schedule;
* agents ``commnet`` and ``tarmac`` (comm_agents.py): the continuous-message baselines;
* envs ``mpe_tag``, ``mpe_spread`` (envs/mpe.py), ``maze`` (envs/maze.py), ``rgm_matrix``
  (envs/matrix.py); every one takes ``observe_all`` for the full-observation policy pi*.

Choices the paper leaves open (defaults; each is a key below): clustering term on the softmax
label distributions (the public code compares integer labels, which passes no gradient);
neighbour weights = cosine similarity (public code; Eq. 13 writes the distance); normalisation
scale max|Q| (the paper's max flips signs on negative rows); null label until the generator is on.
"""
from marlkit.params import Param

from .comm_agents import CommNetAgent, TarMACAgent
from .controller import batch_fields, rgmcomm_mac
from .envs import matrix, maze, mpe
from .learner import rgmcomm_learner

PARAMS = {
    "comm_labels": Param(int, 4, low=2, doc="alphabet size |M| of each agent's messages"),
    "rgm_base_mac": Param(str, "maddpg_mac", doc="controller the messages are added to (maddpg_mac, basic_mac)"),
    "rgm_base_learner": Param(str, "maddpg_learner",
                              doc="learner underneath (maddpg_learner, q_learner for QMIX/VDN/IQL, wqmix_learner)"),
    "rgm_value": Param(str, "auto", choices=("auto", "critic", "mixer"),
                       doc="centralized value for Q-vectors: MADDPG critic or mixer on utilities (auto: critic if any)"),
    "rgm_gen_hidden": Param(int, 1200, low=1, doc="hidden units of the generator's two ReLU layers (public code 1200)"),
    "rgm_gen_shared": Param(bool, False, doc="one generator for all agents, with the agent id as input"),
    "rgm_receivers": Param(list, None, nullable=True,
                           doc="per sender, the list of agents receiving its label; null: all other agents"),
    "rgm_null_label": Param(bool, True, doc="send the reserved null label while the generator is off"),
    "rgm_schedule": Param(str, "staged", choices=("staged", "online"),
                          doc="staged: pre-train, train generator, freeze; online: re-cluster every rgm_update_interval updates"),
    "rgm_stage1_end": Param(float, 0.3, low=0.0, high=1.0, doc="fraction of t_max pre-training the base with null messages"),
    "rgm_stage2_end": Param(float, 0.5, low=0.0, high=1.0, doc="staged: fraction of t_max where the generators freeze"),
    "rgm_stage2_base": Param(bool, True, doc="staged: the base learner keeps training while the generators train"),
    "rgm_update_interval": Param(int, 10, low=1, doc="online: base updates between generator updates"),
    "rgm_gen_steps": Param(int, 1, low=1, doc="generator gradient steps per generator update"),
    "rgm_k1": Param(int, 256, low=2, doc="K1: sampled transitions per generator update (public code 256)"),
    "rgm_k2": Param(int, 256, low=1, doc="K2: partner samples per Q-vector (its length)"),
    "rgm_knn": Param(int, 16, low=1, doc="nearest neighbours by cosine distance in the clustering term"),
    "rgm_knn_weight": Param(str, "similarity", choices=("similarity", "distance"),
                            doc="neighbour weight: cosine similarity (public code) or distance (Eq. 13 as written)"),
    "rgm_cluster_term": Param(str, "soft", choices=("soft", "integer"),
                              doc="clustering term on softmax label distributions (gradient) or integer labels (none)"),
    "rgm_norm": Param(str, "tanh", choices=("tanh", "softmax", "none"), doc="activation f of the normalised Q-vectors (Fig. 7)"),
    "rgm_norm_scale": Param(str, "absmax", choices=("absmax", "max"), doc="beta = max |Q| of the vector, or its max as written"),
    "rgm_cd_weight": Param(float, 1e-4, low=0.0, doc="weight of the clustering term (public code 1e-4)"),
    "rgm_mi_weight": Param(float, 10.0, low=0.0, doc="weight of the mutual-information term (public code 10)"),
    "rgm_marginal_weight": Param(float, 4.0, low=0.0, doc="lambda on H(m) in H(m|o) - lambda H(m) (public code 4)"),
    "rgm_lr": Param(float, 2e-3, low=1e-12, doc="Adam learning rate of the generators (public code 2e-3)"),
    "comm_rounds": Param(int, 1, low=1, doc="communication rounds of the commnet/tarmac agents"),
}


def register(registry):
    registry.add("controller", "rgmcomm_mac", rgmcomm_mac, scheme=batch_fields)
    registry.add("learner", "rgmcomm_learner", rgmcomm_learner)
    registry.add("agent", "commnet", CommNetAgent)
    registry.add("agent", "tarmac", TarMACAgent)
    registry.add_env("mpe_tag", mpe.make_tag, mpe.TAG_PARAMS, "MPE predator-prey, predators blind to each other (RGMComm)")
    registry.add_env("mpe_spread", mpe.make_spread, mpe.SPREAD_PARAMS, "MPE cooperative navigation, nearest landmark only (RGMComm)")
    registry.add_env("maze", maze.make, maze.PARAMS, "4x4 two-agent maze with two landmarks (RGMComm)")
    registry.add_env("rgm_matrix", matrix.make, matrix.PARAMS, "two-agent matrix example of the RGMComm paper")
    registry.add_params(PARAMS)
