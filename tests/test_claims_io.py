"""``derive check`` input errors, JSON document, exit status, and the seed examples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from derive.claims.command import run_check
from derive.claims.read import read_claims

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(path, as_json=False):
    out, err = io.StringIO(), io.StringIO()
    status = run_check(str(path), as_json, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("text, line, column, words", [
    ("model elman-softmax\nclaim dL/dW_hh = W_hh @@ h_t\n", 2, 24, "expected an expression"),
    ("model elman-softmax\nclaim dL/dW_qq = W_hh\n", 2, 7, "unknown symbol 'W_qq'"),
    ("model elman-softmax\nclaim dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T @ nope\n", 2, 46, "unknown symbol 'nope'"),
    ("model elman-softmax\nclaim W_hh = 1\n", 2, 7, "a claim starts with a derivative"),
    ("model no-such-model\nclaim dL/dW_hh = 0\n", 1, 7, "no such model"),
    ("model elman-softmax\nclaim dL/dh_9 = 0\n", 2, 7, "past the last step"),
    ("model elman-softmax\nclaim dL/dh_t (t) = 0\n", 2, 7, "already per step"),
    ("model elman-softmax\nclaim dL/dW_hh = tanh(\n", 2, 23, "expected an expression"),
])
def test_malformed_exit_2(tmp_path, text, line, column, words):
    path = tmp_path / "bad.claims"
    path.write_text(text, encoding="utf-8")
    status, out, err = _run(path)
    assert status == 2 and out == ""
    assert f"bad.claims:{line}:{column}: error:" in err, err
    assert words in err and "^" in err


def test_no_claims_and_missing_file(tmp_path):
    path = tmp_path / "empty.claims"
    path.write_text("model elman-softmax\n", encoding="utf-8")
    assert _run(path)[0] == 2
    status, out, err = _run(tmp_path / "nope.claims")
    assert status == 2 and "no such file" in err


def test_resolution_forms(tmp_path):
    path = tmp_path / "forms.claims"
    path.write_text("model elman-softmax\nsize T = 3\n"
                    "claim ∂L_2/∂W_hh (t = 2) = dL_2/dz_2 ⋅ h_1ᵀ\n"
                    "claim dL/dh_0 = W_hh.T @ dL/dz_1\n"
                    "claim dL/dh_T = W_hy.T @ dL/do_T\n"
                    "claim dL/dW_hh (t) = dL/dz_t @ transpose(h_{t-1})\n"
                    "claim dL/dz_t = dL/dh_t * (1 - squared(h_t))\n"
                    "claim dL/db_y = Σ_t (y_t - onehot(c))\n"
                    "claim dL/dL_t = 1\n", encoding="utf-8")
    notes = read_claims(str(path))
    assert notes.pinned == {"T": 3}
    status, out, err = _run(path)
    assert status == 0, out
    assert "7 claims: 7 holds" in out


def test_json_document(tmp_path):
    path = tmp_path / "j.claims"
    path.write_text("model elman-softmax\n"
                    "claim dL/do_t = y_t - onehot(c_t)\n"
                    "claim dL/dh_t = W_hy.T @ dL/do_t\n", encoding="utf-8")
    status, out, err = _run(path, as_json=True)
    assert status == 1
    doc = json.loads(out)
    assert doc["file"] == str(path)
    assert set(doc) >= {"file", "claims", "summary"}
    first, second = doc["claims"]
    for c in doc["claims"]:
        assert {"line", "column", "text", "verdict", "explanation", "truth", "repair",
                "counterexample", "sizes_proved"} <= set(c)
    assert (first["line"], first["column"], first["verdict"]) == (2, 1, "holds")
    assert first["text"] == "dL/do_t = y_t - onehot(c_t)"
    assert len(first["sizes_proved"]) == 3
    assert second["verdict"] == "partial" and second["missing"] == ["W_hh.T @ dL/dz_{t+1}"]
    assert doc["summary"]["claims"] == 2 and doc["summary"]["holds"] == 1
    assert doc["summary"]["partial"] == 1 and doc["summary"]["exit_status"] == 1


EXPECTED = {
    "seed000_batch_matmul.claims": ["holds", "holds", "shape", "factor", "shape", "layout", "layout"],
    "seed001_bptt_two_steps.claims": ["layout", "wrong", "wrong", "wrong", "wrong", "wrong"],
    "seed002_softmax_rnn.claims": ["holds", "holds", "holds", "holds", "wrong", "wrong",
                                   "partial", "partial", "partial", "wrong", "wrong", "wrong"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_examples(name):
    status, out, err = _run(EXAMPLES / name, as_json=True)
    doc = json.loads(out)
    assert status == 1
    assert [c["verdict"] for c in doc["claims"]] == EXPECTED[name]



def test_seed_repairs():
    doc = json.loads(_run(EXAMPLES / "seed001_bptt_two_steps.claims", True)[1])
    claims = doc["claims"]
    assert claims[0]["repair"] == "W_hy.T @ dL/dy"
    # the products are parenthesised where a reader could misgroup them (the same tree)
    assert claims[1]["repair"] == "(dL/dh_2 * (1 - h_2**2)) @ h_1.T"
    assert claims[5]["repair"] == "sum_t (dL/dh_t * (1 - h_t**2)) @ h_{t-1}.T"
    doc = json.loads(_run(EXAMPLES / "seed002_softmax_rnn.claims", True)[1])
    assert doc["claims"][4]["repair"] == "dL_t/dh_t * (1 - h_t**2)"
    assert "@ with its operands swapped" in doc["claims"][3]["dot_reading"]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*_corrected.claims")))
def test_corrected_examples_pass(name):
    status, out, err = _run(EXAMPLES / name)
    assert status == 0, out
    assert "all claims hold" in out


def test_json_counterexample_values_are_numbers(tmp_path, capsys):
    import json

    from derive.cli import main
    notes = tmp_path / "n.claims"
    notes.write_text("model elman-softmax\nclaim dL/dz_t = dL/dh_t * (1 - h_t)**2\n")
    assert main(["check", str(notes), "--json"]) == 1
    ce = json.loads(capsys.readouterr().out)["claims"][0]["counterexample"]
    assert isinstance(ce["claim"], float) and isinstance(ce["truth"], float) and ce["claim"] != ce["truth"]
    assert all(isinstance(v, list) and all(isinstance(c, int) for c in v) for v in ce["classes"].values())
