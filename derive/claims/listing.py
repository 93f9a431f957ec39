"""The output of ``derive check``: a per-claim listing with a summary line, or JSON."""

from __future__ import annotations

VERDICTS = ("holds", "layout", "factor", "partial", "shape", "wrong", "undecided", "error")
HEADINGS = {
    "holds": "holds", "layout": "LAYOUT", "factor": "FACTOR", "partial": "PARTIAL",
    "shape": "SHAPE", "wrong": "WRONG", "undecided": "UNDECIDED", "error": "ERROR",
}


def summary(results) -> dict:
    """Counts per verdict and the total.

    Parameters
    ----------
    results : list of Result
        The verdicts.

    Returns
    -------
    dict
        ``claims`` (the total) and one count per verdict of :data:`VERDICTS`.
    """
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    return {"claims": len(results), **counts}


EXIT_INTERNAL = 3
"""As :data:`derive.cli.EXIT_INTERNAL`: a bug of derive's (here: while checking some claim)."""


def exit_status(results) -> int:
    """0 when every claim holds, 3 when a bug of derive's stopped a claim's check,
    2 when no claim could be read, else 1."""
    if any(getattr(r, "internal", None) for r in results):
        return EXIT_INTERNAL
    if results and all(r.verdict == "error" for r in results):
        return 2
    return 0 if all(r.verdict == "holds" for r in results) else 1


def summary_line(results) -> str:
    """``12 claims: 4 holds, 3 partial, 5 wrong (8 of 12 do not hold)``."""
    s = summary(results)
    parts = [f"{s[v]} {v}" for v in VERDICTS if s[v]]
    undecided = s.get("undecided", 0)  # not known to fail: counted apart, never among those that do not hold
    failing = s["claims"] - s["holds"] - undecided
    if s["holds"] == s["claims"]:
        status = "all claims hold"
    elif failing == 0:
        status = f"{undecided} of {s['claims']} undecided"
    else:
        status = f"{failing} of {s['claims']} do not hold" + (f", {undecided} undecided" if undecided else "")
    return f"{s['claims']} claims: " + ", ".join(parts) + f" ({status})"


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def listing(notes, results: list) -> str:
    """The human listing: one block per claim, then the summary line.

    A claim line that could not be read shows its error with the caret.

    Parameters
    ----------
    notes : ClaimsFile
        The checked file.
    results : list of Result
        The verdicts, in file order.
    """
    lines = [f"{notes.path}: model {notes.model.name}, {len(results)} claims"]
    numerator = sum(1 for r in results if r.verdict == "layout")
    if numerator >= 2:
        lines.append(f"{numerator} of the {len(results)} claims hold in numerator layout, where every gradient is "
                     "the transpose of this tool's (a row where ours is a column); each such claim's repair gives "
                     "it in denominator layout")
    for r in results:
        lines.append("")
        lines += claim_block(notes.path, r)
    lines.append("")
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def claim_block(path: str, r, text: str | None = None, notes: list[str] = ()) -> list[str]:
    """One claim's lines in the listing: its place and verdict, then the explanation, truth and repair.

    ``text`` replaces the claim's own text in the first line, and ``notes``
    come right under it (notes mode shows the equation as written, then the
    claim it was read as and the readings).
    """
    c = r.claim
    lines = [f"{path}:{c.line}:{c.column}: {HEADINGS[r.verdict]}: {c.text if text is None else text}"]
    lines += [f"    {note}" for note in notes]
    if r.verdict == "error" and c.error is not None:
        lines.append(_indent(c.error.format()))
        return lines
    lines.append(f"    {r.explanation}")
    if r.verdict not in ("holds",) and r.truth and r.truth not in r.explanation:
        lines.append(f"    truth: {r.truth}")
    terms = getattr(r, "truth_terms", None)
    if r.verdict not in ("holds",) and terms and terms not in r.explanation:
        lines.append(f"    truth, as derived terms (not written as a claim): {terms}")
    if r.repair and r.repair not in r.explanation:
        lines.append(f"    repair ({r.repair_edit}): {r.repair}")
    return lines


def result_dict(r) -> dict:
    """One claim's JSON object.

    ``error`` is null, or (verdict ``error``) the file, line, column and
    message of why the claim line cannot be read; ``limit`` names the limit
    that left a claim undecided (``claim_seconds``, ``seconds``, ``sizes``,
    ``memory``); ``internal_error`` is true when a bug of derive's did.
    """
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
        "truth_terms": getattr(r, "truth_terms", None),
        "repair": r.repair,
        "repair_edit": r.repair_edit,
        "repair_edits": list(r.repair_edits),
        "repair_kinds": list(r.repair_kinds),
        "repair_search": r.repair_search,
        "numerator_layout": r.numerator,
        "counterexample": r.counterexample,
        "factor": r.factor,
        "missing": r.missing,
        "extra": r.extra,
        "shape": r.shape,
        "sizes_proved": r.sizes_proved,
        "entries_proved": r.entries_proved,
        "witness_gap": r.witness_gap,
        "seconds": round(r.seconds, 3),
        "error": r.error,
        "limit": r.limit,
        "internal_error": bool(getattr(r, "internal", None)),
    }


def json_document(notes, results, limits: dict | None = None) -> dict:
    """The ``--json`` document of ``derive check`` (see docs/check.md).

    Parameters
    ----------
    notes : ClaimsFile
        The checked file.
    results : list of Result
        The verdicts, in file order.
    limits : dict, optional
        The limits the check ran under (``claim_seconds``, ``seconds``,
        ``max_claims``), shown as ``limits``.
    """
    s = summary(results)
    s["exit_status"] = exit_status(results)
    doc = {"file": notes.path, "model": notes.model.name,
           "claims": [result_dict(r) for r in results], "summary": s}
    if limits is not None:
        doc["limits"] = dict(limits)
    return doc
