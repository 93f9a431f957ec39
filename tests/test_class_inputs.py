"""Inputs that hold class numbers: ``input w_t : class V`` used through ``onehot(w_t)`` or a lookup ``E[:, w_t]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derive import api
from derive.emit.loader import import_source
from derive.errors import InputError
from derive.model.build import load_text
from derive.notation.printer import show

DATA = Path(__file__).parent / "data"


def lossfun(p, inputs, targets, hprev):
    """A character model's loss and gradients written out by hand (one-hot input, softmax, summed log loss)."""
    xs, hs, ps = {}, {-1: hprev}, {}
    loss = 0.0
    for t, (i, c) in enumerate(zip(inputs, targets)):
        xs[t] = np.zeros((p["Wxh"].shape[1], 1))
        xs[t][i] = 1
        hs[t] = np.tanh(p["Wxh"] @ xs[t] + p["Whh"] @ hs[t - 1] + p["bh"])
        ys = p["Why"] @ hs[t] + p["by"]
        ps[t] = np.exp(ys - ys.max()) / np.exp(ys - ys.max()).sum()
        loss -= np.log(ps[t][c, 0])
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dhnext = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = ps[t].copy()
        dy[targets[t]] -= 1
        grads["Why"] += dy @ hs[t].T
        grads["by"] += dy
        dh = p["Why"].T @ dy + dhnext
        dz = (1 - hs[t] ** 2) * dh
        grads["bh"] += dz
        grads["Wxh"] += dz @ xs[t].T
        grads["Whh"] += dz @ hs[t - 1].T
        dhnext = p["Whh"].T @ dz
    return loss, grads, dhnext


def test_the_character_model_verifies_and_matches_a_hand_written_backward_pass():
    path = DATA / "min_char_rnn.rnn"
    result = api.verify_gradients(str(path))
    assert result.passed and result.result == "agree"
    assert result.checks["central"].entries > 0 and result.checks["complex"].entries > 0

    module = import_source(api.generate_code(str(path)).source, "min_char_rnn")
    rng = np.random.default_rng(5)
    sizes = module.DEFAULT_SIZES
    params = {k: rng.normal(size=tuple(sizes.get(d, d) for d in dims)) for k, dims in module.PARAM_SHAPES.items()}
    inputs = rng.integers(0, sizes["V"], size=sizes["T"])
    targets = rng.integers(0, sizes["V"], size=sizes["T"])
    hprev = rng.normal(size=(sizes["H"], 1))
    data = {"inputs": inputs.reshape(-1, 1, 1), "targets": targets.reshape(-1, 1, 1), "hs_0": hprev}
    loss, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
    want_loss, want, want_h0 = lossfun(params, inputs, targets, hprev)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["hs_0"], want_h0, rtol=1e-10, atol=1e-12)


LOOKUP = ("size V = 5, D = 3, H = 4, B = 2, T = 3\nparam E : D x V\nparam W_xh : H x D\nparam W_hh : H x H\n"
          "param W_hy : V x H\ninput w_t : class V x B\ntarget c_t : class V x B\nstate h_t : H x B = 0\n"
          "h_t = tanh(W_xh @ E[:, w_t] + W_hh @ h_{t-1})\ny_t = softmax(W_hy @ h_t)\nL = mean(sum_t -log(y_t[c_t]))\n")
ROW_LOOKUP = ("size V = 5, D = 3, H = 4, B = 2, T = 3\nparam E : V x D\nparam W_xh : D x H\nparam W_hh : H x H\n"
              "param W_hy : H x 1\ninput w_t : class V x B\ntarget y_true : B x 1\nstate h_t : B x H = 0\n"
              "h_t = tanh(E[w_t, :] @ W_xh + h_{t-1} @ W_hh)\ny = h_T @ W_hy\nL = mean((y - y_true)**2)\n")


@pytest.mark.parametrize("text, reading", [(LOOKUP, "E @ onehot(w_t)"), (ROW_LOOKUP, "onehot(w_t).T @ E")])
def test_an_embedding_lookup_is_a_product_with_the_one_hot_columns_and_verifies(tmp_path, text, reading):
    assert reading in show(load_text(text, "lookup.rnn").equation("h_t").expr)
    path = tmp_path / "lookup.rnn"
    path.write_text(text, encoding="utf-8")
    result = api.verify_gradients(str(path))
    assert result.passed and result.checks["central"].entries > 0


@pytest.mark.parametrize("equation, column, words", [
    ("h_t = tanh(W_xh @ E[:, ] + W_hh @ h_{t-1})", 24, "expected an expression"),
    ("h_t = tanh(W_xh @ E[: w_t] + W_hh @ h_{t-1})", 23, "expected ',' after ':'"),
    ("h_t = tanh(W_xh @ E[w_t, 1] + W_hh @ h_{t-1})", 26, "expected ':' after ','"),
    ("h_t = tanh(W_hh @ h_{t-1} + w_t)", 29, "w_t holds class numbers"),
])
def test_a_misread_lookup_or_class_input_is_an_error_at_its_caret(equation, column, words):
    text = LOOKUP.replace("h_t = tanh(W_xh @ E[:, w_t] + W_hh @ h_{t-1})", equation)
    with pytest.raises(InputError) as caught:
        load_text(text, "lookup.rnn")
    assert words in caught.value.message and caught.value.column == column
