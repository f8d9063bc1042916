"""The ReMIX projection weights (paper 001: Theorem 1 / eq. 4, Algorithm 1 line 19, Lemma 1 / eq. 9).

Per sampled transition (s, u) with Q_k = Q_tot(s, u), y = B* Q*_{k-1} (the target) and
Q*_{k-1}(s, u) the unrestricted Q* (eq. 4 and Algorithm 1):

    raw = (y - Q_k) * exp(Q*_{k-1} - Q_k) * (sum_j (1 - pi^j) / f'_{s,Q^j} - 1) * d^pi / mu   if Q_k <= y
    raw = epsilon                                                                             if Q_k >  y

       Bellman error      value underestimation   mixer gradient (Lemma 1)         on-policy ratio

then the weights are mapped into [w_min, 1] (the paper's stand-in for the unknown normaliser Z*
of eq. 4) and used in the weighted TD loss of eq. 7. Each of the four terms can be switched off
(Fig. 5 ablation): a switched-off term is replaced by 1; the Bellman-error switch removes the
factor (y - Q_k) only, the under/over-estimation test Q_k <= y that selects epsilon stays.

Numerical guards (documented defaults in plugins/remix/__init__.py):
  * the exponent Q* - Q_k is clamped to [-remix_exp_clip, remix_exp_clip];
  * f' is floored at remix_fprime_min before dividing;
  * inputs are made finite (nan -> 0, +-inf -> +-1e30) and the product is formed in float64,
    where its largest possible value (1e30 * e^clip * n / f'_min * ratio) is finite;
  * the mixer-gradient term lies in [-1, inf) and is negative whenever sum_j (1 - pi^j)/f'_j < 1,
    which is common with few agents (2 agents with f' ~ 2, as the host QMixer learns on the
    matrix game). The paper's proof assumes it non-negative (Appendix C, after eq. 28). Taken
    literally (weight 0, the KKT reading of w >= 0 in eq. 3) it zeroes every underestimated
    transition there and the weights would favour the OVERestimated ones (epsilon > 0). So the
    term is floored at ``grad_floor`` (remix_grad_floor, default 0.05; 0 = the literal reading):
    such transitions keep a small mixer factor and are still ranked by the other terms;
  * an underestimated transition never weighs less than an overestimated one: its raw weight is
    max(product, epsilon) (eq. 4 adds the small epsilon_k term to E_k).
"""
from __future__ import annotations

import torch as th
import torch.nn.functional as F

from marlkit import host
from marlkit.errors import SuiteError

BIG = 1e30
MAPPINGS = ("minmax", "rank", "clip")
FPRIME_MODES = ("closed_form", "autograd")


def _finite(x):
    return th.nan_to_num(x.double(), nan=0.0, posinf=BIG, neginf=-BIG)


# ---- Lemma 1: the mixer gradient f'_{s,Q^j} = dQ_tot / dQ^j --------------------------------
def qmix_gradient_closed_form(mixer, agent_qs, states):
    """dQ_tot/dQ^j of the host's QMixer, in closed form (Lemma 1, eq. 9, for its actual layers).

    The host mixer computes Q_tot = ELU(q W1 + b1) . W2 + V(s) with W1 = |hyper_w_1(s)| [n x m],
    b1 = hyper_b_1(s), W2 = |hyper_w_final(s)| [m], so
        dQ_tot/dQ^j = sum_k |W1_jk| * |W2_k| * ELU'(pre_k),  pre = q W1 + b1,
        ELU'(x) = 1 for x > 0, exp(x) otherwise (alpha = 1).
    agent_qs [..., n], states [..., state_dim] -> [..., n].
    """
    if not isinstance(mixer, host.QMixer) or getattr(mixer, "is_image", False):
        raise SuiteError("remix_fprime=closed_form needs the host's QMixer on vector states (mixer=qmix); "
                         "use remix_fprime=autograd for other mixers")
    lead, n = agent_qs.shape[:-1], mixer.n_agents
    s = states.reshape(-1, mixer.state_dim)
    w1 = th.abs(mixer.hyper_w_1(s)).view(-1, n, mixer.embed_dim)
    b1 = mixer.hyper_b_1(s).view(-1, 1, mixer.embed_dim)
    w2 = th.abs(mixer.hyper_w_final(s)).view(-1, 1, mixer.embed_dim)
    pre = th.bmm(agent_qs.reshape(-1, 1, n), w1) + b1  # [N, 1, m]
    d_elu = th.where(pre > 0, th.ones_like(pre), th.exp(pre.clamp(max=0.0)))
    return (w1 * d_elu * w2).sum(-1).view(*lead, n)


def mixer_gradient_autograd(mixer, agent_qs, states):
    """dQ_tot/dQ^j by automatic differentiation through any mixer (the test oracle)."""
    with th.enable_grad():
        qs = agent_qs.detach().clone().requires_grad_(True)
        q_tot = mixer(qs, states)
        (grad,) = th.autograd.grad(q_tot.sum(), qs)
    return grad.detach()


def mixer_gradient(mixer, agent_qs, states, mode="closed_form"):
    if mode == "closed_form":
        return qmix_gradient_closed_form(mixer, agent_qs, states)
    if mode == "autograd":
        return mixer_gradient_autograd(mixer, agent_qs, states)
    raise SuiteError(f"remix_fprime '{mode}' is not one of {', '.join(FPRIME_MODES)}")


# ---- pi^j: Boltzmann policy of agent j at its taken action (Section 4.1) ------------------
def boltzmann_taken_prob(mac_out, actions, avail, tau=1.0):
    """pi^j(u_j | tau_j) = softmax(Q^j / tau) over agent j's AVAILABLE actions, at the taken u_j.

    mac_out, avail [..., n, A]; actions [..., n, 1] -> [..., n]. Rows with no available action
    (padding) give probability 0.
    """
    logits = _finite(mac_out).clamp(-BIG, BIG) / tau
    logits = logits.masked_fill(avail == 0, float("-inf"))
    any_avail = (avail != 0).any(-1, keepdim=True)
    logits = th.where(any_avail, logits, th.zeros_like(logits))
    probs = F.softmax(logits, dim=-1)
    probs = th.where(any_avail, probs, th.zeros_like(probs))
    return th.gather(probs, -1, actions).squeeze(-1)


# ---- Theorem 1 / eq. 4 / Algorithm 1 line 19: the raw weight ------------------------------
def remix_raw_weights(q_tot, targets, q_star, fprime, pi_taken, ratio, *, use_bellman_error=True,
                      use_underestimation=True, use_mixer_gradient=True, use_onpolicy=True,
                      epsilon=1e-3, exp_clip=10.0, fprime_min=1e-3, grad_floor=0.05):
    """Unnormalised ReMIX weights, float64 [B, T, 1], and the four terms (dict, for logs/tests).

    q_tot, targets, q_star [B, T, 1]; fprime, pi_taken [B, T, n]; ratio broadcastable to [B, T, 1].
    """
    q_tot, targets, q_star = _finite(q_tot), _finite(targets), _finite(q_star)
    under = q_tot <= targets  # Theorem 1: E_k = 0 (here: epsilon) when Q_k > B*Q*_{k-1}
    one = th.ones_like(q_tot)
    terms = {
        # B*Q*_{k-1} - Q_k >= 0 on the underestimated side (eq. 4)
        "bellman_error": (targets - q_tot).clamp(min=0.0) if use_bellman_error else one,
        # exp(Q*_{k-1} - Q_k), exponent clamped (eq. 4)
        "underestimation": th.exp((q_star - q_tot).clamp(-exp_clip, exp_clip)) if use_underestimation else one,
        # sum_j (1 - pi^j) / f'_{s,Q^j} - 1, f' from Lemma 1 (eq. 4, eq. 9), floored at grad_floor
        "mixer_gradient": (((1.0 - _finite(pi_taken)) / _finite(fprime).clamp(min=fprime_min)).sum(-1, keepdim=True)
                           - 1.0).clamp(min=grad_floor) if use_mixer_gradient else one,
        # d^{pi_k}(s, u) / mu(s, u) (eq. 4), estimated by the learner
        "onpolicy": _finite(th.as_tensor(ratio)).expand_as(q_tot) if use_onpolicy else one,
    }
    product = terms["bellman_error"] * terms["underestimation"] * terms["mixer_gradient"] * terms["onpolicy"]
    raw = th.where(under, product.clamp(min=float(epsilon)), th.full_like(q_tot, float(epsilon)))
    return raw, terms


# ---- mapping into [w_min, 1] (stand-in for 1/Z* of eq. 4) ---------------------------------
def map_weights(raw, mask, w_min, mode="minmax"):
    """Map raw weights of the real transitions (mask > 0) of one batch into [w_min, 1].

    minmax  w = w_min + (1 - w_min) (raw - min) / (max - min)   (all 1 if max == min)
    rank    w = w_min + (1 - w_min) r / r_max, r = number of real transitions with a smaller raw
            weight (ties share a rank; all 1 if every raw weight is equal)
    clip    w = clip(raw / mean(raw), w_min, 1): the normaliser Z* = E_mu[raw] of the constraint
            E_mu[w] = 1 (eq. 3), then clipped into the range (all 1 if the mean is 0)
    Padding entries (mask 0) get 1; they do not enter the loss. Returns float32.
    """
    raw = _finite(raw)
    valid = mask > 0
    ones = th.ones_like(raw)
    if not valid.any():
        return ones.float()
    values = raw[valid]
    if mode == "minmax":
        lo, hi = values.min(), values.max()
        scaled = (raw - lo) / (hi - lo) if hi > lo else ones
    elif mode == "rank":
        ordered = th.sort(values)[0]
        ranks = th.searchsorted(ordered, raw.contiguous(), right=False).to(raw.dtype)
        top = ranks[valid].max()
        scaled = ranks / top if top > 0 else ones
    elif mode == "clip":
        mean = values.mean()
        scaled = raw / mean if mean > 0 else ones
    else:
        raise SuiteError(f"remix_mapping '{mode}' is not one of {', '.join(MAPPINGS)}")
    w = (w_min + (1.0 - w_min) * scaled) if mode != "clip" else scaled
    w = w.clamp(w_min, 1.0)
    return th.where(valid, w, ones).float()
