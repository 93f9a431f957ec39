"""The verdict 'shape': no reading of the claim conforms to the derivative's shape."""

from __future__ import annotations

from ..model.model import ShapeError, shape_text
from ..notation.printer import show
from .repairs import has_dot
from .result import Result


def shape_verdict(decider, target: tuple, truth: str) -> Result:
    """The shape error of a claim: where it is, the operands' shapes, and a repair if one conforms.

    Parameters
    ----------
    decider : Decider
        The decision of the claim (:class:`derive.claims.decide.Decider`).
    target : tuple of int
        The derivative's shape.
    truth : str
        The truth, written out.

    Returns
    -------
    Result
        The verdict ``shape``.
    """
    model = decider.checker.model
    claim, lhs = decider.claim, decider.lhs
    res = Result(claim, "shape", "", truth=truth)
    try:
        s = model.shape(claim.rhs)
        res.shape = {"claimed": shape_text(s), "expected": shape_text(target),
                     "line": claim.line, "column": claim.column}
        text = (f"shape error: the right side is {shape_text(s)} but {show(lhs)} is "
                f"{shape_text(target)} (shaped like {model.display(lhs.name, lhs.step)})")
    except ShapeError as err:
        node = err.node
        pos = node.pos or (claim.line, claim.column)
        operands = {}
        for key, child in zip(("left", "right"), node.children()):
            try:
                operands[key] = {"expr": show(child), "shape": shape_text(model.shape(child))}
            except ShapeError:
                pass
        res.shape = {"message": str(err), "line": pos[0], "column": pos[1], "at": show(node),
                     "operands": operands, "expected": shape_text(target)}
        ops = "; ".join(f"{o['expr']} is {o['shape']}" for o in operands.values())
        text = f"shape error at column {pos[1]} in {show(node)}: {err}" + (f" ({ops})" if ops else "")
        if has_dot(claim.rhs):
            text += "; no reading of ⋅ (@, *, or @ with the operands swapped) conforms"
    text += "; " + decider.find_repair(res)
    res.explanation = text + f"; {decider.truth_phrase()}"
    return res
