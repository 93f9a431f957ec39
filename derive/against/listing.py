"""The text listing and the JSON document of ``derive against``."""

from __future__ import annotations

from typing import List

from .result import AgainstResult


def _g(x: float) -> str:
    return f"{x:.3g}"


def format_result(result: AgainstResult) -> str:
    """The plain-text listing: the loss, a row a parameter, the worst entries, the T sweep, the slip, the verdict."""
    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    lines = [f"derive against {result.model}: {result.source}",
             f"case: seed {result.seed}, sizes {sizes}",
             f"rule: an entry agrees when |yours - derive's| <= {result.rtol:g} |derive's| + {result.atol:g} S "
             "+ 64 eps (S the largest |derive's| entry)"]
    if result.loss is None:
        lines.append(f"loss: derive's {result.reference_loss:.10g}; yours not given")
    else:
        verdict = "agrees" if result.loss_agrees else "DIFFERS (the forward pass)"
        lines.append(f"loss: yours {result.loss:.10g}, derive's {result.reference_loss:.10g}: {verdict}")
    width = max([len(r.name) for r in result.rows] + [9])
    lines.append(f"{'parameter':{width}s}  entries  max abs error  max rel error  verdict")
    for r in result.rows:
        verdict = "agrees" if r.passed else f"WRONG ({r.wrong} of {r.entries} {'entry' if r.entries == 1 else 'entries'})"
        lines.append(f"{r.name:{width}s}  {r.entries:7d}  {_g(r.max_abs_error):>13s}  {_g(r.max_rel_error):>13s}  "
                     f"{verdict}")
    for r in result.rows:
        if r.worst:
            shown = "; ".join(f"{r.name}{w['index']} yours {_g(w['yours'])}, derive's {_g(w['derivation'])}"
                              for w in r.worst[:3])
            lines.append(f"worst of {r.name}: {shown}")
    if result.sweep is not None:
        lines.append(f"steps: {result.sweep.summary()}")
        firsts = [(w, result.sweep.first_wrong_of(w)) for w in result.wrong]
        lines.append("first wrong length per parameter: " + ", ".join(
            f"{w} T = {t}" if t is not None else f"{w} not up to T = {max(result.sweep.lengths, default=0)}"
            for w, t in firsts))
        for t, why in result.sweep.skipped:
            lines.append(f"T = {t} skipped: {why}")
    if result.adjoints is not None:
        lines.append(f"adjoints: {result.adjoints.sentence()}")
    if result.naming is not None:
        lines += [f"slip: {s}" for s in result.naming.sentences(result.wrong)]
    lines += [f"note: {n}" for n in result.notes]
    if result.passed:
        lines.append("result: AGREES: every gradient compared is derive's" +
                     ("" if result.loss is None else ", and the loss"))
    else:
        what: List[str] = list(result.wrong) + ([] if result.loss_agrees is not False else ["the loss"])
        if result.adjoints is not None and result.adjoints.first_wrong is not None:
            what.append(result.adjoints.first_wrong)
        lines.append(f"result: WRONG: {', '.join(what)}")
    return "\n".join(lines)


def to_json(result: AgainstResult) -> dict:
    """The ``--json`` document (keys documented in docs/against.md)."""
    out = {
        "model": result.model, "source": result.source, "sizes": result.sizes, "seed": result.seed,
        "rtol": result.rtol, "atol": result.atol, "loss": result.loss, "reference_loss": result.reference_loss,
        "loss_agrees": result.loss_agrees, "passed": result.passed, "status": result.status,
        "wrong": result.wrong,
        "parameters": [{"name": r.name, "entries": r.entries, "max_abs_error": r.max_abs_error,
                        "max_rel_error": r.max_rel_error, "wrong_entries": r.wrong, "passed": r.passed,
                        "worst": r.worst} for r in result.rows],
        "notes": result.notes, "seconds": result.seconds,
    }
    if result.sweep is not None:
        out["sweep"] = {"lengths": result.sweep.lengths,
                        "wrong": {str(t): w for t, w in result.sweep.wrong.items()},
                        "first_wrong": result.sweep.first_wrong, "summary": result.sweep.summary(),
                        "first_wrong_of": {w: result.sweep.first_wrong_of(w) for w in result.wrong},
                        "skipped": [{"T": t, "why": why} for t, why in result.sweep.skipped]}
    else:
        out["sweep"] = None
    out["naming"] = None if result.naming is None else result.naming.to_json()
    out["adjoints"] = None if result.adjoints is None else result.adjoints.to_json()
    return out
