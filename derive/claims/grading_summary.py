"""The summary of a class's grading: a table for a person, CSV and JSON for a program.

Every format holds the same facts: each file's status and score (claims
holding over claims), each claim's verdict, the slips most common across the
class (the claims that do not hold, grouped by the claimed derivative and
verdict) and the slips the repairs undo (grouped by the kind of edit).
Nothing depends on timing or on the order the files finished in.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from .grading import STATUSES, FileGrade, batch_exit_status
from .listing import HEADINGS

FORMATS = ("table", "csv", "json")

CSV_COLUMNS = ("record", "file", "status", "message", "model", "holds", "claims", "score", "exit_status",
               "line", "column", "derivative", "verdict", "repair_edit", "repair", "repair_kinds", "text", "kind",
               "count", "files")
"""The CSV header.  ``record`` says what a row is: ``class`` (the totals), ``file``, ``claim``,
``slip`` or ``repair``; each kind fills its own columns and leaves the others empty."""

TABLE_TOP = 10
"""Slips and repairs the table shows (the CSV and JSON hold them all)."""

TABLE_CLAIMS = 40
"""Claims a table row lists by line; more are counted."""

TABLE_MESSAGE_LINES = 6
"""Lines of a file's message the table shows."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A CSV text cell starting with one of these gets a leading apostrophe, so that a spreadsheet
shows it as text and never runs it as a formula (the JSON summary has the exact text)."""


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself (an escape, a control
    character, a lone surrogate from a file name that is not UTF-8) as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _score(holds: int, claims: int) -> float | None:
    return round(holds / claims, 4) if claims else None


def slips(grades: list[FileGrade]) -> list[dict]:
    """The claims that do not hold, grouped by claimed derivative and verdict, most common first.

    Parameters
    ----------
    grades : list of FileGrade
        The class's grades.

    Returns
    -------
    list of dict
        ``derivative`` (None for claim lines that cannot be read),
        ``verdict``, ``count`` (claims) and ``files`` (files with one or
        more), by falling count, then files, derivative and verdict.
    """
    return _grouped(grades, lambda c: None if c["verdict"] == "holds" else (c["derivative"], c["verdict"]),
                    ("derivative", "verdict"))


def repairs(grades: list[FileGrade]) -> list[dict]:
    """The slips the repairs undo, by kind (``a missing transpose``), most common first.

    A claim whose repair takes several edits counts once for each kind of
    slip among them.

    Returns
    -------
    list of dict
        ``kind``, ``count`` (claims) and ``files``, ordered as :func:`slips`.
    """
    return _grouped(grades, lambda c: [(kind,) for kind in c.get("repair_kinds") or ()], ("kind",), many=True)


def _grouped(grades, key_of, names, many: bool = False) -> list[dict]:
    counts: dict[tuple, int] = defaultdict(int)
    files: dict[tuple, set] = defaultdict(set)
    for g in grades:
        for claim in g.claims or ():
            keys = key_of(claim) if many else [key_of(claim)]
            for key in keys:
                if key is None:
                    continue
                counts[key] += 1
                files[key].add(g.file)
    order = sorted(counts, key=lambda k: (-counts[k], -len(files[k]), tuple("" if v is None else v for v in k)))
    return [{**dict(zip(names, k)), "count": counts[k], "files": len(files[k])} for k in order]


def totals(grades: list[FileGrade]) -> dict:
    """The class's totals: files by status, claims and claims holding, the exit status."""
    out = {"files": len(grades), **{s: sum(g.status == s for g in grades) for s in STATUSES}}
    out["claims"] = sum(g.total or 0 for g in grades)
    out["holds"] = sum(g.holds or 0 for g in grades)
    out["score"] = _score(out["holds"], out["claims"])
    out["exit_status"] = batch_exit_status(grades)
    return out


def file_dict(g: FileGrade) -> dict:
    """One file of the JSON summary."""
    return {"file": g.file, "status": g.status, "message": g.message, "model": g.model, "holds": g.holds,
            "claims": g.total, "score": None if g.total is None else _score(g.holds, g.total),
            "exit_status": g.exit_status, "results": g.claims}


def json_summary(grades: list[FileGrade], limits: dict | None = None) -> dict:
    """The ``--summary json`` document (see docs/grading.md).

    Parameters
    ----------
    grades : list of FileGrade
        The class's grades, in the order graded.
    limits : dict, optional
        The limits every file was checked under.
    """
    doc = {"files": [file_dict(g) for g in grades], "slips": slips(grades), "repairs": repairs(grades),
           "totals": totals(grades)}
    if limits is not None:
        doc["limits"] = dict(limits)
    return doc


def csv_summary(grades: list[FileGrade]) -> str:
    """The ``--summary csv`` text: one header (:data:`CSV_COLUMNS`), one row per record.

    Text cells that a spreadsheet would take for a formula start with an
    apostrophe (see :data:`FORMULA_STARTS`).
    """
    t = totals(grades)
    rows = [{"record": "class", "holds": t["holds"], "claims": t["claims"], "score": t["score"],
             "exit_status": t["exit_status"], "files": t["files"]}]
    for g in grades:
        rows.append({"record": "file", "file": g.file, "status": g.status, "message": g.message, "model": g.model,
                     "holds": g.holds, "claims": g.total, "score": None if g.total is None else _score(g.holds, g.total),
                     "exit_status": g.exit_status})
    for g in grades:
        for c in g.claims or ():
            rows.append({"record": "claim", "file": g.file, **{k: c[k] for k in (
                "line", "column", "derivative", "verdict", "repair_edit", "repair", "text")},
                "repair_kinds": "; ".join(c.get("repair_kinds") or ())})
    rows += [{"record": "slip", **s} for s in slips(grades)]
    rows += [{"record": "repair", "kind": r["kind"], "count": r["count"], "files": r["files"]}
             for r in repairs(grades)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _verdicts_cell(g: FileGrade) -> str:
    claims = g.claims or []
    cell = " ".join(f"{c['line']}:{HEADINGS[c['verdict']]}" for c in claims[:TABLE_CLAIMS])
    if len(claims) > TABLE_CLAIMS:
        cell += f" ... and {len(claims) - TABLE_CLAIMS} more"
    return cell


def _columns(rows: list[tuple], right: tuple[int, ...]) -> list[str]:
    """Rows of cells padded to columns; the columns ``right`` (numbers) are aligned right."""
    widths = [max(len(str(row[k])) for row in rows) for k in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(v).rjust(w) if k in right else str(v).ljust(w) for k, (v, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def table_summary(grades: list[FileGrade]) -> str:
    """The ``--summary table`` text, for a person: totals, one row per file, messages, slips, repairs."""
    t = totals(grades)
    by_status = ", ".join(f"{t[s]} {s.replace('_', ' ')}" for s in STATUSES if t[s])
    head = (f"{t['files']} files: {by_status}; {t['holds']} of {t['claims']} claims hold; "
            f"exit status {t['exit_status']}")
    lines = [head, ""]
    rows = [("file", "status", "score", "verdicts by line")]
    for g in grades:
        score = "-" if g.total is None else f"{g.holds}/{g.total}"
        rows.append((printable(g.file), g.status.replace("_", " "), score, _verdicts_cell(g)))
    lines += _columns(rows, (2,))
    troubled = [g for g in grades if g.status != "ok"]
    if troubled:
        lines += ["", "files not graded in full:"]
        for g in troubled:
            text = (g.message or g.status).splitlines()
            lines += ["  " + printable(line) for line in text[:TABLE_MESSAGE_LINES]]
            if len(text) > TABLE_MESSAGE_LINES:
                lines.append(f"  ... {len(text) - TABLE_MESSAGE_LINES} more lines (--summary json has them)")
    for title, found, head, cells in (
            ("most common slips (claims that do not hold, by claimed derivative and verdict):", slips(grades),
             ("claims", "files", "verdict", "derivative"),
             lambda s: (s["count"], s["files"], s["verdict"], printable(s["derivative"] or "(line not read)"))),
            ("slips the repairs undo, most common first (by kind of edit):", repairs(grades),
             ("claims", "files", "kind"), lambda r: (r["count"], r["files"], printable(r["kind"])))):
        lines += ["", title]
        if not found:
            lines.append("  none")
            continue
        lines += ["  " + line for line in _columns([head] + [cells(x) for x in found[:TABLE_TOP]], (0, 1))]
        if len(found) > TABLE_TOP:
            lines.append(f"  ... and {len(found) - TABLE_TOP} more (--summary csv or json has them all)")
    return "\n".join(lines) + "\n"
