"""A parameter's contributions over a range of steps written as a claim: ``sum_{k=1}^{t-1} ...``.

The parts of a shared parameter's derivative are labelled by step
(:func:`derive.claims.terms.label_of`); a run of them is one range sum
(:class:`derive.notation.expr.StepSum`), so that a truth or a missing term
such as ``dL_t/dW_hh``'s earlier steps can be printed, and proved, as a claim.
"""

from __future__ import annotations

from dataclasses import replace

from ..notation.expr import Adj, Binary, Node, Step, step_sum, transform


def step_range(labs: list[tuple]) -> tuple[str, list[tuple[Step, Step]]]:
    """How a consumer's step labels read (``the earlier steps k = 1..t-1``) and their ranges.

    Parameters
    ----------
    labs : list of (consumer, kind, step)
        Labels of one consumer (:data:`derive.claims.terms.Label`).

    Returns
    -------
    (str, list of (lo, hi))
        The words, and the ranges of steps ``k`` they cover (empty when the
        steps are no run that a range sum can write).
    """
    offsets = sorted(lab[2] for lab in labs if lab[1] == "rel")
    from_end = sorted(lab[2] for lab in labs if lab[1] == "last")
    if from_end and all(o < 0 for o in from_end):
        return f"the earlier steps k = 1..T-{-from_end[-1]}", [(Step("abs", 1), Step("last", from_end[-1]))]
    if from_end:
        return f"the last steps k = T-{-from_end[0]}..T", [(Step("last", from_end[0]), Step("last", 0))]
    if offsets and all(o < 0 for o in offsets):
        return "the earlier steps k = 1..t-1", [(Step("abs", 1), Step("rel", -1))]
    if offsets and all(o <= 0 for o in offsets):
        return "k = 1..t", [(Step("abs", 1), Step("rel", 0))]
    if offsets:
        return "the other steps k != t", [(Step("abs", 1), Step("rel", -1)), (Step("rel", 1), Step("last", 0))]
    steps = sorted(lab[2] for lab in labs if lab[2] is not None)
    words = "steps k = " + ", ".join(map(str, steps))
    if steps and steps == list(range(steps[0], steps[-1] + 1)):
        return words, [(Step("abs", steps[0]), Step("abs", steps[-1]))]
    return words, []


def range_sum(exprs: list[Node], ranges: list[tuple[Step, Step]]) -> Node | None:
    """The summed terms ``exprs`` (written for a step ``t`` that is the sum's own) over ``ranges``.

    A derivative of a per-step loss (``dL_t``) keeps the claim's ``t``; every
    other step counts from the sum's ``k``.
    """
    if not exprs or not ranges:
        return None

    def outer_loss(n):
        if isinstance(n, Adj) and n.loss_step is not None and n.loss_step.kind == "rel":
            return replace(n, loss_step=Step("outer", n.loss_step.offset))
        return n
    body = exprs[0]
    for e in exprs[1:]:
        body = Binary("+", body, e)
    body = transform(body, outer_loss)
    node = None
    for lo, hi in ranges:
        s = step_sum(body, "k", lo, hi)
        node = s if node is None else Binary("+", node, s)
    return node
