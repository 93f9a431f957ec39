"""The softmax + cross-entropy shortcut whatever the softmax's argument: finite gradients and loss when a probability underflows.

``y_t = softmax(W_hy @ h_t + b_y)`` once fell back to the chain through
``dL/dy_t = -1 / y_t[c_t]``, which is infinite when ``y_t[c_t]`` underflows
to 0 and made every gradient NaN.  The derivation now carries
``y_t - onehot(c_t)`` into the softmax's argument, as it does for a named one.
The generated loss reads ``log(y_t[c_t])`` from the argument's log-softmax
where ``y_t[c_t]`` underflows, so the loss is finite too.
"""

from __future__ import annotations

import numpy as np
import pytest

from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import prove
from derive.emit.fast import fast_module_or_readable
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_text
from derive.notation.printer import show

MODEL = """# softmax of an expression
size H = 3, F = 2, O = 4, T = 3
param W_xh : H x F
param W_hh : H x H
param W_hy : O x H
param b_y : O x 1
input x_t : F x 1
target c_t : class O
state h_t : H x 1 = 0
h_t = tanh(W_xh @ x_t + W_hh @ h_{t-1})
y_t = softmax(W_hy @ h_t + b_y)
L = -sum_t log(y_t[c_t])
"""


def _model():
    return load_text(MODEL, "softmax_of_expression.rnn")


def test_the_shortcut_reaches_the_parameters_of_the_softmax_argument_and_is_proved():
    model = _model()
    derivation = derive_matrix(model)
    assert [show(t.expr) for t in derivation.adjoints["b_y"].terms] == ["y_t - onehot(c_t)"]
    assert derivation.adjoints["W_hy"].note.startswith("softmax + cross-entropy")
    assert prove(derivation, seed=0).holds


def _stable_softmax(a):
    e = np.exp(a - a.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_gradients_stay_finite_when_the_probability_of_the_class_underflows(style):
    model = _model()
    derivation = derive_matrix(model)
    source = generate_module(model, derivation) if style == "readable" else fast_module_or_readable(model, derivation)[0]
    module = import_source(source, f"softmax_underflow_{style}")
    rng = np.random.default_rng(0)
    params = {"W_xh": rng.normal(size=(3, 2)), "W_hh": rng.normal(size=(3, 3)) * 0.5,
              "W_hy": rng.normal(size=(4, 3)), "b_y": np.array([[0.0], [800.0], [0.0], [0.0]])}
    data = {"x": rng.normal(size=(3, 2, 1)), "c": np.zeros((3, 1), dtype=int)}  # class 0: exp(-800) is 0.0
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        loss, grads = module.loss_and_gradients(params, data)
        assert module.loss(params, data) == loss
    assert all(np.all(np.isfinite(g)) for g in grads.values()), {k: g for k, g in grads.items()}
    # an independent reference: the stable softmax of the argument, minus the one-hot target, summed over t
    # and the loss from the log-softmax of the argument (finite: y_t[c_t] underflows, its log does not)
    h = np.zeros((3, 1))
    expected_b = np.zeros((4, 1))
    expected_loss = 0.0
    for t in range(3):
        h = np.tanh(params["W_xh"] @ data["x"][t] + params["W_hh"] @ h)
        o = params["W_hy"] @ h + params["b_y"]
        p = _stable_softmax(o)
        expected_b += p - np.eye(4)[:, [0]]
        expected_loss -= (o[0, 0] - o.max()) - np.log(np.exp(o - o.max()).sum())
    np.testing.assert_allclose(grads["b_y"], expected_b, rtol=1e-12, atol=1e-12)
    assert np.isfinite(loss) and loss > 2000
    assert loss == pytest.approx(expected_loss, rel=1e-13)
