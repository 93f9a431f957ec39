"""The progress of a class's grading, on standard error: a bar on a terminal, plain lines elsewhere.

On a terminal one line is redrawn as each file is graded.  Anywhere else (a
CI log, a file, a pipe) each graded file gets one plain line, with no
carriage return and no terminal escape, so that a log stays readable.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

from .grading import FileGrade
from .grading_summary import printable

BAR_WIDTH = 30
"""Characters of the bar itself, at most (fewer on a narrow terminal)."""


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Tells ``stream`` how the grading goes.

    Parameters
    ----------
    stream : text stream
        Standard error, usually.
    total : int
        The files to grade.
    jobs : int
        Files graded at once.
    terminal : bool, optional
        Draw a bar (default: when ``stream`` is a terminal).
    """

    def __init__(self, stream: TextIO, total: int, jobs: int, terminal: bool | None = None):
        self.stream = stream
        self.total = total
        self.jobs = jobs
        self.terminal = _is_terminal(stream) if terminal is None else terminal
        self.done = 0
        self.troubled = 0
        self.started = time.monotonic()

    def start(self) -> None:
        """Say what is about to be graded."""
        print(f"derive check: grading {self.total} file{'s' if self.total != 1 else ''}, "
              f"{self.jobs} at a time", file=self.stream, flush=True)
        if self.terminal:
            self._draw()

    def graded(self, grade: FileGrade) -> None:
        """One more file is graded."""
        self.done += 1
        self.troubled += grade.status != "ok"
        if self.terminal:
            self._draw()
            return
        if grade.total is not None:
            what = f"{grade.status.replace('_', ' ')}, {grade.holds} of {grade.total} claims hold"
        else:
            what = grade.status.replace("_", " ")
        print(f"derive check: [{self.done}/{self.total}] {printable(grade.file)}: {what}", file=self.stream, flush=True)

    def tick(self) -> None:
        """Redraw the bar, so that its clock runs while a long file is checked (no line elsewhere)."""
        if self.terminal:
            self._draw()

    def _draw(self) -> None:
        elapsed = _clock_text(time.monotonic() - self.started)
        tail = f" {self.done}/{self.total} files {elapsed}"
        if self.troubled:
            tail += f", {self.troubled} not graded in full"
        room = shutil.get_terminal_size((80, 24)).columns - len(tail) - 3
        width = max(0, min(BAR_WIDTH, room))
        filled = width * self.done // self.total if self.total else width
        bar = f"[{'#' * filled}{'.' * (width - filled)}]" if width else ""
        self.stream.write(f"\r{bar}{tail}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line and say how long it took."""
        if self.terminal:
            self.stream.write("\n")
        print(f"derive check: graded {self.done} file{'s' if self.done != 1 else ''} in "
              f"{time.monotonic() - self.started:.1f} s", file=self.stream, flush=True)
