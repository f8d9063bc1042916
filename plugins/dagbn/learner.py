"""MAPPO with a BN joint policy (paper 003, Section 6.3): per-agent clipped ratios of
pi^i(a^i | o^i, a^{P_i}), GAE advantages from a centralised state critic, DAG-density
regularisation with the annealing schedule of Section 7.4.4.

Parent inputs at update time (``dag_update_dag``): ``fresh`` (default, the public runs) samples a
new DAG from the current DAG nets and masks the stored joint actions with it, so the policy loss
reaches the edge and permutation nets through the straight-through masks; ``stored`` reuses the
DAG the actions were sampled under (no gradient to the DAG nets except through the regulariser,
which then uses a fresh DAG). The ratio's denominator is the behaviour log-probability stored at
acting time (MAPPO's old_action_log_probs).

Critic: Base(hidden)-FC(1) on the state (paper Table 2), squared error on GAE returns (or on
running-standardised returns with ``standardise_returns``). Advantages are standardised over the
batch. Everything trains on the latest ``batch_size`` episodes for ``epochs`` full-batch epochs.
"""
from __future__ import annotations

import math

import torch as th
import torch.nn as nn
import torch.nn.functional as F

from marlkit.errors import SuiteError
from marlkit.learner_files import ModelFiles

from .exact import coordination_metrics
from .graph import density
from .policy import base


def anneal(args, t_env):
    """(alpha, eta) of the density regulariser alpha * |rho(G) - eta| at step t_env (Section 7.4.4).

    Without annealing: (dag_alpha, dag_eta). With it, f = t_env / t_max and l = dag_anneal_levels:
    eta = 1 for f < a, then falls from 1 to 0 in l equal steps between a and b, 0 after b;
    alpha = dag_alpha until b, then rises to dag_alpha_end in l equal steps between b and c.
    """
    if not args.dag_anneal:
        return args.dag_alpha, args.dag_eta
    f, levels = t_env / max(args.t_max, 1), args.dag_anneal_levels
    a, b, c = args.dag_anneal_a, args.dag_anneal_b, args.dag_anneal_c

    def stepped(lo, hi):  # fraction of the way from lo to hi, in `levels` equal steps
        if f < lo:
            return 0.0
        if f >= hi:
            return 1.0
        return math.floor((f - lo) / (hi - lo) * levels + 1e-9) / levels  # 1e-9: exact boundaries

    eta = 1.0 - stepped(a, b)
    alpha = args.dag_alpha + (args.dag_alpha_end - args.dag_alpha) * stepped(b, c)
    return alpha, eta


def gae(rewards, values, terminated, mask, gamma, lam):
    """Advantages [B, T]: delta_t = r_t + gamma V_{t+1} (1 - term_t) - V_t, accumulated backwards
    with gamma * lambda; steps outside the episode (mask 0) get 0 and pass nothing back."""
    B, T = rewards.shape
    adv = th.zeros_like(rewards)
    running = th.zeros(B, device=rewards.device)
    for t in reversed(range(T)):
        live = 1.0 - terminated[:, t]
        delta = rewards[:, t] + gamma * values[:, t + 1] * live - values[:, t]
        running = (delta + gamma * lam * live * running) * mask[:, t]
        adv[:, t] = running
    return adv


class RunningStats:
    """Running mean/variance of the returns (Chan et al. parallel update)."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x):
        m, v, n = x.mean().item(), x.var(unbiased=False).item(), x.numel()
        delta, total = m - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + v * n + delta**2 * self.count * n / total) / total
        self.count = total


class DAGBNLearner(ModelFiles):
    MODEL_FILES = {"critic.th": "critic", "agent_opt.th": "agent_optimiser", "critic_opt.th": "critic_optimiser"}

    def __init__(self, mac, scheme, logger, args):
        if args.dag_anneal and not args.dag_anneal_a <= args.dag_anneal_b <= args.dag_anneal_c:
            raise SuiteError(f"dag_anneal needs dag_anneal_a <= dag_anneal_b <= dag_anneal_c, got "
                             f"{args.dag_anneal_a}, {args.dag_anneal_b}, {args.dag_anneal_c}")
        self.args, self.mac, self.logger = args, mac, logger
        self.n_agents = args.n_agents
        self.critic = nn.Sequential(base(scheme["state"]["vshape"], args.hidden_dim), nn.Linear(args.hidden_dim, 1))
        self.agent_optimiser = th.optim.Adam(mac.parameters(), lr=args.lr)
        self.critic_optimiser = th.optim.Adam(self.critic.parameters(), lr=args.lr)
        self.returns_stats = RunningStats()
        self.log_stats_t = -args.learner_log_interval - 1
        self.train_steps = 0

    # ---- one PPO update ----------------------------------------------------------------------
    def train(self, batch, t_env, episode_num):
        args = self.args
        T = batch.max_seq_length - 1
        rewards = batch["reward"][:, :-1, 0]
        terminated = batch["terminated"][:, :-1, 0].float()
        mask = batch["filled"][:, :-1, 0].float()
        mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
        agent_mask = mask.unsqueeze(-1).expand(-1, -1, self.n_agents)

        with th.no_grad():
            values = self.critic(batch["state"]).squeeze(-1)  # [B, T + 1]
            if args.standardise_returns:
                values = values * math.sqrt(self.returns_stats.var) + self.returns_stats.mean
            adv = gae(rewards, values, terminated, mask, args.gamma, args.gae_lambda)
            returns = adv + values[:, :T]
            return_mean = _masked_mean(returns, mask).item()
            adv = (adv - _masked_mean(adv, mask)) / (_masked_std(adv, mask) + 1e-8)
            if args.standardise_returns:
                self.returns_stats.update(returns[mask > 0])
                returns = (returns - self.returns_stats.mean) / math.sqrt(self.returns_stats.var)

        x, obs = self.mac.inputs(batch)
        x, obs = x[:, :T], obs[:, :T]
        actions = batch["actions"][:, :T, :, 0]
        onehot = batch["actions_onehot"][:, :T]
        avail = batch["avail_actions"][:, :T]
        old_logp = batch["logp"][:, :T, :, 0]
        stored_G = batch["parents"][:, :T].transpose(-2, -1)
        policy = self.mac.agent
        context = policy.graph is not None
        alpha, eta = anneal(args, t_env)

        for _ in range(args.epochs):
            fresh_G = policy.dag(obs) if context else stored_G
            G = fresh_G if args.dag_update_dag == "fresh" else stored_G
            logits = policy.logits(x, G, onehot, obs, avail)
            log_pi = F.log_softmax(logits, -1)
            logp = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
            ratio = th.exp(logp - old_logp)  # per agent (MAPPO), not the joint ratio
            A = adv.unsqueeze(-1)
            surrogate = th.min(ratio * A, ratio.clamp(1 - args.eps_clip, 1 + args.eps_clip) * A)
            entropy = -(log_pi.exp() * log_pi).sum(-1)
            pg_loss = -_masked_mean(surrogate + args.entropy_coef * entropy, agent_mask)
            reg = alpha * _masked_mean((density(fresh_G) - eta).abs(), mask) if context and alpha > 0 else th.zeros(())
            self.agent_optimiser.zero_grad()
            (pg_loss + reg).backward()
            agent_grad = nn.utils.clip_grad_norm_(self.mac.parameters(), args.grad_norm_clip)
            self.agent_optimiser.step()

            v = self.critic(batch["state"][:, :T]).squeeze(-1)
            critic_loss = _masked_mean((v - returns) ** 2, mask)
            self.critic_optimiser.zero_grad()
            critic_loss.backward()
            critic_grad = nn.utils.clip_grad_norm_(self.critic.parameters(), args.grad_norm_clip)
            self.critic_optimiser.step()
        self.train_steps += 1

        if t_env - self.log_stats_t >= args.learner_log_interval:
            with th.no_grad():
                stats = {"pg_loss": pg_loss.item(), "critic_loss": critic_loss.item(), "dag_reg": float(reg),
                         "agent_grad_norm": float(agent_grad), "critic_grad_norm": float(critic_grad),
                         "entropy": _masked_mean(entropy, agent_mask).item(),
                         "approx_kl": _masked_mean(old_logp - logp, agent_mask).item(),
                         "clip_frac": _masked_mean(((ratio - 1).abs() > args.eps_clip).float(), agent_mask).item(),
                         "return_target_mean": return_mean,
                         "dag_alpha": alpha, "dag_eta": eta}
                stats.update(self.graph_stats(fresh_G, mask, batch, T))
                stats.update(self.multimodality(x, G, onehot, obs, avail, agent_mask))
                stats.update(coordination_metrics(self.mac, args))
            for key, value in stats.items():
                self.logger.log_stat(key, value, t_env)
            self.log_stats_t = t_env

    def graph_stats(self, G, mask, batch, T):
        """DAG density, parents per agent, and the share of parents the child can see (if the env
        reports visibility: field ``visible``, row i = who agent i sees)."""
        out = {"dag_density": _masked_mean(density(G), mask).item(),
               "dag_parents_mean": _masked_mean(G.sum(-2).mean(-1), mask).item()}
        if "visible" in batch.scheme:
            seen = batch["visible"][:, :T].transpose(-2, -1)  # [.., j, i] = i sees j
            edges = (G * mask[..., None, None]).sum()
            if edges > 0:
                out["dag_visible_share"] = ((G * seen * mask[..., None, None]).sum() / edges).item()
        return out

    def multimodality(self, x, G, onehot, obs, avail, agent_mask):
        """Section 7.4.4: KL(pi^i(. | o^i, a^{P_i}) || pi^i(. | o^i, no parents)), mean and per agent."""
        log_pi = F.log_softmax(self.mac.agent.logits(x, G, onehot, obs, avail), -1)
        empty = self.mac.agent.logits(x, th.zeros_like(G), onehot, obs, avail)
        kl = (log_pi.exp() * (log_pi - F.log_softmax(empty, -1))).sum(-1)  # [B, T, n]
        per_agent = (kl * agent_mask).sum((0, 1)) / agent_mask.sum((0, 1)).clamp(min=1)
        out = {"multimodality_kl": _masked_mean(kl, agent_mask).item()}
        out.update({f"multimodality_kl_agent{i + 1}": v.item() for i, v in enumerate(per_agent)})
        return out

    # ---- host learner interface ----------------------------------------------------------------
    def cuda(self):
        self.mac.cuda()
        self.critic.cuda()



def _masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def _masked_std(x, mask):
    mean = _masked_mean(x, mask)
    return _masked_mean((x - mean) ** 2, mask).sqrt()
