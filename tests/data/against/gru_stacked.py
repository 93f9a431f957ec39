"""A correct GRU backward pass (tests/data/gru.rnn) with the gates' matrices stacked by rows, as many
libraries store them.

W is [W_u; W_r; W_n] (3H x F), U is [U_u; U_r; U_n] (3H x H), b is [b_u; b_r; b_n]; read through gru_stacked.map.
"""

import numpy as np


def loss_and_gradients(params, data):
    W, U, b, W_y, b_y = params["W"], params["U"], params["b"], params["W_y"], params["b_y"]
    x, c = data["x"], data["c"]
    H = U.shape[1]
    T, B = x.shape[0], x.shape[2]
    h = [data["h_0"]]
    cache = []
    for t in range(T):
        ax = W @ x[t] + b
        au = ax[:H] + U[:H] @ h[-1]
        ar = ax[H:2 * H] + U[H:2 * H] @ h[-1]
        u, r = 1 / (1 + np.exp(-au)), 1 / (1 + np.exp(-ar))
        n = np.tanh(ax[2 * H:] + U[2 * H:] @ (r * h[-1]))
        cache.append((u, r, n))
        h.append((1 - u) * n + u * h[-1])
    o = W_y @ h[-1] + b_y
    p = np.exp(o - o.max(axis=0))
    p /= p.sum(axis=0)
    cols = np.arange(B)
    loss = -np.mean(np.log(p[c, cols]))
    p[c, cols] -= 1
    do = p / B
    g = {"W": np.zeros_like(W), "U": np.zeros_like(U), "b": np.zeros_like(b),
         "W_y": do @ h[-1].T, "b_y": do.sum(axis=1, keepdims=True)}
    dh = W_y.T @ do
    for t in range(T - 1, -1, -1):
        u, r, n, hp = *cache[t], h[t]
        da_n = dh * (1 - u) * (1 - n ** 2)
        d_rh = U[2 * H:].T @ da_n
        da_r = d_rh * hp * r * (1 - r)
        da_u = dh * (hp - n) * u * (1 - u)
        da = np.vstack([da_u, da_r, da_n])
        g["W"] += da @ x[t].T
        g["b"] += da.sum(axis=1, keepdims=True)
        g["U"][:2 * H] += np.vstack([da_u, da_r]) @ hp.T
        g["U"][2 * H:] += da_n @ (r * hp).T
        dh = dh * u + d_rh * r + U[:H].T @ da_u + U[H:2 * H].T @ da_r
    g["h_0"] = dh
    return loss, g
