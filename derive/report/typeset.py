"""How one model's symbols, equations and gradient sums are typeset in the report."""

from __future__ import annotations

from typing import Dict, List

from ..calculus.matrix import MatrixDerivation, Term
from ..calculus.show import shown_derivation, zero_adjoints
from ..notation.expr import Adj, Binary, Ref, Step
from .latex import LatexPrinter, step_math
from .sizes import batch_dims


class Typesetter:
    """The LaTeX of one model and its derivation, shared by every section of its report.

    Parameters
    ----------
    model : Model
        The model the report is about.
    derivation : MatrixDerivation
        Its gradients.

    Attributes
    ----------
    shown : MatrixDerivation
        The gradients as printed: without the terms proved identically zero
        (:func:`derive.calculus.show.shown_derivation`); ``derivation`` is
        what the proof and the code use.
    zero : set
        Names whose gradient is identically zero.
    tex, shaped, inline : LatexPrinter
        Display math, display math with shapes beneath each symbol, and
        inline math (``\\partial L/\\partial X`` rather than a fraction).
    numbers : dict
        Equation number of every forward equation and every gradient, by name.
    code_lines : dict
        Equation number -> lines of the generated code that compute it
        (empty until the report has generated code).
    batch : set
        Size names that count examples (:func:`~derive.report.sizes.batch_dims`).
    said : set
        Remarks the document has made once and need not repeat.
    """

    def __init__(self, model, derivation: MatrixDerivation):
        self.model = model
        self.derivation = derivation
        self.shown = shown_derivation(derivation)
        self.zero = zero_adjoints(derivation)
        self.tex = LatexPrinter(model)
        self.shaped = LatexPrinter(model, shapes=True)
        self.inline = LatexPrinter(model, inline=True)
        self.numbers = {eq.name: eq.number for eq in model.equations}
        self.numbers.update(derivation.numbers())
        self.code_lines: Dict[int, List[int]] = {}
        self.batch = batch_dims(model)
        self.said: set = set()

    def step_of(self, name: str, at_zero: bool = False):
        """The step ``name`` is written at: ``t`` (or ``0``) for a per-step symbol, None otherwise."""
        if not self.model.symbols[name].per_step:
            return None
        return Step("abs", 0) if at_zero else Step("rel", 0)

    def sym(self, name: str, step=None) -> str:
        """The symbol ``name`` (at ``step``, else at its own step)."""
        return self.tex(Ref(name, step if step is not None else self.step_of(name)))

    def adj(self, name: str, inline: bool = True, step=None) -> str:
        """The gradient ``dL/dname``, inline or as a display fraction."""
        node = Adj(name, step if step is not None else self.step_of(name))
        return (self.inline if inline else self.tex)(node)

    def equation_math(self, eq, shapes: bool = False) -> str:
        """A forward equation ``lhs = rhs``, with shapes beneath the terms when ``shapes``."""
        printer = self.shaped if shapes else self.tex
        lhs = printer(Ref(eq.name, Step("rel", 0) if eq.per_step else None))
        return f"{lhs} = {printer(eq.expr)}"

    def sum_parts(self, terms: List[Term], name: str, printer=None) -> List[str]:
        """The terms of the gradient of ``name``, each typeset, the later ones led by ``+`` or ``-``."""
        printer = printer or self.tex
        per_step = self.model.symbols[name].per_step
        parts = []
        for term in terms:
            text = printer(term.expr)
            if term.summed:
                if isinstance(term.expr, Binary) and term.expr.op in "+-":
                    text = printer.paren(text)
                text = r"\sum_{t=1}^{T} " + text
            if term.at is not None and per_step:
                text = r"\left[t=%s\right]\, %s" % (step_math(term.at), text)
            parts.append(text)
        return [p.replace("+ -", "- ") for p in signed(parts)]

    def sum_terms(self, terms: List[Term], name: str, printer=None) -> str:
        """The terms of the gradient of ``name`` as one sum (``0`` when there are none)."""
        return " ".join(self.sum_parts(terms, name, printer)) or "0"

    def source_text(self, term: Term) -> str:
        """``(3) o_t = W_hy h_t + b_y``: the equation a term comes through."""
        eq = self.model.equation(term.source)
        if eq is None:
            return ""
        return rf"({eq.number}) ${self.equation_math(eq)}$"


def signed(parts: List[str]) -> List[str]:
    """Terms of a sum, each after the first led by ``+`` (or ``-`` when it is negated): ``["a", "+ b", "- c"]``."""
    out = parts[:1]
    for text in parts[1:]:
        out.append("- " + text[1:].lstrip() if text.startswith("-") else "+ " + text)
    return out
