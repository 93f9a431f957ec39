"""A time limit on a whole command, for the commands that do not run in a worker of their own."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional

COMMAND_SECONDS = 600.0
"""Default time limit of one ``derive show``, ``code``, ``verify`` or ``report`` (``--seconds``)."""


class OutOfTime(BaseException):
    """The command passed its time limit.

    A BaseException, so that no ``except Exception`` on the way up takes it
    for a failure of the work it interrupted.
    """

    def __init__(self, seconds: float):
        super().__init__(f"past the time limit of {seconds:g} s")
        self.seconds = seconds


@contextlib.contextmanager
def time_limit(seconds: Optional[float]) -> Iterator[None]:
    """Raise :class:`OutOfTime` in the main thread once ``seconds`` have passed (None: no limit).

    Only the main thread can take the alarm; elsewhere the limit is not set.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise OutOfTime(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
