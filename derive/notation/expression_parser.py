"""The expression grammar of the notation: a precedence-climbing parser over one line's tokens.

No ``eval``, no ``sympify``; every node carries its (line, column).

Precedence, loosest first: ``+ -``; ``* / @ ⊙ ⋅``; prefix ``sum_t``/``Σ_t``
and, in claims, ``sum_{k=1}^{t}`` (over one product term) and unary ``-``; ``**``/``^`` (right-assoc); postfix
``.T``/``ᵀ`` and ``[c]``.  :mod:`derive.notation.parse` adds the statements.
"""

from __future__ import annotations

from fractions import Fraction
from typing import List, Optional, Tuple

from ..errors import SourceText
from .expr import (
    FUNCTIONS,
    IVERSON_OPS,
    MAX_STEP_DIGITS,
    Adj,
    Binary,
    Call,
    Node,
    Num,
    Ref,
    Step,
    Unary,
    iverson,
    parse_step,
)
from .lexer import Token
from .range_sums import RangeSumReader
from .stacking import StackingReader
from .sugar import COMPARISONS, SUGAR_FUNCTIONS, SugarReader, product, sugar_call

BINARY_PRECEDENCE = {"+": 10, "-": 10, "*": 20, "/": 20, "@": 20, "dot": 20, "×": 20}
PREFIX_PRECEDENCE = 30
POWER_PRECEDENCE = 40

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


def limit_depth(node: Node, parser: "ExpressionParser") -> Node:
    """``node``, or an input error when its tree is deeper than :data:`MAX_DEPTH`."""
    if tree_depth(node) > MAX_DEPTH:
        raise parser.src.error(f"expression too deep (more than {MAX_DEPTH} operations in a chain): "
                               "split it into named quantities", node.pos or parser.pos())
    return node


class ExpressionParser(RangeSumReader, StackingReader, SugarReader):
    """Parses the expressions in the tokens of one line; :class:`~derive.notation.parse.LineParser` adds statements."""

    def __init__(self, tokens: List[Token], lineno: int, src: SourceText):
        self.tokens = tokens
        self.i = 0
        self.lineno = lineno
        self.src = src
        self.nesting = 0
        self.range_var: Optional[str] = None  # the step variable of the range sum being read (claims)
        self.juxtaposed = False  # claims: two operands side by side are the ambiguous product ⋅

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
            node = limit_depth(self.operations(min_prec), self)
            return self.no_stray_diagonal(node) if self.nesting == 1 else node
        finally:
            self.nesting -= 1

    def operations(self, min_prec: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.tok
            if self.juxtaposed and (tok.kind in ("NAME", "NUM", "DERIV") or (tok.kind == "OP" and tok.text == "(")):
                if BINARY_PRECEDENCE["dot"] < min_prec:
                    return left
                right = self.expression(BINARY_PRECEDENCE["dot"] + 1)
                left = product("dot", left, right, self.pos(tok), implicit=True)
                continue
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
            left = product(op, left, right, self.pos(tok))

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
        if tok.kind == "OP" and tok.text == "[":
            return self.bracket(tok)
        if tok.kind == "SUMRANGE":
            return self.range_sum(tok)
        return self.postfix(self.primary())

    def iverson_bracket(self, open_tok: Token) -> Node:
        """``[t = T] x`` (also ``<``, ``>``, ``<=``, ``>=``; a step ``T``, ``T-1`` or a number):
        ``x`` at the steps that meet the condition, zero at the others; over one product term."""
        self.i += 1
        var = self.tok
        if not (var.kind == "NAME" and var.text == "t" and var.sub is None):
            raise self.error(f"expected the step t in an Iverson bracket such as [t = T], found "
                             f"{self.describe(var)}")
        self.i += 1
        op = self.tok
        if not (op.kind == "OP" and op.text in ("=", "<", ">")):
            raise self.error(f"expected =, <, >, <= or >= after t in [t = T], found {self.describe(op)}")
        self.i += 1
        text = op.text
        if text in "<>" and self.at_op("=") and self.tok.col == op.col + 1:
            self.i += 1
            text += "="
        bound = self.bracket_step()
        self.expect_op("]", " to close the Iverson bracket [t = T]")
        if self.tok.kind == "END" or (self.tok.kind == "OP" and self.tok.text in ("+", ")", ",", "]", "=")):
            raise self.error("expected the term the bracket applies to after "
                             f"[t {text} ...] (as in [t = T] W_hy.T @ dL/dy)")
        operand = self.expression(BINARY_PRECEDENCE["*"])
        assert text in IVERSON_OPS
        return iverson(operand, text, bound, pos=self.pos(open_tok))

    def bracket_step(self) -> Step:
        """The step an Iverson bracket compares t with: a number, ``T``, ``T-1``, ``T+1``."""
        tok = self.tok
        if tok.kind == "NUM" and tok.text.isdigit() and len(tok.text.lstrip("0")) <= MAX_STEP_DIGITS:
            self.i += 1
            return Step("abs", int(tok.text))
        if tok.kind == "NAME" and tok.text == "T" and tok.sub is None:
            self.i += 1
            if self.at_op("+", "-"):
                sign = self.tok
                self.i += 1
                n = self.tok
                if not (n.kind == "NUM" and n.text.isdigit() and len(n.text.lstrip("0")) <= MAX_STEP_DIGITS):
                    raise self.error(f"expected a number after 'T {sign.text}' in the bracket, found "
                                     f"{self.describe(n)}")
                self.i += 1
                return Step("last", int(n.text) * (-1 if sign.text == "-" else 1))
            return Step("last", 0)
        raise self.error(f"expected a step (T, T-1 or a number) to compare t with, found {self.describe(tok)}")

    def _call_spans_term(self) -> bool:
        """``sum_t(...)`` followed by an operator of the product level is prefix use."""
        end, _ = self._closing(self.i + 1)
        if self.tokens[end].kind == "END":
            return True
        nxt = self.tokens[end + 1]  # an operand next, in a claim, is a product without an operator
        operand = self.juxtaposed and (nxt.kind in ("NAME", "NUM", "DERIV") or nxt.text == "(")
        return not (operand or nxt.kind == "OP" and nxt.text in ("*", "@", "/", "dot", "T", "**", "["))

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.tok
            if tok.kind == "OP" and tok.text == "T":
                self.i += 1
                node = Unary("T", node, pos=self.pos(tok))
            elif tok.kind == "OP" and tok.text == "[":
                self.i += 1
                node = self.index(node, tok)
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
            if self.at_op(*COMPARISONS):
                inner = self.comparison(inner)
            self.expect_op(")", " to close '('")
            return inner
        if tok.kind == "END":
            raise self.error("expected an expression, found the end of the line")
        raise self.error(f"expected an expression, found {self.describe(tok)}")

    def reference(self, tok: Token) -> Ref:
        name, ranged, done = self.in_range(tok.text, tok.sub)
        if done:
            return Ref(name, ranged, pos=self.pos(tok))
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
        arity = FUNCTIONS.get(name, SUGAR_FUNCTIONS.get(name))
        if arity is None:
            known = ", ".join(sorted([f for f in FUNCTIONS if f not in ("step", "rowsum", "colsum")]
                                     + list(SUGAR_FUNCTIONS)))
            raise self.error(f"unknown function '{tok.text}' (known: {known})", tok)
        self.expect_op("(")
        args = [self.expression()]
        while self.at_op(","):
            self.i += 1
            args.append(self.expression())
        self.expect_op(")", f" to close {name}(")
        if name == "softmax" and len(args) == 2:
            return self.softmax_axis(tuple(args), tok)
        if len(args) != arity:
            raise self.error(f"{name} takes {arity} argument(s), given {len(args)}", tok)
        if name in SUGAR_FUNCTIONS:
            return sugar_call(name, tuple(args), self.pos(tok))
        if name == "squared":
            return Binary("**", args[0], Num(Fraction(2)), pos=self.pos(tok))
        if name == "transpose":
            return Unary("T", args[0], pos=self.pos(tok))
        return Call(name, tuple(args), pos=self.pos(tok))

    def derivative(self, tok: Token) -> Adj:
        den = tok.den
        loss, loss_ranged, loss_done = self.in_range(tok.text, tok.sub)
        name, den_ranged, den_done = self.in_range(den.text, den.sub)
        if loss_done or den_done:
            if self.at_op("(") and self.tokens[self.i + 1].kind == "NAME" and self.tokens[self.i + 1].text == "t":
                raise self.error("a step of use (t) inside a range sum: the sum's steps are its own")
            loss_step = loss_ranged if loss_done else (parse_step(tok.sub) if tok.sub is not None else None)
            den_step = den_ranged if den_done else (parse_step(den.sub) if den.sub is not None else None)
            return Adj(name, den_step, loss=loss, loss_step=loss_step, pos=self.pos(tok))
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
