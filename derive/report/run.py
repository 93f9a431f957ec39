"""``derive report``: the derivation as a LaTeX document, checked by the machine.

:func:`build_report` assembles the ``.tex`` text (deterministic: no dates,
no timings); :func:`run_report` writes it, or compiles it to PDF in a
temporary directory and moves the PDF into place, so a failure never
leaves a half-written file.

A model report has seven parts: the model with shapes under each term, the
gradients step by step, the proof, the generated code with equation
numbers, the numeric evidence, and the figures.  A claims file (a hand
derivation) gives the model, each claim beside the truth with its verdict
and repair, and the derived gradients it was checked against.

Exit status of :func:`run_report`: 0 when every check inside holds; 1 when
the proof or a numeric check fails, or (for a claims file) a claim does
not hold -- the report is still written; 2 on bad input, an unknown output
type, no TeX engine for ``.pdf`` (nothing is written), or a failed compile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from .. import __version__
from ..errors import InputError
from ..files import publish
from ..notation.expr import Adj, Binary, Call, Node, Pick, Ref, Step, Unary, adjoint_refs, fix_steps, walk
from .latex import LatexPrinter, ascii_fold, escape_text, name_math, shape_math, step_math
from ..calculus.matrix import Adjoint, MatrixDerivation, Term, initial_state_terms

TEX_HINT = ("install TeX (Debian: apt-get install texlive-latex-base texlive-latex-recommended latexmk), "
            "or write the LaTeX source with -o FILE.tex")

PREAMBLE = r"""\documentclass[11pt]{article}
\ifdefined\pdfinfoomitdate \pdfinfoomitdate=1 \fi
\ifdefined\pdftrailerid \pdftrailerid{} \fi
\ifdefined\pdfsuppressptexinfo \pdfsuppressptexinfo=-1 \fi
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{array,booktabs,longtable}
\usepackage{xcolor}
\usepackage{listings}
\lstset{basicstyle=\ttfamily\footnotesize,columns=fullflexible,keepspaces=true,
  breaklines=true,numbers=left,numberstyle=\tiny,numbersep=6pt,showstringspaces=false,
  frame=lines,framesep=4pt}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\newcommand{\verdict}[1]{\textbf{#1}}
"""

RULES = [
    ("R1", "sum, difference, negation",
     r"C = A \pm B:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C},\ "
     r"\frac{\partial L}{\partial B} = \pm\frac{\partial L}{\partial C}"),
    ("R2", "broadcast column",
     r"C = A + b,\ b \text{ an } n\times 1 \text{ column over } n\times B:$\newline$"
     r"\frac{\partial L}{\partial b} = \operatorname{rowsum}\left(\frac{\partial L}{\partial C}\right)"
     r" = \frac{\partial L}{\partial C}\,\mathbf{1}_B"),
    ("R3", "matrix product",
     r"C = A\,B:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C}\,B^{\top},\ "
     r"\frac{\partial L}{\partial B} = A^{\top}\,\frac{\partial L}{\partial C}"),
    ("R4", "elementwise product",
     r"C = A \odot B:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C} \odot B"),
    ("R5", "elementwise function",
     r"C = f(A):\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C} \odot f'(A),$\newline$"
     r"\tanh' = 1 - C^{2},\ \sigma' = C \odot (1 - C),\ \exp' = C,\ \log'(A) = 1/A"),
    ("R6", "power", r"C = A^{n}:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C} \odot n A^{n-1}"),
    ("R7", "quotient", r"C = A / s:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C} / s"),
    ("R8", "transpose", r"C = A^{\top}:\quad \frac{\partial L}{\partial A} = \left(\frac{\partial L}{\partial C}\right)^{\top}"),
    ("R9", "sum of all entries",
     r"s = \operatorname{sum}(A):\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial s}\,\mathbf{1}"),
    ("R10", "sum over steps",
     r"L = \textstyle\sum_{t} L_t:\quad \frac{\partial L}{\partial L_t} = \frac{\partial L}{\partial L} = 1"),
    ("R11", "softmax (per column)",
     r"y = \operatorname{softmax}(o):\quad \frac{\partial L}{\partial o} = y \odot \left(\frac{\partial L}{\partial y}"
     r" - \operatorname{colsum}\left(y \odot \frac{\partial L}{\partial y}\right)\right)"),
    ("R12", "pick",
     r"s = y[c]:\quad \frac{\partial L}{\partial y} = \operatorname{onehot}(c) \odot \frac{\partial L}{\partial s}"),
    ("R13", "softmax + cross-entropy",
     r"L = -\log\left(\operatorname{softmax}(o)[c]\right):\quad \frac{\partial L}{\partial o} = "
     r"\operatorname{softmax}(o) - \operatorname{onehot}(c)"),
]

ELEMENTWISE = ("tanh", "sigmoid", "relu", "exp", "log", "step")


# -- the source -----------------------------------------------------------------

def is_claims_file(source: str) -> bool:
    """Whether ``source`` names a hand-derivation file (it has ``claim`` lines)."""
    from ..model.build import builtin_names
    if source in builtin_names():
        return False
    path = Path(source)
    if not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "claim" and not (len(words) > 1 and words[1].startswith("=")):
            return True
    return False


@dataclass
class ClaimRow:
    """What the report shows of one claim (the adapter's output)."""

    line: int
    text: str
    lhs: Optional[Node]
    rhs: Optional[Node]
    verdict: str
    explanation: str
    truth: Optional[str]
    repair: Optional[str]
    repair_edit: Optional[str]
    sizes_proved: List[Dict[str, int]]


def check_claims(path: str, progress: Optional[TextIO] = None):
    """The one place that talks to the claims checker: ``(model, [ClaimRow])``.

    Raises
    ------
    InputError
        When the claims file cannot be read.
    """
    from ..claims.read import read_claims
    from ..claims.verdicts import check_file
    notes = read_claims(path)
    results = check_file(notes, progress=progress)
    rows = []
    for r in results:
        c = r.claim
        rows.append(ClaimRow(c.line, c.text, c.lhs, c.rhs, r.verdict, r.explanation or "",
                             getattr(r, "truth", None), getattr(r, "repair", None),
                             getattr(r, "repair_edit", None), list(getattr(r, "sizes_proved", []) or [])))
    return notes.model, rows


def parse_expression(text: str) -> Optional[Node]:
    """A claim-side expression (``W_hy.T @ dL/do_t``) as a tree, or None when it does not parse."""
    from ..errors import SourceText
    from ..notation.parse import parse_statements
    try:
        statements = parse_statements(SourceText(f"claim dL/dL = {text}", "<truth>"), claims=True)
    except Exception:
        return None
    if len(statements) != 1 or statements[0].expr is None:
        return None
    return statements[0].expr


# -- helpers -------------------------------------------------------------------

def fmt_sci(x: float, digits: int = 2) -> str:
    """``3.5\\times 10^{-8}`` (math mode), ``0`` for zero."""
    if x == 0:
        return "0"
    if x != x:
        return r"\text{nan}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    exp = int(exponent)
    if exp == 0:
        return mantissa
    if mantissa in ("1", "1.0", "1." + "0" * (digits - 1)):
        return r"10^{%d}" % exp
    return r"%s\times 10^{%d}" % (mantissa, exp)


def sizes_math(sizes: Dict[str, int]) -> str:
    """``H=4,\\ F=3``."""
    return r",\ ".join(f"{name_math(k)}={v}" for k, v in sizes.items())


class Doc:
    """Accumulates LaTeX lines."""

    def __init__(self):
        self.lines: List[str] = []

    def add(self, *lines: str):
        self.lines.extend(lines)

    def para(self, text: str):
        self.lines += [text, ""]

    def display(self, math: str, tag: Optional[int] = None):
        if tag is None:
            self.lines += [r"\[", math, r"\]"]
        else:
            self.lines += [r"\begin{equation*}", math + r" \tag{%d}" % tag, r"\end{equation*}"]

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


class ModelWriter:
    """The sections about one model and its derivation."""

    def __init__(self, model, derivation: MatrixDerivation, doc: Doc):
        self.model = model
        self.d = derivation
        self.doc = doc
        self.tex = LatexPrinter(model)
        self.shaped = LatexPrinter(model, shapes=True)
        self.inline = LatexPrinter(model, inline=True)
        self.numbers = {eq.name: eq.number for eq in model.equations}
        self.numbers.update(derivation.numbers())
        self.code_lines: Dict[int, List[int]] = {}
        self.batch = batch_dims(model)

    # -- names ---------------------------------------------------------------
    def step_of(self, name: str, at_zero: bool = False):
        if not self.model.symbols[name].per_step:
            return None
        return Step("abs", 0) if at_zero else Step("rel", 0)

    def sym(self, name: str, step=None) -> str:
        return self.tex(Ref(name, step if step is not None else self.step_of(name)))

    def adj(self, name: str, inline: bool = True, step=None) -> str:
        node = Adj(name, step if step is not None else self.step_of(name))
        return (self.inline if inline else self.tex)(node)

    def equation_math(self, eq, shapes: bool = False) -> str:
        printer = self.shaped if shapes else self.tex
        lhs = printer(Ref(eq.name, Step("rel", 0) if eq.per_step else None))
        return f"{lhs} = {printer(eq.expr)}"

    # -- 1. the model ------------------------------------------------------
    def model_section(self):
        m, doc = self.model, self.doc
        doc.add(r"\section{The model}", "")
        where = escape_text(m.path)
        doc.para(rf"Model \texttt{{{escape_text(m.name)}}}, read from \texttt{{{where}}}. "
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
                kind_note = rf"one class out of ${escape_text(str(s.classes))}$ per column"
            elif s.kind == "state":
                kind_note = rf"initial value ${self.sym(s.name, Step('abs', 0))}$ (0 unless given)"
            elif s.kind == "param":
                kind_note = "shared by every step" if m.has_steps else ""
            else:
                kind_note = "one per step" if s.per_step else ""
            doc.add(rf"${self.tex(Ref(s.name, step))}$ & {s.kind} & ${shape_math(shape)}$ & {kind_note} \\")
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
            lhs, rhs = self.equation_math(eq, shapes=True).split(" = ", 1)
            rows.append(f"{lhs} &= {rhs} \\tag{{{eq.number}}}")
        doc.add(" \\\\\n".join(rows))
        doc.add(r"\end{align*}", "")
        listing(doc, m.source, "The model as written")

    # -- 2. the gradients ----------------------------------------------------
    def derivation_section(self, with_steps: bool = True):
        d, doc = self.d, self.doc
        doc.add(r"\section{The gradients, step by step}", "")
        doc.para(r"Denominator layout: $\partial L/\partial X$ is shaped like $X$, and its entry $(i,j)$ is "
                 r"the derivative of the scalar loss $L$ with respect to $X_{ij}$. "
                 r"Reverse mode walks the equations backwards: each use of $X$ by a later equation "
                 r"contributes one term, obtained from that equation's own gradient by the matrix rules "
                 r"below, and $\partial L/\partial X$ is the sum of the terms. "
                 r"Equation numbers continue after the forward equations and are the numbers "
                 r"in the comments of the generated code (Section~\ref{sec:code}).")
        if with_steps:
            doc.add(r"\begin{center}", r"\small",
                    r"\begin{tabular}{ll>{\raggedright\arraybackslash}p{0.62\textwidth}}", r"\toprule",
                    r"rule & what & gradient \\", r"\midrule")
            for label, what, formula in RULES:
                doc.add(rf"{label} & {what} & ${formula}$ \\[2pt]")
            doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
        for name in d.order():
            adjoint = d.adjoints[name]
            if with_steps:
                self.adjoint_steps(adjoint)
            else:
                self.adjoint_result(adjoint)

    def adjoint_result(self, adjoint: Adjoint):
        name = adjoint.name
        lhs = self.adj(name, inline=False)
        self.doc.display(f"{lhs} = {self.sum_terms(adjoint.terms, name)}", self.numbers[name])

    def sum_terms(self, terms: List[Term], name: str, printer=None) -> str:
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
        out = " + ".join(parts) or "0"
        return out.replace("+ -", "- ")

    def source_text(self, term: Term) -> str:
        """``(3) o_t = W_hy h_t + b_y``: the equation a term comes through."""
        eq = self.model.equation(term.source)
        if eq is None:
            return ""
        return rf"({eq.number}) ${self.equation_math(eq)}$"

    def rules_for(self, term: Term, name: str) -> List[str]:
        """The labels of the rules on the way from the consuming equation down to ``name``."""
        if term.fused:
            return ["R13"]
        eq = self.model.equation(term.source)
        if eq is None:
            return []
        found: List[str] = []

        def visit(node: Node, path: List[str]):
            if isinstance(node, Ref):
                if node.name == name:
                    for r in path:
                        if r not in found:
                            found.append(r)
                return
            kids = node.children()
            for k, child in enumerate(kids):
                visit(child, path + rule_of(node, k, child, self.model))

        visit(eq.expr, [])
        return found

    def adjoint_steps(self, adjoint: Adjoint):
        m, doc = self.model, self.doc
        name = adjoint.name
        sym = m.symbols[name]
        number = self.numbers[name]
        lhs_inline = self.adj(name)
        lhs = self.adj(name, inline=False)
        doc.add(rf"\subsection*{{({number})\quad ${lhs_inline}$\quad \normalfont\small(${shape_math(sym.shape)}$)}}", "")
        if name in self.d.constants:
            eq = m.equation(name)
            why = r"it is the loss itself" if name == m.loss else \
                (r"$L$ adds it with weight one (R10)" if eq is not None else "")
            doc.para(rf"A constant, written in place wherever it appears: {why}.")
            doc.display(f"{lhs} = {self.tex(self.d.constants[name])}", number)
            return
        terms = adjoint.terms
        if not terms:
            doc.para(rf"${self.sym(name)}$ does not influence $L$: its gradient is zero.")
            doc.display(f"{lhs} = 0", number)
            return
        sources = []
        for t in terms:
            eq = m.equation(t.source)
            if eq is not None and eq.number not in sources:
                sources.append(eq.number)
        uses = ", ".join(f"({n})" for n in sources)
        if len(terms) == 1:
            doc.para(rf"${self.sym(name)}$ is read by {uses}; one chain-rule step:")
        else:
            doc.para(rf"${self.sym(name)}$ is read by {uses}; one term per use, each a chain-rule "
                     r"step from the reading equation's gradient:")
        for k, term in enumerate(terms):
            self.term_step(adjoint, term, k, len(terms))
        doc.para("Together:")
        doc.display(f"{lhs} = {self.sum_terms(terms, name)}", number)
        lines = self.code_lines.get(number)
        if lines:
            doc.para(r"Computed by the generated code at line%s %s." % (
                "s" if len(lines) > 1 else "", ", ".join(str(n) for n in lines)))
        self.boundary(adjoint)
        if adjoint.generic:
            self.softmax_note(adjoint)

    def term_step(self, adjoint: Adjoint, term: Term, k: int, count: int):
        m, doc = self.model, self.doc
        name = adjoint.name
        rules = self.rules_for(term, name)
        via = self.source_text(term)
        rule_text = (" by " + ", ".join(rules)) if rules else ""
        lhs = self.adj(name, inline=False)
        shaped = self.shaped(term.expr)
        if term.summed:
            use = Adj(name, None, use=Step("rel", 0))
            doc.para(rf"Through {via}{rule_text}: ${self.sym(name)}$ is used at every step $t$, "
                     rf"and its use at step $t$ contributes")
            doc.display(rf"{self.tex(use)} = {shaped}")
            doc.para(rf"so the gradient sums the uses over the steps (the notes' "
                     rf"\texttt{{dL/dWhh (t = 1) + dL/dWhh (t = 2)}}): "
                     rf"${self.inline(Adj(name))} = \sum_{{t=1}}^{{T}} {self.inline(use)}$.")
        else:
            when = ""
            if term.at is not None and m.symbols[name].per_step:
                when = rf" (at $t = {step_math(term.at)}$ only: the equation reads ${self.sym(name, term.at)}$ alone)"
            doc.para(rf"Through {via}{rule_text}{when}:")
            doc.display(rf"{lhs} \mathrel{{+}}= {shaped}")
        try:
            result = shape_math(m.shape(term.expr))
            doc.para(rf"The factors conform and give ${result}$, the shape of ${self.sym(name)}$.")
        except Exception:
            pass
        if term.fused:
            doc.para(r"This is the softmax + cross-entropy simplification (R13); the generic chain "
                     r"through the softmax and the steps that simplify it follow below.")
        if any(a.step is not None and a.step.kind == "rel" and a.step.offset > 0
               for a in adjoint_refs(term.expr)) and m.symbols[name].per_step:
            self.recurrent_note(name, term)
        self.batch_notes(name, term)

    def recurrent_note(self, name: str, term: Term):
        m = self.model
        reads = [a for a in adjoint_refs(term.expr) if a.step is not None and a.step.offset > 0]
        a = reads[0]
        eq = m.equation(term.source)
        later = self.inline(a)
        prev = self.sym(name, Step("rel", -1))
        self.doc.para(
            rf"This is the \textbf{{recurrent term}} of backpropagation through time: equation ({eq.number}) "
            rf"reads ${prev}$, so ${self.sym(name)}$ also feeds ${self.sym(a.name, a.step)}$ at the next step, "
            rf"and everything the loss does after step $t$ reaches ${self.sym(name)}$ through ${later}$. "
            rf"Without it the gradient would count only the loss at step $t$ (the notes' per-step "
            rf"\texttt{{dL{{\ttfamily\char95}}t/dh{{\ttfamily\char95}}t}}). The recurrence runs backwards from $t = T$, where there is no next "
            rf"step: ${self.inline(Adj(a.name, Step('last', a.step.offset)))} = 0$.")

    def batch_notes(self, name: str, term: Term):
        m = self.model
        if not self.batch:
            return
        said = set()
        for node in walk(term.expr):
            if isinstance(node, Binary) and node.op == "@":
                try:
                    inner = m.shape(node.a)[1]
                except Exception:
                    continue
                if inner in self.batch and ("mm", inner) not in said:
                    said.add(("mm", inner))
                    a, b = self.tex(node.a), self.tex(node.b)
                    dim = escape_text(str(inner))
                    self.doc.para(
                        rf"The matrix product ${a}\,{b}$ runs over the batch: its inner dimension is "
                        rf"${dim}$, one column per example, so it is the sum of the examples' outer "
                        rf"products, $\sum_{{b=1}}^{{{dim}}} (\cdot)_{{:,b}}\,(\cdot)_{{b,:}}$. "
                        rf"${self.sym(name)}$ is used by every example, and its gradient adds each "
                        rf"example's contribution; this is why the notes find a matmul wherever the "
                        rf"batch size appears in a shape (seed 000).")
            if isinstance(node, Call) and node.fn in ("rowsum", "colsum", "sum"):
                try:
                    shape = m.shape(node.args[0])
                except Exception:
                    continue
                dims = {"rowsum": [shape[1]], "colsum": [shape[0]], "sum": list(shape)}[node.fn]
                for dim in dims:
                    if dim in self.batch and ("sum", dim) not in said:
                        said.add(("sum", dim))
                        self.doc.para(
                            rf"${self.sym(name)}$ is broadcast over the ${escape_text(str(dim))}$ "
                            rf"examples (R2), so its gradient sums the columns of "
                            rf"${self.tex(node.args[0])}$: ${self.tex(node)} = {self.tex(node.args[0])}"
                            rf"\,\mathbf{{1}}_{{{escape_text(str(dim))}}}$, one column per example.")

    def boundary(self, adjoint: Adjoint):
        m = self.model
        sym = m.symbols[adjoint.name]
        if sym.kind != "state":
            return
        parts = []
        for term in initial_state_terms(adjoint):
            parts.append(self.sum_terms([replace(term, at=None)], adjoint.name) if term.summed
                         else self.tex(fix_steps(term.expr, 0)))
        rhs = " + ".join(parts) or "0"
        self.doc.para(r"At $t = 0$ only the next step reads the initial state, which gives its gradient "
                      r"(the generated code returns it with \texttt{wrt{\ttfamily\char95}initial{\ttfamily\char95}state=True}):")
        self.doc.display(rf"{self.adj(adjoint.name, inline=False, step=Step('abs', 0))} = {rhs}")

    def softmax_note(self, adjoint: Adjoint):
        name = adjoint.name
        lhs = self.adj(name, inline=False)
        fused_sources = {t.source for t in adjoint.terms if t.fused}
        softmax_outputs = [eq for eq in self.model.equations
                           if isinstance(eq.expr, Call) and eq.expr.fn == "softmax"
                           and isinstance(eq.expr.args[0], Ref) and eq.expr.args[0].name == name]
        self.doc.para(r"\textbf{Softmax and cross-entropy.} Generically, the chain through the softmax "
                      r"(R11) gives")
        self.doc.display(f"{lhs} = {self.sum_terms(adjoint.generic, name)}")
        parts = []
        for eq in softmax_outputs:
            y = self.sym(eq.name)
            dy = self.inline(Adj(eq.name, self.step_of(eq.name)))
            ydy = rf"{y} \odot {dy}"
            n = self.numbers.get(eq.name)
            dy_terms = self.d.adjoints.get(eq.name)
            shown = ""
            if dy_terms is not None and dy_terms.terms:
                shown = rf" = {self.sum_terms(dy_terms.terms, eq.name)}"
            parts.append(
                rf"With ${dy}{shown}$ from ({n}), the product ${ydy}$ is zero except in the row of the "
                rf"correct class, where $y[c]\cdot(-1/y[c]) = -1$; so ${ydy} = -\operatorname{{onehot}}(c)$ "
                rf"(times $\partial L/\partial L_t$, here 1), $\operatorname{{colsum}}({ydy}) = -1$, and the "
                rf"generic form collapses to ${y} \odot ({dy} + 1) = {y} - \operatorname{{onehot}}(c)$, "
                rf"the notes' \texttt{{y{{\ttfamily\char95}}t - one{{\ttfamily\char95}}hot(c)}}.")
        for p in parts:
            self.doc.para(p)
        self.doc.para(r"Both forms, the generic one and the simplified one, were proved equal to the exact "
                      r"derivation (Section~\ref{sec:proof}); the code uses the simplified one"
                      + (f" ({', '.join(sorted(escape_text(s) for s in fused_sources))})." if False else "."))


def rule_of(node: Node, k: int, child: Node, model) -> List[str]:
    """The rule labels for differentiating ``node`` with respect to its ``k``-th child."""
    if isinstance(node, Binary):
        if node.op in "+-":
            try:
                if model.shape(child) != model.shape(node):
                    return ["R1", "R2"]
            except Exception:
                pass
            return ["R1"]
        return {"@": ["R3"], "*": ["R4"], "**": ["R6"], "/": ["R7"], "dot": ["R3"]}.get(node.op, [])
    if isinstance(node, Unary):
        return ["R8"] if node.op == "T" else ["R1"]
    if isinstance(node, Pick):
        return ["R12"] if k == 0 else []
    if isinstance(node, Call):
        if node.fn in ELEMENTWISE:
            return ["R5"]
        if node.fn in ("sum", "mean"):
            return ["R9"]
        if node.fn == "sum_t":
            return ["R10"]
        if node.fn == "softmax":
            return ["R11"]
    return []


def batch_dims(model) -> set:
    """Size names that count examples: dimensions of the data that no parameter has."""
    data_dims = {d for s in model.data_symbols if s.shape for d in s.shape if isinstance(d, str)}
    param_dims = {d for s in model.params if s.shape for d in s.shape if isinstance(d, str)}
    return data_dims - param_dims - {"T"}


def listing(doc: Doc, text: str, title: str, numbers: bool = False):
    """A verbatim listing (ASCII-folded: listings takes no multibyte characters)."""
    body = ascii_fold(text).rstrip("\n")
    body = body.replace(r"\end{lstlisting}", r"\end {lstlisting}")
    opts = f"title={{{escape_text(title)}}}" + ("" if numbers else ",numbers=none")
    doc.add(rf"\begin{{lstlisting}}[{opts}]", body, r"\end{lstlisting}", "")


# -- the whole documents ---------------------------------------------------------

def _resolve_sizes(model, sizes: Optional[Dict[str, int]]) -> Dict[str, int]:
    out = {k: v for k, v in model.sizes.items() if v is not None}
    for dim in {d for s in model.symbols.values() if s.shape for d in s.shape if isinstance(d, str)} | \
            {s.classes for s in model.symbols.values() if isinstance(s.classes, str)}:
        out.setdefault(dim, 3)
    if model.has_steps:
        out.setdefault("T", 4)
    out.update(sizes or {})
    return out


def small_sizes(model, sizes: Dict[str, int]) -> Dict[str, int]:
    """Sizes capped for the figures that check every entry (5 per dimension, 3 examples, T <= 5)."""
    batch = batch_dims(model)
    out = {}
    for k, v in sizes.items():
        cap = 3 if k in batch else 5
        out[k] = min(v, cap)
    return out


def default_entries(model, sizes: Dict[str, int]) -> int:
    """Finite-difference entries per parameter: 10, or 3 for a model whose forward pass is large."""
    total = 0
    for s in model.symbols.values():
        if s.shape is None:
            continue
        n = 1
        for d in s.shape:
            n *= d if isinstance(d, int) else sizes.get(d, 1)
        total += n * (sizes.get("T", 1) if s.per_step else 1)
    return 3 if total > 1_000_000 else 10


@dataclass
class Report:
    """A built report: the ``.tex`` text and whether every check inside held."""

    tex: str
    passed: bool


def build_report(source: str, seed: int = 0, sizes: Optional[Dict[str, int]] = None,
                 entries: Optional[int] = None, progress: Optional[TextIO] = None) -> Report:
    """Assemble the LaTeX report of a model or a claims file.

    Parameters
    ----------
    source : str
        A built-in model name, a model file, or a claims file.
    seed : int
        Seed of the proof's witness points and of the numeric checks.
    sizes : dict, optional
        Sizes for the numeric evidence (default: the model's own).
    entries : int, optional
        Finite-difference entries per parameter (default: 10, or 3 for a
        large model).
    progress : text stream, optional
        Where to say what is being done.

    Returns
    -------
    Report
        The deterministic ``.tex`` text, and whether every check held.

    Raises
    ------
    InputError
        When the source cannot be read.
    """
    if is_claims_file(source):
        return _claims_report(source, progress)
    return _model_report(source, seed, sizes, entries, progress)


def _say(progress, text):
    if progress is not None:
        print(f"derive report: {text}", file=progress)


def _begin(doc: Doc, title: str, subtitle: str):
    doc.add(PREAMBLE.rstrip("\n"), "", rf"\title{{{title}}}",
            rf"\author{{{subtitle}}}", r"\date{}", "", r"\begin{document}", r"\maketitle", "")


def _model_report(source, seed, sizes, entries, progress) -> Report:
    from ..model.build import load_model
    from ..calculus.matrix import derive_matrix
    from ..calculus.prove import prove
    model = load_model(source)
    derivation = derive_matrix(model)
    doc = Doc()
    _begin(doc, rf"Derivation report: \texttt{{{escape_text(model.name)}}}",
           rf"generated and checked by \texttt{{derive {__version__}}}, seed {seed}")
    first = model.source.splitlines()[0].lstrip("# ").strip() if model.source.strip().startswith("#") else ""
    if first:
        doc.para(rf"\emph{{{escape_text(first)}}}")
    doc.para(r"This report derives the gradient of the loss with respect to every parameter of the model, "
             r"as a careful hand derivation would, and records what the machine checked: the symbolic proof "
             r"of every recurrence (Section~\ref{sec:proof}), the generated NumPy code that computes them "
             r"(Section~\ref{sec:code}), and numeric comparisons with finite differences and an independent "
             r"hand-written BPTT (Sections~\ref{sec:numeric} and~\ref{sec:figures}).")
    w = ModelWriter(model, derivation, doc)
    code = _generate(model, derivation)
    if code is not None:
        w.code_lines = code_index(code)
    w.model_section()
    w.derivation_section()
    _say(progress, "proving every recurrence at three sizes")
    proof = prove(derivation, seed=seed)
    proof_section(doc, w, proof)
    passed = proof.holds
    code_section(doc, w, code)
    if code is not None:
        run_sizes = _resolve_sizes(model, sizes)
        n_entries = entries if entries is not None else default_entries(model, run_sizes)
        _say(progress, f"numeric checks at {', '.join(f'{k}={v}' for k, v in run_sizes.items())}")
        passed = numeric_section(doc, w, code, run_sizes, seed, n_entries) and passed
        _say(progress, "figures")
        figures_section(doc, w, code, run_sizes, seed)
    doc.add(r"\end{document}")
    return Report(doc.text(), passed)


def _generate(model, derivation) -> Optional[str]:
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


def proof_section(doc: Doc, w: ModelWriter, proof):
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
            doc.add(rf"({w.numbers[name]}) ${w.adj(name)}$ & " + " & ".join(cells) + r" \\")
        wit = " & ".join(witness_text(p.witness_max_rel) for p in size_proofs)
        doc.add(r"\midrule", rf"50-digit witness, largest relative gap & {wit} \\", r"\bottomrule",
                r"\end{tabular}", r"\end{center}", "")
        if title:
            doc.para("The table above is for the forms" + escape_text(title) + ".")
        classes = [p for p in size_proofs if p.classes]
        if classes and not title:
            doc.para("Class targets drawn for the proof: " + "; ".join(
                rf"${sizes_math(p.sizes)}$: " + ", ".join(
                    rf"${name_math(k.rsplit('_', 1)[0], k.rsplit('_', 1)[1])} = {v[0] if len(v) == 1 else v}$"
                    for k, v in p.classes.items()) for p in classes) + ".")
    doc.para(r"\textbf{Result: " + ("every recurrence proved at every size above.}" if proof.holds
                                    else "NOT PROVED} -- see the failures in the table."))


def witness_text(gap: float) -> str:
    """The witness gap, rounded so the report does not depend on the last digits."""
    if gap < 1e-40:
        return r"$< 10^{-40}$"
    return "$" + fmt_sci(gap, 1) + "$"


def code_section(doc: Doc, w: ModelWriter, code: Optional[str]):
    doc.add(r"\section{The generated NumPy code}\label{sec:code}", "")
    if code is None:
        doc.para(r"Code generation does not support this model yet, so there is no code and no numeric "
                 r"evidence.")
        return
    doc.para(rf"\texttt{{derive code {escape_text(w.model.command_argument())}}} emits the module below. It imports NumPy "
             r"only, runs one loop forward and one backward over time, vectorised over the batch, and "
             r"exposes \texttt{loss(params, data)} and \texttt{loss{\ttfamily\char95}and{\ttfamily\char95}gradients(params, data)}. "
             r"Each statement is preceded by a comment \texttt{\# (n)} naming the equation it computes; "
             r"the table ties every equation to its lines.")
    idx = code_index(code)
    doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{lll}", r"\toprule",
            r"equation & quantity & code lines \\", r"\midrule")
    by_number = {n: name for name, n in w.numbers.items()}
    for n in sorted(idx):
        name = by_number.get(n)
        what = ""
        if name is not None:
            is_forward = any(eq.number == n and eq.name == name for eq in w.model.equations) and \
                n <= len(w.model.equations)
            what = rf"${w.sym(name)}$" if is_forward else rf"${w.adj(name)}$"
        doc.add(rf"({n}) & {what} & {', '.join(str(x) for x in idx[n])} \\")
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    listing(doc, code, f"derive code {w.model.command_argument()}", numbers=True)


CHECK_TITLES = [("hand", "hand BPTT"), ("complex", "complex step"), ("central", "central diff."),
                ("exact", "exact (small)")]


def numeric_section(doc: Doc, w: ModelWriter, code: str, sizes, seed: int, entries: int) -> bool:
    from ..verify.run import verify
    from ..verify.rule import TOLERANCE, conclusion
    model = w.model
    result = verify(model, w.d, sizes, seed=seed, entries=entries)
    doc.add(r"\section{Numeric evidence}\label{sec:numeric}", "")
    doc.para(rf"The generated gradient at ${sizes_math(result.sizes)}$, seed {seed}: parameters "
             r"$\mathcal{N}(0,1)\cdot 0.5/\sqrt{\text{columns}}$, inputs standard normal, a non-zero "
             r"initial state, all drawn from the seed. Each cell is the largest relative error "
             r"$|a-b|/\max(|b|, 10^{-8}\max|b|)$ over the compared entries of that parameter, "
             r"with the worst entry $(i,j)$ beneath. "
             rf"Complex step and central differences check {entries} entries per parameter (drawn with "
             r"the seed; all of a smaller parameter). The exact comparison evaluates the unrolled "
             rf"symbolic derivation with 50 digits at ${sizes_math(result.exact_sizes)}$. "
             rf"Repeat with \texttt{{derive verify {escape_text(model.command_argument())} --seed {seed} --size "
             rf"{escape_text(','.join(f'{k}={v}' for k, v in result.sizes.items()))} --entries {entries}}}.")
    checks = [(c, t) for c, t in CHECK_TITLES if any(r.check == c for r in result.rows)]
    doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{l" + "c" * len(checks) + "}", r"\toprule")
    doc.add("parameter & " + " & ".join(f"vs {t}" for _, t in checks) + r" \\", r"\midrule")
    params = list(dict.fromkeys(r.parameter for r in result.rows))
    for p in params:
        cells = []
        for c, _ in checks:
            r = next((r for r in result.rows if r.check == c and r.parameter == p), None)
            if r is None:
                cells.append("--")
                continue
            mark = "" if r.passed else r" \textbf{FAIL}"
            where = ",".join(str(i) for i in r.worst_index)
            cells.append(rf"\begin{{tabular}}{{@{{}}c@{{}}}}${fmt_sci(r.max_rel_error)}${mark}\\"
                         rf"\scriptsize $({where})$, {r.entries} entries\end{{tabular}}")
        doc.add(rf"${name_math(p)}$ & " + " & ".join(cells) + r" \\[3pt]")
    tol = ", ".join(rf"{t} $\rho = {fmt_sci(TOLERANCE[c][0], 1)}$, $\alpha = {fmt_sci(TOLERANCE[c][1], 1)}$"
                    for c, t in checks)
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    doc.para(r"An entry $a$ of the generated gradient agrees with a reference $b$ when "
             r"$|a-b| \le \rho\,|b| + \alpha\,S$, $S$ the largest $|b|$ the check compared over every "
             rf"parameter and initial state: {tol}. Central differences add their own estimated error "
             r"(the gap between the differences at steps $h$ and $2h$, plus rounding) and skip an entry "
             r"whose step crosses a kink of relu or step; they support the verdict but do not decide it, "
             r"since complex step, the exact derivation and the random directions are exact to rounding.")
    if result.directions:
        doc.para(r"Random directions: the complex-step derivative of $L$ along a unit direction $v$ over "
                 r"all parameters at once, against $\nabla L \cdot v$ from the generated gradient.")
        doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{rccc}", r"\toprule",
                r"direction & $\mathrm{d}L/\mathrm{d}s$ (complex step) & $\nabla L\cdot v$ & relative error \\",
                r"\midrule")
        for dct in result.directions:
            mark = "" if dct["passed"] else r" \textbf{FAIL}"
            doc.add(rf"{dct['direction']} & ${dct['complex_step']:+.12f}$ & ${dct['gradient']:+.12f}$ & "
                    rf"${fmt_sci(dct['rel_error'])}${mark} \\")
        doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    passes = ", ".join(f"{escape_text(k)} {v}" for k, v in result.forward_passes.items())
    doc.para(f"Forward passes spent: {passes}.")
    for note in result.notes:
        if "--entries" in note:
            continue
        doc.para(escape_text("Note: " + note + "."))
    verdict = conclusion(result)[len("result: "):]
    if verdict == "all checks agree":
        verdict = "every numeric check agrees"
    doc.para(r"\textbf{Result: " + escape_text(verdict) + ".}")
    return result.passed


def figures_section(doc: Doc, w: ModelWriter, code: str, sizes: Dict[str, int], seed: int):
    import numpy as np

    from ..numeric import random_params

    from .figures import (Axes, STEP_EXPONENTS, adjoint_norms, entry_errors, heat_map, line_plot, log_ticks,
                          step_sweep)
    from ..emit.loader import import_source
    from ..verify.run import concrete_shape, random_data
    model = w.model
    module = import_source(code)
    doc.add(r"\section{Figures}\label{sec:figures}", "")

    def draw(size_set):
        shapes = {s.name: concrete_shape(s.shape, size_set) for s in model.params}
        params = random_params(shapes, seed)
        data = random_data(model, module, size_set, seed)
        return params, data

    if model.states and model.has_steps:
        fig_sizes = dict(sizes)
        fig_sizes["T"] = max(sizes.get("T", 1), 20)
        params, data = draw(fig_sizes)
        norms = adjoint_norms(model, w.d, module, params, data)
        series = []
        lo, hi = 0, 0
        for name, points in norms.items():
            pts = [(float(t), float(np.log10(v))) for t, v in points if v > 0]
            if not pts:
                continue
            series.append((rf"$\|{w.adj(name)}\|$", pts))
            lo = min(lo, int(np.floor(min(p[1] for p in pts))))
            hi = max(hi, int(np.ceil(max(p[1] for p in pts))))
        if series:
            if hi == lo:
                hi = lo + 1
            T = fig_sizes["T"]
            ax = Axes(0, T, lo, hi)
            xt = [(float(t), str(t)) for t in range(0, T + 1, 5 if T > 10 else 1)]
            every = 1 if hi - lo <= 8 else 2
            pic = line_plot(series, ax, xt, log_ticks(lo, hi, every), r"step $t$", r"norm")
            state = model.states[0].name
            doc.add(r"\begin{figure}[htbp]", r"\centering", pic,
                    rf"\caption{{\label{{fig:norms}}Frobenius norm of ${w.adj(state)}$ over the steps "
                    rf"(log scale), at ${sizes_math(fig_sizes)}$, seed {seed}; $t = 0$ is the initial state. "
                    r"The values are the \texttt{dL{\ttfamily\char95}d...} array the generated \texttt{loss{\ttfamily\char95}and{\ttfamily\char95}gradients} "
                    r"computes, captured as the function returns. A slope downwards towards $t = 0$ means "
                    r"vanishing gradients, upwards exploding ones.}", r"\end{figure}", "")
            doc.para(r"Figure~\ref{fig:norms} follows the recurrent term backwards: each step multiplies the "
                     r"gradient by the transposed recurrent weight and by the activation's derivative, so its "
                     r"norm changes roughly geometrically with the distance from the loss.")

    small = small_sizes(model, sizes)
    params, data = draw(small)
    _, grads = module.loss_and_gradients(params, data)
    errors = entry_errors(module, params, data, grads)
    grids = []
    for name, err in errors.items():
        grid = np.log10(np.maximum(np.asarray(err, dtype=float), 1e-17))
        grid = np.round(grid, 2)
        grids.append((rf"${name_math(name)}$", grid))
    worst = max(float(np.max(e)) for e in errors.values())
    doc.add(r"\begin{figure}[htbp]", r"\centering", heat_map(grids),
            rf"\caption{{\label{{fig:heat}}$\log_{{10}}$ of the relative error of every entry of the generated "
            rf"gradient against central differences (default step $\epsilon^{{1/3}}\max(1,|p|)$), at "
            rf"${sizes_math(small)}$, seed {seed}. One cell per entry, laid out as the matrix; the largest "
            rf"is ${fmt_sci(worst)}$.}}", r"\end{figure}", "")
    sweep = step_sweep(module, params, data, grads)
    series = []
    for name, (index, points) in sweep.items():
        series.append((rf"${name_math(name)}[{index[0]},{index[1]}]$", points))
    lo = int(np.floor(min(p[1] for _, pts in series for p in pts)))
    hi = max(0, int(np.ceil(max(p[1] for _, pts in series for p in pts))))
    ax = Axes(min(STEP_EXPONENTS), max(STEP_EXPONENTS), lo, hi)
    xt = log_ticks(int(min(STEP_EXPONENTS)), int(max(STEP_EXPONENTS)), 2)
    pic = line_plot(series, ax, xt, log_ticks(lo, hi, 2 if hi - lo > 8 else 1), r"step $h$",
                    "rel.\\ error", vline=(float(np.log10(np.finfo(float).eps ** (1 / 3))),
                                           r"$\epsilon^{1/3}$"))
    doc.add(r"\begin{figure}[htbp]", r"\centering", pic,
            rf"\caption{{\label{{fig:steps}}Relative error of the central difference $(L(p+h)-L(p-h))/2h$ "
            rf"against the complex-step derivative, as the step $h$ shrinks, at each parameter's largest "
            rf"gradient entry (${sizes_math(small)}$, seed {seed}). Truncation error falls as $h^2$ on the "
            rf"right; rounding error grows as $\epsilon/h$ on the left; the best step is near "
            rf"$\epsilon^{{1/3}} \approx 6\times 10^{{-6}}$.}}", r"\end{figure}", "")
    doc.add(r"\clearpage", "")


# -- claims ---------------------------------------------------------------------

VERDICT_WORDS = {"holds": "holds", "layout": "holds up to layout (transposed)",
                 "factor": "holds up to a constant factor", "partial": "holds for one part only",
                 "shape": "shape error", "wrong": "wrong", "undecided": "undecided"}


def _claims_report(source: str, progress) -> Report:
    from ..calculus.matrix import derive_matrix
    _say(progress, "checking every claim")
    model, rows = check_claims(source, progress)
    derivation = derive_matrix(model)
    doc = Doc()
    _begin(doc, rf"Checking a hand derivation: \texttt{{{escape_text(Path(source).name)}}}",
           rf"checked by \texttt{{derive {__version__}}}")
    holds = sum(1 for r in rows if r.verdict == "holds")
    doc.para(rf"The file \texttt{{{escape_text(source)}}} makes {len(rows)} claim"
             rf"{'s' if len(rows) != 1 else ''} about the gradients of the model "
             rf"\texttt{{{escape_text(model.name)}}}; {holds} hold"
             rf"{'s' if holds == 1 else ''}. Each claim is shown as written, typeset, with its verdict, "
             r"the truth beside it and, where one exists, a repair. The truth is the derivation of "
             r"Section~\ref{sec:truth}, proved symbolically; a verdict is proved at small concrete sizes "
             r"entry by entry.")
    w = ModelWriter(model, derivation, doc)
    doc.add(r"\begin{center}", r"\small", r"\begin{longtable}{rp{0.55\textwidth}l}", r"\toprule",
            r"line & claim as written & verdict \\", r"\midrule", r"\endhead")
    for r in rows:
        doc.add(rf"{r.line} & \texttt{{{escape_text(r.text)}}} & \verdict{{{escape_text(r.verdict)}}} \\")
    doc.add(r"\bottomrule", r"\end{longtable}", r"\end{center}", "")
    doc.add(r"\section{The claims}", "")
    for r in rows:
        claim_block(doc, w, r)
    w.model_section()
    doc.add(r"\section{The derivation the claims are checked against}\label{sec:truth}", "")
    doc.para(r"The gradients of every quantity, derived and proved as in a full report "
             rf"(\texttt{{derive report {escape_text(model.command_argument())}}} gives every step, the proof, the code "
             r"and the numeric evidence).")
    for name in derivation.order():
        w.adjoint_result(derivation.adjoints[name])
    doc.add(r"\end{document}")
    return Report(doc.text(), all(r.verdict == "holds" for r in rows))


def claim_math(w: ModelWriter, lhs: Optional[Node], rhs: Optional[Node]) -> Optional[str]:
    if lhs is None or rhs is None:
        return None
    try:
        return f"{w.tex(lhs)} = {w.tex(rhs)}"
    except Exception:
        return None


def claim_block(doc: Doc, w: ModelWriter, r: ClaimRow):
    word = VERDICT_WORDS.get(r.verdict, r.verdict)
    doc.add(rf"\subsection*{{Line {r.line}: \verdict{{{escape_text(word)}}}}}", "")
    doc.para(rf"As written: \texttt{{{escape_text(r.text)}}}")
    claimed = claim_math(w, r.lhs, r.rhs)
    truth_tree = parse_expression(_truth_rhs(r.truth)) if r.truth else None
    truth = None
    if truth_tree is not None and r.lhs is not None:
        try:
            truth = f"{w.tex(r.lhs)} = {w.tex(truth_tree)}"
        except Exception:
            truth = None
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
        tree = parse_expression(_truth_rhs(r.repair))
        shown = None
        if tree is not None and r.lhs is not None:
            try:
                shown = rf"${w.tex(r.lhs)} = {w.tex(tree)}$"
            except Exception:
                shown = None
        edit = f" ({escape_text(r.repair_edit)})" if r.repair_edit else ""
        if shown:
            doc.para(rf"\textbf{{Repair}}{edit}:")
            doc.display(shown.strip("$"))
        else:
            doc.para(rf"\textbf{{Repair}}{edit}: \texttt{{{escape_text(r.repair)}}}")
    if r.sizes_proved:
        doc.para("Proved at " + "; ".join(rf"${sizes_math(s)}$" for s in r.sizes_proved) + ".")


def _truth_rhs(text: str) -> str:
    """The right side of ``dL/dX = ...`` (or the whole text when it has no ``=``)."""
    if text is None:
        return ""
    head, sep, rest = text.partition(" = ")
    return rest if sep and ("/d" in head or "/∂" in head) else text


# -- output ---------------------------------------------------------------------

def tex_engine() -> Optional[List[str]]:
    """The command that compiles a ``.tex`` to PDF here (latexmk, else pdflatex), or None."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


class CompileError(Exception):
    """pdflatex failed; the message holds the end of the log."""


def compile_pdf(tex: str, output: str, engine: Optional[List[str]] = None) -> None:
    """Compile ``tex`` in a temporary directory and move the PDF to ``output``.

    Raises
    ------
    CompileError
        When there is no engine or the compile fails (nothing is written).
    """
    engine = engine or tex_engine()
    if engine is None:
        raise CompileError("no TeX engine (latexmk or pdflatex) found: " + TEX_HINT)
    target = Path(output)
    with tempfile.TemporaryDirectory(prefix="derive-report-") as tmp:
        src = Path(tmp) / "report.tex"
        src.write_text(tex, encoding="utf-8")
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
        runs = 1 if engine[0] == "latexmk" else 2
        for _ in range(runs):
            proc = subprocess.run(engine + ["report.tex"], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
            if proc.returncode != 0:
                log = Path(tmp) / "report.log"
                text = log.read_text(errors="replace") if log.exists() else proc.stdout.decode(errors="replace")
                errors = [ln for ln in text.splitlines() if ln.startswith("!")][:5]
                raise CompileError("pdflatex failed: " + ("; ".join(errors) or text[-800:]))
        pdf = Path(tmp) / "report.pdf"
        if not pdf.exists():
            raise CompileError("pdflatex produced no PDF")
        folder = target.parent if str(target.parent) else Path(".")
        fd, part = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(pdf, part)
            publish(part, target)
        except BaseException:
            if os.path.exists(part):
                os.unlink(part)
            raise


def run_report(source: str, output: str, seed: int, out: TextIO, err: TextIO,
               sizes: Optional[Dict[str, int]] = None, entries: Optional[int] = None) -> int:
    """``derive report SOURCE -o OUTPUT``: write the report as ``.tex`` or ``.pdf``.

    Parameters
    ----------
    source : str
        A built-in model name, a model file or a claims file.
    output : str
        ``FILE.tex`` (no TeX needed) or ``FILE.pdf`` (compiled with latexmk or pdflatex).
    seed : int
        Seed of the proof witness and the numeric checks.
    out, err : text streams
        ``wrote FILE`` and progress go to ``err``; ``out`` stays empty.
    sizes : dict, optional
        Sizes for the numeric evidence (default: the model's).
    entries : int, optional
        Finite-difference entries per parameter.

    Returns
    -------
    int
        0 when every check held, 1 when one failed (the report is still
        written and says which), 2 on bad input, an unknown output type,
        no TeX engine for a PDF, or a failed compile (nothing written).
    """
    from ..files import write_atomically
    suffix = Path(output).suffix.lower()
    if suffix not in (".tex", ".pdf"):
        print(f"derive report: error: the output must end in .tex or .pdf, not {output!r}", file=err)
        return 2
    folder = Path(output).parent
    if str(folder) and not folder.is_dir():
        print(f"derive report: error: no such directory '{folder}' for {output}", file=err)
        return 2
    engine = None
    if suffix == ".pdf":
        engine = tex_engine()
        if engine is None:
            print(f"derive report: error: cannot write {output}: no TeX engine (latexmk or pdflatex) on "
                  f"PATH; {TEX_HINT}", file=err)
            return 2
    try:
        report = build_report(source, seed=seed, sizes=sizes, entries=entries, progress=err)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    if suffix == ".tex":
        write_atomically(output, report.tex)
    else:
        _say(err, "compiling the PDF")
        try:
            compile_pdf(report.tex, output, engine)
        except CompileError as error:
            print(f"derive report: error: {error}", file=err)
            return 2
    print(f"wrote {output}", file=err)
    if not report.passed:
        print("derive report: a check failed; the report says which", file=err)
    return 0 if report.passed else 1
