"""``derive check PATH... --summary FORMAT``: grade a class's claims files and print the summary."""

from __future__ import annotations

import json
import os
from typing import TextIO

from ..errors import InputError
from .grading import GradeOptions, batch_exit_status, grade_submissions
from .grading_files import collect_submissions
from .grading_progress import Progress
from .grading_summary import csv_summary, json_summary, table_summary


def run_grading(paths: list[str], summary: str, out: TextIO, err: TextIO, options: GradeOptions,
                jobs: int | None = None, debug: bool = False) -> int:
    """Grade every file of ``paths``; print the summary to ``out``; return the batch's exit status.

    Parameters
    ----------
    paths : list of str
        Claims files and folders (a folder gives its ``*.claims`` files,
        at any depth; see :mod:`derive.claims.grading_files`).
    summary : str
        ``table``, ``csv`` or ``json``.
    out, err : text streams
        The summary goes to ``out``; progress and a path that names nothing
        to ``err``.
    options : GradeOptions
        The limits and rules of every file (those of ``derive check``; the
        time limit is per file).
    jobs : int, optional
        Files checked at once (default ``os.cpu_count()``).
    debug : bool
        Print the traceback of each internal error to ``err``.

    Returns
    -------
    int
        0 when every claim of every file holds; 1 when every file was graded
        and some claim does not hold; 2 when a path names nothing (nothing is
        graded), or some file could not be graded (bad input, or its time
        ran out); 3 when a bug of derive's stopped some file's check.
        Interrupted, it prints nothing to ``out``.
    """
    try:
        subs = collect_submissions(paths, notes=options.notes)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    jobs = max(1, jobs or os.cpu_count() or 1)
    progress = Progress(err, len(subs), min(jobs, len(subs)))
    progress.start()
    try:
        grades = grade_submissions(subs, options, jobs, on_done=progress.graded, on_tick=progress.tick)
    except KeyboardInterrupt:
        if progress.terminal:
            err.write("\n")  # end the bar's line before the word that it was interrupted
        raise
    progress.close()
    if debug:
        for g in grades:
            if g.trace:
                print(f"{g.file}: internal error:\n{g.trace}", file=err)
    if summary == "json":
        json.dump(json_summary(grades, options.limits()), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif summary == "csv":
        out.write(csv_summary(grades))
    else:
        out.write(table_summary(grades))
    return batch_exit_status(grades)
