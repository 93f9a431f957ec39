"""Print expression trees back in the notation, with only the parentheses needed.

:class:`NotationPrinter` is the base of the NumPy and LaTeX printers: they
override the leaf and operator methods they spell differently.
"""

from __future__ import annotations

from fractions import Fraction

from .blocks import Place, Slice, Stack
from .expr import Adj, Binary, Call, Iverson, Node, Num, Pick, Ref, SizeRef, Step, StepSum, Unary
from .sugar import as_row_pick, as_row_softmax

PREC_SUM, PREC_PRODUCT, PREC_PREFIX, PREC_POWER, PREC_POSTFIX, PREC_ATOM = 10, 20, 30, 40, 50, 60
BINARY_PREC = {"+": PREC_SUM, "-": PREC_SUM, "*": PREC_PRODUCT, "/": PREC_PRODUCT,
               "@": PREC_PRODUCT, "dot": PREC_PRODUCT, "**": PREC_POWER}


def precedence(node: Node) -> int:
    """How tightly ``node`` binds when printed (higher binds tighter)."""
    if isinstance(node, Num):
        if node.value < 0:
            return PREC_PREFIX
        return PREC_PRODUCT if node.value.denominator != 1 else PREC_ATOM
    if isinstance(node, Binary):
        return BINARY_PREC[node.op]
    if isinstance(node, Unary):
        return PREC_PREFIX if node.op == "neg" else PREC_POSTFIX
    if isinstance(node, (Pick, Slice)):
        return PREC_POSTFIX
    if isinstance(node, Call) and node.fn in ("sum_t", "iverson", "sum_range"):
        return PREC_SUM + 5  # binds a product term, so a product needs it parenthesised
    return PREC_ATOM


class NotationPrinter:
    """Prints a tree in the notation (the grammar of docs/notation.md) (``W_hy.T @ dL/do_t``)."""

    op_text = {"+": " + ", "-": " - ", "*": " * ", "/": " / ", "@": " @ ",
               "**": "**", "dot": " ⋅ "}

    var = "t"
    """The letter of a relative step (a range sum's own inside it)."""

    def __init__(self, model=None):
        self.model = model

    def __call__(self, node: Node) -> str:
        return self.print(node)

    def print(self, node: Node) -> str:
        method = getattr(self, "print_" + type(node).__name__)
        return method(node)

    def wrap(self, node: Node, min_prec: int) -> str:
        text = self.print(node)
        return self.paren(text) if precedence(node) < min_prec else text

    def paren(self, text: str) -> str:
        return f"({text})"

    # -- leaves -----------------------------------------------------------
    def step_text(self, step: Step) -> str:
        return step.text(self.var)

    def symbol(self, name: str, step) -> str:
        if step is None:
            return name
        base = name[:-2] if name.endswith("_t") else name
        return f"{base}_{self.step_text(step)}"

    def print_Num(self, node: Num) -> str:
        v: Fraction = node.value
        if v.denominator == 1:
            return str(v.numerator)
        return f"{v.numerator}/{v.denominator}"

    def print_SizeRef(self, node: SizeRef) -> str:
        return node.name

    def print_Ref(self, node: Ref) -> str:
        return self.symbol(node.name, node.step)

    def print_Adj(self, node: Adj) -> str:
        loss = self.symbol(node.loss, node.loss_step) if node.loss_step else node.loss
        text = f"d{loss}/d{self.symbol(node.name, node.step)}"
        if node.use is not None:
            text += " (t)" if node.use.kind == "rel" and node.use.offset == 0 else f" (t = {node.use.text()})"
        return text

    # -- operators ----------------------------------------------------------
    def print_Unary(self, node: Unary) -> str:
        if node.op == "neg":
            return "-" + self.wrap(node.x, PREC_PREFIX + 1)
        x = as_row_softmax(node)
        if x is not None:
            return f"softmax({self.print(x)}, rows)"
        pick = as_row_pick(node)
        if pick is not None:
            return f"{self.wrap(pick.x.x, PREC_POSTFIX)}[{self.print(pick.cls)}, rows]"
        return self.wrap(node.x, PREC_POSTFIX) + ".T"

    def print_Binary(self, node: Binary) -> str:
        p = BINARY_PREC[node.op]
        if node.op == "**":
            return self.wrap(node.a, p + 1) + self.op_text["**"] + self.wrap(node.b, p)
        left = self.wrap(node.a, p)
        right = self.wrap(node.b, p + 1)
        return left + self.op_text[node.op] + right

    def print_Pick(self, node: Pick) -> str:
        return f"{self.wrap(node.x, PREC_POSTFIX)}[{self.print(node.cls)}]"

    def print_Iverson(self, node: Iverson) -> str:
        return f"[{node.condition_text()}] " + self.wrap(node.args[0], PREC_PRODUCT)

    def summand(self, node: StepSum) -> str:
        """A range sum's summand, its relative steps printed with the sum's letter (``h_{k-1}``)."""
        outer, self.var = self.var, node.var
        try:
            return self.wrap(node.args[0], PREC_PRODUCT)
        finally:
            self.var = outer

    def print_StepSum(self, node: StepSum) -> str:
        return f"sum_{{{node.bounds_text()}}} {self.summand(node)}"

    def print_Stack(self, node: Stack) -> str:
        return "[" + "; ".join(self.print(a) for a in node.args) + "]"

    def print_Slice(self, node: Slice) -> str:
        span = node.bounds_text()
        return self.wrap(node.args[0], PREC_POSTFIX) + (f"[{span}]" if node.axis == 0 else f"[:, {span}]")

    def print_Place(self, node: Place) -> str:
        """Not in the notation: the derivation's adjoint of a slice, shown as a call."""
        side = "rows" if node.axis == 0 else "columns"
        return f"place({self.print(node.args[0])}, {side} {node.bounds_text()} of {node.total.text()})"

    def print_Call(self, node: Call) -> str:
        if node.fn == "sum_t":
            return "sum_t " + self.wrap(node.args[0], PREC_PRODUCT)
        return f"{node.fn}({', '.join(self.print(a) for a in node.args)})"


def show(node: Node) -> str:
    """The notation text of a tree."""
    return NotationPrinter()(node)
