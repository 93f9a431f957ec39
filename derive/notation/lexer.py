"""Tokens of the notation, one line at a time, with 1-based columns."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import List, Optional

from ..errors import SourceText

# Unicode spellings folded onto their ASCII operators.
UNICODE_OPS = {
    "⊙": "*", "−": "-", "⋅": "dot", "·": "dot", "ᵀ": "T", "×": "×", "^": "**",
}

SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_FROM_SUPERSCRIPT = str.maketrans(SUPERSCRIPT_DIGITS, "0123456789")
MAX_DIGITS = 30
MAX_EXPONENT = 300

_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_SUBSCRIPTED = rf"{_IDENT}(?:\{{[^}}]*\}})?"
DERIVATIVE = re.compile(rf"[d∂]({_SUBSCRIPTED})\s*/\s*[d∂]({_SUBSCRIPTED})")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
IDENT = re.compile(_IDENT)
CARET_T = re.compile(r"\^\s*(?:T|\{\s*T\s*\})(?![A-Za-z0-9_{])")
"""``W^T`` and ``W^{T}``: the transpose (the notes' spelling), never a power of the size T."""
RANGE_HEAD = re.compile(r"(?:sum|Σ)_\{[^}]*\}")
"""The head of a range sum that :data:`STEP_RANGE` could not read (``sum_{kk=1}``, ``sum_{k}``)."""
STEP_RANGE = re.compile(r"(?:sum|Σ)_\{\s*([A-Za-z])\s*=\s*([^{}=]*?)\s*\}\s*\^\s*(?:\{([^{}]*)\}|([A-Za-z0-9]+))")
"""A range sum's head in a claim: ``sum_{k=1}^{t}`` (also ``Σ_{k=1}^{T}``, ``sum_{k=2}^T``)."""


@dataclass
class Token:
    """``kind`` is NAME, NUM, OP, DERIV, SUMRANGE (claims) or END; ``sub`` holds a braced subscript."""

    kind: str
    text: str
    col: int
    sub: Optional[str] = None
    sub_col: int = 0
    den: Optional["Token"] = None  # DERIV: the denominator as a NAME token
    upper: Optional[str] = None  # SUMRANGE: the upper bound (``text`` is the variable, ``sub`` the lower)
    upper_col: int = 0


def _name_token(line: str, start: int, src: SourceText, lineno: int):
    """An identifier at ``start`` with its optional ``_{...}`` subscript."""
    m = IDENT.match(line, start)
    text, end = m.group(), m.end()
    if text.endswith("_") and end < len(line) and line[end] == "{":
        close = line.find("}", end)
        if close < 0:
            raise src.error("unclosed subscript '{': expected '}'", (lineno, end + 1))
        return Token("NAME", text[:-1], start + 1, line[end + 1:close], end + 2), close + 1
    return Token("NAME", text, start + 1), end


def tokenize(line: str, lineno: int, src: SourceText, claims: bool = False) -> List[Token]:
    """Split one line (comment already removed) into tokens.

    With ``claims`` true, ``dA/dB`` (and ``∂A/∂B``) is one DERIV token.
    """
    tokens: List[Token] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if claims and ch in "d∂":
            m = DERIVATIVE.match(line, i)
            if m:
                num, _ = _name_token(line, i + 1, src, lineno)
                den_start = m.start(2)
                den, _ = _name_token(line, den_start, src, lineno)
                tok = Token("DERIV", m.group(), i + 1, num.sub, num.sub_col, den)
                tok.text = num.text
                tokens.append(tok)
                i = m.end()
                continue
        if claims and ch in "sΣ" and (m := STEP_RANGE.match(line, i)):
            upper, upper_col = (m.group(3), m.start(3) + 1) if m.group(3) is not None else (m.group(4), m.start(4) + 1)
            tokens.append(Token("SUMRANGE", m.group(1), i + 1, m.group(2), m.start(2) + 1,
                                upper=upper, upper_col=upper_col))
            i = m.end()
            continue
        if claims and ch in "sΣ" and (m := RANGE_HEAD.match(line, i)):
            raise src.error(f"cannot read the range sum {m.group()}: it takes one letter, a lower bound and "
                            "an upper bound, as in sum_{k=1}^{t} or sum_{t=2}^{T}", (lineno, i + 1))
        if ch == "Σ" and line.startswith("Σ_t", i):
            tokens.append(Token("NAME", "sum_t", i + 1))
            i += 3
            continue
        if ch.isascii() and ch.isalpha():
            tok, i = _name_token(line, i, src, lineno)
            tokens.append(tok)
            continue
        if ch in SUPERSCRIPT_DIGITS:  # h_t² is h_t**2
            j = i
            while j < len(line) and line[j] in SUPERSCRIPT_DIGITS:
                j += 1
            if j - i > MAX_DIGITS:
                raise src.error(f"number too long (at most {MAX_DIGITS} digits)", (lineno, i + 1))
            tokens.append(Token("OP", "**", i + 1))
            tokens.append(Token("NUM", line[i:j].translate(_FROM_SUPERSCRIPT), i + 1))
            i = j
            continue
        if ch.isascii() and ch.isdigit():
            m = NUMBER.match(line, i)
            text = m.group()
            mantissa, _, exponent = text.lower().partition("e")
            if len(mantissa) > MAX_DIGITS or (exponent and abs(int(exponent[:6])) > MAX_EXPONENT):
                raise src.error(f"number too long or too large (at most {MAX_DIGITS} digits and an "
                                f"exponent of at most {MAX_EXPONENT})", (lineno, i + 1))
            tokens.append(Token("NUM", text, i + 1))
            i = m.end()
            continue
        if line.startswith("**", i):
            tokens.append(Token("OP", "**", i + 1))
            i += 2
            continue
        if ch == "." and line.startswith(".T", i) and not (
                i + 2 < len(line) and (line[i + 2].isalnum() or line[i + 2] == "_")):
            tokens.append(Token("OP", "T", i + 1))
            i += 2
            continue
        if ch == "^" and (m := CARET_T.match(line, i)):  # W^T is W's transpose, not W ** T
            tokens.append(Token("OP", "T", i + 1))
            i = m.end()
            continue
        if ch in UNICODE_OPS:
            tokens.append(Token("OP", UNICODE_OPS[ch], i + 1))
            i += 1
            continue
        if ch in "@*+-/()[],=:;<>":
            tokens.append(Token("OP", ch, i + 1))
            i += 1
            continue
        name = unicodedata.name(ch, "")
        shown = f"{ch!r} (U+{ord(ch):04X}{' ' + name if name else ''})"
        raise src.error(f"unexpected character {shown}", (lineno, i + 1))
    tokens.append(Token("END", "", len(line) + 1))
    return tokens


def strip_comment(line: str) -> str:
    """The line without its ``#`` comment."""
    cut = line.find("#")
    return line if cut < 0 else line[:cut]
