"""``derive report``: .tex output, PDF compile, the text of the PDF, determinism, no-TeX failure."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from derive.report import run as report_mod
from derive.report.run import build_report, run_report

HERE = Path(__file__).parent
CLAIMS = HERE / "data" / "report_claims.claims"
ODD = HERE / "data" / "odd_names.rnn"
EXAMPLES = sorted((HERE.parent / "examples").glob("*.claims"))

needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                               reason="latexmk and pdftotext are not installed")

# elman-regression at its own sizes (B = 8317) costs minutes of finite differences;
# the tests use a smaller batch (the report states the sizes it used).
REGRESSION_SIZES = {"H": 6, "F": 1, "O": 1, "T": 6, "B": 16}


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, stdout=subprocess.PIPE)
    return " ".join(out.stdout.decode("utf-8").split())


def run(source, output, **kw):
    out, err = io.StringIO(), io.StringIO()
    status = run_report(str(source), str(output), 0, out, err, **kw)
    return status, err.getvalue()


@needs_tex
def test_pdf_elman_softmax(tmp_path):
    pdf = tmp_path / "softmax.pdf"
    status, err = run("elman-softmax", pdf)
    assert status == 0, err
    assert pdf.read_bytes().startswith(b"%PDF")
    text = pdf_text(pdf)
    for expected in ["The model", "step by step", "What was proved", "generated NumPy code",
                     "Numeric evidence", "Figures",
                     "softmax + cross-entropy", "recurrent term", "every recurrence proved",
                     "dL_dh[t] = W_hy.T @ dL_do[t]", "(11) dL/dh_t = W_hy.T @ dL/do_t",
                     "hand BPTT", "complex step", "every numeric check agrees",
                     "y_t - one_hot(c)"]:
        assert expected in text, expected
    assert "(17)" in text  # the last gradient's equation number, as in the code comments


@needs_tex
def test_pdf_elman_regression(tmp_path):
    pdf = tmp_path / "regression.pdf"
    status, err = run("elman-regression", pdf, sizes=REGRESSION_SIZES)
    assert status == 0, err
    text = pdf_text(pdf)
    for expected in ["outer products", "runs over the batch", "rowsum", "recurrent term",
                     "dL_dW_hy += dL_dy @ h[T].T", "B = 16", "every numeric check agrees"]:
        assert expected in text, expected


@needs_tex
def test_pdf_claims(tmp_path):
    notes = CLAIMS
    pdf = tmp_path / "claims.pdf"
    status, err = run(notes, pdf)
    assert status == 1, err  # some claims do not hold
    text = pdf_text(pdf)
    for expected in ["Line 5: holds", "Line 6: holds for one part only", "Line 7: shape error",
                     "Line 8: wrong", "dL/dh_t = W_hy.T @ dL/do_t", "missing", "Repair",
                     "claimed", "truth", "The derivation the claims are checked against"]:
        assert expected in text, expected


@needs_tex
@pytest.mark.parametrize("notes", EXAMPLES, ids=lambda p: p.name)
def test_pdf_example_claims(tmp_path, notes):
    pdf = tmp_path / "example.pdf"
    status, err = run(notes, pdf)
    assert status in (0, 1), err
    text = pdf_text(pdf)
    _, rows = report_mod.check_claims(str(notes))
    for row in rows:
        heading = f"Line {row.line}: {report_mod.VERDICT_WORDS[row.verdict]}"
        assert heading in text, heading
    assert status == (0 if all(r.verdict == "holds" for r in rows) else 1)


@needs_tex
def test_pdf_odd_names(tmp_path):
    pdf = tmp_path / "odd.pdf"
    status, err = run(ODD, pdf)
    assert status == 0, err
    text = pdf_text(pdf)
    for expected in ["W_h_2x", "W_in__x", "b_", "y_true_", "odd_names"]:
        assert expected in text, expected


def test_tex_is_deterministic_and_escaped(tmp_path):
    first = tmp_path / "a.tex"
    second = tmp_path / "b.tex"
    assert run(ODD, first)[0] == 0
    assert run(ODD, second)[0] == 0
    assert first.read_bytes() == second.read_bytes()
    tex = first.read_text(encoding="ascii")  # pure ASCII source
    assert r"\char95" in tex and r"\tag{4}" in tex
    assert "seconds" not in tex and r"\today" not in tex


def test_no_tex_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(report_mod, "tex_engine", lambda: None)
    pdf = tmp_path / "x.pdf"
    status, err = run(ODD, pdf)
    assert status == 2
    assert "no TeX engine" in err and "-o FILE.tex" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_output_and_input(tmp_path):
    assert run(ODD, tmp_path / "x.docx")[0] == 2
    status, err = run(tmp_path / "missing.rnn", tmp_path / "x.tex")
    assert status == 2 and "missing.rnn" in err
    assert list(tmp_path.iterdir()) == []


def test_failed_compile_leaves_nothing(tmp_path, monkeypatch):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    monkeypatch.setattr(report_mod, "build_report",
                        lambda *a, **k: report_mod.Report("\\documentclass{article}\\begin{document}\\undefined"
                                                          "\\end{document}\n", True))
    status, err = run(ODD, tmp_path / "x.pdf")
    assert status == 2 and "pdflatex failed" in err
    assert list(tmp_path.iterdir()) == []


def test_tex_sections_for_claims():
    rep = build_report(str(CLAIMS))
    assert not rep.passed
    assert r"\section{The claims}" in rep.tex and r"\verdict{partial}" in rep.tex


@needs_tex
def test_pdf_is_reproducible(tmp_path):
    tex = build_report(str(ODD)).tex
    report_mod.compile_pdf(tex, str(tmp_path / "a.pdf"))
    report_mod.compile_pdf(tex, str(tmp_path / "b.pdf"))
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_report_on_claims_takes_allow_model_path_as_check_does(tmp_path, capsys):
    from derive.cli import main
    (tmp_path / "cell.rnn").write_text((Path(__file__).parent / "data" / "gru.rnn").read_text())
    (tmp_path / "sub").mkdir()
    notes = tmp_path / "sub" / "n.claims"
    notes.write_text("model ../cell.rnn\nclaim dL/dh_T = dL/dh_T\n")
    out = tmp_path / "r.tex"
    assert main(["report", str(notes), "-o", str(out)]) == 2
    assert "leads out of the claims file's folder" in capsys.readouterr().err and not out.exists()
    assert main(["report", str(notes), "-o", str(out), "--allow-model-path"]) in (0, 1)
    assert out.exists()


def test_report_refuses_sizes_the_model_does_not_have_and_past_its_memory(tmp_path, capsys):
    from derive.cli import main
    out = tmp_path / "r.tex"
    assert main(["report", "elman-softmax", "-o", str(out), "--size", "Z=2"]) == 2
    assert "--size names Z, which the model does not declare" in capsys.readouterr().err
    assert main(["report", "elman-regression", "-o", str(out), "--memory", "0.1"]) == 2
    assert "limit 0.1 GiB" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
