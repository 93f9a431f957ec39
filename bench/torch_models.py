"""The benchmark models written by hand in PyTorch (CPU, float64, autograd)."""

from __future__ import annotations

import numpy as np


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class TorchElman:
    """Elman RNN in PyTorch with the same equations as the built-in models.

    ``z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h``, ``h_t = tanh(z_t)``, then
    either the regression head (``y = W_hy @ h_T + b_y``,
    ``L = sum((y - y_true)**2) / 2``) or the per-step softmax head
    (``L = sum_t sum_cols -log softmax(W_hy @ h_t + b_y)[c_t]``).
    """

    def __init__(self, kind: str, params, data):
        import torch
        self.torch = torch
        self.kind = kind
        self.params = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
                       for k, v in params.items()}
        self.x = torch.tensor(np.asarray(data["x"], dtype=np.float64))
        if kind == "regression":
            self.y_true = torch.tensor(np.asarray(data["y_true"], dtype=np.float64))
        else:
            c = np.asarray(data["c"]).reshape(self.x.shape[0], -1)
            self.c = torch.tensor(c, dtype=torch.int64)

    def loss(self):
        torch = self.torch
        p = self.params
        T, _, B = self.x.shape
        h = torch.zeros(p["W_hh"].shape[0], B, dtype=torch.float64)
        total = 0.0
        for t in range(T):
            h = torch.tanh(p["W_hh"] @ h + p["W_xh"] @ self.x[t] + p["b_h"])
            if self.kind != "regression":
                o = p["W_hy"] @ h + p["b_y"]
                log_y = torch.log_softmax(o, dim=0)
                total = total - log_y.gather(0, self.c[t].view(1, -1)).sum()
        if self.kind == "regression":
            y = p["W_hy"] @ h + p["b_y"]
            return ((y - self.y_true) ** 2).sum() / 2
        return total

    def forward(self):
        with self.torch.no_grad():
            return self.loss().item()

    def loss_and_gradients(self):
        for v in self.params.values():
            v.grad = None
        loss = self.loss()
        loss.backward()
        return loss.item(), {k: v.grad.numpy() for k, v in self.params.items()}
