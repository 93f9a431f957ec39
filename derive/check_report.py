"""The output of ``derive check``: a per-claim listing with a summary line, or JSON."""

from __future__ import annotations

VERDICTS = ("holds", "layout", "factor", "partial", "shape", "wrong", "undecided")
HEADINGS = {
    "holds": "holds", "layout": "LAYOUT", "factor": "FACTOR", "partial": "PARTIAL",
    "shape": "SHAPE", "wrong": "WRONG", "undecided": "UNDECIDED",
}


def summary(results) -> dict:
    """Counts per verdict and the total."""
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    return {"claims": len(results), **counts}


def summary_line(results) -> str:
    s = summary(results)
    parts = [f"{s[v]} {v}" for v in VERDICTS if s[v]]
    status = "all claims hold" if s["holds"] == s["claims"] else \
        f"{s['claims'] - s['holds']} of {s['claims']} do not hold"
    return f"{s['claims']} claims: " + ", ".join(parts) + f" ({status})"


def listing(notes, results: list) -> str:
    """The human listing: one block per claim, then the summary line.

    Parameters
    ----------
    notes : ClaimsFile
        The checked file.
    results : list of Result
        The verdicts, in file order.
    """
    lines = [f"{notes.path}: model {notes.model.name}, {len(results)} claims"]
    for r in results:
        c = r.claim
        lines.append("")
        lines.append(f"{notes.path}:{c.line}:{c.column}: {HEADINGS[r.verdict]}: {c.text}")
        lines.append(f"    {r.explanation}")
        if r.verdict not in ("holds",) and r.truth and r.truth not in r.explanation:
            lines.append(f"    truth: {r.truth}")
        if r.repair and r.repair not in r.explanation:
            lines.append(f"    repair ({r.repair_edit}): {r.repair}")
    lines.append("")
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def result_dict(r) -> dict:
    """One claim's JSON object."""
    c = r.claim
    return {
        "line": c.line,
        "column": c.column,
        "text": c.text,
        "verdict": r.verdict,
        "explanation": r.explanation,
        "reading": r.reading,
        "dot_reading": r.dot_choices,
        "truth": r.truth,
        "repair": r.repair,
        "repair_edit": r.repair_edit,
        "counterexample": r.counterexample,
        "factor": r.factor,
        "missing": r.missing,
        "extra": r.extra,
        "shape": r.shape,
        "sizes_proved": r.sizes_proved,
        "entries_proved": r.entries_proved,
        "witness_gap": r.witness_gap,
        "seconds": round(r.seconds, 3),
    }


def json_document(notes, results) -> dict:
    """The ``--json`` document of INTERFACE.md."""
    s = summary(results)
    s["exit_status"] = 0 if s["holds"] == s["claims"] else 1
    return {"file": notes.path, "model": notes.model.name,
            "claims": [result_dict(r) for r in results], "summary": s}
