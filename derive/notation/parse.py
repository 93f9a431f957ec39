"""Parse the notation into statements and raw expression trees.

A hand-written tokenizer and precedence-climbing parser: no ``eval``, no
``sympify``; every node carries its (line, column).  Names are resolved
against the declarations later, in :mod:`derive.build`.

Precedence, loosest first: ``+ -``; ``* / @ ⊙ ⋅``; prefix ``sum_t``/``Σ_t``
(over one product term) and unary ``-``; ``**``/``^`` (right-assoc); postfix
``.T``/``ᵀ`` and ``[c]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Optional, Tuple

from ..errors import InputError, SourceText, split_lines
from .expr import FUNCTIONS, Adj, Binary, Call, Node, Num, Pick, Ref, Step, Unary, walk
from .lexer import Token, strip_comment, tokenize

STEP_SUB = re.compile(r"^\s*(t|T)\s*(?:([+-])\s*([0-9]+))?\s*$")
DECLARATION_KINDS = ("param", "input", "target", "state")
BINARY_PRECEDENCE = {"+": 10, "-": 10, "*": 20, "/": 20, "@": 20, "dot": 20, "×": 20}
PREFIX_PRECEDENCE = 30
POWER_PRECEDENCE = 40


def parse_step(text: str) -> Optional[Step]:
    """``t-1`` -> Step(rel, -1); ``T`` -> Step(last); ``2`` -> Step(abs, 2); else None.

    Only ASCII digits count (``h_{²}`` or ``h_{१}`` is no step), and a number of
    more than :data:`MAX_STEP_DIGITS` digits is none either.
    """
    if text.isascii() and text.isdigit():
        return Step("abs", int(text)) if len(text.lstrip("0")) <= MAX_STEP_DIGITS else None
    m = STEP_SUB.match(text)
    if not m or len((m.group(3) or "").lstrip("0")) > MAX_STEP_DIGITS:
        return None
    offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
    return Step("rel" if m.group(1) == "t" else "last", offset)


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

MAX_STEP_DIGITS = 9
"""Most digits of a step number (``h_{T-5}``, ``x_2``): a step is at most a size."""

MAX_LINE = 10_000
"""Most characters of a statement (its comment aside): a longer one is not a hand-written line."""

MAX_TEXT = 1_000_000
"""Most characters of a model or claims file."""

MAX_STATEMENTS = 2_000
"""Most statements of a file: every later stage's work grows with them (a model has a few dozen)."""

MAX_NESTING = 60
"""Most nested sub-expressions one statement may hold (parentheses, signs, powers)."""

MAX_DEPTH = 120
"""Most operations in a chain (``a + b + ... ``) one expression may hold: every later stage
walks trees recursively."""


def tree_depth(node: Node) -> int:
    """The depth of an expression tree, found without recursion."""
    deepest, todo = 0, [(node, 1)]
    while todo:
        n, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in n.children())
    return deepest


def limit_depth(node: Node, parser: "LineParser") -> Node:
    """``node``, or an input error when its tree is deeper than :data:`MAX_DEPTH`."""
    if tree_depth(node) > MAX_DEPTH:
        raise parser.src.error(f"expression too deep (more than {MAX_DEPTH} operations in a chain): "
                               "split it into named quantities", node.pos or parser.pos())
    return node


class LineParser:
    """Parses the tokens of one line."""

    def __init__(self, tokens: List[Token], lineno: int, src: SourceText):
        self.tokens = tokens
        self.i = 0
        self.lineno = lineno
        self.src = src
        self.nesting = 0

    # -- token helpers --------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def pos(self, tok: Optional[Token] = None) -> Tuple[int, int]:
        return (self.lineno, (tok or self.tok).col)

    def error(self, message: str, tok: Optional[Token] = None):
        return self.src.error(message, self.pos(tok))

    def describe(self, tok: Token) -> str:
        if tok.kind == "END":
            return "the end of the line"
        if tok.kind == "DERIV":
            return "a derivative"
        return repr(tok.text if tok.kind != "OP" else {"T": ".T", "dot": "⋅"}.get(tok.text, tok.text))

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "OP" and self.tok.text in ops

    def expect_op(self, op: str, what: str = "") -> Token:
        if not self.at_op(op):
            raise self.error(f"expected '{op}'{what}, found {self.describe(self.tok)}")
        tok = self.tok
        self.i += 1
        return tok

    def expect_name(self, what: str) -> Token:
        if self.tok.kind != "NAME":
            raise self.error(f"expected {what}, found {self.describe(self.tok)}")
        tok = self.tok
        self.i += 1
        return tok

    def expect_end(self):
        if self.tok.kind != "END":
            raise self.error(f"unexpected {self.describe(self.tok)} after the end of the statement")

    # -- expressions ------------------------------------------------------
    def expression(self, min_prec: int = 0) -> Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                raise self.error(f"nested too deeply (limit {MAX_NESTING} levels of parentheses, "
                                 "signs and powers): name a part of it as a quantity")
            return limit_depth(self.operations(min_prec), self)
        finally:
            self.nesting -= 1

    def operations(self, min_prec: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.tok
            if tok.kind != "OP":
                if tok.kind in ("NAME", "NUM", "DERIV") or (tok.kind == "OP" and tok.text == "("):
                    raise self.error(
                        f"expected an operator before {self.describe(tok)} "
                        "(write products explicitly with @ or *)")
                return left
            if tok.text == "**":
                if POWER_PRECEDENCE < min_prec:
                    return left
                self.i += 1
                right = self.expression(POWER_PRECEDENCE)  # right-associative
                left = Binary("**", left, right, pos=self.pos(tok))
                continue
            prec = BINARY_PRECEDENCE.get(tok.text)
            if prec is None or prec < min_prec:
                if tok.text == "(":
                    raise self.error("expected an operator before '(' (write products with @ or *)")
                return left
            self.i += 1
            if self.tok.kind == "END":
                raise self.error(f"expected an expression after '{tok.text}'")
            right = self.expression(prec + 1)
            op = "*" if tok.text == "×" else tok.text
            left = Binary(op, left, right, pos=self.pos(tok))

    def prefix(self) -> Node:
        tok = self.tok
        if tok.kind == "OP" and tok.text == "-":
            self.i += 1
            operand = self.expression(PREFIX_PRECEDENCE)
            return Unary("neg", operand, pos=self.pos(tok))
        if tok.kind == "OP" and tok.text == "+":
            self.i += 1
            return self.expression(PREFIX_PRECEDENCE)
        if tok.kind == "NAME" and tok.text == "sum_t" and not (
                self.tokens[self.i + 1].kind == "OP" and self.tokens[self.i + 1].text == "("
                and self._call_spans_term()):
            self.i += 1
            if self.tok.kind == "END":
                raise self.error("expected the summand after sum_t")
            operand = self.expression(BINARY_PRECEDENCE["*"])
            return Call("sum_t", (operand,), pos=self.pos(tok))
        return self.postfix(self.primary())

    def _call_spans_term(self) -> bool:
        """``sum_t(...)`` followed by an operator of the product level is prefix use."""
        depth, j = 0, self.i + 1
        while j < len(self.tokens):
            t = self.tokens[j]
            if t.kind == "OP" and t.text in "([":
                depth += 1
            elif t.kind == "OP" and t.text in ")]":
                depth -= 1
                if depth == 0:
                    nxt = self.tokens[j + 1]
                    return not (nxt.kind == "OP" and nxt.text in ("*", "@", "/", "dot", "T", "**", "["))
            j += 1
        return True

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.tok
            if tok.kind == "OP" and tok.text == "T":
                self.i += 1
                node = Unary("T", node, pos=self.pos(tok))
            elif tok.kind == "OP" and tok.text == "[":
                self.i += 1
                if self.tok.kind == "OP" and self.tok.text == "]":
                    raise self.error("expected a class target inside '[ ]'")
                index = self.expression()
                self.expect_op("]", " to close '['")
                node = Pick(node, index, pos=self.pos(tok))
            else:
                return node

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "NUM":
            self.i += 1
            return Num(Fraction(tok.text), pos=self.pos(tok))
        if tok.kind == "DERIV":
            self.i += 1
            return self.derivative(tok)
        if tok.kind == "NAME":
            self.i += 1
            if self.at_op("("):
                return self.call(tok)
            return self.reference(tok)
        if tok.kind == "OP" and tok.text == "(":
            self.i += 1
            if self.at_op(")"):
                raise self.error("expected an expression inside '( )'")
            inner = self.expression()
            self.expect_op(")", " to close '('")
            return inner
        if tok.kind == "END":
            raise self.error("expected an expression, found the end of the line")
        raise self.error(f"expected an expression, found {self.describe(tok)}")

    def reference(self, tok: Token) -> Ref:
        step = None
        if tok.sub is not None:
            step = parse_step(tok.sub)
            if step is None:
                raise self.src.error(
                    f"cannot read the step subscript {{{tok.sub}}}: write t, t-1, t+1, T, T-1 or a number",
                    (self.lineno, tok.sub_col))
        return Ref(tok.text, step, pos=self.pos(tok))

    def call(self, tok: Token) -> Node:
        name = "sum_t" if tok.text in ("sum_t",) else tok.text
        if name not in FUNCTIONS:
            known = ", ".join(sorted(f for f in FUNCTIONS if f not in ("step", "rowsum", "colsum")))
            raise self.error(f"unknown function '{tok.text}' (known: {known})", tok)
        self.expect_op("(")
        args = [self.expression()]
        while self.at_op(","):
            self.i += 1
            args.append(self.expression())
        self.expect_op(")", f" to close {name}(")
        if len(args) != FUNCTIONS[name]:
            raise self.error(f"{name} takes {FUNCTIONS[name]} argument(s), given {len(args)}", tok)
        if name == "squared":
            return Binary("**", args[0], Num(Fraction(2)), pos=self.pos(tok))
        if name == "transpose":
            return Unary("T", args[0], pos=self.pos(tok))
        return Call(name, tuple(args), pos=self.pos(tok))

    def derivative(self, tok: Token) -> Adj:
        den = tok.den
        loss_step = parse_step(tok.sub) if tok.sub is not None else None
        if tok.sub is not None and loss_step is None:
            raise self.error(f"cannot read the step subscript {{{tok.sub}}}", tok)
        den_step = parse_step(den.sub) if den.sub is not None else None
        if den.sub is not None and den_step is None:
            raise self.src.error(f"cannot read the step subscript {{{den.sub}}}",
                                 (self.lineno, den.sub_col))
        use = None
        if self.at_op("(") and self.tokens[self.i + 1].kind == "NAME" and self.tokens[self.i + 1].text == "t":
            self.i += 2
            if self.at_op("="):
                self.i += 1
                at = self.tok
                if at.kind == "NUM" and at.text.isdigit():
                    use = Step("abs", int(at.text))
                elif at.kind == "NAME" and at.text == "T":
                    use = Step("last", 0)
                else:
                    raise self.error("expected a step number after 't =' (as in dL/dW_hh (t = 2))")
                self.i += 1
            else:
                use = Step("rel", 0)
            self.expect_op(")", " to close the step of use")
        return Adj(den.text, den_step, loss=tok.text, loss_step=loss_step, use=use,
                   pos=self.pos(tok))

    # -- statements --------------------------------------------------------
    def dim(self):
        tok = self.tok
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
        rows, p1 = self.dim()
        if self.tok.kind == "NAME" and self.tok.text == "x" or self.at_op("×"):
            self.i += 1
        elif self.tok.kind == "NAME" and self.tok.text.startswith("x") and self.tok.text[1:].isdigit():
            raise self.error("write a space on each side of 'x' in a shape (H x 1)")
        else:
            raise self.error(f"expected 'x' between the dimensions of a shape, found {self.describe(self.tok)}")
        cols, p2 = self.dim()
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
            if kind == "target" and self.tok.kind == "NAME" and self.tok.text == "class":
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
