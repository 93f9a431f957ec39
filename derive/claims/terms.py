"""Name the parts of a true derivative in the notation.

The exact sweep splits each adjoint by consumer (the equation and step that
uses the quantity); the matrix derivation gives each consumer's term as an
expression.  This module labels the parts relative to the claim's step and
prints them (``W_hh.T @ dL/dz_{t+1}``, the contributions of steps 1..t-1).
"""

from __future__ import annotations

from dataclasses import replace

from ..calculus.matrix import MatrixDerivation
from ..notation.expr import (
    Adj,
    Binary,
    Call,
    Node,
    Step,
    adjoint_refs,
    fix_steps,
    shift_steps,
    transform,
)
from ..notation.printer import NotationPrinter, show

Label = tuple[str, str, int | None]  # (consumer, "rel" | "abs", offset or step)


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


def label_of(owner: tuple, t: int | None) -> Label:
    """A consumer (quantity, step) relative to the claim's step ``t``."""
    name, step = owner
    if step is not None and t is not None:
        return (name, "rel", step - t)
    return (name, "abs", step)


class TermNamer:
    """Prints the truth and its parts for claims about one model."""

    def __init__(self, derivation: MatrixDerivation):
        self.derivation = derivation
        self.model = derivation.model

    def relabel(self, expr: Node, lhs: Adj) -> Node:
        """The derivation's ``dL/d...`` rewritten for the claim's loss (``dL_t/d...``)."""
        if lhs.loss == self.model.loss and lhs.loss_step is None:
            return expr

        def fix(n):
            if isinstance(n, Adj) and n.loss == self.model.loss and n.use is None:
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
            expr = term.expr
            if sym.per_step and lhs.step is not None and lhs.step.kind != "rel":
                expr = fix_steps(expr, lhs.step.offset) if lhs.step.kind == "abs" else expr
            elif sym.per_step and lhs.step is not None and lhs.step.offset:
                expr = shift_steps(expr, lhs.step.offset)
            elif not sym.per_step and term.summed:
                if kind == "rel":
                    expr = shift_steps(expr, v)
                elif v is not None:
                    expr = fix_steps(expr, v)
            out.append(self.relabel(expr, lhs))
        node = out[0]
        for e in out[1:]:
            node = Binary("+", node, e)
        return node

    def term_text(self, lhs: Adj, label: Label) -> str:
        expr = self.term_expr(lhs, label)
        if expr is None:
            consumer, kind, v = label
            base = self.model.symbols[consumer].base if self.model.symbols[consumer].per_step else consumer
            where = consumer if v is None else (f"{base}_{{t{v:+d}}}" if kind == "rel" else f"{base}_{v}")
            return f"the contribution through {where}"
        return show(expr)

    def summed_text(self, lhs: Adj, consumer: str, which: str) -> str | None:
        """A parameter's per-step contributions written as one sum over k."""
        terms = self._terms(lhs, consumer)
        if not terms or not all(t.summed for t in terms):
            return None
        exprs = [self.relabel(t.expr, lhs) for t in terms]
        body = " + ".join(KPrinter()(e) for e in exprs)
        return body

    def describe(self, lhs: Adj, labels: list[Label], missing: bool = True) -> list[str]:
        """Texts for a set of parts, a parameter's step contributions collapsed."""
        sym = self.model.symbols[lhs.name]
        texts, done = [], set()
        if not sym.per_step:
            by_consumer = {}
            for lab in labels:
                by_consumer.setdefault(lab[0], []).append(lab)
            for consumer, labs in by_consumer.items():
                offsets = sorted(l[2] for l in labs if l[1] == "rel")
                if not (any(o != 0 for o in offsets) or len(labs) >= 2):
                    continue
                if offsets and all(o < 0 for o in offsets):
                    which = "the earlier steps k = 1..t-1"
                elif offsets and all(o <= 0 for o in offsets):
                    which = "k = 1..t"
                elif offsets:
                    which = "the other steps k != t"
                else:
                    steps = sorted(l[2] for l in labs if l[2] is not None)
                    which = "steps k = " + ", ".join(map(str, steps))
                text = self.summed_text(lhs, consumer, which)
                if text:
                    texts.append(f"the contributions of {which}: the sum of {text}" if missing
                                 else f"sum over {which} of {text}")
                    done.update(labs)
        for lab in labels:
            if lab not in done:
                texts.append(self.term_text(lhs, lab))
        return texts

    def truth_text(self, lhs: Adj, labels: list[Label]) -> str:
        """The true derivative in the notation."""
        adj = self.derivation.adjoints.get(lhs.name)
        head = show(lhs)
        if lhs.loss == self.model.loss and lhs.loss_step is None and adj is not None:
            parts = []
            for term in adj.terms:
                expr = term.expr
                if lhs.use is not None and term.summed:
                    parts.append(show(fix_steps(expr, lhs.use.offset) if lhs.use.kind == "abs" else expr))
                    continue
                if self.model.symbols[lhs.name].per_step and lhs.step is not None and lhs.step.kind == "abs":
                    at = term.at
                    if at is not None and at.at(0, self.model.sizes.get("T") or 0) != lhs.step.offset:
                        continue
                    expr = fix_steps(expr, lhs.step.offset)
                    T = self.model.sizes.get("T") or 0
                    if any(a.step is not None and a.step.kind == "abs" and not 1 <= a.step.offset <= T
                           for a in adjoint_refs(expr)):
                        continue  # dL/dz_{T+1} = 0
                    parts.append(show(expr))
                    continue
                if lhs.step is not None and lhs.step.kind == "rel" and lhs.step.offset:
                    expr = shift_steps(expr, lhs.step.offset)
                text = show(Call("sum_t", (expr,))) if term.summed else show(expr)
                if term.at is not None:
                    text += f" (at t = {term.at.text()} only)"
                parts.append(text)
            return f"{head} = " + (" + ".join(parts) if parts else "0")
        texts = self.describe(lhs, sorted(set(labels), key=_label_key), missing=False)
        return f"{head} = " + (" + ".join(texts) if texts else "0")


def _label_key(lab: Label):
    return (lab[0], lab[1], -1e9 if lab[2] is None else -lab[2])
