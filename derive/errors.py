"""The one error type for bad user input, printed with file, line, column and a caret."""

from __future__ import annotations


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
        if self.line_text:
            shown = self.line_text.rstrip("\n").expandtabs(1)
            caret = " " * (max(self.column, 1) - 1) + "^"
            text += f"\n    {shown}\n    {caret}"
        return text

    def __str__(self) -> str:
        return self.format()


class SourceText:
    """A file's text, able to raise errors positioned in it."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.lines = text.splitlines()

    def error(self, message: str, pos) -> InputError:
        """An :class:`InputError` at ``pos`` = (line, column) or None."""
        if not pos:
            return InputError(message, self.path)
        line, column = pos
        line_text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return InputError(message, self.path, line, column, line_text)
