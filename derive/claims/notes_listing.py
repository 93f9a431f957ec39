"""The output of ``derive check NOTES`` in notes mode: every equation found, in the order of the notes.

A checked equation is shown as the claims listing shows a claim
(:func:`derive.claims.listing.claim_block`), with the equation as written,
the claim it was read as and the readings made; an equation or line not
checked is shown with its reason and a caret under its column.
"""

from __future__ import annotations

from ..errors import shown_line
from .listing import claim_block, exit_status, json_document, summary_line

KIND_HEADINGS = {
    "not_gradient": "not checked (not a gradient of the loss)",
    "where": "not checked (a where definition)",
    "not_value": "not checked (a shape, not a value)",
    "jacobian": "not checked (holds a Jacobian)",
    "not_equation": "not checked (no equation)",
    "not_read": "NOT READ",
}


def notes_exit_status(notes, results) -> int:
    """As for a claims file, with an equation that cannot be read counted as one that does not hold.

    0 when every checked equation holds and none was left unread; 2 when no
    equation could be checked; 3 for a bug of derive's; else 1.
    """
    status = exit_status(results)
    if not results:
        return 2
    if status == 0 and any(f.kind == "not_read" for f in notes.findings):
        return 1
    return status


def _caret(path: str, f, lines: list[str]) -> list[str]:
    text = lines[f.line - 1] if 0 < f.line <= len(lines) else ""
    shown, at = shown_line(text.rstrip("\r\n"), max(f.col, 1))
    return [f"    {shown}", f"    {' ' * (at - 1)}^"]


def counts(notes, results) -> dict:
    """How many equations were found, checked, not checked (by kind) and not read."""
    kinds = {}
    for f in notes.findings:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    not_read = kinds.get("not_read", 0)
    return {"found": len(results) + len(notes.findings), "checked": len(results),
            "not_checked": len(notes.findings) - not_read, "not_read": not_read, "by_kind": kinds}


def notes_summary_line(notes, results) -> str:
    """``25 found: 11 checked, 13 not checked, 1 not read`` and the verdicts of those checked."""
    n = counts(notes, results)
    head = (f"{n['found']} derivative equations and mentions found: {n['checked']} checked, "
            f"{n['not_checked']} not checked (Jacobians, where definitions, shapes, mentions), "
            f"{n['not_read']} not read")
    if not results:
        return head
    line = summary_line(results)
    if n["not_read"] and line.endswith("(all claims hold)"):  # an equation not read is not one that holds
        line = line[:-len("(all claims hold)")] + (f"(every equation checked holds, but {n['not_read']} could not "
                                                    "be read: see above)")
    return head + "\n" + line


def notes_listing(notes, results, model_note: str) -> str:
    """The human listing of a notes check: every finding in the order of the notes, then the summary.

    Parameters
    ----------
    notes : NotesRead
        The notes as read.
    results : list of Result
        The verdicts of ``notes.claims_file.claims``, in order.
    model_note : str
        Where the model came from (``--model``, or the notes' ``model`` line).
    """
    path = notes.claims_file.path
    source = notes.source_lines
    out = [f"{path}: notes, model {notes.claims_file.model.name} ({model_note})"]
    out += [f"reading: {r}" for r in notes.file_readings]
    entries = [((r.claim.line, r.claim.column, 0), "claim", (r, n)) for r, n in zip(results, notes.notes)]
    entries += [((f.line, f.col, 1), "finding", f) for f in notes.findings]
    for _, what, item in sorted(entries, key=lambda e: e[0]):
        out.append("")
        if what == "claim":
            r, n = item
            said = [f"read as: {r.claim.text}"] + ([f"readings: {'; '.join(n.readings)}"] if n.readings else [])
            out += claim_block(path, r, n.written, said)
        else:
            out.append(f"{path}:{item.line}:{item.col}: {KIND_HEADINGS[item.kind]}: {item.text}")
            out.append(f"    {item.reason}")
            out += _caret(path, item, source)
    out.append("")
    out.append(notes_summary_line(notes, results))
    return "\n".join(out) + "\n"


def notes_json(notes, results, limits: dict, model_note: str) -> dict:
    """The ``--json`` document: the claims document of the checked equations, with the notes' places,
    the readings, and every finding not checked."""
    doc = json_document(notes.claims_file, results, limits)
    doc["mode"] = "notes"
    doc["model_from"] = model_note
    doc["readings"] = list(notes.file_readings)
    for item, n in zip(doc["claims"], notes.notes):
        item["written"] = n.written
        item["read_as"] = item["text"]
        item["readings"] = list(n.readings)
    doc["not_checked"] = [{"line": f.line, "column": f.col, "text": f.text, "kind": f.kind, "reason": f.reason}
                          for f in notes.findings]
    n = counts(notes, results)
    doc["summary"].update({"equations_found": n["found"], "checked": n["checked"],
                           "not_checked": n["not_checked"], "not_read": n["not_read"],
                           "exit_status": notes_exit_status(notes, results)})
    return doc

