"""Claims given as text, or with a model from the caller: read through a temporary folder.

A claims file names its model on a ``model`` line; the API also takes the
claims as text and the model as an argument. Both become a claims file in a
temporary folder, read by :func:`derive.claims.read.read_claims` with its
rules intact, and every message names the caller's text or file, not the copy.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..errors import InputError, split_lines
from .results import Model

TEXT_NAME = "<text>"
"""How messages and results name claims given as text rather than as a file."""


STATEMENT_WORDS = ("claim", "model", "size", "param", "input", "target", "state")
"""The first words of a claims file's lines: a one-line ``str`` that starts with one is text."""


def is_text(source) -> bool:
    """Whether ``source`` is claims text rather than a path.

    A ``str`` with a line break is text, and so is a one-line ``str`` that
    starts with a statement's word (``claim dL/dW = ...``) and names no
    existing file; any other ``str`` or path-like is a path.
    """
    if not isinstance(source, str):
        return False
    if "\n" in source or "\r" in source:
        return True
    words = source.split(None, 1)
    return bool(words) and words[0] in STATEMENT_WORDS and not os.path.exists(source)


def read_notes(source, model: Model | None, allow_model_path: bool, max_claims: int):
    """The :class:`~derive.claims.read.ClaimsFile` of a claims file or text, with ``model`` when given.

    Raises
    ------
    InputError
        As :func:`~derive.claims.read.read_claims`, and when the claims name
        their own model and ``model`` is given too.
    """
    from ..claims.read import read_claims
    if model is None and not is_text(source):
        return read_claims(os.fspath(source), allow_model_path=allow_model_path, max_claims=max_claims)
    if is_text(source):
        text, shown = source, TEXT_NAME
    else:
        shown = os.fspath(source)
        try:
            text = Path(shown).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"no such file '{shown}'", shown) from None
        except UnicodeDecodeError as err:
            raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", shown) from None
    with tempfile.TemporaryDirectory(prefix="derive-claims-") as folder:
        notes_path = str(Path(folder) / "text.claims")
        names, added_line = {notes_path: shown}, None
        if model is not None:
            text = text if text.endswith(("\n", "\r")) or not text else text + "\n"
            added_line = len(split_lines(text)) + 1
            target = model.name
            if not model.path.startswith("<builtin:"):
                safe = model.name if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", model.name) else "model"
                target = f"{safe}.rnn"
                Path(folder, target).write_text(model.source, encoding="utf-8")
                names[str(Path(folder) / target)] = model.path
            text += f"model {target}\n"
        Path(notes_path).write_text(text, encoding="utf-8")
        try:
            notes = read_claims(notes_path, allow_model_path=allow_model_path, max_claims=max_claims)
        except InputError as err:
            if added_line is not None and (err.line == added_line or err.message.startswith("this file names a model")):
                raise InputError("these claims name their own model (a 'model' line or an inline model): "
                                 "give model=None", shown) from None
            _rename(err, names)
            raise
    for claim in notes.claims:
        if claim.error is not None:
            _rename(claim.error, names)
    notes.path = shown
    notes.model.path = names.get(notes.model.path, notes.model.path)
    return notes


def _rename(err: InputError, names: dict[str, str]) -> None:
    """Name the caller's text or file in an error, not the temporary copy."""
    for e in [err] + list(getattr(err, "errors", [])):
        e.path = names.get(e.path, e.path)

