"""One slip made everywhere a shared value is used: the same edit in every term that holds the same part.

A hand-written backward pass computes a factor once and uses it for several
gradients: a GRU's ``da_n = dn * (1 - n**2)`` feeds ``dL/dh_{t-1}``,
``dL/dr_t``, ``dL/dW_n``, ``dL/dU_n`` and ``dL/db_n``, each of which the
derivation writes out in full. A slip in that one line (``(1 - n)**2``) is
then one edit in each of those terms: a :class:`Candidate` of several
mutations, named once. Singles and pairs are candidates too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..calculus.matrix import MatrixDerivation
from ..notation.expr import Adj, Node, Ref, shift_steps, transform, walk
from ..notation.printer import show
from .mutation_vocabulary import (
    GATE,
    LINEAR,
    MISSING_FACTOR,
    SIGMOID_FOR_TANH,
    SQUARE,
    TANH_FOR_SIGMOID,
    Mutation,
    Vocabulary,
)

STEP = "a step off by one"
SHARED_KINDS = (SQUARE, LINEAR, TANH_FOR_SIGMOID, SIGMOID_FOR_TANH, GATE, MISSING_FACTOR, "+ and - mixed up", STEP)
"""The slips that a value computed once and used in several terms carries into each of them."""


@dataclass(frozen=True)
class Candidate:
    """Mutations run together as one mutated derivation, described as one slip (or a pair)."""

    mutations: tuple[Mutation, ...]
    description: str
    kinds: tuple[str, ...]

    @staticmethod
    def single(m: Mutation) -> Candidate:
        return Candidate((m,), m.description, m.kinds)

    def touches(self) -> set:
        """The (adjoint, term) places edited: two candidates combine when these do not meet."""
        return set().union(*(m.touches() for m in self.mutations))

    def with_(self, other: Candidate) -> Candidate:
        """The pair of two candidates."""
        return Candidate(self.mutations + other.mutations, f"{self.description}; and {other.description}",
                         tuple(dict.fromkeys(self.kinds + other.kinds)))


def _replace_everywhere(expr: Node, old: Node, new: Node, shifts) -> Node:
    """``old`` replaced by ``new`` wherever it occurs, moved by each of ``shifts`` steps, all at once."""
    table = {shift_steps(old, k): shift_steps(new, k) for k in shifts}
    return transform(expr, lambda n: table.get(n, n))


def everywhere(vocabulary: Vocabulary) -> list[Candidate]:
    """The edits of :data:`SHARED_KINDS` applied at every place their part occurs (at any step ``t + k``).

    Returns
    -------
    list of Candidate
        Only those that edit more than one term, each once, in a fixed order.
    """
    derivation: MatrixDerivation = vocabulary.derivation
    out, seen = [], set()
    for name in vocabulary.sites:
        for term in derivation.adjoints[name].terms:
            for _, kind, old, new in vocabulary.edited_trees(name, term.expr):
                if kind not in SHARED_KINDS:
                    continue
                ahead = max((n.step.offset for n in walk(old) if isinstance(n, (Ref, Adj)) and n.step is not None
                             and n.step.kind == "rel"), default=0)
                if ahead > 0 and kind != STEP:  # n_{t+1} in dL/dh_t is n_t where the step's own terms read it
                    old, new = shift_steps(old, -ahead), shift_steps(new, -ahead)
                if (old, new) in seen:
                    continue
                seen.add((old, new))
                candidate = _spread(vocabulary, old, new, kind)
                if candidate is not None:
                    out.append(candidate)
    return out


def _spread(vocabulary: Vocabulary, old: Node, new: Node, kind: str):
    """The edit ``old -> new`` made in every term of every adjoint that holds ``old`` (steps moved alike)."""
    derivation = vocabulary.derivation
    mutations, places = [], []
    for name in vocabulary.sites:
        changes = []
        for i, term in enumerate(derivation.adjoints[name].terms):
            # a factor computed once per step is read at step t + 1 by dL/dh_t; a value read at a wrong step
            # (h_t for h_{t-1}) is that same value wherever it is read
            tree = _replace_everywhere(term.expr, old, new, (0,) if kind == STEP else (1, -1, 0))
            if tree != term.expr:
                if not vocabulary.conforms(name, tree):
                    return None
                changes.append((i, replace(term, expr=tree)))
        if changes:
            mutations.append(Mutation(name, tuple(changes), (), "", (kind,)))
            places.append(name)
    if sum(len(m.changes) for m in mutations) < 2:
        return None
    where = ", ".join(vocabulary.lhs(n) for n in places)
    numbers = ", ".join(f"({vocabulary.numbers[n]})" for n in places)
    eqs = "eqs." if len(places) > 1 else "eq."
    return Candidate(tuple(mutations), f"{show(new)} in place of {show(old)} wherever it occurs: in {where}, "
                                       f"{eqs} {numbers}", (kind,))
