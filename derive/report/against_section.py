"""The section of a model report on a user's own backward pass (``derive report MODEL --against ...``).

It shows what ``derive against`` found (:mod:`derive.against`): each gradient's
errors and verdict, a heat map of every entry's relative error, the largest
relative error at each sequence length of the T sweep, where the deviation
starts, and the slip that reproduces the user's numbers when one does.
"""

from __future__ import annotations

import math
import os
from typing import Dict, Optional

import numpy as np

from ..against.result import AgainstResult
from .document import Doc, Report
from .figures import Axes, heat_map, line_plot, log_ticks
from .latex import breakable, escape_text, fmt_sci, name_math, sizes_math

def with_against(report: Report, source: str, against: str, mapping: Optional[str], seed: int,
                 sizes: Optional[Dict[str, int]]) -> Report:
    """``report`` with the section on the user's implementation ``against`` added at its end.

    ``against`` is ``path/to/impl.py:function`` or ``package.module:function`` (imported and run), or a case
    directory the user's program answered (``derive against --write-case``; nothing is run). Only a passing
    comparison leaves the report's verdict as it was.
    """
    from ..against.command import Options, against_callable, against_files
    options = Options(source, sizes=dict(sizes or {}), seed=seed, mapping=mapping, every_length=True)
    if os.path.isdir(against):
        options.gradients = against
        result = against_files(options)
    else:
        options.impl = against
        result = against_callable(options)
    doc = Doc()
    against_section(doc, result)
    head, tail = report.tex.rsplit(r"\end{document}", 1)
    return Report(head + doc.text() + r"\end{document}" + tail, report.passed and result.passed)


FLOOR_EXPONENT = -17
"""Relative errors below 1e-17 are drawn at 1e-17 (a log scale has no zero)."""


def _log10(x: float) -> float:
    return round(max(math.log10(x) if x > 0 else FLOOR_EXPONENT, FLOOR_EXPONENT), 2)


def against_section(doc: Doc, result: AgainstResult) -> None:
    """Write the section: the comparison table, the heat map, the per-length plot and the findings.

    Parameters
    ----------
    doc : Doc
        The report being written.
    result : AgainstResult
        What :func:`derive.against.command.against_callable` or ``against_files`` found.
    """
    doc.add(r"\section{Your implementation}\label{sec:against}", "")
    doc.para(rf"\texttt{{derive against}} compared the loss and gradients of \texttt{{{breakable(result.source)}}} "
             rf"with this report's derivation on one random case (seed {result.seed}, "
             rf"${sizes_math(result.sizes)}$). An entry agrees when $|\text{{yours}} - \text{{derive's}}| "
             rf"\le {fmt_sci(result.rtol)}\,|\text{{derive's}}| + {fmt_sci(result.atol)}\,S$, $S$ the largest "
             r"$|\text{derive's}|$ entry compared.")
    doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{lrccl}", r"\toprule",
            r"gradient & entries & max abs.\ error & max rel.\ error & verdict\\", r"\midrule")
    for row in result.rows:
        verdict = "agrees" if row.passed else rf"\textbf{{wrong}} ({row.wrong} of {row.entries})"
        doc.add(rf"${name_math(row.name)}$ & {row.entries} & ${fmt_sci(row.max_abs_error)}$ & "
                rf"${fmt_sci(row.max_rel_error)}$ & {verdict}\\")
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    if result.loss is not None:
        said = {True: "agrees", False: r"\textbf{differs}", None: ""}[result.loss_agrees]
        doc.para(rf"The loss: yours ${result.loss:.10g}$, derive's ${result.reference_loss:.10g}$: {said}.")
    grids, notes = [], []
    for name, err in result.entry_errors.items():
        grid, note = heat_grid(name, np.asarray(err, dtype=float))
        grids.append((rf"${name_math(name)}$", np.vectorize(_log10)(grid)))
        if note:
            notes.append(note)
    if grids:
        blocks = (" " + "; ".join(notes) + ".") if notes else ""
        doc.add(r"\begin{figure}[htbp]", r"\centering", heat_map(grids, vmin=FLOOR_EXPONENT, vmax=1.0),
                r"\caption{\label{fig:against-heat}$\log_{10}$ of the relative error of every entry of your "
                r"gradients against the derivation's, one cell per entry laid out as the matrix (blue: "
                r"agreement to rounding; red: a relative error of 10 or more)." + escape_text(blocks) + "}",
                r"\end{figure}", "")
    if result.length_errors:
        _length_plot(doc, result)
    if result.sweep is not None:
        doc.para(rf"Steps: {escape_text(result.sweep.summary())}.")
    if result.naming is not None:
        for sentence in result.naming.sentences(result.wrong):
            doc.para(rf"Slip: {escape_text(sentence)}.")
    for note in result.notes:
        doc.para(rf"Note: {escape_text(note)}.")
    doc.para(r"Verdict: \textbf{" + ("every gradient compared agrees}." if result.passed else
                                      "wrong}: " + escape_text(", ".join(result.wrong)) + "."))
    doc.add(r"\clearpage", "")


MAX_CELLS = 24
"""The most rows and columns of cells a gradient's heat map draws; a larger one shows blocks of entries."""


def heat_grid(name: str, err: np.ndarray):
    """The grid of relative errors to draw for one gradient, and a note when it is not one cell per entry.

    A per-step array ``(T, rows, cols)`` is drawn as its steps' rows stacked (``T * rows`` by ``cols``). A grid
    wider or taller than :data:`MAX_CELLS` is cut into blocks, each drawn as the largest error in it, so a
    wrong entry is never hidden.
    """
    note = ""
    if err.ndim == 3:
        steps, rows, cols = err.shape
        err = err.reshape(steps * rows, cols)
        note = f"{name}: its {steps} steps' rows stacked"
    elif err.ndim != 2:
        err = err.reshape(1, -1)
    rows, cols = err.shape
    br, bc = -(-rows // MAX_CELLS), -(-cols // MAX_CELLS)
    if br > 1 or bc > 1:
        padded = np.zeros((-(-rows // br) * br, -(-cols // bc) * bc))
        padded[:rows, :cols] = err
        err = padded.reshape(padded.shape[0] // br, br, padded.shape[1] // bc, bc).max(axis=(1, 3))
        note = (note + ", " if note else f"{name}: ") + f"one cell per block of {br} x {bc} entries, its largest error"
    return err, note


def _length_plot(doc: Doc, result: AgainstResult) -> None:
    lengths = sorted(result.length_errors)
    names = [row.name for row in result.rows if any(row.name in result.length_errors[t] for t in lengths)]
    series = [(rf"${name_math(n)}$", [(float(t), _log10(result.length_errors[t][n])) for t in lengths
                                       if n in result.length_errors[t]]) for n in names]
    hi = max(1, math.ceil(max(y for _, pts in series for _, y in pts)))
    ax = Axes(0.5, lengths[-1] + 0.5, FLOOR_EXPONENT, hi)
    xt = [(float(t), str(t)) for t in lengths]
    pic = line_plot(series, ax, xt, log_ticks(FLOOR_EXPONENT, hi, 3), r"sequence length $T$", "rel.\\ error")
    doc.add(r"\begin{figure}[htbp]", r"\centering", pic,
            r"\caption{\label{fig:against-steps}The largest relative error of each of your gradients when your "
            r"code runs the same case cut to the first $T$ steps (an error of zero is drawn at $10^{-17}$). A "
            r"gradient right at $T = 1$ and wrong from $T = 2$ on has a slip in the recurrent path (through the "
            r"state one step back); one wrong already at $T = 1$ usually has a slip in each step's own path.}",
            r"\end{figure}", "")
