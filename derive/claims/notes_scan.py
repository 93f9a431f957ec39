"""Finding the derivative equations in free-form notes (``derive check NOTES --model M``).

:func:`scan_notes` reads each line of the notes as text, never as code: it
finds ``dX/dY = ...`` and ``∂X/∂Y = ...`` (bold ``**...**`` markers, leading
words such as ``Thus,``, a step of use ``(t = 1)``, chains ``A = B = C``,
``where`` clauses, several equations on one line separated by commas) and
the spelled-out names ``dl_d_y = ...``.  A line that shows a derivative but
holds no equation is returned as a :class:`Mention` with the reason, so that
nothing that looks like a derivative is dropped unsaid.  The spellings inside
the equations are read later (:mod:`derive.claims.notes_spell`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..notation.parse import MAX_LINE

_NAME = r"[A-Za-z][A-Za-z0-9_]*(?:\{[^{}]*\})?"
SLASH_DERIVATIVE = rf"[d∂]{_NAME}\s*/\s*[d∂]{_NAME}"
"""``dL2/dWhh``, ``∂L_t/∂W_hy``, ``dL/dh_{t-1}``."""
UNDERSCORE_DERIVATIVE = r"d_?[A-Za-z0-9]{1,30}(?:_[A-Za-z0-9]{1,30}){0,4}?_d_?[A-Za-z][A-Za-z0-9_]{0,60}(?![A-Za-z0-9_])"
"""``dl_d_y_pred``, ``d_y_pred_d_w_hy``: a derivative spelled as one name (only before ``=``).
The bounds keep the search linear on a long identifier (which is then no derivative)."""
UNDERSCORE_PARTS = re.compile(r"d_?([A-Za-z0-9]{1,30}(?:_[A-Za-z0-9]{1,30}){0,4}?)_d_?([A-Za-z][A-Za-z0-9_]{0,60})$")

NAMED_EQUATION = re.compile(rf"(?<![A-Za-z0-9_]){UNDERSCORE_DERIVATIVE}\s*=")
LOOKS_LIKE = re.compile(r"(?<![A-Za-z0-9_])[d∂][A-Za-z0-9_{}]*\s*/\s*[d∂]")
"""What makes a line worth reading: a ``d?/d?`` or ``∂?/∂?`` anywhere in it."""
EQUATION_START = re.compile(
    rf"(?<![A-Za-z0-9_])(?P<deriv>{SLASH_DERIVATIVE}|{UNDERSCORE_DERIVATIVE})"
    r"(?P<entry>\s*\[[^\[\]]*\])?"
    r"(?P<use>\s*\(\s*t\s*(?:=\s*[A-Za-z0-9+\- ]*)?\))?"
    r"\s*=(?!=)")
BOLD = re.compile(r"\*\*(\s*[d∂][^*=]*?)\*\*")
WHERE = re.compile(r"(?<![A-Za-z0-9_])where(?![A-Za-z0-9_])")
WHERE_END = re.compile(r"(?<![A-Za-z0-9_])(?:where|and)$")
AND = re.compile(r"(?<![A-Za-z0-9_])and(?![A-Za-z0-9_])")

OPEN, CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Span:
    """A piece of one notes line: its text and where it starts (1-based line and column)."""

    text: str
    line: int
    col: int


@dataclass
class Found:
    """One derivative equation as written: ``lhs [entry] [use] = part = part ... where defs``.

    ``parts`` holds each right side of a chain ``A = B = C`` in order;
    ``where`` pairs each derivative a ``where`` clause defines with its
    definition (None when the clause has no ``=``); ``lead`` is the prose
    before the equation (``Thus,``).
    """

    line: int
    lhs: Span
    entry: Span | None
    use: Span | None
    parts: list[Span]
    where: list[tuple[Span, Span | None]] = field(default_factory=list)
    lead: str = ""
    text: Span | None = None

    @property
    def spelled_as_name(self) -> bool:
        """Whether the left side is one name such as ``dl_d_y_pred`` rather than ``dl/dy_pred``."""
        return "/" not in self.lhs.text


@dataclass(frozen=True)
class Mention:
    """A line (or part of one) that shows a derivative but holds no equation to read."""

    line: int
    col: int
    text: str
    reason: str
    kind: str = "not_equation"
    """``not_equation``, or ``not_read`` for a line too long to read."""


def split_top_level(text: str, pattern: re.Pattern) -> list[tuple[int, int]]:
    """The (start, end) offsets of ``text`` cut at matches of ``pattern`` outside brackets.

    An unclosed bracket keeps the rest of the line together (a case-by-case
    ``{ ... if ...`` definition stays one piece).
    """
    depth, cuts = 0, []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            m = pattern.match(text, i)
            if m and m.end() > i:
                cuts.append((m.start(), m.end()))
                i = m.end()
                continue
        i += 1
    pieces, start = [], 0
    for a, b in cuts:
        pieces.append((start, a))
        start = b
    pieces.append((start, len(text)))
    return pieces


SEGMENT_CUT = re.compile(r"[,;]")
EQUALS_CUT = re.compile(r"(?<![<>=!])=(?!=)")


def _equation_starts(seg: str) -> list[re.Match]:
    """The equations a piece of a line begins: its first ``dX/dY =``, then each one written
    after a finished expression (``dl_d_y = (O, B)  d_y_d_w = (B, H)``), not one a chain continues
    (``dL/do = dL/dy * dy/do = ...``)."""
    starts: list[re.Match] = []
    at = 0
    while (m := EQUATION_START.search(seg, at)) is not None:
        j = m.start() - 1
        while j >= 0 and seg[j].isspace():
            j -= 1
        after_word = j >= 0 and (seg[j].isalnum() or seg[j] in ")]}") and not WHERE_END.search(seg, max(0, j - 5),
                                                                                             j + 1)
        if not starts or (j < m.start() - 1 and after_word):
            starts.append(m)
        at = m.start() + 1
    return starts


def _span(line_text: str, lineno: int, start: int, end: int) -> Span | None:
    """The stripped piece ``line_text[start:end]`` (trailing ``,``, ``;``, ``:`` and ``.`` too)."""
    piece = line_text[start:end]
    stripped = piece.strip()
    while stripped and stripped[-1] in ",;:." and not stripped.endswith(".T"):
        stripped = stripped[:-1].rstrip()
    if not stripped:
        return None
    offset = start + (len(piece) - len(piece.lstrip()))
    return Span(stripped, lineno, offset + 1)


def _blank_bold(text: str) -> str:
    """``**∂L_t/∂W_hy** = ...`` with the bold markers made spaces (columns unchanged)."""
    out = list(text)
    for m in BOLD.finditer(text):
        out[m.start():m.start() + 2] = "  "
        out[m.end() - 2:m.end()] = "  "
    return "".join(out)


class _LineScanner:
    """Reads the equations of one line (see :func:`scan_notes`)."""

    def __init__(self, raw: str, lineno: int):
        self.raw = raw
        self.text = _blank_bold(raw)
        self.lineno = lineno
        self.found: list[Found] = []
        self.mentions: list[Mention] = []
        self.tail: list[int] | None = None  # [start, end, kind, index] of the piece a comma continues

    def run(self) -> None:
        pending_lead = []
        for start, end in split_top_level(self.text, SEGMENT_CUT):
            seg = self.text[start:end]
            if not seg.strip():
                continue
            starts = _equation_starts(seg)
            if starts:
                lead = " ".join(pending_lead + [seg[:starts[0].start()].strip()]).strip()
                pending_lead = []
                for k, m in enumerate(starts):
                    stop = starts[k + 1].start() if k + 1 < len(starts) else len(seg)
                    self._equation(start, start + stop, m, lead if k == 0 else "")
            elif self.tail is not None:
                self.tail[1] = end  # a comma inside the previous right side (``f(a, b)`` without brackets)
                self._refresh_tail()
            elif seg.strip():
                pending_lead.append(seg.strip() + ",")
                if LOOKS_LIKE.search(seg):
                    at = LOOKS_LIKE.search(seg).start()
                    self.mentions.append(Mention(self.lineno, start + at + 1, seg.strip(), no_equation(seg)))

    def _equation(self, seg_start: int, seg_end: int, m: re.Match, lead: str) -> None:
        line, n = self.text, self.lineno
        deriv = Span(m.group("deriv"), n, seg_start + m.start("deriv") + 1)
        entry = _span(line, n, seg_start + m.start("entry"), seg_start + m.end("entry")) \
            if m.group("entry") else None
        use = _span(line, n, seg_start + m.start("use"), seg_start + m.end("use")) if m.group("use") else None
        body_start = seg_start + m.end()
        body = line[body_start:seg_end]
        where_at = WHERE.search(body)
        rhs_end = body_start + (where_at.start() if where_at else len(body))
        parts = []
        for a, b in split_top_level(line[body_start:rhs_end], EQUALS_CUT):
            piece = _span(line, n, body_start + a, body_start + b)
            parts.append(piece if piece is not None else Span("", n, body_start + a + 1))
        found = Found(n, deriv, entry, use, parts, lead=lead)
        found.text = _span(line, n, seg_start + m.start("deriv"), seg_end)
        self.found.append(found)
        self.tail = [body_start + (split_top_level(line[body_start:rhs_end], EQUALS_CUT)[-1][0]),
                     rhs_end, 0, len(parts) - 1]
        if where_at:
            self._where(body_start + where_at.end(), seg_end, found)

    def _where(self, start: int, end: int, found: Found) -> None:
        for a, b in split_top_level(self.text[start:end], AND):
            piece = self.text[start + a:start + b]
            cut = split_top_level(piece, EQUALS_CUT)
            if len(cut) < 2:
                lhs = _span(self.text, self.lineno, start + a, start + b)
                if lhs is not None:
                    found.where.append((lhs, None))
                continue
            lhs = _span(self.text, self.lineno, start + a + cut[0][0], start + a + cut[0][1])
            rhs = _span(self.text, self.lineno, start + a + cut[-1][0], start + a + cut[-1][1])
            if lhs is not None:
                found.where.append((lhs, rhs))
                self.tail = [start + a + cut[-1][0], start + a + cut[-1][1], 1, len(found.where) - 1]
        self._refresh_text(found, end)

    def _refresh_text(self, found: Found, end: int) -> None:
        found.text = _span(self.text, self.lineno, found.lhs.col - 1, end)

    def _refresh_tail(self) -> None:
        start, end, kind, index = self.tail
        piece = _span(self.text, self.lineno, start, end)
        found = self.found[-1]
        if kind == 0 and piece is not None:
            found.parts[index] = piece
        elif kind == 1 and piece is not None:
            found.where[index] = (found.where[index][0], piece)
        self._refresh_text(found, end)


def scan_notes(lines: list[str]) -> tuple[list[Found], list[Mention]]:
    """Every derivative equation of the notes, and every line that shows a derivative but holds none.

    Parameters
    ----------
    lines : list of str
        The notes, one string a line (as :func:`derive.errors.split_lines` numbers them).

    Returns
    -------
    (list of Found, list of Mention)
        The equations in file order, and the derivatives outside any equation.
        A line with neither a ``d?/d?`` nor a spelled-out derivative before
        ``=`` is prose and gives nothing.
    """
    found, mentions = [], []
    for lineno, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE and LOOKS_LIKE.search(raw):
            at = LOOKS_LIKE.search(raw)
            mentions.append(Mention(lineno, at.start() + 1 if at else 1, raw[:60].strip() + "…", (
                f"a line of {len(raw):,} characters (at most {MAX_LINE:,}): not read"), "not_read"))
            continue
        if len(raw) > MAX_LINE or not LOOKS_LIKE.search(raw) and not NAMED_EQUATION.search(raw):
            continue
        scanner = _LineScanner(raw, lineno)
        scanner.run()
        found += scanner.found
        mentions += scanner.mentions
        if not scanner.found and not scanner.mentions:
            at = LOOKS_LIKE.search(raw)
            col = at.start() + 1 if at else 1
            mentions.append(Mention(lineno, col, raw.strip(), no_equation(raw)))
    return found, mentions


def no_equation(text: str) -> str:
    """Why a piece of text that mentions a derivative is not checked."""
    if "=" in text:
        return ("no equation of the form dX/dY = ... here (its '=' follows no derivative of one name by "
                "another), so not checked")
    return "a derivative with no '=' after it: not an equation, so not checked"
