"""Notes mode on the three seed notes, unmodified: every derivative equation gets a verdict or a reason.

The files in tests/data/notes/seed00*.txt are the seed notes byte for byte.
The verdicts expected are those of the project's hand transcriptions of the
same notes (examples/seed00*_*.claims), equation by equation; the checker
decides them, the tests only say which verdict each equation must get.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from derive.claims.notes_command import run_notes_check

NOTES = Path(__file__).resolve().parent / "data" / "notes"


def _check(name: str, model: str):
    out, err = io.StringIO(), io.StringIO()
    status = run_notes_check(str(NOTES / name), True, out, err, model=model)
    doc = json.loads(out.getvalue()) if out.getvalue() else None
    return status, doc, err.getvalue()


@pytest.fixture(scope="module")
def seed001():
    return _check("seed001.txt", "elman-regression")


@pytest.fixture(scope="module")
def seed002():
    return _check("seed002.txt", "elman-softmax")


def _verdicts(doc) -> dict:
    return {(c["line"], c["column"]): c["verdict"] for c in doc["claims"]}


def _findings(doc) -> dict:
    return {(f["line"], f["column"]): f["kind"] for f in doc["not_checked"]}


def test_seed000_has_no_gradient_to_check_and_says_why_for_each_equation(tmp_path):
    status, doc, err = _check("seed000.txt", "elman-regression")
    assert status == 2 and doc is None
    # dl_d_y_pred = (output_size, batch_size)  d_y_pred_d_w_hy = (batch_size, hidden_size), on lines 8 and 22
    for line in (8, 22):
        assert f"seed000.txt:{line}:15: not checked (a shape, not a value): dl_d_y_pred = (output_size, batch_size)" \
            in err
        assert f"seed000.txt:{line}:42: not checked (not a gradient of the loss): d_y_pred_d_w_hy" in err
    assert "4 derivative equations and mentions found: 0 checked, 4 not checked" in err
    assert "no derivative equation of the loss to check" in err
    assert "Traceback" not in err


def test_seed001_every_equation(seed001):
    status, doc, _ = seed001
    assert status == 1
    # as examples/seed001_bptt_two_steps.claims: dL/dh_2 in numerator layout, the rest wrong
    assert _verdicts(doc) == {
        (44, 1): "layout", (45, 7): "layout",
        (46, 1): "wrong", (47, 7): "wrong", (50, 1): "wrong", (51, 7): "wrong",
        (52, 1): "wrong", (53, 7): "wrong", (58, 1): "wrong", (62, 1): "wrong", (63, 10): "wrong",
    }
    assert _findings(doc) == {
        (8, 15): "not_value", (8, 42): "not_gradient", (24, 15): "not_value", (24, 42): "not_gradient",
        (44, 33): "where", (46, 45): "where", (50, 35): "where", (52, 44): "where", (62, 55): "where",
        (57, 1): "not_equation",
    }
    s = doc["summary"]
    assert (s["equations_found"], s["checked"], s["not_checked"], s["not_read"]) == (21, 11, 10, 0)


def test_seed001_readings(seed001):
    _, doc, _ = seed001
    by_place = {(c["line"], c["column"]): c for c in doc["claims"]}
    assert "T = 2: line 44 writes the loss at step 2" in doc["readings"][0]
    first = by_place[(44, 1)]
    assert first["read_as"] == "dL/dh_2 = dL/dy ⋅ W_hy"
    assert {"h2 as h_2", "Why as W_hy", "dy/dh2 as W_hy, which its where clause defines"} <= set(first["readings"])
    assert any(r.startswith("L2 as L, the model's loss") for r in first["readings"])
    assert by_place[(47, 7)]["read_as"] == "dL/dW_hh (t = 2) = dL/dh_2 ⋅ squared(1 - h_2) ⋅ transpose(h_1)"
    assert "Whh as W_hh" in by_place[(47, 7)]["readings"]
    assert any("(t = 2) carried over" in r for r in by_place[(47, 7)]["readings"])
    assert any("h1/dWhh as dh1/dWhh (a d is missing)" == r for r in by_place[(52, 1)]["readings"])
    assert by_place[(53, 7)]["read_as"].startswith("dL/dW_hh (t = 1) = ")
    final = by_place[(63, 10)]
    assert final["read_as"] == "dL/dW_hh = sum_{t=1}^{2} dL/dh_t ⋅ squared(1 - h_t) ⋅ transpose(h_{t-1})"
    assert "sum t from 1 to 2 as sum_{t=1}^{2}" in final["readings"]
    assert any(r.startswith("ht-1 as h_{t-1}") for r in final["readings"])
    # the where clause's product goes in as the notes' own next line writes it
    assert by_place[(46, 1)]["read_as"] == by_place[(47, 7)]["read_as"]
    # every claim is checked at the T the notes' L2 fixes
    assert all(all(s["T"] == 2 for s in c["sizes_proved"]) for c in doc["claims"] if c["sizes_proved"])


def test_seed002_every_equation(seed002):
    status, doc, _ = seed002
    assert status == 1
    # as examples/seed002_softmax_rnn.claims: 4 holds, 3 partial, 5 wrong
    assert _verdicts(doc) == {
        (22, 37): "holds", (31, 3): "holds", (32, 3): "holds", (36, 46): "holds",
        (41, 1): "wrong", (42, 1): "wrong",
        (48, 1): "partial", (48, 38): "partial", (48, 71): "partial",
        (49, 3): "wrong", (50, 3): "wrong", (51, 3): "wrong",
    }
    assert _findings(doc) == {
        (19, 1): "not_read", (25, 1): "not_read", (28, 1): "not_read", (28, 53): "not_read",
        (22, 25): "jacobian", (35, 25): "jacobian", (35, 61): "jacobian", (36, 34): "jacobian",
        (39, 25): "jacobian", (44, 27): "jacobian",
        (29, 1): "not_gradient", (30, 1): "not_gradient", (37, 1): "not_gradient", (40, 1): "not_gradient",
        (45, 1): "not_gradient", (46, 1): "not_gradient", (47, 1): "not_gradient",
        (24, 1): "not_equation",
    }
    reasons = {(f["line"], f["column"]): f["reason"] for f in doc["not_checked"]}
    assert "one entry of a gradient" in reasons[(19, 1)]
    assert reasons[(22, 25)].startswith("∂y_t/∂o_t is a Jacobian")


def test_seed002_readings(seed002):
    _, doc, _ = seed002
    by_place = {(c["line"], c["column"]): c for c in doc["claims"]}
    assert "* is read as ⋅" in doc["readings"][0]
    assert by_place[(22, 37)]["read_as"] == "∂L_t/∂o_t = y_t - onehot(c)"
    assert by_place[(22, 37)]["readings"] == ["one_hot as onehot"]
    assert by_place[(31, 3)]["written"] == "∂L_t/∂W_hy = (y_t - one_hot(c)) * h_t.T"
    assert "* (column 37) as ⋅, either product (each reading is tried)" in by_place[(31, 3)]["readings"]
    assert by_place[(32, 3)]["read_as"] == "∂L_t/∂b_y = (y_t - onehot(c))"
    assert "by as b_y" in by_place[(32, 3)]["readings"]
    assert "^2 as **2 (a power)" in by_place[(41, 1)]["readings"]
    assert by_place[(48, 71)]["read_as"] == "∂L_t/∂b_h = ∂L_t/∂z_t"
    # the verdict's column of ⋅ is the column of the notes' * (line 36: the * at column 65)
    assert "⋅ at column 65" in by_place[(36, 46)]["explanation"]


def test_the_listing_places_every_finding_in_the_notes(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    status = run_notes_check(str(NOTES / "seed001.txt"), False, out, err, model="elman-regression")
    text = out.getvalue()
    assert status == 1
    assert text.startswith(f"{NOTES / 'seed001.txt'}: notes, model elman-regression (--model)")
    assert f"{NOTES / 'seed001.txt'}:44:1: LAYOUT: dL2/dh2 = dL2/dy ⋅ dy/dh2\n    read as: dL/dh_2 = dL/dy ⋅ W_hy" in text
    assert f"{NOTES / 'seed001.txt'}:57:1: not checked (no equation): dL2/dWhh (t = 2) + dL2/dWhh (t = 1)" in text
    assert "    dL2/dWhh (t = 2) + dL2/dWhh (t = 1)\n    ^" in text
    assert "21 derivative equations and mentions found: 11 checked, 10 not checked" in text
    assert "11 claims: 2 layout, 9 wrong (11 of 11 do not hold)" in text
