"""One learner family for pymarl2-style QMIX and its weighted projections.

``WQMixLearner`` is QMIX with pymarl2's settings, parameterised by a weighting strategy
(``wqmix_weighting``):

  none  plain QMIX: loss = masked mean of (Q_tot - y)^2 with y the TD(lambda) target of the
        target QMIX (double-Q target action) -- config ``remix_qmix``;
  ow    Optimistically-Weighted QMIX -- config ``ow_qmix``;
  cw    Centrally-Weighted QMIX -- config ``cw_qmix``;
  remix the ReMIX weights (plugins/remix subclasses this learner and overrides ``compute_weights``).

Shared by every strategy: GRU agents through the host's BasicMAC (``args.mac``), the host's
QMixer (abs() hypernetwork weights, ELU hidden layer) as the monotonic mixer, one Adam optimiser
over every trained network, TD(lambda) targets from the host's ``build_td_lambda_targets``, the
greedy target action of the ONLINE agents (double Q), gradient-norm clipping and hard target
updates every ``target_update_interval`` EPISODES.

Target updates follow pymarl2, not the host's QLearner: the host counts
``target_update_interval_or_tau`` in learner updates; here ``target_update_interval`` counts
episodes and the target networks are copied when
``(episode_num - last_target_update_episode) / target_update_interval >= 1``, with
``last_target_update_episode`` set to the ``episode_num`` of that update (pymarl2's rule; with
batch_size_run 8 and 200 episodes that is every 25 updates).

With a weighting (ow, cw, remix) the learner also trains the unrestricted Q* of WQMIX
(central.py): targets y are TD(lambda) returns of the TARGET Q* evaluated at the monotonic agents'
greedy joint action (argmax of the online QMIX utilities over available actions), and
    loss = qmix_loss * sum(w * mask * (Q_tot - y)^2) / sum(mask)
         + central_loss * sum(mask * (Q* - y)^2) / sum(mask),
w from ``compute_weights`` (no gradient through w), one optimiser over all networks.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch as th
from torch.optim import Adam

from marlkit import host
from marlkit.errors import SuiteError

from .central import CentralMixer, build_central_mac
from .weights import cw_weights, ow_weights, weight_stats

NEG = -1e10  # utility of unavailable actions when taking an argmax


@dataclass
class WeightInputs:
    """Everything a weighting strategy may use, per transition of the (possibly mixed) batch.

    Shapes: [B, T, 1] per transition, [B, T, n] per agent, [B, T, n, A] per agent and action.
    Every tensor is detached.
    """

    q_tot: th.Tensor           # Q_tot(s_t, u_t) of the online monotonic mixer
    targets: th.Tensor         # y_t: TD(lambda) target (from the target Q* when weighted)
    q_star: th.Tensor          # online Q*(s_t, u_t) (None for weighting none)
    q_star_greedy: th.Tensor   # target Q*(s_t, greedy joint action of the online agents)
    agent_qs: th.Tensor        # Q^j(tau_j, u_j): online utilities of the taken actions [B, T, n]
    mac_out: th.Tensor         # online utilities of every action [B, T, n, A]
    actions: th.Tensor         # taken actions [B, T, n, 1]
    greedy: th.Tensor          # greedy actions of the online agents [B, T, n, 1]
    avail: th.Tensor           # available actions [B, T, n, A]
    states: th.Tensor          # s_t [B, T, state_dim]
    mask: th.Tensor            # 1 for real transitions [B, T, 1]


def unroll(mac, batch):
    """Agent outputs for every time step: [B, T+1, n_agents, n_actions]."""
    mac.init_hidden(batch.batch_size)
    return th.stack([mac.forward(batch, t=t) for t in range(batch.max_seq_length)], dim=1)


def build_mixer(args):
    """The monotonic mixer named by ``args.mixer`` (default the host's QMixer), used as is.

    Its class is passed in by the run (``args.components``, see marlkit.registry.Registry.resolve).
    """
    cls = getattr(args, "components", {}).get("mixer")
    if cls is None:
        raise SuiteError(f"mixer '{args.mixer}' is not a registered mixer (args.components has none); "
                         "build learners through marlkit.experiment.build or set args.components")
    return cls() if cls is host.VDNMixer else cls(args)


class WQMixLearner:
    """pymarl2 QMIX with an optional WQMIX-style weighting (see the module docstring)."""

    WEIGHTINGS = ("none", "ow", "cw")

    def __init__(self, mac, scheme, logger, args):
        self.args, self.mac, self.logger = args, mac, logger
        self.n_agents = args.n_agents
        self.weighting = self._weighting(args)
        for key in ("standardise_rewards", "standardise_returns"):
            if getattr(args, key, False):
                raise SuiteError(f"{key}=True is not supported by {type(self).__name__} (pymarl2 trains on raw rewards)")
        if args.mixer is None:
            raise SuiteError(f"{type(self).__name__} needs a monotonic mixer: set mixer=qmix")

        self.mixer = build_mixer(args)
        self.target_mac = copy.deepcopy(mac)
        self.target_mixer = copy.deepcopy(self.mixer)
        self.params = list(mac.parameters()) + list(self.mixer.parameters())

        self.central = self.weighting != "none"
        if self.central:
            self.central_mac = build_central_mac(scheme, args)
            self.central_mixer = CentralMixer(args)
            self.target_central_mac = copy.deepcopy(self.central_mac)
            self.target_central_mixer = copy.deepcopy(self.central_mixer)
            self.params += list(self.central_mac.parameters()) + list(self.central_mixer.parameters())

        self.optimiser = Adam(params=self.params, lr=args.lr)
        self.training_steps = 0
        self.last_target_update_episode = 0
        self.log_stats_t = -args.learner_log_interval - 1

    # ---- strategy hooks (overridden by plugins/remix) ----------------------------------------
    def _weighting(self, args):
        if args.wqmix_weighting not in self.WEIGHTINGS:
            raise SuiteError(f"wqmix_weighting '{args.wqmix_weighting}' is not one of {', '.join(self.WEIGHTINGS)}")
        return args.wqmix_weighting

    def prepare_batch(self, batch):
        """The batch the update is computed on (ReMIX mixes in recent on-policy episodes)."""
        return batch

    def compute_weights(self, inp: WeightInputs):
        """Per-transition weights of the QMIX TD loss, [B, T, 1]."""
        if self.weighting == "ow":
            return ow_weights(inp.q_tot, inp.targets, self.args.w)
        if self.weighting == "cw":
            return cw_weights(inp.actions, inp.greedy, inp.targets, inp.q_star_greedy, self.args.w)
        return th.ones_like(inp.q_tot)

    def weight_floor(self):
        """Lowest weight the strategy gives (the left end of the logged weight histogram)."""
        return self.args.w

    def extra_stats(self):
        """Strategy-specific statistics logged with the others (name -> float)."""
        return {}

    # ---- the update --------------------------------------------------------------------------
    def train(self, batch, t_env, episode_num):
        batch = self.prepare_batch(batch)
        rewards = batch["reward"][:, :-1]
        actions = batch["actions"][:, :-1]
        terminated = batch["terminated"][:, :-1].float()
        mask = batch["filled"][:, :-1].float()
        mask[:, 1:] = mask[:, 1:] * (1 - terminated[:, :-1])
        avail = batch["avail_actions"]
        states = batch["state"]

        # Online monotonic part: Q_tot(s_t, u_t).
        mac_out = unroll(self.mac, batch)
        agent_qs = th.gather(mac_out[:, :-1], dim=3, index=actions).squeeze(3)
        q_tot = self.mixer(agent_qs, states[:, :-1])

        with th.no_grad():
            # Greedy joint action of the online QMIX agents over available actions (double Q).
            greedy = mac_out.detach().masked_fill(avail == 0, NEG).argmax(dim=3, keepdim=True)
            if self.central:
                target_out = unroll(self.target_central_mac, batch)
                target_qs = th.gather(target_out, 3, greedy).squeeze(3)
                target_max = self.target_central_mixer(target_qs, states)  # target Q*(s_t, greedy_t)
            else:
                target_out = unroll(self.target_mac, batch)
                if self.args.double_q:
                    target_qs = th.gather(target_out, 3, greedy).squeeze(3)
                else:
                    target_qs = target_out.masked_fill(avail == 0, NEG).max(dim=3)[0]
                target_max = self.target_mixer(target_qs, states)
            targets = host.build_td_lambda_targets(rewards, terminated, mask, target_max, self.n_agents,
                                                   self.args.gamma, self.args.td_lambda)

        mask_sum = mask.sum().clamp(min=1.0)
        td_error = (q_tot - targets) * mask
        central_loss = q_star = None
        if self.central:
            central_out = unroll(self.central_mac, batch)
            central_qs = th.gather(central_out[:, :-1], dim=3, index=actions).squeeze(3)
            q_star = self.central_mixer(central_qs, states[:, :-1])
            central_loss = (((q_star - targets) * mask) ** 2).sum() / mask_sum
            with th.no_grad():
                weights = self.compute_weights(WeightInputs(
                    q_tot=q_tot.detach(), targets=targets, q_star=q_star.detach(),
                    q_star_greedy=target_max[:, :-1], agent_qs=agent_qs.detach(),
                    mac_out=mac_out[:, :-1].detach(), actions=actions, greedy=greedy[:, :-1],
                    avail=avail[:, :-1], states=states[:, :-1], mask=mask))
            td_loss = (weights * td_error ** 2).sum() / mask_sum
            loss = self.args.qmix_loss * td_loss + self.args.central_loss * central_loss
        else:
            weights = None
            td_loss = loss = (td_error ** 2).sum() / mask_sum

        self.optimiser.zero_grad()
        loss.backward()
        grad_norm = th.nn.utils.clip_grad_norm_(self.params, self.args.grad_norm_clip)
        self.optimiser.step()
        self.training_steps += 1

        # pymarl2: hard target update every target_update_interval EPISODES.
        if (episode_num - self.last_target_update_episode) / self.args.target_update_interval >= 1.0:
            self._update_targets()
            self.last_target_update_episode = episode_num

        if t_env - self.log_stats_t >= self.args.learner_log_interval:
            self._log(t_env, loss, td_loss, central_loss, grad_norm, td_error, q_tot, targets, q_star, weights, mask)
            self.log_stats_t = t_env

    def _log(self, t_env, loss, td_loss, central_loss, grad_norm, td_error, q_tot, targets, q_star, weights, mask):
        n = mask.sum().item()
        stats = {
            "loss": loss.item(),
            "td_loss": td_loss.item(),
            "grad_norm": float(grad_norm),
            "td_error_abs": td_error.abs().sum().item() / n,
            "q_taken_mean": (q_tot * mask).sum().item() / n,  # mean Q_tot per transition
            "target_mean": (targets * mask).sum().item() / n,
        }
        if self.central:
            stats["central_loss"] = central_loss.item()
            stats["central_q_taken_mean"] = (q_star * mask).sum().item() / n
            stats.update(weight_stats(weights, mask, self.weight_floor(), self.args.weight_hist_bins))
            stats.update(self.extra_stats())
        for key, value in stats.items():
            self.logger.log_stat(key, value, t_env)

    # ---- targets, devices, files -------------------------------------------------------------
    def _pairs(self):
        """(online, target) pairs of every network with a target copy."""
        pairs = [(self.mac, self.target_mac), (self.mixer, self.target_mixer)]
        if self.central:
            pairs += [(self.central_mac, self.target_central_mac), (self.central_mixer, self.target_central_mixer)]
        return pairs

    def _update_targets(self):
        for online, target in self._pairs():
            if hasattr(online, "agent"):
                target.load_state(online)
            else:
                target.load_state_dict(online.state_dict())

    def cuda(self):
        for online, target in self._pairs():
            online.cuda()
            target.cuda()

    def _files(self):
        """file name -> (module or optimiser) of every network the learner trains or targets."""
        files = {"agent.th": self.mac.agent, "mixer.th": self.mixer,
                 "target_agent.th": self.target_mac.agent, "target_mixer.th": self.target_mixer}
        if self.central:
            files.update({"central_agent.th": self.central_mac.agent, "central_mixer.th": self.central_mixer,
                          "target_central_agent.th": self.target_central_mac.agent,
                          "target_central_mixer.th": self.target_central_mixer})
        files["opt.th"] = self.optimiser
        return files

    def save_models(self, path):
        """Every network (agents, mixer, central Q*, all targets) and the optimiser, as .th files."""
        for name, obj in self._files().items():
            th.save(obj.state_dict(), f"{path}/{name}")

    def load_models(self, path):
        """Inverse of save_models; a target file that is missing (a host-style checkpoint holding
        only agent.th/mixer.th/opt.th) is taken from its online network."""
        import os

        files = self._files()
        targets = {"target_agent.th": "agent.th", "target_mixer.th": "mixer.th",
                   "target_central_agent.th": "central_agent.th", "target_central_mixer.th": "central_mixer.th"}
        for name, obj in files.items():
            source = name
            if not os.path.exists(f"{path}/{name}") and name in targets:
                source = targets[name]
            obj.load_state_dict(th.load(f"{path}/{source}", map_location=lambda storage, loc: storage))
