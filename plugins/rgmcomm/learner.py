"""The RGMComm learner: any base learner (``rgm_base_learner``: the host's ``maddpg_learner``,
``q_learner`` for QMIX/VDN/IQL, or a plugin's, e.g. ``wqmix_learner`` behind remix_qmix) plus the
training of the message generators by online clustering of sampled Q-vectors (Section 4.2).

Built as a run-time subclass of the base learner, so checkpoints, target updates and logs stay
the base's. Each ``train`` call, by schedule (``rgm_schedule``):

* ``staged`` (the paper's three stages, in one run): until ``rgm_stage1_end`` * t_max the base
  learner trains with null messages (pre-training the centralized value; the public runs pre-train
  a full-observation MADDPG instead, see docs/reproduction/rgmcomm.md); until ``rgm_stage2_end``
  * t_max the generators train on every update (the base keeps training if ``rgm_stage2_base``);
  afterwards the generators are frozen and the policies train on their labels.
* ``online``: after ``rgm_stage1_end`` * t_max the generators train every ``rgm_update_interval``
  base updates, for the rest of the run.

Q-vectors: for agent j, K1 transitions p of the batch and the first K2 of them as partners q;
entry (p, q) = the centralized value with agent j's (o_j, a_j) from p and everything else from q:
the MADDPG critic (``critic`` mode) or the mixer on the agents' chosen utilities (``mixer`` mode;
with no mixer, as IQL, their sum).
"""
from __future__ import annotations

import numpy as np
import torch as th

from marlkit import host
from marlkit.errors import SuiteError

from .clustering import average_cosine_distance, entropy, gap_bound, mix_agents, mix_state, normalise, rim_loss


class RGMCommMixin:
    def __init__(self, mac, scheme, logger, args):
        if not hasattr(mac, "comm"):
            raise SuiteError("learner rgmcomm_learner needs mac: rgmcomm_mac (the message controller)")
        super().__init__(mac, scheme, logger, args)
        self.generator = mac.comm.generator
        self.generator_optimiser = th.optim.Adam(self.generator.parameters(), lr=args.rgm_lr)
        self.rgm_base_updates = 0
        self.rgm_gen_updates = 0
        self.rgm_log_t = -args.learner_log_interval - 1
        self.rgm_value = self._value_mode(args.rgm_value)

    def _value_mode(self, mode):
        has_critic = getattr(getattr(self, "critic", None), "output_type", None) == "q"
        if mode == "auto":
            return "critic" if has_critic else "mixer"
        if mode == "critic" and not has_critic:
            raise SuiteError(f"rgm_value=critic needs a learner with a centralized Q critic (maddpg_learner); "
                             f"{self.args.rgm_base_learner} has none: use rgm_value=mixer")
        return mode

    # ---- schedule ------------------------------------------------------------------------
    def rgm_phase(self, t_env):
        a = self.args
        if t_env < a.rgm_stage1_end * a.t_max:
            return "pretrain"
        if a.rgm_schedule == "online":
            return "online"
        return "generator" if t_env < a.rgm_stage2_end * a.t_max else "frozen"

    def train(self, batch, t_env, episode_num):
        phase = self.rgm_phase(t_env)
        self.mac.comm.active = phase != "pretrain" or not self.args.rgm_null_label
        train_gen = phase == "generator" or (phase == "online" and self.rgm_base_updates % self.args.rgm_update_interval == 0)
        if train_gen:
            for _ in range(self.args.rgm_gen_steps):
                self.train_generator(batch, t_env)
        if phase != "generator" or self.args.rgm_stage2_base:
            super().train(batch, t_env, episode_num)
            self.rgm_base_updates += 1

    # ---- Q-vectors -------------------------------------------------------------------------
    def sample_transitions(self, batch):
        """The batch's filled steps as flat tensors, in random order, at most rgm_k1 of them."""
        mask = batch["filled"][:, :-1].squeeze(-1).bool()
        steps = {k: batch[k][:, :-1][mask] for k in ("state", "obs", "actions_onehot")}
        last = th.cat([th.zeros_like(batch["actions_onehot"][:, :1]), batch["actions_onehot"][:, :-1]], 1)
        steps["last_actions"] = last[:, :-1][mask]
        if self.rgm_value == "mixer":
            steps["utilities"] = self._utilities(batch)[mask]
        order = th.randperm(int(mask.sum()))[: self.args.rgm_k1]
        return {k: v[order] for k, v in steps.items()}

    @th.no_grad()
    def _utilities(self, batch):
        """Each agent's utility of its taken action, [B, T-1, n] (the base MAC on the batch)."""
        self.mac.init_hidden(batch.batch_size)
        outs = th.stack([self.mac.forward(batch, t=t) for t in range(batch.max_seq_length - 1)], 1)
        return outs.gather(-1, batch["actions"][:, :-1]).squeeze(-1)

    @th.no_grad()
    def q_vectors(self, steps, j):
        """[K1, K2] values for agent j (see the module docstring)."""
        n = self.args.n_agents
        k2 = min(self.args.rgm_k2, len(steps["state"]))
        chunked = steps["state"].shape[-1] == n * steps["obs"].shape[-1]
        state = mix_state(steps["state"], j, k2, n, chunked)
        if self.rgm_value == "mixer":
            qs = mix_agents(steps["utilities"], j, k2)
            mixer = getattr(self, "mixer", None)
            return qs.sum(-1) if mixer is None else mixer(qs, state).squeeze(-1)
        k1 = state.shape[0]
        inputs = [state]
        if self.args.obs_individual_obs:
            inputs.append(steps["obs"][:, j].unsqueeze(1).expand(k1, k2, -1))
        if self.args.obs_last_action:
            inputs.append(steps["last_actions"][:, j].unsqueeze(1).expand(k1, k2, -1))
        if self.args.obs_agent_id:
            inputs.append(th.eye(n)[j].expand(k1, k2, n))
        actions = mix_agents(steps["actions_onehot"], j, k2).flatten(-2)
        return self.critic(th.cat(inputs, -1), actions).squeeze(-1)

    # ---- generator update ----------------------------------------------------------------
    def train_generator(self, batch, t_env):
        a = self.args
        steps = self.sample_transitions(batch)
        if len(steps["state"]) < 2:
            return
        losses, logs = [], {"eps": [], "q_max": [], "h_marg": [], "cd": [], "usage": []}
        for j in range(a.n_agents):
            qvec = self.q_vectors(steps, j)
            normed = normalise(qvec, a.rgm_norm, a.rgm_norm_scale)
            logits = self.generator.forward_agent(steps["obs"][:, j], j)
            loss, parts = rim_loss(logits, normed, a.rgm_knn, a.rgm_knn_weight, a.rgm_cluster_term,
                                   a.rgm_cd_weight, a.rgm_mi_weight, a.rgm_marginal_weight)
            losses.append(loss)
            labels = logits.detach().argmax(-1)
            logs["eps"].append(float(average_cosine_distance(qvec, labels)))
            logs["q_max"].append(float(qvec.norm(dim=-1).max()))
            logs["h_marg"].append(float(entropy(th.bincount(labels, minlength=a.comm_labels).float() / len(labels))))
            logs["cd"].append(float(parts["cd"]))
            logs["usage"].append((th.bincount(labels, minlength=a.comm_labels).float() / len(labels)).numpy())
        total = th.stack(losses).sum()
        self.generator_optimiser.zero_grad()
        total.backward()
        th.nn.utils.clip_grad_norm_(self.generator.parameters(), a.grad_norm_clip)
        self.generator_optimiser.step()
        self.rgm_gen_updates += 1
        if t_env - self.rgm_log_t >= a.learner_log_interval:
            self._log_generator(total.detach(), logs, t_env)

    def _log_generator(self, total, logs, t_env):
        eps, q_max = float(np.mean(logs["eps"])), float(np.max(logs["q_max"]))
        usage = np.mean(logs["usage"], 0)
        self.logger.log_stat("rgm_loss", float(total), t_env)
        self.logger.log_stat("rgm_cluster_loss", float(np.mean(logs["cd"])), t_env)
        self.logger.log_stat("message_entropy", float(np.mean(logs["h_marg"])), t_env)
        self.logger.log_stat("rgm_epsilon", eps, t_env)
        self.logger.log_stat("rgm_q_max", q_max, t_env)
        self.logger.log_stat("rgm_gap_bound", gap_bound(eps, q_max, self.args.n_agents), t_env)
        self.logger.log_stat("rgm_labels_used", float((usage > 0).sum()), t_env)
        for m, share in enumerate(usage[:16]):
            self.logger.log_stat(f"rgm_label_{m}_share", float(share), t_env)
        self.rgm_log_t = t_env


_CLASSES: dict = {}


def rgmcomm_learner(mac, scheme, logger, args):
    """The registered learner: RGMCommMixin over the learner named by ``rgm_base_learner``."""
    base = host.learners.get(args.rgm_base_learner)
    if base is None or base is rgmcomm_learner:
        raise SuiteError(f"rgm_base_learner={args.rgm_base_learner!r} is not a base learner "
                         "(e.g. maddpg_learner, q_learner, wqmix_learner)")
    if base not in _CLASSES:
        _CLASSES[base] = type(f"RGMComm{base.__name__}", (RGMCommMixin, base), {})
    return _CLASSES[base](mac, scheme, logger, args)
