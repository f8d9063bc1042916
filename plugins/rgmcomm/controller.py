"""The message controller: any base MAC (the host's ``maddpg_mac`` or ``basic_mac``, chosen by
``rgm_base_mac``) whose agents also receive the other agents' discrete labels.

Built as a subclass of the base MAC created at run time, so the base's own input building,
action selection, saving and target copies stay the host's. Each agent's input = the base's input
(own observation, last action, id, ...) + for every other agent j, in agent order, the one-hot of
the label j sends it (|M| + 1 slots: label |M| is the reserved null symbol). A sender that does not
send to this receiver (``rgm_receivers``) leaves its slots at zero.

Labels are argmax_m g_j(o_j) of the current generator, recomputed whenever inputs are built (so
training batches see the current generator), or the null label while the generator is off (the
pre-training stage, the public runs' random-exploration phase) if ``rgm_null_label`` is set.
The labels sent at acting time are stored in the episode batch field ``messages``.
"""
from __future__ import annotations

import copy
import inspect
import os

import torch as th
import torch.nn.functional as F

from marlkit import host
from marlkit.errors import SuiteError

from .clustering import MessageGenerator


class Comm:
    """State the controller shares with its target copies and the learner: the generator and
    whether its labels are sent (False -> null label)."""

    def __init__(self, generator, n_labels, senders, null_label):
        self.generator, self.n_labels = generator, n_labels
        n, m = len(senders), n_labels + 1
        # Received one-hots as two lookups (cheaper than advanced indexing): table[label] is the
        # sender's one-hot plus a zero slot (m + 1 columns per sender); cols lists, receiver by
        # receiver, the columns of every other sender's one-hot in agent order, or that sender's
        # zero slot where the receiver does not hear it.
        self.table = th.eye(m, m + 1)
        others = [[j for j in range(n) if j != i] for i in range(n)]
        self.cols = th.tensor([j * (m + 1) + (k if senders[i, j] else m) for i in range(n) for j in others[i]
                               for k in range(m)], dtype=th.long)
        self.null_label = null_label
        self.active = not null_label

    def labels(self, obs):
        """obs [batch, n, d] -> labels [batch, n] (long)."""
        if not self.active:
            return th.full(obs.shape[:-1], self.n_labels, dtype=th.long, device=obs.device)
        return self.generator.labels(obs)

    def received(self, labels):
        """labels [batch, n] -> the receivers' inputs one after the other, [batch, n * (n - 1) * (|M| + 1)]."""
        sent = F.embedding(labels, self.table).flatten(1)  # [batch, n * (|M| + 2)]
        return sent.index_select(1, self.cols)


def message_width(n_agents, n_labels):
    return (n_agents - 1) * (n_labels + 1)


def sender_matrix(n_agents, receivers):
    """[n, n] with entry (i, j) = 1 if agent i receives j's label; ``receivers``: null (everyone
    else) or a list giving, for each sender j, the list of its receivers."""
    if receivers is None:
        return th.ones(n_agents, n_agents) - th.eye(n_agents)
    if len(receivers) != n_agents or not all(isinstance(r, list) for r in receivers):
        raise SuiteError(f"rgm_receivers must list, for each of the {n_agents} agents, the list of agents "
                         f"that receive its label (e.g. [[1], [0]]), got {receivers!r}")
    m = th.zeros(n_agents, n_agents)
    for j, targets in enumerate(receivers):
        for i in targets:
            if not isinstance(i, int) or not 0 <= i < n_agents or i == j:
                raise SuiteError(f"rgm_receivers[{j}] names receiver {i!r}: use ids 0..{n_agents - 1}, not the sender")
            m[i, j] = 1
    return m


class MessageMixin:
    """Adds received labels to a base MAC's inputs; see the module docstring."""

    def __init__(self, scheme, groups, args):
        n, labels = args.n_agents, args.comm_labels
        obs_dim = scheme["obs"]["vshape"]
        if not isinstance(obs_dim, int):
            raise SuiteError("rgmcomm_mac needs vector observations (the env gives images)")
        generator = MessageGenerator(obs_dim, n, labels, args.rgm_gen_hidden, args.rgm_gen_shared)
        self.comm = Comm(generator, labels, sender_matrix(n, args.rgm_receivers), args.rgm_null_label)
        self._width = message_width(n, labels)
        self._acting_labels = None
        super().__init__(scheme, groups, args)
        self._takes_bs = "bs" in inspect.signature(super().select_actions).parameters
        self._fwd_test_mode = "test_mode" in inspect.signature(super().forward).parameters

    def _get_input_shape(self, scheme):
        return super()._get_input_shape(scheme) + self._width

    def _build_inputs(self, batch, t):
        inputs = super()._build_inputs(batch, t)
        labels = self._acting_labels if self._acting_labels is not None else self.comm.labels(batch["obs"][:, t])
        return th.cat([inputs, self.comm.received(labels).view(inputs.shape[0], -1)], -1)

    @th.inference_mode()
    def select_actions(self, ep_batch, t_ep, t_env=0, bs=slice(None), test_mode=False):
        """The base's selection on inputs with the received labels. Acting needs no gradients:
        inference mode makes the base's ops cheaper too (bench/rgmcomm.py); the learner builds
        its own inputs, with the same labels, through forward."""
        labels = self.comm.labels(ep_batch["obs"][:, t_ep])
        self._acting_labels = labels  # one generator pass per step, shared with _build_inputs
        try:
            if self._takes_bs:
                actions, extra = super().select_actions(ep_batch, t_ep, t_env, bs=bs, test_mode=test_mode)
            else:  # e.g. the host's MADDPG controller acts on the whole batch
                actions, extra = super().select_actions(ep_batch, t_ep, t_env, test_mode=test_mode)
                actions = actions[bs]
        finally:
            self._acting_labels = None
        extra = dict(extra or {})
        extra["messages"] = labels[bs].unsqueeze(-1)
        return actions, extra

    def __deepcopy__(self, memo):
        """Target copies share the generator (one set of labels for acting, training and targets)."""
        new = object.__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, value if key == "comm" else copy.deepcopy(value, memo))
        return new

    def save_models(self, path):
        super().save_models(path)
        th.save(self.comm.generator.state_dict(), os.path.join(path, "generator.th"))

    def load_models(self, path):
        super().load_models(path)
        self.comm.generator.load_state_dict(th.load(os.path.join(path, "generator.th"), map_location="cpu"))

    def cuda(self):
        super().cuda()
        self.comm.generator.cuda()
        self.comm.table, self.comm.cols = self.comm.table.cuda(), self.comm.cols.cuda()


_CLASSES: dict = {}


def rgmcomm_mac(scheme, groups, args):
    """The registered controller: MessageMixin over the MAC named by ``rgm_base_mac``."""
    base = host.controllers.get(args.rgm_base_mac)
    if base is None or base is rgmcomm_mac:
        raise SuiteError(f"rgm_base_mac={args.rgm_base_mac!r} is not a base controller; use maddpg_mac or basic_mac")
    if base not in _CLASSES:
        _CLASSES[base] = type(f"RGMComm{base.__name__}", (MessageMixin, base), {})
    return _CLASSES[base](scheme, groups, args)


def batch_fields(args, env_info):
    """The labels each agent sent at each step."""
    return {"messages": {"vshape": (1,), "group": "agents", "dtype": th.long}}
