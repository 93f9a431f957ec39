"""The decision for one claim: screen its readings in floats, prove the best verdict, explain it.

Each verdict lives in its own module: the screening that finds it, what the
claim equals if it holds (for the proof, :mod:`derive.claims.confirm`) and
its explanation: :mod:`~derive.claims.holds` (holds, layout),
:mod:`~derive.claims.factor`, :mod:`~derive.claims.partial`,
:mod:`~derive.claims.wrong` and :mod:`~derive.claims.shape`.  The
:class:`Decider` runs them in order and keeps what they share.
"""

from __future__ import annotations

from ..calculus.show import initial_state_text
from ..notation.expr import Node
from ..notation.printer import show
from .confirm import confirm
from .context import sizes_text
from .factor import explain_factor, screen_factor
from .holds import explain_holds, explain_layout, holds, holds_transposed
from .numerator import explain_numerator, find_numerator
from .numeric import truth_scale
from .partial import explain_partial, screen_partial
from .repair_search import RepairSearch, repair_text
from .repairs import describe_choices, has_dot
from .result import RANK, Result
from .shape import shape_verdict
from .terms import TermNamer, label_of
from .vouch import proves, truth_rhs, vouch_repair
from .wrong import explain_wrong

EXPLAIN = {"holds": explain_holds, "layout": explain_layout, "factor": explain_factor,
           "partial": explain_partial, "wrong": explain_wrong}
"""How each verdict a reading can screen as is explained (and repaired)."""


class Decider:
    """Decides one claim (see :mod:`derive.claims.verdicts`).

    Parameters
    ----------
    checker : ClaimChecker
        The file's checker, its size contexts built
        (:class:`derive.claims.checker.ClaimChecker`).
    claim : Claim
        The claim to decide.
    deadline : float
        ``time.monotonic()`` at which the claim's time is up (the checker's
        :meth:`~derive.claims.checker.ClaimChecker.tick` enforces it).
    """

    def __init__(self, checker, claim, deadline: float):
        self.checker = checker
        self.claim = claim
        self.lhs = claim.lhs
        self.deadline = deadline
        self.namer = TermNamer(checker.derivation)
        self.combos = [ctx.sizes for ctx in checker.contexts]
        self.truth: str | None = None
        self.truth_terms: str | None = None

    def tick(self, what: str):
        """Say what is being done; raise ``OutOfTime`` past the claim's deadline."""
        self.checker.tick(what)

    def classify(self, tree: Node, data) -> tuple[str, dict]:
        """The best verdict a reading screens as in floating point, with what the screening found."""
        scale = truth_scale(data)
        if holds(data, scale):
            return "holds", {}
        if holds_transposed(data, scale):
            return "layout", {}
        factor = screen_factor(data, scale, self.combos)
        if factor is not None:
            return "factor", factor
        part = screen_partial(self.checker, self.lhs, tree, data)
        if part is not None:
            return "partial", part
        return "wrong", {}

    def find_repair(self, res: Result, near: dict | None = None) -> str:
        """Search for a repair of up to three edits (:class:`derive.claims.repair_search.RepairSearch`).

        Returns
        -------
        str
            The repair's text, or what the search tried when it found none.
        """
        search = RepairSearch(self, near)
        outcome = search.run(res)
        text = repair_text(res, outcome)
        if not res.repair:
            res.repair_search = text
            res.repair_timed_out = outcome.cut_short == search.time_up
        return text

    def decide(self) -> Result:
        """The verdict on the claim, proved, explained and with a repair where one is found.

        The truth and the repair are proved as claims of their own before they
        are given (:mod:`derive.claims.vouch`): a truth that is not is given as
        derived terms (``truth_terms``), a repair that is not is dropped.
        """
        self.tick("writing out the truth")
        text, is_claim = self.truth_text()
        proved = is_claim and proves(self, truth_rhs(self.lhs, text))
        if proved:
            self.truth = text
        else:
            self.truth_terms = text + self.initial_state_note()
        res = self._decide(self.truth)
        res.truth, res.truth_terms = self.truth, self.truth_terms
        if is_claim and not proved:
            res.withheld.append(f"truth: {text}")
        vouch_repair(self, res)
        return res

    def initial_state_note(self) -> str:
        """`` for t = 1..T; at t = 0, dL/dh_0 = ...``: a state's line at t = 0, which ``derive show`` prints
        apart, when the claim is of the state's adjoint at every step ("" otherwise)."""
        derivation = self.checker.derivation
        adjoint = derivation.adjoints.get(self.lhs.name)
        step = self.lhs.step
        if adjoint is None or self.lhs.loss_step is not None or step is None or step.kind != "rel" \
                or derivation.model.symbols[self.lhs.name].kind != "state":
            return ""
        return f" for t = 1..T; at t = 0, {initial_state_text(derivation.model, adjoint)}"

    def truth_phrase(self) -> str:
        """``the truth: dL/dX = ...``, or the truth as derived terms when it is not a claim."""
        if self.truth is not None:
            return f"the truth: {self.truth}"
        return f"the truth, as derived terms (not written as a claim): {self.truth_terms}"

    def _decide(self, truth) -> Result:
        claim = self.claim
        self.tick("reading the shapes of the claim")
        target, good, errors = self.checker.conforming(claim)
        if not good:
            return self.numerator(truth) or shape_verdict(self, target, truth)
        candidates = []
        for order, (tree, choices, shape) in enumerate(good):
            self.tick("screening the readings of ⋅")
            data = self.checker.evaluate(claim, tree)
            if not data:
                continue
            verdict, info = self.classify(tree, data)
            candidates.append((RANK[verdict], order, verdict, info, tree, choices, data))
        if not candidates:
            return Result(claim, "wrong", "the right side cannot be evaluated at any step where "
                          f"{show(self.lhs)} exists", truth=truth)
        candidates.sort(key=lambda c: (c[0], c[1]))
        _, _, verdict, info, tree, choices, data = candidates[0]
        if verdict not in ("holds", "layout"):
            numerator = self.numerator(truth)
            if numerator is not None:
                return numerator
        holding = [c for c in candidates if c[2] == "holds"]
        ok, entries, gap, sizes = (False, 0, None, []) if verdict == "wrong" else \
            confirm(self.checker, claim, verdict, tree, info)
        if not ok and verdict != "wrong":
            return Result(claim, "undecided", "the floating-point screening says "
                          f"'{verdict}' but the symbolic proof did not close within its "
                          "simplification budget", reading=show(tree), truth=truth)
        self.tick(f"explaining the verdict '{verdict}'")
        res = Result(claim, verdict, "", reading=show(tree) if has_dot(claim.rhs) else None,
                     dot_choices=describe_choices(choices) if choices else None, truth=truth,
                     sizes_proved=sizes, witness_gap=gap, entries_proved=entries)
        EXPLAIN[verdict](self, res, tree, info, data, holding)
        return res

    def numerator(self, truth) -> Result | None:
        """The verdict ``layout`` when the claim holds in numerator layout (proved), else None."""
        found = find_numerator(self)
        if found is None:
            return None
        tree, choices, data = found
        ok, entries, gap, sizes = confirm(self.checker, self.claim, "layout", tree, {})
        if not ok:
            return None
        res = Result(self.claim, "layout", "", reading=show(tree),
                     dot_choices=describe_choices(choices) if choices else None, truth=truth,
                     sizes_proved=sizes, witness_gap=gap, entries_proved=entries)
        explain_numerator(self, res, tree, {}, data, [])
        return res

    # -- texts the explanations share --------------------------------------------
    def truth_text(self) -> tuple[str, bool]:
        """The truth written out in the notes' notation, part by part, and whether it is a claim."""
        labels = []
        for k, ctx in enumerate(self.checker.contexts[:1]):
            for t in self.checker.steps(self.claim, ctx):
                labels += [label_of(o, t) for o in ctx.groups(self.lhs, t)]
        return self.namer.truth_text(self.lhs, labels)

    def proved_text(self, res: Result) -> str:
        """``proved as a symbolic identity ... at sizes ...``: how the verdict was proved."""
        where = "; ".join(sizes_text(s) for s in res.sizes_proved)
        steps = " at every step" if self.checker.steps(self.claim, self.checker.contexts[0]) != [None] else ""
        witness = f"50-digit witness gap {res.witness_gap:.0e}"
        tests = [r for ctx in self.checker.contexts for r in ctx.identity_tests]
        if not any(r.shown for r in tests):
            return (f"proved as a symbolic identity, entry by entry{steps}, at sizes {where} "
                    f"({res.entries_proved} entries); {witness}")
        bound = min(1.0, sum(r.failure_bound() for r in tests))
        return (f"proved entry by entry{steps}, at sizes {where} ({res.entries_proved} entries), as identities "
                f"(a randomized test modulo 2^61 - 1, chance of a false pass below {max(bound, 1e-300):.0e}, "
                f"or SymPy); {witness}")

    def reading_text(self, res: Result, holding) -> str:
        """`` with ⋅ as @: ...``: the reading of ``⋅`` proved, and the others that hold ("" if none)."""
        if not res.dot_choices:
            return ""
        text = f" with {res.dot_choices}: {res.reading}"
        others = [show(c[4]) for c in holding if show(c[4]) != res.reading]
        if others:
            text += " (also with the reading " + "; ".join(others) + ")"
        return text
