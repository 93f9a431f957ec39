"""Range sums in claims: ``sum_{k=1}^{t} dL_t/dz_k @ h_{k-1}.T``, read, printed, checked and used in truths."""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.claims.read import read_claims
from derive.claims.verdicts import check_file
from derive.claims.vouch import parse_rhs
from derive.model.build import load_model
from derive.notation.expr import StepSum, walk
from derive.notation.printer import show

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("text", [
    "sum_{k=1}^{t} dL_t/dz_k @ h_{k-1}.T",
    "dL_t/dz_t @ h_{t-1}.T + sum_{k=1}^{t-1} dL_t/dz_k @ h_{k-1}.T",
    "sum_{j=2}^{T} W_hy.T @ dL/do_j",
    "sum_{k=T-1}^{T} dL/do_k @ h_k.T",
    "sum_{t=2}^{T} dL/dz_t @ h_{t-1}.T",
])
def test_a_range_sum_prints_as_it_was_written(text):
    tree = parse_rhs(load_model("elman-softmax"), text)
    assert tree is not None and any(isinstance(n, StepSum) for n in walk(tree))
    assert show(tree) == text


def test_the_sigma_spelling_reads_as_sum():
    model = load_model("elman-softmax")
    assert parse_rhs(model, "Σ_{k=1}^{t} dL_t/dz_k") == parse_rhs(model, "sum_{k=1}^{t} dL_t/dz_k")


def test_range_sums_are_checked_like_any_claim(tmp_path):
    path = tmp_path / "ranges.claims"
    path.write_text("model elman-softmax\n"
                    "claim dL_t/dW_hh = sum_{k=1}^{t} dL_t/dz_k @ h_{k-1}.T\n"
                    "claim dL/dW_hy = sum_{k=1}^{T} dL/do_k @ h_k.T\n"
                    "claim dL_t/dW_hh = sum_{k=2}^{t} dL_t/dz_k @ h_{k-1}.T\n"
                    "claim dL_t/db_h = dL_t/dz_t\n"
                    "claim dL/dW_hh = dL/dz_1 @ h_0.T + sum_{t=2}^{T} dL/dz_t @ h_{t-1}.T\n", encoding="utf-8")
    results = check_file(read_claims(str(path)))
    assert [r.verdict for r in results] == ["holds", "holds", "wrong", "partial", "holds"]
    assert "at every step" not in results[1].explanation  # a sum up to T names no free step t
    assert results[2].repair == "sum_{k=1}^{t} dL_t/dz_k @ h_{k-1}.T"
    assert results[2].repair_edits == ["the lower bound 1 for 2"]
    assert results[3].truth == "dL_t/db_h = sum_{k=1}^{t} dL_t/dz_k"
    assert results[3].repair == "dL_t/dz_t + sum_{k=1}^{t-1} dL_t/dz_k"


@pytest.mark.parametrize("rhs, column, words", [
    ("sum_{k=}^{t} h_k", 25, "cannot read the lower bound {}"),
    ("sum_{k=1}^{x} h_k", 29, "cannot read the upper bound {x}"),
    ("sum_{T=1}^{t} h_t", 18, "another letter than T"),
    ("sum_{t=1}^{t} h_t", 29, "names t, the sum's own letter"),
    ("sum_{k=1}^{t} sum_{j=1}^{k} h_j", 32, "a range sum inside a range sum"),
    ("sum_{k=1}^{t}", 31, "expected the summand after the range sum"),
    ("sum_{kk=1}^{t} h_{kk}", 18, "cannot read the range sum sum_{kk=1}: it takes one letter"),
    ("sum_{k=1} h_k", 18, "cannot read the range sum sum_{k=1}: it takes one letter, a lower bound and an upper"),
])
def test_a_malformed_range_sum_is_an_error_at_its_caret(tmp_path, rhs, column, words):
    path = tmp_path / "bad.claims"
    path.write_text(f"model elman-softmax\nclaim dL/dW_hh = {rhs}\nclaim dL/db_y = sum_t dL/do_t\n",
                    encoding="utf-8")
    notes = read_claims(str(path))
    error = notes.claims[0].error
    assert error is not None and error.line == 2 and error.column == column
    assert words in error.message


def test_every_literal_seed_002_claim_that_does_not_hold_gets_a_proved_repair():
    results = check_file(read_claims(str(EXAMPLES / "seed002_softmax_rnn.claims")))
    failing = [r for r in results if r.verdict != "holds"]
    assert len(failing) == 8
    assert all(r.repair and not r.withheld for r in failing), [(r.claim.line, r.explanation) for r in failing]
    # the truths of a step's loss over a shared weight are claims now (sums over k = 1..t)
    assert all(r.truth for r in failing), [(r.claim.line, r.truth_terms) for r in failing]
    by_line = {r.claim.line: r for r in failing}
    assert by_line[16].repair_edits[0] == "parenthesise (1 - h_t**2)"
    assert by_line[16].repair_edits[1].startswith("add the missing sum_{k=1}^{t-1} dL_t/dz_k @ h_{k-1}.T")


def test_a_sum_up_to_a_fixed_step_is_checked_at_the_files_T(tmp_path):
    # found by a newcomer: with size T = 2, sum_{t=1}^{2} was checked at T = 3 and called partial (steps 3, 4 missing)
    path = tmp_path / "two.claims"
    path.write_text("model elman-regression\nsize T = 2\nclaim dL/dW_hh = sum_{t=1}^{2} dL/dz_t @ h_{t-1}.T\n",
                    encoding="utf-8")
    [result] = check_file(read_claims(str(path)))
    assert result.verdict == "holds" and "T=2;" in result.explanation and "T=3" not in result.explanation
