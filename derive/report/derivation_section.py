"""Section 2 of a model report: the gradients, step by step, each chain-rule step with the rule behind it."""

from __future__ import annotations

from dataclasses import replace
from typing import List

from ..calculus.matrix import Adjoint, Term, initial_state_terms
from ..notation.expr import Adj, Binary, Call, Node, Pick, Ref, Step, Unary, adjoint_refs, fix_steps, walk
from .document import Doc
from .latex import escape_text, name_math, shape_math, step_math
from .typeset import Typesetter, signed

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
    ("R14", "row stack",
     r"C = \begin{bmatrix} A \\ B \end{bmatrix}:\quad \frac{\partial L}{\partial A}, \frac{\partial L}{\partial B} = "
     r"\text{the rows of } \frac{\partial L}{\partial C} \text{ that } A, B \text{ fill}"),
    ("R15", "slice",
     r"C = A[\mathit{lo}{:}\mathit{hi}]:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial C}"
     r" \text{ in its rows (or columns) } \mathit{lo}{:}\mathit{hi}, \text{ zeros elsewhere}"),
]
"""The matrix rules a derivation step cites, as ``(label, what, formula)``: the table of Section 2."""

ELEMENTWISE = ("tanh", "sigmoid", "relu", "exp", "log", "step")
"""Functions differentiated by R5 (elementwise function)."""


def derivation_section(doc: Doc, typeset: Typesetter, with_steps: bool = True):
    """Write the section on the gradients: the rules, then every gradient in the order it is computed.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model, its derivation, and how they are typeset.
    with_steps : bool
        Show every chain-rule step and the notes beside it; otherwise only
        each gradient's final sum.
    """
    derivation = typeset.shown
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
    for name in derivation.order():
        adjoint = derivation.adjoints[name]
        if with_steps:
            adjoint_steps(doc, typeset, adjoint)
        else:
            adjoint_result(doc, typeset, adjoint)


def adjoint_result(doc: Doc, typeset: Typesetter, adjoint: Adjoint):
    """Display the gradient ``adjoint`` as one numbered equation, the sum of its terms."""
    name = adjoint.name
    lhs = typeset.adj(name, inline=False)
    doc.display_sum(lhs, typeset.sum_parts(adjoint.terms, name), typeset.numbers[name])


def rules_for(model, term: Term, name: str) -> List[str]:
    """The labels of the rules on the way from the consuming equation down to ``name``."""
    if term.fused:
        return ["R13"]
    eq = model.equation(term.source)
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
            visit(child, path + rule_of(node, k, child, model))

    visit(eq.expr, [])
    return found


def adjoint_steps(doc: Doc, typeset: Typesetter, adjoint: Adjoint):
    """Derive the gradient ``adjoint`` step by step: one chain-rule step per use, then the sum."""
    m = typeset.model
    name = adjoint.name
    sym = m.symbols[name]
    number = typeset.numbers[name]
    lhs_inline = typeset.adj(name)
    lhs = typeset.adj(name, inline=False)
    doc.add(rf"\subsection*{{({number})\quad ${lhs_inline}$\quad \normalfont\small(${shape_math(sym.shape)}$)}}", "")
    if name in typeset.derivation.constants:
        eq = m.equation(name)
        why = r"it is the loss itself" if name == m.loss else \
            (r"$L$ adds it with weight one (R10)" if eq is not None else "")
        doc.para(rf"A constant, written in place wherever it appears: {why}.")
        doc.display(f"{lhs} = {typeset.tex(typeset.derivation.constants[name])}", number)
        return
    terms = adjoint.terms
    if not terms:
        doc.para(rf"${typeset.sym(name)}$ does not influence $L$: its gradient is zero.")
        zero_uses(doc, typeset, adjoint)
        doc.display(f"{lhs} = 0", number)
        return
    sources = []
    for t in terms:
        eq = m.equation(t.source)
        if eq is not None and eq.number not in sources:
            sources.append(eq.number)
    uses = ", ".join(f"({n})" for n in sources)
    if len(terms) == 1:
        doc.para(rf"${typeset.sym(name)}$ is read by {uses}; one chain-rule step:")
    else:
        doc.para(rf"${typeset.sym(name)}$ is read by {uses}; one term per use, each a chain-rule "
                 r"step from the reading equation's gradient:")
    for term in terms:
        term_step(doc, typeset, adjoint, term)
    zero_uses(doc, typeset, adjoint)
    # a state's terms at t = 0 only (h_0 read at every step) belong to dL/dh_0, shown after the sum
    at_zero = [t for t in terms if sym.kind == "state" and t.at is not None and t.at.kind == "abs"
               and t.at.offset == 0]
    doc.para("Together, for $t = 1, \\dots, T$:" if at_zero else "Together:")
    doc.display_sum(lhs, typeset.sum_parts([t for t in terms if t not in at_zero], name), number)
    lines = typeset.code_lines.get(number)
    if lines:
        doc.para(r"Computed by the generated code at line%s %s." % (
            "s" if len(lines) > 1 else "", ", ".join(str(n) for n in lines)))
    boundary_note(doc, typeset, adjoint)
    if adjoint.generic:
        softmax_note(doc, typeset, adjoint)


def zero_uses(doc: Doc, typeset: Typesetter, adjoint: Adjoint):
    """Say which uses of a quantity contribute nothing: they go through a gradient proved zero."""
    shown = adjoint.terms
    dropped = [t for t in typeset.derivation.adjoints[adjoint.name].terms if t not in shown]
    sources = []
    for term in dropped:
        eq = typeset.model.equation(term.source)
        if eq is not None and eq not in sources:
            sources.append(eq)
    for eq in sources:
        through = sorted({a.name for t in dropped if t.source == eq.name for a in adjoint_refs(t.expr)}
                         & typeset.zero)
        grads = ", ".join(f"${typeset.adj(n)}$" for n in through)
        names = ", ".join(f"${name_math(n)}$" for n in through)
        doc.para(rf"The use of ${name_math(adjoint.name)}$ by equation ({eq.number}) contributes nothing: it goes "
                 rf"through {grads}, which is zero at every step, since no chain of uses leads from {names} "
                 r"to $L$ (the term is left out).")


def term_step(doc: Doc, typeset: Typesetter, adjoint: Adjoint, term: Term):
    """One chain-rule step: the term ``term`` of ``adjoint``, the rules behind it, and its shape."""
    m = typeset.model
    name = adjoint.name
    rules = rules_for(m, term, name)
    via = typeset.source_text(term)
    rule_text = (" by " + ", ".join(rules)) if rules else ""
    lhs = typeset.adj(name, inline=False)
    shaped = typeset.shaped(term.expr)
    fixed = term.at if term.at is not None and m.symbols[name].per_step else None
    if term.summed:
        use = Adj(name, fixed, use=Step("rel", 0))
        doc.para(rf"Through {via}{rule_text}: ${typeset.sym(name, fixed)}$ is used at every step $t$, "
                 rf"and its use at step $t$ contributes")
        doc.display(rf"{typeset.tex(use)} = {shaped}")
        notes = ""
        if "notes' sum over steps" not in typeset.said:
            typeset.said.add("notes' sum over steps")
            notes = r" (the notes' \texttt{dL/dWhh (t = 1) + dL/dWhh (t = 2)})"
        doc.para(rf"so the gradient sums the uses over the steps{notes}: "
                 rf"${typeset.inline(Adj(name, fixed))} = \sum_{{t=1}}^{{T}} {typeset.inline(use)}$.")
    else:
        when = ""
        if term.at is not None and m.symbols[name].per_step:
            when = rf" (at $t = {step_math(term.at)}$ only: the equation reads ${typeset.sym(name, term.at)}$ alone)"
        doc.para(rf"Through {via}{rule_text}{when}:")
        doc.display(rf"{lhs} \mathrel{{+}}= {shaped}")
    try:
        result = shape_math(m.shape(term.expr))
        doc.para(rf"The factors conform and give ${result}$, the shape of ${typeset.sym(name)}$.")
    except Exception:
        pass
    if term.fused:
        doc.para(r"This is the softmax + cross-entropy simplification (R13); the generic chain "
                 r"through the softmax and the steps that simplify it follow below.")
    if any(a.step is not None and a.step.kind == "rel" and a.step.offset > 0
           for a in adjoint_refs(term.expr)) and m.symbols[name].per_step:
        recurrent_note(doc, typeset, name, term)
    batch_notes(doc, typeset, name, term)


def recurrent_note(doc: Doc, typeset: Typesetter, name: str, term: Term):
    """Explain the recurrent term of backpropagation through time that ``term`` of ``name`` is."""
    m = typeset.model
    reads = [a for a in adjoint_refs(term.expr) if a.step is not None and a.step.offset > 0]
    a = reads[0]
    eq = m.equation(term.source)
    later = typeset.inline(a)
    prev = typeset.sym(name, Step("rel", -1))
    if ("recurrent term", name) in typeset.said:
        doc.para(rf"Another recurrent term: equation ({eq.number}) reads ${prev}$, so ${typeset.sym(name)}$ also "
                 rf"feeds ${typeset.sym(a.name, a.step)}$ at the next step; it is zero at $t = T$ too, where "
                 rf"${typeset.inline(Adj(a.name, Step('last', a.step.offset)))} = 0$.")
        return
    typeset.said.add(("recurrent term", name))
    doc.para(
        rf"This is the \textbf{{recurrent term}} of backpropagation through time: equation ({eq.number}) "
        rf"reads ${prev}$, so ${typeset.sym(name)}$ also feeds ${typeset.sym(a.name, a.step)}$ at the next step, "
        rf"and everything the loss does after step $t$ reaches ${typeset.sym(name)}$ through ${later}$. "
        rf"Without it the gradient would count only the loss at step $t$ (the notes' per-step "
        rf"\texttt{{dL{{\ttfamily\char95}}t/dh{{\ttfamily\char95}}t}}). The recurrence runs backwards from $t = T$, where there is no next "
        rf"step: ${typeset.inline(Adj(a.name, Step('last', a.step.offset)))} = 0$.")


def batch_notes(doc: Doc, typeset: Typesetter, name: str, term: Term):
    """Explain each matrix product and column sum in ``term`` that runs over the examples of a batch."""
    m = typeset.model
    if not typeset.batch:
        return
    said = set()
    for node in walk(term.expr):
        if isinstance(node, Binary) and node.op == "@":
            try:
                inner = m.shape(node.a)[1]
            except Exception:
                continue
            if inner in typeset.batch and ("mm", inner) not in said:
                said.add(("mm", inner))
                a, b = typeset.inline(node.a), typeset.inline(node.b)
                dim = escape_text(str(inner))
                if ("batch matmul", inner) in typeset.said:
                    doc.para(rf"The matrix product ${a}\,{b}$ runs over the batch too (inner dimension "
                             rf"${dim}$): it sums the examples' contributions.")
                    continue
                typeset.said.add(("batch matmul", inner))
                doc.para(
                    rf"The matrix product ${a}\,{b}$ runs over the batch: its inner dimension is "
                    rf"${dim}$, one column per example, so it is the sum of the examples' outer "
                    rf"products, $\sum_{{b=1}}^{{{dim}}} (\cdot)_{{:,b}}\,(\cdot)_{{b,:}}$. "
                    rf"${typeset.sym(name)}$ is used by every example, and its gradient adds each "
                    rf"example's contribution; this is why the notes find a matmul wherever the "
                    rf"batch size appears in a shape (seed 000).")
        if isinstance(node, Call) and node.fn in ("rowsum", "colsum", "sum"):
            try:
                shape = m.shape(node.args[0])
            except Exception:
                continue
            dims = {"rowsum": [shape[1]], "colsum": [shape[0]], "sum": list(shape)}[node.fn]
            for dim in dims:
                if dim in typeset.batch and ("sum", dim) not in said:
                    said.add(("sum", dim))
                    sum_note(doc, typeset, name, node, str(dim))


def sum_note(doc: Doc, typeset: Typesetter, name: str, node: Call, dim: str):
    """Explain the sum ``node`` (rowsum, colsum or sum) over the ``dim`` examples of a batch (R2).

    The contribution summed is the argument of ``node`` in the step displayed
    just above; it is called ``C`` here, so that no long formula is repeated inline.
    """
    ones = rf"\mathbf{{1}}_{{{escape_text(dim)}}}"
    what, identity = {
        "rowsum": ("adds up the columns of $C$, one column per example", rf"\operatorname{{rowsum}}(C) = C\,{ones}"),
        "colsum": ("adds up the rows of $C$, one row per example", rf"\operatorname{{colsum}}(C) = {ones}^{{\top}} C"),
        "sum": ("adds up every entry of $C$, the examples' included",
                r"\operatorname{sum}(C) = \mathbf{1}^{\top} C\,\mathbf{1}"),
    }[node.fn]
    doc.para(rf"${typeset.sym(name)}$ is broadcast over the ${escape_text(dim)}$ examples (R2), so its "
             rf"gradient above takes the contribution of every example, $C$ (the argument of "
             rf"$\operatorname{{{node.fn}}}$ above), and {what}: ${identity}$.")


def boundary_note(doc: Doc, typeset: Typesetter, adjoint: Adjoint):
    """For a state: the gradient of its initial value at ``t = 0``."""
    m = typeset.model
    sym = m.symbols[adjoint.name]
    if sym.kind != "state":
        return
    terms = initial_state_terms(adjoint)
    parts = []
    for term in terms:
        parts.append(typeset.sum_terms([replace(term, at=None)], adjoint.name) if term.summed
                     else typeset.tex(fix_steps(term.expr, 0)))
    direct = sorted({typeset.model.equation(t.source).number for t in terms if t.at is not None
                     and typeset.model.equation(t.source) is not None})
    if direct:
        who = (r"the next step reads the initial state, and so does equation"
               + ("s " if len(direct) > 1 else " ") + ", ".join(f"({n})" for n in direct) + " directly")
    else:
        who = "only the next step reads the initial state"
    doc.para(rf"At $t = 0$ {who}, which gives its gradient "
             r"(the generated code returns it with \texttt{wrt{\ttfamily\char95}initial{\ttfamily\char95}state=True}):")
    doc.display_sum(typeset.adj(adjoint.name, inline=False, step=Step("abs", 0)), signed(parts))


def softmax_note(doc: Doc, typeset: Typesetter, adjoint: Adjoint):
    """Show the generic chain through the softmax and how it collapses to ``y - onehot(c)``."""
    name = adjoint.name
    lhs = typeset.adj(name, inline=False)
    softmax_outputs = [eq for eq in typeset.model.equations
                       if isinstance(eq.expr, Call) and eq.expr.fn == "softmax"
                       and isinstance(eq.expr.args[0], Ref) and eq.expr.args[0].name == name]
    doc.para(r"\textbf{Softmax and cross-entropy.} Generically, the chain through the softmax "
             r"(R11) gives")
    doc.display_sum(lhs, typeset.sum_parts(adjoint.generic, name))
    parts = []
    for eq in softmax_outputs:
        y = typeset.sym(eq.name)
        dy = typeset.inline(Adj(eq.name, typeset.step_of(eq.name)))
        ydy = rf"{y} \odot {dy}"
        n = typeset.numbers.get(eq.name)
        dy_terms = typeset.derivation.adjoints.get(eq.name)
        shown = ""
        if dy_terms is not None and dy_terms.terms:
            shown = rf" = {typeset.sum_terms(dy_terms.terms, eq.name)}"
        parts.append(
            rf"With ${dy}{shown}$ from ({n}), the product ${ydy}$ is zero except in the row of the "
            rf"correct class, where $y[c]\cdot(-1/y[c]) = -1$; so ${ydy} = -\operatorname{{onehot}}(c)$ "
            rf"(times $\partial L/\partial L_t$, here 1), $\operatorname{{colsum}}({ydy}) = -1$, and the "
            rf"generic form collapses to ${y} \odot ({dy} + 1) = {y} - \operatorname{{onehot}}(c)$, "
            rf"the notes' \texttt{{y{{\ttfamily\char95}}t - one{{\ttfamily\char95}}hot(c)}}.")
    for p in parts:
        doc.para(p)
    doc.para(r"Both forms, the generic one and the simplified one, were proved equal to the exact "
             r"derivation (Section~\ref{sec:proof}); the code uses the simplified one.")


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
        if node.fn == "stack":
            return ["R14"]
        if node.fn == "slice":
            return ["R15"]
    return []
