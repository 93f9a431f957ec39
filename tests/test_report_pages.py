"""Report pages a reader can read: no line, table or formula of a compiled report runs off the page.

Every report is compiled once and TeX's own measure is read from the log: an
``Overfull \\hbox`` is a line, table row or display wider than the text. The
tolerance is 1pt (0.35 mm): less than a glyph's side bearing, invisible in
print, while every overflow that hid something (a cut table column, a sum
running into the margin) measured 14pt or more. TeX itself reports nothing
below ``\\hfuzz`` = 0.1pt.

Full reports (proof, numeric evidence, figures) are built for the built-in
models, the small test models and two claims files. The GRU and LSTM models
take two minutes each to prove, so here only their model and derivation
sections, where their long formulas are, are compiled; set
``DERIVE_SLOW_TESTS=1`` to build their full reports too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from derive.calculus.matrix import derive_matrix
from derive.model.build import load_model
from derive.report.derivation_section import derivation_section
from derive.report.document import Doc, begin_document
from derive.report.model_section import model_section
from derive.report.run import build_report, tex_engine
from derive.report.typeset import Typesetter

HERE = Path(__file__).parent
DATA = HERE / "data"
TOLERANCE_PT = 1.0
SLOW = ("gru", "lstm")
SIZES = {"elman-regression": {"H": 6, "F": 1, "O": 1, "T": 6, "B": 16}}  # B = 8317 costs minutes

MODELS = ["elman-softmax", "elman-regression"] + [str(p) for p in sorted(DATA.glob("*.rnn")) if p.stem not in SLOW]
CLAIMS = [str(HERE.parent / "examples" / "seed002_softmax_rnn.claims"), str(DATA / "report_claims.claims")]

needs_tex = pytest.mark.skipif(tex_engine() is None, reason="no TeX engine (latexmk or pdflatex)")


def compile_log(tex: str, folder: Path) -> str:
    """Compile ``tex`` in ``folder`` as the report does (twice for pdflatex, so longtable settles); the log."""
    engine = tex_engine()
    (folder / "report.tex").write_text(tex, encoding="utf-8")
    for _ in range(1 if engine[0] == "latexmk" else 2):
        proc = subprocess.run(engine + ["report.tex"], cwd=folder, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-2000:]
    return (folder / "report.log").read_text(errors="replace")


def overfull(log: str, tex: str):
    """Every ``Overfull \\hbox`` wider than the tolerance, as ``(points, the source lines)``."""
    lines = tex.splitlines()
    out = []
    for m in re.finditer(r"Overfull \\hbox \(([\d.]+)pt too wide\) (?:in paragraph at lines (\d+)--(\d+)|"
                         r"detected at line (\d+))", log):
        if float(m.group(1)) > TOLERANCE_PT:
            first = int(m.group(2) or m.group(4))
            last = int(m.group(3) or m.group(4))
            out.append((float(m.group(1)), " / ".join(lines[first - 1:last])[:300]))
    return out


def derivation_tex(source: str) -> str:
    """A document of a model's model and derivation sections only (no proof, no numerics)."""
    model = load_model(source)
    typeset = Typesetter(model, derive_matrix(model))
    doc = Doc()
    begin_document(doc, "layout", "")
    model_section(doc, typeset)
    derivation_section(doc, typeset)
    doc.add(r"\end{document}")
    return doc.text()


@needs_tex
@pytest.mark.parametrize("source", MODELS + CLAIMS, ids=lambda s: Path(s).stem)
def test_no_line_of_a_report_runs_off_the_page(tmp_path, source):
    tex = build_report(source, sizes=SIZES.get(source)).tex
    log = compile_log(tex, tmp_path)
    assert "Overfull \\hbox" not in log or not overfull(log, tex), overfull(log, tex)
    prose = re.sub(r"\\begin\{lstlisting\}.*?\\end\{lstlisting\}", "", tex, flags=re.S)  # the code may say None
    assert "None" not in prose and "char95}d..." not in prose  # no c_None, no "the dL_d... array"


@needs_tex
@pytest.mark.parametrize("name", SLOW)
def test_the_long_formulas_of_gru_and_lstm_are_broken_over_lines(tmp_path, name):
    tex = derivation_tex(str(DATA / f"{name}.rnn"))
    assert tex == derivation_tex(str(DATA / f"{name}.rnn"))  # deterministic
    assert r"\begin{split}" in tex  # their sums are too long for one line
    assert not overfull(compile_log(tex, tmp_path), tex)


@needs_tex
@pytest.mark.skipif(not os.environ.get("DERIVE_SLOW_TESTS"), reason="set DERIVE_SLOW_TESTS=1 (minutes per model)")
@pytest.mark.parametrize("name", SLOW)
def test_full_reports_of_gru_and_lstm_fit_the_page(tmp_path, name):
    tex = build_report(str(DATA / f"{name}.rnn")).tex
    assert not overfull(compile_log(tex, tmp_path), tex)


def test_the_log_reader_sees_an_overfull_line(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    tex = ("\\documentclass{article}\\begin{document}\n\\[ " + " + ".join(["x_{%d}" % k for k in range(90)])
           + " \\]\n\\end{document}\n")
    found = overfull(compile_log(tex, tmp_path), tex)
    assert len(found) == 1 and found[0][0] > 100 and "x_{1}" in found[0][1]
