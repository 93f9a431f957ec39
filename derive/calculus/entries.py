"""Evaluate expression trees entry by entry into SymPy scalars at concrete sizes.

A :class:`Mat` is a small dense matrix of SymPy expressions.  The same
evaluator builds the unrolled model (entries are symbols), instantiates a
matrix recurrence at given sizes, and computes high-precision witnesses
(entries are 50-digit Floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import sympy

from ..notation.blocks import Place, Slice, Stack, dim_value
from ..notation.expr import ARITHMETIC, Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Unary

Key = tuple  # (name, step or None)


@dataclass
class Mat:
    """``rows x cols`` entries, row-major."""

    rows: int
    cols: int
    data: List[sympy.Expr]

    def __getitem__(self, ij):
        i, j = ij
        return self.data[i * self.cols + j]

    @staticmethod
    def fill(rows: int, cols: int, fn: Callable[[int, int], sympy.Expr]) -> "Mat":
        return Mat(rows, cols, [fn(i, j) for i in range(rows) for j in range(cols)])

    def map(self, fn) -> "Mat":
        return Mat(self.rows, self.cols, [fn(x) for x in self.data])

    def entries(self):
        for i in range(self.rows):
            for j in range(self.cols):
                yield (i, j), self[i, j]


def zeros(rows: int, cols: int) -> Mat:
    return Mat(rows, cols, [sympy.S.Zero] * (rows * cols))


def elementwise(a: Mat, b: Mat, fn) -> Mat:
    """``fn`` entry by entry with a dimension of 1 broadcasting."""
    rows = max(a.rows, b.rows)
    cols = max(a.cols, b.cols)
    if a.rows not in (1, rows) or b.rows not in (1, rows) or a.cols not in (1, cols) or b.cols not in (1, cols):
        raise ValueError(f"cannot broadcast {a.rows}x{a.cols} with {b.rows}x{b.cols}")
    return Mat.fill(rows, cols, lambda i, j: fn(a[i if a.rows > 1 else 0, j if a.cols > 1 else 0],
                                                 b[i if b.rows > 1 else 0, j if b.cols > 1 else 0]))


def matmul(a: Mat, b: Mat) -> Mat:
    if a.cols != b.rows:
        raise ValueError(f"cannot multiply {a.rows}x{a.cols} by {b.rows}x{b.cols}")
    return Mat.fill(a.rows, b.cols, lambda i, j: sympy.Add(*[a[i, k] * b[k, j] for k in range(a.cols)]))


def sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


ELEMENTWISE = {
    "tanh": sympy.tanh,
    "sigmoid": sigmoid,
    "relu": lambda x: sympy.Max(0, x),
    "exp": sympy.exp,
    "log": sympy.log,
    "step": lambda x: sympy.Heaviside(x, 0),
}
"""SymPy forms of the elementwise functions; ``step`` is 0 at 0, as in the generated code and the float checks."""


class Evaluator:
    """Evaluates trees at step ``t`` of ``T``.

    ``lookup(name, step_number)`` returns the :class:`Mat` of a symbol
    (``step_number`` None for a non-step symbol); ``adjoint(adj_node,
    step_number)`` returns an adjoint's Mat; ``classes(name, step_number)``
    the list of class indices, one per column.
    """

    def __init__(self, model, sizes: Dict[str, int], T: int, lookup, adjoint=None, classes=None):
        self.model = model
        self.sizes = sizes
        self.T = T
        self.lookup = lookup
        self.adjoint = adjoint
        self.classes = classes

    def dim(self, d) -> int:
        return dim_value(d, self.sizes)

    def step_number(self, step, t: Optional[int]) -> Optional[int]:
        if step is None:
            return None
        return step.at(t if t is not None else 0, self.T)

    def __call__(self, node: Node, t: Optional[int] = None) -> Mat:
        return self.value_of(node, t)

    def value_of(self, node: Node, t: Optional[int]) -> Mat:
        if isinstance(node, Num):
            return Mat(1, 1, [sympy.Rational(node.value.numerator, node.value.denominator)])
        if isinstance(node, SizeRef):
            return Mat(1, 1, [sympy.Integer(self.sizes[node.name])])
        if isinstance(node, Ref):
            return self.lookup(node.name, self.step_number(node.step, t))
        if isinstance(node, Adj):
            return self.adjoint(node, self.step_number(node.step, t))
        if isinstance(node, Unary):
            x = self.value_of(node.x, t)
            if node.op == "neg":
                return x.map(lambda v: -v)
            return Mat.fill(x.cols, x.rows, lambda i, j: x[j, i])
        if isinstance(node, Binary):
            return self.binary(node, t)
        if isinstance(node, Pick):
            x = self.value_of(node.x, t)
            cls = self.classes(node.cls.name, self.step_number(node.cls.step, t))
            return Mat.fill(1, x.cols, lambda i, j: x[cls[j], j])
        if isinstance(node, (Stack, Slice, Place)):
            return self.block(node, t)
        if isinstance(node, Call):
            return self.call(node, t)
        raise TypeError(type(node).__name__)

    def block(self, node: Node, t) -> Mat:
        """A row stack, a slice, or a block placed in zeros, entry by entry."""
        parts = [self.value_of(a, t) for a in node.args]
        if isinstance(node, Stack):
            rows = [r for p in parts for r in range(p.rows)]
            owner = [p for p in parts for _ in range(p.rows)]
            return Mat.fill(len(rows), parts[0].cols, lambda i, j: owner[i][rows[i], j])
        x, lo, hi = parts[0], node.lo.value(self.sizes), node.hi.value(self.sizes)
        if isinstance(node, Slice):
            if node.axis == 0:
                return Mat.fill(hi - lo, x.cols, lambda i, j: x[lo + i, j])
            return Mat.fill(x.rows, hi - lo, lambda i, j: x[i, lo + j])
        total = node.total.value(self.sizes)
        if node.axis == 0:
            return Mat.fill(total, x.cols, lambda i, j: x[i - lo, j] if lo <= i < hi else sympy.S.Zero)
        return Mat.fill(x.rows, total, lambda i, j: x[i, j - lo] if lo <= j < hi else sympy.S.Zero)

    def binary(self, node: Binary, t) -> Mat:
        a, b = self.value_of(node.a, t), self.value_of(node.b, t)
        op = node.op
        if op == "@":
            return matmul(a, b)
        if op == "**":
            return a.map(lambda v: v ** b[0, 0])
        fn = ARITHMETIC[op]
        return elementwise(a, b, fn)

    def call(self, node: Call, t) -> Mat:
        fn = node.fn
        if fn == "sum_t":
            total = None
            for s in range(1, self.T + 1):
                m = self.value_of(node.args[0], s)
                total = m if total is None else elementwise(total, m, lambda x, y: x + y)
            return total
        if fn == "onehot":
            arg = node.args[0]
            cls = self.classes(arg.name, self.step_number(arg.step, t))
            n = self.dim(self.model.symbols[arg.name].classes)
            return Mat.fill(n, len(cls), lambda i, j: sympy.S.One if cls[j] == i else sympy.S.Zero)
        x = self.value_of(node.args[0], t)
        if fn in ELEMENTWISE:
            return x.map(ELEMENTWISE[fn])
        if fn == "softmax":
            exps = x.map(sympy.exp)
            totals = [sympy.Add(*[exps[i, j] for i in range(x.rows)]) for j in range(x.cols)]
            return Mat.fill(x.rows, x.cols, lambda i, j: exps[i, j] / totals[j])
        if fn == "sum":
            return Mat(1, 1, [sympy.Add(*x.data)])
        if fn == "mean":
            return Mat(1, 1, [sympy.Add(*x.data) / (x.rows * x.cols)])
        if fn == "rowsum":
            return Mat.fill(x.rows, 1, lambda i, j: sympy.Add(*[x[i, k] for k in range(x.cols)]))
        if fn == "colsum":
            return Mat.fill(1, x.cols, lambda i, j: sympy.Add(*[x[k, j] for k in range(x.rows)]))
        if fn == "ones_like":
            return x.map(lambda v: sympy.S.One)
        raise NotImplementedError(fn)
