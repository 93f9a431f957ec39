"""Public reference models written in their own names and layouts (tests/data), and the row-wise softmax.

- ``cs231n_rnn.rnn``: CS231n's vanilla RNN captioning core, row-major (a minibatch in rows), with
  ``softmax(scores_t, rows)`` and the class pick per row ``probs_t[y_t, rows]``;
- ``britz_rnnlm.rnn``: Denny Britz's RNNLM (one word a step, column vectors, ``U[:, x_t]``);
- ``min_char_rnn.rnn``: Karpathy's character model.

Each is verified numerically (complex step, central differences, the exact derivation), proved by
``derive show``'s proof at the default sizes, and, for the row-major one, compared with an
independent row-major backward pass written out below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derive import api
from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import prove
from derive.cli import main
from derive.emit.loader import import_source
from derive.model.build import load_model, load_text
from derive.notation.expr import Binary, Pick, walk
from derive.notation.printer import show

DATA = Path(__file__).parent / "data"
MODELS = ["cs231n_rnn", "britz_rnnlm", "min_char_rnn"]


@pytest.mark.parametrize("name", MODELS)
def test_the_reference_model_verifies(name):
    result = api.verify_gradients(str(DATA / f"{name}.rnn"))
    assert result.passed and result.result == "agree", result.text
    for check in ("complex", "central", "exact"):
        assert result.checks[check].verdict == "agrees" and result.checks[check].entries > 0


def test_cs231n_verify_covers_the_gradient_of_the_input():
    result = api.verify_gradients(str(DATA / "cs231n_rnn.rnn"))
    checked = {row.parameter for row in result.rows if row.entries > 0 and row.passed}
    assert {"Wx", "Wh", "b", "W_vocab", "b_vocab"} <= checked
    assert any(p.startswith("x") for p in checked), checked


@pytest.mark.parametrize("name", MODELS)
def test_the_reference_model_is_proved_at_the_default_sizes(name):
    derivation = derive_matrix(load_model(str(DATA / f"{name}.rnn")))
    proof = prove(derivation, seed=0)
    assert proof.holds
    # the softmax + cross-entropy shortcut applies: no 1/p in the chain that reaches the parameters
    fused = [a for a in derivation.adjoints.values() if a.note.startswith("softmax + cross-entropy")]
    assert fused
    for adjoint in fused:
        for term in adjoint.terms:
            assert not any(isinstance(n, Binary) and n.op == "/" and any(isinstance(m, Pick) for m in walk(n.b))
                           for n in walk(term.expr)), show(term.expr)


def _row_major_reference(p, x, y, h0):
    """CS231n's layout written out by hand: h (N, H) rows, row-wise softmax, loss averaged over N, summed over t."""
    steps, n = x.shape[0], x.shape[1]
    hs, probs, loss = [h0], [], 0.0
    for t in range(steps):
        hs.append(np.tanh(x[t] @ p["Wx"] + hs[-1] @ p["Wh"] + p["b"]))
        s = hs[-1] @ p["W_vocab"] + p["b_vocab"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
        loss -= np.log(probs[-1][np.arange(n), y[t]]).sum() / n
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dx, dnext = np.zeros_like(x), np.zeros_like(h0)
    for t in reversed(range(steps)):
        ds = probs[t].copy()
        ds[np.arange(n), y[t]] -= 1
        ds /= n
        g["W_vocab"] += hs[t + 1].T @ ds
        g["b_vocab"] += ds.sum(axis=0, keepdims=True)
        dz = (ds @ p["W_vocab"].T + dnext) * (1 - hs[t + 1] ** 2)
        g["Wx"] += x[t].T @ dz
        g["Wh"] += hs[t].T @ dz
        g["b"] += dz.sum(axis=0, keepdims=True)
        dx[t] = dz @ p["Wx"].T
        dnext = dz @ p["Wh"].T
    return loss, g, dx, dnext


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_cs231n_gradients_match_a_row_major_backward_pass(style):
    code = api.generate_code(str(DATA / "cs231n_rnn.rnn"), style=style)
    module = import_source(code.source, f"cs231n_rnn_{style}")
    rng = np.random.default_rng(3)
    n, steps, d, h, v = 3, 5, 4, 6, 7
    p = {"Wx": rng.normal(size=(d, h)), "Wh": rng.normal(size=(h, h)) * 0.5, "b": rng.normal(size=(1, h)),
         "W_vocab": rng.normal(size=(h, v)), "b_vocab": rng.normal(size=(1, v))}
    x, y, h0 = rng.normal(size=(steps, n, d)), rng.integers(0, v, size=(steps, n)), rng.normal(size=(n, h))
    loss, grads = module.loss_and_gradients(p, {"x": x, "y": y, "h_0": h0}, wrt_initial_state=True, wrt_inputs=True)
    expected_loss, expected, dx, dh0 = _row_major_reference(p, x, y, h0)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for k in p:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["h_0"], dh0, rtol=1e-10, atol=1e-12)
    gx = grads["x"][-steps:]
    np.testing.assert_allclose(gx, dx, rtol=1e-10, atol=1e-12)


ROW_MODEL = """size N = 2, V = 3, T = 2
param W : 1 x V
input s_t : N x V
target y_t : class V x N
p_t = softmax(s_t * W, rows)
L = sum_t -sum(log(p_t[y_t, rows]))
"""


def test_row_softmax_is_the_transposed_column_softmax_and_prints_back():
    model = load_text(ROW_MODEL, "row.rnn")
    eq = model.equation("p_t")
    assert show(eq.expr) == "softmax(s_t * W, rows)"
    assert model.shape(eq.expr) == ("N", "V")
    loss = model.equation("L")
    assert "p_t[y_t, rows]" in show(loss.expr)
    same = load_text(ROW_MODEL.replace("softmax(s_t * W, rows)", "softmax((s_t * W).T).T")
                     .replace("p_t[y_t, rows]", "p_t.T[y_t].T"), "row2.rnn")
    assert same.equation("p_t").expr == eq.expr and same.equation("L").expr == loss.expr
    column_text = ROW_MODEL.replace("N x V", "V x N").replace("1 x V", "V x 1").replace("p_t[y_t, rows]", "p_t[y_t]")
    columns = load_text(column_text.replace("s_t * W, rows", "s_t * W, columns"), "columns.rnn")
    plain = load_text(column_text.replace("s_t * W, rows", "s_t * W"), "plain.rnn")
    assert columns.equation("p_t").expr == plain.equation("p_t").expr
    assert show(columns.equation("p_t").expr) == "softmax(s_t * W)"


def test_a_row_pick_of_the_row_softmax_is_fused_and_proved():
    derivation = derive_matrix(load_text(ROW_MODEL, "row.rnn"))
    assert derivation.adjoints["s_t"].note.startswith("softmax + cross-entropy")
    assert prove(derivation, seed=0).holds


@pytest.mark.parametrize("edit, message, at", [
    ("softmax(s_t * W, rows)|softmax(s_t * W, row)", "softmax's second argument is its axis", "row)"),
    ("softmax(s_t * W, rows)|softmax(s_t * W, 1)", "softmax's second argument is its axis", "1)"),
    ("p_t[y_t, rows]|p_t[y_t, cols]", "expected ':' after ','", "cols]"),
    ("p_t[y_t, rows]|p_t[y_t]", "a pick per column of p_t, whose softmax normalises each row", "[y_t]"),
    ("softmax(s_t * W, rows)|softmax(s_t * W, rows, rows)", "softmax takes 1 argument(s), given 3", "softmax"),
])
def test_a_wrong_axis_is_an_error_at_its_caret(tmp_path, capsys, edit, message, at):
    old, new = edit.split("|")
    text = ROW_MODEL.replace(old, new)
    path = tmp_path / "bad.rnn"
    path.write_text(text)
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    line, line_text = next((i, t) for i, t in enumerate(text.splitlines(), 1) if new in t)
    column = line_text.index(at) + 1
    assert f"bad.rnn:{line}:{column}: error:" in err
    assert err.rstrip("\n").splitlines()[-1] == " " * (4 + column - 1) + "^"


def test_a_row_pick_of_a_column_softmax_is_an_error(tmp_path, capsys):
    text = ROW_MODEL.replace("softmax(s_t * W, rows)", "softmax(s_t * W)").replace(
        "N x V", "V x N").replace("1 x V", "V x 1")
    path = tmp_path / "col.rnn"
    path.write_text(text)
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "a pick per row of p_t, whose softmax normalises each column" in err
    assert f"col.rnn:6:{text.splitlines()[5].index('[y_t, rows]') + 1}: error:" in err
