"""A hand-written backward pass of the built-in ``elman-softmax`` model, in NumPy, for ``derive against``.

    z_t = W_hh h_(t-1) + W_xh x_t + b_h,   h_t = tanh(z_t)
    o_t = W_hy h_t + b_y,                  L = sum_t -log softmax(o_t)[c_t]

Check it with

    derive against elman-softmax examples/against/elman_softmax.py:loss_and_gradients

Calling convention (docs/against.md): ``params`` and ``data`` are dicts of
arrays as derive's generated module takes them (x is (T, F, B), c is (T, B),
h_0 is (H, B)); the function returns the loss and a dict of gradients shaped
like the parameters, with ``h_0`` for dL/dh_0.
"""

import numpy as np


def loss_and_gradients(params, data):
    W_hh, W_xh, b_h = params["W_hh"], params["W_xh"], params["b_h"]
    W_hy, b_y = params["W_hy"], params["b_y"]
    x, c = data["x"], data["c"]
    T, B = x.shape[0], x.shape[2]
    H = W_hh.shape[0]
    h = np.zeros((T + 1, H, B))
    h[0] = data.get("h_0", np.zeros((H, B)))
    p = []
    loss = 0.0
    cols = np.arange(B)
    for t in range(1, T + 1):
        h[t] = np.tanh(W_hh @ h[t - 1] + W_xh @ x[t - 1] + b_h)
        o = W_hy @ h[t] + b_y
        o = o - o.max(axis=0)
        e = np.exp(o)
        y = e / e.sum(axis=0)
        loss -= np.sum(np.log(y[c[t - 1], cols]))
        p.append(y)
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros((H, B))                 # dL/dh_t through h_(t+1)
    for t in range(T, 0, -1):
        do = p[t - 1].copy()
        do[c[t - 1], cols] -= 1.0              # softmax + cross-entropy
        g["W_hy"] += do @ h[t].T
        g["b_y"] += do.sum(axis=1, keepdims=True)
        dh = W_hy.T @ do + dh_next
        dz = dh * (1.0 - h[t] ** 2)            # tanh'
        g["W_hh"] += dz @ h[t - 1].T
        g["W_xh"] += dz @ x[t - 1].T
        g["b_h"] += dz.sum(axis=1, keepdims=True)
        dh_next = W_hh.T @ dz
    g["h_0"] = dh_next
    return loss, g
