"""``derive check NOTES --model MODEL``: check the derivative equations of notes as they are written.

A file is read as notes (:func:`is_notes`) when ``--notes`` or ``--model`` is
given, or when its name does not end in ``.claims`` and no line of it starts
with the word ``claim``.  The model is ``--model`` (a built-in name, or a path
that must lie in the notes file's folder unless ``--allow-model-path``) or a
line ``model NAME`` of the notes (read as a claims file's ``model`` line); lines
``size NAME = N`` set the model's sizes, as in a claims file.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TextIO

from ..errors import InputError, SourceText
from ..limits import COMMAND_SECONDS
from ..model.build import builtin_names
from ..model.model import Model
from ..model.sizes import check_sizes
from ..notation import parse as _parse
from ..notation.lexer import strip_comment, tokenize
from ..notation.parse import LineParser, Statement
from .command import check_and_report
from .notes_listing import notes_exit_status, notes_json, notes_listing
from .notes_read import NotesRead, read_notes
from .read import MAX_CLAIMS, _model_of

MAX_NOTES_BYTES = 4 * _parse.MAX_TEXT
"""A notes file larger than this many bytes is not read (its characters are then counted: at most
:data:`derive.notation.parse.MAX_TEXT`)."""

MAX_FINDINGS = _parse.MAX_STATEMENTS
"""Most derivative equations and mentions one notes file may hold (as a model or claims file's statements)."""

MODEL_LINE = re.compile(r"^(\s*)model\s+(\S+)\s*$")
SIZE_LINE = re.compile(r"^\s*size\s+[A-Za-z]")


def _with_sizes(model: Model, src: SourceText) -> Model:
    """``model`` with the sizes of the notes' ``size NAME = N`` lines (read as in a claims file)."""
    for lineno, line in enumerate(src.lines, start=1):
        if not SIZE_LINE.match(line):
            continue
        text = strip_comment(line)
        tokens = tokenize(text, lineno, src)
        for name, value, pos in LineParser(tokens, lineno, src).statement(tokens[0], line).sizes:
            if name not in model.sizes:
                raise src.error(f"unknown size '{name}' (the model's sizes: {', '.join(model.sizes)})", pos)
            model.sizes[name] = value
    check_sizes(model, {k: v for k, v in model.sizes.items() if v is not None})
    return model


def is_notes(path: str, model: str | None = None, notes: bool = False) -> bool:
    """Whether ``derive check PATH`` reads ``path`` as notes rather than as a claims file.

    Parameters
    ----------
    path : str
        The file given.
    model : str, optional
        ``--model``: notes mode.
    notes : bool
        ``--notes``: notes mode.

    Returns
    -------
    bool
        True with ``--notes`` or ``--model``; else False for a ``*.claims``
        file or one with a line starting ``claim``, True for any other file
        (one that cannot be read is left to the claims reader's message).
    """
    if notes or model:
        return True
    if path.endswith(".claims"):
        return False
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > MAX_NOTES_BYTES:
            return False
        text = p.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    return not any(line.split(None, 1)[:1] == ["claim"] for line in text.splitlines())


def read_notes_source(path: str) -> SourceText:
    """The notes' text, refused with a message when it is missing, too large, binary or not UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file '{path}'", path)
    size = p.stat().st_size
    if size > MAX_NOTES_BYTES:
        raise InputError(f"not read: {size:,} bytes, more than the {MAX_NOTES_BYTES:,} a notes file may hold", path)
    data = p.read_bytes()
    if b"\0" in data:
        raise InputError("a binary file (it holds NUL bytes), not notes: not read", path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    if len(text) > _parse.MAX_TEXT:
        raise InputError(f"not read: {len(text):,} characters, more than the {_parse.MAX_TEXT:,} a notes file "
                         "may hold", path)
    return SourceText(text, path)


def notes_model(src: SourceText, model: str | None, allow_model_path: bool) -> tuple[Model, str]:
    """The model the notes are checked against, and where it came from (for the listing).

    ``--model`` wins over a ``model NAME`` line of the notes (the listing says
    so).  A path given to ``--model`` is taken as given (from the current
    folder) and, unless ``allow_model_path``, must lie in the notes file's
    folder, as a claims file's ``model PATH`` must.

    Raises
    ------
    InputError
        No model, two ``model`` lines, or a model that cannot be read.
    """
    base = Path(src.path).parent
    lines = [(i, m) for i, line in enumerate(src.lines, start=1) if (m := MODEL_LINE.match(line))]
    if model is None:
        if not lines:
            raise InputError("no model: give --model NAME (a built-in: " + ", ".join(builtin_names()) +
                             "; or a model file) or write a line 'model NAME' in the notes", src.path)
        if len(lines) > 1:
            raise src.error("notes name one model ('model NAME' on one line)", (lines[1][0], 1))
        lineno, m = lines[0]
        pos = (lineno, m.start(2) + 1)
        st = Statement("model", pos, m.group(0), name=m.group(2), name_pos=pos)
        return _with_sizes(_model_of([st], src, base, allow_model_path), src), f"the notes' model line {lineno}"
    given = SourceText(f"--model {model}", "--model")
    pos = (1, len("--model ") + 1)
    target = model
    if model not in builtin_names():
        full = Path(model).absolute()
        if not allow_model_path:
            try:
                inside = full.resolve().is_relative_to(base.resolve())
            except (OSError, RuntimeError, ValueError):
                inside = False
            if not inside:
                raise given.error(f"model path '{model}' is not in the notes file's folder ({base}); a notes "
                                  "file's model must be in its own folder (--allow-model-path lifts this)", pos)
        target = str(full)
    st = Statement("model", pos, given.text, name=target, name_pos=pos)
    note = "--model" + (f"; the notes' own model line {lines[0][0]} is not used" if lines else "")
    return _with_sizes(_model_of([st], given, base, True), src), note


def run_notes_check(path: str, as_json: bool, out: TextIO, err: TextIO, *, model: str | None = None,
                    allow_model_path: bool = False, claim_seconds: float | None = None,
                    seconds: float | None = COMMAND_SECONDS, max_claims: int = MAX_CLAIMS,
                    debug: bool = False) -> int:
    """Check every derivative equation of a notes file; print the listing (or JSON); return 0/1/2/3.

    Parameters
    ----------
    path : str
        The notes.
    as_json : bool
        Print one JSON document instead of the listing.
    out, err : text streams
        Results go to ``out``; input errors and progress to ``err``.
    model : str, optional
        ``--model``: a built-in name or a model file (else the notes' ``model`` line).
    allow_model_path : bool
        Let the model file lie outside the notes file's folder.
    claim_seconds, seconds, max_claims, debug
        As for :func:`derive.claims.command.run_check`.

    Returns
    -------
    int
        0 when every equation checked holds and none was left unread, 1 when
        one does not hold or cannot be read, 2 on bad input (the file or the
        model cannot be read, or no equation can be checked: then what was
        found goes to ``err``), 3 when a bug of derive's stopped a check.
    """
    started = time.monotonic()
    try:
        src = read_notes_source(path)
        the_model, model_note = notes_model(src, model, allow_model_path)
        notes = read_notes(src, the_model, max_claims=max_claims, max_findings=MAX_FINDINGS)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    if not notes.claims_file.claims:
        _nothing_to_check(notes, model_note, err)
        return 2
    results, limits = check_and_report(notes.claims_file, err, claim_seconds, seconds, max_claims, started, debug)
    if as_json:
        json.dump(notes_json(notes, results, limits, model_note), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(notes_listing(notes, results, model_note))
    return notes_exit_status(notes, results)


def _nothing_to_check(notes: NotesRead, model_note: str, err: TextIO) -> None:
    path = notes.claims_file.path
    if notes.findings:
        err.write(notes_listing(notes, [], model_note))
    print(f"{path}: error: no derivative equation of the loss to check: {len(notes.findings)} found, none "
          "can be checked (write gradients of the loss such as dL/dW_hh = ..., one a line)", file=err)
