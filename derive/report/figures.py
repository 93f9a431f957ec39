"""The report's figures: numbers from the generated code, drawn in plain LaTeX.

Debian's ``texlive-latex-base`` and ``texlive-latex-recommended`` ship no
TikZ/PGF, so the figures use the kernel's ``picture`` environment
(``\\qbezier`` draws a segment of any slope) and ``xcolor``; no Python
plotting library is needed.  Every coordinate is rounded to two decimals, so
the same numbers give the same ``.tex`` byte for byte.

Three figures:

- :func:`adjoint_norms`: ``||dL/dh_t||`` over ``t``, read from the very
  ``dL_dh`` array the generated ``loss_and_gradients`` computes (captured
  with :func:`sys.setprofile` as the function returns; nothing is
  recomputed on the side);
- :func:`entry_errors`: log10 relative error of every gradient entry
  against central differences (a heat map per parameter);
- :func:`step_sweep`: central-difference error against the step size,
  with the complex-step derivative as the reference.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..emit.readable import adjoint_variables
from ..numeric import central_difference, complex_step

COLORS = [(0.12, 0.47, 0.71), (0.84, 0.15, 0.16), (0.17, 0.63, 0.17), (1.0, 0.5, 0.05),
          (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5)]
"""Series colours (RGB), cycled."""


def rgb(color: Tuple[float, float, float]) -> str:
    """An xcolor ``[rgb]{r,g,b}`` specification."""
    return "[rgb]{%.3f,%.3f,%.3f}" % color


def _f(x: float) -> str:
    """A coordinate with two decimals and no negative zero."""
    text = "%.2f" % x
    return "0.00" if text == "-0.00" else text


# -- the numbers --------------------------------------------------------------

def capture_locals(function, *args, **kwargs):
    """Call ``function`` and return ``(result, its local variables at return)``.

    Uses :func:`sys.setprofile`, so the function runs unchanged.  When
    another profiler holds the hook, nothing is captured (an empty dict).
    """
    captured: Dict[str, object] = {}
    code = function.__code__

    def profiler(frame, event, arg):
        if event == "return" and frame.f_code is code:
            captured.update(frame.f_locals)

    previous = sys.getprofile()
    if previous is not None:  # a profiler is running: do not take its hook away
        return function(*args, **kwargs), captured
    sys.setprofile(profiler)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.setprofile(None)
    return result, captured


def adjoint_norms(model, derivation, module, params, data) -> Dict[str, List[Tuple[int, float]]]:
    """``(t, ||dL/dX_t||_F)`` for t = 0..T, for every state ``X`` of the model.

    Parameters
    ----------
    model : Model
        The model the module was generated from.
    derivation : MatrixDerivation
        Its derivation (gives the names of the module's adjoint arrays).
    module : module
        The generated module (``loss_and_gradients``).
    params, data : dict
        Its inputs.

    Returns
    -------
    dict
        State name -> list of (step, Frobenius norm); t = 0 is the initial
        state's gradient.
    """
    _, local = capture_locals(module.loss_and_gradients, params, data, wrt_initial_state=True)
    out = {}
    names = adjoint_variables(model, derivation)
    for sym in model.states:
        key = names.get(sym.name)
        if key not in local:
            continue
        arr = np.asarray(local[key])
        out[sym.name] = [(t, float(np.linalg.norm(arr[t]))) for t in range(arr.shape[0])]
    return out


def relative_errors(candidate: np.ndarray, reference: np.ndarray, scale: float = 0.0) -> np.ndarray:
    """``|a - b| / max(|b|, 1e-8 max|b|, 1e-8 scale)``, the relative error ``derive verify`` reports.

    ``scale`` is the largest ``|b|`` over every parameter: a parameter whose
    gradient is zero is measured against the gradient's scale, not 1e-300.
    """
    ref = np.asarray(reference, dtype=float)
    floor = max(1e-8 * float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-8 * scale, 1e-300)
    return np.abs(np.asarray(candidate) - ref) / np.maximum(np.abs(ref), floor)


def entry_errors(module, params, data, grads) -> Dict[str, np.ndarray]:
    """Relative error of every gradient entry against central differences (default step)."""
    cds = {name: central_difference(module.loss, params, data, name) for name in params}
    scale = max((float(np.max(np.abs(cd))) for cd in cds.values() if np.size(cd)), default=0.0)
    return {name: relative_errors(grads[name], cd, scale).reshape(np.shape(params[name]))
            for name, cd in cds.items()}


ZERO_GRADIENT = 64 * float(np.finfo(float).eps)
"""A gradient entry no larger is zero to rounding (the floor of ``derive verify``'s rule)."""

STEP_EXPONENTS = [-k / 2 for k in range(2, 29)]
"""log10 of the steps of :func:`step_sweep`: 1e-1 down to 1e-14."""


def step_sweep(module, params, data, grads) -> Dict[str, Tuple[tuple, List[Tuple[float, float]]]]:
    """Central-difference error against the step, at each parameter's largest gradient entry.

    Returns
    -------
    dict
        Parameter -> ((i, j) entry, [(log10 step, log10 relative error)]),
        the error measured against the complex-step derivative; a parameter
        whose gradient is zero (to rounding, :data:`ZERO_GRADIENT`) is left out.
    """
    out = {}
    for name in params:
        g = np.asarray(grads[name])
        flat = int(np.argmax(np.abs(g)))
        index = tuple(int(i) for i in np.unravel_index(flat, g.shape))
        ref = float(complex_step(module.loss, params, data, name, [flat])[0])
        if abs(ref) <= ZERO_GRADIENT:  # a gradient that is zero has no relative error to sweep
            continue
        points = []
        for e in STEP_EXPONENTS:
            cd = float(central_difference(module.loss, params, data, name, [flat], step=10.0 ** e)[0])
            err = abs(cd - ref) / max(abs(ref), 1e-300)
            points.append((e, math.log10(max(err, 1e-17))))
        out[name] = (index, points)
    return out


# -- drawing ------------------------------------------------------------------

@dataclass
class Axes:
    """A linear map from data coordinates to picture points."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: float = 300.0
    height: float = 150.0

    def x(self, v: float) -> float:
        return (v - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, v: float) -> float:
        return (v - self.y0) / (self.y1 - self.y0) * self.height


def _frame(ax: Axes, xticks, yticks, xlabel: str, ylabel: str) -> List[str]:
    w, h = ax.width, ax.height
    out = [r"\put(0,0){\line(1,0){%s}}" % _f(w), r"\put(0,0){\line(0,1){%s}}" % _f(h),
           r"\put(0,%s){\line(1,0){%s}}" % (_f(h), _f(w)), r"\put(%s,0){\line(0,1){%s}}" % (_f(w), _f(h))]
    for v, label in xticks:
        x = ax.x(v)
        out.append(r"\put(%s,0){\line(0,1){3}}" % _f(x))
        out.append(r"\put(%s,-4){\makebox(0,0)[t]{\scriptsize %s}}" % (_f(x), label))
    for v, label in yticks:
        y = ax.y(v)
        out.append(r"\put(0,%s){\line(1,0){3}}" % _f(y))
        out.append(r"\put(-4,%s){\makebox(0,0)[r]{\scriptsize %s}}" % (_f(y), label))
    out.append(r"\put(%s,-22){\makebox(0,0)[t]{\small %s}}" % (_f(w / 2), xlabel))
    out.append(r"\put(-38,%s){\makebox(0,0)[r]{\small %s}}" % (_f(h / 2), ylabel))
    return out


def line_plot(series: Sequence[Tuple[str, Sequence[Tuple[float, float]]]], ax: Axes, xticks, yticks,
              xlabel: str, ylabel: str, vline: Optional[Tuple[float, str]] = None) -> str:
    """A line plot with markers, as a LaTeX ``picture``.

    Parameters
    ----------
    series : list of (label, points)
        ``label`` is LaTeX; ``points`` are (x, y) in data coordinates
        (already on a log scale where one is wanted).
    ax : Axes
        The data range and the picture size (points).
    xticks, yticks : list of (value, LaTeX label)
    xlabel, ylabel : str
        Axis titles (LaTeX).
    vline : (x, label), optional
        A dotted vertical marker.
    """
    legend_h = 12 * ((len(series) + 3) // 4)
    lines = [r"\setlength{\unitlength}{1pt}",
             r"\begin{picture}(%s,%s)(-60,-34)" % (_f(ax.width + 70), _f(ax.height + 40 + legend_h))]
    lines += _frame(ax, xticks, yticks, xlabel, ylabel)
    if vline is not None:
        x = ax.x(vline[0])
        lines.append(r"\multiput(%s,0)(0,6){%d}{\line(0,1){3}}" % (_f(x), int(ax.height // 6)))
        lines.append(r"\put(%s,6){\makebox(0,0)[l]{\scriptsize %s}}" % (_f(x + 3), vline[1]))
    for k, (label, points) in enumerate(series):
        color = rgb(COLORS[k % len(COLORS)])
        body = []
        pts = [(ax.x(x), ax.y(y)) for x, y in points]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            body.append(r"\qbezier(%s,%s)(%s,%s)(%s,%s)" % (_f(xa), _f(ya), _f((xa + xb) / 2),
                                                            _f((ya + yb) / 2), _f(xb), _f(yb)))
        for xa, ya in pts:
            body.append(r"\put(%s,%s){\makebox(0,0){$\scriptstyle\bullet$}}" % (_f(xa), _f(ya)))
        col, row = k % 4, k // 4
        lx, ly = col * (ax.width / 4), ax.height + 14 + 12 * row
        body.append(r"\put(%s,%s){\line(1,0){12}}" % (_f(lx), _f(ly)))
        body.append(r"\put(%s,%s){\makebox(0,0)[l]{\scriptsize %s}}" % (_f(lx + 15), _f(ly), label))
        # a line's end is a space, and a space in a picture moves every later \put: hence the %
        lines.append(r"{\color%s%%" % color)
        lines += body
        lines.append("}%")
    lines.append(r"\end{picture}")
    return "\n".join(lines)


HEAT_STOPS = [(0.0, (0.19, 0.21, 0.58)), (0.35, (0.27, 0.62, 0.76)), (0.6, (0.99, 0.88, 0.56)),
              (0.8, (0.96, 0.43, 0.26)), (1.0, (0.65, 0.0, 0.15))]
"""Colour map of the heat map: blue (tiny error) to red (large)."""


def heat_color(fraction: float) -> Tuple[float, float, float]:
    """The heat-map colour at ``fraction`` in [0, 1]."""
    f = min(max(fraction, 0.0), 1.0)
    for (fa, ca), (fb, cb) in zip(HEAT_STOPS, HEAT_STOPS[1:]):
        if f <= fb:
            s = (f - fa) / (fb - fa)
            return tuple(a + s * (b - a) for a, b in zip(ca, cb))
    return HEAT_STOPS[-1][1]


def heat_map(grids: Sequence[Tuple[str, np.ndarray]], vmin: float = -16.0, vmax: float = -4.0,
             cell: float = 14.0, gap: float = 18.0) -> str:
    """One grid of coloured cells per parameter, side by side, with a colour bar.

    Parameters
    ----------
    grids : list of (LaTeX label, 2-D array of log10 values)
        Row 0 is drawn at the top, as a matrix is written.
    vmin, vmax : float
        The colour range; values outside are clamped.
    """
    cell = min(cell, 110.0 / max(max(g.shape) for _, g in grids))
    total_cols = sum(g.shape[1] for _, g in grids)
    cell = min(cell, max(380.0 - gap * (len(grids) - 1), 60.0) / total_cols)  # fit the text width
    width = sum(g.shape[1] * cell for _, g in grids) + gap * (len(grids) - 1)
    height = max(g.shape[0] * cell for _, g in grids)
    bar_w = 10.0
    bar_h = max(height, 48.0)  # room for its four labels beside a one-row grid
    total_w = width + 50
    lines = [r"\setlength{\unitlength}{1pt}",
             r"\begin{picture}(%s,%s)(0,-16)" % (_f(total_w), _f(bar_h + 16))]
    x = 0.0
    for label, grid in grids:
        rows, cols = grid.shape
        top = height
        for i in range(rows):
            for j in range(cols):
                v = float(grid[i, j])
                frac = (min(max(v, vmin), vmax) - vmin) / (vmax - vmin)
                lines.append(r"\put(%s,%s){\textcolor%s{\rule{%spt}{%spt}}}" % (
                    _f(x + j * cell), _f(top - (i + 1) * cell), rgb(heat_color(frac)), _f(cell), _f(cell)))
        lines.append(r"\put(%s,-4){\makebox(0,0)[t]{\small %s}}" % (_f(x + cols * cell / 2), label))
        x += cols * cell + gap
    bx = width + 20
    steps = 24
    for k in range(steps):
        lines.append(r"\put(%s,%s){\textcolor%s{\rule{%spt}{%spt}}}" % (
            _f(bx), _f(k * bar_h / steps), rgb(heat_color((k + 0.5) / steps)), _f(bar_w),
            _f(bar_h / steps + 0.05)))
    for v in range(int(vmin), int(vmax) + 1, 4):
        y = (v - vmin) / (vmax - vmin) * bar_h
        lines.append(r"\put(%s,%s){\makebox(0,0)[l]{\scriptsize $%d$}}" % (_f(bx + bar_w + 2), _f(y), v))
    lines.append(r"\end{picture}")
    return "\n".join(lines)


def log_ticks(lo: int, hi: int, every: int = 1) -> List[Tuple[float, str]]:
    """Ticks at integer powers of ten, labelled ``10^k``."""
    return [(float(k), r"$10^{%d}$" % k) for k in range(lo, hi + 1) if (k - lo) % every == 0]
