"""Decide the verdict of each claim against the exact derivation.

For each size combination (:func:`claim_sizes`) the model is unrolled and
swept (:mod:`derive.claim_context`).  Each reading of the claim (every
resolution of ``⋅``) is screened in floating point against the exact
adjoint at every step; the best verdict found (holds, layout, factor,
partial, wrong) is then proved symbolically entry by entry with
:class:`derive.prove.EntryProver` and checked at a 50-digit point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .claim_context import SizeContext
from .claim_numeric import Undefined
from .claims import Claim, ClaimsFile
from .expr import Adj, Call, Node, Ref
from .matrix import derive_matrix
from .model import ShapeError
from .repairs import readings

TIME_LIMIT = 20.0
RANK = {"holds": 0, "layout": 1, "factor": 2, "partial": 3, "wrong": 4}


class OutOfTime(Exception):
    """The per-claim time limit was reached."""


@dataclass
class Result:
    """The verdict on one claim, with everything the report shows."""

    claim: Claim
    verdict: str
    explanation: str
    reading: str | None = None
    dot_choices: str | None = None
    truth: str | None = None
    repair: str | None = None
    repair_edit: str | None = None
    counterexample: dict | None = None
    sizes_proved: list[dict[str, int]] = field(default_factory=list)
    factor: str | None = None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    shape: dict | None = None
    witness_gap: float | None = None
    entries_proved: int = 0
    seconds: float = 0.0


def claim_sizes(model, pinned: dict[str, int], count: int = 3) -> list[dict[str, int]]:
    """Small size combinations with distinct values for distinct sizes in each.

    Distinct values make a misplaced transpose fail to conform, and a mix-up
    of two sizes show.  ``pinned`` sizes (T when a claim names a fixed step)
    keep their value.
    """
    names = [n for n in model.sizes if n != "T" and n not in pinned]
    values = list(range(2, 2 + max(len(names), 1)))
    combos = []
    for k in range(count):
        sizes = {n: values[(i + k) % len(values)] for i, n in enumerate(names)}
        if model.has_steps:
            sizes["T"] = pinned.get("T", (3, 3, 4)[k % 3])
        sizes.update({n: v for n, v in pinned.items()})
        combos.append(sizes)
    return combos


def sizes_text(sizes: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def free_relative(node: Node) -> bool:
    """Whether the tree reads step ``t`` outside any ``sum_t``."""
    if isinstance(node, Call) and node.fn == "sum_t":
        return False
    if isinstance(node, (Ref, Adj)):
        steps = [node.step] + ([node.loss_step, node.use] if isinstance(node, Adj) else [])
        if any(s is not None and s.kind == "rel" for s in steps):
            return True
    return any(free_relative(k) for k in node.children())


class ClaimChecker:
    """Checks the claims of one file against shared size contexts."""

    def __init__(self, notes: ClaimsFile, contexts: list[SizeContext]):
        self.notes = notes
        self.model = notes.model
        self.contexts = contexts
        self.derivation = derive_matrix(self.model)
        for ctx in contexts:
            ctx.derivation = self.derivation
        self.truth_cache: dict[tuple, np.ndarray] = {}
        self.group_cache: dict[tuple, dict[tuple, np.ndarray]] = {}

    # -- instances --------------------------------------------------------
    def steps(self, claim: Claim, ctx: SizeContext) -> list[int | None]:
        lhs = claim.lhs
        if not (free_relative(lhs) or free_relative(claim.rhs)):
            return [None] if ctx.has_value(lhs, None) else []
        sym = self.model.symbols[lhs.name]
        first = 0 if (sym.kind == "state" and lhs.step is not None) else 1
        return [t for t in range(first, ctx.T + 1) if ctx.has_value(lhs, t)]

    def truth_float(self, k: int, lhs: Adj, t) -> np.ndarray:
        key = (k, lhs, t)
        if key not in self.truth_cache:
            ctx = self.contexts[k]
            self.truth_cache[key] = ctx.to_float(ctx.truth(lhs, t))
        return self.truth_cache[key]

    def groups_float(self, k: int, lhs: Adj, t) -> dict[tuple, np.ndarray]:
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

    def check(self, claim: Claim) -> Result:
        """The verdict on one claim."""
        start = time.perf_counter()
        deadline = start + TIME_LIMIT
        try:
            result = self._check(claim, deadline)
        except OutOfTime as stop:
            result = Result(claim, "undecided", f"the time limit of {TIME_LIMIT:.0f} s per claim was "
                            f"reached {stop}; no verdict")
        result.seconds = time.perf_counter() - start
        return result

    def _check(self, claim: Claim, deadline: float) -> Result:
        from .verdict_rules import Decider
        return Decider(self, claim, deadline).decide()


def check_file(notes: ClaimsFile, progress: TextIO | None = None) -> list[Result]:
    """Check every claim of a parsed claims file.

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.
    progress : text stream, optional
        Where to say what is being checked.

    Returns
    -------
    list of Result
        One per claim, in file order.
    """
    combos = claim_sizes(notes.model, notes.pinned)
    contexts = [SizeContext(notes.model, s, seed=k) for k, s in enumerate(combos)]
    checker = ClaimChecker(notes, contexts)
    results = []
    for claim in notes.claims:
        if progress is not None:
            print(f"checking line {claim.line}: {claim.text}", file=progress)
        results.append(checker.check(claim))
    return results
