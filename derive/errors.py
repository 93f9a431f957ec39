"""The one error type for bad user input, printed with file, line, column and a caret."""

from __future__ import annotations

import re
from typing import List, Tuple


class InputError(Exception):
    """Bad user input at a known place.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    path : str
        The file (or ``<builtin:name>``) the text came from.
    line, column : int
        1-based position of the offending text (0 when unknown).
    line_text : str
        The source line, shown with a caret under ``column``.
    """

    def __init__(self, message: str, path: str = "<input>", line: int = 0,
                 column: int = 0, line_text: str = ""):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.line_text = line_text

    def format(self) -> str:
        """The message as a compiler would print it."""
        where = self.path
        if self.line:
            where += f":{self.line}:{self.column}"
        text = f"{where}: error: {self.message}"
        if self.line_text or self.line:
            shown, at = shown_line(self.line_text.rstrip("\r\n"), max(self.column, 1))
            text += f"\n    {shown}\n    {' ' * (at - 1)}^"
        return text

    def __str__(self) -> str:
        return self.format()


SHOWN_WIDTH = 160
"""Most characters of a source line shown under a message; a longer one is cut around the column."""


def shown_line(line: str, column: int) -> Tuple[str, int]:
    """The line as printed under a message, and the column of the caret in it.

    One character stays one character, so the caret stays under its column:
    a tab is a space and a character a terminal would not print as itself (a
    control character, NUL, an escape sequence, a lone surrogate) is ``?``.
    A line longer than :data:`SHOWN_WIDTH` is cut to a window around the
    column, marked ``…`` where cut.
    """
    shown = "".join(ch if ch.isprintable() else " " if ch == "\t" else "?" for ch in line)
    if len(shown) <= SHOWN_WIDTH:
        return shown, column
    start = max(0, min(column - 1 - SHOWN_WIDTH // 2, len(shown) - SHOWN_WIDTH))
    end = start + SHOWN_WIDTH
    window = ("…" if start else "") + shown[start:end] + ("…" if end < len(shown) else "")
    return window, column - start + (1 if start else 0)


def split_lines(text: str) -> List[str]:
    """The lines of ``text`` as an editor numbers them: ends are LF, CRLF or CR only.

    ``str.splitlines`` also ends a line at a form feed, U+0085, U+2028 and
    others, which would number lines differently from the editor the user
    reads the message in; inside a line those characters are white space.
    """
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


_LINE_END = re.compile(r"\r\n|\r|\n")


class SourceText:
    """A file's text, able to raise errors positioned in it."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.lines = split_lines(text)

    def error(self, message: str, pos) -> InputError:
        """An :class:`InputError` at ``pos`` = (line, column) or None."""
        if not pos:
            return InputError(message, self.path)
        line, column = pos
        line_text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return InputError(message, self.path, line, column, line_text)
