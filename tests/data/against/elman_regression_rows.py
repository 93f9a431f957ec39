"""A correct elman-regression backward pass written row-major (a row per example), with its own names.

Read through rows.map (``layout row-major``) or, with ``batch_first=True`` data, through batch_first.map.
    h_t = tanh(h_(t-1) Whh + x_t Wxh + bh),  y = h_T Why + by,  L = sum((y - Y)**2) / 2
"""

import numpy as np


def _run(params, X, Y, h0):
    Whh, Wxh, bh, Why, by = (params[k] for k in ("Whh", "Wxh", "bh", "Why", "by"))
    T = X.shape[0]
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(hs[-1] @ Whh + X[t] @ Wxh + bh))
    y = hs[-1] @ Why + by
    dy = y - Y
    g = {"Why": hs[-1].T @ dy, "by": dy.sum(axis=0, keepdims=True),
         "Whh": np.zeros_like(Whh), "Wxh": np.zeros_like(Wxh), "bh": np.zeros_like(bh)}
    dh = dy @ Why.T
    for t in range(T, 0, -1):
        dz = dh * (1.0 - hs[t] ** 2)
        g["Whh"] += hs[t - 1].T @ dz
        g["Wxh"] += X[t - 1].T @ dz
        g["bh"] += dz.sum(axis=0, keepdims=True)
        dh = dz @ Whh.T
    g["h0"] = dh
    return np.sum(dy ** 2) / 2, g


def loss_and_gradients(params, data):
    """Row-major data: X is (T, B, F)."""
    return _run(params, data["X"], data["Y"], data["h0"])


def loss_and_gradients_batch_first(params, data):
    """Batch-first data: X is (B, T, F)."""
    return _run(params, np.swapaxes(data["X"], 0, 1), data["Y"], data["h0"])
