"""Notes as claims: each derivative equation found in the notes becomes a claim, placed in the notes.

:func:`read_notes` finds the equations (:mod:`derive.claims.notes_scan`),
reads their spellings (:mod:`derive.claims.notes_spell`), writes each one as
a ``claim`` line in memory, and parses and resolves it with the claims
reader (:func:`derive.claims.read.read_claim_line`).  Every position in the
resolved claim is then moved back to the notes' line and column, so the
verdicts of :func:`derive.claims.verdicts.check_file` point into the notes.
What is not checked is kept as a :class:`Finding` with its reason.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace

from ..errors import InputError, SourceText
from ..model.model import Model
from ..model.sizes import check_sizes
from ..notation.expr import Node
from ..notation.parse import MAX_STATEMENTS
from .notes_scan import UNDERSCORE_PARTS, Found, Span, scan_notes
from .notes_spell import MAX_CHOICES, Spelled, Speller, Tok, tokens_of, writes_products
from .read import MAX_CLAIMS, Claim, ClaimResolver, ClaimsFile, read_claim_line, uses_fixed_step

RESTATING = re.compile(r"^(?:thus|so|hence|therefore|then|i\.e\.)\b", re.IGNORECASE)
SHAPE_TUPLE = re.compile(r"^\(\s*[A-Za-z0-9_]+\s*(?:,\s*[A-Za-z0-9_]+\s*)+\)$")
USE = re.compile(r"^\(\s*t\s*(?:=\s*([A-Za-z0-9+\- ]*?))?\s*\)$")

KINDS = ("not_gradient", "where", "not_value", "jacobian", "not_equation", "not_read")
"""What a finding is: a Jacobian's equation, a ``where`` definition, a shape written for a value,
an equation with an undefined Jacobian, a derivative outside any equation (none of these is
checked; none is an error), or an equation that cannot be read (counted as not holding)."""


@dataclass(frozen=True)
class Finding:
    """Something in the notes that looks like a derivative and is not checked, with the reason."""

    line: int
    col: int
    text: str
    kind: str
    reason: str


@dataclass
class NotesClaim:
    """A checked equation: where it is in the notes, as written, and the readings made."""

    line: int
    col: int
    written: str
    readings: list[str]


@dataclass
class NotesRead:
    """The notes read against a model: the claims to check and everything else found."""

    claims_file: ClaimsFile
    notes: list[NotesClaim]
    findings: list[Finding]
    file_readings: list[str] = field(default_factory=list)
    source_lines: list[str] = field(default_factory=list)

    @property
    def found(self) -> int:
        """How many derivative equations (and mentions) were found."""
        return len(self.notes) + len(self.findings)


def _moved(node: Node, at) -> Node:
    """``node`` with every position moved by ``at`` (a claim line's (line, column) to the notes')."""
    kids = node.children()
    if kids:
        node = node.rebuild(tuple(_moved(k, at) for k in kids))
    if getattr(node, "pos", None):
        node = replace(node, pos=at(node.pos))
    return node


class _Reader:
    """One notes file's equations as claims (see :func:`read_notes`)."""

    def __init__(self, src: SourceText, model: Model):
        self.src = src
        self.model = model
        self.findings: list[Finding] = []
        self.lines: list[tuple[str, list[tuple[int, int]], NotesClaim]] = []
        self.pinned: tuple[int, int] | None = None  # (T, line) fixed by a loss at a step (L2)
        self.speller: Speller | None = None
        self.previous: tuple[str, str | None] | None = None  # the last gradient and its (t = k)

    def note(self, line: int, col: int, text: str, kind: str, reason: str) -> None:
        self.findings.append(Finding(line, col, text, kind, reason))

    def lhs(self, f: Found) -> tuple[str, str, bool, int | None, Tok]:
        if f.spelled_as_name:
            m = UNDERSCORE_PARTS.match(f.lhs.text)
            tok = Tok("DERIV", f.lhs.text, f.lhs.col, width=len(f.lhs.text), num=m.group(1), den=m.group(2))
            text, key, of_loss, pin = self.speller.derivative(tok)
            self.speller.say(f"{f.lhs.text} as {text}")
            return text, key, of_loss, pin, tok
        tok = tokens_of(f.lhs.text, f.lhs.col)[0]
        return (*self.speller.derivative(tok), tok)

    def pin(self, f: Found, pin: int | None) -> str | None:
        """None, or why the loss step ``pin`` cannot be read (another step already fixed T)."""
        if pin is None:
            return None
        if self.pinned is None:
            self.pinned = (pin, f.line)
            self.model.sizes["T"] = pin
            check_sizes(self.model, {k: v for k, v in self.model.sizes.items() if v is not None})
            return None
        if self.pinned[0] != pin:
            return (f"the loss at step {pin}: the model's loss is at its last step only, and line "
                    f"{self.pinned[1]} made that T = {self.pinned[0]}")
        return None

    def where(self, f: Found) -> dict[str, Spelled]:
        defs = {}
        for d, rhs in f.where:
            toks = tokens_of(d.text, d.col)
            if len(toks) != 1 or toks[0].kind != "DERIV" or rhs is None:
                self.note(d.line, d.col, d.text, "not_read", "a where clause that does not define a derivative "
                          "(dX/dY = ...): not read")
                continue
            text, key, of_loss, _ = self.speller.derivative(toks[0])
            if of_loss:
                self.note(d.line, d.col, f"{d.text} = {rhs.text}", "where", "a gradient of the loss defined in a "
                          "where clause: not checked (write it as an equation of its own to check it)")
                continue
            self.speller.readings = []
            defs[key] = self.speller.spell(rhs.text, rhs.col)
            self.note(d.line, d.col, f"{d.text} = {rhs.text}", "where", (
                f"{text} is a Jacobian, not a gradient of the loss: not checked; read as the definition "
                "that its equation's right side uses"))
        return defs

    def equation(self, f: Found) -> None:
        self.speller.readings, self.speller.choices, self.speller.choice_points = [], {}, {}
        defs = self.where(f)
        self.speller.readings = []
        written = f.text.text if f.text else f.lhs.text
        if f.spelled_as_name and not UNDERSCORE_PARTS.match(f.lhs.text):
            self.note(f.line, f.lhs.col, written, "not_read", f"{f.lhs.text} is no derivative name: not read")
            return
        lhs_text, _, of_loss, pin, _ = self.lhs(f)
        if not of_loss:
            self.note(f.line, f.lhs.col, written, "not_gradient",
                      f"{f.lhs.text} is not a gradient of the loss (a Jacobian): not checked")
            return
        if f.entry is not None:
            self.note(f.line, f.lhs.col, written, "not_read", (
                f"{f.lhs.text}{f.entry.text} is one entry of a gradient; a claim writes the whole gradient: "
                "not read"))
            return
        why = self.pin(f, pin)
        if why is not None:
            self.note(f.line, f.lhs.col, written, "not_read", f"{f.lhs.text} is {why}: not read")
            return
        use, carried = self.use(f, lhs_text)
        self.previous = (lhs_text, use)
        for k, part in enumerate(f.parts):
            col = f.lhs.col if k == 0 else part.col
            shown = f"{f.lhs.text}{' ' + f.use.text if f.use else ''} = {part.text}"
            if not part.text:
                self.note(f.line, col, written, "not_read", "nothing after '=': not read")
            elif SHAPE_TUPLE.match(part.text):
                self.note(f.line, part.col, shown, "not_value",
                          f"{part.text} is a shape (rows, columns), not a value: not checked")
            else:
                self.part(f, part, col, shown, defs, use, carried)

    def use(self, f: Found, lhs_text: str) -> tuple[str | None, str | None]:
        """The claim's ``(t = k)``, and the reading when a restating ``Thus,`` carries it over."""
        if f.use is not None:
            m = USE.match(f.use.text)
            return (f"(t = {m.group(1)})" if m and m.group(1) else "(t)"), None
        if self.previous and RESTATING.match(f.lead) and self.previous[0] == lhs_text and self.previous[1]:
            return self.previous[1], (f"{self.previous[1]} carried over from the equation before: "
                                      f"'{f.lead}' restates it")
        return None, None

    def part(self, f: Found, part: Span, col: int, shown: str, defs, use, carried) -> None:
        speller = self.speller
        speller.readings, speller.choices, speller.choice_points = [], {}, {}
        self.lhs(f)
        first = speller.spell(part.text, part.col, defs)
        prose = None
        if first.problems:  # prose after the equation may hold what no equation does (tanh' in words)
            cut = _first_separator(part.text, 0, len(part.text))
            if cut is not None and part.text[:cut].strip():
                prose = part.text[cut:].strip()
                part = Span(part.text[:cut].rstrip(), part.line, part.col)
                speller.readings, speller.choices, speller.choice_points = [], {}, {}
                first = speller.spell(part.text, part.col, defs)
        if first.problems:
            reason, at = first.problems[0]
            self.note(f.line, at, shown, "not_read", f"{reason}: not read")
            return
        if first.jacobians:
            jac, at = first.jacobians[0]
            self.note(f.line, at, shown, "jacobian", (
                f"{jac} is a Jacobian (a derivative of something other than the loss) that no where clause "
                "defines; a claim writes gradients of the loss only: not checked"))
            return
        points = sorted(speller.choice_points.items())
        combos = list(itertools.islice(itertools.product(*[range(len(o)) for _, o in points]), MAX_CHOICES))
        for combo in combos:
            speller.readings = []
            speller.choices = {c: k for (c, _), k in zip(points, combo)}
            lhs_text, _, _, _, tok = self.lhs(f)
            rhs = speller.spell(part.text, part.col, defs)
            readings = list(speller.readings) + ([carried] if carried else [])
            if prose:
                readings.append(f"'{prose}' after the equation read as prose, not as part of it")
            text = f"claim {lhs_text}" + (f" {use}" if use else "") + " = "
            cols = [f.lhs.col] * 6 + [tok.col + min(i, tok.width - 1) for i in range(len(lhs_text))]
            cols += [(f.use.col if f.use else f.lhs.col)] * (len(text) - len(cols))
            self.lines.append((text + rhs.text, [(f.line, c) for c in cols + rhs.cols],
                               NotesClaim(f.line, col, shown, readings)))

    def claims(self, max_claims: int) -> tuple[list[Claim], list[NotesClaim]]:
        if len(self.lines) > max_claims:
            line, col = self.lines[max_claims][1][0]
            raise self.src.error(f"more than {max_claims} derivative equations to check in one file (the limit of "
                                 "--max-claims); split the file or raise the limit", (line, col))
        synthetic = SourceText("\n".join(text for text, _, _ in self.lines), self.src.path)
        resolver = ClaimResolver(synthetic, self.model)
        claims, notes = [], []
        for i, (text, cols, note) in enumerate(self.lines, start=1):
            def at(pos, cols=cols):
                return cols[min(max(pos[1], 1), len(cols)) - 1] if pos and cols else pos
            try:
                claim = read_claim_line(synthetic, i, resolver)
            except InputError as err:
                claim = _without_prose_tail(self.src.path, self.model, text, err, note)
                if claim is None:
                    line, col = at((err.line, err.column)) if err.line else (note.line, note.col)
                    self.note(line, col, note.written, "not_read", f"{err.message}: not read")
                    continue
            claims.append(Claim(note.line, note.col, claim.text, _moved(claim.lhs, at), _moved(claim.rhs, at),
                                self.src.lines[note.line - 1], fixed_T=self.pinned is not None))
            notes.append(note)
        return claims, notes


PROSE_TAIL = re.compile(r"\s*(?:[,;'\"]|<-|--|—|\.(?:\s|$)|[A-Za-z]{3,}(?:\s|$))")
"""What starts the prose that follows an equation on its line: a comma, an arrow, a quote, a word."""


def _first_separator(text: str, start: int, before: int):
    """The first comma, semicolon or arrow outside brackets in ``text[start:before]`` (``before``: a character
    the lexer refused, since the prose after an equation may hold one, as in ``tanh'``), or None."""
    depth = 0
    for i in range(start, before):
        ch = text[i]
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and (ch in ",;" or text.startswith(("<-", "--"), i)):
            return i
    return None


def _without_prose_tail(path: str, model: Model, text: str, err: InputError, note: NotesClaim):
    """The claim read from ``text`` cut where prose starts after a whole equation, or None.

    ``dL/dz_t = dL/dh_t * (1 - h_t**2), same thing`` stops at its comma: what comes before is read
    as the equation (and must read in full), and the reading says what was left out as prose.
    """
    if not err.line or err.column <= 1:
        return None
    cuts = [err.column - 1] if PROSE_TAIL.match(text, err.column - 1) else []
    cuts.append(_first_separator(text, text.find("=") + 1, err.column - 1))  # after the claim's own '='
    for cut in cuts:
        if cut is None:
            continue
        head, tail = text[:cut].rstrip(), text[cut:].strip()
        one = SourceText(head, path)
        try:
            claim = read_claim_line(one, 1, ClaimResolver(one, model))
        except InputError:
            continue
        note.readings.append(f"'{tail}' after the equation read as prose, not as part of it")
        return claim
    return None


def read_notes(src: SourceText, model: Model, max_claims: int = MAX_CLAIMS,
               max_findings: int = MAX_STATEMENTS) -> NotesRead:
    """Every derivative equation of the notes, as claims on ``model`` placed in the notes.

    Parameters
    ----------
    src : SourceText
        The notes.
    model : Model
        The model the notes are about (its sizes may be changed: ``L2`` on a
        model whose loss is at its last step fixes T = 2).
    max_claims : int
        The most claims to check.
    max_findings : int
        The most equations (each right side of a chain and each ``where``
        definition counted) and mentions of derivatives the notes may hold.

    Returns
    -------
    NotesRead
        The claims (their positions in the notes), the readings made, and
        every finding not checked, with its reason.

    Raises
    ------
    InputError
        When the notes hold more than ``max_claims`` equations to check, or
        more than ``max_findings`` equations and mentions.
    """
    found, mentions = scan_notes(src.lines)
    places = sorted([(f.line, p.col) for f in found for p in f.parts + [d for d, _ in f.where]] +
                    [(m.line, m.col) for m in mentions])
    if len(places) > max_findings:
        extra = places[max_findings]
        raise src.error(f"more than {max_findings:,} derivative equations and mentions in one file: split it", extra)
    texts = [p.text for f in found for p in f.parts] + [r.text for f in found for _, r in f.where if r]
    reader = _Reader(src, model)
    reader.speller = Speller(model, star_dot=not writes_products(texts))
    for f in found:
        reader.equation(f)
    for m in mentions:
        reader.note(m.line, m.col, m.text, m.kind, m.reason)
    claims, notes = reader.claims(max_claims)
    order = sorted(range(len(claims)), key=lambda i: (claims[i].line, claims[i].column))
    claims, notes = [claims[i] for i in order], [notes[i] for i in order]
    pinned = {}
    if model.has_steps and "T" in model.sizes and any(uses_fixed_step(c) for c in claims):
        pinned["T"] = model.sizes["T"]
    file_readings = []
    if reader.speller.star_dot and any("*" in t for t in texts):
        file_readings.append("these notes write * for every product (no @, ⋅ or matmul in their equations), so "
                             "* is read as ⋅, whose kind the shapes decide: each reading is tried")
    if reader.pinned:
        file_readings.append(f"T = {reader.pinned[0]}: line {reader.pinned[1]} writes the loss at step "
                             f"{reader.pinned[0]}, and {model.name}'s loss is at its last step")
    findings = sorted(reader.findings, key=lambda x: (x.line, x.col))
    return NotesRead(ClaimsFile(src.path, model, claims, pinned), notes, findings, file_readings, src.lines)
