"""Section 3 of a model report: what the symbolic proof proved, size by size."""

from __future__ import annotations

import re

from .document import Doc
from .latex import escape_text, fmt_sci, name_math, sizes_math
from .typeset import Typesetter


def proof_section(doc: Doc, typeset: Typesetter, proof):
    """Write the section on the proof: a table of every recurrence proved at every size.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model and how it is typeset.
    proof : Proof
        What :func:`derive.calculus.prove.prove` found.
    """
    doc.add(r"\section{What was proved}\label{sec:proof}", "")
    doc.para(r"Every line of Section~2 is dimension-generic. To prove it, the model is unrolled at small "
             r"concrete sizes into scalar expressions (SymPy), the exact elementwise reverse sweep is done "
             r"by differentiation, and every entry of every recurrence, at every step, is shown equal to "
             r"the exact adjoint as a symbolic identity. A 50-digit evaluation at a random point is a "
             r"second, independent witness. Distinct sizes per dimension make a misplaced transpose fail "
             r"to conform.")
    groups = [("", proof.sizes)]
    if proof.generic_sizes:
        groups.append((" (generic forms, before the softmax + cross-entropy simplification)",
                       proof.generic_sizes))
    for title, size_proofs in groups:
        if not size_proofs:
            continue
        names = [line.name for line in size_proofs[0].lines]
        cols = "l" + "c" * len(size_proofs)
        doc.add(r"\begin{center}", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule")
        head = " & ".join(rf"${sizes_math(p.sizes)}$" for p in size_proofs)
        doc.add(rf"recurrence{escape_text(title) if False else ''} & {head} \\", r"\midrule")
        for name in names:
            cells = []
            for p in size_proofs:
                line = next((x for x in p.lines if x.name == name), None)
                if line is None:
                    cells.append("--")
                elif line.holds:
                    cells.append(rf"{line.entries} entries, proved")
                else:
                    cells.append(rf"\textbf{{FAILS}} ({escape_text(', '.join(line.failures[:3]))})")
            doc.add(rf"({typeset.numbers[name]}) ${typeset.adj(name)}$ & " + " & ".join(cells) + r" \\")
        wit = " & ".join(witness_text(p.witness_max_rel) for p in size_proofs)
        doc.add(r"\midrule", rf"50-digit witness, largest relative gap & {wit} \\", r"\bottomrule",
                r"\end{tabular}", r"\end{center}", "")
        if title:
            doc.para("The table above is for the forms" + escape_text(title) + ".")
        classes = [p for p in size_proofs if p.classes]
        if classes and not title:
            doc.para("Class targets drawn for the proof: " + "; ".join(
                rf"${sizes_math(p.sizes)}$: " + ", ".join(
                    rf"${class_math(k)} = {v[0] if len(v) == 1 else v}$"
                    for k, v in p.classes.items()) for p in classes) + ".")
    doc.para(r"\textbf{Result: " + ("every recurrence proved at every size above.}" if proof.holds
                                    else "NOT PROVED} -- see the failures in the table."))


def witness_text(gap: float) -> str:
    """The witness gap, rounded so the report does not depend on the last digits."""
    if gap < 1e-40:
        return r"$< 10^{-40}$"
    return "$" + fmt_sci(gap, 1) + "$"


def class_math(key: str) -> str:
    """A class target of the proof in LaTeX: ``c_3`` (per step, at step 3) or ``k`` (one for all steps)."""
    per_step = re.fullmatch(r"(.+)_(\d+)", key)
    return name_math(per_step.group(1), per_step.group(2)) if per_step else name_math(key)

