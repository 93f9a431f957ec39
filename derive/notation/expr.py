"""Expression trees shared by the parser, the derivations and the printers.

Every node is an immutable, hashable dataclass.  The source position
(``pos``) is carried along for error messages but is not part of equality,
so two trees that print the same compare equal wherever they came from.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Iterator, Optional, Tuple, Union

Pos = Optional[Tuple[int, int]]  # (line, column), both 1-based


@dataclass(frozen=True)
class Step:
    """A step index: ``t + offset`` (relative) or a fixed step.

    ``kind`` is ``"rel"`` (``t + offset``), ``"abs"`` (the integer
    ``offset``) or ``"last"`` (``T + offset``).  Inside a claim's range sum
    ``sum_{k=1}^{t}`` a relative step counts from the sum's ``k`` and
    ``"outer"`` from the claim's own ``t`` (:func:`bind_outer` fixes it).
    """

    kind: str
    offset: int = 0

    def shifted(self, by: int) -> "Step":
        """The same step moved by ``by`` if relative, else unchanged."""
        if self.kind == "rel":
            return Step("rel", self.offset + by)
        return self

    def at(self, t: int, T: int) -> int:
        """The concrete step number when the current step is ``t`` of ``T``."""
        if self.kind == "rel":
            return t + self.offset
        if self.kind == "last":
            return T + self.offset
        if self.kind == "outer":
            raise ValueError("the claim's step t inside a range sum is bound before evaluation")
        return self.offset

    def text(self, var: str = "t") -> str:
        """The subscript as written in the notation (``t``, ``{t-1}``, ``T``, ``0``)."""
        if self.kind == "abs":
            return str(self.offset)
        base = var if self.kind == "rel" else ("t" if self.kind == "outer" else "T")
        if self.offset == 0:
            return base
        sign = "+" if self.offset > 0 else "-"
        return "{%s%s%d}" % (base, sign, abs(self.offset))


STEP_SUB = re.compile(r"^\s*(t|T)\s*(?:([+-])\s*([0-9]+))?\s*$")

MAX_STEP_DIGITS = 9
"""Most digits of a step number (``h_{T-5}``, ``x_2``): a step is at most a size."""


def parse_step(text: str) -> Optional[Step]:
    """``t-1`` -> Step(rel, -1); ``T`` -> Step(last); ``2`` -> Step(abs, 2); else None.

    Only ASCII digits count (``h_{²}`` or ``h_{१}`` is no step), and a number of
    more than :data:`MAX_STEP_DIGITS` digits is none either.
    """
    if text.isascii() and text.isdigit():
        return Step("abs", int(text)) if len(text.lstrip("0")) <= MAX_STEP_DIGITS else None
    m = STEP_SUB.match(text)
    if not m or len((m.group(3) or "").lstrip("0")) > MAX_STEP_DIGITS:
        return None
    offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
    return Step("rel" if m.group(1) == "t" else "last", offset)


class Node:
    """Base class of expression nodes."""

    pos: Pos

    def children(self) -> Tuple["Node", ...]:
        return ()

    def rebuild(self, children: Tuple["Node", ...]) -> "Node":
        return self


@dataclass(frozen=True)
class Num(Node):
    """A rational constant."""

    value: Fraction
    pos: Pos = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Ref(Node):
    """A model symbol, at a step when it is a per-step quantity."""

    name: str
    step: Optional[Step] = None
    pos: Pos = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SizeRef(Node):
    """A size name standing as a number (``B`` in ``sum(e) / B``)."""

    name: str
    pos: Pos = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Adj(Node):
    """The adjoint ``d loss / d name`` (denominator layout, shaped like ``name``).

    ``loss`` is the scalar differentiated (``L`` or ``L`` at a step for
    ``dL_t/dX``); ``use`` restricts a shared parameter's derivative to its use
    at one step (``dL/dW_hh (t)``).
    """

    name: str
    step: Optional[Step] = None
    loss: str = "L"
    loss_step: Optional[Step] = None
    use: Optional[Step] = None
    pos: Pos = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Unary(Node):
    """``neg`` (``-x``) or ``T`` (transpose)."""

    op: str
    x: Node
    pos: Pos = field(default=None, compare=False, repr=False)

    def children(self):
        return (self.x,)

    def rebuild(self, children):
        return replace(self, x=children[0])


@dataclass(frozen=True)
class Binary(Node):
    """``+ - * / @ **`` and ``dot`` (the notes' ambiguous product; ``implicit`` when a claim wrote
    it without an operator, ``W_hy.T dL/dy``)."""

    op: str
    a: Node
    b: Node
    pos: Pos = field(default=None, compare=False, repr=False)
    implicit: bool = field(default=False, compare=False, repr=False)

    def children(self):
        return (self.a, self.b)

    def rebuild(self, children):
        return replace(self, a=children[0], b=children[1])


@dataclass(frozen=True)
class Call(Node):
    """A function applied to arguments (``tanh``, ``softmax``, ``sum_t`` ...)."""

    fn: str
    args: Tuple[Node, ...]
    pos: Pos = field(default=None, compare=False, repr=False)

    def children(self):
        return self.args

    def rebuild(self, children):
        return replace(self, args=tuple(children))


@dataclass(frozen=True)
class Pick(Node):
    """``y[c]``: the entry of class ``c`` in each column of ``y``."""

    x: Node
    cls: Node
    pos: Pos = field(default=None, compare=False, repr=False)

    def children(self):
        return (self.x, self.cls)

    def rebuild(self, children):
        return replace(self, x=children[0], cls=children[1])


@dataclass(frozen=True)
class Iverson(Call):
    """``[t = T] x``: ``x`` where the step ``t`` meets the condition, zero elsewhere (claims only).

    ``op`` is one of ``=``, ``<``, ``>``, ``<=``, ``>=``; ``bound`` is a fixed
    step (``abs``) or one counted from the end (``last``).  It is a
    :class:`Call` of ``iverson`` on ``x`` so that every walker and the shape
    rules (the shape of ``x``) treat it as a function of its argument.
    """

    op: str = "="
    bound: Step = Step("last", 0)

    def holds_at(self, t: int, T: int) -> bool:
        """Whether the condition holds at step ``t`` of ``T``."""
        return IVERSON_OPS[self.op](t, self.bound.at(t, T))

    def condition_text(self) -> str:
        """``t = T``, ``t < T-1``, ``t = 2``."""
        b = self.bound
        bound = str(b.offset) if b.kind == "abs" else "T" + (f"{b.offset:+d}" if b.offset else "")
        return f"t {self.op} {bound}"


@dataclass(frozen=True)
class StepSum(Call):
    """``sum_{k=1}^{t} x``: ``x`` summed over the steps ``k`` from ``lo`` to ``hi`` (claims only).

    In ``x`` a relative step counts from ``k`` and an ``outer`` one from the
    claim's step ``t`` (``dL_t/dz_k``); the bounds are relative to ``t``,
    fixed, or counted from ``T``.  An empty range is zero.  It is a
    :class:`Call` of ``sum_range`` on ``x``, so walkers and the shape rules
    treat it as ``sum_t``.
    """

    var: str = "k"
    lo: Step = Step("abs", 1)
    hi: Step = Step("rel", 0)

    def steps(self, t: int | None, T: int) -> range:
        """The steps ``k`` summed over when the claim's step is ``t`` of ``T``."""
        base = 0 if t is None else t
        if t is None and "rel" in (self.lo.kind, self.hi.kind):
            raise ValueError("a range sum bounded by t in a claim without a step t")
        return range(max(self.lo.at(base, T), 0), self.hi.at(base, T) + 1)

    def summands(self, t: int | None, T: int) -> tuple[range, Node]:
        """The steps ``k`` summed over and the summand with the claim's step bound (:func:`bind_outer`).

        Raises ``ValueError`` when a bound reads ``t`` and there is no ``t``.
        """
        return self.steps(t, T), (self.args[0] if t is None else bind_outer(self.args[0], t))

    def bounds_text(self) -> str:
        """``k=1}^{t``: the bounds as written, between ``sum_{`` and ``}``."""
        lo, hi = (b.text().strip("{}") for b in (self.lo, self.hi))
        return f"{self.var}={lo}}}^{{{hi}"


def step_sum(x: Node, var: str, lo: Step, hi: Step, pos: Pos = None) -> StepSum:
    """The node ``sum_{var=lo}^{hi} x``."""
    return StepSum("sum_range", (x,), pos=pos, var=var, lo=lo, hi=hi)


def bind_outer(node: Node, t: int) -> Node:
    """Every ``outer`` step (the claim's ``t + k`` inside a range sum) made the fixed step ``t + k``."""

    def fix(step):
        return Step("abs", t + step.offset) if step is not None and step.kind == "outer" else step

    def bind(n):
        if isinstance(n, Adj):
            return replace(n, step=fix(n.step), loss_step=fix(n.loss_step), use=fix(n.use))
        if isinstance(n, Ref) and n.step is not None and n.step.kind == "outer":
            return replace(n, step=fix(n.step))
        return n
    return transform(node, bind)


IVERSON_OPS = {"=": operator.eq, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
"""The comparisons an Iverson bracket ``[t OP step]`` may make."""


def iverson(x: Node, op: str, bound: Step, pos: Pos = None) -> Iverson:
    """The node ``[t OP bound] x``."""
    return Iverson("iverson", (x,), pos=pos, op=op, bound=bound)


Expr = Union[Num, Ref, SizeRef, Adj, Unary, Binary, Call, Pick]

ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
"""The entry-by-entry binary operators, shared by every evaluator."""

ELEMENTWISE_FUNCTIONS = ("tanh", "sigmoid", "relu", "exp", "log", "step")
"""Functions applied entry by entry (``step`` is the derivative of relu)."""

FUNCTIONS = {
    # name: number of arguments
    "tanh": 1, "sigmoid": 1, "relu": 1, "exp": 1, "log": 1, "step": 1,
    "softmax": 1, "onehot": 1, "sum": 1, "mean": 1, "sum_t": 1,
    "squared": 1, "transpose": 1, "rowsum": 1, "colsum": 1, "ones_like": 1,
}


def num(value) -> Num:
    """A constant node from an int, a Fraction or a decimal string."""
    return Num(Fraction(value))


ZERO = Num(Fraction(0))
ONE = Num(Fraction(1))


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    yield node
    for child in node.children():
        yield from walk(child)


def transform(node: Node, fn) -> Node:
    """Rebuild the tree bottom-up, replacing each node by ``fn(node)``."""
    kids = node.children()
    if kids:
        node = node.rebuild(tuple(transform(k, fn) for k in kids))
    return fn(node)


def outside_step_sums(node: Node, fn) -> Node:
    """:func:`transform`, leaving the inside of every ``sum_t`` (and range sum) as it is (its ``t`` is its own)."""
    if isinstance(node, Call) and node.fn in ("sum_t", "sum_range"):
        return node
    kids = node.children()
    if kids:
        node = node.rebuild(tuple(outside_step_sums(k, fn) for k in kids))
    return fn(node)


def shift_steps(node: Node, by: int) -> Node:
    """Move every relative step in the tree by ``by`` (not those a ``sum_t`` inside it sums over)."""

    def move(n):
        if isinstance(n, (Ref, Adj)) and n.step is not None:
            return replace(n, step=n.step.shifted(by))
        return n

    return outside_step_sums(node, move)


def fix_steps(node: Node, t: int) -> Node:
    """Every relative step made the fixed step ``t + offset`` (not those a ``sum_t`` inside sums over)."""

    def fix(n):
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel":
            return replace(n, step=Step("abs", t + n.step.offset))
        return n

    return outside_step_sums(node, fix)


def adjoint_refs(node: Node):
    """The adjoint references the tree uses."""
    return [n for n in walk(node) if isinstance(n, Adj)]
