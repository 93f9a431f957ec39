"""Sizes that are sums (``F + H``, ``4*H``), row stacks ``[x_t; h_{t-1}]`` and slices ``a[0:H]``.

A dimension is a size name, a whole number, or a :class:`SizeSum`: a linear
combination of size names with whole coefficients, kept in one canonical
spelling (names sorted, the number last) so that ``H + F`` and ``F + H`` are
the same dimension.  :class:`Linear` is the combination itself; slice bounds
are ``Linear`` too.

The three nodes are :class:`~derive.notation.expr.Call` s of their operands,
so every walker treats them as functions of their arguments:

- :class:`Stack`: its operands' rows one after another (``[a; b]``);
- :class:`Slice`: the rows (``axis`` 0) or columns (``axis`` 1) ``lo`` to
  ``hi`` of its operand, zero-based and half-open as in NumPy;
- :class:`Place`: its operand put in the rows (or columns) ``lo:hi`` of a
  zero matrix of ``total`` rows (or columns), the adjoint of a slice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple, Union

from .expr import Binary, Call, Node, Num, Pos, Ref, SizeRef, Unary


@dataclass(frozen=True)
class Linear:
    """``const + sum(coef * name)`` with whole coefficients; ``terms`` sorted by name, none zero."""

    terms: Tuple[Tuple[str, int], ...] = ()
    const: int = 0

    @staticmethod
    def of(coefs: Mapping[str, int], const: int = 0) -> "Linear":
        """The canonical combination of ``coefs`` (zero coefficients dropped) and ``const``."""
        return Linear(tuple(sorted((n, c) for n, c in coefs.items() if c)), const)

    def coefs(self) -> Dict[str, int]:
        return dict(self.terms)

    def __add__(self, other: "Linear") -> "Linear":
        coefs = self.coefs()
        for n, c in other.terms:
            coefs[n] = coefs.get(n, 0) + c
        return Linear.of(coefs, self.const + other.const)

    def scaled(self, k: int) -> "Linear":
        return Linear.of({n: k * c for n, c in self.terms}, k * self.const)

    def __sub__(self, other: "Linear") -> "Linear":
        return self + other.scaled(-1)

    def value(self, sizes: Mapping[str, int]) -> int:
        """The number at ``sizes`` (each name must be given)."""
        return self.const + sum(c * sizes[n] for n, c in self.terms)

    def at_least(self, least: int) -> bool:
        """Whether the value is at least ``least`` at every size of at least 1 (no coefficient below 0)."""
        return all(c >= 0 for _, c in self.terms) and self.const + sum(c for _, c in self.terms) >= least

    def text(self) -> str:
        """``F + H``, ``4*H``, ``2*H - 1``, ``0``."""
        parts = [(c, n if c in (1, -1) else f"{abs(c)}*{n}") for n, c in self.terms]
        if self.const or not parts:
            parts.append((self.const, str(abs(self.const))))
        parts.sort(key=lambda p: p[0] < 0)  # H - F rather than -F + H; otherwise names sorted, the number last
        out = ("-" if parts[0][0] < 0 else "") + parts[0][1]
        for c, word in parts[1:]:
            out += (" - " if c < 0 else " + ") + word
        return out

    def dim(self) -> "Dim":
        """The dimension this is: a number, a size name, or a :class:`SizeSum`."""
        if not self.terms:
            return self.const
        if self.const == 0 and len(self.terms) == 1 and self.terms[0][1] == 1:
            return self.terms[0][0]
        return SizeSum(self)


class SizeSum(str):
    """A dimension that is a sum of sizes: a ``str`` of its canonical text, with its :class:`Linear`.

    Being a string, it prints, hashes and compares as its text everywhere a
    dimension goes (``F + H`` is ``H + F``); :func:`dim_value` gives its number.
    """

    linear: Linear

    def __new__(cls, linear: Linear):
        obj = super().__new__(cls, linear.text())
        obj.linear = linear
        return obj

    def __reduce__(self):
        return (SizeSum, (self.linear,))


Dim = Union[str, int]

_TERM = re.compile(r"^(?:(\d+)\*)?([A-Za-z][A-Za-z0-9_]*)$|^(\d+)$")


def dim_linear(d: Dim) -> Linear:
    """The :class:`Linear` of a dimension (a name, a number, a :class:`SizeSum` or its canonical text)."""
    if isinstance(d, SizeSum):
        return d.linear
    if isinstance(d, int):
        return Linear((), d)
    if " " not in d and "*" not in d:
        return Linear(((d, 1),))
    coefs: Dict[str, int] = {}
    const, sign = 0, 1
    for word in d.split(" "):  # our own canonical text (``F + H``, ``4*H``), never user input
        if word in "+-":
            sign = 1 if word == "+" else -1
            continue
        negative = word.startswith("-")
        m = _TERM.match(word.lstrip("-"))
        if m is None:
            raise KeyError(d)
        k = sign * (-1 if negative else 1)
        if m.group(3):
            const += k * int(m.group(3))
        else:
            coefs[m.group(2)] = coefs.get(m.group(2), 0) + k * int(m.group(1) or 1)
    return Linear.of(coefs, const)


def dim_value(d: Dim, sizes: Mapping[str, int]) -> int:
    """The number a dimension stands for at ``sizes``."""
    if isinstance(d, int):
        return d
    if not isinstance(d, SizeSum) and d in sizes:
        return sizes[d]
    return dim_linear(d).value(sizes)


def dim_names(d: Dim) -> Tuple[str, ...]:
    """The size names a dimension reads."""
    return () if isinstance(d, int) else tuple(n for n, _ in dim_linear(d).terms)


class SizeTable(dict):
    """Sizes by name that also answer a sum of them (``sizes['F + H']``), for every reader of shapes.

    Only the names are keys (iteration, ``items`` and copies show them alone).
    """

    def __missing__(self, key):
        if isinstance(key, str) and (isinstance(key, SizeSum) or " " in key or "*" in key):
            return dim_linear(key).value(self)
        raise KeyError(key)

    def __reduce__(self):
        return (SizeTable, (dict(self),))

    def get(self, key, default=None):
        try:
            return self[key]
        except (KeyError, TypeError):  # TypeError: a sum reading a size not known yet (None)
            return default


def linear_of(node: Node) -> Optional[Linear]:
    """A parsed bound (``2*H``, ``H + 1``, ``F``) as a :class:`Linear`; None when it is not one.

    Names are taken as written (``Ref`` without a step); whether they are
    sizes is for the model to say.
    """
    if isinstance(node, Num):
        return Linear((), int(node.value)) if node.value.denominator == 1 else None
    if isinstance(node, (Ref, SizeRef)) and getattr(node, "step", None) is None:
        return Linear(((node.name, 1),))
    if isinstance(node, Unary) and node.op == "neg":
        inner = linear_of(node.x)
        return None if inner is None else inner.scaled(-1)
    if isinstance(node, Binary) and node.op in ("+", "-", "*"):
        a, b = linear_of(node.a), linear_of(node.b)
        if a is None or b is None:
            return None
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if not a.terms:
            return b.scaled(a.const)
        return a.scaled(b.const) if not b.terms else None
    return None


@dataclass(frozen=True)
class Stack(Call):
    """``[a; b; ...]``: the operands' rows one after another (every operand has the same columns)."""


def stack(parts, pos: Pos = None) -> Stack:
    """The node ``[parts[0]; parts[1]; ...]``."""
    return Stack("stack", tuple(parts), pos=pos)


@dataclass(frozen=True)
class Slice(Call):
    """``x[lo:hi]`` (rows, ``axis`` 0, also ``x[lo:hi, :]``) or ``x[:, lo:hi]`` (columns, ``axis`` 1)."""

    axis: int = 0
    lo: Linear = Linear()
    hi: Linear = Linear()
    lo_pos: Pos = field(default=None, compare=False, repr=False)
    hi_pos: Pos = field(default=None, compare=False, repr=False)

    def bounds_text(self) -> str:
        """``0:H``, ``H:2*H``."""
        return f"{self.lo.text()}:{self.hi.text()}"


def slice_of(x: Node, axis: int, lo: Linear, hi: Linear, pos: Pos = None, lo_pos: Pos = None,
             hi_pos: Pos = None) -> Slice:
    """The node ``x[lo:hi]`` along ``axis`` (0 rows, 1 columns)."""
    return Slice("slice", (x,), pos=pos, axis=axis, lo=lo, hi=hi, lo_pos=lo_pos, hi_pos=hi_pos)


@dataclass(frozen=True)
class Place(Call):
    """The operand in the rows (``axis`` 0) or columns ``lo:hi`` of zeros ``total`` rows (columns) long."""

    axis: int = 0
    lo: Linear = Linear()
    hi: Linear = Linear()
    total: Linear = Linear()

    def bounds_text(self) -> str:
        return f"{self.lo.text()}:{self.hi.text()}"


def place(x: Node, axis: int, lo: Linear, hi: Linear, total: Linear) -> Place:
    """The node putting ``x`` in the span ``lo:hi`` of zeros ``total`` long along ``axis``."""
    return Place("place", (x,), axis=axis, lo=lo, hi=hi, total=total)
