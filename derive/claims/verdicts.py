"""Check every claim of a file: choose the check sizes, then decide each claim.

:func:`check_file` plans the check (:func:`plan_check`: small sizes, and the
claims that cannot be checked at them) and runs the other claims
(:mod:`derive.claims.runners`) through a :class:`derive.claims.checker.ClaimChecker`.
For each size combination (:func:`claim_sizes`) the model is unrolled and
swept (:mod:`derive.claims.context`).  Each reading of the claim (every
resolution of ``⋅``) is screened in floating point against the exact
adjoint at every step; the best verdict found (holds, layout, factor,
partial, wrong; :mod:`derive.claims.decide`) is then proved symbolically
entry by entry (:mod:`derive.claims.confirm`) and checked at a 50-digit point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from ..model.sizes import constant_sizes, first_fitting, smallest_T
from .context import sizes_text
from .limits import MAX_CHECK_ENTRIES, MAX_PINNED_T, TIME_LIMIT, Budget
from .read import ClaimsFile, uses_fixed_step
from .result import Result, error_result
from .runners import can_isolate, run_in_process, run_isolated


def claim_sizes(model, pinned: dict[str, int], count: int = 3) -> list[dict[str, int]]:
    """Small size combinations with distinct values for distinct sizes in each.

    Distinct values make a misplaced transpose fail to conform, and a mix-up
    of two sizes show.  ``pinned`` sizes (T when a claim names a fixed step)
    keep their value, and so do the sizes no input array holds (see
    :func:`derive.model.sizes.constant_sizes`).  T
    is at least the largest fixed step the model reads.

    Parameters
    ----------
    model : Model
        The resolved model.
    pinned : dict
        Sizes that keep their value in every combination.
    count : int
        How many combinations.

    Returns
    -------
    list of dict
        The size combinations, T included for a per-step model.
    """
    fixed = constant_sizes(model)
    fixed.update(pinned)
    names = [n for n in model.sizes if n != "T" and n not in fixed]
    values = list(range(2, 2 + max(len(names), count)))
    least_T = smallest_T(model)
    combos = []
    for k in range(count):

        def candidate(shift: int, k: int = k) -> dict[str, int]:
            sizes = {n: values[(i + k) % len(values)] + shift for i, n in enumerate(names)}
            if model.has_steps:
                sizes["T"] = max((3, 3, 4)[k % 3], least_T)
            sizes.update(fixed)
            return sizes

        sizes = first_fitting(model, candidate)
        if sizes not in combos:
            combos.append(sizes)
    return combos


def unrolled_entries(model, sizes: dict[str, int]) -> int:
    """How many scalar values the model unrolled at ``sizes`` holds (before the sweeps).

    Parameters
    ----------
    model : Model
        The resolved model.
    sizes : dict
        Concrete sizes (a size missing counts as 1).

    Returns
    -------
    int
        The entries of every symbol, per step for a per-step one.
    """
    T = sizes.get("T", 1) if model.has_steps else 1
    total = 0
    for sym in model.symbols.values():
        if sym.shape is None:
            continue
        rows, cols = (d if isinstance(d, int) else sizes.get(d, 1) for d in sym.shape)
        count = rows * cols
        if sym.per_step:
            count *= T + (1 if sym.kind == "state" else 0)
        total += count
    return total


@dataclass
class Plan:
    """The check sizes of a file's claims, and the claims decided before any work (too large).

    ``groups`` pairs each set of size combinations with the claims checked at
    it (indices, in file order): a claim naming a fixed step is checked at the
    declared T, every other claim at small T's of its own, so that no claim's
    sizes, and hence its verdict, depend on the other claims of the file.
    """

    groups: list[tuple[list[dict[str, int]], list[int]]]
    skipped: dict[int, Result]


def plan_check(notes: ClaimsFile) -> Plan:
    """Choose the check sizes; claims that cannot be checked at small sizes are undecided.

    Declared sizes never reach the symbolic work: every size is a small
    number (:func:`claim_sizes`).  The exceptions are T for a claim that names
    a fixed step (kept as declared up to :data:`MAX_PINNED_T`; above it the
    claim is undecided) and dimensions written as numbers in a shape (a
    model that then holds more than :data:`MAX_CHECK_ENTRIES` values is not
    unrolled).

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.

    Returns
    -------
    Plan
        The check sizes of each group of claims, and the undecided result of
        each claim that cannot be checked at them (by index).
    """
    declared_T = notes.pinned.get("T")
    free = claim_sizes(notes.model, {})
    pinned = None
    if declared_T is not None and declared_T <= MAX_PINNED_T:
        pinned = claim_sizes(notes.model, {"T": declared_T})
    groups: dict[int, tuple[list[dict[str, int]], list[int]]] = {}
    skipped = {}
    for i, claim in enumerate(notes.claims):
        if claim.error is not None:
            continue
        fixed = declared_T is not None and uses_fixed_step(claim)
        if fixed and pinned is None:
            skipped[i] = Result(claim, "undecided", (
                f"no verdict: the claim names a fixed step, so it must be checked at the file's "
                f"T = {declared_T:,}, but claims are checked symbolically only at small sizes "
                f"(T at most {MAX_PINNED_T}); name the step from the end (h_T, h_{{T-1}}) or "
                "declare a smaller T with 'size T = ...'"), limit="sizes")
            continue
        combos = pinned if fixed else free
        biggest = max(combos, key=lambda c: unrolled_entries(notes.model, c))
        entries = unrolled_entries(notes.model, biggest)
        if entries > MAX_CHECK_ENTRIES:
            skipped[i] = Result(claim, "undecided", (
                f"no verdict: at the check sizes {sizes_text(biggest)} the unrolled model holds "
                f"{entries:,} scalar values, more than the {MAX_CHECK_ENTRIES:,} a symbolic check "
                "unrolls (a dimension written as a number in a shape is not made small: declare it "
                "with a 'size' line)"), limit="sizes")
            continue
        groups.setdefault(int(fixed), (combos, []))[1].append(i)
    return Plan([groups[k] for k in sorted(groups, key=lambda k: groups[k][1][0])], skipped)


def check_file(notes: ClaimsFile, progress: TextIO | None = None, *, claim_seconds: float | None = None,
               seconds: float | None = None, started: float | None = None,
               isolate: bool | None = None) -> list[Result]:
    """Check every claim of a parsed claims file.

    A claim line that could not be read gets the verdict ``error``; a claim
    that runs out of time, or that cannot be checked at small sizes, gets
    ``undecided`` with the reason, and the others go on.

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.
    progress : text stream, optional
        Where to say what is being checked.
    claim_seconds : float, optional
        Time limit per claim (default :data:`TIME_LIMIT`).
    seconds : float, optional
        Time limit of the whole check, counted from ``started`` (None: none).
    started : float, optional
        ``time.monotonic()`` when the command started (default now).
    isolate : bool, optional
        Check the claims in a worker process that is killed at the limits
        (default: where ``fork`` is available, Linux).  Without it the limits
        are checked between the steps of the work only.

    Returns
    -------
    list of Result
        One per claim, in file order.
    """
    started = time.monotonic() if started is None else started
    budget = Budget(TIME_LIMIT if claim_seconds is None else float(claim_seconds), seconds,
                    None if seconds is None else started + seconds)
    results: list[Result | None] = [None] * len(notes.claims)
    for i, claim in enumerate(notes.claims):
        if claim.error is not None:
            results[i] = error_result(claim)
    plan = plan_check(notes)
    for i, r in plan.skipped.items():
        results[i] = r
    if isolate is None:
        isolate = can_isolate()
    run = run_isolated if isolate else run_in_process
    for combos, todo in plan.groups:
        todo = [i for i in todo if results[i] is None]
        if todo:
            run(notes, combos, todo, budget, progress, results)
    return results
