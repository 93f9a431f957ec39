"""Spellings of the hand notes that mean one thing: ``W^T`` is a transpose, never a power of the size T."""

from __future__ import annotations

import pytest

from derive.claims.vouch import parse_rhs
from derive.model.build import load_model, load_text
from derive.notation.printer import show


@pytest.mark.parametrize("spelling", ["W_hh^T @ dL/dz_{t+1}", "W_hh^{T} @ dL/dz_{t+1}", "W_hhᵀ @ dL/dz_{t+1}",
                                      "transpose(W_hh) @ dL/dz_{t+1}", "W_hh ^ T @ dL/dz_{t+1}"])
def test_every_transpose_spelling_reads_as_the_transpose(spelling):
    model = load_model("elman-softmax")
    assert show(parse_rhs(model, spelling)) == "W_hh.T @ dL/dz_{t+1}"


def test_a_power_is_still_a_power():
    model = load_model("elman-softmax")
    assert show(parse_rhs(model, "1 - h_t^2")) == "1 - h_t**2"


def test_a_model_equation_reads_the_caret_transpose():
    text = ("size H = 2, F = 3, T = 3\nparam W : H x F\nparam U : H x H\ninput x_t : F x 1\n"
            "state h_t : H x 1 = 0\nh_t = tanh(W @ x_t + U^T @ h_{t-1})\nL = sum(h_T)\n")
    model = load_text(text, "caret.rnn")
    assert "U.T @ h_{t-1}" in show(model.equation("h_t").expr)


def test_operands_side_by_side_in_a_claim_are_the_ambiguous_product(tmp_path):
    from derive.claims.read import read_claims
    from derive.claims.verdicts import check_file
    path = tmp_path / "side_by_side.claims"
    path.write_text("model elman-regression\nsize T = 2\nclaim dL/dh_2 = W_hy.T dL/dy\n"
                    "claim dL/dh_1 = W_hh.T (dL/dh_2 * (1 - h_2**2))\n", encoding="utf-8")
    results = check_file(read_claims(str(path)))
    assert [r.verdict for r in results] == ["holds", "holds"]
    assert results[0].dot_choices == "the product written without an operator at column 24 as @ (matrix product)"
    assert results[0].reading == "W_hy.T @ dL/dy"


def test_operands_side_by_side_in_a_model_equation_are_an_error():
    from derive.errors import InputError
    with pytest.raises(InputError, match="expected an operator"):
        load_text("size H = 2\nparam W : H x H\nL = sum(W W)\n", "side_by_side.rnn")


def test_sum_t_of_a_bracket_and_an_operand_side_by_side_sums_their_product(tmp_path):
    from derive.claims.read import read_claims
    from derive.claims.verdicts import check_file
    # found grading notes: "sum_t (y_t - onehot(c_t)) h_t^T" was read as (sum_t (y_t - onehot(c_t))) ⋅ h_t.T
    path = tmp_path / "sum.claims"
    path.write_text("model elman-softmax\nclaim dL/dW_hy = sum_t (y_t - onehot(c_t)) h_t^T\n"
                    "claim dL/dW_hy = sum_t(dL/do_t) @ h_t.T\n", encoding="utf-8")
    results = check_file(read_claims(str(path)))
    assert [r.verdict for r in results] == ["holds", "holds"]
    assert results[0].reading == "sum_t (y_t - onehot(c_t)) @ h_t.T"
