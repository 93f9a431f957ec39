"""Name the parts of a true derivative in the notation.

The exact sweep splits each adjoint by consumer (the equation and step that
uses the quantity); the matrix derivation gives each consumer's term as an
expression.  This module labels the parts relative to the claim's step and
prints them (``W_hh.T @ dL/dz_{t+1}``, the contributions of steps 1..t-1).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from ..calculus.matrix import MatrixDerivation
from ..notation.expr import (
    Adj,
    Binary,
    Call,
    Node,
    Num,
    Ref,
    Step,
    Unary,
    fix_steps,
    iverson,
    outside_step_sums,
    shift_steps,
    transform,
    walk,
)
from ..notation.printer import BINARY_PREC, NotationPrinter, show
from .step_ranges import range_sum, step_range

Label = tuple[str, str, int | None]  # (consumer, "rel" | "abs" | "last", offset or step)


class KPrinter(NotationPrinter):
    """Prints summation steps as ``k`` while losses keep ``t`` (``dL_t/dz_k``)."""

    def step_text(self, step: Step) -> str:
        return step.text("k")

    def print_Adj(self, node: Adj) -> str:
        loss = node.loss if node.loss_step is None else self.symbol_t(node.loss, node.loss_step)
        return f"d{loss}/d{self.symbol(node.name, node.step)}"

    @staticmethod
    def symbol_t(name: str, step: Step) -> str:
        base = name.removesuffix("_t")
        return f"{base}_{step.text()}"


class ClearPrinter(NotationPrinter):
    """The notation with parentheses where a reader could misgroup a chain of products:
    ``(U.T @ g) * r`` rather than ``U.T @ g * r`` (the same tree either way)."""

    def print_Binary(self, node: Binary) -> str:
        if node.op in ("*", "@", "/") and isinstance(node.a, Binary) and node.a.op in ("*", "@") \
                and node.a.op != node.op:
            p = BINARY_PREC[node.op]
            return self.paren(self.print(node.a)) + self.op_text[node.op] + self.wrap(node.b, p + 1)
        return super().print_Binary(node)


def clear(node: Node) -> str:
    """A truth's text: :func:`show` with the parentheses of :class:`ClearPrinter`."""
    return ClearPrinter()(node)


def label_of(owner: tuple, t: int | None, T: int | None = None) -> Label:
    """A consumer (quantity, step) relative to the claim's step ``t``.

    Without a claim step, the consumer's step is a number, or counted from
    the last step when ``T`` is given (``("o", "last", -1)`` is ``o_{T-1}``).
    """
    name, step = owner
    if step is not None and t is not None:
        return (name, "rel", step - t)
    if step is not None and T is not None:
        return (name, "last", step - T)
    return (name, "abs", step)


class TermNamer:
    """Prints the truth and its parts for claims about one model."""

    def __init__(self, derivation: MatrixDerivation):
        self.derivation = derivation
        self.model = derivation.model

    def constants(self, expr: Node) -> Node:
        """Scalar adjoints that are constants written in place (``dL/dL_t`` is ``1/T`` when the loss
        is a mean over the steps): the truth names no internal quantity of the loss."""

        def sub(n):
            if not (isinstance(n, Adj) and n.use is None and n.loss == self.model.loss and n.loss_step is None):
                return n
            sym = self.model.symbols.get(n.name)
            adj = self.derivation.adjoints.get(n.name)
            if sym is None or sym.shape != (1, 1) or adj is None or len(adj.terms) != 1:
                return n
            term = adj.terms[0]
            if term.at is not None or term.summed or any(isinstance(k, (Ref, Adj)) for k in walk(term.expr)):
                return n
            return term.expr
        return transform(expr, sub)

    def relabel(self, expr: Node, lhs: Adj) -> Node:
        """The derivation's ``dL/d...`` rewritten for the claim's loss (``dL_t/d...``)."""
        if lhs.loss == self.model.loss and lhs.loss_step is None:
            return expr

        def fix(n):
            if isinstance(n, Adj) and n.loss == self.model.loss and n.use is None:
                if n.name == lhs.loss and n.step == lhs.loss_step:
                    return Num(Fraction(1))  # dL_t/dL_t
                return replace(n, loss=lhs.loss, loss_step=lhs.loss_step)
            return n
        return transform(expr, fix)

    def _terms(self, lhs: Adj, consumer: str):
        adj = self.derivation.adjoints.get(lhs.name)
        if adj is None:
            return []
        terms = [t for t in adj.terms if t.source == consumer]
        if not terms and adj.generic:
            fused = [t for t in adj.terms if t.fused]
            terms = fused or [t for t in adj.generic if t.source == consumer]
        return terms

    def term_expr(self, lhs: Adj, label: Label) -> Node | None:
        """The expression of one part of ``lhs``'s truth."""
        consumer, kind, v = label
        terms = self._terms(lhs, consumer)
        if not terms:
            return None
        sym = self.model.symbols[lhs.name]
        out = []
        for term in terms:
            if sym.per_step and lhs.step is not None:
                expr = self.place(lhs, term)
                if expr is None:
                    continue
            else:
                expr = term.expr
                if term.summed:
                    if kind == "rel":
                        expr = shift_steps(expr, v)
                    elif v is not None:
                        expr = _fix_at(expr, Step(kind, v))
            if lhs.loss == self.model.loss and lhs.loss_step is None:
                expr = self.constants(expr)
            out.append(tidy(self.relabel(expr, lhs)))
        if not out:
            return None
        node = out[0]
        for e in out[1:]:
            node = Binary("+", node, e)
        return node

    def place(self, lhs: Adj, term) -> Node | None:
        """A term of a per-step quantity's adjoint written for the claim's step.

        At ``t + k`` its steps are moved by ``k``, and a term that exists at
        one step only gets the Iverson bracket of that step (``[t = T]``); at a
        fixed step (``h_2``, ``h_T``) its steps are fixed there, and a term
        that does not exist at that step (another step's, or one reading
        ``dL/dz_{T+1}``) is None.
        """
        step = lhs.step
        first = 0 if self.model.symbols[lhs.name].kind == "state" else 1
        if step.kind == "rel":
            expr = shift_steps(term.expr, step.offset) if step.offset else term.expr
            if term.summed:
                expr = Call("sum_t", (expr,))
            if term.at is None:
                return expr
            bound = Step(term.at.kind, term.at.offset - step.offset)
            if bound.kind == "last" and bound.offset > -max(0, step.offset):
                return None  # t + k = T at a step past the last one the claim is checked at
            if bound.kind == "abs" and (bound.offset < first or bound.offset + step.offset < first):
                return None
            return iverson(expr, "=", bound)
        T = self.model.sizes.get("T")
        if term.at is not None and not _same_step(term.at, step, T):
            return None
        if term.summed:
            return Call("sum_t", (term.expr,))
        expr = _fix_at(term.expr, step)
        if term.consumer is not None and not _inside(Step(step.kind, step.offset + term.consumer), T, 1):
            return None
        for n in walk(expr):
            if isinstance(n, Adj) and n.step is not None and not _inside(n.step, T, 1):
                return None
            if isinstance(n, Ref) and n.step is not None and not _inside(n.step, T, 0):
                return None
        return expr

    def term_text(self, lhs: Adj, label: Label) -> str:
        expr = self.term_expr(lhs, label)
        if expr is None:
            consumer, kind, v = label
            base = self.model.symbols[consumer].base if self.model.symbols[consumer].per_step else consumer
            where = consumer if v is None else f"{base}_{Step(kind, v).text()}"
            return f"the contribution through {where}"
        return clear(expr)

    def summed_text(self, lhs: Adj, consumer: str, which: str) -> str | None:
        """A parameter's per-step contributions written as one sum over k."""
        terms = self._terms(lhs, consumer)
        if not terms or not all(t.summed for t in terms):
            return None
        exprs = [self.relabel(t.expr, lhs) for t in terms]
        body = " + ".join(KPrinter()(e) for e in exprs)
        return body

    def describe(self, lhs: Adj, labels: list[Label], missing: bool = True) -> list[str]:
        """Texts for a set of parts, a parameter's step contributions collapsed into a range sum."""
        texts = []
        for words, node, labs in self.parts(lhs, labels):
            if len(labs) == 1 and words is None:
                texts.append(self.term_text(lhs, labs[0]))
            elif node is not None:
                texts.append(f"the contributions of {words}: {clear(node)}" if missing else clear(node))
            else:
                body = self.summed_text(lhs, labs[0][0], words)
                texts.append(f"the contributions of {words}: the sum of {body}" if missing
                             else f"sum over {words} of {body}")
        return texts

    def claim_terms(self, lhs: Adj, labels: list[Label]) -> list[str] | None:
        """The parts as terms of a claim (range sums where steps are collapsed), or None when one is not."""
        nodes = self.claim_term_nodes(lhs, labels)
        return None if nodes is None else [clear(n) for n in nodes]

    def claim_term_nodes(self, lhs: Adj, labels: list[Label]) -> list[Node] | None:
        """:meth:`claim_terms` as trees."""
        out = []
        for words, node, labs in self.parts(lhs, labels):
            if len(labs) == 1 and words is None:
                node = self.term_expr(lhs, labs[0])
            if node is None:
                return None
            out.append(node)
        return out

    def parts(self, lhs: Adj, labels: list[Label]) -> list[tuple[str | None, Node | None, list[Label]]]:
        """The parts grouped: (words, range sum or None, labels) for a parameter's run of steps, and
        (None, None, [label]) for each other part."""
        sym = self.model.symbols[lhs.name]
        groups, done = [], set()
        if not sym.per_step:
            by_consumer = {}
            for lab in labels:
                by_consumer.setdefault(lab[0], []).append(lab)
            for consumer, labs in by_consumer.items():
                offsets = [lab[2] for lab in labs if lab[1] == "rel"]
                if not (any(o != 0 for o in offsets) or len(labs) >= 2):
                    continue
                words, ranges = step_range(labs)
                terms = self._terms(lhs, consumer)
                if not terms or not all(t.summed for t in terms):
                    continue
                node = range_sum([self.relabel(t.expr, lhs) for t in terms], ranges)
                groups.append((words, node, labs))
                done.update(labs)
        return groups + [(None, None, [lab]) for lab in labels if lab not in done]

    def truth_text(self, lhs: Adj, labels: list[Label]) -> tuple[str, bool]:
        """The true derivative in the notation, and whether the text is a claim (False when it sums
        over steps ``k = 1..t``, which the claims grammar cannot write)."""
        adj = self.derivation.adjoints.get(lhs.name)
        head = show(lhs)
        if lhs.loss == self.model.loss and lhs.loss_step is None and adj is not None:
            parts = []
            per_step = self.model.symbols[lhs.name].per_step and lhs.step is not None
            for term in adj.terms:
                expr = self.constants(term.expr)
                if per_step:
                    node = self.place(lhs, replace(term, expr=expr))
                    if node is not None:
                        parts.append(node)
                elif lhs.use is not None and term.summed:
                    parts.append(_fix_at(expr, lhs.use) if lhs.use.kind != "rel" else expr)
                else:
                    parts.append(Call("sum_t", (tidy(expr),)) if term.summed else expr)
            if not parts:
                return f"{head} = 0", True
            total = parts[0]
            for p in parts[1:]:
                total = Binary("+", total, p)
            return f"{head} = {clear(tidy(total))}", True
        texts = self.describe(lhs, sorted(set(labels), key=_label_key), missing=False)
        is_claim = not any(t.startswith(("sum over ", "the contribution")) for t in texts)
        return f"{head} = " + (" + ".join(texts) if texts else "0"), is_claim


def tidy(node: Node) -> Node:
    """Constants folded the way a student writes them: ``1 / B * x`` is ``x / B``,
    ``2 * (x / B)`` is ``2 * x / B`` and ``-(a - b)`` is ``b - a`` (the same values)."""

    def fold(n):
        if isinstance(n, Binary) and n.op == "+" and isinstance(n.a, Unary) and n.a.op == "neg":
            return Binary("-", n.b, n.a.x)  # -a + b is b - a
        if isinstance(n, Unary) and n.op == "neg":
            x = n.x
            if isinstance(x, Binary) and x.op == "-":
                return Binary("-", x.b, x.a)
            if isinstance(x, Binary) and x.op == "/" and isinstance(x.a, Binary) and x.a.op == "-":
                return Binary("/", Binary("-", x.a.b, x.a.a), x.b)
        if isinstance(n, Binary) and n.op == "/" and isinstance(n.a, Binary) and n.a.op == "*" \
                and isinstance(n.b, Binary) and n.b.op == "*" and isinstance(n.a.a, Num) and n.a.a == n.b.a:
            return Binary("/", n.a.b, n.b.b)  # 2 * x / (2 * B) is x / B
        if isinstance(n, Binary) and n.op == "*":
            a, b = n.a, n.b
            if isinstance(a, Binary) and a.op == "/" and isinstance(a.a, Num) and a.a.value == 1:
                return Binary("/", b, a.b)
            if isinstance(a, Num) and a.value == 1:
                return b
            if isinstance(a, Num) and isinstance(b, Binary) and b.op == "/":
                return Binary("/", Binary("*", a, b.a), b.b)
        return n
    return transform(node, fold)


def _same_step(a: Step, b: Step, T: int | None) -> bool:
    """Whether two fixed steps (a number, or counted from T) are the same step."""
    if a == b:
        return True
    if T is None or a.kind == "rel" or b.kind == "rel":
        return False
    return a.at(0, T) == b.at(0, T)


def _inside(step: Step, T: int | None, first: int) -> bool:
    """Whether a fixed step lies in first..T (a step from the end: at most T)."""
    if step.kind == "last":
        return step.offset <= 0 and (T is None or T + step.offset >= first)
    if step.kind == "abs":
        return step.offset >= first and (T is None or step.offset <= T)
    return True


def _fix_at(expr: Node, step: Step) -> Node:
    """Every relative step ``t + k`` made the fixed step ``step + k`` (a number, or from T)."""
    if step.kind == "abs":
        return fix_steps(expr, step.offset)

    def fix(n):
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel":
            return replace(n, step=Step(step.kind, step.offset + n.step.offset))
        return n
    return outside_step_sums(expr, fix)


def _label_key(lab: Label):
    return (lab[0], lab[1], -1e9 if lab[2] is None else -lab[2])
