"""Running the claims of a check: in this process, or in a forked worker killed at the limits.

In this process (:func:`run_in_process`) the limits are checked between the
steps of the work only.  A worker (:func:`run_isolated`) is killed when a
limit is reached wherever its work stands, and the next claims go on in a new
one; it is also held to :data:`derive.claims.limits.WORKER_MEMORY`.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
import time
import traceback
from typing import TextIO

from .checker import ClaimChecker
from .limits import Budget, cap_worker_memory, claim_limit_text, command_limit_text, setup_text
from .read import Claim, ClaimsFile
from .result import Result, internal_error_result

PHASE_BYTES = 512
"""Room for the worker's note of what it is doing (shared with the supervisor)."""


def can_isolate() -> bool:
    """Whether claims can run in a forked worker process (Linux; not inside a daemonic process)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def _say_checking(progress: TextIO | None, claim: Claim):
    """Say on ``progress`` (if any) which claim is being checked."""
    if progress is not None:
        print(f"checking line {claim.line}: {claim.text}", file=progress, flush=True)


def _out_of_command_time(notes: ClaimsFile, todo: list[int], budget: Budget, results: list):
    """The claims ``todo`` get no verdict: the command's time ran out before them."""
    for i in todo:
        results[i] = Result(notes.claims[i], "undecided",
                            command_limit_text(budget, "was reached before this claim was checked"),
                            limit="seconds")


def run_in_process(notes: ClaimsFile, combos: list[dict[str, int]], todo: list[int], budget: Budget,
                   progress: TextIO | None, results: list):
    """Check claims one after another in this process (limits checked between steps).

    Parameters
    ----------
    notes : ClaimsFile
        The model and its claims.
    combos : list of dict
        The check sizes.
    todo : list of int
        Indices of the claims to check, in order.
    budget : Budget
        The time limits.
    progress : text stream or None
        Where to say what is being checked.
    results : list
        Filled in place: ``results[i]`` for every ``i`` of ``todo``.
    """
    checker = ClaimChecker(notes, combos)
    for n, i in enumerate(todo):
        if budget.command_deadline is not None and time.monotonic() >= budget.command_deadline:
            _out_of_command_time(notes, todo[n:], budget, results)
            return
        _say_checking(progress, notes.claims[i])
        results[i] = checker.check(notes.claims[i], budget)


def _worker(notes, combos, todo, budget, begun, conn, phase_buffer, setup_flag):
    """The worker process: check ``todo`` in order, sending each result.

    What it is doing is written to ``phase_buffer`` (shared memory) at every
    step, so the supervisor can say where the work stood when it stopped it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle: it kills us
    cap_worker_memory()

    def on_phase(what: str, setup: bool):
        phase_buffer.value = what.encode("utf-8", "replace")[:PHASE_BYTES - 1]
        setup_flag.value = setup

    try:
        checker = ClaimChecker(notes, combos, on_phase=on_phase)
        for n, i in enumerate(todo):
            claim = notes.claims[i]
            conn.send(("start", i))
            on_phase("starting the check", False)
            if budget.command_deadline is not None and \
                    time.monotonic() >= budget.command_deadline - budget.margin():
                result = Result(claim, "undecided", command_limit_text(
                    budget, "was reached before this claim was checked"), limit="seconds")
            else:
                result = checker.check(claim, budget, begun=begun if n == 0 else None, margin=budget.margin())
            result.claim = None  # the supervisor has its own
            conn.send(("done", i, result))
    except Exception as err:  # noqa: BLE001 - nothing to do but to say so and stop
        conn.send(("crash", f"{type(err).__name__}: {err}", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(notes: ClaimsFile, combos: list[dict[str, int]], todo: list[int], budget: Budget,
                 progress: TextIO | None, results: list):
    """Check claims in a forked worker; kill it at a limit and go on in a new one.

    Takes the parameters of :func:`run_in_process`.
    """
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
                        _say_checking(progress, claim)
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
