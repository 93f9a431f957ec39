"""Print expression trees as NumPy code (the generated module's statements)."""

from __future__ import annotations

import re
from typing import Optional

from ..calculus.matrix import softmax_of
from ..notation.blocks import Linear, Place, Slice, Stack, dim_linear
from ..notation.expr import Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Step, Unary, walk
from ..notation.printer import BINARY_PREC, PREC_POSTFIX, NotationPrinter
from ..notation.sugar import as_row_pick
from .hygiene import size_placeholder, symbol_placeholder

FUNCTION_CODE = {
    "tanh": "np.tanh({})", "exp": "np.exp({})", "log": "np.log({})",
    "sigmoid": "_sigmoid({})", "relu": "_relu({})", "step": "_step({})",
    "softmax": "_softmax({})", "sum": "np.sum({})", "mean": "np.mean({})",
    "rowsum": "{}.sum(axis=1, keepdims=True)", "colsum": "{}.sum(axis=0, keepdims=True)",
    "ones_like": "np.ones_like({})",
}
METHOD_STYLE = {"rowsum", "colsum"}


def number_only(node: Node) -> bool:
    """A tree of numbers and sizes alone: its value is a scalar, an ``int`` where Python or NumPy keeps one."""
    return all(isinstance(n, (Num, SizeRef, Unary, Binary)) or (isinstance(n, Call) and n.fn != "softmax")
               for n in walk(node))


def py_name(name: str) -> str:
    """A model name as a Python identifier; :func:`derive.emit.hygiene.finalize` spells it."""
    return symbol_placeholder(name)


def size_name(name: str) -> str:
    """A size as a Python variable (``T`` stays ``T``: it is the loop bound)."""
    return "T" if name == "T" else size_placeholder(name)


def linear_code(lin: Linear) -> str:
    """A size expression in code: ``2 * H``, ``H + V``, ``0``."""
    parts = [(c, size_name(n) if abs(c) == 1 else f"{abs(c)} * {size_name(n)}") for n, c in lin.terms]
    if lin.const or not parts:
        parts.append((lin.const, str(abs(lin.const))))
    out = ("-" if parts[0][0] < 0 else "") + parts[0][1]
    return out + "".join((" - " if c < 0 else " + ") + word for c, word in parts[1:])


def dim_code(d) -> str:
    """A dimension in code: ``3``, ``H``, ``(4 * H)``."""
    if isinstance(d, int):
        return str(d)
    lin = dim_linear(d)
    return size_name(d) if lin.terms == ((d, 1),) and not lin.const else f"({linear_code(lin)})"


def dims_code(shape, per_step: bool) -> str:
    """A shape as a tuple in code (``(H, B)``); ``per_step`` puts ``T + 1`` steps in front."""
    dims = [dim_code(d) for d in shape]
    if per_step:
        dims = ["T + 1"] + dims
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def variable(model, name: str) -> str:
    """The array variable holding a symbol's values.

    A per-step symbol drops its ``_t`` (``z_t`` is ``z[t]``) unless that
    would collide with a non-step name (``L_t`` beside ``L`` stays ``L_t``).
    """
    sym = model.symbols[name]
    if not sym.per_step:
        return py_name(name)
    taken = {s.name for s in model.symbols.values() if not s.per_step} | set(model.sizes)
    return py_name(sym.base if sym.base not in taken else sym.name)


def step_index(step: Step, data_symbol: bool) -> str:
    """Array index of a step: quantities are stored at 1..T, data at 0..T-1."""
    base = {"rel": "t", "last": "T", "abs": ""}[step.kind]
    offset = step.offset - (1 if data_symbol else 0)
    if step.kind == "abs":
        return str(offset)
    if offset == 0:
        return base
    return f"{base} {'+' if offset > 0 else '-'} {abs(offset)}"


class NumPyPrinter(NotationPrinter):
    """NumPy spelling of the notation; needs the model to tell data from quantities."""

    op_text = dict(NotationPrinter.op_text, dot=None)

    def print_Num(self, node: Num) -> str:
        v = node.value
        if v.denominator == 1:
            return str(v.numerator)
        return f"({v.numerator} / {v.denominator})"

    def print_SizeRef(self, node: SizeRef) -> str:
        return size_name(node.name)

    def array(self, name: str, step) -> str:
        sym = self.model.symbols[name]
        var = variable(self.model, name)
        if step is None or not sym.per_step:
            return var
        is_data = sym.kind in ("input", "target")
        return f"{var}[{step_index(step, is_data)}]"

    def print_Ref(self, node: Ref) -> str:
        return self.array(node.name, node.step)

    def print_Adj(self, node: Adj) -> str:
        sym = self.model.symbols[node.name]
        var = "dL_d" + variable(self.model, node.name)
        if node.step is None or not sym.per_step:
            return var
        return f"{var}[{step_index(node.step, False)}]"

    def one_by_one(self, node: Node) -> bool:
        """Whether ``node`` is 1 x 1: its value may be a Python or NumPy scalar (``np.sum``, ``B``)."""
        return self.model.shape(node) == (1, 1)

    def argument(self, node: Node) -> str:
        """A function's argument; numbers and sizes in floating point (``np.sum(3)`` is an integer)."""
        return f"float({self.print(node)})" if number_only(node) else self.print(node)

    def print_Unary(self, node):
        if node.op == "T":
            if self.one_by_one(node.x):  # the transpose of a 1 x 1 is itself, and a scalar has no .T
                return self.wrap(node.x, PREC_POSTFIX)
            return self.wrap(node.x, PREC_POSTFIX) + ".T"
        return super().print_Unary(node)

    def print_Binary(self, node):
        if node.op == "@" and (self.one_by_one(node.a) or self.one_by_one(node.b)):
            # a product with a 1 x 1 factor is a scaling, and NumPy's @ refuses a scalar
            p = BINARY_PREC["*"]
            return f"{self.wrap(node.a, p)} * {self.wrap(node.b, p + 1)}"
        return super().print_Binary(node)

    def print_Pick(self, node: Pick) -> str:
        return f"_pick({self.print(node.x)}, {self.print(node.cls)})"

    # the row axis is -2 and the column axis -1, so these read the same over a leading axis of steps
    def print_Stack(self, node: Stack) -> str:
        return f"np.concatenate(({', '.join(self.print(a) for a in node.args)}), axis=-2)"

    def block(self, node: Node, precedence: int) -> str:
        """An operand of a slice or a placement: a 1 x 1 one may be a scalar (``np.sum``, a constant 1)."""
        return f"np.atleast_2d({self.print(node)})" if self.one_by_one(node) else self.wrap(node, precedence)

    def print_Slice(self, node: Slice) -> str:
        span = f"{linear_code(node.lo)}:{linear_code(node.hi)}"
        return self.block(node.args[0], PREC_POSTFIX) + (f"[..., {span}, :]" if node.axis == 0 else f"[..., {span}]")

    def print_Place(self, node: Place) -> str:
        bounds = ", ".join(linear_code(b) for b in (node.lo, node.hi, node.total))
        return f"_place({self.block(node.args[0], 0)}, {bounds}, {-2 if node.axis == 0 else -1})"

    def log_pick(self, node: Call, helper: str = "_log_pick") -> Optional[str]:
        """``log(y[c])`` with ``y = softmax(o)``: finite where ``y[c]`` underflows, from ``o``; else None."""
        arg = node.args[0]
        if node.fn == "log" and as_row_pick(arg) is not None:  # log(y[c, rows]) is log(y.T[c]).T
            return self.print(Unary("T", Call("log", (as_row_pick(arg),))))
        if node.fn != "log" or not isinstance(arg, Pick):
            return None
        logits = softmax_of(self.model, arg.x)
        if logits is None or self.one_by_one(arg.x):
            return None
        code = self.print(logits)
        # called at once, but linters want the loop's t bound
        head = "lambda t=t:" if re.search(r"\bt\b", code) else "lambda:"
        return f"{helper}({self.print(arg.x)}, {self.print(arg.cls)}, {head} {code})"

    def print_Call(self, node: Call) -> str:
        code = self.log_pick(node)
        if code is not None:
            return code
        if node.fn == "onehot":
            cls = node.args[0]
            rows = self.model.symbols[cls.name].classes
            return f"_onehot({self.print(cls)}, {rows if isinstance(rows, int) else size_name(rows)})"
        if node.fn == "sum_t":
            return f"sum({self.print(node.args[0])} for t in range(1, T + 1))"
        arg = node.args[0]
        if node.fn in METHOD_STYLE:
            if self.one_by_one(arg):  # the row (column) sums of a 1 x 1 are itself
                return self.wrap(arg, PREC_POSTFIX)
            return FUNCTION_CODE[node.fn].format(self.wrap(arg, PREC_POSTFIX))
        if node.fn == "softmax" and self.one_by_one(arg):  # _softmax reduces over axis 0
            return f"_softmax(np.reshape({self.argument(arg)}, (1, 1)))"
        return FUNCTION_CODE[node.fn].format(self.argument(arg))
