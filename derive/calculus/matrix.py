"""Reverse mode over the model's equations: dimension-generic BPTT recurrences.

Every named quantity ``X`` gets ``dL/dX`` as a sum of :class:`Term` s, one per
use of ``X`` by a later equation, each written with the consumer's adjoint
(``dL/dz_{t+1}``) rather than expanded, exactly as the recurrences are
written by hand.  A use one step back (``h_{t-1}`` in ``z_t``) becomes the
recurrent term of ``dL/dh_t`` with ``t`` shifted forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Dict, List, Optional, Set, Tuple

from ..model.model import Equation, Model
from ..notation.blocks import Linear, Place, stack
from ..notation.expr import (ONE, Adj, Binary, Call, Node, Num, Pick, Ref, Step, Unary, adjoint_refs, shift_steps,
                             transform, walk)
from ..notation.sugar import as_row_pick, as_row_softmax
from .rules import vjp
from .simplify import simplify

ADJOINT_KINDS = ("param", "state", "quantity")


@dataclass(frozen=True)
class Term:
    """One contribution to an adjoint.

    ``expr`` is written at step ``t`` of the quantity when it is per-step.
    ``at`` is set when the term exists at one step only (``[t = T]``).
    ``summed`` means ``expr`` depends on a step ``t`` summed over 1..T
    (a parameter shared by every step).  ``source`` names the consuming
    equation; ``fused`` marks the softmax + cross-entropy shortcut.
    ``consumer`` is set for a per-step use (``h_{t-1}`` read at step ``t``):
    the term of step ``t`` comes from the consuming equation at step
    ``t + consumer`` and so exists only where that step lies in 1..T, whether
    or not ``expr`` reads the consumer's adjoint (``h_t - d_t`` from a loss
    ``sum_t`` reads none, and has no step-0 part).
    """

    expr: Node
    source: str
    at: Optional[Step] = None
    summed: bool = False
    fused: bool = False
    via_log_pick: bool = False
    consumer: Optional[int] = None
    merged: Tuple[str, ...] = ()
    """The sources of the other blocks of a row stack made of several uses (the gates read from ``a_t``)."""


@dataclass
class Adjoint:
    """``dL/d name`` as a sum of terms; ``generic`` before any fusion."""

    name: str
    terms: List[Term]
    generic: Optional[List[Term]] = None
    note: str = ""


@dataclass
class MatrixDerivation:
    """The result of the matrix reverse sweep over a model."""

    model: Model
    adjoints: Dict[str, Adjoint] = field(default_factory=dict)
    constants: Dict[str, Node] = field(default_factory=dict)

    def numbers(self) -> Dict[str, int]:
        """Equation numbers of the adjoints, continuing after the forward equations."""
        first = len(self.model.equations) + 1
        return {name: first + k for k, name in enumerate(self.order())}

    def order(self) -> List[str]:
        """Quantities in the order the backward pass computes them."""
        names = [eq.name for eq in reversed(self.model.equations)]
        names += [s.name for s in self.model.params]
        names += [s.name for s in self.model.differentiable_inputs]
        return [n for n in names if n in self.adjoints]


def unbroadcast(contribution: Node, target_shape, model: Model) -> Node:
    """Sum ``contribution`` over the dimensions that broadcasting stretched."""
    shape = model.shape(contribution)
    rows_stretched = shape[0] != target_shape[0] and target_shape[0] == 1
    cols_stretched = shape[1] != target_shape[1] and target_shape[1] == 1
    if rows_stretched and cols_stretched:
        return Call("sum", (contribution,))
    if cols_stretched:
        return Call("rowsum", (contribution,))
    if rows_stretched:
        return Call("colsum", (contribution,))
    return contribution


def stretch(G: Node, node: Node, model: Model) -> Node:
    """``G * ones_like(node)`` when a broadcasting adjoint must take node's full shape."""
    if model.shape(G) != model.shape(node):
        return Binary("*", G, Call("ones_like", (node,)))
    return G


def softmax_source(model: Model, ref: Ref) -> Optional[Ref]:
    """If ``ref`` names ``y = softmax(o)``, the reference to ``o`` at ref's step."""
    eq = model.equation(ref.name)
    if eq is None or not (isinstance(eq.expr, Call) and eq.expr.fn == "softmax"):
        return None
    arg = eq.expr.args[0]
    if not isinstance(arg, Ref):
        return None
    if arg.step is not None and ref.step is not None:
        return Ref(arg.name, Step(ref.step.kind, ref.step.offset + arg.step.offset)
                   if arg.step.kind == "rel" else arg.step)
    return Ref(arg.name, arg.step)


def softmax_argument(model: Model, ref: Ref) -> Optional[Node]:
    """If ``ref`` names ``y = softmax(o)``, ``o`` (a name or an expression) at ref's step."""
    eq = model.equation(ref.name)
    if eq is None or not (isinstance(eq.expr, Call) and eq.expr.fn == "softmax"):
        return None
    arg = eq.expr.args[0]
    if isinstance(arg, Ref):
        return softmax_source(model, ref)
    return _at_step(arg, eq, ref)


def _at_step(arg: Node, eq: Equation, ref: Ref) -> Node:
    """``arg``, read in ``eq``'s right side, at the step of ``ref`` (a use of ``eq``'s left side)."""
    if not eq.per_step or ref.step is None:
        return arg
    if ref.step.kind == "rel":
        return shift_steps(arg, ref.step.offset)

    def fix(n):  # y_T = softmax(V @ h_T): the argument at the fixed step
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel":
            return replace(n, step=Step(ref.step.kind, ref.step.offset + n.step.offset))
        return n
    return transform(arg, fix)


def softmax_of(model: Model, node: Node) -> Optional[Node]:
    """``a`` when ``node`` is ``softmax(a)`` (each column normalised), else None.

    ``node`` is a softmax output ``y`` (``y = softmax(a)``), or the transpose
    of a row-wise one (``y = softmax(x, rows)``: ``y.T`` is ``softmax(x.T)``,
    so ``a`` is ``x.T``), at node's step.
    """
    if isinstance(node, Ref):
        return softmax_argument(model, node)
    if isinstance(node, Unary) and node.op == "T" and isinstance(node.x, Ref):
        eq = model.equation(node.x.name)
        if eq is not None and as_row_softmax(eq.expr) is not None:
            return _at_step(eq.expr.x.args[0], eq, node.x)
    return None


def softmax_inputs(model: Model, name: str) -> set:
    """The softmax outputs ``y`` whose argument reads ``name`` (``y_t = softmax(W_hy @ h_t + b_y)``),
    each column's or each row's."""
    out = set()
    for eq in model.equations:
        column = isinstance(eq.expr, Call) and eq.expr.fn == "softmax"
        if column or as_row_softmax(eq.expr) is not None:
            argument = eq.expr.args[0] if column else eq.expr.x.args[0]
            if any(isinstance(n, Ref) and n.name == name for n in walk(argument)):
                out.add(eq.name)
    return out


def _is_transpose(node: Node) -> bool:
    return isinstance(node, Unary) and node.op == "T"


class ReverseSweep:
    """Collects the terms of every adjoint from every equation."""

    def __init__(self, model: Model):
        self.model = model
        self.terms: Dict[str, List[Term]] = {}

    def add(self, name: str, term: Term):
        self.terms.setdefault(name, []).append(term)

    def equation(self, eq: Equation):
        step = Step("rel", 0) if eq.per_step else None
        G = Adj(eq.name, step)
        out = Ref(eq.name, step)
        self.backprop(eq.expr, G, out, eq.per_step, eq.name, False)

    def backprop(self, node: Node, G: Node, out: Optional[Node], per_step: bool, source: str,
                 log_pick: bool, fused: bool = False):
        model = self.model
        if isinstance(node, Ref) or (isinstance(node, Binary) and node.op in ("@", "dot")):
            G = stretch(G, node, model)
        if isinstance(node, Ref):
            self.leaf(node, G, per_step, source, fused=fused, log_pick=log_pick)
            return
        if isinstance(node, Call) and node.fn == "sum_t":
            self.backprop(node.args[0], G, None, True, source, False)
            return
        if isinstance(node, (Num, Adj)) or not node.children():
            return
        if isinstance(node, Call) and node.fn == "log" and isinstance(node.args[0], Pick):
            self.fuse_softmax_cross_entropy(node.args[0], G, per_step, source)
            log_pick = True
        elif isinstance(node, Call) and node.fn == "log" and as_row_pick(node.args[0]) is not None:
            # log(y[c, rows]) = log(y.T[c]).T: the pick of y.T's columns takes G's transpose
            self.fuse_softmax_cross_entropy(as_row_pick(node.args[0]), Unary("T", G), per_step, source)
            log_pick = True
        here = out if out is not None else node
        contributions = vjp(node, G, here, model)
        for child, contribution in zip(node.children(), contributions):
            if contribution is None:
                continue
            contribution = unbroadcast(contribution, model.shape(child), model)
            self.backprop(child, contribution, None, per_step, source,
                          log_pick and (isinstance(node, (Pick, Call)) or _is_transpose(node)), fused)

    def leaf(self, ref: Ref, G: Node, per_step: bool, source: str, fused=False, log_pick=False):
        sym = self.model.symbols[ref.name]
        if sym.kind not in ADJOINT_KINDS and not (sym.kind == "input" and sym.classes is None):
            return
        step = ref.step
        if step is None:
            term = Term(G, source, summed=per_step, fused=fused, via_log_pick=log_pick)
        elif step.kind == "rel":
            term = Term(shift_steps(G, -step.offset), source, fused=fused, via_log_pick=log_pick,
                        consumer=-step.offset)
        else:
            term = Term(G, source, at=step, summed=per_step, fused=fused, via_log_pick=log_pick)
        self.add(ref.name, term)

    def fuse_softmax_cross_entropy(self, pick: Pick, G: Node, per_step: bool, source: str):
        """``log(y[c])`` with ``y = softmax(o)``: ``d/do = G * (onehot(c) - y)``.

        When ``o`` is an expression (``softmax(W_hy @ h_t + b_y)``), that
        gradient is carried on through it to the quantities it reads, so no
        ``-1 / y[c]`` is ever formed: it overflows when ``y[c]`` underflows.
        """
        argument = softmax_of(self.model, pick.x)
        if argument is None:
            return
        fused = Binary("*", G, Binary("-", Call("onehot", (pick.cls,)), pick.x))
        fused = unbroadcast(fused, self.model.shape(argument), self.model)
        if isinstance(argument, Ref):
            self.leaf(argument, fused, per_step, source, fused=True)
        else:
            self.backprop(argument, simplify(fused, self.model), None, per_step, source, False, fused=True)


def _inline_constants(adjoints: Dict[str, List[Term]], model: Model) -> Dict[str, Node]:
    """Adjoints that are a constant (``dL/dL_t = 1``), to write in place."""
    constants: Dict[str, Node] = {}
    for name, terms in adjoints.items():
        if len(terms) == 1 and not terms[0].at and not terms[0].summed:
            expr = simplify(terms[0].expr, model)
            if isinstance(expr, Num):
                constants[name] = expr
    return constants


def _substitute(expr: Node, constants: Dict[str, Node]) -> Node:
    def sub(n):
        if isinstance(n, Adj) and n.name in constants and n.use is None:
            return constants[n.name]
        return n
    return transform(expr, sub)


def _merge_repeats(terms: List[Term], model: Model) -> List[Term]:
    """Equal terms as one, times their count: ``d(h_T * h_T)/dh_T`` is ``2 * h_T``, not ``h_T + h_T``."""
    counts: Dict[Term, int] = {}
    for t in terms:
        counts[t] = counts.get(t, 0) + 1
    return [t if k == 1 else replace(t, expr=simplify(Binary("*", Num(Fraction(k)), t.expr), model))
            for t, k in counts.items()]


def _merge_places(terms: List[Term]) -> List[Term]:
    """Terms that each place a block in some rows of zeros, and together fill every row, as one row stack.

    ``dL/da_t`` of gates sliced from ``a_t`` is then ``[dL/di_t * ...; dL/df_t * ...; ...]`` rather
    than a sum of zero-padded blocks.  Only terms alike in everything but their expression merge.
    """
    groups: Dict[tuple, List[Term]] = {}
    for t in terms:
        if isinstance(t.expr, Place) and t.expr.axis == 0:
            groups.setdefault((t.at, t.summed, t.fused, t.via_log_pick, t.consumer, t.expr.total), []).append(t)
    out, merged = list(terms), set()
    for (*_, total), group in groups.items():
        by_start, start, blocks = {t.expr.lo: t for t in group}, Linear(), []
        while start in by_start and start != total:
            blocks.append(by_start[start])
            start = by_start[start].expr.hi
        if start != total or len(blocks) != len(group) or len(blocks) < 2:
            continue
        out[out.index(blocks[0])] = replace(blocks[0], expr=stack([b.expr.args[0] for b in blocks]),
                                            merged=tuple(b.source for b in blocks[1:]))
        merged |= {id(b) for b in blocks[1:]}
    return [t for t in out if id(t) not in merged]


def derive_matrix(model: Model) -> MatrixDerivation:
    """Run the matrix reverse sweep and tidy each adjoint.

    Returns
    -------
    MatrixDerivation
        ``dL/dX`` for every equation's quantity, every state and every
        parameter, each a list of terms in the notation's own expressions.
    """
    sweep = ReverseSweep(model)
    sweep.add(model.loss, Term(ONE, "seed"))
    for eq in reversed(model.equations):
        sweep.equation(eq)
    raw = sweep.terms
    constants: Dict[str, Node] = {}
    while True:  # constants expose constants (dL/dL = 1 -> dL/dL_t = 1)
        found = _inline_constants(
            {k: [replace(t, expr=_substitute(t.expr, constants)) for t in v] for k, v in raw.items()}, model)
        if found == constants:
            break
        constants = found

    def tidy(terms):
        out = []
        for t in terms:
            expr = simplify(_substitute(t.expr, constants), model)
            if not (isinstance(expr, Num) and expr.value == 0):
                out.append(replace(t, expr=expr))
        return _merge_places(_merge_repeats(out, model))

    result = MatrixDerivation(model)
    for name in raw:
        all_terms = tidy(raw[name])
        generic = [t for t in all_terms if not t.fused]
        terms = generic
        fused = [t for t in all_terms if t.fused]
        note = ""
        if fused:
            softmax_outputs = softmax_inputs(model, name)
            if all(t.via_log_pick for y in softmax_outputs for t in raw.get(y, [])):
                terms = [t for t in generic if t.source not in softmax_outputs] + fused
                note = "softmax + cross-entropy: the chain through " + ", ".join(
                    model.display(y, Step("rel", 0) if model.symbols[y].per_step else None)
                    for y in sorted(softmax_outputs)) + " simplified"
        result.adjoints[name] = Adjoint(name, terms, generic if note else None, note)
    for sym in model.params:
        result.adjoints.setdefault(sym.name, Adjoint(sym.name, []))
    result.constants = constants
    return result


def adjoints_read_from(derivation: MatrixDerivation, names) -> Set[str]:
    """The adjoints of ``names`` and every adjoint their terms read, and theirs in turn."""
    todo = list(names)
    seen: Set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in derivation.adjoints:
            continue
        seen.add(name)
        todo += [a.name for t in derivation.adjoints[name].terms for a in adjoint_refs(t.expr)]
    return seen


def in_range(term: Term, t: Optional[int], T: int) -> bool:
    """Whether the term exists at step ``t`` of ``T``.

    It does when its consuming equation's step and every adjoint it reads lie
    in 1..T. Outside that range an adjoint is zero (``dL/dz_{T+1} = 0``) and
    a consumer does not exist, so the term vanishes; this is the boundary of
    the BPTT recurrence.
    """
    if term.consumer is not None and not 1 <= (t or 0) + term.consumer <= T:
        return False
    for adj in adjoint_refs(term.expr):
        if adj.step is not None and not 1 <= adj.step.at(t or 0, T) <= T:
            return False
    return True


def boundary_offsets(term: Term) -> List[int]:
    """Relative offsets of the steps a term needs (``+1`` for ``dL/dz_{t+1}``).

    The term at step ``t`` exists only where ``t + offset`` lies in 1..T for
    every offset: those of the adjoints it reads and of its consumer.
    """
    offsets = {a.step.offset for a in adjoint_refs(term.expr)
               if a.step is not None and a.step.kind == "rel" and a.step.offset != 0}
    if term.consumer:
        offsets.add(term.consumer)
    return sorted(offsets)


def initial_state_terms(adjoint: Adjoint) -> List[Term]:
    """The terms of a state's adjoint that exist at step 0 (``dL/dh_0``).

    A term fixed at step 0 (``h_0`` read at every step, or once) is one; a
    per-step term is one when every step it needs lies after step 0
    (``W_hh.T @ dL/dz_{t+1}``). A term with no later consumer
    (``h_t - d_t`` from a per-step loss) is not.
    """
    out = []
    for term in adjoint.terms:
        if term.at is not None:
            if term.at.kind == "abs" and term.at.offset == 0:
                out.append(term)
            continue
        if term.summed or term.consumer is None:
            continue
        needs = [term.consumer] + [a.step.offset for a in adjoint_refs(term.expr)
                                   if a.step is not None and a.step.kind == "rel"]
        if all(o >= 1 for o in needs):
            out.append(term)
    return out
