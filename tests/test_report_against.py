"""``derive report MODEL --against IMPL``: the report ends with what ``derive against`` found on the user's code."""

from __future__ import annotations

from pathlib import Path

from derive.cli import main
from derive.report.against_section import with_against
from derive.report.document import Doc, Report, begin_document
from test_report_pages import compile_log, needs_tex, overfull

EXAMPLE = Path(__file__).parent.parent / "examples" / "against" / "elman_softmax.py"


def _implementation(tmp_path, slip: str = "") -> str:
    """The NumPy example of docs/against.md; with ``slip``, the recurrent term of dL/dh_t left out."""
    text = EXAMPLE.read_text(encoding="utf-8")
    if slip:
        assert text.count("dh = W_hy.T @ do + dh_next") == 1
        text = text.replace("dh = W_hy.T @ do + dh_next", "dh = W_hy.T @ do")
    path = tmp_path / f"impl{slip}.py"
    path.write_text(text, encoding="utf-8")
    return f"{path}:loss_and_gradients"


def _bare_report() -> Report:
    doc = Doc()
    begin_document(doc, "against", "")
    doc.add(r"\end{document}")
    return Report(doc.text(), True)


def test_a_wrong_implementation_gets_its_table_figures_sweep_and_slip(tmp_path):
    report = with_against(_bare_report(), "elman-softmax", _implementation(tmp_path, "_slip"), None, 0, None)
    assert not report.passed
    tex = report.tex
    assert tex.count(r"\end{document}") == 1 and tex.rstrip().endswith(r"\end{document}")
    assert r"\section{Your implementation}" in tex
    assert r"$W_{\mathit{hh}}$ & 16 &" in tex and r"\textbf{wrong} (16 of 16)" in tex
    assert r"$W_{\mathit{hy}}$ & 20 & $0$ & $0$ & agrees" in tex
    assert "fig:against-heat" in tex and "fig:against-steps" in tex
    assert "right for T = 1, wrong from T = 2: the recurrent path" in tex
    assert "a missing recurrent term" in tex


def test_a_right_implementation_keeps_the_reports_verdict(tmp_path):
    report = with_against(_bare_report(), "elman-softmax", _implementation(tmp_path), None, 0, None)
    assert report.passed and "every gradient compared agrees" in report.tex


def test_the_command_writes_the_section_and_says_a_check_failed(tmp_path, capsys):
    out = tmp_path / "report.tex"
    status = main(["report", "elman-softmax", "-o", str(out), "--against", _implementation(tmp_path, "_slip")])
    assert status == 1 and r"\section{Your implementation}" in out.read_text(encoding="utf-8")
    assert "a check failed" in capsys.readouterr().err


def test_a_claims_file_cannot_be_compared_with_an_implementation(tmp_path, capsys):
    claims = Path(__file__).parent.parent / "examples" / "seed002_softmax_rnn.claims"
    out = tmp_path / "report.tex"
    assert main(["report", str(claims), "-o", str(out), "--against", _implementation(tmp_path)]) == 2
    assert "give a model, not a claims file" in capsys.readouterr().err and not out.exists()


@needs_tex
def test_the_section_fits_the_page(tmp_path):
    tex = with_against(_bare_report(), "elman-softmax", _implementation(tmp_path, "_slip"), None, 0, None).tex
    assert not overfull(compile_log(tex, tmp_path), tex)


def test_an_answered_case_directory_is_compared_without_running_anything(tmp_path):
    import numpy as np

    from derive.numeric import elman_softmax_loss_and_gradients
    from test_against_files import _answer
    case = tmp_path / "case"
    assert main(["against", "elman-softmax", "--write-case", str(case)]) == 0
    with np.load(case / "case.npz") as z:
        params = {k[6:]: z[k] for k in z.files if k.startswith("param.")}
        data = {k[5:]: z[k] for k in z.files if k.startswith("data.")}
    loss, grads = elman_softmax_loss_and_gradients(params, data)
    grads = dict(grads)
    grads["b_y"] = grads["b_y"] * 2
    _answer(case, grads, loss)
    report = with_against(_bare_report(), "elman-softmax", str(case), None, 0, None)
    assert not report.passed and r"$b_{y}$ & 5 &" in report.tex and r"\textbf{wrong} (5 of 5)" in report.tex
    assert "no T sweep: write the case with --sweep-cases" in report.tex.replace(r"{\ttfamily\char45}", "-")


def test_no_series_of_a_line_plot_is_pushed_sideways_by_a_line_end():
    # found by a newcomer: in a picture a line's end is a space, and it moved each later series to the right
    from derive.report.figures import Axes, line_plot
    pic = line_plot([("a", [(1.0, 0.0), (2.0, 1.0)]), ("b", [(1.0, 1.0), (2.0, 0.0)])], Axes(0.5, 2.5, 0, 1),
                    [(1.0, "1"), (2.0, "2")], [(0.0, "0"), (1.0, "1")], "x", "y")
    inside = pic.splitlines()[2:-1]  # between \begin{picture} and \end{picture}
    assert all(line.startswith(r"\put") or line.startswith(r"\multiput") or line.startswith(r"\qbezier")
               or line.endswith("%") for line in inside), [ln for ln in inside if not ln.endswith("%")][:3]
