"""Which adjoints and terms the gradient function computes, and where each term is added up.

Only the adjoints that some parameter (or initial-state) gradient depends on
are computed (:func:`needed_adjoints`), and of those only the terms that read
a live adjoint (:func:`live_derivation`). A term summed over steps is added
inside the backward loop when it reads the step ``t`` (:func:`summed_in_loop`),
else as one value (:func:`whole_sum`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Set

from ..calculus.matrix import MatrixDerivation, Term, adjoints_read_from
from ..model.model import Model
from ..notation.expr import Adj, Call, Ref, adjoint_refs, walk


def whole_sum(term: Term) -> Term:
    """A term summed over steps, written as one value: ``sum_t`` of its expression.

    For a target the time loop does not sum into: a global after the loop
    (``y`` read inside ``L = sum_t ...``) or one fixed step of a per-step
    quantity (``h_T`` inside ``sum_t``), whose adjoint must be whole before
    the backward loop reads it at that step.
    """
    return replace(term, expr=Call("sum_t", (term.expr,)), summed=False)


def summed_in_loop(term: Term) -> bool:
    """A term summed over steps that the backward loop adds up, one step at a time.

    One that reads nothing at the step ``t`` (``sum_t b`` of a parameter, or
    ``sum_t`` in a global computed before the loop) is the same at every step:
    it is added whole after the loop (:func:`whole_sum`), where the adjoint it
    reads may only then be complete.
    """
    return term.summed and any(isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel"
                               for n in walk(term.expr))


def targets_step_zero(term: Term) -> bool:
    """A term that exists only at step 0 (a state's initial value)."""
    return term.at is not None and term.at.kind == "abs" and term.at.offset == 0


def live_derivation(derivation: MatrixDerivation) -> MatrixDerivation:
    """The derivation without the terms that read an adjoint which is zero.

    A quantity the loss does not depend on (``o_t`` that nothing reads) has no
    adjoint, yet the terms its equation contributes to its operands read it
    (``dL/dh_{t-1}`` gets ``... dL/do_t``): such a term is zero, and so is an
    adjoint left with no other term. The live adjoints are the least set that
    holds the loss's and every adjoint with a term reading live adjoints only.

    Returns
    -------
    MatrixDerivation
        ``derivation`` itself when nothing is dead; else a copy whose dead
        adjoints are gone (a parameter's stays, with no terms).
    """
    adjoints = derivation.adjoints

    def reads_live(term: Term, live: Set[str]) -> bool:
        return all(a.name in live for a in adjoint_refs(term.expr))

    live: Set[str] = set()
    while True:
        grown = {name for name, adjoint in adjoints.items() if any(reads_live(t, live) for t in adjoint.terms)}
        if grown == live:
            break
        live = grown
    kept = {name: [t for t in adjoint.terms if reads_live(t, live)] for name, adjoint in adjoints.items()}
    if all(len(kept[name]) == len(adjoint.terms) for name, adjoint in adjoints.items()):
        return derivation
    params = {s.name for s in derivation.model.params}
    pruned = {name: replace(adjoint, terms=kept[name]) for name, adjoint in adjoints.items()
              if kept[name] or name in params}
    return MatrixDerivation(derivation.model, pruned, derivation.constants)


def needed_adjoints(derivation: MatrixDerivation, with_states: bool = True) -> Set[str]:
    """Adjoints that the parameter (initial-state and input) gradients depend on."""
    model = derivation.model
    names = [s.name for s in model.params] + ([s.name for s in model.states] if with_states else [])
    return adjoints_read_from(derivation, names + [s.name for s in model.differentiable_inputs])


def needed_values(model: Model, exprs) -> Set[str]:
    """Symbols whose forward values the given expressions read."""
    return {n.name for e in exprs for n in walk(e) if isinstance(n, Ref)}
