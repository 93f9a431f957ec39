"""Grading a class: every submission checked in a process of its own, several at a time.

Each file is read and checked by :func:`grade_one` in a forked process
(:func:`grade_submissions` keeps up to ``jobs`` of them running).  That
process is the leader of a process group of its own, so that the claim
workers it forks (:mod:`derive.claims.runners`) die with it.  It has the
time limit of one ``derive check`` (``--seconds``, per file): past it, the
claims left are undecided, and a process still running
:data:`KILL_GRACE` seconds later is killed with its workers.  Nothing a
file holds can stop or slow the other files beyond its own time limit.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InputError
from ..limits import COMMAND_SECONDS
from ..notation.printer import show
from .grading_files import Submission
from .limits import TIME_LIMIT
from .listing import exit_status, result_dict
from .notes_command import MAX_FINDINGS, notes_model, read_notes_source
from .notes_listing import notes_exit_status
from .notes_read import read_notes
from .read import MAX_CLAIMS, read_claims
from .verdicts import check_file

OK, INPUT_ERROR, TIMED_OUT, INTERNAL_ERROR = "ok", "input_error", "timed_out", "internal_error"
STATUSES = (OK, INPUT_ERROR, TIMED_OUT, INTERNAL_ERROR)
"""A file's status in the summary."""

STATUS_EXIT = {OK: None, INPUT_ERROR: 2, TIMED_OUT: 2, INTERNAL_ERROR: 3}
"""A file's exit status by its status (None: the one of ``derive check FILE``, 0 or 1)."""

TICK = 1.0
"""Seconds between calls of ``on_tick`` while files are being checked (a bar's clock)."""

KILL_GRACE = 5.0
"""Seconds a file's process has past its time limit to send what it has before it is killed."""

CLAIM_KEYS = ("line", "column", "text", "verdict", "explanation", "truth", "repair", "repair_edit",
              "repair_kinds", "limit", "internal_error")
"""What the summary keeps of a claim's :func:`derive.claims.listing.result_dict` (not its timing)."""


@dataclass
class GradeOptions:
    """The limits and rules every file of a class is checked under (those of ``derive check``)."""

    allow_model_path: bool = False
    claim_seconds: float | None = None
    seconds: float = COMMAND_SECONDS
    max_claims: int = MAX_CLAIMS
    notes: bool = False
    """Read each file as notes written freely (``--notes`` or ``--model``), not as a claims file."""
    model: str | None = None
    """The model the notes are about (``--model``); else each file's own ``model`` line."""

    def limits(self) -> dict:
        """The limits as shown in the JSON summary."""
        return {"claim_seconds": TIME_LIMIT if self.claim_seconds is None else self.claim_seconds,
                "seconds_per_file": self.seconds, "max_claims": self.max_claims}


@dataclass
class FileGrade:
    """One file's grade: its status and, when it was read, a verdict per claim.

    ``claims`` is None when the file was not read; each claim is a dict with
    the keys of :data:`CLAIM_KEYS` and ``derivative`` (the claimed
    derivative, None for a line that cannot be read).  ``trace`` holds the
    traceback of an internal error (shown with ``--debug``).
    """

    file: str
    status: str
    message: str | None = None
    model: str | None = None
    claims: list[dict] | None = None
    exit_status: int = 2
    trace: str | None = field(default=None, repr=False)

    @property
    def holds(self) -> int | None:
        """How many claims hold (None when the file was not read)."""
        return None if self.claims is None else sum(c["verdict"] == "holds" for c in self.claims)

    @property
    def total(self) -> int | None:
        """How many claims the file holds (None when it was not read)."""
        return None if self.claims is None else len(self.claims)

    @property
    def score(self) -> float | None:
        """The claims holding over the claims (None without claims)."""
        return self.holds / self.total if self.total else None


def claim_record(result) -> dict:
    """One claim of a summary: its place, text, claimed derivative, verdict and repair."""
    full = result_dict(result)
    record = {k: full[k] for k in CLAIM_KEYS}
    lhs = result.claim.lhs
    record["derivative"] = None if lhs is None else show(lhs)
    return record


def grade_one(path: str, options: GradeOptions, started: float | None = None,
              on_phase: Callable[[str], None] | None = None) -> FileGrade:
    """Read and check one file as ``derive check FILE`` does, and grade it.

    Parameters
    ----------
    path : str
        The claims file.
    options : GradeOptions
        The limits and rules.
    started : float, optional
        ``time.monotonic()`` when the file's time began (default now).
    on_phase : callable, optional
        Told what the work is doing (``reading the file``, ...).

    Returns
    -------
    FileGrade
        ``input_error`` when the file cannot be read (the message as
        ``derive check`` prints it), ``timed_out`` when its time ran out
        before every claim was checked, ``internal_error`` when a bug of
        derive's stopped a claim's check, else ``ok``.
    """
    started = time.monotonic() if started is None else started
    say = on_phase or (lambda what: None)
    say("reading the file")
    written = None
    try:
        if options.notes:
            written = read_written_notes(path, options)
            notes = written.claims_file
        else:
            notes = read_claims(path, allow_model_path=options.allow_model_path, max_claims=options.max_claims)
    except InputError as err:
        return FileGrade(path, INPUT_ERROR, err.format())
    except OSError as err:
        return FileGrade(path, INPUT_ERROR, f"{path}: error: {err.strerror or err}")
    say(f"checking its {len(notes.claims)} claims")
    results = check_file(notes, None, claim_seconds=options.claim_seconds, seconds=options.seconds,
                         started=started)
    records = [claim_record(r) for r in results]
    status = exit_status(results)
    if written is not None:  # an equation that could not be read counts as one that does not hold
        records += [unread_record(f) for f in written.findings if f.kind == "not_read"]
        records.sort(key=lambda r: (r["line"], r["column"]))
        status = notes_exit_status(written, results)
    grade = FileGrade(path, OK, None, notes.model.name, records, status)
    broken = [r for r in results if r.internal]
    stopped = [r for r in results if r.limit == "seconds"]
    if broken:
        grade.status = INTERNAL_ERROR
        grade.message = "; ".join(f"line {r.claim.line}: {r.explanation}" for r in broken)
        grade.trace = "\n".join(r.internal for r in broken)
    elif stopped:
        grade.status, grade.exit_status = TIMED_OUT, 2
        grade.message = (f"the time limit of {options.seconds:g} s per file was reached; {len(stopped)} of "
                         f"{len(results)} claims got no verdict")
    return grade


def read_written_notes(path: str, options: GradeOptions):
    """A notes file read as ``derive check NOTES --model M`` reads it.

    Raises
    ------
    InputError
        When the file or the model cannot be read, or no equation of the notes can be checked.
    """
    src = read_notes_source(path)
    model, _ = notes_model(src, options.model, options.allow_model_path)
    written = read_notes(src, model, max_claims=options.max_claims, max_findings=MAX_FINDINGS)
    if not written.claims_file.claims:
        raise InputError(f"no derivative equation of the loss could be checked ({written.found} found, none "
                         "of them a gradient of the loss that could be read)", path)
    return written


def unread_record(finding) -> dict:
    """A summary's record of an equation of the notes that could not be read: an ``error``, as in a claims file."""
    record = dict.fromkeys(CLAIM_KEYS)
    record.update(line=finding.line, column=finding.col, text=finding.text, verdict="error",
                  explanation=finding.reason, repair_kinds=[], internal_error=False, derivative=None)
    return record


def refused_grade(sub: Submission) -> FileGrade:
    """The grade of a submission that is not read."""
    return FileGrade(sub.path, INPUT_ERROR, f"{sub.path}: error: {sub.refusal}")


def _child(path: str, options: GradeOptions, started: float, conn):
    """A file's process: grade it and send the grade (or the crash) to the supervisor."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's: it kills the group
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # nothing of a file's may reach the terminal or the summary
    os.dup2(null, 2)
    try:
        grade = grade_one(path, options, started, on_phase=lambda what: conn.send(("phase", what)))
        conn.send(("done", grade))
    except Exception as err:  # noqa: BLE001 - a bug of derive's, reported as this file's grade
        conn.send(("crash", f"{type(err).__name__}: {err}", traceback.format_exc()))
    finally:
        conn.close()


@dataclass
class _Running:
    index: int
    proc: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    deadline: float
    phase: str = "starting"
    grade: FileGrade | None = None
    died: bool = False
    expired: bool = False


def _kill_group(proc) -> None:
    """Kill a file's process and the claim workers it started (its process group).

    Called only before the process is reaped (``exitcode`` and ``join``
    reap it), so that its id cannot be another process's yet.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()


def _stop(run: _Running, path: str) -> None:
    """Wait for a file's process to end (killing it and its group when it does not), and clean up."""
    if run.died:
        _kill_group(run.proc)  # it is gone or going, but a claim worker of its may live on
    else:
        if not run.expired:
            run.proc.join(KILL_GRACE)  # it is closing down by itself, its claim workers with it
        if run.proc.exitcode is None:  # still running: not reaped, so its group can be killed
            _kill_group(run.proc)
    run.proc.join()
    run.conn.close()
    if run.died:
        run.grade = FileGrade(path, INTERNAL_ERROR, f"the process grading this file stopped "
                              f"({_exit_text(run.proc.exitcode)}) while {run.phase}; no verdicts",
                              exit_status=3)


def _exit_text(code) -> str:
    return "still running" if code is None else f"signal {-code}" if code < 0 else f"exit status {code}"


def _receive(run: _Running, path: str) -> bool:
    """Read what a file's process sent; True once its grade is known or it is known to have died."""
    while True:
        try:
            if not run.conn.poll():
                return False
            message = run.conn.recv()
        except (EOFError, OSError):
            run.died = True
            return True
        if message[0] == "phase":
            run.phase = message[1]
        elif message[0] == "done":
            run.grade = message[1]
            return True
        else:
            run.grade = FileGrade(path, INTERNAL_ERROR, f"derive failed while grading this file "
                                  f"({message[1]}); this is an internal error of derive, please report it",
                                  exit_status=3, trace=message[2])
            return True


def grade_submissions(subs: list[Submission], options: GradeOptions, jobs: int | None = None,
                      on_done: Callable[[FileGrade], None] | None = None,
                      on_tick: Callable[[], None] | None = None) -> list[FileGrade]:
    """Grade every submission, up to ``jobs`` files at a time, each in a process of its own.

    Parameters
    ----------
    subs : list of Submission
        The files (see :func:`derive.claims.grading_files.collect_submissions`).
    options : GradeOptions
        The limits and rules of every file.
    jobs : int, optional
        Files checked at once (default ``os.cpu_count()``).
    on_done : callable, optional
        Called with each grade as it is known (in the order they finish).
    on_tick : callable, optional
        Called about every :data:`TICK` seconds while files are checked.

    Returns
    -------
    list of FileGrade
        One per submission, in the order of ``subs``.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    told = on_done or (lambda grade: None)
    mp = multiprocessing.get_context("fork")
    grades: list[FileGrade | None] = [None] * len(subs)
    waiting: deque[int] = deque()
    for i, sub in enumerate(subs):
        if sub.refusal is None:
            waiting.append(i)
        else:
            grades[i] = refused_grade(sub)
            told(grades[i])
    running: list[_Running] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                i = waiting.popleft()
                receive, send = mp.Pipe(duplex=False)
                started = time.monotonic()
                proc = mp.Process(target=_child, args=(subs[i].path, options, started, send), daemon=False)
                proc.start()
                send.close()
                try:
                    os.setpgid(proc.pid, proc.pid)  # as the child does: whichever runs first
                except OSError:
                    pass
                running.append(_Running(i, proc, receive, started + options.seconds + KILL_GRACE))
            now = time.monotonic()
            soonest = min(r.deadline for r in running)
            handles = [r.conn for r in running] + [r.proc.sentinel for r in running]
            ready = set(multiprocessing.connection.wait(handles, min(TICK, max(0.0, soonest - now))))
            if on_tick is not None:
                on_tick()
            for run in list(running):
                path = subs[run.index].path
                answered = (run.conn in ready or run.proc.sentinel in ready) and _receive(run, path)
                if not answered and run.proc.sentinel in ready:
                    run.died = True  # gone without a word, its pipe held open by a claim worker
                if run.grade is None and not run.died and time.monotonic() >= run.deadline:
                    run.expired = True
                    run.grade = FileGrade(path, TIMED_OUT, f"the time limit of {options.seconds:g} s per file "
                                          f"was reached while {run.phase} (the work was stopped); no verdicts")
                if run.grade is not None or run.died:
                    _stop(run, path)
                    running.remove(run)
                    grades[run.index] = run.grade
                    told(run.grade)
    finally:
        for run in running:
            _kill_group(run.proc)
            run.proc.join()
            run.conn.close()
    return grades


def batch_exit_status(grades: list[FileGrade]) -> int:
    """The exit status of a class's grading: the worst of its files'.

    Each file counts as ``derive check FILE`` would (0 every claim holds, 1
    a claim does not, 2 bad input, 3 a bug of derive's), and a file stopped
    at its time limit counts 2.  So 0 or 1: every file was graded; 2: some
    file could not be (bad input, or its time ran out); 3: an internal
    error (before 2).
    """
    return max((g.exit_status for g in grades), default=0)
