"""Claims written in numerator layout: every gradient in them is the transpose of this tool's.

In numerator layout (seed 001's row-vector order) ``dL/dh`` is a row, so
``dL/dh_2 = dL/dy ⋅ W_hy`` holds there: read with each gradient on its right
side transposed, the right side is the transpose of the derivative.  Such a
claim gets the verdict ``layout``; its repair is the same derivation written
in this tool's (denominator) layout.
"""

from __future__ import annotations

from ..model.model import ShapeError
from ..notation.expr import Adj, Binary, Node, Unary, transform, walk
from .holds import holds_transposed
from .numeric import truth_scale
from .repairs import readings
from .terms import clear


def has_gradient(node: Node) -> bool:
    """Whether the tree names a derivative (``dL/dy``)."""
    return any(isinstance(n, Adj) for n in walk(node))


def numerator_reading(node: Node) -> Node:
    """The tree with every derivative in it transposed (read as a row of numerator layout)."""
    return transform(node, lambda n: Unary("T", n) if isinstance(n, Adj) else n)


def transposed(node: Node) -> Node:
    """``node.T`` with the transpose moved inward: ``(a @ b).T`` is ``b.T @ a.T``, ``a.T.T`` is ``a``."""
    if isinstance(node, Unary) and node.op == "T":
        return node.x
    if isinstance(node, Binary) and node.op == "@":
        return Binary("@", transposed(node.b), transposed(node.a))
    if isinstance(node, Binary) and node.op in ("+", "-", "*"):
        return Binary(node.op, transposed(node.a), transposed(node.b))
    if isinstance(node, Unary) and node.op == "neg":
        return Unary("neg", transposed(node.x))
    return Unary("T", node)


def find_numerator(decider):
    """The first reading that holds in numerator layout, screened in floating point.

    Returns
    -------
    tuple or None
        (tree read with each gradient transposed, ⋅ choices, screening data).
    """
    checker, claim = decider.checker, decider.claim
    if not has_gradient(claim.rhs):
        return None
    rows, cols = checker.model.shape(decider.lhs)
    for tree, choices in readings(numerator_reading(claim.rhs)):
        decider.tick("reading the claim in numerator layout")
        try:
            if checker.model.shape(tree) != (cols, rows):
                continue
        except ShapeError:
            continue
        data = checker.evaluate(claim, tree)
        if data and holds_transposed(data, truth_scale(data)):
            return tree, choices, data
    return None


def explain_numerator(decider, res, tree, info, data, holding):
    """Say that the claim holds in numerator layout and give it in this tool's layout.

    Takes the parameters of :func:`derive.claims.holds.explain_holds`.
    """
    res.numerator = True
    res.repair = clear(transposed(tree))
    res.repair_edit = "write it in denominator layout: transpose both sides (each gradient is then a column)"
    res.repair_kinds = ["numerator layout (the transpose of the truth)"]
    reading = decider.reading_text(res, holding) or f" (read as {clear(tree)})"
    res.explanation = (
        f"holds in numerator layout{reading}; with every gradient read as the transpose of this tool's "
        f"(a row where ours is a column) it is the transpose of the truth; in denominator layout it reads "
        f"{res.repair}; {decider.proved_text(res)}")
