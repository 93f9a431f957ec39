"""A correct backward pass of the built-in ``elman-regression`` model (many-to-one, batch in columns).

    z_t = W_hh h_(t-1) + W_xh x_t + b_h,  h_t = tanh(z_t),  y = W_hy h_T + b_y,  L = sum((y - y_true)**2) / 2

The base of the corpus's regression slips (tests/data/against/corpus.txt).
"""

import numpy as np


def loss_and_gradients(params, data):
    W_hh, W_xh, b_h = params["W_hh"], params["W_xh"], params["b_h"]
    W_hy, b_y = params["W_hy"], params["b_y"]
    x, y_true = data["x"], data["y_true"]
    T, B = x.shape[0], x.shape[2]
    H = W_hh.shape[0]
    h = np.zeros((T + 1, H, B))
    h[0] = data.get("h_0", np.zeros((H, B)))
    for t in range(1, T + 1):
        h[t] = np.tanh(W_hh @ h[t - 1] + W_xh @ x[t - 1] + b_h)
    y = W_hy @ h[T] + b_y
    loss = np.sum((y - y_true) ** 2) / 2
    dy = y - y_true
    g = {"W_hy": dy @ h[T].T, "b_y": dy.sum(axis=1, keepdims=True)}
    g["W_hh"], g["W_xh"], g["b_h"] = np.zeros_like(W_hh), np.zeros_like(W_xh), np.zeros_like(b_h)
    dh = W_hy.T @ dy
    for t in range(T, 0, -1):
        dz = dh * (1.0 - h[t] ** 2)
        g["W_hh"] += dz @ h[t - 1].T
        g["W_xh"] += dz @ x[t - 1].T
        g["b_h"] += dz.sum(axis=1, keepdims=True)
        dh = W_hh.T @ dz
    g["h_0"] = dh
    return loss, g
