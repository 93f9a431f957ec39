"""The benchmark models written by hand in JAX (CPU, float64, ``jax.jit`` of ``jax.value_and_grad``).

The recurrence is a ``lax.scan`` over the steps, as a JAX user would write it;
parameters and data are put on the device once, and every call waits for the
result (``block_until_ready``) and converts the gradients to NumPy arrays, as
a caller comparing them would.
"""

from __future__ import annotations

import numpy as np


def jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def jax_version() -> str:
    """``jax X (jaxlib Y, backend)`` or ``jax not installed``."""
    try:
        import jax
        import jaxlib
    except ImportError:
        return "jax not installed"
    return f"jax {jax.__version__} (jaxlib {jaxlib.__version__}, {jax.default_backend()})"


class JaxElman:
    """Elman RNN in JAX with the same equations as the built-in models (see ``bench.torch_models.TorchElman``).

    ``z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h``, ``h_t = tanh(z_t)``, then
    either the regression head on ``h_T`` or the per-step softmax head with
    the cross-entropy of the class ``c_t`` summed over steps and columns.
    """

    def __init__(self, kind: str, params, data):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from jax import lax

        self.kind = kind
        self.names = list(params)
        self.params = {k: jax.device_put(jnp.asarray(np.asarray(v, dtype=np.float64))) for k, v in params.items()}
        x = jnp.asarray(np.asarray(data["x"], dtype=np.float64))
        T, _, B = x.shape
        if kind == "regression":
            target = jnp.asarray(np.asarray(data["y_true"], dtype=np.float64))
        else:
            target = jnp.asarray(np.asarray(data["c"]).reshape(T, B).astype(np.int64))
        self.x, self.target = jax.device_put(x), jax.device_put(target)

        def loss(p, x, target):
            h0 = jnp.zeros((p["W_hh"].shape[0], x.shape[2]), dtype=x.dtype)
            inputs = jnp.einsum("hf,tfb->thb", p["W_xh"], x) + p["b_h"]

            if kind == "regression":
                def step(h, u):
                    h = jnp.tanh(p["W_hh"] @ h + u)
                    return h, None
                h_T, _ = lax.scan(step, h0, inputs)
                y = p["W_hy"] @ h_T + p["b_y"]
                return jnp.sum((y - target) ** 2) / 2

            def step(h, u):
                h = jnp.tanh(p["W_hh"] @ h + u)
                return h, h
            _, hs = lax.scan(step, h0, inputs)                  # (T, H, B)
            o = jnp.einsum("oh,thb->tob", p["W_hy"], hs) + p["b_y"]
            log_y = jax.nn.log_softmax(o, axis=1)
            picked = jnp.take_along_axis(log_y, target[:, None, :], axis=1)
            return -jnp.sum(picked)

        self._loss = jax.jit(loss)
        self._grad = jax.jit(jax.value_and_grad(loss))

    def forward(self) -> float:
        return float(self._loss(self.params, self.x, self.target).block_until_ready())

    def loss_and_gradients(self):
        value, grads = self._grad(self.params, self.x, self.target)
        value.block_until_ready()
        return float(value), {k: np.asarray(grads[k]) for k in self.names}
