"""The search for a one-edit repair of a claim that does not hold (the edits: :mod:`derive.claims.repairs`)."""

from __future__ import annotations

import time

from ..model.model import ShapeError
from ..notation.printer import show
from .confirm import confirm
from .holds import holds
from .numeric import truth_scale
from .partial import screen_partial
from .repairs import describe_choices, edits, readings
from .terms import clear

REPAIR_SECONDS = 8.0
"""Most seconds the search for a repair takes (within the claim's own limit)."""

MAX_REPAIR_TREES = 400
"""Most edited readings of the right shape the search screens."""


def one_edit_repair(decider, res, near: dict | None = None):
    """The first single edit that makes the claim hold (proved), if any.

    Parameters
    ----------
    decider : Decider
        The decision of the claim (:class:`derive.claims.decide.Decider`).
    res : Result
        Gets the repair (``repair``, ``repair_edit``) when one is found.
    near : dict, optional
        When given, ``near["partial"]`` says the first edit after which the
        claim holds for one part (if any comes before a repair).
    """
    checker, claim = decider.checker, decider.claim
    start = time.monotonic()
    target = checker.model.shape(decider.lhs)
    seen = set()
    tried = 0
    for edited, desc in edits(claim.rhs):
        if time.monotonic() - start > REPAIR_SECONDS:
            return
        decider.tick("looking for a one-edit repair")
        for tree, choices in readings(edited):
            if tree in seen:
                continue
            seen.add(tree)
            try:
                s = checker.model.shape(tree)
            except ShapeError:
                continue
            if s != target and s != (1, 1):
                continue
            tried += 1
            if tried > MAX_REPAIR_TREES:
                return
            quick = checker.evaluate(claim, tree, quick=True)
            if not quick:
                continue
            if not holds(quick, truth_scale(quick)):
                if near is not None and "partial" not in near:
                    _near_partial(decider, near, tree, desc)
                continue
            data = checker.evaluate(claim, tree)
            if not holds(data, truth_scale(data)):
                continue
            try:
                ok = confirm(checker, claim, "holds", tree, {})[0]
            except Exception:
                ok = False
            if ok:
                res.repair = clear(tree)
                res.repair_edit = desc + (f", with {describe_choices(choices)}" if choices else "")
                res.repair_proved = True
                return


def _near_partial(decider, near: dict, tree, desc: str):
    """Note an edit after which the claim holds for one part (screened, then proved)."""
    checker, claim, lhs = decider.checker, decider.claim, decider.lhs
    quick = checker.evaluate(claim, tree, quick=True)
    if screen_partial(checker, lhs, tree, quick) is None:
        return
    data = checker.evaluate(claim, tree)
    info = screen_partial(checker, lhs, tree, data)
    if info is None or info["extra"]:
        return
    if confirm(checker, claim, "partial", tree, info)[0]:
        missing = [lab for lab in info["labels"] if lab not in info["present"]]
        near["partial"] = (f"after one edit ({desc}) it holds for one part only: {show(tree)} is "
                           f"the part {' + '.join(decider.namer.describe(lhs, info['present'], False))}"
                           f"; still missing: {'; '.join(decider.namer.describe(lhs, missing))}")
