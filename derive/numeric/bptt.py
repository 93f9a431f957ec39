"""Hand-written backpropagation through time for the two built-in models.

This is the independent NumPy reference: written from the hand notes in
``seeds/``, not from the symbolic derivation. Both models share the Elman
recurrence (batch examples are columns, ``h_0 = 0`` unless ``data["h_0"]``)::

    z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h
    h_t = tanh(z_t)

``elman-softmax`` (seed 002) reads out every step::

    o_t = W_hy @ h_t + b_y,   y_t = softmax(o_t),   L = sum_t sum_cols -log(y_t[c_t])

``elman-regression`` (seeds 000, 001) reads out the last step only::

    y = W_hy @ h_T + b_y,     L = sum((y - y_true)**2) / 2

The backward pass is the one of the notes with the recurrent term added::

    dL/dh_t  = (direct term from the output at t) + W_hh.T @ dL/dz_{t+1}
    dL/dz_t  = dL/dh_t * (1 - h_t**2)
    dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T
    dL/dW_xh = sum_t dL/dz_t @ x_t.T
    dL/db_h  = sum_t (row sums of dL/dz_t over the batch columns)

Stored arrays are indexed from zero: ``hs[t]`` is ``h_t`` for ``t = 0..T``
and ``x[t - 1]`` is ``x_t``. Everything works unchanged on complex input
(complex-step checks): the forward pass compares only real parts.
"""

from __future__ import annotations

import numpy as np

from .shapes import class_indices, elman_sizes, require_shape

# --------------------------------------------------------------------------
# Shared recurrence


def _initial_state(params: dict, data: dict, H: int, B: int) -> np.ndarray:
    """``h_0``: ``data["h_0"]`` when given, zeros otherwise."""
    h_0 = data.get("h_0")
    if h_0 is not None:
        return np.asarray(h_0)
    dtype = np.result_type(*params.values(), data["x"], 1.0)
    return np.zeros((H, B), dtype=dtype)


def _forward_states(params: dict, x: np.ndarray, h_0: np.ndarray) -> np.ndarray:
    """Run the recurrence; return ``hs`` of shape ``(T + 1, H, B)``, ``hs[t] = h_t``."""
    W_hh, W_xh, b_h = params["W_hh"], params["W_xh"], params["b_h"]
    T = x.shape[0]
    dtype = np.result_type(W_hh, W_xh, b_h, x, h_0, 1.0)
    hs = np.empty((T + 1,) + h_0.shape, dtype=dtype)
    hs[0] = h_0
    for t in range(1, T + 1):
        z_t = W_hh @ hs[t - 1] + W_xh @ x[t - 1] + b_h
        hs[t] = np.tanh(z_t)
    return hs


def _backward_states(
    params: dict, x: np.ndarray, hs: np.ndarray, dh_out: np.ndarray
) -> dict[str, np.ndarray]:
    """BPTT through the recurrence.

    ``dh_out[t - 1]`` is the direct gradient ``dL/dh_t`` from the output
    layer at step ``t`` (zero where the step has no output). Returns the
    gradients of ``W_hh``, ``W_xh`` and ``b_h``, and of the initial state
    as ``h_0``: only step 1 reads it, so ``dL/dh_0 = W_hh.T @ dL/dz_1``.
    """
    W_hh = params["W_hh"]
    T = x.shape[0]
    dW_hh = np.zeros(np.shape(W_hh), dtype=hs.dtype)
    dW_xh = np.zeros(np.shape(params["W_xh"]), dtype=hs.dtype)
    db_h = np.zeros(np.shape(params["b_h"]), dtype=hs.dtype)
    dz_next = np.zeros_like(hs[0])  # dL/dz_{T+1} = 0: nothing after the last step
    for t in range(T, 0, -1):
        dh_t = dh_out[t - 1] + W_hh.T @ dz_next
        dz_t = dh_t * (1 - hs[t] ** 2)
        dW_hh += dz_t @ hs[t - 1].T
        dW_xh += dz_t @ x[t - 1].T
        db_h += dz_t.sum(axis=1, keepdims=True)
        dz_next = dz_t
    return {"W_hh": dW_hh, "W_xh": dW_xh, "b_h": db_h, "h_0": W_hh.T @ dz_next}


# --------------------------------------------------------------------------
# elman-softmax (seed 002)


def _log_softmax(o: np.ndarray) -> np.ndarray:
    """Column-wise log-softmax of ``o`` with shape ``(..., O, B)``.

    Stabilised by the real part of the column maximum, which is a constant
    shift and so leaves the (complex-analytic) function unchanged.
    """
    shifted = o - o.real.max(axis=-2, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-2, keepdims=True))


def _softmax_forward(params: dict, data: dict):
    """Forward pass of elman-softmax: ``(loss, hs, log_y, c)``."""
    n = elman_sizes(params, data)
    if "c" not in data:
        raise ValueError("data has no entry 'c'")
    c = class_indices(data["c"], n["T"], n["B"], n["O"])
    x = np.asarray(data["x"])
    hs = _forward_states(params, x, _initial_state(params, data, n["H"], n["B"]))
    o = params["W_hy"] @ hs[1:] + params["b_y"]          # (T, O, B), o_t = W_hy @ h_t + b_y
    log_y = _log_softmax(o)                               # log y_t
    steps, cols = np.indices(c.shape)
    loss = -log_y[steps, c, cols].sum()                   # sum_t sum_cols -log(y_t[c_t])
    return loss, hs, log_y, c


def elman_softmax_loss(params: dict, data: dict):
    """Loss of ``elman-softmax`` (many-to-many, softmax + cross-entropy).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        ``W_hh (H, H)``, ``W_xh (H, F)``, ``b_h (H, 1)``, ``W_hy (O, H)``,
        ``b_y (O, 1)``. May be complex.
    data : dict of str to numpy.ndarray
        ``x (T, F, B)``, integer classes ``c (T, B)`` (``(T,)`` or ``(T, 1)``
        for one column), optional ``h_0 (H, B)``.

    Returns
    -------
    numpy scalar
        ``L = sum_t sum_cols -log(softmax(o_t)[c_t])``; complex when the
        inputs are (the imaginary part is kept).

    Raises
    ------
    ValueError
        On a missing array or inconsistent shapes.
    """
    return _softmax_forward(params, data)[0]


def elman_softmax_loss_and_gradients(params: dict, data: dict):
    """Loss and BPTT gradients of ``elman-softmax``.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        As for :func:`elman_softmax_loss`.
    data : dict of str to numpy.ndarray
        As for :func:`elman_softmax_loss`.

    Returns
    -------
    loss : numpy scalar
        As :func:`elman_softmax_loss`.
    grads : dict of str to numpy.ndarray
        ``dL/dparam`` for every parameter, shaped like it, and ``dL/dh_0``
        as ``h_0``.

    Notes
    -----
    Per step, ``dL/do_t = y_t - onehot(c_t)`` (seed 002), so
    ``dL/dW_hy = sum_t dL/do_t @ h_t.T``, ``dL/db_y`` is the row sum of
    ``dL/do_t`` over steps and columns, and the direct term into the
    recurrence is ``W_hy.T @ dL/do_t``.
    """
    loss, hs, log_y, c = _softmax_forward(params, data)
    x = np.asarray(data["x"])
    steps, cols = np.indices(c.shape)

    do = np.exp(log_y)                                    # y_t ...
    do[steps, c, cols] -= 1                               # ... - onehot(c_t)
    h = hs[1:]
    grads = {
        "W_hy": (do @ h.swapaxes(1, 2)).sum(axis=0),      # sum_t dL/do_t @ h_t.T
        "b_y": do.sum(axis=(0, 2))[:, None],              # row sums over steps and columns
    }
    dh_out = params["W_hy"].T @ do                        # direct dL/dh_t, (T, H, B)
    grads.update(_backward_states(params, x, hs, dh_out))
    return loss, _in_param_order(params, grads)


# --------------------------------------------------------------------------
# elman-regression (seeds 000, 001)


def _regression_forward(params: dict, data: dict):
    """Forward pass of elman-regression: ``(loss, hs, y - y_true)``."""
    n = elman_sizes(params, data)
    if "y_true" not in data:
        raise ValueError("data has no entry 'y_true'")
    y_true = np.asarray(data["y_true"])
    require_shape("y_true", y_true, (n["O"], n["B"]))
    x = np.asarray(data["x"])
    hs = _forward_states(params, x, _initial_state(params, data, n["H"], n["B"]))
    y = params["W_hy"] @ hs[-1] + params["b_y"]          # y = W_hy @ h_T + b_y
    residual = y - y_true
    loss = (residual**2).sum() / 2
    return loss, hs, residual


def elman_regression_loss(params: dict, data: dict):
    """Loss of ``elman-regression`` (many-to-one, linear output, squared error).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        ``W_hh (H, H)``, ``W_xh (H, F)``, ``b_h (H, 1)``, ``W_hy (O, H)``,
        ``b_y (O, 1)``. May be complex.
    data : dict of str to numpy.ndarray
        ``x (T, F, B)``, ``y_true (O, B)``, optional ``h_0 (H, B)``.

    Returns
    -------
    numpy scalar
        ``L = sum((W_hy @ h_T + b_y - y_true)**2) / 2``; complex when the
        inputs are.

    Raises
    ------
    ValueError
        On a missing array or inconsistent shapes.
    """
    return _regression_forward(params, data)[0]


def elman_regression_loss_and_gradients(params: dict, data: dict):
    """Loss and BPTT gradients of ``elman-regression``.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        As for :func:`elman_regression_loss`.
    data : dict of str to numpy.ndarray
        As for :func:`elman_regression_loss`.

    Returns
    -------
    loss : numpy scalar
        As :func:`elman_regression_loss`.
    grads : dict of str to numpy.ndarray
        ``dL/dparam`` for every parameter, shaped like it, and ``dL/dh_0``
        as ``h_0``.

    Notes
    -----
    ``dL/dy = y - y_true`` (O, B); ``dL/dW_hy = dL/dy @ h_T.T`` (the matmul
    over the batch sums the examples, seed 000); ``dL/db_y`` is the row sum
    of ``dL/dy``; only ``h_T`` receives a direct term, ``W_hy.T @ dL/dy``,
    and earlier states get their gradient through ``W_hh.T @ dL/dz_{t+1}``.
    """
    loss, hs, dy = _regression_forward(params, data)
    x = np.asarray(data["x"])
    grads = {
        "W_hy": dy @ hs[-1].T,
        "b_y": dy.sum(axis=1, keepdims=True),
    }
    dh_out = np.zeros_like(hs[1:])                        # no output before step T
    dh_out[-1] = params["W_hy"].T @ dy
    grads.update(_backward_states(params, x, hs, dh_out))
    return loss, _in_param_order(params, grads)


def _in_param_order(params: dict, grads: dict) -> dict:
    """``grads`` re-keyed in the order of ``params``, then ``h_0``."""
    out = {name: grads[name] for name in params if name in grads}
    out["h_0"] = grads["h_0"]
    return out


HAND_BPTT = {
    "elman-softmax": elman_softmax_loss_and_gradients,
    "elman-regression": elman_regression_loss_and_gradients,
}
"""Built-in model name -> hand-written ``loss_and_gradients(params, data)``."""

HAND_LOSS = {
    "elman-softmax": elman_softmax_loss,
    "elman-regression": elman_regression_loss,
}
"""Built-in model name -> forward-only ``loss(params, data)``."""
