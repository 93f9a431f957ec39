"""Evaluate SymPy expressions of the unrolled model at a point, in 50-digit arithmetic.

The proof's numeric witness and `derive verify`'s exact derivation need
every forward and adjoint symbol's value at one random point.  Substituting
the point into each expression and calling ``sympy.N`` rebuilds SymPy trees
for every entry; this walks each tree once with mpmath numbers instead,
sharing the values of common subexpressions.  What it does not know (a
function outside the table below) it hands to ``sympy.N``.
"""

from __future__ import annotations

from typing import Dict

import mpmath
import sympy

PRECISION = 50
"""Decimal digits of the witness and of the exact values `derive verify` compares with."""

_FUNCTIONS = {sympy.exp: "exp", sympy.tanh: "tanh", sympy.log: "log"}
"""SymPy's functions and the names of their mpmath counterparts."""


class PointEvaluator:
    """Values of expressions at a point given as ``{symbol: number}``, at :data:`PRECISION` digits.

    Parameters
    ----------
    point : dict
        A value for every free symbol the expressions will contain; more
        can be added later with :meth:`set`.
    """

    def __init__(self, point: Dict[sympy.Symbol, object]):
        self.context = mpmath.mp.clone()
        self.context.dps = PRECISION + 10
        self.values: Dict[sympy.Expr, object] = {}
        for s, v in point.items():
            self.set(s, v)

    def set(self, symbol: sympy.Symbol, value) -> None:
        """Give ``symbol`` the value ``value`` (a number, or a SymPy number)."""
        self.values[symbol] = self._number(value) if isinstance(value, sympy.Basic) else self.context.mpf(value)

    def _number(self, n: sympy.Expr):
        if n.is_Rational:
            return self.context.mpf(n.p) / n.q
        return self.context.mpf(sympy.Float(n, PRECISION + 10)._mpf_)

    def __getitem__(self, symbol: sympy.Symbol):
        return self.values[symbol]

    def get(self, symbol, default=None):
        """The value given to ``symbol`` (or computed for it), else ``default``."""
        return self.values.get(symbol, default)

    def __call__(self, expr: sympy.Expr):
        """The value of ``expr`` (an mpmath number; ``float()`` of it is the nearest double)."""
        values = self.values
        if expr in values:
            return values[expr]
        ctx = self.context
        if expr.is_Number:
            result = self._number(expr)
        elif expr.is_Add:
            result = ctx.fsum(self(a) for a in expr.args)
        elif expr.is_Mul:
            result = ctx.fprod(self(a) for a in expr.args)
        elif expr.is_Pow and expr.exp.is_Integer:
            result = self(expr.base) ** int(expr.exp)
        elif expr.func in _FUNCTIONS:
            result = getattr(ctx, _FUNCTIONS[expr.func])(self(expr.args[0]))
        elif isinstance(expr, sympy.Max):
            result = max(self(a) for a in expr.args)
        elif isinstance(expr, sympy.Heaviside) and len(expr.args) == 2:
            x = self(expr.args[0])
            result = ctx.mpf(1) if x > 0 else ctx.mpf(0) if x < 0 else self(expr.args[1])
        else:
            point = {s: sympy.Float(self(s), PRECISION + 10) for s in expr.free_symbols}
            result = self._number(sympy.N(expr.xreplace(point), PRECISION + 10))
        values[expr] = result
        return result
