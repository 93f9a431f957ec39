"""The report's one link to the claims checker: which sources are claims files, and their verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from ..notation.expr import Node


def is_claims_file(source: str) -> bool:
    """Whether ``source`` names a hand-derivation file (it has ``claim`` lines)."""
    from ..model.build import builtin_names
    if source in builtin_names():
        return False
    path = Path(source)
    if not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "claim" and not (len(words) > 1 and words[1].startswith("=")):
            return True
    return False


@dataclass
class ClaimRow:
    """What the report shows of one claim (the adapter's output)."""

    line: int
    text: str
    lhs: Optional[Node]
    rhs: Optional[Node]
    verdict: str
    explanation: str
    truth: Optional[str]
    repair: Optional[str]
    repair_edit: Optional[str]
    sizes_proved: List[Dict[str, int]]


def check_claims(path: str, progress: Optional[TextIO] = None, allow_model_path: bool = False):
    """The one place that talks to the claims checker: ``(model, [ClaimRow])``.

    Parameters
    ----------
    path : str
        The claims file.
    progress : text stream, optional
        Passed to the checker, which says there what it is checking.
    allow_model_path : bool
        Let the file's ``model PATH`` leave its folder.

    Returns
    -------
    tuple
        The model the claims are about, and one :class:`ClaimRow` per claim.

    Raises
    ------
    InputError
        When the claims file cannot be read.
    """
    from ..claims.read import read_claims
    from ..claims.verdicts import check_file
    notes = read_claims(path, allow_model_path=allow_model_path)
    results = check_file(notes, progress=progress)
    rows = []
    for r in results:
        c = r.claim
        rows.append(ClaimRow(c.line, c.text, c.lhs, c.rhs, r.verdict, r.explanation or "",
                             getattr(r, "truth", None) or getattr(r, "truth_terms", None),
                             getattr(r, "repair", None),
                             getattr(r, "repair_edit", None), list(getattr(r, "sizes_proved", []) or [])))
    return notes.model, rows


def read_expression(text: str) -> Optional[Node]:
    """A claim-side expression (``W_hy.T @ dL/do_t``) as a tree, or None when it does not parse."""
    from ..errors import SourceText
    from ..notation.parse import parse_statements
    try:
        statements = parse_statements(SourceText(f"claim dL/dL = {text}", "<truth>"), claims=True)
    except Exception:
        return None
    if len(statements) != 1 or statements[0].expr is None:
        return None
    return statements[0].expr
