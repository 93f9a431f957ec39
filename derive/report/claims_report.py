"""The report on a claims file (a hand derivation): each claim with its verdict, the truth and a repair."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import __version__
from ..notation.expr import Node
from .claims_check import ClaimRow, check_claims, read_expression
from .derivation_section import adjoint_result
from .document import Doc, Report, begin_document, say
from .latex import breakable, escape_text, sizes_math
from .model_section import model_section
from .typeset import Typesetter

VERDICT_WORDS = {"holds": "holds", "layout": "holds up to layout (transposed)",
                 "factor": "holds up to a constant factor", "partial": "holds for one part only",
                 "shape": "shape error", "wrong": "wrong", "undecided": "undecided"}
"""Each verdict of the claims checker as the report's headings spell it."""


def claims_report(source: str, progress, allow_model_path: bool = False) -> Report:
    """The report on a claims file: every claim beside the truth, the model, and the derived gradients.

    Parameters
    ----------
    source : str
        The claims file.
    progress : text stream or None
        Where to say what is being done.
    allow_model_path : bool
        Let the file's ``model PATH`` leave its folder.

    Returns
    -------
    Report
        The ``.tex`` text, passed when every claim holds.

    Raises
    ------
    InputError
        When the claims file cannot be read.
    """
    from ..calculus.matrix import derive_matrix
    say(progress, "checking every claim")
    model, rows = check_claims(source, progress, allow_model_path)
    derivation = derive_matrix(model)
    doc = Doc()
    begin_document(doc, rf"Checking a hand derivation: \texttt{{{breakable(Path(source).name)}}}",
                   rf"checked by \texttt{{derive {__version__}}}")
    holds = sum(1 for r in rows if r.verdict == "holds")
    doc.para(rf"The file \texttt{{{breakable(source)}}} makes {len(rows)} claim"
             rf"{'s' if len(rows) != 1 else ''} about the gradients of the model "
             rf"\texttt{{{breakable(model.name)}}}; {holds} hold"
             rf"{'s' if holds == 1 else ''}. Each claim is shown as written, typeset, with its verdict, "
             r"the truth beside it and, where one exists, a repair. The truth is the derivation of "
             r"Section~\ref{sec:truth}, proved equal to the exact derivation; a verdict is proved at small "
             r"concrete sizes entry by entry, each entry as an identity by a randomized test modulo a prime "
             r"(with its chance of a false pass) or by SymPy, as each verdict says.")
    typeset = Typesetter(model, derivation)
    doc.add(r"\begin{center}", r"\small", r"\begin{longtable}{rp{0.55\textwidth}l}", r"\toprule",
            r"line & claim as written & verdict \\", r"\midrule", r"\endhead")
    for r in rows:
        doc.add(rf"{r.line} & \texttt{{{escape_text(r.text)}}} & \verdict{{{escape_text(r.verdict)}}} \\")
    doc.add(r"\bottomrule", r"\end{longtable}", r"\end{center}", "")
    doc.add(r"\section{The claims}", "")
    for r in rows:
        claim_block(doc, typeset, r)
    model_section(doc, typeset)
    doc.add(r"\section{The derivation the claims are checked against}\label{sec:truth}", "")
    doc.para(r"The gradients of every quantity, derived and proved as in a full report "
             rf"(\texttt{{derive report {escape_text(model.command_argument())}}} gives every step, the proof, the code "
             r"and the numeric evidence).")
    for name in derivation.order():
        adjoint_result(doc, typeset, typeset.shown.adjoints[name])
    doc.add(r"\end{document}")
    return Report(doc.text(), all(r.verdict == "holds" for r in rows))


def claim_math(typeset: Typesetter, lhs: Optional[Node], rhs: Optional[Node]) -> Optional[str]:
    """``lhs = rhs`` as LaTeX math, or None when either side is missing or cannot be typeset."""
    if lhs is None or rhs is None:
        return None
    try:
        return f"{typeset.tex(lhs)} = {typeset.tex(rhs)}"
    except Exception:
        return None


def claim_block(doc: Doc, typeset: Typesetter, r: ClaimRow):
    """Write one claim: as written, typeset beside the truth, its verdict, explanation and repair."""
    word = VERDICT_WORDS.get(r.verdict, r.verdict)
    doc.add(rf"\subsection*{{Line {r.line}: \verdict{{{escape_text(word)}}}}}", "")
    doc.para(rf"As written: \texttt{{{escape_text(r.text)}}}")
    claimed = claim_math(typeset, r.lhs, r.rhs)
    truth = claim_math(typeset, r.lhs, read_expression(_truth_rhs(r.truth))) if r.truth else None
    doc.add(r"\begin{center}", r"\begin{tabular}{@{}p{0.47\textwidth}p{0.47\textwidth}@{}}",
            r"\textit{claimed} & \textit{truth} \\")
    left = rf"$\displaystyle {claimed}$" if claimed else rf"\texttt{{{escape_text(r.text)}}}"
    if r.verdict == "holds":
        right = "the claim itself"
    elif truth:
        right = rf"$\displaystyle {truth}$"
    elif r.truth:
        right = rf"\texttt{{{escape_text(r.truth)}}}"
    else:
        right = "--"
    doc.add(rf"{left} & {right} \\", r"\end{tabular}", r"\end{center}", "")
    if r.explanation:
        doc.para(escape_text(r.explanation))
    if r.repair:
        shown = claim_math(typeset, r.lhs, read_expression(_truth_rhs(r.repair)))
        edit = f" ({escape_text(r.repair_edit)})" if r.repair_edit else ""
        if shown:
            doc.para(rf"\textbf{{Repair}}{edit}:")
            doc.display(shown)
        else:
            doc.para(rf"\textbf{{Repair}}{edit}: \texttt{{{escape_text(r.repair)}}}")
    if r.sizes_proved and "at sizes" not in (r.explanation or ""):  # the explanation already says where
        doc.para("Proved at " + "; ".join(rf"${sizes_math(s)}$" for s in r.sizes_proved) + ".")


def _truth_rhs(text: str) -> str:
    """The right side of ``dL/dX = ...`` (or the whole text when it has no ``=``)."""
    if text is None:
        return ""
    head, sep, rest = text.partition(" = ")
    return rest if sep and ("/d" in head or "/∂" in head) else text
