"""Spellings rewritten while parsing: comparisons, ``max``/``min`` and ``diag(v)`` as a factor of a product."""

from __future__ import annotations

import numpy as np
import pytest

from derive import api
from derive.claims.read import read_claims
from derive.claims.verdicts import check_file
from derive.claims.vouch import parse_rhs
from derive.errors import InputError, SourceText
from derive.model.build import load_model, load_text
from derive.notation.expression_parser import ExpressionParser
from derive.notation.lexer import tokenize
from derive.notation.printer import show


def parse(text: str):
    src = SourceText(text, "<claim>")
    parser = ExpressionParser(tokenize(text, 1, src, claims=True), 1, src)
    tree = parser.expression()
    parser.expect_end()
    return tree


@pytest.mark.parametrize("spelling, meaning", [
    ("dL/dh_t * (z_t > 0)", "dL/dh_t * step(z_t)"),
    ("dL/dh_t * (0 < z_t)", "dL/dh_t * step(z_t)"),
    ("dL/dh_t * (z_t >= 0)", "dL/dh_t * (1 - step(-z_t))"),
    ("dL/dh_t * (z_t <= b_h)", "dL/dh_t * (1 - step(z_t - b_h))"),
    ("diag(1 - h_t**2) @ dL/dh_t", "(1 - h_t**2) * dL/dh_t"),
    ("dL/dh_t.T @ diag(1 - h_t**2)", "dL/dh_t.T * (1 - h_t**2).T"),
    ("diag(1 - h_t**2).T @ dL/dh_t", "(1 - h_t**2) * dL/dh_t"),
    ("max(0, z_t)", "relu(z_t)"),
    ("max(z_t, 0)", "relu(z_t)"),
    ("max(z_t, b_h)", "b_h + relu(z_t - b_h)"),
    ("min(z_t, b_h)", "z_t - relu(z_t - b_h)"),
])
def test_a_spelling_reads_as_the_notations_own(spelling, meaning):
    model = load_model("elman-softmax")
    assert show(parse_rhs(model, spelling)) == show(parse_rhs(model, meaning))


@pytest.mark.parametrize("spelling, column, words", [
    ("diag(1 - h_t**2)", 1, "only as a factor of a matrix product"),
    ("tanh(diag(h_t)) @ dL/dh_t", 6, "only as a factor of a matrix product"),
    ("dL/dh_t * (z_t > )", 18, "expected an expression after '>'"),
    ("dL/dh_t * (z_t > 0 > b_h)", 20, "one comparison at a time"),
    ("max(z_t)", 1, "max takes 2 argument(s), given 1"),
])
def test_a_misused_spelling_is_an_error_at_its_caret(spelling, column, words):
    with pytest.raises(InputError) as caught:
        parse(spelling)
    assert words in caught.value.message
    assert caught.value.column == column


def test_every_function_is_named_when_one_is_unknown():
    with pytest.raises(InputError) as caught:
        parse("maximum(z_t, 0)")
    for name in ("max", "min", "diag", "tanh", "onehot"):
        assert name in caught.value.message


MASKED = ("size H = 4, F = 3, T = 3\nparam W_hh : H x H\nparam W_xh : H x F\nparam W_hy : 1 x H\n"
          "input x_t : F x 1\ntarget y_true : 1 x 1\nstate h_t : H x 1 = 0\n"
          "z_t = W_hh @ h_{t-1} + W_xh @ x_t\n"
          "h_t = max(0, z_t) + min(z_t, 0.1 * z_t) * (z_t <= 0) + diag(W_xh @ x_t) @ h_{t-1}\n"
          "y = W_hy @ h_T\nL = sum((y - y_true)**2)\n")


def test_a_model_written_with_them_verifies_against_finite_differences(tmp_path):
    path = tmp_path / "masked.rnn"
    path.write_text(MASKED, encoding="utf-8")
    result = api.verify_gradients(str(path))
    assert result.passed and result.result == "agree"
    assert {"complex", "central"} <= set(result.checks)
    assert all(result.checks[name].verdict == "agrees" and result.checks[name].entries > 0
               for name in ("complex", "central"))
    assert np.isfinite([row.max_abs_error for row in result.rows]).all()


def test_a_model_equation_reads_the_comparison_as_a_step():
    model = load_text(MASKED, "masked.rnn")
    text = show(model.equation("h_t").expr)
    assert "relu(z_t)" in text and "(1 - step(z_t))" in text and "W_xh @ x_t * h_{t-1}" in text


def test_claims_written_with_diag_and_a_comparison_get_their_verdicts(tmp_path):
    path = tmp_path / "sugar.claims"
    path.write_text("model elman-softmax\n"
                    "claim dL/dz_t = diag(1 - h_t**2) @ dL/dh_t\n"
                    "claim dL/dh_t = W_hy.T @ dL/do_t + W_hh.T ⋅ diag(1 - h_{t+1}^2) ⋅ dL/dh_{t+1}\n"
                    "claim dL/dz_t = diag((1 - h_t)**2) @ dL/dh_t\n", encoding="utf-8")
    results = check_file(read_claims(str(path)))
    assert [r.verdict for r in results[:2]] == ["holds", "holds"]
    assert results[2].verdict == "wrong" and results[2].repair is not None
