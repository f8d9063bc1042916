"""The four individual-reward tasks of paper 002 (Section 5.1), batched numpy ``VecEnv``s.

Every env returns rewards of shape [n_envs, n_agents] (individual rewards) and offers, through
``get_extras()``, the per-step arrays the SS plugin reads: ``neighbours`` (the env's own
neighbour graph, row i = agent i's neighbours), ``positions`` (normalised to [0, 1]) and, where the
task defines one, ``coop_action`` (the index of the cooperative action, -1 if none) and
``cooperated`` (1 where the agent's previous action was the cooperative act; IMR's signal).
Episode-end infos carry ``collective_return`` (sum of all rewards / (n_agents * steps), the
paper's "averaged return") and ``return_agent<i>``.
"""
from .common import register_envs

__all__ = ["register_envs"]
