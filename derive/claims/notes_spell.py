"""Reading the notes' spellings in the claims notation, saying each reading made.

:class:`Speller` turns one piece of an equation found in the notes
(:mod:`derive.claims.notes_scan`) into claim text: the model's names for the
notes' (``Whh`` as ``W_hh``, ``h2`` as ``h_2``, ``L2`` as the loss at step 2),
the notation's functions (``one_hot`` as ``onehot``, ``tanh^2(z)`` as
``tanh(z)**2``, ``matmul(a, b)`` as ``a @ b``), powers (``^2``, ``²``), ``sum t
from 1 to 2`` as a range sum, and the notes' Jacobians replaced by what their
``where`` clause defines.  Each output character keeps the notes column it
came from, so verdicts point into the notes.  Text is only ever matched and
copied: nothing in it is evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model.model import Model
from ..notation.expr import FUNCTIONS

TOKEN = re.compile(r"""
    (?P<DERIV>[d∂](?P<num>[A-Za-z][A-Za-z0-9_]*(?:\{[^{}]*\})?)\s*/\s*[d∂](?P<den>[A-Za-z][A-Za-z0-9_]*(?:\{[^{}]*\})?))
  | (?P<NAME>[A-Za-z][A-Za-z0-9_]*(?:\{[^{}]*\})?)
  | (?P<NUM>[0-9]+(?:\.[0-9]+)?)
  | (?P<SUPER>[⁰¹²³⁴⁵⁶⁷⁸⁹]+)
  | (?P<TRANSPOSE>\.T(?![A-Za-z0-9_]))
  | (?P<OP>\*\*|[-+*/@()\[\],=:^⋅·⊙×−ᵀ<>])
  | (?P<OTHER>\S)
""", re.VERBOSE)
_SUPER = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
STEP_TAIL = re.compile(r"^(?P<stem>[A-Za-z](?:[A-Za-z0-9_]*?[A-Za-z])?)_?(?P<step>[0-9]+|t|T)$")
FUNCTION_SPELLINGS = {"one_hot": "onehot"}
PRODUCT_OPS = ("@", "⋅", "·", "⊙")
MAX_CHOICES = 4
"""Most readings one equation is checked under when its names are ambiguous."""


@dataclass
class Tok:
    """A token of the notes (``col`` 1-based, ``width`` its length there) or one the reading inserts."""

    kind: str
    text: str
    col: int
    space: bool = False
    width: int = 1
    num: str = ""
    den: str = ""
    cols: list[int] | None = None
    """The notes column of each character, for text put in from elsewhere (a ``where`` definition)."""


@dataclass
class Spelled:
    """A piece of an equation in the claims notation.

    ``cols`` gives, for each character of ``text``, the notes column it
    stands for.  ``jacobians`` lists the derivatives of something other than
    the loss that no ``where`` clause defines (as written, with their column);
    ``problems`` what cannot be written as a claim at all.
    """

    text: str
    cols: list[int]
    readings: list[str] = field(default_factory=list)
    jacobians: list[tuple[str, int]] = field(default_factory=list)
    problems: list[tuple[str, int]] = field(default_factory=list)


def tokens_of(text: str, col: int) -> list[Tok]:
    """The tokens of ``text``, whose first character is at notes column ``col``."""
    out, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        m = TOKEN.match(text, i)
        kind = "DERIV" if m.group("DERIV") else m.lastgroup
        tok = Tok(kind, m.group(), col + i, i > 0 and text[i - 1].isspace(), len(m.group()))
        if kind == "DERIV":
            tok.num, tok.den = m.group("num"), m.group("den")
        out.append(tok)
        i = m.end()
    return out


def _key(name: str) -> str:
    return name.replace("_", "")


def _matching(raw: str, pool) -> list[str]:
    """The names of ``pool`` that are ``raw`` with underscores removed; case aside only if none is."""
    same = sorted({p for p in pool if _key(p) == _key(raw)})
    return same or sorted({p for p in pool if _key(p).lower() == _key(raw).lower()})


def _close(toks: list[Tok], i: int) -> int | None:
    """The index of the bracket closing the ``(`` at ``i``."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


def _matmul(toks: list[Tok], i: int):
    """``matmul(a, b)`` as ``(a @ b)`` (each operand bracketed when it holds an operator)."""
    end = _close(toks, i + 1)
    if end is None:
        return None
    depth, comma = 0, []
    for j in range(i + 2, end):
        depth += toks[j].text in "([" and toks[j].kind == "OP"
        depth -= toks[j].text in ")]" and toks[j].kind == "OP"
        if depth == 0 and toks[j].text == ",":
            comma.append(j)
    if len(comma) != 1:
        return None
    a, b = toks[i + 2:comma[0]], toks[comma[0] + 1:end]
    if not a or not b:
        return None

    def wrap(part, col):
        if any(t.kind == "OP" and t.text in "+-*/@⋅·⊙×" for t in part):
            return [Tok("OP", "(", col)] + part + [Tok("OP", ")", part[-1].col)]
        return part

    b = [Tok(b[0].kind, b[0].text, b[0].col, True, b[0].width, b[0].num, b[0].den)] + b[1:]
    new = [Tok("OP", "(", toks[i].col, toks[i].space)] + wrap(a, a[0].col) + \
          [Tok("OP", "@", toks[comma[0]].col, True)] + wrap(b, b[0].col) + [Tok("OP", ")", toks[end].col)]
    return new, end


class Speller:
    """Reads the notes' spellings against one model (see the module docstring).

    Parameters
    ----------
    model : Model
        The model the notes are checked against.
    star_dot : bool
        Read ``*`` as the ambiguous product ``⋅`` (when the notes' equations
        write no other product, ``*`` may stand for either).
    """

    def __init__(self, model: Model, star_dot: bool):
        self.model = model
        self.star_dot = star_dot
        self.globals = [n for n, s in model.symbols.items() if not s.per_step]
        self.bases = sorted({s.base for s in model.symbols.values() if s.per_step})
        self.choices: dict[int, int] = {}
        self.choice_points: dict[int, list[str]] = {}
        self.readings: list[str] = []

    # -- names ------------------------------------------------------------
    def _choose(self, raw: str, col: int, options: list[str]) -> str:
        if len(options) > 1:
            self.choice_points[col] = options
            pick = options[self.choices.get(col, 0) % len(options)]
            self.say(f"{raw} at column {col} is ambiguous ({' or '.join(options)}; each is tried): "
                      f"read as {pick}")
            return pick
        return options[0]

    def say(self, text: str) -> None:
        """Keep ``text`` among the readings of the equation being read (once)."""
        if text not in self.readings:
            self.readings.append(text)

    def name(self, raw: str, col: int) -> str:
        """The model's spelling of a name as the notes write it (unknown names are kept)."""
        model = self.model
        if "{" in raw or raw in model.symbols or raw in model.sizes or raw in FUNCTIONS:
            return raw
        if raw in self.bases or STEP_TAIL.match(raw) and raw.rsplit("_", 1)[0] in self.bases and "_" in raw:
            return raw
        whole = _matching(raw, self.globals)
        if whole:
            got = self._choose(raw, col, whole)
            if len(whole) == 1:
                self.say(f"{raw} as {got}")
            return got
        m = STEP_TAIL.match(raw)
        if m:
            stems = _matching(m.group("stem"), self.bases)
            if stems:
                base = self._choose(raw, col, stems)
                got = f"{base}_{m.group('step')}"
                if len(stems) == 1:
                    self.say(f"{raw} as {got}")
                return got
        return raw

    def loss(self, raw: str, col: int) -> tuple[str | None, int | None]:
        """``(claim spelling, fixed T)`` when ``raw`` names the loss, else ``(None, None)``.

        ``L2`` is the loss at step 2: ``L_2`` when the model has a per-step
        loss, else the model's loss ``L`` with ``T = 2`` (its loss is at the
        last step).
        """
        loss = self.model.loss
        per_step = f"{loss}_t" in self.model.symbols
        if raw == loss or per_step and re.fullmatch(rf"{re.escape(loss)}_(?:t|T|[0-9]+|\{{[^{{}}]*\}})", raw):
            return raw, None
        if _matching(raw, [loss]):
            self.say(f"{raw} as {loss}")
            return loss, None
        m = STEP_TAIL.match(raw.replace("{", "").replace("}", ""))
        if not m or not _matching(m.group("stem"), [loss]):
            return None, None
        step = m.group("step")
        if per_step:
            got = f"{loss}_{step}"
            if got != raw:
                self.say(f"{raw} as {got}, the loss at step {step}")
            return got, None
        if step.isdigit() and int(step) >= 1:
            self.say(f"{raw} as {loss}, the model's loss, which is at its last step: T = {int(step)}")
            return loss, int(step)
        return raw, None

    def derivative(self, tok: Tok) -> tuple[str, str, bool, int | None]:
        """``(claim text, key, of the loss, fixed T)`` of a derivative token.

        ``key`` names the derivative the same way wherever the notes write it
        (``dy/dh_2``), to match a Jacobian with its ``where`` definition.
        """
        d = tok.text[0]
        den = self.name(tok.den, tok.col + max(len(tok.text) - len(tok.den), 0))
        loss, pin = self.loss(tok.num, tok.col + 1)
        num = loss if loss is not None else self.name(tok.num, tok.col + 1)
        return f"{d}{num}/{d}{den}", f"d{num}/d{den}", loss is not None, pin

    # -- expressions ------------------------------------------------------
    def spell(self, text: str, col: int, where: dict[str, Spelled] | None = None) -> Spelled:
        """One side of an equation (at notes column ``col``) in the claims notation."""
        out = Spelled("", [])
        toks = self._rewrite(tokens_of(text, col), out, where or {})
        for tok in toks:
            if tok.space and out.text:
                out.text += " "
                out.cols.append(tok.col)
            out.cols += tok.cols if tok.cols is not None else \
                [tok.col + min(k, max(tok.width, 1) - 1) for k in range(len(tok.text))]
            out.text += tok.text
        return out

    def _rewrite(self, toks: list[Tok], out: Spelled, where: dict[str, Spelled]) -> list[Tok]:
        res: list[Tok] = []
        i = 0
        while i < len(toks):
            tok = toks[i]
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if tok.kind == "DERIV":
                text, key, of_loss, _ = self.derivative(tok)
                if of_loss:
                    res.append(Tok("DERIV", text, tok.col, tok.space, tok.width))
                elif key in where:
                    res += self._defined(tok, key, where[key], out, res, nxt)
                else:
                    out.jacobians.append((tok.text, tok.col))
                    res.append(Tok("DERIV", text, tok.col, tok.space, tok.width))
                i += 1
                continue
            if tok.kind == "NAME" and nxt is not None and nxt.text == "/" and i + 2 < len(toks) \
                    and toks[i + 2].kind == "NAME" and toks[i + 2].text[:1] in "d∂" and len(toks[i + 2].text) > 1:
                key = f"d{self.name(tok.text, tok.col)}/d{self.name(toks[i + 2].text[1:], toks[i + 2].col)}"
                if key in where:  # ``h1/dWhh`` where the clause defines dh1/dWhh: the d is missing
                    self.say(f"{tok.text}/{toks[i + 2].text} as d{tok.text}/{toks[i + 2].text} (a d is missing)")
                    res += self._defined(tok, key, where[key], out, res, toks[i + 3] if i + 3 < len(toks) else None,
                                         f"d{tok.text}/{toks[i + 2].text}")
                    i += 3
                    continue
            if tok.kind in ("NAME", "OTHER") and tok.text in ("sum", "Σ") and self._sum_from(toks, i, res):
                i += 6
                continue
            if tok.kind == "NAME" and tok.text == "matmul" and nxt is not None and nxt.text == "(":
                spliced = _matmul(toks, i)
                if spliced is not None:
                    self.say("matmul(a, b) as a @ b")
                    toks = toks[:i] + spliced[0] + toks[spliced[1] + 1:]
                    continue
            if tok.kind == "NAME" and nxt is not None and nxt.text in ("^", "**", "(") or tok.kind == "NAME" \
                    and nxt is not None and nxt.kind == "SUPER":
                moved = self._function_power(toks, i)
                if moved is not None:
                    toks = toks[:i] + moved[0] + toks[moved[1] + 1:]
                    i += 1
                    res.append(Tok("NAME", FUNCTION_SPELLINGS.get(tok.text, tok.text), tok.col, tok.space,
                                   tok.width))
                    continue
            if tok.kind == "NAME" and tok.text in FUNCTION_SPELLINGS:
                self.say(f"{tok.text} as {FUNCTION_SPELLINGS[tok.text]}")
                res.append(Tok("NAME", FUNCTION_SPELLINGS[tok.text], tok.col, tok.space, tok.width))
            elif tok.kind == "NAME" and tok.text in ("if", "otherwise") or tok.text in "{}":
                out.problems.append(("a case-by-case definition ({ ... if ...}) cannot be written as a claim",
                                     tok.col))
                res.append(tok)
            elif tok.kind == "NAME" and self._step_back(toks, i, res):
                i += 3
                continue
            elif tok.kind == "NAME":
                res.append(Tok("NAME", self.name(tok.text, tok.col), tok.col, tok.space, tok.width))
            elif tok.kind == "SUPER":
                digits = tok.text.translate(_SUPER)
                self.say(f"{tok.text} as **{digits}")
                res += [Tok("OP", "**", tok.col, False, tok.width), Tok("NUM", digits, tok.col, False, tok.width)]
            elif tok.text == "^" and not (nxt is not None and nxt.text == "T"):
                self.say(f"^{nxt.text if nxt is not None and nxt.kind == 'NUM' else ''} as "
                          f"**{nxt.text if nxt is not None and nxt.kind == 'NUM' else ''} (a power)")
                res.append(Tok("OP", "**", tok.col, tok.space))
            elif tok.text == "*" and self.star_dot:
                res.append(Tok("OP", "⋅", tok.col, tok.space))
            else:
                res.append(tok)
            i += 1
        if self.star_dot and any(t.text == "*" for t in toks):
            cols = ", ".join(str(t.col) for t in toks if t.text == "*")
            self.say(f"* (column {cols}) as ⋅, either product (each reading is tried)")
        out.readings = self.readings
        return res

    def _defined(self, tok: Tok, key: str, spelled: Spelled, out: Spelled, before: list[Tok],
                 after: Tok | None, written: str | None = None) -> list[Tok]:
        """A Jacobian replaced by its ``where`` definition.

        A definition of one token goes in as it is; a product of factors
        standing as the last factors of a product goes in as those factors,
        without brackets, as the notes' own next line writes it
        (``dL2/dh2 ⋅ dh2/dWhh`` with ``dh2/dWhh = squared(1 - h2) ⋅ transpose(h1)``
        as ``dL2/dh2 ⋅ squared(1 - h2) ⋅ transpose(h1)``); anything else in brackets.
        """
        for said in spelled.readings:
            self.say(said)
        out.jacobians += spelled.jacobians
        out.problems += spelled.problems
        body = Tok("SUB", spelled.text, tok.col, tok.space, cols=list(spelled.cols))
        inner = tokens_of(spelled.text, 1)
        written = written or tok.text
        if len(inner) == 1:
            self.say(f"{written} as {spelled.text}, which its where clause defines")
            return [body]
        depth, sums = 0, False
        for k, t in enumerate(inner):
            depth += t.text in "([" and t.kind == "OP"
            depth -= t.text in ")]" and t.kind == "OP"
            sums = sums or (depth == 0 and k > 0 and t.text in "+-−" and t.kind == "OP")
        product_before = bool(before) and before[-1].kind == "OP" and before[-1].text in ("⋅", "*", "@", "·")
        ends = after is None or after.kind == "OP" and after.text in ("⋅", "*", "@", "·", "+", "-", ")")
        if product_before and ends and not sums:
            self.say(f"{written} as {spelled.text}, which its where clause defines (its factors put in as "
                      "the product's last factors, without brackets)")
            return [body]
        self.say(f"{written} as ({spelled.text}), which its where clause defines")
        body.space = False
        return [Tok("OP", "(", tok.col, tok.space), body, Tok("OP", ")", tok.col + tok.width - 1)]

    def _sum_from(self, toks: list[Tok], i: int, res: list[Tok]) -> bool:
        """``sum t from 1 to 2`` as the range sum ``sum_{t=1}^{2}``."""
        if i + 5 >= len(toks):
            return False
        var, frm, lo, to, hi = toks[i + 1:i + 6]
        bound = lambda b: b.kind == "NUM" and b.text.isdigit() or b.text in ("t", "T")
        if not (var.kind == "NAME" and len(var.text) == 1 and var.text != "T" and frm.text == "from"
                and to.text == "to" and bound(lo) and bound(hi)):
            return False
        text = f"sum_{{{var.text}={lo.text}}}^{{{hi.text}}}"
        self.say(f"{toks[i].text} {var.text} from {lo.text} to {hi.text} as {text}")
        res.append(Tok("NAME", text, toks[i].col, toks[i].space, hi.col + hi.width - toks[i].col))
        return True

    def _function_power(self, toks: list[Tok], i: int):
        """``tanh^2(z)`` (or ``tanh²(z)``) as ``tanh(z)**2``: the power of the value, not of the function."""
        fn = FUNCTION_SPELLINGS.get(toks[i].text, toks[i].text)
        if fn not in FUNCTIONS or toks[i + 1].text == "(":
            return None
        if toks[i + 1].kind == "SUPER":
            power, at = toks[i + 1].text.translate(_SUPER), i + 2
        elif i + 3 < len(toks) and toks[i + 2].kind == "NUM" and toks[i + 2].text.isdigit():
            power, at = toks[i + 2].text, i + 3
        else:
            return None
        if at >= len(toks) or toks[at].text != "(":
            return None
        end = _close(toks, at)
        if end is None:
            return None
        written = "".join(t.text for t in toks[i:at])
        self.say(f"{written}(...) as {fn}(...)**{power}")
        spliced = [toks[i]] + toks[at:end + 1] + [Tok("OP", "**", toks[i + 1].col), Tok("NUM", power, toks[i + 1].col)]
        return spliced, end

    def _step_back(self, toks: list[Tok], i: int, res: list[Tok]) -> bool:
        """``ht-1`` (no spaces) as ``h_{t-1}``: the state one step back, not ``h_t - 1``."""
        if i + 2 >= len(toks):
            return False
        tok, sign, k = toks[i:i + 3]
        m = STEP_TAIL.match(tok.text)
        if not (m and m.group("step") == "t" and sign.text in "-+" and sign.kind == "OP" and not sign.space
                and k.kind == "NUM" and k.text.isdigit() and not k.space and _matching(m.group("stem"), self.bases)):
            return False
        base = self._choose(tok.text, tok.col, _matching(m.group("stem"), self.bases))
        text = f"{base}_{{t{sign.text}{k.text}}}"
        self.say(f"{tok.text}{sign.text}{k.text} as {text} (a step {'back' if sign.text == '-' else 'on'}; "
                  f"not {base}_t {sign.text} {k.text})")
        res.append(Tok("NAME", text, tok.col, tok.space, k.col + len(k.text) - tok.col))
        return True


def writes_products(texts) -> bool:
    """Whether the notes' equations write a product other than ``*`` (then ``*`` is read as written)."""
    return any(op in t for t in texts for op in PRODUCT_OPS) or any("matmul" in t for t in texts)
