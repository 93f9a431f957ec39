"""The fast style's statements: in-place ufunc calls, with scratch buffers allocated once per function.

``z[t] = tanh(W @ h[t - 1] + b)`` becomes ``np.dot(W, h[t - 1], out=z[t])``,
``np.add(z[t], b, out=z[t])``, ``_tanh_into(z[t], out=z[t])``: the result goes
straight into its stored array, and an inner result that needs its own room
goes into a scratch buffer (:class:`Scratch`) allocated before the time loop.

At small sizes each statement's cost is NumPy's cost per call, so a step's
product is ``np.dot`` (about 0.4 us a call less than ``np.matmul`` for a
100 x 100 matrix and one column) wherever its inner dimension is more than
one at the model's default sizes, and ``tanh`` is ``np.tanh`` itself where
NumPy's is vectorised (:data:`SPEED_HELPERS`).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from ..calculus.matrix import Term
from ..model.model import Model
from ..notation.expr import Adj, Binary, Call, Node, Num, Ref, SizeRef, Unary
from .numpy_printer import NumPyPrinter, dims_code, number_only, variable
from .stacked_printer import StackedPrinter, Unstackable

UFUNC = {"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide"}
IN_PLACE_CALLS = {"tanh": "_tanh_into({a}, out={out})", "exp": "np.exp({a}, out={out})",
                  "log": "np.log({a}, out={out})", "sigmoid": "_sigmoid_into({a}, out={out})"}


# Pasted into the fast module after the helpers of module_helpers.FAST_HELPERS, whose names they use.
SPEED_HELPERS = '''

_tanh_into = _tanh if _EXP_TANH else np.tanh  # the same values; one Python call less where np.tanh is vectorised


def _stacked_matmul(a, b, out):
    """a @ b[t] into out[t] for every step of a stacked b (T, k, n); with one column (n = 1),
    one product of the steps' columns by a.T instead of T small ones."""
    if a.ndim == 2 and b.ndim == 3 and b.shape[2] == 1 and a.shape[1] != 1 and out.flags.c_contiguous:
        steps = b.shape[0]
        return np.dot(b.reshape(steps, b.shape[1]), a.T, out=out.reshape(steps, out.shape[1]))
    return _matmul(a, b, out)


def _tsum_dot(a, b):
    """sum over t of a[t] @ b[t] for stacked a (T, m, k), b (T, k, n); with one column a step (k = 1)
    the steps are the inner axis of one product of views, no copy (else _tsum_matmul)."""
    steps, m, k = a.shape
    if k == 1:
        return a.reshape(steps, m).T @ b.reshape(steps, b.shape[2])
    return _tsum_matmul(a, b)
'''


def is_simple(node: Node) -> bool:
    """A node printed as an existing array (or a number): no computation, no temporary."""
    if isinstance(node, (Ref, Adj, Num, SizeRef)):
        return True
    return isinstance(node, Unary) and node.op == "T" and is_simple(node.x)


class Scratch:
    """Scratch buffers of one function: one per (shape, depth within a statement)."""

    def __init__(self):
        self.buffers: Dict[Tuple[tuple, int], str] = {}
        self.in_use: Dict[tuple, int] = {}

    def start_statement(self):
        """A new statement may reuse every buffer."""
        self.in_use = {}

    def take(self, shape) -> str:
        """The name of a buffer of this shape that the statement is not using yet."""
        key = tuple(shape)
        k = self.in_use.get(key, 0)
        self.in_use[key] = k + 1
        if (key, k) not in self.buffers:
            self.buffers[(key, k)] = f"_s{len(self.buffers)}"
        return self.buffers[(key, k)]

    def allocations(self) -> List[str]:
        """The lines that allocate the buffers taken so far."""
        return [f"{name} = _empty({dims_code(shape, False)}, dtype)"
                for (shape, _), name in self.buffers.items()]


class _NeedsScratch(Exception):
    """A statement written for every step at once would need a scratch buffer."""


class _NoScratch(Scratch):
    """Refuses every buffer: a statement for every step at once may take none."""

    def take(self, shape) -> str:
        raise _NeedsScratch()


class InPlaceStatements:
    """Writes statements as in-place ufunc calls into stored arrays and scratch buffers.

    A part of :class:`derive.emit.fast.FastModuleWriter`, which provides
    ``emit``, ``lines``, ``model``, ``p`` (the printer), ``scratch`` (the
    current function's :class:`Scratch`) and ``local_names``.
    """

    model: Model
    p: NumPyPrinter
    scratch: Scratch

    def shape(self, node: Node):
        """The node's shape as a tuple of dims."""
        return tuple(self.model.shape(node))

    def operand(self, node: Node, lines: List[str]) -> str:
        """Code of an operand: the array itself when simple, else a scratch holding it."""
        if is_simple(node):
            return self.p(node)
        if isinstance(node, Unary) and node.op == "T":
            return self.operand(node.x, lines) + ("" if self.shape(node.x) == (1, 1) else ".T")
        buf = self.scratch.take(self.shape(node))
        self.into(node, buf, lines)
        return buf

    def into(self, node: Node, out: str, lines: List[str]):
        """Lines computing ``node`` into the existing array ``out`` (of the node's shape)."""
        shape = self.shape(node)
        if isinstance(node, Binary) and node.op == "*":  # x * ones_like(...) is x: skip the product
            for ones, other in ((node.a, node.b), (node.b, node.a)):
                if isinstance(ones, Call) and ones.fn == "ones_like" and self.shape(other) == shape:
                    return self.into(other, out, lines)
        if isinstance(node, Binary) and node.op in UFUNC:
            a, b = node.a, node.b
            if not is_simple(a) and self.shape(a) == shape and not is_simple(b) and self.shape(b) == shape:
                self.into(a, out, lines)
                left, right = out, self.operand(b, lines)
            elif not is_simple(a) and self.shape(a) == shape:
                self.into(a, out, lines)
                left, right = out, self.p(b)
            elif not is_simple(b) and self.shape(b) == shape:
                self.into(b, out, lines)
                left, right = self.operand(a, lines), out
            else:
                left, right = self.operand(a, lines), self.operand(b, lines)
            lines.append(f"{UFUNC[node.op]}({left}, {right}, out={out})")
        elif isinstance(node, Binary) and node.op == "@":
            left, right = self.operand(node.a, lines), self.operand(node.b, lines)
            scaling = (1, 1) in (self.shape(node.a), self.shape(node.b))  # a factor may be a scalar
            lines.append(f"{'np.multiply' if scaling else self.product(node)}({left}, {right}, out={out})")
        elif isinstance(node, Binary) and node.op == "**" and isinstance(node.b, Num):
            base = self.in_place_argument(node.a, out, shape, lines)
            if number_only(node.a) and is_simple(node.a):
                base = f"float({base})"  # NumPy refuses an integer to a negative power
            if node.b.value == 2:
                lines.append(f"np.multiply({base}, {base}, out={out})")
            else:
                lines.append(f"np.power({base}, {self.p(node.b)}, out={out})")
        elif isinstance(node, Unary) and node.op == "neg":
            lines.append(f"np.negative({self.in_place_argument(node.x, out, shape, lines)}, out={out})")
        elif isinstance(node, Call) and node.fn in IN_PLACE_CALLS:
            arg = self.in_place_argument(node.args[0], out, shape, lines)
            lines.append(IN_PLACE_CALLS[node.fn].format(a=arg, out=out))
        else:  # printed as the readable module prints it
            lines.append(f"{out}[...] = {self.p(node)}")

    def product(self, node: Binary) -> str:
        """The call of one step's product: ``np.dot`` when its inner dimension is more than one at
        the model's default sizes (a C-contiguous ``out``: a step of a stack, or a scratch buffer),
        else ``_matmul``, which writes an outer product as a broadcast multiply. Every step at
        once (a stacked printer) is ``_matmul``: ``np.dot`` of 3-d arrays is not a product per step.
        """
        inner = self.shape(node.a)[1]
        value = inner if isinstance(inner, int) else self.model.sizes.get(inner) if isinstance(inner, str) else None
        if isinstance(self.p, StackedPrinter) or not isinstance(value, int) or value <= 1:
            return "_matmul"
        return "np.dot"

    def in_place_argument(self, arg: Node, out: str, shape, lines: List[str]) -> str:
        """An elementwise argument: computed into ``out`` itself when it has the result's shape."""
        if not is_simple(arg) and self.shape(arg) == shape:
            self.into(arg, out, lines)
            return out
        return self.operand(arg, lines)

    def statement(self, target: str, target_shape, expr: Node, accumulate: bool) -> List[str]:
        """``target = expr`` or ``target += expr`` as in-place lines."""
        self.scratch.start_statement()
        lines: List[str] = []
        shape = self.shape(expr)
        if tuple(target_shape) != shape:
            return [f"{target} {'+=' if accumulate else '='} {self.p(expr)}"]
        if not accumulate:
            self.into(expr, target, lines)
        elif is_simple(expr):
            lines.append(f"{target} += {self.p(expr)}")
        elif isinstance(expr, Call) and expr.fn not in IN_PLACE_CALLS:
            lines.append(f"{target} += {self.p(expr)}")  # a reduction: small, keep it readable
        else:
            buf = self.scratch.take(shape)
            self.into(expr, buf, lines)
            lines.append(f"{target} += {buf}")
        return lines

    def accumulate(self, target: str, term: Term, indent: int, first: bool,
                   per_step_target: bool, comment: str):
        """The readable writer's ``accumulate``, its statement written in place."""
        conds = self.conditions(term, per_step_target)
        name = target[len("dL_d"):].split("[")[0]
        symbol = next(s for s in self.model.symbols if variable(self.model, s) == name)
        self.emit(f"# {comment}", indent)
        if conds:
            self.emit(f"if {' and '.join(conds)}:", indent)
            indent += 1
        for line in self.statement(target, self.model.symbols[symbol].shape, term.expr,
                                   accumulate=bool(conds) or not first):
            self.emit(line, indent)

    def stacked_assignment(self, target: str, expr: Node, sp: StackedPrinter) -> List[str]:
        """``target = expr`` for all steps at once, straight into the stored array where the form allows.

        ``A @ B (+ C)`` is a product into ``target`` (then ``+= C``); ``X - onehot(c)`` is ``X``
        with 1 subtracted at the classes. No temporaries the size of the stack: on a 2-core VM a
        fresh 400 kB array costs more in page faults than the arithmetic that fills it.
        """
        whole, rest = expr, None
        if isinstance(expr, Binary) and expr.op == "+" and isinstance(expr.a, Binary) and expr.a.op == "@":
            expr, rest = expr.a, expr.b
        if (isinstance(expr, Binary) and expr.op == "@" and sp.stacked(expr)
                and (1, 1) not in (self.shape(expr.a), self.shape(expr.b))  # a 1 x 1 factor may be a scalar
                and self.shape(expr) == self.shape(whole)):  # the product fills the whole stack
            lines = [f"_stacked_matmul({sp(expr.a)}, {sp(expr.b)}, out={target})"]
            return lines + ([f"{target} += {sp(rest)}"] if rest is not None else [])
        expr = whole
        if isinstance(expr, Call) and expr.fn == "softmax" and sp.stacked(expr):
            return [f"_softmax_s({sp(expr.args[0])}, out={target})"]
        if (isinstance(expr, Binary) and expr.op == "-" and isinstance(expr.b, Call)
                and expr.b.fn == "onehot" and sp.stacked(expr.b)):
            return [f"{target} = {sp(expr.a)}", f"_subtract_onehot_s({target}, {sp(expr.b.args[0])})"]
        return [f"{target} = {sp(expr)}"]

    def stackable(self, expr: Node) -> bool:
        """Whether the stacked printer can write ``expr`` for every step at once."""
        try:
            StackedPrinter(self.model, self.local_names).print(expr)
        except Exception:
            return False
        return True

    def stacked_into(self, node: Node, out: str):
        """Lines computing ``node`` for every step into the stack view ``out``; None when that
        would take a scratch buffer (those are one step in size)."""
        saved = self.p, self.scratch
        self.p, self.scratch = StackedPrinter(self.model, self.local_names), _NoScratch()
        try:
            lines: List[str] = []
            self.into(node, out, lines)
            return lines
        except (Unstackable, _NeedsScratch):
            return None
        finally:
            self.p, self.scratch = saved

    def insert_allocations(self, lines: List[str]) -> List[str]:
        """Scratch allocations right after the function's ``dtype = ...`` line."""
        allocations = self.scratch.allocations()
        if not allocations:
            return lines
        at = next(k for k, line in enumerate(lines) if line.strip().startswith("dtype = "))
        comment = "    # scratch buffers, allocated once and reused at every step"
        return lines[:at + 1] + [comment] + ["    " + a for a in allocations] + lines[at + 1:]
