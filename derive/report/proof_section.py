"""Section 3 of a model report: what the proof proved, size by size."""

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
             r"the exact adjoint as an identity. " + _method(proof) + r" A 50-digit evaluation at a random "
             r"point is a second, independent witness. Distinct sizes per dimension make a misplaced "
             r"transpose fail to conform.")
    groups = [("", proof.sizes)]
    if proof.generic_sizes:
        groups.append(("For the generic forms, before the softmax + cross-entropy simplification:",
                       proof.generic_sizes))
    for title, size_proofs in groups:
        if size_proofs:
            proof_table(doc, typeset, size_proofs, title)
    doc.para(r"\textbf{Result: " + ("every recurrence proved at every size above.}" if proof.holds
                                    else "NOT PROVED} -- see the failures in the table."))


def _method(proof) -> str:
    """How the entries were shown equal, with the randomized test's bound (as ``derive show`` says it)."""
    if proof.randomized == 0:
        return r"Each entry is a symbolic identity (SymPy)."
    return (rf"{proof.randomized} of {proof.entries} entries were shown by a randomized identity test: both "
            r"sides evaluated exactly modulo the prime $2^{61}-1$ at two independent random points, every "
            r"function application a variable of its own; the chance that a false identity passed is below "
            rf"${fmt_sci(max(proof.failure_bound, 1e-300))}$ (Schwartz--Zippel). "
            rf"{proof.entries - proof.randomized} were proved as symbolic identities (SymPy).")


def proof_table(doc: Doc, typeset: Typesetter, size_proofs, title: str = ""):
    """One table of proved entries: a row per recurrence, a column per size combination (a), (b), ...

    The sizes are listed above the table rather than in its header, so that
    a model with many sizes still fits the page; a recurrence that failed
    shows FAILS, with the entries that failed listed beneath the table.
    """
    labels = [f"({chr(ord('a') + k)})" for k in range(len(size_proofs))]
    sizes = "; ".join(rf"{lab} ${sizes_math(p.sizes)}$" for lab, p in zip(labels, size_proofs))
    doc.para((title + " " if title else "") + "Entries proved equal to the exact derivation at the sizes "
             + sizes + ".")
    cols = "l" + "r" * len(size_proofs)
    doc.add(r"{\small", rf"\begin{{longtable}}{{{cols}}}", r"\toprule",
            "recurrence & " + " & ".join(labels) + r" \\", r"\midrule", r"\endhead")
    failed = []
    for name in [line.name for line in size_proofs[0].lines]:
        cells = []
        for lab, p in zip(labels, size_proofs):
            line = next((x for x in p.lines if x.name == name), None)
            if line is None:
                cells.append("--")
            elif line.holds:
                cells.append(str(line.entries))
            else:
                cells.append(r"\textbf{FAILS}")
                where = escape_text(", ".join(line.failures[:3]))
                failed.append(rf"${typeset.adj(name)}$ at {lab}: \texttt{{{where}}}")
        doc.add(rf"({typeset.numbers[name]}) ${typeset.adj(name)}$ & " + " & ".join(cells) + r" \\")
    wit = " & ".join(witness_text(p.witness_max_rel) for p in size_proofs)
    doc.add(r"\midrule", rf"50-digit witness gap & {wit} \\", r"\bottomrule", r"\end{longtable}}", "")
    if failed:
        doc.para("Entries that failed: " + "; ".join(failed) + ".")
    classes = [(lab, p) for lab, p in zip(labels, size_proofs) if p.classes]
    if classes and not title:
        doc.para("Class targets drawn for the proof: " + "; ".join(
            f"{lab} " + ", ".join(
                rf"${class_math(k)} = {v[0] if len(v) == 1 else v}$"
                for k, v in p.classes.items()) for lab, p in classes) + ".")


def witness_text(gap: float) -> str:
    """The witness gap, rounded so the report does not depend on the last digits."""
    if gap < 1e-40:
        return r"$< 10^{-40}$"
    return "$" + fmt_sci(gap, 1) + "$"


def class_math(key: str) -> str:
    """A class target of the proof in LaTeX: ``c_3`` (per step, at step 3) or ``k`` (one for all steps)."""
    per_step = re.fullmatch(r"(.+)_(\d+)", key)
    return name_math(per_step.group(1), per_step.group(2)) if per_step else name_math(key)

