"""Range sums in claims, ``sum_{k=1}^{t} dL_t/dz_k @ h_{k-1}.T``: the part of the expression grammar that reads them.

:class:`RangeSumReader` is a mixin of
:class:`~derive.notation.expression_parser.ExpressionParser`: it reads the
head (the lexer's SUMRANGE token), then the summand, in which ``h_k`` and
``h_{k-1}`` count from the sum's letter and ``h_t`` or ``dL_t`` keep the
claim's own step (:class:`~derive.notation.expr.StepSum`).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from .expr import MAX_STEP_DIGITS, Node, Step, parse_step, step_sum
from .lexer import Token

PRODUCT_PRECEDENCE = 20
"""The binding of a product: a range sum, like ``sum_t``, takes one product term."""

class RangeSumReader:
    """Reads range sums; expects the parser's ``tok``, ``i``, ``error``, ``expression`` and ``range_var``."""

    range_var: Optional[str] = None

    def range_sum(self, tok: Token) -> Node:
        """``sum_{k=1}^{t} x`` (claims): ``x`` over the steps k = 1..t; in ``x``, ``h_k`` and
        ``h_{k-1}`` count from k, and ``t`` (as in ``dL_t``) is the claim's own step.  With ``t``
        as the letter (``sum_{t=2}^{T}``) every ``t`` in ``x`` is the sum's, and the bounds cannot name it."""
        if self.range_var is not None:
            raise self.error("a range sum inside a range sum: write one sum over the steps at a time")
        if tok.text == "T":
            raise self.error("the variable of a range sum is another letter than T (the last step), as in "
                             "sum_{k=1}^{t} or sum_{t=2}^{T}")
        lo = self.bound_step(tok.sub, tok.sub_col, "lower", tok.text)
        hi = self.bound_step(tok.upper, tok.upper_col, "upper", tok.text)
        self.i += 1
        if self.tok.kind == "END":
            raise self.error("expected the summand after the range sum")
        self.range_var = tok.text
        try:
            operand = self.expression(PRODUCT_PRECEDENCE)
        finally:
            self.range_var = None
        return step_sum(operand, tok.text, lo, hi, pos=self.pos(tok))

    def bound_step(self, text: str, col: int, which: str, var: str) -> Step:
        """A bound of a range sum: ``1``, ``t``, ``t-1``, ``T``, ``T-1`` (not ``t`` in a sum over t)."""
        step = parse_step(text.replace(" ", ""))
        if step is None:
            raise self.src.error(f"cannot read the {which} bound {{{text}}} of the range sum: write t, t-1, "
                                 "T, T-1 or a number", (self.lineno, col))
        if var == "t" and step.kind == "rel":
            raise self.src.error(f"the {which} bound {{{text}}} names t, the sum's own letter: write a number, "
                                 "T or T-1 (or sum over another letter, as in sum_{k=1}^{t})", (self.lineno, col))
        return step

    def in_range(self, text: str, sub: Optional[str]) -> Tuple[str, Optional[Step], bool]:
        """A name and its step inside a range sum over ``k``: ``h_k`` and ``h_{k-1}`` count from k,
        ``h_t`` and ``dL_t`` from the claim's t (an ``outer`` step).  The flag says it was rewritten."""
        var = self.range_var
        if var is None:
            return text, None, False
        if sub is not None:
            m = re.fullmatch(rf"\s*({re.escape(var)}|t)\s*(?:([+-])\s*([0-9]{{1,{MAX_STEP_DIGITS}}}))?\s*", sub)
            if not m:
                return text, None, False
            offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            return text, Step("rel" if m.group(1) == var else "outer", offset), True
        for suffix, kind in ((f"_{var}", "rel"), ("_t", "outer")):
            if text.endswith(suffix) and len(text) > len(suffix):
                return text[:-len(suffix)], Step(kind, 0), True
        return text, None, False
