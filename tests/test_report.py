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
    (tmp_path / "cell.rnn").write_text((Path(__file__).parent / "data" / "anchored.rnn").read_text())
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


def derivation_tex(source) -> str:
    """The model and derivation sections of a report only (no proof, no numerics: fast)."""
    from derive.calculus.matrix import derive_matrix
    from derive.model.build import load_model
    from derive.report.derivation_section import derivation_section
    from derive.report.document import Doc, begin_document
    from derive.report.model_section import model_section
    from derive.report.typeset import Typesetter
    model = load_model(str(source))
    typeset = Typesetter(model, derive_matrix(model))
    doc = Doc()
    begin_document(doc, "t", "")
    model_section(doc, typeset)
    derivation_section(doc, typeset)
    return doc.text()


def test_a_long_sum_is_broken_over_lines_and_a_short_one_is_not():
    from derive.report.document import Doc
    doc = Doc()
    doc.display_sum("y", ["a", "+ b"], 3)
    assert doc.lines == [r"\begin{equation*}", r"y = a + b \tag{3}", r"\end{equation*}"]
    doc = Doc()
    long_term = r"W^{\top} \left(\frac{\partial L}{\partial h_{t+1}} \odot \left(1 - h_{t+1}^{2}\right)\right)"
    doc.display_sum("y", [long_term] + ["+ " + long_term] * 5, 4)
    math = doc.lines[1]
    assert math.startswith(r"\begin{split}") and math.endswith(r"\end{split} \tag{4}")
    rows = math.split("\\\\\n")
    assert len(rows) >= 3 and rows[0].startswith("\\begin{split}\ny &=") and rows[1].startswith(r"&\quad {} + ")
    assert math.count(long_term) == 6  # every term kept, in order


def test_batch_sums_are_spelled_for_columns_and_rows():
    # column layout: b_h broadcast over the B columns, its gradient sums the columns (C 1_B)
    tex = derivation_tex("elman-regression")
    assert r"\operatorname{rowsum}(C) = C\,\mathbf{1}_{B}" in tex
    assert tex.count("this is why the notes find a matmul") == 1  # said once, then briefly
    # row layout: b_h is 1 x H over the B rows, its gradient sums the rows (1_B^T C), not C 1_B
    tex = derivation_tex(HERE / "data" / "rowmajor.rnn")
    assert r"\operatorname{colsum}(C) = \mathbf{1}_{B}^{\top} C" in tex and r"C\,\mathbf{1}_{B}" not in tex


def test_the_notes_sum_over_steps_is_cited_once():
    tex = derivation_tex("elman-softmax")
    assert tex.count("dL/dWhh (t = 1) + dL/dWhh (t = 2)") == 1
    assert tex.count("so the gradient sums the uses over the steps") == 5  # W_hh, W_xh, b_h, W_hy, b_y


def test_an_initial_state_read_at_every_step_is_named_as_such():
    tex = derivation_tex(HERE / "data" / "anchored.rnn")
    assert r"$h_{0}$ is used at every step $t$" in tex
    assert "Together, for $t = 1, \\dots, T$:" in tex and "and so does equation (1) directly" in tex
    assert "only the next step reads the initial state" not in tex


def test_the_code_table_names_forward_quantities_too():
    from derive.calculus.matrix import derive_matrix
    from derive.model.build import load_model
    from derive.report.code_section import code_section, generate_code
    from derive.report.document import Doc
    from derive.report.typeset import Typesetter
    model = load_model("elman-softmax")
    derivation = derive_matrix(model)
    doc = Doc()
    code_section(doc, Typesetter(model, derivation), generate_code(model, derivation))
    rows = [line for line in doc.lines if line.startswith("(")]
    assert rows[0].startswith("(1) & $z_{t}$ & ") and rows[5].startswith("(6) & $L$ & ")
    assert all(row.split(" & ")[1] for row in rows)  # no empty quantity


ZERO_USE = ("size H = 2, T = 3\nparam W : H x H\nparam V : H x H\ninput x_t : H x 1\nstate h_t : H x 1 = 0\n"
            "h_t = tanh(W @ h_{t-1} + x_t)\nq_t = V @ h_t\nL = sum(h_T)\n")


def test_terms_proved_zero_are_left_out_of_show_and_the_report(tmp_path):
    # q_t never reaches L: dL/dq_t = 0, so V.T @ dL/dq_t in dL/dh_t and all of dL/dV are zero
    from derive.calculus.matrix import derive_matrix
    from derive.calculus.show import format_show, zero_adjoints
    from derive.model.build import load_model
    from derive.verify.run import verify
    path = tmp_path / "zero_use.rnn"
    path.write_text(ZERO_USE)
    model = load_model(str(path))
    derivation = derive_matrix(model)
    assert zero_adjoints(derivation) == {"q_t", "V"}
    assert any(t.source == "q_t" for t in derivation.adjoints["h_t"].terms)  # derived, and proved, as usual
    text = format_show(model, derivation, None)
    assert "dL/dq_t" not in text.split("identically zero")[0]
    assert "dL/dh_t = [t = T] ones_like(h_T) + W.T @ (dL/dh_{t+1} * (1 - h_{t+1}**2))" in text
    assert "dL/dV = 0" in text and "left out: dL/dq_t" in text
    tex = derivation_tex(path)
    steps, note = tex.split(r"\subsection*{(5)")[1].split(r"\subsection*{(6)")[0].split("The use of")
    assert r"\partial q_{t}" not in steps  # dL/dh_t's steps and sum: no term through dL/dq_t
    assert note.startswith(r" $h_{t}$ by equation (2) contributes nothing") and r"\partial q_{t}" in note
    # the numbers agree: the generated gradient of V, with the terms the printed text leaves out, is zero
    result = verify(model, derivation, dict(model.sizes), seed=0)
    assert result.passed
    assert all(r.max_abs_error == 0.0 for r in result.rows if r.parameter == "V")


def test_models_without_zero_terms_print_as_before():
    from derive.calculus.matrix import derive_matrix
    from derive.calculus.show import shown_derivation, zero_adjoints
    from derive.model.build import load_model
    for source in ["elman-softmax", "elman-regression"] + sorted(str(p) for p in (HERE / "data").glob("*.rnn")):
        derivation = derive_matrix(load_model(source))
        assert not zero_adjoints(derivation) and shown_derivation(derivation) is derivation, source


def test_the_report_code_has_no_dead_branches():
    package = HERE.parent / "derive" / "report"
    assert not [p.name for p in package.glob("*.py") if "if False" in p.read_text(encoding="utf-8")]


def test_the_proof_table_fits_any_number_of_sizes_and_lists_what_failed():
    from derive.calculus.matrix import derive_matrix
    from derive.calculus.prove import LineProof, Proof, SizeProof
    from derive.model.build import load_model
    from derive.report.document import Doc
    from derive.report.proof_section import proof_section
    from derive.report.typeset import Typesetter
    model = load_model(str(HERE / "data" / "gru.rnn"))
    typeset = Typesetter(model, derive_matrix(model))
    names = list(typeset.derivation.order())
    sizes = [{"H": 2 + k, "F": 3, "O": 4, "T": 3, "B": 5} for k in range(3)]
    proof = Proof([SizeProof(s, [LineProof(n, s, 6, ["h[0,1] at t=2"] if (k, n) == (1, "h_t") else [])
                                 for n in names], 0.0, 1.0) for k, s in enumerate(sizes)])
    doc = Doc()
    proof_section(doc, typeset, proof)
    tex = doc.text()
    # the sizes are listed above the table, its columns are (a), (b), (c): as narrow with five sizes as with one
    assert r"recurrence & (a) & (b) & (c) \\" in tex and "(b) $H=3" in tex
    row = next(line for line in tex.splitlines() if line.startswith(f"({typeset.numbers['h_t']}) "))
    assert row.endswith(r"& 6 & \textbf{FAILS} & 6 \\")
    assert "Entries that failed: $\\partial L/\\partial h_{t}$ at (b): \\texttt{h[0,1] at t=2}." in tex
    assert "NOT PROVED" in tex
