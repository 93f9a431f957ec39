"""Whether a model's loss splits over the columns of its batch.

A batch of ``B`` examples as columns (the notes' convention) is often
computed column by column: ``W @ h`` mixes rows, never columns, and
``tanh``, ``softmax`` (per column) and picks keep columns apart; only the
final ``sum`` or ``mean`` joins them. Then the loss of the whole batch is
the sum of the losses of any split of its columns (or, for a mean, their
average weighted by each part's share of the columns), and so are the
gradients of the parameters. The fast code style uses this to compute the
parts on several cores.

The test is a pass over the forward equations that gives every value one
of three kinds:

``const``
    does not depend on the batch (parameters, numbers, sizes other than
    the batch's);
``cols``
    a matrix whose column ``j`` is computed from column ``j`` of the data
    alone;
``sum``
    a sum over the columns of a ``cols`` value, divided by ``B**power``,
    and carried only through linear operations after that.

The loss must be a ``sum`` of power 0 (a sum over the batch) or 1 (a mean).
Anything else (a regulariser added to a batch sum, a nonlinear function of a
sum, the batch size inside a per-column value, a product over the batch
dimension) makes the model not splittable, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from ..model.model import Model
from ..notation.expr import ELEMENTWISE_FUNCTIONS, Binary, Call, Node, Num, Pick, Ref, SizeRef, Unary

_PER_COLUMN_FUNCTIONS = set(ELEMENTWISE_FUNCTIONS) | {"softmax", "squared", "ones_like", "onehot"}
_LINEAR_FUNCTIONS = {"sum_t", "colsum", "rowsum", "sum", "mean", "transpose"}


@dataclass(frozen=True)
class BatchSplit:
    """A model whose loss splits over its batch's columns.

    ``size`` is the batch's size name (``"B"``); ``mean`` is True when the
    loss divides the batch sum by the batch size, so that a part of ``B_k``
    columns weighs ``B_k / B``.
    """

    size: str
    mean: bool


class NotSplittable(Exception):
    """The reason a model's loss does not split over its batch."""


@dataclass(frozen=True)
class _Kind:
    tag: str        # "const", "cols", "sum" or "batch" (the batch size itself, as a number)
    power: int = 0  # for "sum": divided by B ** power


CONST, COLS, BATCH = _Kind("const"), _Kind("cols"), _Kind("batch")


def batch_size(model: Model) -> Optional[str]:
    """The size name every input, target and state has as its columns, if any.

    It must be a name (not a number), appear in no parameter's shape and
    in no data symbol's rows.
    """
    data = model.data_symbols + model.states
    columns = {s.shape[1] for s in data if s.shape is not None}
    if len(columns) != 1 or any(s.shape is None for s in data):
        return None
    size = columns.pop()
    if not isinstance(size, str):
        return None
    if any(size in s.shape for s in model.params) or any(s.shape[0] == size for s in data):
        return None
    return size


def batch_split(model: Model) -> BatchSplit:
    """How the loss of ``model`` splits over its batch.

    Raises
    ------
    NotSplittable
        With the reason, when the loss is not a sum or a mean of per-column
        contributions.
    """
    size = batch_size(model)
    if size is None:
        raise NotSplittable("no batch size is the columns of every input, target and state")
    kinds: Dict[str, _Kind] = {}
    for sym in model.symbols.values():
        if sym.kind == "param":
            kinds[sym.name] = CONST
        elif sym.kind in ("input", "target", "state"):
            kinds[sym.name] = COLS
    for eq in model.equations:
        kind = _kind(eq.expr, size, kinds)
        sym = model.symbols[eq.name]
        if sym.kind == "state" and kind != COLS:
            raise NotSplittable(f"state {eq.name} is not computed column by column")
        if kind == BATCH:
            kind = CONST
        kinds[eq.name] = kind
    loss = kinds[model.loss]
    if loss.tag != "sum" or loss.power not in (0, 1):
        what = {"const": "does not depend on the batch", "cols": "is not a sum over the batch"}
        raise NotSplittable(f"the loss {model.loss} "
                            f"{what.get(loss.tag, f'divides the batch sum by {size}**{loss.power}')}")
    return BatchSplit(size, loss.power == 1)


def _kind(node: Node, size: str, kinds: Dict[str, _Kind]) -> _Kind:
    if isinstance(node, Num):
        return CONST
    if isinstance(node, SizeRef):
        return BATCH if node.name == size else CONST
    if isinstance(node, Ref):
        return kinds[node.name]
    if isinstance(node, Pick):
        x, cls = _kind(node.x, size, kinds), _kind(node.cls, size, kinds)
        if x.tag in ("const", "cols") and cls == COLS:
            return COLS
        raise NotSplittable("a class pick from a value that is not per column")
    if isinstance(node, Unary):
        x = _value(node.x, size, kinds)
        if node.op == "T" and x == COLS:
            raise NotSplittable("a transpose puts the batch in the rows")
        return x
    if isinstance(node, Call):
        return _call(node, size, kinds)
    if isinstance(node, Binary):
        return _binary(node, size, kinds)
    raise NotSplittable(f"{type(node).__name__} in a forward equation")


def _value(node: Node, size: str, kinds: Dict[str, _Kind]) -> _Kind:
    """The kind of an operand that is a matrix, not the batch size as a divisor."""
    kind = _kind(node, size, kinds)
    if kind == BATCH:
        raise NotSplittable(f"the batch size {size} inside a value (it may only divide a batch sum)")
    return kind


def _call(node: Call, size: str, kinds: Dict[str, _Kind]) -> _Kind:
    fn = node.fn
    arg = _value(node.args[0], size, kinds)
    if fn in _PER_COLUMN_FUNCTIONS:
        if arg.tag == "sum":
            raise NotSplittable(f"{fn} of a sum over the batch (not linear)")
        return arg
    if fn not in _LINEAR_FUNCTIONS:
        raise NotSplittable(f"the function {fn}")
    if fn == "transpose" and arg == COLS:
        raise NotSplittable("a transpose puts the batch in the rows")
    if arg == COLS and fn in ("sum", "mean", "rowsum"):
        return _Kind("sum", 1 if fn == "mean" else 0)
    return arg


def _binary(node: Binary, size: str, kinds: Dict[str, _Kind]) -> _Kind:
    op = node.op
    a = _value(node.a, size, kinds)
    if op == "**":
        if not isinstance(node.b, Num):
            raise NotSplittable("a power with a non-constant exponent")
        if a.tag == "sum" and node.b.value != 1:
            raise NotSplittable("a power of a sum over the batch (not linear)")
        return a
    if op == "/":
        b = _kind(node.b, size, kinds)
        if b == BATCH:
            if a.tag != "sum":
                raise NotSplittable(f"the batch size {size} divides a value that is not a batch sum")
            return _Kind("sum", a.power + 1)
        if a.tag == "sum" and b == CONST:
            return a
        if a.tag != "sum" and b.tag != "sum":
            return COLS if COLS in (a, b) else CONST
        raise NotSplittable("a division by a sum over the batch (not linear)")
    b = _value(node.b, size, kinds)
    if op in ("+", "-"):
        if a.tag == "sum" or b.tag == "sum":
            if a == b:
                return a
            raise NotSplittable("a batch sum added to a term that is not a batch sum of the same scale"
                                " (each part would count it)")
        return COLS if COLS in (a, b) else CONST
    if op == "*":
        if a.tag == "sum" or b.tag == "sum":
            other = b if a.tag == "sum" else a
            if other == CONST:
                return a if a.tag == "sum" else b
            raise NotSplittable("a batch sum multiplied by a value that depends on the batch")
        return COLS if COLS in (a, b) else CONST
    if op == "@":
        if a == CONST and b == CONST:
            return CONST
        if a == CONST and b == COLS:
            return COLS
        if CONST in (a, b) and "sum" in (a.tag, b.tag):
            return a if a.tag == "sum" else b
        raise NotSplittable("a matrix product over the batch's columns")
    raise NotSplittable(f"the operator {op!r}")


__all__ = ["BatchSplit", "NotSplittable", "batch_size", "batch_split"]
