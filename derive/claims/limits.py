"""The time, size and memory limits of ``derive check``, and how a reached limit is said."""

from __future__ import annotations

from dataclasses import dataclass

TIME_LIMIT = 20.0
"""Default time limit per claim in seconds (``derive check --claim-seconds``)."""

MAX_PINNED_T = 10
"""Largest T a claim naming a fixed step is checked at (the file's T; above it: undecided)."""

MAX_CHECK_ENTRIES = 20_000
"""Most scalar values the unrolled model may hold at one check size (else: undecided)."""

WORKER_MEMORY = 2 << 30
"""Bytes of address space a claim's worker process may take beyond the checker's own."""


class OutOfTime(Exception):
    """The per-claim (or per-command) time limit was reached."""


@dataclass
class Budget:
    """The time limits of one check.

    Parameters
    ----------
    claim_seconds : float
        Limit per claim, all of its work included (unrolling the model for
        the first claim, sweeps, screening, proofs, repairs).
    command_seconds : float or None
        Limit of the whole command (None: none).
    command_deadline : float or None
        ``time.monotonic()`` at which the command's limit is reached.
    """

    claim_seconds: float
    command_seconds: float | None = None
    command_deadline: float | None = None

    def margin(self) -> float:
        """How much earlier than the hard limit a worker stops by itself."""
        return min(1.0, 0.1 * self.claim_seconds)


def _seconds_text(x: float) -> str:
    return f"{x:g} s"


def _bytes_text(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def claim_limit_text(budget: Budget, what: str) -> str:
    """``the time limit of 20 s per claim was reached while ...; no verdict``."""
    return f"the time limit of {_seconds_text(budget.claim_seconds)} per claim {what}; no verdict"


def command_limit_text(budget: Budget, what: str) -> str:
    """``the time limit of 600 s for the whole command was reached ...; no verdict``."""
    return (f"the time limit of {_seconds_text(budget.command_seconds or 0)} for the whole command "
            f"{what}; no verdict")


def setup_text(budget: Budget, stop: str, line: int) -> str:
    """Why claims after a failed unrolling get no verdict."""
    what = stop.removeprefix("while ")
    return (f"no verdict: {what} did not finish within the time limit of "
            f"{_seconds_text(budget.claim_seconds)} per claim (reached on line {line}); every claim "
            "needs it")


def memory_text() -> str:
    """Why a claim whose check ran out of memory gets no verdict."""
    return ("the check of this claim ran out of memory (a claim's "
            f"worker may use {_bytes_text(WORKER_MEMORY)} beyond the checker's own); no verdict")


def cap_worker_memory():
    """Cap this process's address space at its present size plus :data:`WORKER_MEMORY` (Linux).

    Where the cap cannot be read or set, the process goes on without one.
    """
    try:
        import resource  # not on Windows
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + WORKER_MEMORY
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or limit < soft:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        pass
