"""Repairs of several edits, claims in numerator layout, and verdicts that do not depend on the other claims.

Every repair checked here is also written back as a claim and proved by
``tests/test_claims_roundtrip.py`` (it covers the examples this file uses).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.claims.read import ClaimsFile, read_claims
from derive.claims.verdicts import check_file, plan_check

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLAIMS_FILES = sorted(ROOT.glob("examples/**/*.claims")) + sorted((ROOT / "tests" / "data").rglob("*.claims"))


def _check(tmp_path, text: str):
    path = tmp_path / "notes.claims"
    path.write_text(text, encoding="utf-8")
    notes = read_claims(str(path))
    return notes, check_file(notes)


def test_every_literal_seed_001_claim_gets_a_proved_repair_with_its_slips_named():
    results = check_file(read_claims(str(EXAMPLES / "seed001_bptt_two_steps.claims")))
    assert all(r.verdict != "holds" for r in results)
    # a repair is printed only when proved: by the search, or as a claim of its own (vouch)
    assert all(r.repair and not r.withheld for r in results), [(r.claim.line, r.explanation) for r in results]
    assert results[0].verdict == "layout" and results[0].repair == "W_hy.T @ dL/dy"
    by_line = {r.claim.line: r for r in results}
    # dL/dh_1 = dL/dh_2 ⋅ squared(1 - h_2) ⋅ W_hh: tanh's derivative and the row-vector order, two slips
    two = by_line[13]
    assert len(two.repair_edits) == 2
    assert two.repair_edits[0].startswith("1 - h_2**2 for (1 - h_2)**2 (tanh'(z) = 1 - tanh(z)**2")
    assert two.repair_edits[1] == "transpose W_hh"
    assert two.repair == "W_hh.T @ (dL/dh_2 * (1 - h_2**2))"
    assert "repair in 2 edits (" in two.explanation
    # the total over both steps: the same slip twice
    assert len(by_line[17].repair_edits) == 2


def test_a_claim_in_numerator_layout_gets_layout_and_its_denominator_form(tmp_path):
    _, results = _check(tmp_path, "model elman-regression\nsize T = 2\n"
                                  "claim dL/dh_2 = dL/dy ⋅ W_hy\n"
                                  "claim dL/dh_2 = dL/dy @ W_hy\n"
                                  "claim dL/dh_2 = W_hy.T @ dL/dy\n")
    first, second, right = results
    assert [r.verdict for r in results] == ["layout", "layout", "holds"]
    assert first.numerator and second.numerator and not right.numerator
    assert second.repair == "W_hy.T @ dL/dy" and second.repair_proved is False  # proved by vouch, not the search
    assert second.explanation.startswith("holds in numerator layout (read as dL/dy.T @ W_hy)")
    assert "in denominator layout it reads W_hy.T @ dL/dy" in second.explanation


def test_a_file_in_numerator_layout_is_said_to_be_so_once(tmp_path):
    from derive.claims.listing import listing
    notes, results = _check(tmp_path, "model elman-regression\nsize T = 2\n"
                                      "claim dL/dh_2 = dL/dy @ W_hy\nclaim dL/dW_hy = h_2 @ dL/dy.T\n")
    assert [r.verdict for r in results] == ["layout", "layout"]
    text = listing(notes, results)
    assert text.count("2 of the 2 claims hold in numerator layout") == 1


def test_the_last_steps_term_of_a_sum_is_partial_alone_and_beside_a_claim_at_a_fixed_step(tmp_path):
    claim = "claim dL/dW_hy = dL/do_T @ h_T.T\n"
    alone = _check(tmp_path, "model elman-softmax\n" + claim)[1][0]
    pinned = _check(tmp_path, "model elman-softmax\n" + claim +
                    "claim dL/dh_2 = W_hy.T @ dL/do_2 + W_hh.T @ dL/dz_3\n")[1][0]
    for r in (alone, pinned):
        assert r.verdict == "partial"
        assert "it equals the part dL/do_T @ h_T.T of the truth" in r.explanation
        assert "missing: the contributions of the earlier steps k = 1..T-1" in r.explanation
        assert r.repair == "dL/do_T @ h_T.T + sum_{k=1}^{T-1} dL/do_k @ h_k.T" and not r.withheld
    assert alone.explanation == pinned.explanation


def test_a_gradient_named_for_another_is_repaired_with_the_reason(tmp_path):
    _, results = _check(tmp_path, "model elman-softmax\nclaim dL/dW_hh = sum_t dL/dh_t @ h_{t-1}.T\n"
                                  "claim dL/dW_hy = sum_t dL/do_t @ h_{t-1}.T\n")
    dz, step = results
    assert dz.repair == "sum_t dL/dz_t @ h_{t-1}.T"
    assert dz.repair_edits == ["dL/dz_t for dL/dh_t (h_t = tanh(z_t): dL/dh_t is the gradient after the tanh, "
                               "dL/dz_t the one before it)"]
    assert step.repair == "sum_t dL/do_t @ h_t.T" and step.repair_edits == ["h_t for h_{t-1}"]


@pytest.mark.parametrize("factors, combos, name", [
    ([3, 2, 4], [{"H": 2, "V": 4, "B": 3}, {"H": 3, "V": 4, "B": 2}, {"H": 2, "V": 3, "B": 4}], "B"),
    ([1 / 12, 1 / 8, 1 / 6], [{"H": 2, "O": 4, "B": 3}, {"H": 3, "O": 4, "B": 2}, {"H": 4, "O": 2, "B": 3}],
     "1/(O*B)"),
    ([-1 / 3, -1 / 2, -1 / 4], [{"H": 2, "B": 3}, {"H": 3, "B": 2}, {"H": 4, "B": 4}], "-1/B"),
])
def test_a_factor_gets_the_simplest_name_that_fits(factors, combos, name):
    # the check sizes are the same numbers in turn: H*V*B = 24 at each, so 24/(H*V) fits beside B
    from derive.claims.factor import name_factor
    assert name_factor(factors, combos) == name


def test_no_repair_says_how_many_edited_readings_were_tried(tmp_path):
    _, results = _check(tmp_path, "model elman-softmax\nclaim dL/dW_hh = W_hh @ W_hh @ W_hh @ W_hh\n")
    r = results[0]
    assert r.verdict == "wrong" and r.repair is None
    assert r.repair_search.startswith("no repair among the ")
    tried = int(r.repair_search.split("among the ")[1].split(" ")[0].replace(",", ""))
    assert tried > 50 and r.repair_search in r.explanation


def test_a_missing_term_through_the_initial_state_says_why_it_matters(tmp_path):
    _, results = _check(tmp_path, "model elman-regression\nsize T = 2\nclaim dL/dW_hh = dL/dz_2 @ h_1.T\n")
    r = results[0]
    assert r.verdict == "partial" and r.missing == ["dL/dz_1 @ h_0.T"]
    assert "dL/dz_1 @ h_0.T is zero at the default h_0 = 0, but not when h_0 is given" in r.explanation


@pytest.mark.parametrize("path", CLAIMS_FILES, ids=[str(p.relative_to(ROOT)) for p in CLAIMS_FILES])
def test_each_claim_is_checked_at_the_sizes_it_would_have_alone(path):
    notes = read_claims(str(path))
    plan = plan_check(notes)
    in_file = {i: combos for combos, todo in plan.groups for i in todo}
    for i, claim in enumerate(notes.claims):
        if claim.error is not None or i in plan.skipped:
            continue
        alone = plan_check(ClaimsFile(notes.path, notes.model, [claim], dict(notes.pinned)))
        assert [combos for combos, _ in alone.groups] == [in_file[i]], claim.text


@pytest.mark.parametrize("name", ["seed001_bptt_two_steps.claims"])  # layout, wrong and partial verdicts, repairs
def test_each_claim_gets_the_same_verdict_and_words_alone_and_in_its_file(name, tmp_path):
    notes = read_claims(str(EXAMPLES / name))
    together = check_file(notes)
    compared = 0
    for claim, in_file in zip(notes.claims, together):
        alone = check_file(ClaimsFile(notes.path, notes.model, [claim], dict(notes.pinned)))[0]
        if "undecided" in (alone.verdict, in_file.verdict):
            continue  # a time limit reached under load says nothing about independence
        assert (alone.verdict, alone.explanation, alone.repair, alone.truth) == \
            (in_file.verdict, in_file.explanation, in_file.repair, in_file.truth), claim.text
        compared += 1
    assert compared >= 1  # not every claim undecided: something was compared


RELU = ("size B = 4, F = 3, H = 5, O = 2, T = 3\nparam W_xh : F x H\nparam W_hh : H x H\nparam W_hy : H x O\n"
        "input x_t : B x F\ntarget y_true : B x O\nstate h_t : B x H = 0\n"
        "z_t = x_t @ W_xh + h_{t-1} @ W_hh\nh_t = relu(z_t)\ny = h_T @ W_hy\nL = mean((y - y_true)**2)\n")


def test_relus_step_of_its_output_is_its_step_of_its_input(tmp_path):
    # step(0) is 0 in the proof as in the float screening and the generated code, so step(h_t) = step(z_t)
    _, results = _check(tmp_path, RELU + "claim dL/dz_t = dL/dh_t * step(h_t)\n"
                                         "claim dL/dz_t = dL/dh_t * step(z_t)\n"
                                         "claim dL/dz_t = dL/dh_t * h_t\n")
    assert [r.verdict for r in results] == ["holds", "holds", "wrong"]
