"""The PPO core of paper 002: SS and its baselines (Section 5.2) as switches of one learner.

Per update (Algorithm 1, with batch_size_run episodes instead of one): K = ``epochs`` iterations,
each: advantages A_i by GAE(lambda) on agent i's individual reward with its current value V_i
(Eq. 17; ``ss_advantages=update`` computes them once per update instead), agents exchange action
distributions (exchange.py), every agent takes one Adam step on -J_i of Eq. 16 (objective.py) and
one on its value loss, the squared error to the Monte-Carlo return (Eq. 18).
The agents are updated simultaneously in each iteration, all reading the distributions shared at
its start (Algorithm 1 lets agent i see the already-updated distributions of agents < i; with one
step per iteration this only changes who goes first). ``ss_old_policy`` picks pi_old: ``rollout``
(the acting policy, so Eq. 16's expectation over a ~ pi_old holds; default) or ``iteration``
(Algorithm 1's pi_old <- pi after each iteration).

Switches (all baselines run this same code):
  ss_suggestions     learn pi^{ij} for neighbours j (SS, ss_rho0, PS); off: own policies only
  ss_rho             penalty weight rho (0: the Fig. 4 ablation)
  ss_protocol ...    who counts as a neighbour (neighbours.py)
  ss_value_sharing   none | outputs (VS: GAE on neighbour-averaged values) | params (VPS: consensus
                     on value parameters after each step)
  ss_policy_consensus  PS: consensus on every agent's copy of the joint policy after each step
  ss_critic          individual (V_i on r_i) | central (CL: one V on sum_i r_i, shared advantage)
  ss_imr_weight      IMR: r_i + w * [agent i did the env's cooperative act] (virtue-kindness)
The episode's last step is terminal (``ss_horizon_terminal``): the tasks have fixed horizons and
states without time, so bootstrapping through the limit would bias A_i (Eqs. 17-18 sum over the
episode). Values are learned in a normalised space (running mean/std of the targets per value network,
``ss_value_norm``); advantages and kappa use the de-normalised values.
"""
from __future__ import annotations

import torch as th
import torch.nn as nn
import torch.nn.functional as F

from marlkit.errors import SuiteError
from marlkit.learner_files import ModelFiles

from .exchange import central_reward, consensus_weights, exchange, share_values
from .nets import GroupMLP
from .neighbours import neighbour_mask
from .objective import eq16, masked_mean

NEG = -1e10


def gae(rewards, values, terminated, mask, gamma, lam):
    """GAE (Eq. 17) per column: rewards [B, T, G], values [B, T + 1, G], terminated/mask [B, T]."""
    adv = th.zeros_like(rewards)
    running = th.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        live = (1.0 - terminated[:, t]).unsqueeze(-1)
        delta = rewards[:, t] + gamma * values[:, t + 1] * live - values[:, t]
        running = (delta + gamma * lam * live * running) * mask[:, t].unsqueeze(-1)
        adv[:, t] = running
    return adv


def mc_returns(rewards, terminated, mask, gamma):
    """Discounted reward-to-go sum_l gamma^l r_{t+l} within the episode (Eq. 18's target)."""
    out = th.zeros_like(rewards)
    running = th.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        live = (1.0 - terminated[:, t]).unsqueeze(-1)
        running = (rewards[:, t] + gamma * live * running) * mask[:, t].unsqueeze(-1)
        out[:, t] = running
    return out


class ValueNorm(nn.Module):
    """Running mean and variance of the value targets, one pair per value network."""

    def __init__(self, groups):
        super().__init__()
        self.register_buffer("mean", th.zeros(groups))
        self.register_buffer("var", th.ones(groups))
        self.register_buffer("count", th.full((groups,), 1e-4))

    def update(self, x, mask):  # x [..., G], mask [...]
        w = mask.unsqueeze(-1).expand_as(x)
        n = w.sum(tuple(range(x.dim() - 1)))
        m = (x * w).sum(tuple(range(x.dim() - 1))) / n.clamp(min=1)
        v = (((x - m) ** 2) * w).sum(tuple(range(x.dim() - 1))) / n.clamp(min=1)
        delta, total = m - self.mean, self.count + n
        self.var.copy_((self.var * self.count + v * n + delta**2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)

    def normalise(self, x):
        return (x - self.mean) / self.var.sqrt().clamp(min=1e-6)

    def denormalise(self, x):
        return x * self.var.sqrt().clamp(min=1e-6) + self.mean


class SSLearner(ModelFiles):
    MODEL_FILES = {"critic.th": "critic", "agent_opt.th": "actor_optimiser", "critic_opt.th": "critic_optimiser"}

    def __init__(self, mac, scheme, logger, args):
        self.args, self.mac, self.logger = args, mac, logger
        self.n = args.n_agents
        if args.ss_imr_weight > 0 and "cooperated" not in scheme:
            raise SuiteError(f"ss_imr_weight > 0 (IMR) needs an env that defines a cooperative act; env '{args.env}' "
                             "does not (the paper runs no IMR on coop_navigation)")
        if args.ss_policy_consensus and not args.ss_suggestions:
            raise SuiteError("ss_policy_consensus (PS) needs ss_suggestions=True: every agent learns all N policies")
        if args.ss_critic == "central" and args.ss_value_sharing != "none":
            raise SuiteError("ss_critic=central (CL) has one value network: set ss_value_sharing=none")
        self.value_groups = 1 if args.ss_critic == "central" else self.n
        self.critic = GroupMLP(self.value_groups, scheme["state"]["vshape"], list(args.ss_critic_hidden), 1)
        self.value_norm = ValueNorm(self.value_groups)
        self.actor_optimiser = th.optim.Adam(mac.parameters(), lr=args.ss_actor_lr, fused=True)
        self.critic_optimiser = th.optim.Adam(self.critic.parameters(), lr=args.ss_critic_lr, fused=True)
        for p in self.critic.parameters():  # critic gradients accumulate in place (no reallocation per
            p.grad = th.zeros_like(p)       # step); the actor's backward makes fresh full-size gradients
        self.generator = th.Generator().manual_seed(int(args.seed))
        self.updates = 0
        self.log_stats_t = -args.learner_log_interval - 1

    def values(self, states):
        """De-normalised values [B, T, G] of states [B, T, S]."""
        B, T = states.shape[:2]
        v = self.critic(states.reshape(B * T, -1)).squeeze(-1).transpose(0, 1).reshape(B, T, -1)
        return self.value_norm.denormalise(v) if self.args.ss_value_norm else v

    # ---- one update ------------------------------------------------------------------------
    def train(self, batch, t_env, episode_num):
        args, n = self.args, self.n
        T = batch.max_seq_length - 1
        B = batch.batch_size
        M = B * T
        rewards = batch["reward"][:, :T]
        if args.ss_imr_weight > 0:  # IMR: the act of step t is reported with the observation of t + 1
            rewards = rewards + args.ss_imr_weight * batch["cooperated"][:, 1:T + 1, :, 0]
        terminated = batch["terminated"][:, :T, 0].float()
        mask = batch["filled"][:, :T, 0].float()
        mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
        if args.ss_horizon_terminal:  # fixed-horizon tasks: the last step ends the episode (no bootstrap)
            last = (mask.sum(1).long() - 1).clamp(min=0)
            terminated = terminated.scatter(1, last.unsqueeze(1), 1.0)
        nbr_all = neighbour_mask(args, batch, T + 1, self.updates, self.generator)  # [B, T + 1, n, n]
        nbr = nbr_all[:, :T]
        if args.ss_critic == "central":
            rewards = central_reward(rewards)

        states = batch["state"]

        @th.no_grad()
        def advantages():  # Eq. 17 with the current value networks
            values = self.values(states)
            critic_values = share_values(values, nbr_all) if args.ss_value_sharing == "outputs" else values
            return gae(rewards, critic_values, terminated, mask, args.gamma, args.gae_lambda), critic_values

        adv, critic_values = advantages()
        with th.no_grad():
            if args.ss_value_target == "mc":  # Eq. 18
                targets = mc_returns(rewards, terminated, mask, args.gamma)
            else:  # lambda-returns, consistent with bootstrapping through the time limit
                targets = adv + critic_values[:, :T]
            if args.ss_value_norm:
                self.value_norm.update(targets, mask)
        flat = lambda x: x.reshape(M, *x.shape[2:])  # noqa: E731  [B, T, ...] -> [M, ...]
        s = flat(states[:, :T])
        m = flat(mask)
        actions = flat(batch["actions"][:, :T, :, 0]).T            # [n, M]
        avail = flat(batch["avail_actions"][:, :T]).transpose(0, 1)  # [n, M, A]
        all_avail = bool((avail != 0).all())
        behaviour = flat(batch["logp"][:, :T, :, 0]).T             # [n, M] log pi^{jj}_old(a_j|s)
        nbr_f = flat(nbr).permute(1, 2, 0)                         # [n, n, M]
        policies = self.mac.agent

        plan = policies.plan(s, nbr_f)                             # which heads on which samples (nets.py)
        links = plan.links
        taken = actions.reshape(-1)[plan.target].unsqueeze(-1)     # [R, 1] the action each row scores
        row_avail = None if all_avail else avail.reshape(n * M, -1)[plan.target]
        for k in range(args.epochs):
            if k > 0 and args.ss_advantages == "iteration":  # Algorithm 1: Eq. 17 again after V_i's step
                adv = advantages()[0]
            A_ = flat(adv.expand(B, T, n)).T                       # [n, M]; CL: one advantage for all
            logits = policies.logits(plan)                         # [R, A]
            if row_avail is not None:
                logits = logits.masked_fill(row_avail == 0, NEG)   # avail of the row's target agent
            log_pi = F.log_softmax(logits, -1)
            probs = log_pi.exp()
            log_taken = log_pi.gather(-1, taken).squeeze(-1)       # [R]
            log_own = log_taken[links.own].view(n, M)              # log pi^{ii}(a_i|s)
            old_own = behaviour if args.ss_old_policy == "rollout" else log_own.detach()
            msgs = exchange(probs, log_taken, old_own)             # the only data crossing agents
            terms = eq16(A_, m, log_own, old_own, log_taken, probs, msgs, links, args.eps_clip, args.ss_rho)
            loss = -terms.objective.sum()
            if args.ss_entropy_coef > 0:  # not in the paper; off by default
                own = links.own
                entropy = -(probs[own] * log_pi[own].clamp(min=-1e4)).sum(-1).view(n, M)
                loss = loss - args.ss_entropy_coef * masked_mean(entropy, m).sum()
            self.actor_optimiser.zero_grad(set_to_none=True)       # .grad <- the fresh gradient, no add
            loss.backward()
            self.actor_optimiser.step()

            v = self.critic(s).squeeze(-1).T                       # [M, G] (normalised space)
            target = flat(targets)
            if args.ss_value_norm:
                target = self.value_norm.normalise(target)
            critic_loss = (((v - target) ** 2).mean(-1) * m).sum() / m.sum().clamp(min=1) * self.value_groups
            self.critic_optimiser.zero_grad(set_to_none=False)
            critic_loss.backward()
            self.critic_optimiser.step()

            if args.ss_value_sharing == "params" or args.ss_policy_consensus:
                W = consensus_weights(nbr_all, th.cat([mask, mask[:, -1:]], 1))
                if args.ss_value_sharing == "params":
                    self.critic.average_groups(W)
                if args.ss_policy_consensus:  # group (i, j) <- sum_k W[i, k] * group (k, j)
                    policies.net.average_groups(th.kron(W, th.eye(n)))
        self.updates += 1

        if t_env - self.log_stats_t >= args.learner_log_interval:
            self.log(terms, critic_loss, A_, m, nbr_f, probs, msgs, links, batch, T, t_env)
            self.log_stats_t = t_env

    def log(self, terms, critic_loss, adv, m, nbr, probs, msgs, links, batch, T, t_env):
        stats = {"pg_loss": -terms.surrogate.mean().item(), "penalty": terms.penalty.mean().item(),
                 "kappa_mean": terms.kappa.mean().item(), "critic_loss": critic_loss.item(),
                 "advantage_mean": masked_mean(adv, m).mean().item(),
                 "xi_n_mean": masked_mean(terms.xi_n.detach(), m).mean().item(),
                 "neighbours_mean": masked_mean(nbr.sum(1), m).mean().item()}
        M = m.shape[0]
        w = m[links.at % M]                                        # one weight per (i, j in N_i, sample)
        if self.mac.agent.suggest and w.sum() > 0:
            with th.no_grad():
                sugg, actual = links.mine[:len(w)], links.theirs[:len(w)]  # pi^{ij}(a_j|s) against pi^{jj}(a_j|s)
                gap = (msgs.taken[sugg] - msgs.taken[actual]) ** 2
                stats["suggest_mse"] = ((gap * w).sum() / w.sum()).item()
                if "coop_action" in batch.scheme:  # share of suggested cooperative actions (Fig. 5a, b)
                    coop = batch["coop_action"][:, :T, :, 0].reshape(-1, self.n).T.reshape(-1).long()[links.recv]
                    p_coop = probs[links.pair].gather(-1, coop.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                    wc = w * (coop >= 0).float()
                    if wc.sum() > 0:
                        stats["suggest_coop_share"] = ((p_coop * wc).sum() / wc.sum()).item()
        for key, value in stats.items():
            self.logger.log_stat(key, value, t_env)

    # ---- host learner interface ----------------------------------------------------------------
    def cuda(self):
        self.mac.cuda()
        self.critic.cuda()
        self.value_norm.cuda()
