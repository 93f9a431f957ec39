"""Section 1 of a model report (a claims report shows it too): the model, its symbols and equations."""

from __future__ import annotations

from ..notation.expr import Ref, Step
from .document import Doc, listing
from .latex import breakable, dim_math, shape_math, sizes_math
from .typeset import Typesetter


def model_section(doc: Doc, typeset: Typesetter):
    """Write the section on the model: a table of its symbols, its sizes, its equations and its source.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model and how it is typeset.
    """
    m = typeset.model
    doc.add(r"\section{The model}", "")
    where = breakable(m.path)
    doc.para(rf"Model \texttt{{{breakable(m.name)}}}, read from \texttt{{{where}}}. "
             r"Every symbol is a matrix; a per-step quantity $X_t$ exists at $t = 1, \dots, T$ "
             r"(a state also at $t = 0$).")
    doc.add(r"\begin{center}", r"\begin{tabular}{llll}", r"\toprule",
            r"symbol & kind & shape & \\", r"\midrule")
    for s in m.symbols.values():
        if s.kind == "quantity":
            continue
        step = Step("rel", 0) if s.per_step else None
        shape = s.shape
        if s.classes is not None:
            kind_note = rf"one class out of ${dim_math(s.classes)}$ per column"
        elif s.kind == "state":
            kind_note = rf"initial value ${typeset.sym(s.name, Step('abs', 0))}$ (0 unless given)"
        elif s.kind == "param":
            kind_note = "shared by every step" if m.has_steps else ""
        else:
            kind_note = "one per step" if s.per_step else ""
        doc.add(rf"${typeset.tex(Ref(s.name, step))}$ & {s.kind} & ${shape_math(shape)}$ & {kind_note} \\")
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    if m.sizes:
        known = {k: v for k, v in m.sizes.items() if v is not None}
        if known:
            doc.para(rf"Sizes for the numeric work: ${sizes_math(known)}$. "
                     "The derivation itself holds for every size.")
    doc.para(r"The forward equations, with the shape of every term set beneath it "
             r"(as the notes write \texttt{hdx1  hdxhd  hdx1 ...} above the terms). "
             r"Per-step equations hold for $t = 1, \dots, T$.")
    doc.add(r"\begin{align*}")
    rows = []
    for eq in m.equations:
        lhs, rhs = typeset.equation_math(eq, shapes=True).split(" = ", 1)
        rows.append(f"{lhs} &= {rhs} \\tag{{{eq.number}}}")
    doc.add(" \\\\\n".join(rows))
    doc.add(r"\end{align*}", "")
    listing(doc, m.source, "The model as written")
