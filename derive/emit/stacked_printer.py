"""The fast style's printers: ``FastPrinter`` for one step, ``StackedPrinter`` for every step at once."""

from __future__ import annotations

from ..notation.expr import Adj, Call, Node, Pick, Ref, walk
from ..notation.printer import PREC_POSTFIX
from .numpy_printer import NumPyPrinter, size_name, variable


class FastPrinter(NumPyPrinter):
    """The readable printer, with the exp-based ``tanh`` where a call allocates anyway."""

    def print_Call(self, node: Call) -> str:
        if node.fn == "tanh":
            return f"_tanh({self.argument(node.args[0])})"
        if node.fn == "sum_t":  # over the stored stack, not a Python loop over its steps
            sp = StackedPrinter(self.model)
            if sp.stacked(node.args[0]):
                try:
                    return f"{sp.wrap(node.args[0], PREC_POSTFIX)}.sum(axis=0)"
                except Unstackable:
                    pass
        return super().print_Call(node)


class Unstackable(Exception):
    """An expression that has no all-steps-at-once form here."""


class StackedPrinter(FastPrinter):
    """Prints a per-step expression for all steps at once: ``x_t`` is the stack ``x[1:]`` (T, m, n).

    Refs at step ``t`` (and quantities at ``t - 1``) become slices over the time
    axis; matrix products broadcast over it; column-wise functions work on the
    last two axes. Anything else raises :class:`Unstackable`.
    """

    def __init__(self, model, avoid=()):
        super().__init__(model)
        self.avoid = set(avoid)

    def per_step(self, name, step) -> bool:
        sym = self.model.symbols[name]
        return sym.per_step and step is not None and step.kind == "rel"

    def stacked(self, node: Node) -> bool:
        return any(isinstance(n, (Ref, Adj)) and self.per_step(n.name, n.step) for n in walk(node))

    def array(self, name: str, step) -> str:
        if not self.per_step(name, step):
            return super().array(name, step)
        if name in self.avoid:
            raise Unstackable(name)
        sym = self.model.symbols[name]
        var = variable(self.model, name)
        if sym.kind in ("input", "target"):
            if step.offset != 0:
                raise Unstackable(name)
            return f"{var}[:T]"
        if step.offset == 0:
            return f"{var}[1:]"
        if step.offset == -1:
            return f"{var}[:T]"
        raise Unstackable(name)

    def print_Adj(self, node: Adj) -> str:
        if not self.per_step(node.name, node.step):
            return super().print_Adj(node)
        if node.step.offset != 0:
            raise Unstackable(node.name)
        return f"dL_d{variable(self.model, node.name)}[1:]"

    def print_Unary(self, node):
        if node.op == "T" and self.stacked(node.x):
            return self.wrap(node.x, PREC_POSTFIX) + ".swapaxes(-1, -2)"
        return super().print_Unary(node)

    def print_Pick(self, node: Pick) -> str:
        if not self.stacked(node):
            return super().print_Pick(node)
        if not self.stacked(node.x):  # one matrix picked by every step's classes: _pick_s wants a stack
            raise Unstackable("pick")
        return f"_pick_s({self.print(node.x)}, {self.print(node.cls)})"

    def print_Call(self, node: Call) -> str:
        if not self.stacked(node):
            return super().print_Call(node)
        code = self.log_pick(node, "_log_pick_s")
        if code is not None:
            return code
        arg = node.args[0]
        if node.fn == "onehot":
            rows = self.model.symbols[arg.name].classes
            return f"_onehot_s({self.print(arg)}, {rows if isinstance(rows, int) else size_name(rows)})"
        if node.fn == "softmax":
            return f"_softmax_s({self.print(arg)})"
        if node.fn == "sum":
            return f"np.sum({self.print(arg)}, axis=(-2, -1), keepdims=True)"
        if node.fn == "rowsum":
            return f"{self.wrap(arg, PREC_POSTFIX)}.sum(axis=-1, keepdims=True)"
        if node.fn == "colsum":
            return f"{self.wrap(arg, PREC_POSTFIX)}.sum(axis=-2, keepdims=True)"
        if node.fn in ("tanh", "exp", "log", "sigmoid", "relu", "step", "ones_like"):
            return super().print_Call(node)
        raise Unstackable(node.fn)
