"""Parse the notation into statements holding raw expression trees.

One statement a line (sizes, declarations, equations, claims); the
expressions in them are read by :mod:`derive.notation.expression_parser`.
No ``eval``, no ``sympify``; every node carries its (line, column).  Names
are resolved against the declarations later, in :mod:`derive.model.build`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Optional, Tuple

from ..errors import InputError, SourceText, split_lines
from .expr import Binary, Iverson, Node, walk
from .expression_parser import ExpressionParser
from .lexer import Token, strip_comment, tokenize

DECLARATION_KINDS = ("param", "input", "target", "state")


@dataclass
class Statement:
    """One line of a model or claims file."""

    kind: str  # size, param, input, target, state, equation, model, claim
    pos: Tuple[int, int]
    text: str
    name: str = ""
    name_pos: Tuple[int, int] = (0, 0)
    shape: Optional[tuple] = None
    classes: Optional[object] = None
    expr: Optional[Node] = None
    lhs: Optional[Node] = None
    sizes: List[tuple] = field(default_factory=list)
    init: Optional[Node] = None
    dim_pos: List[Tuple[int, int]] = field(default_factory=list)


MAX_SIZE = 10 ** 8
"""Largest size a model may declare."""

MAX_LINE = 10_000
"""Most characters of a statement (its comment aside): a longer one is not a hand-written line."""

MAX_TEXT = 1_000_000
"""Most characters of a model or claims file."""

MAX_STATEMENTS = 2_000
"""Most statements of a file: every later stage's work grows with them (a model has a few dozen)."""


class LineParser(ExpressionParser):
    """Parses the statements of one line (sizes, declarations, equations, claims)."""

    def dim(self, sums: bool = False):
        """A dimension and its position; with ``sums``, also a sum such as ``F + H`` or ``4*H``."""
        tok = self.tok
        if sums and (tok.kind == "NUM" and tok.text.isdigit() or self.at_op("(")
                     or tok.kind == "NAME" and tok.sub is None and tok.text != "x"):
            lin = self.dim_sum()
            if not lin.terms and not 1 <= lin.const <= MAX_SIZE:
                raise self.src.error(f"a dimension must be a whole number from 1 to {MAX_SIZE:,}", self.pos(tok))
            return lin.dim(), self.pos(tok)
        if tok.kind == "NUM" and tok.text.isdigit():
            if not 1 <= int(tok.text) <= MAX_SIZE:
                raise self.error(f"a dimension must be a whole number from 1 to {MAX_SIZE:,}")
            self.i += 1
            return int(tok.text), self.pos(tok)
        if tok.kind == "NAME" and tok.sub is None:
            self.i += 1
            return tok.text, self.pos(tok)
        raise self.error(f"expected a dimension (a size name or a number), found {self.describe(tok)}")

    def shape(self, st: Statement):
        rows, p1 = self.dim(sums=True)
        if self.tok.kind == "NAME" and self.tok.text == "x" or self.at_op("×"):
            self.i += 1
        elif self.tok.kind == "NAME" and self.tok.text.startswith("x") and self.tok.text[1:].isdigit():
            raise self.error("write a space on each side of 'x' in a shape (H x 1)")
        else:
            raise self.error(f"expected 'x' between the dimensions of a shape, found {self.describe(self.tok)}")
        cols, p2 = self.dim(sums=True)
        st.shape = (rows, cols)
        st.dim_pos = [p1, p2]

    def statement(self, keyword: Token, text: str) -> Statement:
        kind = keyword.text
        st = Statement(kind, self.pos(keyword), text)
        if kind == "size":
            self.i += 1
            while True:
                name = self.expect_name("a size name")
                self.expect_op("=", f" after size {name.text}")
                val = self.tok
                if val.kind != "NUM" or not val.text.isdigit() or int(val.text) < 1:
                    raise self.error("a size must be a whole number of at least 1")
                if int(val.text) > MAX_SIZE:
                    raise self.error(f"a size of at most {MAX_SIZE:,} (this is {len(val.text)} digits long)")
                self.i += 1
                st.sizes.append((name.text, int(val.text), self.pos(name)))
                if not self.at_op(","):
                    break
                self.i += 1
            self.expect_end()
            return st
        if kind in DECLARATION_KINDS:
            self.i += 1
            name = self.expect_name(f"a name after '{kind}'")
            if name.sub is not None:
                raise self.error("declare a per-step symbol with the suffix _t (x_t), not a braced step", name)
            st.name, st.name_pos = name.text, self.pos(name)
            self.expect_op(":", f" after {name.text}")
            if kind in ("target", "input") and self.tok.kind == "NAME" and self.tok.text == "class":
                self.i += 1
                st.classes, pos = self.dim()
                st.dim_pos = [pos]
                batch = 1
                if self.tok.kind == "NAME" and self.tok.text == "x" or self.at_op("×"):
                    self.i += 1
                    batch, bpos = self.dim()
                    st.dim_pos.append(bpos)
                st.shape = (1, batch)
            else:
                self.shape(st)
            if self.at_op("="):
                if kind != "state":
                    raise self.error(f"only a state takes an initial value; {name.text} is a {kind}")
                self.i += 1
                init = self.tok
                if not (init.kind == "NUM" and Fraction(init.text) == 0):
                    raise self.error("a state starts at 0 (give another h_0 in the data)")
                self.i += 1
            self.expect_end()
            return st
        if kind == "claim":
            self.i += 1
            if self.tok.kind != "DERIV":
                raise self.error(f"a claim starts with a derivative such as dL/dW_hh, found {self.describe(self.tok)}")
            st.lhs = self.primary()
            self.expect_op("=", " between the derivative and its value")
            if self.tok.kind == "END":
                raise self.error("expected the claimed value after '='")
            self.juxtaposed = True  # W_hy.T dL/dy: the notes' product without an operator
            st.expr = self.expression()
            self.expect_end()
            return st
        raise AssertionError(kind)

    def equation(self, text: str) -> Statement:
        name = self.tok
        st = Statement("equation", self.pos(name), text, name=name.text, name_pos=self.pos(name))
        self.i += 1
        if name.sub is not None:
            raise self.error("the left side of an equation is the symbol at step t (h_t), not another step", name)
        self.expect_op("=", f" after {name.text} (an equation is 'name = expression')")
        if self.tok.kind == "END":
            raise self.error("expected an expression after '='")
        st.expr = self.expression()
        self.expect_end()
        dot = next((n for n in walk(st.expr) if isinstance(n, Binary) and n.op == "dot"), None)
        if dot is not None:  # the notes' product: a claim may leave it open, an equation may not
            raise self.src.error("'⋅' is ambiguous in an equation: write @ for the matrix product or * for "
                                 "the elementwise one", dot.pos)
        bracket = next((n for n in walk(st.expr) if isinstance(n, Iverson)), None)
        if bracket is not None:  # the lexer reads '<' and '>' in claims only; '[t = T]' parses anyway
            raise self.src.error("an Iverson bracket [t = ...] belongs to claims: an equation is the same at "
                                 "every step (name the fixed step, as in h_T)", bracket.pos)
        return st


STATEMENT_KEYWORDS = ("size",) + DECLARATION_KINDS


def parse_statements(src: SourceText, claims: bool = False) -> List[Statement]:
    """Every statement of a file, in order.

    Parameters
    ----------
    src : SourceText
        The file's text.
    claims : bool
        Also accept ``model`` and ``claim`` lines (a hand derivation).

    Raises
    ------
    InputError
        At the first line that does not parse.
    """
    out = []
    if len(src.text) > MAX_TEXT:
        raise _too_large(src)
    for lineno, raw in enumerate(src.lines, start=1):
        line = strip_comment(raw)
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            raise src.error(f"line too long: {len(line):,} characters (at most {MAX_LINE:,}); "
                            "split it into named quantities", (lineno, MAX_LINE + 1))
        if len(out) == MAX_STATEMENTS:
            column = len(line) - len(line.lstrip()) + 1
            raise src.error(f"more than {MAX_STATEMENTS:,} statements in one file (a model is a few dozen "
                            "lines)", (lineno, column))
        first_word = line.split(None, 1)[0]
        if claims and first_word.startswith("model") and first_word != "model" and not re.match(
                r"model[A-Za-z0-9_{]|model\s*=", line.lstrip()):
            col = line.index("model") + 6
            raise src.error("expected a space between 'model' and the model's name or path", (lineno, col))
        if claims and first_word == "model":
            col = line.index("model") + 1
            rest = line[col - 1 + len("model"):].strip()
            if not rest:
                raise src.error("expected a built-in model name or a path after 'model'", (lineno, col + 5))
            out.append(Statement("model", (lineno, col), raw, name=rest,
                                 name_pos=(lineno, line.index(rest, col) + 1)))
            continue
        is_claim = claims and first_word == "claim"
        tokens = tokenize(line, lineno, src, claims=is_claim)
        p = LineParser(tokens, lineno, src)
        first = tokens[0]
        keywords = STATEMENT_KEYWORDS + (("model", "claim") if claims else ())
        second = tokens[1]
        if first.kind == "NAME" and first.text in keywords and not (
                second.kind == "OP" and second.text == "="):
            out.append(p.statement(first, raw))
        elif first.kind == "NAME":
            out.append(p.equation(raw))
        else:
            raise p.error("expected a declaration (size, param, input, target, state) "
                          "or an equation 'name = expression'")
    return out


def _too_large(src: SourceText) -> InputError:
    """The error of a text over :data:`MAX_TEXT` characters, at the first character past the limit."""
    lines = split_lines(src.text[:MAX_TEXT + 1])
    lineno, column = len(lines), max(1, len(lines[-1]))
    return InputError(f"file too large: more than {MAX_TEXT:,} characters (a model or a hand derivation "
                      "is a few thousand)", src.path, lineno, column, split_lines(src.text)[lineno - 1])
