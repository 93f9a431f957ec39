"""The numeric witness: the matrix recurrences run at a random point against the exact sweep.

A matrix recurrence is instantiated at concrete sizes and steps
(:func:`instantiate`), with the adjoints it reads looked up in the exact
derivation (for the proof) or in what the recurrences computed before it
(for the witness).  The witness evaluates everything in 50-digit arithmetic
(:mod:`derive.calculus.high_precision`) and reports the largest relative
gap, a second check beside the entry-by-entry proof.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import sympy

from ..model.model import Model
from ..notation.expr import Adj
from .entries import Mat, elementwise, zeros
from .exact import ExactAdjoints, Unrolled
from .high_precision import PointEvaluator
from .matrix import MatrixDerivation, Term, in_range


def _add(a: Optional[Mat], b: Mat) -> Mat:
    return b if a is None else elementwise(a, b, lambda x, y: x + y)


def instantiate(derivation: MatrixDerivation, exact: ExactAdjoints, name: str,
                step: Optional[int], terms: List[Term], adjoint_lookup=None) -> Mat:
    """Sum of a recurrence's terms at a concrete step, with exact adjoints referenced."""
    u = exact.unrolled
    lookup = adjoint_lookup or (lambda node, s: exact.matrix(node.name, s))
    ev = u.evaluator(lookup)
    total = None
    rows, cols = u.shape(name)
    per_step = u.model.symbols[name].per_step
    for term in terms:
        if per_step and term.at is not None and term.at.at(step, u.T) != step:
            continue
        if term.summed:
            for t in range(1, u.T + 1):
                if in_range(term, t, u.T):
                    total = _add(total, ev(term.expr, t))
        elif not per_step or in_range(term, step, u.T):
            total = _add(total, ev(term.expr, step))
    if total is None:
        return zeros(rows, cols)
    if (total.rows, total.cols) != (rows, cols):
        total = elementwise(zeros(rows, cols), total, lambda x, y: x + y)
    return total


def numeric_values(u: Unrolled, exact: ExactAdjoints, seed: int) -> PointEvaluator:
    """All forward and exact adjoint values at a random point, 50 digits.

    The result maps each symbol to its value (``values[s]``, ``values.get(s, 0)``)
    and evaluates any other expression of them (``values(expr)``).
    """
    rng = np.random.default_rng(seed + 1000)
    values = PointEvaluator({s: repr(float(rng.normal(0.0, 0.5))) for s in u.leaves})
    for s, expr in u.assignments:
        values.set(s, values(expr))
    for s in exact.order:
        bar = exact.symbol[s]
        values.set(bar, values(exact.definition[bar]))
    return values


def numeric_witness(derivation: MatrixDerivation, exact: ExactAdjoints, seed: int,
                    use_generic: bool = False) -> float:
    """Largest relative gap between the matrix recurrences run numerically and the exact sweep."""
    u = exact.unrolled
    model = derivation.model
    values = numeric_values(u, exact, seed)
    computed: Dict[tuple, Mat] = {}

    def lookup(node: Adj, step):
        key = (node.name, step)
        if key not in computed:
            rows, cols = u.shape(node.name)
            return zeros(rows, cols)
        return computed[key]

    worst = 0.0
    for name, step in backward_schedule(model, u.T, derivation):
        adj = derivation.adjoints[name]
        terms = adj.generic if (use_generic and adj.generic) else adj.terms
        m = instantiate(derivation, exact, name, step, terms, lookup)
        # each computed entry becomes a symbol of its own with its value, so later
        # recurrences read the number, not the expression that produced it
        held = Mat(m.rows, m.cols, [sympy.Dummy() for _ in m.data])
        for symbol, expr in zip(held.data, m.data):
            values.set(symbol, values(expr))
        computed[(name, step)] = held
        truth = exact.matrix(name, step)
        for (i, j), symbol in held.entries():
            v, ref = values[symbol], values.get(truth[i, j], 0)
            gap = abs(float(v - ref))
            scale = max(abs(float(ref)), 1e-300)
            worst = max(worst, gap / scale if abs(float(ref)) > 1e-40 else gap)
    return worst


def backward_schedule(model: Model, T: int, derivation: MatrixDerivation):
    """(quantity, step) in the order a backward pass computes them."""
    order = []
    adjoints = derivation.adjoints
    for eq in reversed(model.phase("post")):
        order.append((eq.name, None))
    steps = [eq.name for eq in reversed(model.phase("step"))]
    for t in range(T, 0, -1):
        order += [(n, t) for n in steps if n in adjoints]
    order += [(s.name, 0) for s in model.states if s.name in adjoints]
    for eq in reversed(model.phase("pre")):
        order.append((eq.name, None))
    order += [(s.name, None) for s in model.params]
    return [(n, s) for n, s in order if n in adjoints]
