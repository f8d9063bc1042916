"""Suggestion Sharing (paper 002: Jin, Wei, Montana, "Achieving Collective Welfare in MARL via
Suggestion Sharing") and its baselines, for agents with individual rewards.

Registers the agent ``ss_mlp`` (nets.SSPolicies: every agent's own policy and its suggestion
policies, no parameters shared between agents), the controller ``ss_mac`` (controller.py), the
learner ``ss_learner`` (learner.py: the PPO core with Eq. 16; needs per-agent rewards) and the
envs ``coop_predation``, ``coop_navigation``, ``cleanup``, ``harvest`` (envs/).
Algorithm configs on the one core: ss, ss_rho0 (Fig. 4), ss_ippo, vs, vps, ps, cl, imr.
Per-env Table 1-2 presets (network sizes, learning rates, rho) live in config/envs/<env>.yaml.
"""
from marlkit.params import Param

from .controller import SSMAC
from .envs import register_envs
from .learner import SSLearner
from .neighbours import PROTOCOLS
from .nets import SSPolicies

PARAMS = {
    "ss_suggestions": Param(bool, True, doc="learn suggestion policies pi^ij for the other agents (SS, PS)"),
    "ss_rho": Param(float, 0.1, low=0.0, doc="weight rho of the discrepancy penalties in Eq. 16 (Table 2)"),
    "ss_protocol": Param(str, "env", choices=PROTOCOLS, doc="neighbourhood: env graph, distance, all, random m, none"),
    "ss_distance": Param(float, 0.1, low=0.0, doc="normalised distance of the distance protocol"),
    "ss_random_m": Param(int, 1, low=1, doc="neighbours per agent of the random protocol (Appendix A.4)"),
    "ss_share_every": Param(int, 1, low=1, doc="share only every k-th update (Appendix A.4; 2 = half frequency)"),
    "ss_old_policy": Param(str, "rollout", choices=("rollout", "iteration"),
                           doc="pi_old of the ratios: the acting policy, or Algorithm 1's pi_old <- pi per iteration"),
    "ss_advantages": Param(str, "iteration", choices=("iteration", "update"),
                           doc="recompute A_i (Eq. 17) at every one of the K iterations (Algorithm 1) or once per update"),
    "ss_value_sharing": Param(str, "none", choices=("none", "outputs", "params"),
                              doc="VS: GAE on neighbour-averaged values; VPS: consensus on value parameters"),
    "ss_policy_consensus": Param(bool, False, doc="PS: consensus on the agents' copies of the joint policy"),
    "ss_critic": Param(str, "individual", choices=("individual", "central"),
                       doc="individual V_i on r_i, or CL's one central V on the sum of rewards"),
    "ss_imr_weight": Param(float, 0.0, low=0.0, doc="IMR: intrinsic reward per cooperative act (0 = off)"),
    "ss_actor_hidden": Param(list, [128, 64], doc="actor hidden sizes (Table 2)"),
    "ss_critic_hidden": Param(list, [128, 64], doc="critic hidden sizes (Table 2)"),
    "ss_actor_lr": Param(float, 1e-4, low=0.0, doc="actor learning rate (Table 2)"),
    "ss_critic_lr": Param(float, 1e-4, low=0.0, doc="critic learning rate (Table 1)"),
    "ss_value_norm": Param(bool, True, doc="learn values on running-normalised targets"),
    "ss_value_target": Param(str, "mc", choices=("mc", "lambda"),
                             doc="value targets: Monte-Carlo returns (Eq. 18) or GAE lambda-returns"),
    "ss_horizon_terminal": Param(bool, True, doc="treat the episode's time limit as its end (no bootstrap)"),
    "ss_entropy_coef": Param(float, 0.0, low=0.0, doc="entropy bonus (the paper has none)"),
}


def batch_fields(args, env_info):
    """log pi^{ii}(a_i|s) per agent, plus the env extras SS reads (neighbours, positions, cooperative act)."""
    fields = {"logp": {"vshape": (1,), "group": "agents"}}
    for name, vshape in env_info.get("extras", {}).items():
        if name in ("neighbours", "positions", "coop_action", "cooperated"):
            fields[name] = {"vshape": tuple(vshape), "group": "agents"}
    return fields


def register(registry):
    registry.add("agent", "ss_mlp", SSPolicies)
    registry.add("controller", "ss_mac", SSMAC, scheme=batch_fields)
    registry.add("learner", "ss_learner", SSLearner, individual_rewards=True)
    registry.add_params(PARAMS)
    register_envs(registry)
