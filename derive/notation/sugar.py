"""Spellings the notes use that the notation rewrites into its own primitives while parsing.

- ``(a > b)``, ``(a < b)``, ``(a >= b)``, ``(a <= b)`` in parentheses: the
  indicator of the comparison, entry by entry, as a ``step`` (``step(x)`` is 1
  where ``x > 0`` and 0 elsewhere, so ``(z > 0)`` is ``step(z)`` and
  ``(z >= 0)`` is ``1 - step(-z)``). Its derivative is zero wherever it is
  defined, as a ReLU's mask is.
- ``max(a, b)`` and ``min(a, b)`` entry by entry: ``max(0, z)`` is
  ``relu(z)``; otherwise ``max(a, b) = b + relu(a - b)`` and
  ``min(a, b) = a - relu(a - b)``, exact identities whose derivative at a tie
  goes to ``b`` and ``a`` respectively (``step(0) = 0``).
- ``E[:, w]`` with ``w`` holding class numbers (an embedding lookup, the
  columns of ``E`` that ``w`` names) is ``E @ onehot(w)``, and ``E[w, :]`` (the
  rows) is ``onehot(w).T @ E``.
- ``softmax(X, rows)`` normalises each row of ``X`` (a row-major classifier,
  the batch in rows): it is ``softmax(X.T).T``. ``softmax(X, columns)`` is
  ``softmax(X)``. ``p[c, rows]`` picks class ``c`` in each row of ``p``: it is
  ``p.T[c].T``, a column (one entry a row). The printer writes both back in
  these spellings.
- ``diag(v)`` as a factor of a matrix product: ``diag(v) @ X`` is ``v * X``
  (each row of ``X`` scaled by an entry of ``v``) and ``X @ diag(v)`` is
  ``X * v.T``. In a claim, ``diag(v) ⋅ X`` reads as ``diag(v) @ X``. A
  ``diag`` anywhere else (alone, or under another function) is an error at
  its caret: the notation has no square matrix built from a vector.

None of these is a primitive of its own: later stages only see the
rewritten trees.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Tuple

from .expr import Binary, Call, Node, Num, Pick, Ref, Unary, walk
from .lexer import Token

COMPARISONS = (">=", "<=", ">", "<")
"""The comparison operators, longest first (the lexer gives ``>=`` as ``>`` then ``=``)."""

SUGAR_FUNCTIONS = {"max": 2, "min": 2, "diag": 1}
"""Functions rewritten while parsing, with their number of arguments."""

AXIS_WORDS = ("rows", "columns")
"""The words that name the axis of a softmax: ``softmax(X, rows)``, ``softmax(X, columns)``."""

Pos = Optional[Tuple[int, int]]


def _is_zero(node: Node) -> bool:
    return isinstance(node, Num) and node.value == 0


def _minus(a: Node, b: Node, pos: Pos) -> Node:
    if _is_zero(b):
        return a
    return Unary("neg", b, pos=pos) if _is_zero(a) else Binary("-", a, b, pos=pos)


def _step(x: Node, pos: Pos) -> Node:
    return Call("step", (x,), pos=pos)


def comparison(op: str, a: Node, b: Node, pos: Pos) -> Node:
    """The 0/1 indicator of ``a OP b`` entry by entry, written with ``step``."""
    if op == ">":
        return _step(_minus(a, b, pos), pos)
    if op == "<":
        return _step(_minus(b, a, pos), pos)
    not_below = _step(_minus(b, a, pos), pos) if op == ">=" else _step(_minus(a, b, pos), pos)
    return Binary("-", Num(Fraction(1)), not_below, pos=pos)


def sugar_call(name: str, args: Tuple[Node, ...], pos: Pos) -> Node:
    """``max``/``min`` rewritten with ``relu``; ``diag`` kept as a marker for :func:`product`."""
    if name == "diag":
        return Call("diag", args, pos=pos)
    a, b = args
    if name == "max":
        if _is_zero(a):
            return Call("relu", (b,), pos=pos)
        if _is_zero(b):
            return Call("relu", (a,), pos=pos)
        return Binary("+", b, Call("relu", (Binary("-", a, b, pos=pos),), pos=pos), pos=pos)
    return Binary("-", a, Call("relu", (Binary("-", a, b, pos=pos),), pos=pos), pos=pos)


def row_softmax(x: Node, pos: Pos) -> Node:
    """``softmax(x, rows)``: each row of ``x`` normalised, as ``softmax(x.T).T``."""
    return Unary("T", Call("softmax", (Unary("T", x, pos=pos),), pos=pos), pos=pos)


def row_pick(x: Node, cls: Node, pos: Pos) -> Node:
    """``x[c, rows]``: class ``c`` of each row of ``x``, as ``x.T[c].T`` (one entry a row)."""
    return Unary("T", Pick(Unary("T", x, pos=pos), cls, pos=pos), pos=pos)


def _under_transposes(node: Node, kind) -> Optional[Node]:
    if isinstance(node, Unary) and node.op == "T":
        inner = node.x
        if isinstance(inner, kind) and isinstance(inner.children()[0], Unary) and inner.children()[0].op == "T":
            return inner
    return None


def as_row_softmax(node: Node) -> Optional[Node]:
    """The ``x`` of a row softmax ``softmax(x.T).T``, else None."""
    inner = _under_transposes(node, Call)
    if inner is not None and inner.fn == "softmax":
        return inner.args[0].x
    return None


def as_row_pick(node: Node) -> Optional[Pick]:
    """The ``Pick`` of a row pick ``x.T[c].T``, else None."""
    return _under_transposes(node, Pick)


def _diagonal(node: Node) -> Optional[Node]:
    """The vector of ``diag(v)`` (or of its transpose, the same matrix), else None."""
    while isinstance(node, Unary) and node.op == "T":
        node = node.x
    if isinstance(node, Call) and node.fn == "diag":
        return node.args[0]
    return None


def product(op: str, left: Node, right: Node, pos: Pos, implicit: bool = False) -> Node:
    """``left op right``, with a ``diag(v)`` factor of a matrix product written as a broadcast ``*``."""
    if op in ("@", "dot"):
        v = _diagonal(left)
        if v is not None:
            return Binary("*", v, right, pos=pos)
        v = _diagonal(right)
        if v is not None:
            return Binary("*", left, Unary("T", v, pos=pos), pos=pos)
    if implicit:
        return Binary(op, left, right, pos=pos, implicit=True)
    return Binary(op, left, right, pos=pos)


def stray_diagonal(node: Node) -> Optional[Node]:
    """A ``diag`` left over once the products are read: not a factor of a matrix product."""
    for n in walk(node):
        if isinstance(n, Call) and n.fn == "diag":
            return n
    return None


class SugarReader:
    """The parser's part for these spellings; expects the parser's ``tok``, ``i``, ``at_op``, ``error``,
    ``pos``, ``src`` and ``expression``."""

    def comparison(self, left: Node) -> Node:
        """``(a > b)`` and the like, after ``a``: the 0/1 indicator, as :func:`comparison`."""
        tok: Token = self.tok
        self.i += 1
        op = tok.text
        if self.at_op("="):
            self.i += 1
            op += "="
        if self.tok.kind == "END" or self.at_op(")"):
            raise self.error(f"expected an expression after '{op}'")
        right = self.expression()
        if self.at_op(*COMPARISONS):
            raise self.error("one comparison at a time: write (a < b) * (b < c)")
        return comparison(op, left, right, self.pos(tok))

    def softmax_axis(self, args: Tuple[Node, ...], tok: Token) -> Node:
        """``softmax(X, rows)`` (each row normalised) or ``softmax(X, columns)`` (each column, the default)."""
        axis = args[1]
        if not (isinstance(axis, Ref) and axis.step is None and axis.name in AXIS_WORDS):
            raise self.src.error("softmax's second argument is its axis: rows (each row normalised) "
                                 "or columns (each column, as softmax(X))", axis.pos or self.pos(tok))
        if axis.name == "columns":
            return Call("softmax", args[:1], pos=self.pos(tok))
        return row_softmax(args[0], self.pos(tok))

    def index(self, node: Node, open_tok: Token) -> Node:
        """After ``node[``: ``y[c]`` (class ``c`` of each column), ``y[c, rows]`` (of each row),
        ``E[:, w]`` or ``E[w, :]`` (a lookup)."""
        if self.at_op("]"):
            raise self.error("expected a class target inside '[ ]'")
        columns = self.at_op(":")
        if columns:
            self.i += 1
            self.expect_op(",", " after ':' (as in E[:, w_t], the columns of E that w_t names)")
        index = self.expression()
        rows = not columns and self.at_op(",")
        per_row = False
        if rows:
            self.i += 1
            per_row = self.tok.kind == "NAME" and self.tok.text == "rows" and self.tok.sub is None
            if per_row:
                self.i += 1
            else:
                self.expect_op(":", " after ',' (as in E[w_t, :], the rows of E that w_t names, "
                                    "or y_t[c_t, rows], class c_t of each row)")
        self.expect_op("]", " to close '['")
        pos = self.pos(open_tok)
        if per_row:
            return row_pick(node, index, pos)
        if columns:
            return Binary("@", node, Call("onehot", (index,), pos=pos), pos=pos)
        if rows:
            return Binary("@", Unary("T", Call("onehot", (index,), pos=pos), pos=pos), node, pos=pos)
        return Pick(node, index, pos=pos)

    def no_stray_diagonal(self, node: Node) -> Node:
        """``node``, or an error at a ``diag`` that is not a factor of a matrix product."""
        stray = stray_diagonal(node)
        if stray is not None:
            raise self.src.error("diag(v) is read only as a factor of a matrix product "
                                 "(diag(v) @ X is v * X, X @ diag(v) is X * v.T)", stray.pos or self.pos())
        return node
