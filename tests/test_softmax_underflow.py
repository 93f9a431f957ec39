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


ROW_MODEL = """# row-major: a batch in rows, softmax(.., rows), the class of each row picked
size N = 2, D = 3, H = 4, V = 5, T = 3
param Wx : D x H
param Wh : H x H
param W_vocab : H x V
param b_vocab : 1 x V
input x_t : N x D
target y_t : class V x N
state h_t : N x H = 0
h_t = tanh(x_t @ Wx + h_{t-1} @ Wh)
probs_t = softmax(h_t @ W_vocab + b_vocab, rows)
L = sum_t -sum(log(probs_t[y_t, rows])) / N
"""


def test_the_row_softmax_shortcut_forms_no_division_by_a_probability():
    model = load_text(ROW_MODEL, "row_softmax.rnn")
    derivation = derive_matrix(model)
    assert derivation.adjoints["b_vocab"].note.startswith("softmax + cross-entropy")
    terms = [show(t.expr) for name in ("b_vocab", "W_vocab", "h_t") for t in derivation.adjoints[name].terms]
    assert all("/ probs" not in text and "probs_t[" not in text for text in terms), terms
    assert [show(t.expr) for t in derivation.adjoints["b_vocab"].terms] == [
        "colsum(-(1 / N * (onehot(y_t).T - probs_t)))"]
    assert prove(derivation, seed=0).holds


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_row_softmax_gradients_and_loss_stay_finite_when_a_probability_underflows(style):
    model = load_text(ROW_MODEL, "row_softmax.rnn")
    derivation = derive_matrix(model)
    source = generate_module(model, derivation) if style == "readable" else fast_module_or_readable(model, derivation)[0]
    assert ("_log_pick_s(" if style == "fast" else "_log_pick(") in source
    module = import_source(source, f"row_softmax_underflow_{style}")
    rng = np.random.default_rng(1)
    params = {"Wx": rng.normal(size=(3, 4)), "Wh": rng.normal(size=(4, 4)) * 0.5,
              "W_vocab": rng.normal(size=(4, 5)), "b_vocab": np.array([[0.0, 800.0, 0.0, 0.0, 0.0]])}
    data = {"x": rng.normal(size=(3, 2, 3)), "y": np.zeros((3, 2), dtype=int)}  # class 0: exp(-800) is 0.0
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        loss, grads = module.loss_and_gradients(params, data)
        assert module.loss(params, data) == loss
    assert all(np.all(np.isfinite(g)) for g in grads.values()), grads
    # independent: each row's stable softmax minus its one-hot class, averaged over the rows, summed over t
    h = np.zeros((2, 4))
    expected_b, expected_loss = np.zeros((1, 5)), 0.0
    for t in range(3):
        h = np.tanh(data["x"][t] @ params["Wx"] + h @ params["Wh"])
        s = h @ params["W_vocab"] + params["b_vocab"]
        shifted = s - s.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        expected_b += (np.exp(log_p) - np.eye(5)[[0, 0]]).sum(axis=0, keepdims=True) / 2
        expected_loss -= log_p[:, 0].sum() / 2
    np.testing.assert_allclose(grads["b_vocab"], expected_b, rtol=1e-12, atol=1e-12)
    assert np.isfinite(loss) and loss > 1000
    assert loss == pytest.approx(expected_loss, rel=1e-13)
