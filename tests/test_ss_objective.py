"""Paper 002's Eq. 16 against a hand-computed batch and a per-agent loop oracle; the exchange
boundary; consensus (VPS, PS) and value sharing (VS)."""
import math

import pytest
import torch as th

from plugins.ss.exchange import Messages, consensus_weights, exchange, share_values
from plugins.ss.nets import GroupMLP
from plugins.ss.objective import eq16


def _hand_case():
    """N = 2 agents, A = 2 actions, M = 1 sample, agent 1 is agent 0's neighbour and vice versa."""
    p = th.tensor([[[[0.6, 0.4]], [[0.7, 0.3]]],     # pi^{00}, pi^{01}
                   [[[0.2, 0.8]], [[0.5, 0.5]]]])    # pi^{10}, pi^{11}   -> [i, j, M, A]
    actions = th.tensor([[0], [1]])                  # a_0 = 0, a_1 = 1
    behaviour = th.log(th.tensor([[0.4], [0.25]]))   # pi^{00}_old(a_0), pi^{11}_old(a_1)
    adv = th.tensor([[2.0], [-1.0]])
    nbr = th.tensor([[[0.0], [1.0]], [[1.0], [0.0]]])
    return p, actions, behaviour, adv, nbr


def _eq16_from_probs(p, actions, behaviour, adv, nbr, eps=0.2, rho=0.5, msgs=None):
    n = p.shape[0]
    taken = p.gather(-1, actions.expand(n, n, -1).unsqueeze(-1)).squeeze(-1)
    log_sugg = taken.log()
    log_own = log_sugg[th.arange(n), th.arange(n)]
    dist_own = p[th.arange(n), th.arange(n)]
    msgs = msgs or exchange(p, behaviour)
    return eq16(adv, th.ones(adv.shape[1]), actions, log_own, behaviour, log_sugg, dist_own, p, msgs, nbr, eps, rho)


def test_eq16_matches_hand_computation():
    p, actions, behaviour, adv, nbr = _hand_case()
    terms = _eq16_from_probs(p, actions, behaviour, adv, nbr)
    # agent 0: xi_0 = 0.6/0.4 = 1.5 (clipped to 1.2), xi_N0 = pi^{01}(a_1=1)/pi^{11}_old(1) = 0.3/0.25 = 1.2
    #   A = 2 > 0: min(1.5*1.2*2, 1.2*1.2*2) = 2.88; kappa_0 = 2
    #   X^{01}: 0.3/0.5 * 2 = 1.2 >= 2? no.  X^{00}: pi^{00}(0)/pi^{10}(0) * 2 = 0.6/0.2*2 = 6 >= 2: yes
    #   ||pi^{00} - pi^{10}||^2 = 0.4^2 + 0.4^2 = 0.32 -> penalty 2 * 0.5 * 0.32 = 0.32
    # agent 1: xi_1 = 0.5/0.25 = 2 (clipped 1.2), xi_N1 = pi^{10}(a_0=0)/pi^{00}_old(0) = 0.2/0.4 = 0.5
    #   A = -1: min(2*0.5*-1, 1.2*0.5*-1) = -1.0; kappa_1 = 1
    #   X^{10}: 0.2/0.6 * -1 = -0.333 >= -1: yes, ||pi^{10} - pi^{00}||^2 = 0.32
    #   X^{11}: pi^{11}(1)/pi^{01}(1) * -1 = 0.5/0.3 * -1 = -1.667 >= -1? no
    #   penalty 1 * 0.5 * 0.32 = 0.16
    assert terms.surrogate.tolist() == pytest.approx([2.88, -1.0])
    assert terms.kappa.tolist() == pytest.approx([2.0, 1.0])
    assert terms.penalty.tolist() == pytest.approx([0.32, 0.16])
    assert terms.objective.tolist() == pytest.approx([2.56, -1.16])
    assert terms.xi_n.squeeze(-1).tolist() == pytest.approx([1.2, 0.5])


def _loop_oracle(logits, actions, behaviour, adv, mask, nbr, eps, rho):
    """Sum over agents of J_i, written sample by sample and agent by agent."""
    n, _, M, _ = logits.shape
    p = th.softmax(logits, -1)
    sent = p.detach()  # what the other agents receive
    total = 0.0
    for i in range(n):
        kappa = sum(abs(adv[i, m].item()) * mask[m].item() for m in range(M)) / mask.sum().item()
        J = 0.0
        for m in range(M):
            if mask[m] == 0:
                continue
            A = adv[i, m]
            xi = p[i, i, m, actions[i, m]] / behaviour[i, m].exp()
            xi_n = 1.0
            pen = 0.0
            for j in range(n):
                if j == i or nbr[i, j, m] == 0:
                    continue
                xi_n = xi_n * p[i, j, m, actions[j, m]] / behaviour[j, m].exp()
                if (p[i, j, m, actions[j, m]] / sent[j, j, m, actions[j, m]] * A >= A).item():
                    pen = pen + ((p[i, j, m] - sent[j, j, m]) ** 2).sum()
                if (p[i, i, m, actions[i, m]] / sent[j, i, m, actions[i, m]] * A >= A).item():
                    pen = pen + ((p[i, i, m] - sent[j, i, m]) ** 2).sum()
            clipped = th.clamp(xi, 1 - eps, 1 + eps)
            J = J + th.min(xi * xi_n * A, clipped * xi_n * A) - kappa * rho * pen
        total = total + J / mask.sum()
    return total


def test_eq16_value_and_gradients_match_a_per_agent_loop():
    g = th.Generator().manual_seed(0)
    n, M, A = 3, 5, 3
    logits = th.randn(n, n, M, A, generator=g, requires_grad=True)
    actions = th.randint(A, (n, M), generator=g)
    behaviour = th.log(th.rand(n, M, generator=g) * 0.8 + 0.1)
    adv = th.randn(n, M, generator=g) * 2
    mask = th.tensor([1.0, 1.0, 1.0, 0.0, 1.0])
    nbr = (th.rand(n, n, M, generator=g) > 0.4).float() * (1 - th.eye(n)).unsqueeze(-1)
    eps, rho = 0.2, 0.7

    oracle = _loop_oracle(logits, actions, behaviour, adv, mask, nbr, eps, rho)
    (g_oracle,) = th.autograd.grad(oracle, logits)

    p = th.softmax(logits, -1)
    log_all = th.log_softmax(logits, -1).gather(-1, actions.expand(n, n, M).unsqueeze(-1)).squeeze(-1)
    idx = th.arange(n)
    msgs = exchange(p, behaviour)
    terms = eq16(adv, mask, actions, log_all[idx, idx], behaviour, log_all, p[idx, idx], p, msgs, nbr, eps, rho)
    (g_vec,) = th.autograd.grad(terms.objective.sum(), logits)
    assert terms.objective.sum().item() == pytest.approx(oracle.item(), rel=1e-5)
    assert th.allclose(g_vec, g_oracle, atol=1e-5)


def test_only_the_own_ratio_is_clipped():
    """Outside the clip range the own policy gets no surrogate gradient, the suggestions still do."""
    n, M, A = 2, 1, 2
    logits = th.zeros(n, n, M, A, requires_grad=True)
    actions = th.zeros(n, M, dtype=th.long)
    behaviour = th.log(th.full((n, M), 0.25))      # xi_i = 0.5 / 0.25 = 2 > 1.2 and A > 0: clipped
    adv = th.ones(n, M)
    nbr = (1 - th.eye(n)).unsqueeze(-1)
    p = th.softmax(logits, -1)
    log_all = th.log_softmax(logits, -1).gather(-1, actions.expand(n, n, M).unsqueeze(-1)).squeeze(-1)
    idx = th.arange(n)
    terms = eq16(adv, th.ones(M), actions, log_all[idx, idx], behaviour, log_all, p[idx, idx], p,
                 exchange(p, behaviour), nbr, 0.2, 0.0)
    (grad,) = th.autograd.grad(terms.objective.sum(), logits)
    assert grad[idx, idx].abs().max() == 0                      # own policies: clipped
    assert grad[0, 1].abs().max() > 0 and grad[1, 0].abs().max() > 0  # suggestions: xi_N unclipped
    assert terms.xi_n.squeeze().tolist() == pytest.approx([2.0, 2.0])


def test_messages_carry_no_gradient_to_the_sender():
    p, actions, behaviour, adv, nbr = _hand_case()
    logits = p.log().clone().requires_grad_(True)
    probs = th.softmax(logits, -1)
    msgs = exchange(probs, behaviour)
    assert isinstance(msgs, Messages) and not msgs.actual.requires_grad and not msgs.suggestions.requires_grad
    # agent 0's objective must not depend on agent 1's networks (rows i = 1)
    n = 2
    taken = probs.gather(-1, actions.expand(n, n, -1).unsqueeze(-1)).squeeze(-1)
    idx = th.arange(n)
    terms = eq16(adv, th.ones(1), actions, taken.log()[idx, idx], behaviour, taken.log(), probs[idx, idx], probs,
                 msgs, nbr, 0.2, 0.5)
    (grad,) = th.autograd.grad(terms.objective[0], logits)
    assert grad[1].abs().max() == 0 and grad[0].abs().max() > 0


def test_consensus_updates_equal_neighbour_averages():
    n = 3
    nbr = th.zeros(1, 2, n, n)
    nbr[0, 0, 0, 1] = 1.0   # 0 hears 1 at step 0
    nbr[0, 1, 2, 0] = 1.0   # 2 hears 0 at step 1 (a step outside the mask is ignored below)
    nbr[0, 1, 1, 2] = 1.0
    mask = th.tensor([[1.0, 1.0]])
    W = consensus_weights(nbr, mask)
    expected = th.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    assert th.allclose(W, expected)
    assert th.allclose(consensus_weights(nbr, th.tensor([[1.0, 0.0]]))[2], th.tensor([0.0, 0.0, 1.0]))

    net = GroupMLP(n, 4, [5], 2)
    before = [p.detach().clone() for p in net.parameters()]
    net.average_groups(W)                           # VPS: value parameters
    for old, new in zip(before, net.parameters()):
        assert th.allclose(new[0], (old[0] + old[1]) / 2) and th.allclose(new[1], (old[1] + old[2]) / 2)
        assert th.allclose(new[2], (old[2] + old[0]) / 2)

    joint = GroupMLP(n * n, 4, [5], 2)              # PS: group (i, j) = agent i's copy of policy j
    before = [p.detach().clone() for p in joint.parameters()]
    joint.average_groups(th.kron(W, th.eye(n)))
    for old, new in zip(before, joint.parameters()):
        old, new = old.reshape(n, n, *old.shape[1:]), new.reshape(n, n, *new.shape[1:])
        for j in range(n):
            assert th.allclose(new[0, j], (old[0, j] + old[1, j]) / 2)
            assert th.allclose(new[2, j], (old[2, j] + old[0, j]) / 2)


def test_value_sharing_averages_own_and_neighbour_values():
    values = th.tensor([[1.0, 2.0, 6.0]])
    nbr = th.tensor([[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    assert share_values(values, nbr).tolist() == [[3.0, 2.0, 3.5]]


def test_group_mlp_groups_are_independent_networks():
    net = GroupMLP(3, 4, [8, 6], 2)
    x = th.randn(5, 4)
    out = net(x)
    for g in range(3):
        h = x
        for k, (w, b) in enumerate(zip(net.weights, net.biases)):
            h = h @ w[g] + b[g]
            h = th.relu(h) if k < 2 else h
        assert th.allclose(out[g], h, atol=1e-6)
    assert th.allclose(net(x, th.tensor([2, 0])), out[[2, 0]])
    assert math.isclose(float(out.shape[0]), 3)


def test_suggestion_heads_on_neighbour_samples_only_match_dense_evaluation():
    from types import SimpleNamespace

    from plugins.ss.nets import SSPolicies

    n, M, S = 4, 7, 5
    args = SimpleNamespace(n_agents=n, n_actions=3, ss_suggestions=True, ss_actor_hidden=[8, 6])
    policies = SSPolicies(S, args)
    state = th.randn(M, S)
    g = th.Generator().manual_seed(1)
    nbr = (th.rand(n, n, M, generator=g) > 0.8).float() * (1 - th.eye(n)).unsqueeze(-1)
    assert nbr.mean() < 0.5 and nbr.sum() > 0
    dense = policies.all_logits(state)
    sparse = policies.all_logits(state, nbr)
    idx = th.arange(n)
    assert th.allclose(sparse[idx, idx], dense[idx, idx], atol=1e-6)
    on = nbr.bool() | nbr.bool().transpose(0, 1)  # i's neighbours' heads, and the heads i's neighbours read
    assert th.allclose(sparse[on], dense[on], atol=1e-6) and (sparse[~on & ~th.eye(n, dtype=th.bool)[..., None]] == 0).all()
    weight = th.randn_like(dense)
    (g_dense,) = th.autograd.grad(((dense * weight)[on].sum() + (dense * weight)[idx, idx].sum()), policies.net.weights[0])
    (g_sparse,) = th.autograd.grad(((sparse * weight)[on].sum() + (sparse * weight)[idx, idx].sum()), policies.net.weights[0])
    assert th.allclose(g_dense, g_sparse, atol=1e-5)


def test_sparse_heads_give_eq16_of_the_dense_heads_with_one_way_neighbours():
    """Random-m neighbourhoods are not symmetric: when j is i's neighbour but not the reverse,
    agent i's penalty (c) still reads j's suggestion pi^{ji}, so that head must be evaluated too."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from plugins.ss.nets import SSPolicies

    n, M, S, A = 4, 6, 5, 3
    g = th.Generator().manual_seed(3)
    policies = SSPolicies(S, SimpleNamespace(n_agents=n, n_actions=A, ss_suggestions=True, ss_actor_hidden=[8, 6]))
    state = th.randn(M, S, generator=g)
    nbr = th.zeros(n, n, M)
    nbr[0, 1] = 1.0   # 0 hears 1, 1 does not hear 0
    nbr[2, 3, :3] = 1.0
    actions = th.randint(A, (n, M), generator=g)
    behaviour = th.log(th.rand(n, M, generator=g) * 0.8 + 0.1)
    adv = th.randn(n, M, generator=g)

    def objective(logits):
        log_pi = F.log_softmax(logits, -1)
        p, idx = log_pi.exp(), th.arange(n)
        taken = log_pi.gather(-1, actions.expand(n, n, M).unsqueeze(-1)).squeeze(-1)
        return eq16(adv, th.ones(M), actions, taken[idx, idx], behaviour, taken, p[idx, idx], p,
                    exchange(p, behaviour), nbr, 0.2, 1.0).objective

    assert th.allclose(objective(policies.all_logits(state, nbr)), objective(policies.all_logits(state)), atol=1e-6)
