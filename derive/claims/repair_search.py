"""The search for a repair of a claim that does not hold: a beam over sequences of up to three edits.

The edits are those of :mod:`derive.claims.repairs` and
:mod:`derive.claims.model_edits`.  The search starts from every reading of
``⋅``; at each depth every edit of every kept candidate is screened in
floating point, and the candidates closest to the truth (and a few that do
not conform yet, which a transpose may mend) are kept for the next edit.  A
candidate that screens as the truth is proved symbolically before it is
given, so the first repair found has the fewest edits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..model.model import ShapeError
from ..notation.expr import Binary, Node
from ..notation.printer import show
from .confirm import confirm
from .holds import holds
from .model_edits import model_edits
from .numeric import truth_scale
from .partial import screen_partial
from .repairs import describe_choices, edits, readings
from .terms import clear

REPAIR_SECONDS = 8.0
"""Most seconds the search for a repair takes (within the claim's own limit)."""

MAX_EDITS = 3
"""The longest sequence of edits tried."""

BEAM = 6
"""Candidates that conform kept at each depth (the closest to the truth)."""

BEAM_NOT_CONFORMING = 3
"""Candidates that do not conform yet kept at each depth (in edit order)."""

MAX_REPAIR_TREES = 3000
"""Most edited trees the search screens."""


@dataclass
class Candidate:
    """A reading of the claim after some edits, and how far it is from the truth (inf: not conforming)."""

    tree: Node
    edits: tuple[str, ...]
    choices: list
    distance: float
    kinds: tuple[str, ...] = ()


@dataclass
class SearchOutcome:
    """What the search did: trees screened, and whether it stopped early (time or tree limit)."""

    tried: int = 0
    cut_short: str | None = None


def distance(data) -> float:
    """The claim's relative distance from the truth over screening ``data`` (inf when not finite)."""
    total = 0.0
    for _, _, C, T in data:
        if C.shape != T.shape or not np.all(np.isfinite(C)):
            return math.inf
        total += float(np.linalg.norm(C - T)) / max(float(np.linalg.norm(T)), 1e-12)
    return total / max(len(data), 1)


class RepairSearch:
    """One claim's repair search (see the module's docstring).

    Parameters
    ----------
    decider : Decider
        The decision of the claim (:class:`derive.claims.decide.Decider`).
    near : dict, optional
        When given, ``near["partial"]`` says the first edit after which the
        claim holds for one part (if any comes before a repair).
    """

    def __init__(self, decider, near: dict | None = None):
        self.decider = decider
        self.checker, self.claim = decider.checker, decider.claim
        self.model = self.checker.model
        self.target = self.model.shape(decider.lhs)
        self.near = near
        self.seen: set = set()
        self.outcome = SearchOutcome()
        started = time.monotonic()
        own, claims = started + REPAIR_SECONDS, decider.deadline - 0.25 * REPAIR_SECONDS
        self.stop_at = min(own, claims)
        self.time_up = (f"the repair search's {REPAIR_SECONDS:g} s ran out" if own <= claims
                        else "the claim's time limit was near")

    def run(self, res) -> SearchOutcome:
        """Search; set ``res.repair``, ``res.repair_edit`` and ``res.repair_edits`` when a repair is proved."""
        frontier = [c for c in (self.screen(tree, (), choices) for tree, choices in readings(self.claim.rhs))
                    if c is not None]
        for depth in range(1, MAX_EDITS + 1):
            found = []
            for state in self.keep(frontier):
                for edited, desc, kind in self.edits_of(state.tree):
                    if self.out_of_time():
                        return self.outcome
                    cand = self.screen(edited, state.edits + (desc,), state.choices, state.kinds + (kind,))
                    if cand is None:
                        continue
                    if cand.distance == 0.0:
                        if self.prove(cand):
                            self.give(res, cand)
                            return self.outcome
                        continue
                    found.append(cand)
            frontier = found
            if depth < MAX_EDITS and self.complete(res, frontier):
                return self.outcome
        return self.outcome

    def complete(self, res, frontier: list[Candidate]) -> bool:
        """Add the missing parts to the closest candidates that hold for some parts only (one more edit)."""
        checker, lhs, namer = self.checker, self.decider.lhs, self.decider.namer
        for cand in self.keep(frontier)[:BEAM]:
            if self.out_of_time():
                return False
            quick = checker.evaluate(self.claim, cand.tree, quick=True)
            info = screen_partial(checker, lhs, cand.tree, quick) if quick else None
            if info is None or info["extra"]:
                continue
            missing = [lab for lab in info["labels"] if lab not in info["present"]]
            nodes = namer.claim_term_nodes(lhs, missing)
            if not nodes:
                continue
            tree = cand.tree
            for node in nodes:
                tree = Binary("+", tree, node)
            added = self.screen(tree, cand.edits + ("add the missing " + " + ".join(clear(n) for n in nodes),),
                                cand.choices, cand.kinds + ("missing terms",))
            if added is not None and added.distance == 0.0 and self.prove(added):
                self.give(res, added)
                return True
        return False

    def edits_of(self, tree: Node):
        yield from edits(tree, self.model)
        yield from model_edits(tree, self.model)

    def out_of_time(self) -> bool:
        if time.monotonic() > self.stop_at:
            self.outcome.cut_short = self.time_up
            return True
        if self.outcome.tried >= MAX_REPAIR_TREES:
            self.outcome.cut_short = f"the repair search screened its limit of {MAX_REPAIR_TREES:,} trees"
            return True
        return False

    def keep(self, frontier: list[Candidate]) -> list[Candidate]:
        """The closest conforming candidates, then a few that do not conform yet."""
        conforming = sorted((c for c in frontier if c.distance < math.inf), key=lambda c: c.distance)
        other = [c for c in frontier if c.distance == math.inf]
        return conforming[:BEAM] + other[:BEAM_NOT_CONFORMING]

    def screen(self, tree: Node, done: tuple[str, ...], choices, kinds: tuple[str, ...] = ()) -> Candidate | None:
        """The candidate for a tree not seen before: distance 0 when it screens as the truth."""
        if tree in self.seen:
            return None
        self.seen.add(tree)
        self.outcome.tried += 1
        self.decider.tick("looking for a repair")
        try:
            s = self.model.shape(tree)
        except ShapeError:
            return Candidate(tree, done, choices, math.inf, kinds)
        if s != self.target and s != (1, 1):
            return Candidate(tree, done, choices, math.inf, kinds)
        quick = self.checker.evaluate(self.claim, tree, quick=True)
        if not quick:
            return None
        if holds(quick, truth_scale(quick)):
            return Candidate(tree, done, choices, 0.0, kinds)
        if len(done) == 1 and self.near is not None and "partial" not in self.near:
            self.near_partial(tree, done[0])
        return Candidate(tree, done, choices, max(distance(quick), 1e-300), kinds)

    def prove(self, cand: Candidate) -> bool:
        data = self.checker.evaluate(self.claim, cand.tree)
        if not holds(data, truth_scale(data)):
            return False
        try:
            return confirm(self.checker, self.claim, "holds", cand.tree, {})[0]
        except Exception:  # noqa: BLE001 - a proof that fails to run proves nothing: no repair
            return False

    def give(self, res, cand: Candidate):
        res.repair = clear(cand.tree)
        res.repair_edits = list(cand.edits)
        res.repair_kinds = list(dict.fromkeys(cand.kinds))
        text = "; ".join(cand.edits) if cand.edits else "read ⋅ as written below"
        res.repair_edit = text + (f", with {describe_choices(cand.choices)}" if cand.choices else "")
        res.repair_proved = True

    def near_partial(self, tree, desc: str):
        """Note an edit after which the claim holds for one part (screened, then proved)."""
        checker, claim, lhs, decider = self.checker, self.claim, self.decider.lhs, self.decider
        quick = checker.evaluate(claim, tree, quick=True)
        if screen_partial(checker, lhs, tree, quick) is None:
            return
        data = checker.evaluate(claim, tree)
        info = screen_partial(checker, lhs, tree, data)
        if info is None or info["extra"]:
            return
        if confirm(checker, claim, "partial", tree, info)[0]:
            missing = [lab for lab in info["labels"] if lab not in info["present"]]
            self.near["partial"] = (
                f"after one edit ({desc}) it holds for one part only: {show(tree)} is the part "
                f"{' + '.join(decider.namer.describe(lhs, info['present'], False))}"
                f"; still missing: {'; '.join(decider.namer.describe(lhs, missing))}")


def repair_text(res, outcome: SearchOutcome) -> str:
    """``repair in 2 edits (...): ...``, or what the search tried when it found none."""
    if res.repair:
        n = len(res.repair_edits) if res.repair_edits else 1
        count = "one edit" if n == 1 else f"{n} edits"
        return f"repair in {count} ({res.repair_edit}): {res.repair}"
    text = f"no repair among the {outcome.tried:,} edited readings tried (sequences of up to {MAX_EDITS} edits)"
    if outcome.cut_short:
        text += f"; the search stopped early: {outcome.cut_short}"
    return text
