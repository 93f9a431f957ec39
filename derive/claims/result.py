"""The verdict on one claim (:class:`Result`), shared by the stages of a check."""

from __future__ import annotations

from dataclasses import dataclass, field

from .read import Claim

RANK = {"holds": 0, "layout": 1, "factor": 2, "partial": 3, "wrong": 4}
"""The verdicts a reading can screen as, best first: the best reading of a claim is the one proved."""


@dataclass
class Result:
    """The verdict on one claim, with everything the report shows.

    ``verdict`` is one of holds, layout, factor, partial, shape, wrong,
    undecided, or error (the claim line does not parse or resolve; ``error``
    then holds file, line, column and message).  ``limit`` names the limit
    that left a claim undecided: ``claim_seconds``, ``seconds``, ``sizes`` or
    ``memory``.  ``internal`` holds the traceback when a bug of derive's
    stopped the check of this claim (it is then undecided, and the command
    exits with status 3).
    """

    claim: Claim
    verdict: str
    explanation: str
    reading: str | None = None
    dot_choices: str | None = None
    truth: str | None = None
    truth_terms: str | None = None
    """The truth as derived terms, when it cannot be written (and proved) as a claim; ``truth`` is then None."""
    repair: str | None = None
    repair_edit: str | None = None
    repair_edits: list[str] = field(default_factory=list)
    """The edits of the repair, in order (a repair search's; ``repair_edit`` joins them)."""
    repair_kinds: list[str] = field(default_factory=list)
    """The slips those edits undo, in words that are the same for every claim (``a missing transpose``)."""
    numerator: bool = False
    """The verdict is ``layout`` because the claim holds in numerator layout (every gradient transposed)."""
    repair_search: str | None = None
    """What the repair search tried when it found no repair (the number of edited readings)."""
    repair_timed_out: bool = False
    """The repair search was stopped by time (a later check, with more time, may find a repair)."""
    repair_proved: bool = False
    """The repair was proved as a claim of its own (every printed repair is)."""
    withheld: list[str] = field(default_factory=list)
    """Truths (written as claims) and repairs not printed because they were not proved as claims."""
    counterexample: dict | None = None
    sizes_proved: list[dict[str, int]] = field(default_factory=list)
    factor: str | None = None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    shape: dict | None = None
    witness_gap: float | None = None
    entries_proved: int = 0
    seconds: float = 0.0
    error: dict | None = None
    limit: str | None = None
    internal: str | None = None


def internal_error_result(claim: Claim, what: str, trace: str) -> Result:
    """A bug of derive's stopped the check of one claim: it is undecided, the others go on."""
    return Result(claim, "undecided", f"derive failed while checking this claim ({what}); this is an "
                  "internal error of derive, please report it; no verdict", internal=trace or what)


def error_result(claim: Claim) -> Result:
    """The result of a claim line that does not parse or resolve."""
    err = claim.error
    return Result(claim, "error", err.message,
                  error={"file": err.path, "line": err.line, "column": err.column, "message": err.message})
