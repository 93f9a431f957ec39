"""The verdicts 'holds' and 'layout': the claim is the derivative, or its transpose."""

from __future__ import annotations

from ..calculus.entries import Mat
from ..model.model import shape_text
from ..notation.expr import Unary
from ..notation.printer import show
from .numeric import agrees
from .terms import clear


def holds(data, scale: float) -> bool:
    """Whether the claim's values equal the truth's in every row of screening ``data``.

    Parameters
    ----------
    data : list
        (context index, step, claim value, truth value) in floating point
        (:meth:`derive.claims.checker.ClaimChecker.evaluate`).
    scale : float
        The truth's magnitude (:func:`derive.claims.numeric.truth_scale`).
    """
    return all(agrees(C, T, scale) for _, _, C, T in data)


def holds_transposed(data, scale: float) -> bool:
    """Whether the claim's values equal the truth's transposes (numerator layout); see :func:`holds`."""
    return all(agrees(C, T.T, scale) for _, _, C, T in data)


def layout_target(truth: Mat) -> Mat:
    """What a claim holding up to layout equals: the transpose of the truth."""
    return Mat.fill(truth.cols, truth.rows, lambda i, j: truth[j, i])


def explain_holds(decider, res, tree, info, data, holding):
    """Say that the claim holds, with the reading of ``⋅`` and the proof.

    Parameters
    ----------
    decider : Decider
        The decision of the claim (:class:`derive.claims.decide.Decider`).
    res : Result
        The result to fill in.
    tree : Node
        The reading proved.
    info : dict
        What the screening found (nothing for this verdict).
    data : list
        The screening values of ``tree``.
    holding : list
        Every candidate reading that holds.
    """
    res.explanation = f"holds{decider.reading_text(res, holding)}; {decider.proved_text(res)}"


def explain_layout(decider, res, tree, info, data, holding):
    """Say that the claim is the derivative's transpose, and repair it; see :func:`explain_holds`."""
    res.repair = clear(Unary("T", tree))
    res.repair_edit = "transpose the right side"
    res.repair_kinds = ["numerator layout (the transpose of the truth)"]
    lhs, model = decider.lhs, decider.checker.model
    x = show(lhs)
    res.explanation = (f"holds up to layout{decider.reading_text(res, holding)}: it is the transpose "
                       f"of {x} (numerator layout), but {x} is shaped like "
                       f"{model.display(lhs.name, lhs.step)} "
                       f"({shape_text(model.shape(lhs))}, denominator layout); "
                       f"{decider.proved_text(res)}")
