"""Grid moves shared by the grid tasks: 0 stay, 1 up, 2 down, 3 left, 4 right."""
from __future__ import annotations

import numpy as np

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)


def random_cells(rng, n_envs, k, cells):
    """k distinct cells per env drawn from ``cells`` [m, 2] -> [n_envs, k, 2]."""
    idx = np.argsort(rng.random((n_envs, len(cells))), axis=1)[:, :k]
    return cells[idx]


def move_blocked(rng, pos, actions, active, shape, free=None):
    """Move agents one by one in a random order; a move off the grid, into a blocked cell
    (``free`` False) or into a cell held by another agent fails (the agent stays).
    pos [n_envs, n, 2] int, actions [n_envs, n] -> new positions."""
    n_envs, n = actions.shape
    pos = pos.copy()
    order = np.argsort(rng.random((n_envs, n)), axis=1)
    envs = np.arange(n_envs)
    for k in range(n):
        i = order[:, k]
        target = pos[envs, i] + MOVES[actions[envs, i]]
        ok = ((target >= 0) & (target < np.array(shape))).all(-1) & active
        target = np.where(ok[:, None], target, pos[envs, i])
        if free is not None:
            ok &= free[envs, np.clip(target[:, 0], 0, shape[0] - 1), np.clip(target[:, 1], 0, shape[1] - 1)]
        taken = (pos == target[:, None, :]).all(-1)
        taken[envs, i] = False
        ok &= ~taken.any(1)
        pos[envs, i] = np.where(ok[:, None], target, pos[envs, i])
    return pos
