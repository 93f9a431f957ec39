"""Issue 15's first-run speed-ups change no output: the report's numeric evidence beside the proof,
and a claim's proof reused when its printed truth is the same claim."""

import io

import pytest

from derive.claims.confirm import confirm
from derive.claims.read import read_claims
from derive.claims.verdicts import check_file
from derive.errors import InputError
from derive.report import evidence as evidence_mod
from derive.report import model_report as model_report_mod
from derive.report.model_report import model_report
from derive.verify.rule import VerifyResult


def test_forked_evidence_gives_the_result_of_the_run():
    def run():
        result = VerifyResult("m", {"H": 2}, 7)
        result.notes.append("computed")
        return result

    with evidence_mod.start_evidence(run, fork=True) as forked:
        got = forked.result()
    assert (got.model, got.sizes, got.seed, got.notes) == ("m", {"H": 2}, 7, ["computed"])


def test_a_failure_in_the_child_is_raised_here():
    calls = []

    def run():
        calls.append(1)
        raise InputError("too large", "<model>")

    with pytest.raises(InputError, match="too large"), evidence_mod.start_evidence(run, fork=True) as forked:
        forked.result()
    assert calls == [1]  # the child's call is counted in the child only: this one is the rerun here


@pytest.mark.skipif(not evidence_mod.can_fork(), reason="no fork here, or one core")
def test_report_text_is_the_same_with_and_without_the_fork(monkeypatch):
    sizes = {"H": 3, "F": 2, "O": 3, "T": 3}
    forked = model_report("elman-softmax", 0, sizes, 3, io.StringIO())
    monkeypatch.setattr(model_report_mod, "can_fork", lambda: False)
    here = model_report("elman-softmax", 0, sizes, 3, io.StringIO())
    assert forked.tex == here.tex
    assert forked.passed and here.passed
    assert r"\section{Numeric evidence}" in here.tex and r"\section{Figures}" in here.tex


def test_a_proof_is_reused_only_for_the_same_claim_reading_and_verdict(tmp_path):
    path = tmp_path / "n.claims"
    path.write_text("model elman-softmax\nclaim dL_t/do_t = y_t - onehot(c)\n"
                    "claim dL_t/db_y = y_t - onehot(c)\n", encoding="utf-8")
    notes = read_claims(str(path))
    from derive.claims.checker import ClaimChecker
    from derive.claims.verdicts import plan_check
    combos, _ = plan_check(notes).groups[0]
    checker = ClaimChecker(notes, combos)
    claim = notes.claims[0]
    first = confirm(checker, claim, "holds", claim.rhs, {})
    assert first[0] and first[1] > 0
    assert len(checker.confirmed) == 1
    again = confirm(checker, claim, "holds", claim.rhs, {})
    assert again == first and again[3] is not first[3]  # the sizes are a copy, free to change
    assert len(checker.confirmed) == 1
    other = notes.claims[1]
    confirm(checker, other, "holds", other.rhs, {})
    assert len(checker.confirmed) == 2  # another derivative is proved afresh


def test_verdicts_of_a_file_are_unchanged_by_the_reuse(tmp_path):
    path = tmp_path / "n.claims"
    path.write_text("model elman-softmax\nclaim dL_t/do_t = y_t - onehot(c)\n"
                    "claim dL_t/do_t = y_t - onehot(c)\nclaim dL_t/do_t = 2 * (y_t - onehot(c))\n",
                    encoding="utf-8")
    results = check_file(read_claims(str(path)), isolate=False)
    assert [r.verdict for r in results] == ["holds", "holds", "factor"]
    assert results[0].explanation == results[1].explanation
    assert results[0].entries_proved == results[1].entries_proved > 0


def test_first_run_bench_puts_each_figure_beside_its_target():
    from bench import first_run
    cases = first_run.cases(quick=False, seed=5)
    names = [c["name"] for c in cases]
    assert "verify tests/data/gru.rnn" in names and "report tests/data/lstm.rnn" in names
    assert all("--seed" in c["args"] and "5" in c["args"] for c in cases if c["command"] != "check")
    assert {c["name"]: c["target"] for c in cases}["verify tests/data/gru.rnn"] == 3.0
    assert {c["name"]: c["target"] for c in cases}["show elman-softmax"] == 2.0
    assert not any("gru" in n for n in (c["name"] for c in first_run.cases(quick=True, seed=0)))
    checks = [c for c in cases if c["command"] == "check"]
    assert checks and all(c["args"][-1] == "--json" for c in checks)
    runs = {c["name"]: [{"seconds": 4.0, "cpu": 2.5, "status": 0, "claims": [0.5, 0.1, 0.05]}] for c in cases}
    text = "\n".join(first_run.markdown({"cases": cases, "runs": runs, "repeats": 1, "seed": 5,
                                         "load": ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0)), "seconds": 9.0}))
    assert "| `derive verify tests/data/gru.rnn` | 4.00 s | 2.50 s | 3.00 s | no | 0 |" in text
    assert "| `derive report tests/data/gru.rnn` | 4.00 s | 2.50 s | 30.00 s | yes | 0 |" in text
    assert "median claim 100.00 ms (target 150.00 ms: met)" in text
    assert "seed 5" in text and "Load average" in text


def test_output_written_before_the_fork_is_not_written_twice():
    import subprocess
    import sys
    from pathlib import Path
    script = ("import sys\nfrom derive.report.evidence import start_evidence\n"
              "sys.stdout.write('before')\n"
              "with start_evidence(lambda: 1, fork=True) as e:\n    assert e.result() == 1\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert out.stdout == "before"
