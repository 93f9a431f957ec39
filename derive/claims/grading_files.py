"""Which files a class's grading picks: the files named, and the ``*.claims`` files of the folders named.

:func:`collect_submissions` turns the paths of ``derive check PATH...`` into
the submissions to grade, in a fixed order.  A file that must not be read
(a symbolic link found inside a folder, something that is not a regular
file, a file too large to be a claims file) is kept as a submission with a
refusal, so that the summary still lists it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..notation.parse import MAX_TEXT

SUFFIX = ".claims"
NOTES_SUFFIXES = (".txt", ".md", ".notes")
"""The files a folder contributes when a class's notes are graded as written (``--model``)."""
"""The files a folder contributes."""

MAX_FILE_BYTES = 4 * MAX_TEXT
"""A file larger than this is refused before it is read: a claims file holds at most
:data:`derive.notation.parse.MAX_TEXT` characters, and a character is at most 4 bytes of UTF-8."""


@dataclass(frozen=True)
class Submission:
    """One file of the class, or one entry that stands for a submission that cannot be graded.

    ``refusal`` is None for a file to check; otherwise it says why the file
    is not read (the summary lists it as an input error).
    """

    path: str
    refusal: str | None = None


def _refusal(path: str, info: os.stat_result) -> str | None:
    """Why a file found or named must not be read, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a pipe, a device or a socket is not read)"
    if info.st_size > MAX_FILE_BYTES:
        return (f"the file holds {info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} a claims file "
                "may hold; it was not read")
    return None


def _folder_files(folder: str, suffixes: tuple[str, ...] = (SUFFIX,)) -> list[Submission]:
    """The ``*.claims`` files (or those ending in one of ``suffixes``) under ``folder``, at any depth, sorted by
    their path.

    Names starting with a dot are skipped, and links are not followed: a
    link named ``*.claims`` is listed as refused, a linked folder is not
    entered.
    """
    found: list[Submission] = []

    def unlistable(err: OSError):
        found.append(Submission(err.filename or folder, f"the folder cannot be listed: {err.strerror or err}"))

    for top, dirs, files in os.walk(folder, onerror=unlistable, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or not name.endswith(suffixes):
                continue
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
            except OSError as err:
                found.append(Submission(path, f"cannot be read: {err.strerror or err}"))
                continue
            if stat.S_ISLNK(info.st_mode):
                found.append(Submission(path, "a symbolic link inside a folder is not followed (name its "
                                              "target on the command line to grade it)"))
            else:
                found.append(Submission(path, _refusal(path, info)))
    found.sort(key=lambda s: Path(s.path).parts)
    if not found:
        found.append(Submission(folder, f"no {' or '.join(suffixes)} file in this folder"))
    return found


def collect_submissions(paths: list[str], notes: bool = False) -> list[Submission]:
    """The submissions of ``derive check PATH...``, in the order graded and summarised.

    A file named is taken whatever its name (a link named on the command
    line is followed, as for one file); a folder contributes its
    ``*.claims`` files (see :func:`_folder_files`), or one refused entry
    when it holds none, so that an empty submission shows.  A file reached
    twice is graded once, at its first place.

    Parameters
    ----------
    paths : list of str
        Files and folders, as given.
    notes : bool
        A folder contributes its notes (``*.txt``, ``*.md``, ``*.notes``) instead of its ``*.claims`` files.

    Returns
    -------
    list of Submission
        The files to grade and the entries refused, in order.

    Raises
    ------
    InputError
        When a path names nothing (a mistyped path stops the batch before
        any work).
    """
    out: list[Submission] = []
    seen: set[str] = set()
    for given in paths:
        try:
            info = os.stat(given)
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or "no such file or folder"
            raise InputError(f"cannot grade '{given}': {reason}", given) from None
        suffixes = NOTES_SUFFIXES if notes else (SUFFIX,)
        found = _folder_files(given, suffixes) if stat.S_ISDIR(info.st_mode) else \
            [Submission(given, _refusal(given, info))]
        for sub in found:
            key = os.path.realpath(sub.path) if sub.refusal is None else f"refused:{sub.path}"
            if key not in seen:
                seen.add(key)
                out.append(sub)
    return out
