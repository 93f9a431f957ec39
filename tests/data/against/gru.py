"""A correct backward pass of the GRU of tests/data/gru.rnn (many-to-one, softmax, mean over the batch).

    u_t = sigmoid(W_u x_t + U_u h_(t-1) + b_u)     r_t = sigmoid(W_r x_t + U_r h_(t-1) + b_r)
    n_t = tanh(W_n x_t + U_n (r_t * h_(t-1)) + b_n) h_t = (1 - u_t) * n_t + u_t * h_(t-1)
    y = softmax(W_y h_T + b_y)                     L = -sum(log(y[c])) / B

The base of the corpus's GRU slips (tests/data/against/corpus.txt).
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def loss_and_gradients(params, data):
    P = params
    x, c = data["x"], data["c"]
    T, B = x.shape[0], x.shape[2]
    H = P["U_u"].shape[0]
    h = np.zeros((T + 1, H, B))
    h[0] = data.get("h_0", np.zeros((H, B)))
    u, r, n = {}, {}, {}
    for t in range(1, T + 1):
        u[t] = sigmoid(P["W_u"] @ x[t - 1] + P["U_u"] @ h[t - 1] + P["b_u"])
        r[t] = sigmoid(P["W_r"] @ x[t - 1] + P["U_r"] @ h[t - 1] + P["b_r"])
        n[t] = np.tanh(P["W_n"] @ x[t - 1] + P["U_n"] @ (r[t] * h[t - 1]) + P["b_n"])
        h[t] = (1 - u[t]) * n[t] + u[t] * h[t - 1]
    o = P["W_y"] @ h[T] + P["b_y"]
    e = np.exp(o - o.max(axis=0))
    y = e / e.sum(axis=0)
    cols = np.arange(B)
    loss = -np.sum(np.log(y[c, cols])) / B
    do = y.copy()
    do[c, cols] -= 1.0
    do /= B
    g = {k: np.zeros_like(v) for k, v in P.items()}
    g["W_y"] = do @ h[T].T
    g["b_y"] = do.sum(axis=1, keepdims=True)
    dh = P["W_y"].T @ do
    for t in range(T, 0, -1):
        dn = dh * (1 - u[t])
        du = dh * (h[t - 1] - n[t])
        dh_prev = dh * u[t]
        dan = dn * (1 - n[t] ** 2)
        g["W_n"] += dan @ x[t - 1].T
        g["U_n"] += dan @ (r[t] * h[t - 1]).T
        g["b_n"] += dan.sum(axis=1, keepdims=True)
        drh = P["U_n"].T @ dan
        dr = drh * h[t - 1]
        dh_prev += drh * r[t]
        dar = dr * r[t] * (1 - r[t])
        dau = du * u[t] * (1 - u[t])
        g["W_r"] += dar @ x[t - 1].T
        g["U_r"] += dar @ h[t - 1].T
        g["b_r"] += dar.sum(axis=1, keepdims=True)
        g["W_u"] += dau @ x[t - 1].T
        g["U_u"] += dau @ h[t - 1].T
        g["b_u"] += dau.sum(axis=1, keepdims=True)
        dh_prev += P["U_r"].T @ dar + P["U_u"].T @ dau
        dh = dh_prev
    g["h_0"] = dh
    return loss, g
