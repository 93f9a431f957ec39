"""``derive show``: the forward equations, every derived gradient with its shape, and the proof."""

from __future__ import annotations

from typing import List, Optional

from ..model.model import Model, shape_text
from ..notation.expr import Adj, Call, Step, adjoint_refs, fix_steps
from ..notation.printer import show
from .matrix import Adjoint, MatrixDerivation, Term, initial_state_terms
from .prove import Proof


def term_text(term: Term, per_step: bool) -> str:
    """One term in the notation, with its step condition or sum over steps."""
    text = show(term.expr)
    if term.summed:
        text = show(Call("sum_t", (term.expr,)))
    if term.at is not None and per_step:
        text = f"[t = {term.at.text()}] {text}"
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
    lines.append("")
    if proof is None:
        lines.append("proof: skipped (--no-proof)")
        return "\n".join(lines)
    lines.append("Proof: every line above equals the exact elementwise derivation (the model unrolled "
                 "into SymPy scalars, reverse sweep by diff) entry by entry, at each step, as a symbolic "
                 "identity; a 50-digit evaluation at a random point is a second witness.")
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
