"""The checker of one file's claims: the model unrolled at each check size, shared by its claims.

:class:`ClaimChecker` builds the size contexts (:class:`SizeContext`) on
first use, evaluates claim trees in floating point against the exact
adjoint, and runs the decision for each claim (:class:`Decider`) within the
time limits, turning a reached limit or a bug into an undecided verdict.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..calculus.cache_keys import cached_for_model, sizes_key
from ..calculus.matrix import derive_matrix
from ..model.model import ShapeError
from ..notation.expr import Adj, Call, Iverson, Node, Ref, StepSum, walk
from .context import SizeContext, sizes_text
from .decide import Decider
from .limits import Budget, OutOfTime, claim_limit_text, command_limit_text, memory_text, setup_text
from .numeric import Undefined
from .read import Claim, ClaimsFile
from .repairs import readings
from .result import Result, internal_error_result


def free_relative(node: Node) -> bool:
    """Whether the tree reads step ``t`` outside any ``sum_t``."""
    if isinstance(node, StepSum):
        return "rel" in (node.lo.kind, node.hi.kind) or any(
            s is not None and s.kind == "outer" for n in walk(node.args[0]) if isinstance(n, (Ref, Adj))
            for s in ([n.step] + ([n.loss_step, n.use] if isinstance(n, Adj) else [])))
    if isinstance(node, Call) and node.fn == "sum_t":
        return False
    if isinstance(node, Iverson):
        return True
    if isinstance(node, (Ref, Adj)):
        steps = [node.step] + ([node.loss_step, node.use] if isinstance(node, Adj) else [])
        if any(s is not None and s.kind == "rel" for s in steps):
            return True
    return any(free_relative(k) for k in node.children())


class ClaimChecker:
    """Checks the claims of one file against shared size contexts.

    The contexts (the model unrolled at each size combination) are built on
    first use, inside the time of the claim that needs them first.

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.
    combos : list of dict
        The size combinations (:func:`derive.claims.verdicts.claim_sizes`).
    on_phase : callable, optional
        ``on_phase(what, setup)`` hears what the checker is doing
        (``setup`` is true while the model is unrolled).
    """

    def __init__(self, notes: ClaimsFile, combos: list[dict[str, int]],
                 on_phase: Callable[[str, bool], None] | None = None):
        self.notes = notes
        self.model = notes.model
        self.combos = [dict(c) for c in combos]
        self.on_phase = on_phase
        self.derivation = derive_matrix(self.model)
        self._contexts: list[SizeContext] = []
        self.setup_failed: str | None = None
        self.deadline = float("inf")
        self.truth_cache: dict[tuple, np.ndarray] = {}
        self.group_cache: dict[tuple, dict[tuple, np.ndarray]] = {}

    @property
    def contexts(self) -> list[SizeContext]:
        """The size contexts, built (unrolled and evaluated) on first use."""
        while len(self._contexts) < len(self.combos):
            k = len(self._contexts)
            what = f"unrolling the model at sizes {sizes_text(self.combos[k])}"
            self.tick(what, setup=True)
            ctx = SizeContext(self.model, self.combos[k], seed=k,
                              tick=lambda w=what: self.tick(w, setup=True))
            ctx.derivation = self.derivation
            ctx.tick = self.tick
            self._contexts.append(ctx)
        return self._contexts

    def tick(self, what: str, setup: bool = False):
        """Say what is being done; raise :class:`OutOfTime` past the deadline."""
        if self.on_phase is not None:
            self.on_phase(what, setup)
        if time.monotonic() > self.deadline:
            raise OutOfTime(f"while {what}")

    # -- instances --------------------------------------------------------
    def steps(self, claim: Claim, ctx: SizeContext) -> list[int | None]:
        """The steps at which a claim is checked in ``ctx`` ([None]: it names no free step ``t``)."""
        lhs = claim.lhs
        if not (free_relative(lhs) or free_relative(claim.rhs)):
            return [None] if ctx.has_value(lhs, None) else []
        sym = self.model.symbols[lhs.name]
        first = 0 if (sym.kind == "state" and lhs.step is not None) else 1
        return [t for t in range(first, ctx.T + 1) if ctx.has_value(lhs, t)]

    def truth_float(self, k: int, lhs: Adj, t) -> np.ndarray:
        """The exact derivative ``lhs`` at step ``t`` of context ``k``, in floating point (cached)."""
        key = (k, lhs, t)
        if key not in self.truth_cache:
            ctx = self.contexts[k]
            self.truth_cache[key] = ctx.to_float(ctx.truth(lhs, t))
        return self.truth_cache[key]

    def groups_float(self, k: int, lhs: Adj, t) -> dict[tuple, np.ndarray]:
        """The truth split by consumer (:meth:`SizeContext.groups`), in floating point (cached)."""
        key = (k, lhs, t)
        if key not in self.group_cache:
            ctx = self.contexts[k]
            self.group_cache[key] = {o: ctx.to_float(m) for o, m in ctx.groups(lhs, t).items()}
        return self.group_cache[key]

    def evaluate(self, claim: Claim, tree: Node, quick: bool = False):
        """[(context index, t, claim value, truth value)] in floating point."""
        out = []
        for k, ctx in enumerate(self.contexts):
            fe = ctx.float_evaluator()
            for t in self.steps(claim, ctx):
                truth = self.truth_float(k, claim.lhs, t)
                try:
                    value = fe(tree, t)
                except (Undefined, KeyError, IndexError, ValueError):
                    continue
                if value.shape == (1, 1) and truth.shape != (1, 1):
                    value = np.broadcast_to(value, truth.shape)
                out.append((k, t, value, truth))
                if quick and len(out) >= 2:
                    return out
        return out

    # -- the shape --------------------------------------------------------
    def conforming(self, claim: Claim):
        """Readings that conform and give the derivative's shape (or its transpose)."""
        target = self.model.shape(claim.lhs)
        good, errors = [], []
        for tree, choices in readings(claim.rhs):
            try:
                s = self.model.shape(tree)
            except ShapeError as err:
                errors.append((tree, choices, err))
                continue
            if s in (target, (target[1], target[0]), (1, 1)):
                good.append((tree, choices, s))
            else:
                errors.append((tree, choices, s))
        return target, good, errors

    def check(self, claim: Claim, budget: Budget, begun: float | None = None,
              margin: float = 0.0) -> Result:
        """The verdict on one claim, within the budget's limits.

        Parameters
        ----------
        claim : Claim
            A readable claim of the file.
        budget : Budget
            The time limits.
        begun : float, optional
            ``time.monotonic()`` when the claim's time started (default now).
        margin : float
            Stop this much before the limits (a supervisor kills at them).
        """
        start = time.monotonic() if begun is None else begun
        claim_end = start + budget.claim_seconds - margin
        command_end = float("inf") if budget.command_deadline is None else budget.command_deadline - margin
        self.deadline = min(claim_end, command_end)
        try:
            if self.setup_failed is not None:
                result = Result(claim, "undecided", self.setup_failed, limit="claim_seconds")
            else:
                result = self._check(claim)
        except OutOfTime as stop:
            if command_end < claim_end:
                result = Result(claim, "undecided", command_limit_text(budget, f"was reached {stop}"),
                                limit="seconds")
            else:
                result = Result(claim, "undecided", claim_limit_text(budget, f"was reached {stop}"),
                                limit="claim_seconds")
                if len(self._contexts) < len(self.combos):
                    self.setup_failed = setup_text(budget, str(stop), claim.line)
        except MemoryError:
            result = Result(claim, "undecided", memory_text(), limit="memory")
        except Exception as err:  # noqa: BLE001 - a bug of derive's: this claim only, said plainly
            result = internal_error_result(claim, f"{type(err).__name__}: {err}", traceback.format_exc())
        finally:
            self.deadline = float("inf")
        result.seconds = time.monotonic() - start
        return result

    def _check(self, claim: Claim) -> Result:
        """The verdict, or the one an earlier check of this claim, model and sizes stored (derive.cache)."""
        def decide() -> Result:
            return replace(Decider(self, claim, self.deadline).decide(), claim=None)

        # a verdict's words hold the line and columns of its claim (shape errors, products read): they are keyed too
        parts = (tuple(sizes_key(c) for c in self.combos), claim.text, repr(claim.lhs), repr(claim.rhs),
                 claim.line, claim.column, claim.source_line)
        return replace(cached_for_model("claim", self.model, parts, decide, keep=reusable), claim=claim)


def reusable(result: Result) -> bool:
    """Whether a verdict may be stored: decided, and no limit, internal error or repair search cut short by time."""
    return (result.verdict != "undecided" and result.limit is None and result.internal is None
            and not result.repair_timed_out)
