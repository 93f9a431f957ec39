"""Decide the verdict of each claim against the exact derivation.

For each size combination (:func:`claim_sizes`) the model is unrolled and
swept (:mod:`derive.claim_context`).  Each reading of the claim (every
resolution of ``⋅``) is screened in floating point against the exact
adjoint at every step; the best verdict found (holds, layout, factor,
partial, wrong) is then proved symbolically entry by entry with
:class:`derive.prove.EntryProver` and checked at a 50-digit point.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .context import SizeContext
from .numeric import Undefined
from .read import Claim, ClaimsFile, uses_fixed_step
from ..notation.expr import Adj, Call, Node, Ref
from ..calculus.matrix import derive_matrix
from ..model.model import ShapeError
from .repairs import readings

TIME_LIMIT = 20.0
"""Default time limit per claim in seconds (``derive check --claim-seconds``)."""

MAX_PINNED_T = 10
"""Largest T a claim naming a fixed step is checked at (the file's T; above it: undecided)."""

MAX_CHECK_ENTRIES = 20_000
"""Most scalar values the unrolled model may hold at one check size (else: undecided)."""

WORKER_MEMORY = 2 << 30
"""Bytes of address space a claim's worker process may take beyond the checker's own."""

PHASE_BYTES = 512
"""Room for the worker's note of what it is doing (shared with the supervisor)."""

RANK = {"holds": 0, "layout": 1, "factor": 2, "partial": 3, "wrong": 4}


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
    error: dict | None = None
    limit: str | None = None
    internal: str | None = None


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
    """Checks the claims of one file against shared size contexts.

    The contexts (the model unrolled at each size combination) are built on
    first use, inside the time of the claim that needs them first.

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.
    combos : list of dict
        The size combinations (:func:`claim_sizes`).
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
            result = Result(claim, "undecided", "the check of this claim ran out of memory (a claim's "
                            f"worker may use {_bytes_text(WORKER_MEMORY)} beyond the checker's own); "
                            "no verdict", limit="memory")
        except Exception as err:  # noqa: BLE001 - a bug of derive's: this claim only, said plainly
            result = internal_error_result(claim, f"{type(err).__name__}: {err}", traceback.format_exc())
        finally:
            self.deadline = float("inf")
        result.seconds = time.monotonic() - start
        return result

    def _check(self, claim: Claim) -> Result:
        from .decide import Decider
        return Decider(self, claim, self.deadline).decide()


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


def internal_error_result(claim: Claim, what: str, trace: str) -> Result:
    """A bug of derive's stopped the check of one claim: it is undecided, the others go on."""
    return Result(claim, "undecided", f"derive failed while checking this claim ({what}); this is an "
                  "internal error of derive, please report it; no verdict", internal=trace or what)


def error_result(claim: Claim) -> Result:
    """The result of a claim line that does not parse or resolve."""
    err = claim.error
    return Result(claim, "error", err.message,
                  error={"file": err.path, "line": err.line, "column": err.column, "message": err.message})


def unrolled_entries(model, sizes: dict[str, int]) -> int:
    """How many scalar values the model unrolled at ``sizes`` holds (before the sweeps)."""
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
    """The size combinations of a file and the claims decided before any work (too large)."""

    combos: list[dict[str, int]]
    skipped: dict[int, Result]


def plan_check(notes: ClaimsFile) -> Plan:
    """Choose the check sizes; claims that cannot be checked at small sizes are undecided.

    Declared sizes never reach the symbolic work: every size is a small
    number (:func:`claim_sizes`).  The exceptions are T when a claim names a
    fixed step (kept as declared up to :data:`MAX_PINNED_T`; above it those
    claims are undecided and the others are checked at small T) and
    dimensions written as numbers in a shape (a model that then holds more
    than :data:`MAX_CHECK_ENTRIES` values is not unrolled).
    """
    pinned = dict(notes.pinned)
    long_T = None
    if pinned.get("T") is not None and pinned["T"] > MAX_PINNED_T:
        long_T = pinned.pop("T")
    combos = claim_sizes(notes.model, pinned)
    biggest = max(combos, key=lambda c: unrolled_entries(notes.model, c))
    entries = unrolled_entries(notes.model, biggest)
    skipped = {}
    for i, claim in enumerate(notes.claims):
        if claim.error is not None:
            continue
        if entries > MAX_CHECK_ENTRIES:
            skipped[i] = Result(claim, "undecided", (
                f"no verdict: at the check sizes {sizes_text(biggest)} the unrolled model holds "
                f"{entries:,} scalar values, more than the {MAX_CHECK_ENTRIES:,} a symbolic check "
                "unrolls (a dimension written as a number in a shape is not made small: declare it "
                "with a 'size' line)"), limit="sizes")
        elif long_T is not None and uses_fixed_step(claim):
            skipped[i] = Result(claim, "undecided", (
                f"no verdict: the claim names a fixed step, so it must be checked at the file's "
                f"T = {long_T:,}, but claims are checked symbolically only at small sizes "
                f"(T at most {MAX_PINNED_T}); name the step from the end (h_T, h_{{T-1}}) or "
                "declare a smaller T with 'size T = ...'"), limit="sizes")
    return Plan(combos, skipped)


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
    todo = [i for i, r in enumerate(results) if r is None]
    if isolate is None:
        isolate = can_isolate()
    if todo:
        run = _run_isolated if isolate else _run_in_process
        run(notes, plan.combos, todo, budget, progress, results)
    return results


def can_isolate() -> bool:
    """Whether claims can run in a forked worker process (Linux; not inside a daemonic process)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def _say(progress, claim: Claim):
    if progress is not None:
        print(f"checking line {claim.line}: {claim.text}", file=progress, flush=True)


def _out_of_command_time(notes, todo, budget, results):
    for i in todo:
        results[i] = Result(notes.claims[i], "undecided",
                            command_limit_text(budget, "was reached before this claim was checked"),
                            limit="seconds")


def _run_in_process(notes, combos, todo, budget, progress, results):
    """Check claims one after another in this process (limits checked between steps)."""
    checker = ClaimChecker(notes, combos)
    for n, i in enumerate(todo):
        if budget.command_deadline is not None and time.monotonic() >= budget.command_deadline:
            _out_of_command_time(notes, todo[n:], budget, results)
            return
        _say(progress, notes.claims[i])
        results[i] = checker.check(notes.claims[i], budget)


def _limit_memory(extra: int):
    """Cap this process's address space at its present size plus ``extra`` bytes (Linux)."""
    try:
        import resource
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + extra
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or limit < soft:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        pass


def _worker(notes, combos, todo, budget, begun, conn, phase_buffer, setup_flag):
    """The worker process: check ``todo`` in order, sending each result.

    What it is doing is written to ``phase_buffer`` (shared memory) at every
    step, so the supervisor can say where the work stood when it stopped it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle: it kills us
    _limit_memory(WORKER_MEMORY)

    def on_phase(what: str, setup: bool):
        phase_buffer.value = what.encode("utf-8", "replace")[:PHASE_BYTES - 1]
        setup_flag.value = setup

    try:
        checker = ClaimChecker(notes, combos, on_phase=on_phase)
        for n, i in enumerate(todo):
            claim = notes.claims[i]
            conn.send(("start", i))
            on_phase("starting the check", False)
            result = checker.check(claim, budget, begun=begun if n == 0 else None, margin=budget.margin())
            result.claim = None  # the supervisor has its own
            conn.send(("done", i, result))
    except Exception as err:  # noqa: BLE001 - nothing to do but to say so and stop
        conn.send(("crash", f"{type(err).__name__}: {err}", traceback.format_exc()))
    finally:
        conn.close()


def _run_isolated(notes, combos, todo, budget, progress, results):
    """Check claims in a forked worker; kill it at a limit and go on in a new one."""
    mp = multiprocessing.get_context("fork")
    todo = list(todo)
    while todo:
        if budget.command_deadline is not None and time.monotonic() >= budget.command_deadline:
            _out_of_command_time(notes, todo, budget, results)
            return
        receive, send = mp.Pipe(duplex=False)
        phase_buffer = mp.RawArray(ctypes.c_char, PHASE_BYTES)
        setup_flag = mp.RawValue(ctypes.c_bool, False)
        begun = time.monotonic()
        proc = mp.Process(target=_worker, daemon=True,
                          args=(notes, combos, todo, budget, begun, send, phase_buffer, setup_flag))
        proc.start()
        send.close()

        def phase(buffer=phase_buffer) -> str:
            return buffer.value.decode("utf-8", "ignore") or "starting the check"

        finished = False
        try:
            while todo:
                i = todo[0]
                claim = notes.claims[i]
                end, which = begun + budget.claim_seconds, "claim"
                if budget.command_deadline is not None and budget.command_deadline < end:
                    end, which = budget.command_deadline, "command"
                if receive.poll(max(0.0, end - time.monotonic())):
                    try:
                        message = receive.recv()
                    except (EOFError, OSError):
                        proc.join()
                        results[i] = Result(claim, "undecided", (
                            f"the worker process checking this claim stopped ({_exit_text(proc.exitcode)}) "
                            f"while {phase()}; no verdict"))
                        todo.pop(0)
                        break
                    if message[0] == "start":
                        _say(progress, claim)
                    elif message[0] == "done":
                        result = message[2]
                        result.claim = claim
                        results[i] = result
                        todo.pop(0)
                        finished = not todo
                        begun = time.monotonic()
                    elif message[0] == "crash":
                        results[i] = internal_error_result(claim, message[1], message[2])
                        todo.pop(0)
                        break
                    continue
                # out of time: stop the work wherever it is
                proc.kill()
                proc.join()
                todo.pop(0)
                where = phase()
                if which == "command":
                    results[i] = Result(claim, "undecided", command_limit_text(
                        budget, f"was reached while {where} (the work was stopped)"), limit="seconds")
                    results[i].seconds = time.monotonic() - begun
                    _out_of_command_time(notes, todo, budget, results)
                    todo.clear()
                    break
                results[i] = Result(claim, "undecided", claim_limit_text(
                    budget, f"was reached while {where} (the work was stopped)"), limit="claim_seconds")
                results[i].seconds = time.monotonic() - begun
                if setup_flag.value:  # the next worker would unroll the model all over again
                    reason = setup_text(budget, where, claim.line)
                    for j in todo:
                        results[j] = Result(notes.claims[j], "undecided", reason, limit="claim_seconds")
                    todo.clear()
                break
        finally:
            if finished:
                proc.join(timeout=2.0)  # it is closing down by itself
            if proc.is_alive():
                proc.kill()
            proc.join()
            receive.close()


def _exit_text(code) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"signal {-code}"
    return f"exit status {code}"
