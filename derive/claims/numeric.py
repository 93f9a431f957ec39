"""Float evaluation of claim trees, for screening readings and repairs fast.

The decisions of ``derive check`` are always confirmed symbolically
(:mod:`derive.claims.confirm`); this evaluator only sorts candidates quickly.  It
mirrors :class:`derive.calculus.entries.Evaluator` on NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..notation.blocks import Place, Slice, Stack
from ..notation.expr import ARITHMETIC, Adj, Binary, Call, Iverson, Node, Num, Pick, Ref, SizeRef, StepSum, Unary


class Undefined(Exception):
    """The tree reads a value that does not exist at this step (``y_0``)."""


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


ELEMENTWISE = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "exp": np.exp,
    "log": np.log,
    "step": lambda x: (x > 0).astype(float),
}


class FloatEvaluator:
    """Evaluates a tree at step ``t`` of ``T`` on float arrays.

    Parameters
    ----------
    sizes : dict
        Concrete sizes.
    T : int
        Number of steps.
    lookup : callable
        ``lookup(name, step) -> ndarray`` for model symbols (raises KeyError
        where the symbol has no value).
    adjoint : callable
        ``adjoint(node, t) -> ndarray`` for a derivative, ``t`` the current step.
    classes : callable
        ``classes(name, step) -> list[int]`` for class targets.
    num_classes : callable
        ``num_classes(name) -> int``.
    shape_of : callable, optional
        ``shape_of(node) -> (rows, cols)``: the zero of an Iverson bracket
        ``[t = T] x`` at the other steps is shaped like ``x``.
    """

    def __init__(self, sizes: dict[str, int], T: int, lookup: Callable, adjoint: Callable,
                 classes: Callable, num_classes: Callable, shape_of: Callable | None = None):
        self.sizes = sizes
        self.T = T
        self.lookup = lookup
        self.adjoint = adjoint
        self.classes = classes
        self.num_classes = num_classes
        self.shape_of = shape_of

    def step(self, step, t: int | None) -> int | None:
        return None if step is None else step.at(t if t is not None else 0, self.T)

    def __call__(self, node: Node, t: int | None) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.value_of(node, t)

    def value_of(self, node: Node, t: int | None) -> np.ndarray:
        if isinstance(node, Num):
            return np.array([[float(node.value)]])
        if isinstance(node, SizeRef):
            return np.array([[float(self.sizes[node.name])]])
        if isinstance(node, Ref):
            try:
                return self.lookup(node.name, self.step(node.step, t))
            except KeyError as err:
                raise Undefined(str(err)) from None
        if isinstance(node, Adj):
            return self.adjoint(node, t)
        if isinstance(node, Unary):
            x = self.value_of(node.x, t)
            return -x if node.op == "neg" else x.T
        if isinstance(node, Binary):
            a, b = self.value_of(node.a, t), self.value_of(node.b, t)
            op = node.op
            if op == "@":
                return a @ b
            if op == "**":
                return a ** b[0, 0]
            if op in ARITHMETIC:
                return ARITHMETIC[op](a, b)
            raise ValueError(f"unresolved operator {op}")
        if isinstance(node, Pick):
            if not isinstance(node.cls, Ref):  # W[H]: the shape check says why (only a class target can index)
                raise Undefined("a pick by something other than a class target")
            x = self.value_of(node.x, t)
            cls = self.classes(node.cls.name, self.step(node.cls.step, t))
            return np.array([[x[c, j] for j, c in enumerate(cls)]])
        if isinstance(node, StepSum):
            return self.step_sum(node, t)
        if isinstance(node, Iverson):
            if t is not None and node.holds_at(t, self.T):
                return self.value_of(node.args[0], t)
            if self.shape_of is None:
                raise Undefined("the shape of an Iverson bracket's term")
            return np.zeros(self.shape_of(node.args[0]))
        if isinstance(node, (Stack, Slice, Place)):
            return self.block(node, t)
        if isinstance(node, Call):
            return self.call(node, t)
        raise TypeError(type(node).__name__)

    def block(self, node: Node, t: int | None) -> np.ndarray:
        """A row stack, a slice, or a block placed in zeros."""
        parts = [self.value_of(a, t) for a in node.args]
        if isinstance(node, Stack):
            if len({p.shape[1] for p in parts}) != 1:
                raise Undefined("a stack of matrices with different columns")
            return np.concatenate(parts, axis=0)
        x, lo, hi = parts[0], node.lo.value(self.sizes), node.hi.value(self.sizes)
        length = node.total.value(self.sizes) if isinstance(node, Place) else x.shape[node.axis]
        if not 0 <= lo < hi <= length:
            raise Undefined(f"the span {lo}:{hi} outside 0:{length}")
        if isinstance(node, Slice):
            return x[lo:hi] if node.axis == 0 else x[:, lo:hi]
        out = np.zeros((length, x.shape[1]) if node.axis == 0 else (x.shape[0], length))
        out[(slice(lo, hi), slice(None)) if node.axis == 0 else (slice(None), slice(lo, hi))] = x
        return out

    def step_sum(self, node: StepSum, t: int | None) -> np.ndarray:
        """``sum_{k=a}^{b} x`` at the claim's step ``t`` (zero over an empty range)."""
        try:
            steps, body = node.summands(t, self.T)
        except ValueError as err:
            raise Undefined(str(err)) from None
        total = None
        for s in steps:
            m = self.value_of(body, s)
            total = m if total is None else total + m
        if total is None:
            if self.shape_of is None:
                raise Undefined("the shape of an empty range sum")
            return np.zeros(self.shape_of(body))
        return total

    def call(self, node: Call, t) -> np.ndarray:
        fn = node.fn
        if fn == "sum_t":
            total = None
            for s in range(1, self.T + 1):
                m = self.value_of(node.args[0], s)
                total = m if total is None else total + m
            return total
        if fn == "onehot":
            arg = node.args[0]
            cls = self.classes(arg.name, self.step(arg.step, t))
            out = np.zeros((self.num_classes(arg.name), len(cls)))
            for j, c in enumerate(cls):
                out[c, j] = 1.0
            return out
        x = self.value_of(node.args[0], t)
        if fn in ELEMENTWISE:
            return ELEMENTWISE[fn](x)
        if fn == "softmax":
            return _softmax(x)
        if fn == "sum":
            return np.array([[x.sum()]])
        if fn == "mean":
            return np.array([[x.mean()]])
        if fn == "rowsum":
            return x.sum(axis=1, keepdims=True)
        if fn == "colsum":
            return x.sum(axis=0, keepdims=True)
        if fn == "ones_like":
            return np.ones_like(x)
        raise NotImplementedError(fn)


def truth_scale(data) -> float:
    """The largest magnitude in the truth values of screening ``data`` (at least 1e-12).

    ``data`` is a list of (context index, step, claim value, truth value), as
    :meth:`derive.claims.checker.ClaimChecker.evaluate` returns it.
    """
    return max([1e-12] + [float(np.max(np.abs(tr))) for _, _, _, tr in data if tr.size])


def agrees(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    """Whether a finite float value ``a`` matches ``b`` in shape and in value, up to rounding at ``scale``."""
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(
        a, b, rtol=1e-8, atol=1e-9 * scale)
