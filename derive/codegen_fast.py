"""A faster style of the generated NumPy module: same interface, fewer temporaries.

The readable module (:mod:`derive.codegen`) writes each equation as one NumPy
expression, so every operator allocates a fresh array; at the notes'
regression size (H x B = 50 x 8317) each is 3.3 MB, allocated, page-faulted
and freed again at every step. This style writes the same statements as a
sequence of ufunc calls with ``out=``: the result goes straight into its
stored array (``z[t]``, ``dL_dz[t]``) and an inner result that needs its own
room goes into a scratch buffer allocated once, before the time loop.

``tanh`` of a large real array is computed from ``exp`` (``np.tanh`` of
float64 is not vectorised in NumPy; ``exp`` is, and is about 3x faster):
``tanh|a| = 2 / (1 + exp(-2|a|)) - 1`` with the sign copied back, which has
an absolute error of a few units in the last place and cannot overflow.
Complex arrays (complex-step checks) and small arrays use ``np.tanh``.

The statements are generated from the same matrix derivation as the
readable module, node by node: ``+ - * /``, ``@``, ``** n``, negation,
``tanh``, ``exp``, ``log`` and ``sigmoid`` are written in place; anything
else (softmax, sums, picks, ...) is printed exactly as the readable module
prints it. Every statement keeps its equation as a comment above it.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from .codegen import HELPERS, ModuleWriter, _dims_code, needed_adjoints, needed_values
from .expr import Adj, Binary, Call, Node, Num, Ref, SizeRef, Step, Unary, walk
from .matrix import MatrixDerivation, Term
from .model import Model
from .numpy_printer import NumPyPrinter, variable

FAST_HELPERS = '''

def _tanh(a, out=None):
    """tanh(a) into out: from exp for large real arrays (same values to a few ulp)."""
    if out is None:
        out = np.empty_like(a)
    if a.dtype.kind != "f" or a.size < 4096:
        return np.tanh(a, out=out)
    np.abs(a, out=out)
    out *= -2.0
    np.exp(out, out=out)            # e = exp(-2|a|), in (0, 1]
    out += 1.0
    np.divide(2.0, out, out=out)    # 2 / (1 + e)
    out -= 1.0                      # (1 - e) / (1 + e) = tanh|a|
    return np.copysign(out, a, out=out)


def _one_buffer(shape, steps, dtype):
    """A (steps,) + shape array whose steps all share one buffer (zero stride over t)."""
    buf = np.zeros(shape, dtype=dtype)
    return np.lib.stride_tricks.as_strided(buf, (steps,) + shape, (0,) + buf.strides)


def _sigmoid_into(a, out):
    """1 / (1 + exp(-a)) into out."""
    np.negative(a, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)
'''

UFUNC = {"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide"}
IN_PLACE_CALLS = {"tanh": "_tanh({a}, out={out})", "exp": "np.exp({a}, out={out})",
                  "log": "np.log({a}, out={out})", "sigmoid": "_sigmoid_into({a}, out={out})"}


class FastPrinter(NumPyPrinter):
    """The readable printer, with the exp-based ``tanh`` where a call allocates anyway."""

    def print_Call(self, node: Call) -> str:
        if node.fn == "tanh":
            return f"_tanh({self.print(node.args[0])})"
        return super().print_Call(node)


def _simple(node: Node) -> bool:
    """A node printed as an existing array (or a number): no computation, no temporary."""
    if isinstance(node, (Ref, Adj, Num, SizeRef)):
        return True
    return isinstance(node, Unary) and node.op == "T" and _simple(node.x)


class Scratch:
    """Scratch buffers of one function: one per (shape, depth within a statement)."""

    def __init__(self):
        self.buffers: Dict[Tuple[tuple, int], str] = {}
        self.in_use: Dict[tuple, int] = {}

    def start_statement(self):
        self.in_use = {}

    def take(self, shape) -> str:
        key = tuple(shape)
        k = self.in_use.get(key, 0)
        self.in_use[key] = k + 1
        if (key, k) not in self.buffers:
            self.buffers[(key, k)] = f"_s{len(self.buffers)}"
        return self.buffers[(key, k)]

    def allocations(self) -> List[str]:
        return [f"{name} = np.empty({_dims_code(shape, False)}, dtype=dtype)"
                for (shape, _), name in self.buffers.items()]


class FastModuleWriter(ModuleWriter):
    """The readable module's writer with statements written as in-place ufunc calls."""

    def __init__(self, model: Model, derivation: MatrixDerivation):
        super().__init__(model, derivation)
        self.p = FastPrinter(model)
        self.scratch = Scratch()

    # -- statements ----------------------------------------------------------
    def shape(self, node: Node):
        return tuple(self.model.shape(node))

    def operand(self, node: Node, lines: List[str]) -> str:
        """Code of an operand: the array itself when simple, else a scratch holding it."""
        if _simple(node):
            return self.p(node)
        if isinstance(node, Unary) and node.op == "T":
            return self.operand(node.x, lines) + ".T"
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
            if not _simple(a) and self.shape(a) == shape and not _simple(b) and self.shape(b) == shape:
                self.into(a, out, lines)
                left, right = out, self.operand(b, lines)
            elif not _simple(a) and self.shape(a) == shape:
                self.into(a, out, lines)
                left, right = out, self.p(b)
            elif not _simple(b) and self.shape(b) == shape:
                self.into(b, out, lines)
                left, right = self.operand(a, lines), out
            else:
                left, right = self.operand(a, lines), self.operand(b, lines)
            lines.append(f"{UFUNC[node.op]}({left}, {right}, out={out})")
        elif isinstance(node, Binary) and node.op == "@":
            left, right = self.operand(node.a, lines), self.operand(node.b, lines)
            lines.append(f"np.matmul({left}, {right}, out={out})")
        elif isinstance(node, Binary) and node.op == "**" and isinstance(node.b, Num):
            base = self.in_place_argument(node.a, out, shape, lines)
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

    def in_place_argument(self, arg: Node, out: str, shape, lines: List[str]) -> str:
        """An elementwise argument: computed into ``out`` itself when it has the result's shape."""
        if not _simple(arg) and self.shape(arg) == shape:
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
        elif _simple(expr):
            lines.append(f"{target} += {self.p(expr)}")
        elif isinstance(expr, Call) and expr.fn not in IN_PLACE_CALLS:
            lines.append(f"{target} += {self.p(expr)}")  # a reduction: small, keep it readable
        else:
            buf = self.scratch.take(shape)
            self.into(expr, buf, lines)
            lines.append(f"{target} += {buf}")
        return lines

    # -- overrides of the readable writer ----------------------------------------
    def accumulate(self, target: str, term: Term, indent: int, first: bool,
                   per_step_target: bool, comment: str):
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

    def step_local(self) -> List[str]:
        """Per-step quantities read only at their own step and not by the backward pass."""
        model, d = self.model, self.derivation
        needed = needed_adjoints(d)
        kept = needed_values(model, [t.expr for n in needed for t in d.adjoints[n].terms])
        kept |= {model.loss}
        out = []
        for eq in model.phase("step"):
            name = eq.name
            if name in kept or model.symbols[name].kind != "quantity":
                continue
            uses = [(e, r) for e in model.equations for r in walk(e.expr)
                    if isinstance(r, Ref) and r.name == name]
            if all(e.per_step and r.step is not None and r.step.kind == "rel" and r.step.offset == 0
                   for e, r in uses):
                out.append(name)
        return out

    def forward_function(self):
        model = self.model
        start = len(self.lines)
        self.scratch = Scratch()
        super().forward_function()
        for name in self.step_local():
            sym = model.symbols[name]
            old = f"    {variable(model, name)} = np.zeros({_dims_code(sym.shape, True)}, dtype=dtype)"
            new = (f"    {variable(model, name)} = _one_buffer({_dims_code(sym.shape, False)}, T + 1, dtype)"
                   f"  # {model.display(name)} is used at its own step only: one buffer serves every t")
            self.lines[start:] = [new if line == old else line for line in self.lines[start:]]
        # Rewrite the step loop's statements (the readable writer emits "target = expr").
        steps = {f"{self.p(Ref(eq.name, Step('rel', 0)))} = ": eq for eq in model.phase("step")}
        out: List[str] = []
        for line in self.lines[start:]:
            body = line.strip()
            eq = next((e for prefix, e in steps.items() if body.startswith(prefix)), None)
            if eq is None or not line.startswith(" " * 8):
                out.append(line)
                continue
            target = self.p(Ref(eq.name, Step("rel", 0)))
            for stmt in self.statement(target, model.symbols[eq.name].shape, eq.expr, accumulate=False):
                out.append(" " * 8 + stmt)
        self.lines[start:] = self.insert_allocations(out)

    def gradient_function(self, needed):
        start = len(self.lines)
        self.scratch = Scratch()
        super().gradient_function(needed)
        self.lines[start:] = self.insert_allocations(self.lines[start:])

    def insert_allocations(self, lines: List[str]) -> List[str]:
        """Scratch allocations right after the function's ``dtype = ...`` line."""
        allocations = self.scratch.allocations()
        if not allocations:
            return lines
        at = next(k for k, line in enumerate(lines) if line.strip().startswith("dtype = "))
        comment = "    # scratch buffers, allocated once and reused at every step"
        return lines[:at + 1] + [comment] + ["    " + a for a in allocations] + lines[at + 1:]

    def write(self) -> str:
        text = super().write()
        text = text.replace(HELPERS, HELPERS + FAST_HELPERS, 1)
        return text.replace("generated by derive", "fast style, generated by derive", 1) \
                   .replace(f"derive code {self.model.name}", f"derive code --style fast {self.model.name}", 1)


def generate_fast_module(model: Model, derivation: MatrixDerivation) -> str:
    """The fast-style NumPy module's source (same interface and tables as :func:`generate_module`)."""
    try:
        return FastModuleWriter(model, derivation).write()
    except Exception:  # a construct this style does not handle: the readable module is correct
        from .codegen import generate_module
        return generate_module(model, derivation)


__all__ = ["generate_fast_module", "FastModuleWriter"]
