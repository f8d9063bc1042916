"""Paper 002's Eq. 16 against a hand-computed batch and a per-agent loop oracle; the exchange
boundary; consensus (VPS, PS) and value sharing (VS)."""
import math

import pytest
import torch as th

from plugins.ss.exchange import Messages, consensus_weights, exchange, share_values
from plugins.ss.nets import GroupMLP
from plugins.ss.objective import Links, eq16


def _as_rows(log_p, actions, behaviour, nbr):
    """Dense log-probabilities [N, N, M, A] (head (i, j) = log pi^{ij}) as the rows eq16 reads:
    row (i * N + j) * M + m; returns log_own, log_taken, dist, msgs, links."""
    n, _, M, A = log_p.shape
    links = Links.build(nbr, th.arange(n * n * M).view(n, n, M))
    log_taken = log_p.gather(-1, actions.expand(n, n, M).unsqueeze(-1)).reshape(-1)
    dist = log_p.exp().reshape(-1, A)
    return log_taken[links.own].view(n, M), log_taken, dist, exchange(dist, log_taken, behaviour), links


def _hand_case():
    """N = 2 agents, A = 2 actions, M = 1 sample, agent 1 is agent 0's neighbour and vice versa."""
    p = th.tensor([[[[0.6, 0.4]], [[0.7, 0.3]]],     # pi^{00}, pi^{01}
                   [[[0.2, 0.8]], [[0.5, 0.5]]]])    # pi^{10}, pi^{11}   -> [i, j, M, A]
    actions = th.tensor([[0], [1]])                  # a_0 = 0, a_1 = 1
    behaviour = th.log(th.tensor([[0.4], [0.25]]))   # pi^{00}_old(a_0), pi^{11}_old(a_1)
    adv = th.tensor([[2.0], [-1.0]])
    nbr = th.tensor([[[0.0], [1.0]], [[1.0], [0.0]]])
    return p, actions, behaviour, adv, nbr


def _eq16_from_probs(p, actions, behaviour, adv, nbr, eps=0.2, rho=0.5):
    log_own, log_taken, dist, msgs, links = _as_rows(p.log(), actions, behaviour, nbr)
    return eq16(adv, th.ones(adv.shape[1]), log_own, behaviour, log_taken, dist, msgs, links, eps, rho)


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

    log_own, log_taken, dist, msgs, links = _as_rows(th.log_softmax(logits, -1), actions, behaviour, nbr)
    terms = eq16(adv, mask, log_own, behaviour, log_taken, dist, msgs, links, eps, rho)
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
    idx = th.arange(n)
    log_own, log_taken, dist, msgs, links = _as_rows(th.log_softmax(logits, -1), actions, behaviour, nbr)
    terms = eq16(adv, th.ones(M), log_own, behaviour, log_taken, dist, msgs, links, 0.2, 0.0)
    (grad,) = th.autograd.grad(terms.objective.sum(), logits)
    assert grad[idx, idx].abs().max() == 0                      # own policies: clipped
    assert grad[0, 1].abs().max() > 0 and grad[1, 0].abs().max() > 0  # suggestions: xi_N unclipped
    assert terms.xi_n.squeeze().tolist() == pytest.approx([2.0, 2.0])


def test_messages_carry_no_gradient_to_the_sender():
    p, actions, behaviour, adv, nbr = _hand_case()
    logits = p.log().clone().requires_grad_(True)
    log_own, log_taken, dist, msgs, links = _as_rows(th.log_softmax(logits, -1), actions, behaviour, nbr)
    assert isinstance(msgs, Messages) and not msgs.dist.requires_grad and not msgs.taken.requires_grad
    # agent 0's objective must not depend on agent 1's networks (rows i = 1)
    terms = eq16(adv, th.ones(1), log_own, behaviour, log_taken, dist, msgs, links, 0.2, 0.5)
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


def _previous_eq16(adv, mask, actions, log_own, old_own, log_sugg, dist_own, dist_sugg, behaviour, nbr, eps, rho):
    """Eq. 16 as implemented before the row layout (dense [N, N, M, A] heads), kept as the oracle."""
    kappa = (adv.abs() * mask).sum(-1).detach() / mask.sum()
    ratio = th.exp(log_own - old_own)
    actual, suggestions = dist_sugg.detach()[th.arange(len(adv)), th.arange(len(adv))], dist_sugg.detach()
    xi_n = th.exp((nbr * (log_sugg - behaviour.unsqueeze(0))).sum(1))
    actual_taken = actual.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    idx = actions.unsqueeze(0).unsqueeze(-1).expand(suggestions.shape[0], -1, -1, 1)
    sugg_for_me = suggestions.gather(-1, idx).squeeze(-1).transpose(0, 1)
    A = adv.unsqueeze(1)
    with th.no_grad():
        in_xij = (log_sugg.exp() / actual_taken.unsqueeze(0) * A >= A).float()
        in_xii = (log_own.exp().unsqueeze(1) / sugg_for_me * A >= A).float()
    gap_ij = ((dist_sugg - actual.unsqueeze(0)) ** 2).sum(-1)
    gap_ii = ((dist_own.unsqueeze(1) - suggestions.transpose(0, 1)) ** 2).sum(-1)
    penalty = kappa[:, None] * rho * (nbr * (in_xij * gap_ij + in_xii * gap_ii)).sum(1)
    surrogate = th.min(ratio * xi_n * adv, ratio.clamp(1 - eps, 1 + eps) * xi_n * adv)
    return [((surrogate - penalty) * mask).sum(-1) / mask.sum(), (surrogate * mask).sum(-1) / mask.sum(),
            (penalty * mask).sum(-1) / mask.sum(), xi_n]


def _policies(n, S, A, seed):
    from types import SimpleNamespace

    from plugins.ss.nets import SSPolicies

    th.manual_seed(seed)
    return SSPolicies(S, SimpleNamespace(n_agents=n, n_actions=A, ss_suggestions=True, ss_actor_hidden=[8, 6]))


def _one_way(n, M):
    nbr = th.zeros(n, n, M)
    nbr[0, 1] = 1.0              # 0 hears 1, 1 does not hear 0 (random-m neighbourhoods)
    nbr[2, 3, :3] = 1.0
    return nbr


@pytest.mark.parametrize("case", ["sparse", "one_way", "dense", "none"])
@pytest.mark.parametrize("old_policy", ["rollout", "iteration"])
def test_row_layout_objective_and_gradients_equal_the_previous_dense_implementation(case, old_policy):
    """The learner's path (plan, rows, links) against the previous implementation on every head
    and sample (dense logits, [N, N, M] masks): the same J_i, its parts and parameter gradients."""
    import torch.nn.functional as F

    n, M, S, A = 4, 7, 5, 3
    g = th.Generator().manual_seed(7)
    policies = _policies(n, S, A, 0)
    state = th.randn(M, S, generator=g)
    off = 1 - th.eye(n).unsqueeze(-1)
    nbr = {"sparse": (th.rand(n, n, M, generator=g) > 0.8).float(), "one_way": _one_way(n, M),
           "dense": (th.rand(n, n, M, generator=g) > 0.2).float(), "none": th.zeros(n, n, M)}[case]
    if case == "sparse":
        nbr = th.maximum(nbr, nbr.transpose(0, 1))  # the env and distance graphs are symmetric
    nbr = nbr * off
    actions = th.randint(A, (n, M), generator=g)
    avail = th.ones(n, M, A)
    avail[1, 2, (actions[1, 2] + 1) % A] = 0.0     # one unavailable action (never the taken one)
    behaviour = th.log(th.rand(n, M, generator=g) * 0.8 + 0.1)
    adv, mask = th.randn(n, M, generator=g) * 2, th.tensor([1.0, 1, 1, 0, 1, 1, 1])
    eps, rho = 0.2, 0.7

    # previous: every head on every sample
    log_pi = F.log_softmax(policies.all_logits(state).masked_fill(avail == 0, -1e10), -1)
    probs, idx = log_pi.exp(), th.arange(n)
    log_all = log_pi.gather(-1, actions.expand(n, n, M).unsqueeze(-1)).squeeze(-1)
    log_own = log_all[idx, idx]
    old_own = behaviour if old_policy == "rollout" else log_own.detach()
    before = _previous_eq16(adv, mask, actions, log_own, old_own, log_all, probs[idx, idx], probs, old_own, nbr, eps, rho)
    grads_before = th.autograd.grad(before[0].sum(), list(policies.parameters()))

    # now: the planned rows
    plan = policies.plan(state, nbr)
    logits = policies.logits(plan).masked_fill(avail.reshape(n * M, A)[plan.target] == 0, -1e10)
    log_pi = F.log_softmax(logits, -1)
    log_taken = log_pi.gather(-1, actions.reshape(-1)[plan.target].unsqueeze(-1)).squeeze(-1)
    log_own = log_taken[plan.links.own].view(n, M)
    old_own = behaviour if old_policy == "rollout" else log_own.detach()
    probs = log_pi.exp()
    terms = eq16(adv, mask, log_own, old_own, log_taken, probs, exchange(probs, log_taken, old_own), plan.links, eps, rho)
    grads_after = th.autograd.grad(terms.objective.sum(), list(policies.parameters()))

    for a, b in zip([terms.objective, terms.surrogate, terms.penalty, terms.xi_n], before):
        assert th.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert case == "none" or terms.penalty.abs().max() > 0
    for a, b in zip(grads_after, grads_before):
        assert th.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_planned_rows_are_the_heads_on_their_samples():
    """Sparse plans evaluate own heads on every sample and pi^{ij} where j in N_i or i in N_j."""
    n, M, S, A = 4, 7, 5, 3
    g = th.Generator().manual_seed(1)
    policies = _policies(n, S, A, 1)
    state = th.randn(M, S, generator=g)
    nbr = _one_way(n, M)
    plan = policies.plan(state, nbr)
    assert plan.groups is not None and plan.sizes[0] == n        # sparse: own heads, then the buckets
    dense = policies.all_logits(state).reshape(-1, A)
    rows = policies.logits(plan)
    links = plan.links
    cells = th.arange(n * n * M).view(n, n, M)
    assert th.allclose(rows[links.own], dense[cells[th.arange(n), th.arange(n)].reshape(-1)], atol=1e-6)
    i, j, m = nbr.nonzero(as_tuple=True)
    assert th.allclose(rows[links.pair], dense[cells[i, j, m]], atol=1e-6)
    E = len(links.at)
    assert th.allclose(rows[links.theirs[E:]], dense[cells[j, i, m]], atol=1e-6)  # pi^{ji}: 1 does not hear 0
    assert th.allclose(rows[links.theirs[:E]], dense[cells[j, j, m]], atol=1e-6)  # pi^{jj}
    assert th.allclose(rows[links.mine], dense[th.cat([cells[i, j, m], cells[i, i, m]])], atol=1e-6)
    assert th.equal(plan.target[links.pair], j * M + m) and th.equal(plan.target[links.own], th.arange(n * M))
    assert len(rows) < n * n * M and sum(plan.sizes) - n == 4    # only pairs (0,1), (1,0), (2,3), (3,2)


def test_a_parameter_gathered_twice_in_one_graph_gets_both_gradients():
    """Two gathers of the same parameters in one graph (e.g. two plans) add up their gradients."""
    net = GroupMLP(5, 3, [4], 2)
    x = th.randn(6, 3)
    index = th.tensor([4, 0, 2])
    a = GroupMLP.apply_layers(x, *net.select(index, [3])[0])
    b = GroupMLP.apply_layers(x, *net.select(index[:2], [1, 1])[1])
    grads = th.autograd.grad((a ** 2).sum() + (b * 3).sum(), list(net.parameters()))
    expected = (net(x, index) ** 2).sum() + (net(x, index[1:2]) * 3).sum()
    for got, want in zip(grads, th.autograd.grad(expected, list(net.parameters()))):
        assert th.allclose(got, want, atol=1e-6)


def test_buckets_minimise_padded_rows_plus_a_cost_per_bucket():
    import itertools

    from plugins.ss.nets import buckets

    def cost(sizes, counts, per_bucket):
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        return sum(size * counts[s] for size, s in zip(sizes, starts)) + per_bucket * len(sizes)

    g = th.Generator().manual_seed(5)
    for P in range(1, 7):
        counts = sorted(th.randint(1, 40, (P,), generator=g).tolist(), reverse=True)
        for per_bucket in (0, 7, 30):
            sizes = buckets(counts, per_bucket)
            assert sum(sizes) == P and all(s > 0 for s in sizes)
            cuts = [c for r in range(P) for c in itertools.combinations(range(1, P), r)]
            brute = min(cost([b - a for a, b in zip((0, *c), (*c, P))], counts, per_bucket) for c in cuts)
            assert cost(sizes, counts, per_bucket) == brute
    assert buckets([], 5) == [] and buckets([9, 9, 9], 1) == [3] and buckets([50, 1], 0) == [1, 1]
