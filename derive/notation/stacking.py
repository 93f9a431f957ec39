"""The parser's part for row stacks ``[x_t; h_{t-1}]``, slices ``a[0:H]`` and dimensions such as ``4*H``.

- ``[a; b; c]``: the rows of ``a``, then of ``b``, then of ``c``. A ``[``
  that starts ``[t = ...]`` is an Iverson bracket (claims) instead.
- ``a[lo:hi]`` and ``a[lo:hi, :]``: rows ``lo`` to ``hi - 1`` (zero-based,
  half-open, as in NumPy); ``a[:, lo:hi]``: those columns. A bound is a size
  expression: whole numbers and size names with ``+``, ``-`` and ``*`` by a
  number (``0``, ``H``, ``2*H``, ``F + H``).
- A declared dimension is a sum of terms, each a number, a size name, a
  number times a size (``4*H``, also ``4H``), or a parenthesised sum:
  ``4*H x (F + H)``.
"""

from __future__ import annotations

from typing import Tuple

from .blocks import Linear, linear_of, slice_of, stack
from .expr import Binary, Node, Num, Ref, Unary, walk
from .lexer import Token


class StackingReader:
    """Expects the parser's ``tok``, ``tokens``, ``i``, ``at_op``, ``expect_op``, ``error``, ``pos``,
    ``src``, ``describe``, ``expression``, ``postfix``, ``iverson_bracket`` and ``index``."""

    def _closing(self, start: int) -> Tuple[int, bool]:
        """From the bracket at ``start``: the index of the one that closes it (or of the end) and whether
        a ``;`` stands at its own level."""
        depth, j, seen = 0, start, False
        while self.tokens[j].kind != "END":
            t = self.tokens[j]
            if t.kind == "OP" and t.text in "([":
                depth += 1
            elif t.kind == "OP" and t.text in ")]":
                depth -= 1
                if depth == 0:
                    return j, seen
            elif depth == 1 and t.kind == "OP" and t.text == ";":
                seen = True
            j += 1
        return j, seen

    def bracket(self, open_tok: Token) -> Node:
        """A ``[`` where an operand starts: a row stack ``[a; b]`` or an Iverson bracket ``[t = T] x``."""
        nxt, after = self.tokens[self.i + 1], self.tokens[self.i + 2] if self.i + 2 < len(self.tokens) else None
        iverson = (nxt.kind == "NAME" and nxt.text == "t" and nxt.sub is None and after is not None
                   and after.kind == "OP" and after.text in ("=", "<", ">"))
        if iverson:
            return self.iverson_bracket(open_tok)
        if not self._closing(self.i)[1]:
            self.i += 1
            raise self.error("a '[' that starts an operand is a stack of two or more matrices separated by ';' "
                             "([x_t; h_{t-1}]), or in a claim an Iverson bracket such as [t = T]; found "
                             f"{self.describe(self.tok)} with no ';' before its ']'")
        self.i += 1
        parts = [self.stack_part()]
        while self.at_op(";"):
            self.i += 1
            parts.append(self.stack_part())
        self.expect_op("]", " to close the stack '[a; b]'")
        return self.postfix(stack(parts, pos=self.pos(open_tok)))

    def stack_part(self) -> Node:
        if self.at_op(";", "]"):
            raise self.error(f"expected a matrix in the stack [a; b], found {self.describe(self.tok)}")
        return self.expression()

    def _is_slice(self) -> bool:
        """Whether the index after ``[`` holds a ``lo:hi`` (a ``:`` with an operand on each side)."""
        end, _ = self._closing(self.i - 1)
        depth = 0
        for j in range(self.i, end):
            t = self.tokens[j]
            if t.kind == "OP" and t.text in "([":
                depth += 1
            elif t.kind == "OP" and t.text in ")]":
                depth -= 1
            elif depth == 0 and t.kind == "OP" and t.text == ":":
                before, after = self.tokens[j - 1], self.tokens[j + 1]
                if not (before.kind == "OP" and before.text in "[,") and not (
                        after.kind == "OP" and after.text in ",]"):
                    return True
        return False

    def index(self, node: Node, open_tok: Token) -> Node:
        """After ``node[``: a slice ``[lo:hi]``, ``[lo:hi, :]`` or ``[:, lo:hi]``; else a pick or a lookup."""
        if not self._is_slice():
            return super().index(node, open_tok)
        axis = 0
        if self.at_op(":"):
            self.i += 1
            self.expect_op(",", " after ':' (as in a[:, 0:H], the columns 0 to H-1)")
            axis = 1
        lo, lo_pos = self.slice_bound()
        self.expect_op(":", " between the bounds of a slice (as in a[0:H])")
        hi, hi_pos = self.slice_bound()
        if axis == 0 and self.at_op(","):
            self.i += 1
            self.expect_op(":", " after ',' (a[0:H, :] takes rows; slice the rows or the columns, not both)")
        self.expect_op("]", " to close the slice")
        return slice_of(node, axis, lo, hi, self.pos(open_tok), lo_pos, hi_pos)

    def slice_bound(self) -> Tuple[Linear, Tuple[int, int]]:
        """A slice bound: a size expression (``0``, ``H``, ``2*H``, ``F + H``) and its position."""
        start = self.tok
        if self.at_op(":", "]", ","):
            raise self.error("a slice takes both bounds (as in a[0:H]; the start of the rows is 0)")
        tree = self.expression()
        lin = linear_of(tree)
        if lin is None:
            bad = _first_not_linear(tree) or tree
            raise self.src.error("a slice bound is a size expression: whole numbers and size names with +, - "
                                 "and * by a number (0, H, 2*H, F + H)", bad.pos or self.pos(start))
        return lin, self.pos(start)

    # -- dimensions of declarations -------------------------------------
    def dim_sum(self, depth: int = 0) -> Linear:
        """A dimension: terms joined by ``+`` (``4*H``, ``4H``, ``F + H``, ``(F + H)``, ``3``)."""
        total = self.dim_term(depth)
        while self.at_op("+"):
            self.i += 1
            total = total + self.dim_term(depth)
        return total

    def dim_term(self, depth: int) -> Linear:
        tok = self.tok
        if self.at_op("(") and depth < 8:
            self.i += 1
            inner = self.dim_sum(depth + 1)
            self.expect_op(")", " to close '(' in the dimension")
            return inner
        if tok.kind == "NUM" and tok.text.isdigit():
            self.i += 1
            k = int(tok.text)
            if self.at_op("*"):
                self.i += 1
                return self.dim_name().scaled(k)
            nxt = self.tok  # 4H: a number written against a size name
            if nxt.kind == "NAME" and nxt.sub is None and nxt.text != "x" and nxt.col == tok.col + len(tok.text):
                return self.dim_name().scaled(k)
            return Linear((), k)
        if tok.kind == "NAME" and tok.sub is None and tok.text != "x":
            lin = self.dim_name()
            if self.at_op("*"):
                self.i += 1
                k = self.tok
                if not (k.kind == "NUM" and k.text.isdigit()):
                    raise self.error(f"expected a whole number after '*' in a dimension, found {self.describe(k)}")
                self.i += 1
                return lin.scaled(int(k.text))
            return lin
        raise self.error(f"expected a dimension (a size name, a number, or a sum such as F + H or 4*H), "
                         f"found {self.describe(tok)}")

    def dim_name(self) -> Linear:
        tok = self.tok
        if not (tok.kind == "NAME" and tok.sub is None and tok.text != "x"):
            raise self.error(f"expected a size name, found {self.describe(tok)}")
        self.i += 1
        return Linear(((tok.text, 1),))


def _first_not_linear(tree: Node):
    """The first node of a bound that is no part of a size expression, for the caret."""
    for n in walk(tree):
        if isinstance(n, Num) and n.value.denominator != 1:
            return n
        if isinstance(n, Ref) and n.step is not None:
            return n
        if not isinstance(n, (Binary, Num, Ref, Unary)) or (isinstance(n, Binary) and n.op not in "+-*"):
            return n
    return None

