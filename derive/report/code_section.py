"""Section 4 of a model report: the generated NumPy code, with the lines of every equation."""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from .document import Doc, listing
from .latex import escape_text
from .typeset import Typesetter


def generate_code(model, derivation) -> Optional[str]:
    """The readable NumPy module for ``model``, or None when code generation does not support it."""
    from ..emit.readable import generate_module
    try:
        return generate_module(model, derivation)
    except NotImplementedError:
        return None


def code_index(code: str) -> Dict[int, List[int]]:
    """Equation number -> line numbers of the statements that compute it (the line after each ``# (n)``)."""
    out: Dict[int, List[int]] = {}
    lines = code.splitlines()
    for k, line in enumerate(lines):
        m = re.match(r"\s*# \((\d+)\) ", line)
        if not m:
            continue
        j = k + 1
        if j < len(lines) and lines[j].strip().startswith("if "):
            j += 1
        out.setdefault(int(m.group(1)), []).append(j + 1)
    return out


def code_section(doc: Doc, typeset: Typesetter, code: Optional[str]):
    """Write the section on the generated code: which lines compute which equation, then the code.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model and how it is typeset.
    code : str or None
        The generated module, or None when there is none.
    """
    doc.add(r"\section{The generated NumPy code}\label{sec:code}", "")
    if code is None:
        doc.para(r"Code generation does not support this model yet, so there is no code and no numeric "
                 r"evidence.")
        return
    doc.para(rf"\texttt{{derive code {escape_text(typeset.model.command_argument())}}} emits the module below. It imports NumPy "
             r"only, runs one loop forward and one backward over time, vectorised over the batch, and "
             r"exposes \texttt{loss(params, data)} and \texttt{loss{\ttfamily\char95}and{\ttfamily\char95}gradients(params, data)}. "
             r"Each statement is preceded by a comment \texttt{\# (n)} naming the equation it computes; "
             r"the table ties every equation to its lines.")
    idx = code_index(code)
    doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{lll}", r"\toprule",
            r"equation & quantity & code lines \\", r"\midrule")
    forward = {eq.number: eq.name for eq in typeset.model.equations}
    gradients = {n: name for name, n in typeset.derivation.numbers().items()}
    for n in sorted(idx):
        what = ""
        if n in gradients:
            what = rf"${typeset.adj(gradients[n])}$"
        elif n in forward:
            what = rf"${typeset.sym(forward[n])}$"
        doc.add(rf"({n}) & {what} & {', '.join(str(x) for x in idx[n])} \\")
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    listing(doc, code, f"derive code {typeset.model.command_argument()}", numbers=True)
