"""Algebraic clean-up of matrix expressions: constants, signs, redundant ones.

Only rewrites that hold for every size are made (each one is an identity of
matrices), so the proof in :mod:`derive.calculus.prove` never depends on them being
clever, only on them being right.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Tuple

from ..model.model import broadcast
from ..notation.expr import ARITHMETIC, ONE, ZERO, Binary, Call, Node, Num, SizeRef, Unary, transform

SUMS = ("sum", "mean", "rowsum", "colsum", "sum_t")


def is_num(node: Node, value=None) -> bool:
    return isinstance(node, Num) and (value is None or node.value == value)


def coefficient(node: Node) -> Tuple[Fraction, Optional[Node]]:
    """Split ``node`` into a rational factor and the rest (None when a pure number)."""
    if isinstance(node, Num):
        return node.value, None
    if isinstance(node, Unary) and node.op == "neg":
        c, rest = coefficient(node.x)
        return -c, rest
    if isinstance(node, Binary) and node.op == "*":
        ca, ra = coefficient(node.a)
        cb, rb = coefficient(node.b)
        if ra is None or rb is None:
            return ca * cb, ra if rb is None else rb
    if isinstance(node, Binary) and node.op == "/" and isinstance(node.b, Num) and node.b.value != 0:
        c, rest = coefficient(node.a)
        return c / node.b.value, rest
    return Fraction(1), node


def _is_transpose(node: Node) -> bool:
    return isinstance(node, Unary) and node.op == "T"


def scalar_constant(node: Node) -> bool:
    """A tree of numbers and sizes alone (``-(1 / B)``): a scalar that is its own transpose."""
    if isinstance(node, (Num, SizeRef)):
        return True
    if isinstance(node, Unary) and node.op == "neg":
        return scalar_constant(node.x)
    return isinstance(node, Binary) and node.op in ARITHMETIC and scalar_constant(node.a) and scalar_constant(node.b)


def scaled(c: Fraction, rest: Optional[Node]) -> Node:
    """``c * rest`` in its plainest spelling."""
    if rest is None or c == 0:
        return Num(c)
    if c == 1:
        return rest
    if c == -1:
        return Unary("neg", rest)
    return Binary("*", Num(c), rest)


def _fold(op: str, a: Fraction, b: Fraction) -> Optional[Fraction]:
    if op in ARITHMETIC and not (op == "/" and b == 0):
        return ARITHMETIC[op](a, b)
    if op == "**" and b.denominator == 1 and (a != 0 or b >= 0):
        return a ** int(b)
    return None


class Simplifier:
    """Rewrites bottom-up; ``model`` supplies shapes for the ``ones_like`` rule."""

    def __init__(self, model):
        self.model = model

    def __call__(self, node: Node) -> Node:
        previous = None
        while node != previous:  # a rewrite can expose another one above it
            previous = node
            node = transform(node, self.step)
        return node

    def step(self, node: Node) -> Node:
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Call) and node.fn in SUMS and is_num(node.args[0], 0):
            return ZERO  # a sum of zeros (what 0 * X became) is zero
        return node

    def unary(self, node: Unary) -> Node:
        x = node.x
        if node.op == "T":
            if isinstance(x, (Num, SizeRef)):
                return x
            if isinstance(x, Unary) and x.op == "T":
                return x.x
            if scalar_constant(x):  # a number or a size: its own transpose
                return x
            if isinstance(x, Binary) and x.op == "*" and scalar_constant(x.a):
                return Binary("*", x.a, Unary("T", x.b))
            if isinstance(x, Unary) and x.op == "neg":
                return Unary("neg", Unary("T", x.x))
            if isinstance(x, Binary) and x.op in ("+", "-") and any(_is_transpose(c) for c in (x.a, x.b)):
                return Binary(x.op, Unary("T", x.a), Unary("T", x.b))  # (a - b.T).T = a.T - b
            return node
        if isinstance(x, Num):
            return Num(-x.value)
        if isinstance(x, Unary) and x.op == "neg":
            return x.x
        if isinstance(x, Binary) and x.op == "-":
            return Binary("-", x.b, x.a)
        c, rest = coefficient(x)
        if rest is not x:
            return scaled(-c, rest)
        return node

    def binary(self, node: Binary) -> Node:
        op, a, b = node.op, node.a, node.b
        if isinstance(a, Num) and isinstance(b, Num):
            folded = _fold(op, a.value, b.value)
            if folded is not None:
                return Num(folded)
        if op == "+":
            if is_num(a, 0):
                return b
            if is_num(b, 0):
                return a
            if isinstance(b, Unary) and b.op == "neg":
                return Binary("-", a, b.x)
            if isinstance(a, Unary) and a.op == "neg":
                return Binary("-", b, a.x)
            if isinstance(b, Num) and b.value < 0:
                return Binary("-", a, Num(-b.value))
            return node
        if op == "-":
            if is_num(b, 0):
                return a
            if is_num(a, 0):
                return Unary("neg", b)
            if isinstance(b, Unary) and b.op == "neg":
                return Binary("+", a, b.x)
            return node
        if op in ("*", "@"):
            if is_num(a, 0) or is_num(b, 0):
                return ZERO
            ca, ra = coefficient(a)
            cb, rb = coefficient(b)
            if ra is None or rb is None:
                return scaled(ca * cb, ra if rb is None else rb)
            if op == "*":
                rest = self.drop_ones(ra, rb)
                if rest is not None:
                    return scaled(ca * cb, rest)
            if ca * cb != 1 or ra is not a or rb is not b:
                return scaled(ca * cb, Binary(op, ra, rb))
            return node
        if op == "/":
            if is_num(b, 1):
                return a
            if is_num(a, 0):
                return ZERO
            if isinstance(b, Num) and b.value != 0:
                c, rest = coefficient(a)
                return scaled(c / b.value, rest)
            return node
        if op == "**":
            if is_num(b, 1):
                return a
            if is_num(b, 0):  # a matrix of ones keeps its shape: rowsum(X**0) counts columns
                return ONE if self.model.shape(a) == (1, 1) else Call("ones_like", (a,))
        return node

    def drop_ones(self, a: Node, b: Node) -> Optional[Node]:
        """``ones_like(X) * Y`` is ``Y`` when Y already has the product's shape."""
        for ones, other in ((a, b), (b, a)):
            if isinstance(ones, Call) and ones.fn == "ones_like":
                if broadcast(self.model.shape(ones.args[0]), self.model.shape(other)) == self.model.shape(other):
                    return other
                if isinstance(other, Call) and other.fn == "ones_like":
                    return ones
        return None


def simplify(node: Node, model) -> Node:
    """``node`` with constants folded, signs tidied and redundant ones removed."""
    return Simplifier(model)(node)
