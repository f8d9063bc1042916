"""ReMIX learner: the OW-QMIX learner of plugins/wqmix with its weight tensor replaced by the
ReMIX weight (Theorem 1 / eq. 4, Algorithm 1, loss eq. 7).

Everything but the weights is inherited: pymarl2 QMIX agents and host QMixer (Q_k = Q_tot), the
unrestricted Q* (central agents + feed-forward mixer) that gives the targets y = B*Q*_{k-1}
(TD(lambda) of the target Q* at the QMIX greedy joint action) and the value Q*_{k-1}(s, u) of the
underestimation term, and loss = sum w (Q_tot - y)^2 (eq. 7) + unweighted Q* TD loss.

On-policy ratio d^pi/mu (the paper: "an additional replay buffer storing the recently generated
transitions"; estimator ``recent_mix``):
  * the learner keeps the ``remix_recent_episodes`` most recent episodes in its own small buffer,
    fed by ``observe_episodes(episode_batch)``, which the suite's loop calls with every new
    on-policy EpisodeBatch (src/marlkit/experiment.py, train_iteration);
  * each update replaces a share ``remix_recent_frac`` of the sampled batch's episodes by episodes
    drawn uniformly from that buffer (the batch size, hence the cost, is unchanged);
  * d^pi is approximated by the uniform distribution over the M recent episodes and mu by the
    uniform distribution over the N episodes of the replay buffer (N = episodes seen, at most
    buffer_size). A transition drawn from the recent buffer then has d^pi/mu = N/M, a transition
    drawn from the replay buffer has E_mu[d^pi/mu] = 1 (it is recent with probability M/N). So
    recent rows get ratio clip(N/M, 1, remix_ratio_clip) (clipped like an importance weight, for
    variance) and replay rows ratio 1;
  * without the hook (offline use, a loop that does not call it) or before the first episode is
    observed, every ratio is 1 and no rows are replaced: the estimator degrades to "term off".
  * with remix_use_onpolicy=False neither the mixing nor the ratio happens (Fig. 5 ablation).
The recent buffer is written to ``remix_recent.th`` by save_models, so a resumed run keeps it.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import torch as th

from marlkit import host
from marlkit.errors import SuiteError

from ..wqmix.learner import WQMixLearner, WeightInputs
from .weights import (FPRIME_MODES, MAPPINGS, boltzmann_taken_prob, map_weights, mixer_gradient,
                      remix_raw_weights)

RECENT_FILE = "remix_recent.th"


def concat_episodes(first, second, scheme, groups):
    """One EpisodeBatch holding the episodes of ``first`` then ``second`` (zero-padded in time)."""
    T = max(first.max_seq_length, second.max_seq_length)
    B = first.batch_size + second.batch_size
    data = SimpleNamespace(transition_data={}, episode_data={})
    for part in ("transition_data", "episode_data"):
        for key, a in getattr(first.data, part).items():
            b = getattr(second.data, part)[key]
            if part == "transition_data":
                out = a.new_zeros((B, T, *a.shape[2:]))
                out[:first.batch_size, :a.shape[1]] = a
                out[first.batch_size:, :b.shape[1]] = b.to(a.device)
            else:
                out = th.cat([a, b.to(a.device)], dim=0)
            getattr(data, part)[key] = out
    return host.EpisodeBatch(scheme, groups, B, T, data=data, device=first.device)


class ReMIXLearner(WQMixLearner):
    def __init__(self, mac, scheme, logger, args):
        super().__init__(mac, scheme, logger, args)
        if args.remix_fprime not in FPRIME_MODES:
            raise SuiteError(f"remix_fprime '{args.remix_fprime}' is not one of {', '.join(FPRIME_MODES)}")
        if args.remix_mapping not in MAPPINGS:
            raise SuiteError(f"remix_mapping '{args.remix_mapping}' is not one of {', '.join(MAPPINGS)}")
        if args.remix_recent_episodes < args.batch_size_run:
            raise SuiteError(f"remix_recent_episodes={args.remix_recent_episodes} must be at least "
                             f"batch_size_run={args.batch_size_run} (one runner batch must fit)")
        self.scheme = {k: v for k, v in scheme.items() if k != "filled"}
        self.groups = {"agents": args.n_agents}
        self.recent = None  # host ReplayBuffer of the most recent episodes, built on first use
        self.episodes_seen = 0
        self._recent_rows = None  # [B] bool: rows of the current batch drawn from the recent buffer
        self._last = {}

    def _weighting(self, args):
        return "remix"

    def weight_floor(self):
        return self.args.w_min

    # ---- on-policy ratio estimator -----------------------------------------------------------
    def observe_episodes(self, episode_batch):
        """Hook of the training loop: every new on-policy EpisodeBatch (runner output)."""
        self.episodes_seen += episode_batch.batch_size
        if not self.args.remix_use_onpolicy:
            return
        if self.recent is None:
            self.recent = host.ReplayBuffer(self.scheme, self.groups, self.args, self.args.remix_recent_episodes,
                                            episode_batch.max_seq_length, preprocess=None, device="cpu")
        self.recent.insert_episode_batch(episode_batch)

    def _n_recent_rows(self, batch_size):
        if not self.args.remix_use_onpolicy or self.recent is None or self.recent.episodes_in_buffer == 0:
            return 0
        k = int(round(self.args.remix_recent_frac * batch_size))
        return max(0, min(k, batch_size - 1, self.recent.episodes_in_buffer))

    def recent_ratio(self):
        """d^pi/mu of a transition drawn from the recent buffer: clip(N/M, 1, remix_ratio_clip)."""
        if self.recent is None or self.recent.episodes_in_buffer == 0:
            return 1.0
        n = min(self.episodes_seen, self.args.buffer_size)
        m = self.recent.episodes_in_buffer
        return float(min(max(n / m, 1.0), self.args.remix_ratio_clip))

    def prepare_batch(self, batch):
        k = self._n_recent_rows(batch.batch_size)
        rows = th.zeros(batch.batch_size, dtype=th.bool)
        if k > 0:
            recent = self.recent.sample(k)
            recent = recent[:, :recent.max_t_filled()]
            keep = batch[:batch.batch_size - k]
            batch = concat_episodes(keep, recent, self.scheme, self.groups)
            rows[batch.batch_size - k:] = True
        self._recent_rows = rows
        return batch

    def onpolicy_ratio(self, batch_size):
        """[B, 1, 1] estimated d^pi/mu per batch row (see the module docstring)."""
        rows = self._recent_rows if self._recent_rows is not None else th.zeros(batch_size, dtype=th.bool)
        ratio = th.where(rows, th.tensor(self.recent_ratio()), th.tensor(1.0))
        return ratio.view(-1, 1, 1).double()

    # ---- Theorem 1 weights -------------------------------------------------------------------
    def compute_weights(self, inp: WeightInputs):
        a = self.args
        fprime = mixer_gradient(self.mixer, inp.agent_qs, inp.states, a.remix_fprime)  # Lemma 1, eq. 9
        pi = boltzmann_taken_prob(inp.mac_out, inp.actions, inp.avail, a.remix_tau)    # Section 4.1
        raw, terms = remix_raw_weights(                                                 # eq. 4, Alg. 1
            inp.q_tot, inp.targets, inp.q_star, fprime, pi, self.onpolicy_ratio(inp.q_tot.shape[0]),
            use_bellman_error=a.remix_use_bellman_error, use_underestimation=a.remix_use_underestimation,
            use_mixer_gradient=a.remix_use_mixer_gradient, use_onpolicy=a.remix_use_onpolicy,
            epsilon=a.remix_epsilon, exp_clip=a.remix_exp_clip, fprime_min=a.remix_fprime_min,
            grad_floor=a.remix_grad_floor)
        weights = map_weights(raw, inp.mask, a.w_min, a.remix_mapping)                  # 1/Z*, eq. 4
        valid = inp.mask > 0
        under = (inp.q_tot <= inp.targets) & valid
        self._last = {
            "remix_under_share": under.float().sum().item() / max(valid.sum().item(), 1),
            "remix_floored_grad_share": ((terms["mixer_gradient"] <= a.remix_grad_floor) & under).float().sum().item()
            / max(under.sum().item(), 1),
            "remix_fprime_mean": (fprime * inp.mask).sum().item() / max(valid.sum().item() * self.n_agents, 1),
            "remix_recent_rows": float(self._recent_rows.sum()) if self._recent_rows is not None else 0.0,
            "remix_recent_ratio": self.recent_ratio(),
        }
        return weights

    def extra_stats(self):
        return dict(self._last)

    # ---- files -------------------------------------------------------------------------------
    def save_models(self, path):
        super().save_models(path)
        state = {"episodes_seen": self.episodes_seen, "recent": None}
        if self.recent is not None:
            n = self.recent.episodes_in_buffer
            state["recent"] = {"transition_data": {k: v[:n].clone() for k, v in self.recent.data.transition_data.items()},
                               "buffer_index": self.recent.buffer_index, "episodes_in_buffer": n,
                               "max_seq_length": self.recent.max_seq_length}
        th.save(state, os.path.join(path, RECENT_FILE))

    def load_models(self, path):
        super().load_models(path)
        file = os.path.join(path, RECENT_FILE)
        if not os.path.exists(file):
            return
        state = th.load(file, weights_only=False)
        self.episodes_seen = state["episodes_seen"]
        saved = state["recent"]
        self.recent = None
        if saved is not None:
            self.recent = host.ReplayBuffer(self.scheme, self.groups, self.args, self.args.remix_recent_episodes,
                                            saved["max_seq_length"], preprocess=None, device="cpu")
            n = saved["episodes_in_buffer"]
            for k, v in saved["transition_data"].items():
                self.recent.data.transition_data[k][:n] = v
            self.recent.buffer_index, self.recent.episodes_in_buffer = saved["buffer_index"], n
