"""``derive show``: the forward equations, every derived gradient with its shape, and the proof."""

from __future__ import annotations

from dataclasses import replace
from typing import List, Optional, Set

from ..model.model import Model, shape_text
from ..notation.expr import ZERO, Adj, Call, Num, Step, adjoint_refs, fix_steps, transform
from ..notation.printer import show
from .matrix import Adjoint, MatrixDerivation, Term, initial_state_terms
from .prove import Proof
from .simplify import simplify


def zero_adjoints(derivation: MatrixDerivation) -> Set[str]:
    """The quantities whose adjoint is identically zero: no chain of uses leads from them to the loss.

    A term that reads no adjoint comes from the loss itself (through the
    constants ``dL/dL = 1``); every other term is linear in the adjoints it
    reads (it is a vector-Jacobian product). An adjoint is *live* when one of
    its terms reads no adjoint or reads a live one; the rest satisfy a
    homogeneous recurrence that starts from zero past the last step
    (``dL/dg_{T+1} = 0``) and runs backwards over an order with no cycle, so
    they are zero at every step. A quantity that no later equation of the
    loss's chain reads (``q_t = V @ h_t`` with ``q`` unused) has no adjoint
    at all, and counts as zero too.
    """
    live = set(derivation.constants)
    changed = True
    while changed:
        changed = False
        for name, adjoint in derivation.adjoints.items():
            terms = adjoint.terms + (adjoint.generic or [])
            if name not in live and any(_may_be_nonzero(t, live) for t in terms):
                live.add(name)
                changed = True
    return (set(derivation.adjoints) | read_adjoints(derivation)) - live


def read_adjoints(derivation: MatrixDerivation) -> Set[str]:
    """The names whose adjoint some term of ``derivation`` reads (``h`` for ``dL/dh_{t+1}``)."""
    return {a.name for adjoint in derivation.adjoints.values()
            for t in adjoint.terms + (adjoint.generic or []) for a in adjoint_refs(t.expr)}


def _may_be_nonzero(term: Term, live: Set[str]) -> bool:
    refs = adjoint_refs(term.expr)
    return not refs or any(a.name in live for a in refs)


def nonzero_terms(terms: List[Term], zero: Set[str], model: Model) -> List[Term]:
    """``terms`` without those proved zero: the term with every zero adjoint set to 0 simplifies to 0."""
    out = []
    for term in terms:
        if any(a.name in zero for a in adjoint_refs(term.expr)):
            cleared = simplify(transform(term.expr, lambda n: ZERO if isinstance(n, Adj) and n.name in zero else n),
                               model)
            if isinstance(cleared, Num) and cleared.value == 0:
                continue
        out.append(term)
    return out


def shown_derivation(derivation: MatrixDerivation) -> MatrixDerivation:
    """The derivation as printed: every adjoint without its terms proved zero (:func:`zero_adjoints`).

    The equation numbers stay those of ``derivation`` (the adjoints keep their
    names and order); only the printed sums lose terms that are identically zero.
    """
    zero = zero_adjoints(derivation)
    if not zero:
        return derivation
    model = derivation.model
    adjoints = {name: replace(a, terms=nonzero_terms(a.terms, zero, model),
                              generic=None if a.generic is None else nonzero_terms(a.generic, zero, model))
                for name, a in derivation.adjoints.items()}
    return replace(derivation, adjoints=adjoints)


def term_text(term: Term, per_step: bool) -> str:
    """One term in the notation, with its step condition or sum over steps."""
    text = show(term.expr)
    if term.summed:
        text = show(Call("sum_t", (term.expr,)))
    if term.at is not None and per_step:
        text = f"[t = {term.at.text().strip('{}')}] {text}"  # the step as a value: T-3, not the subscript {T-3}
    return text


def adjoint_text(model: Model, adjoint: Adjoint, terms: Optional[List[Term]] = None) -> str:
    """``dL/dX = ...`` for one adjoint."""
    sym = model.symbols[adjoint.name]
    step = Step("rel", 0) if sym.per_step else None
    terms = adjoint.terms if terms is None else terms
    if sym.kind == "state":  # terms that exist only at t = 0 are shown with dL/dh_0
        terms = [t for t in terms if not (t.at is not None and t.at.kind == "abs" and t.at.offset == 0)]
    rhs = " + ".join(term_text(t, sym.per_step) for t in terms) or "0"
    return f"{show(Adj(adjoint.name, step))} = {rhs.replace(' + -', ' - ')}"


def boundary_note(adjoint: Adjoint) -> str:
    """``dL/dz_{T+1} = 0`` for the adjoints a recurrence reads past the last step."""
    notes = []
    for term in adjoint.terms:
        for a in adjoint_refs(term.expr):
            if a.step is not None and a.step.kind == "rel" and a.step.offset > 0:
                note = f"{show(Adj(a.name, Step('last', a.step.offset)))} = 0"
                if note not in notes:
                    notes.append(note)
    return ", ".join(notes)


def initial_state_text(model: Model, adjoint: Adjoint) -> Optional[str]:
    """``dL/dh_0 = ...``: the recurrence at t = 0, where only later steps contribute."""
    sym = model.symbols[adjoint.name]
    if sym.kind != "state":
        return None
    parts = [term_text(term, False) if term.summed else show(fix_steps(term.expr, 0))
             for term in initial_state_terms(adjoint)]
    rhs = " + ".join(parts) or "0"
    return f"{show(Adj(adjoint.name, Step('abs', 0)))} = {rhs}"


def format_show(model: Model, derivation: MatrixDerivation, proof: Optional[Proof]) -> str:
    """The text ``derive show`` prints."""
    lines = [f"model {model.name} ({model.path})"]
    if model.sizes:
        sizes = ", ".join(f"{k}={v}" for k, v in model.sizes.items())
        lines.append(f"sizes for numeric work: {sizes} (the derivation holds for every size)")
    lines += ["", "Forward equations"]
    rows = []
    for eq in model.equations:
        step = Step("rel", 0) if eq.per_step else None
        rows.append((f"({eq.number})", f"{model.display(eq.name, step)} = {show(eq.expr)}",
                     shape_text(model.symbols[eq.name].shape)))
    lines += _table(rows)
    lines += ["", "Gradients, denominator layout (dL/dX has the shape of X); backward order"]
    rows = []
    numbers = derivation.numbers()
    original, zero = derivation, zero_adjoints(derivation)
    derivation = shown_derivation(derivation)
    for name in derivation.order():
        adjoint = derivation.adjoints[name]
        shape = shape_text(model.symbols[name].shape)
        rows.append((f"({numbers[name]})", adjoint_text(model, adjoint), shape))
        note = boundary_note(adjoint)
        if note:
            rows.append(("", f"    with {note}", ""))
        if adjoint.generic:
            rows.append(("", f"    {adjoint.note}; before: {adjoint_text(model, adjoint, adjoint.generic)}", ""))
        initial = initial_state_text(model, adjoint)
        if initial:
            rows.append(("", f"    {initial}", shape))
    lines += _table(rows)
    if derivation.constants:
        names = ", ".join(show(Adj(n, Step("rel", 0) if model.symbols[n].per_step else None))
                          for n in derivation.constants)
        lines.append(f"constants written in place: {names}")
    dropped = sorted(zero & read_adjoints(original))
    if dropped:
        names = ", ".join(show(Adj(n, Step("rel", 0) if model.symbols[n].per_step else None)) for n in dropped)
        lines.append(f"identically zero (no chain of uses reaches L), so the terms through them are left out: {names}")
    lines.append("")
    if proof is None:
        lines.append("proof: skipped (--no-proof)")
        return "\n".join(lines)
    lines.append("Proof: every line above equals the exact elementwise derivation (the model unrolled "
                 "into SymPy scalars, reverse sweep by diff) entry by entry, at each step. " + method_text(proof))
    for p in proof.sizes:
        lines.append(_size_line(p))
    if proof.generic_sizes:
        lines.append("and the forms before the softmax + cross-entropy simplification:")
        for p in proof.generic_sizes:
            lines.append(_size_line(p))
    if proof.holds:
        lines.append("result: proved at every size above")
    else:
        lines.append("result: NOT PROVED")
        lines += [f"  {f}" for f in proof.failures()]
    return "\n".join(lines)


def method_text(proof: Proof) -> str:
    """How the entries of ``proof`` were shown equal, with the randomized test's error bound."""
    total, randomized = proof.entries, proof.randomized
    witness = "a 50-digit evaluation at a random point is a second witness."
    if randomized == 0:
        return "Each entry is a symbolic identity (SymPy); " + witness
    symbolic = total - randomized
    return (f"{randomized} of {total} entries were shown by a randomized identity test (both sides "
            f"evaluated exactly modulo the prime 2^61 - 1 at two independent random points; the chance that "
            f"a false identity passed is below {max(proof.failure_bound, 1e-300):.0e}), "
            f"{symbolic} as symbolic identities (SymPy); {witness} "
            f"(--symbolic-proof proves every entry with SymPy alone.)")


def _size_line(p) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in p.sizes.items())
    entries = sum(line.entries for line in p.lines)
    classes = ""
    if p.classes:
        classes = "; classes " + " ".join(f"{k}={v}" for k, v in p.classes.items())
        if len(classes) > 80:
            classes = classes[:77] + "..."
    state = "holds" if p.holds else "FAILS"
    return (f"  {sizes}: {entries} entries {state}, witness gap {p.witness_max_rel:.0e}, "
            f"{p.seconds:.1f} s{classes}")


def _table(rows) -> List[str]:
    width0 = max((len(r[0]) for r in rows), default=0)
    width1 = max((len(r[1]) for r in rows if r[2]), default=0)
    out = []
    for a, b, c in rows:
        if c:
            out.append(f"  {a.rjust(width0)} {b.ljust(width1)}   {c}")
        else:
            out.append(f"  {a.rjust(width0)} {b}")
    return out
