"""The numeric evidence of a model report, run in a forked process while the proof runs.

The proof (:func:`derive.calculus.prove.prove`) and the numeric evidence
(the checks of :func:`derive.verify.run.verify` and the figures' runs of the
generated code) do not depend on each other, and both are mostly Python
held by one interpreter lock, so on a machine of two cores or more they run
side by side (the proof's own worker processes, one a core, leave one free
on two cores while the third size is proved alone): :func:`start_evidence`
forks a child that computes the evidence and sends it back through a pipe,
and :meth:`Evidence.result` waits for it.  The evidence is what the same call gives in this process
(seeded; only the timings differ, which a report does not print).  When the
child fails for any reason (a size over the memory limit, say), the call
runs here instead, so its errors are raised as they would be.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any, Callable, Optional


def can_fork() -> bool:
    """Whether the evidence can run in a forked child: Linux, two cores or more that this process may use,
    not in a daemonic process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return (sys.platform.startswith("linux") and cores > 1
            and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def _child(run: Callable[[], Any], conn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it kills us
    try:
        conn.send(("done", run()))
    except BaseException:  # noqa: BLE001 - the parent runs it again in its own process and raises there
        conn.send(("failed", None))
    finally:
        conn.close()


class Evidence:
    """The numeric evidence under way: in a forked child, or to be computed on demand.

    Parameters
    ----------
    run : callable
        ``run()`` computes the evidence (anything that pickles).
    fork : bool
        Start it in a forked child now (else it runs when asked for).
    """

    def __init__(self, run: Callable[[], Any], fork: bool):
        self.run = run
        self.proc = None
        self.receive = None
        if fork:
            mp = multiprocessing.get_context("fork")
            self.receive, send = mp.Pipe(duplex=False)
            self.proc = mp.Process(target=_child, args=(run, send), daemon=True)
            self.proc.start()
            send.close()

    def result(self) -> Any:
        """The result: the child's when it gave one, else computed here."""
        if self.proc is None:
            return self.run()
        try:
            message = self.receive.recv()
        except (EOFError, OSError):
            message = ("failed", None)
        finally:
            self.close()
        return message[1] if message[0] == "done" else self.run()

    def close(self) -> None:
        """Stop the child (if it still runs) and let go of the pipe."""
        if self.proc is None:
            return
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.receive.close()
        self.proc = None
        self.receive = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_evidence(run: Callable[[], Any], fork: Optional[bool] = None) -> Evidence:
    """Start the numeric evidence ``run()``: in a forked child where one can be (see :func:`can_fork`).

    Parameters
    ----------
    run : callable
        Computes the evidence (anything that pickles).
    fork : bool, optional
        Force the forked child on or off (default: :func:`can_fork`).

    Returns
    -------
    Evidence
        Ask it for :meth:`Evidence.result`; use it as a context manager so the
        child is stopped when the report stops early (a time limit, Ctrl-C).
    """
    return Evidence(run, can_fork() if fork is None else fork)
