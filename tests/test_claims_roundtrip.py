"""Every truth and repair ``derive check`` prints holds when written back as a claim of its own.

Over every claims file of the repository (the examples, the test data, the
student corpus in ``tests/data/student_claims/`` and the claims of
``tests/test_claims_verdicts.py``), each printed truth
and repair is written back as ``claim dL/dX = <printed right side>`` in the
same model and checked: each must get ``holds``, and none may have been
withheld by the checker's own proof (:mod:`derive.claims.vouch`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from claims_roundtrip import round_trip
from test_claims_verdicts import MEAN_LOSS, SOFTMAX

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(ROOT.glob("examples/*.claims")) + sorted((ROOT / "tests" / "data").rglob("*.claims"))


def test_the_corpus_is_there():
    corpus = sorted((ROOT / "tests" / "data" / "student_claims").glob("*.claims"))
    claims = sum(1 for f in corpus for line in f.read_text().splitlines() if line.startswith("claim "))
    assert len(corpus) >= 6 and claims >= 40


def _assert_round_trip(path):
    outcome = round_trip([path])
    assert not outcome.withheld, outcome.withheld
    assert not outcome.failures, [(p.line, p.kind, p.claim, p.verdict, p.explanation[:200])
                                  for p in outcome.failures]
    # every truth is written as a claim (a sum over k = 1..t is a range sum)
    assert not outcome.as_terms, outcome.as_terms


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_every_printed_truth_and_repair_holds_as_a_claim(path):
    _assert_round_trip(path)


@pytest.mark.parametrize("text", [SOFTMAX, MEAN_LOSS], ids=["softmax", "mean_loss"])
def test_every_printed_truth_and_repair_of_the_verdict_tests_holds(text, tmp_path):
    path = tmp_path / "notes.claims"
    path.write_text(text, encoding="utf-8")
    _assert_round_trip(path)


def test_an_iverson_bracket_is_a_claim_and_its_misuse_has_a_caret(tmp_path):
    from derive.claims.read import read_claims
    from derive.claims.verdicts import check_file
    notes = tmp_path / "m2o.claims"
    notes.write_text("model elman-regression\n"
                     "claim dL/dh_t = [t = T] W_hy.T @ dL/dy + W_hh.T @ dL/dz_{t+1}\n"
                     "claim dL/dh_t = [t < T] W_hh.T @ dL/dz_{t+1} + [t >= T] W_hy.T @ dL/dy\n"
                     "claim dL/dh_t = W_hh.T @ dL/dz_{t+1} + W_hy.T @ dL/dy\n"
                     "claim dL/dh_t = [x = T] W_hy.T @ dL/dy\n"
                     "claim dL/dh_t = [t = T W_hy.T @ dL/dy\n"
                     "claim dL/dh_t = [t = T]\n")
    results = check_file(read_claims(str(notes)))
    assert [r.verdict for r in results] == ["holds", "holds", "wrong", "error", "error", "error"]
    assert results[2].truth == "dL/dh_t = [t = T] W_hy.T @ dL/dy + W_hh.T @ dL/dz_{t+1}"
    assert [r.error["column"] for r in results[3:]] == [18, 24, 24]
    assert "Iverson bracket" in results[3].error["message"]


def test_a_fixed_step_truth_is_written_at_that_step(tmp_path):
    from derive.claims.read import read_claims
    from derive.claims.verdicts import check_file
    notes = tmp_path / "fixed.claims"
    notes.write_text("model elman-softmax\n"
                     "claim dL/dz_T = dL/dh_T * (1 - h_T)**2\n"
                     "claim dL/dh_T = W_hy.T @ dL/do_t\n")
    results = check_file(read_claims(str(notes)))
    assert results[0].truth == "dL/dz_T = dL/dh_T * (1 - h_T**2)"
    assert results[1].truth == "dL/dh_T = W_hy.T @ dL/do_T"
