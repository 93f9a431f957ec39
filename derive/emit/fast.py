"""A faster style of the generated NumPy module: same interface, fewer temporaries.

The readable module (:mod:`derive.codegen`) writes each equation as one NumPy
expression, so every operator allocates a fresh array; at the notes'
regression size (H x B = 50 x 8317) each is 3.3 MB, allocated, page-faulted
and freed again at every step. This style writes the same statements as a
sequence of ufunc calls with ``out=``: the result goes straight into its
stored array (``z[t]``, ``dL_dz[t]``) and an inner result that needs its own
room goes into a scratch buffer allocated once, before the time loop.

``tanh`` is ``np.tanh`` where NumPy runs its SIMD float64 ``tanh`` (CPUs
with AVX-512: 0.33 ms for the 415,850 entries of one regression ``h_t``,
against 0.73 ms through ``exp``). Elsewhere NumPy's float64 ``tanh`` is a
scalar loop, about 3x slower than its vectorised ``exp``, and a large real
array goes through ``tanh a = 1 - 2 / (1 + exp(2a))``: an absolute error
below 1e-15 (``exp`` overflowing to ``inf`` gives exactly 1), so a relative
error that grows as ``|a|`` shrinks (2e-12 for ``|a|`` near 1, 1e-3 near
1e-8). Complex arrays (complex-step checks) and small arrays always use
``np.tanh``.

Work that does not need the time loop leaves it (small problems are
dominated by Python's cost per statement): a step equation nothing in the
loop reads (the output layer, softmax, per-step losses) is computed after the
forward loop for every step at once, on the stacked ``(T, m, n)`` arrays; a
step adjoint term that reads no adjoint computed in the loop (``dL/do_t =
y_t - onehot(c_t)``, ``W_hy.T @ dL/do_t``) is computed before the backward
loop; and a parameter gradient summed over steps is one stacked product after
it (``sum_t dL/dz_t @ h_{t-1}.T`` as ``_tsum_matmul``). Inside the loops, what
reads nothing the loop computes is taken out too: the input part of a loop
equation (``W_xh @ x_t + b_h`` of ``z_t``, where its stack is small at the
model's default sizes) and the adjoint-free factor of a loop adjoint (``1 -
h_t**2`` of ``dL/dz_t``), each computed for every step before its loop. An
adjoint read only at its own step inside the loop keeps one buffer for every
step. Anything the stacked printer cannot write stays in the loop as before.

Arrays of 128 kB or more that live for one call (the ``(T + 1, ...)`` stacks,
scratch buffers) come from a pool kept between calls (``BUFFER_BYTES``, at most
256 MiB; ``release_buffers()`` empties it): glibc maps such arrays fresh from
the system and hands them back on free, and faulting their pages in again at
every call took 40 % of the character model's gradient at B = 32. Nothing
returned to the caller is pooled. A stack its function assigns at every step
before reading it (``_stack``) is zero-filled at its step 0 only. When the
loss is a sum or mean over a batch's columns (:mod:`derive.batch_split`),
``threads=N`` splits the columns over N threads (:mod:`derive.codegen_threads`).

The statements are generated from the same matrix derivation as the
readable module, node by node: ``+ - * /``, ``@``, ``** n``, negation,
``tanh``, ``exp``, ``log`` and ``sigmoid`` are written in place; anything
else (softmax, sums, picks, ...) is printed exactly as the readable module
prints it. Every statement keeps its equation as a comment above it.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Set, Tuple

from .batch_split import NotSplittable, batch_split
from .readable import (HELPERS, ModuleWriter, _dims_code, docstring_text, regenerate_command, needed_adjoints, needed_values, targets_step_zero,
                      summed_in_loop, whole_sum)
from ..notation.expr import Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Step, Unary, adjoint_refs, walk
from .threads import PART_GRADIENT, PART_LOSS, batch_doc_lines, batch_entry_points
from ..calculus.matrix import Adjoint, MatrixDerivation, Term
from ..model.model import Model
from ..notation.printer import show
from .numpy_printer import NumPyPrinter, number_only, size_name, variable
from ..notation.printer import PREC_POSTFIX

FAST_HELPERS = '''

def _numpy_simd_tanh():
    """Whether NumPy's float64 tanh runs its AVX-512 SIMD loop on this CPU."""
    for where in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return bool(importlib.import_module(where).__cpu_features__.get("AVX512_SKX"))
        except (ImportError, AttributeError):
            continue
    return False


_EXP_TANH = not _numpy_simd_tanh()  # np.tanh is then a scalar loop, slower than exp


def _tanh(a, out=None):
    """tanh(a) into out; through exp for large real arrays when np.tanh is not vectorised (abs. error < 1e-15)."""
    if out is None:
        out = np.empty_like(a)
    if not _EXP_TANH or a.dtype.kind != "f" or a.size < 1024:
        return np.tanh(a, out=out)
    np.multiply(a, 2.0, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)        # e = exp(2a); inf for large a gives tanh = 1 below
    out += 1.0
    np.divide(2.0, out, out=out)    # 2 / (1 + e)
    np.subtract(1.0, out, out=out)  # (e - 1) / (e + 1) = tanh a
    return np.copysign(out, a, out=out)  # tanh(-0.0) = -0.0


def _matmul(a, b, out):
    """a @ b into out; an outer product (one inner column) as a broadcast multiply, not a GEMM."""
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)


BUFFER_BYTES = 256 * 2**20  # arrays kept between calls, at most (0: keep none)
_MIN_POOLED_BYTES = 128 * 2**10  # smaller arrays come back from malloc without page faults
_free = collections.OrderedDict()  # (shape, dtype) -> arrays no call is using
_free_lock = threading.Lock()
_call = threading.local()  # .taken: the pooled arrays of the running call


def _pooled(function):
    """Run function with its own list of taken arrays; they go back to the pool when it returns.

    A fresh array of a few hundred kB or more is mapped from the system and its pages are
    faulted in at first touch, every call: on a 2-core VM that cost more than the arithmetic
    of the character model. Kept arrays are reused instead (zero-filled where asked).
    """
    @functools.wraps(function)
    def run(*args, **kwargs):
        outer = getattr(_call, "taken", None)
        _call.taken = []
        try:
            return function(*args, **kwargs)
        finally:
            taken, _call.taken = _call.taken, outer
            _give_back(taken)
    return run


def _give_back(arrays):
    with _free_lock:
        for array in arrays:
            _free.setdefault((array.shape, array.dtype.str), []).append(array)
        total = sum(a.nbytes for kept in _free.values() for a in kept)
        while _free and total > BUFFER_BYTES:
            for array in _free.popitem(last=False)[1]:
                total -= array.nbytes


def release_buffers():
    """Drop the arrays kept between calls."""
    with _free_lock:
        _free.clear()


def _empty(shape, dtype):
    """An array for this call: reused from the pool when one of this shape is free."""
    taken = getattr(_call, "taken", None)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if taken is None or nbytes < _MIN_POOLED_BYTES:
        return np.empty(shape, dtype=dtype)
    with _free_lock:
        kept = _free.get((tuple(shape), np.dtype(dtype).str))
        array = kept.pop() if kept else None
    if array is None:
        array = np.empty(shape, dtype=dtype)
    taken.append(array)
    return array


def _zeros(shape, dtype):
    """A zero-filled array for this call (see _empty)."""
    array = _empty(shape, dtype)
    array.fill(0)
    return array


def _stack(shape, dtype):
    """A (T + 1, ...) stack for this call that its function writes at every step 1..T before
    reading it: only step 0 (an initial state, or never read) is zero-filled (see _empty)."""
    array = _empty(shape, dtype)
    array[0].fill(0)
    return array


def _one_buffer(shape, steps, dtype):
    """A (steps,) + shape array whose steps all share one buffer (zero stride over t)."""
    buf = _zeros(shape, dtype)
    return np.lib.stride_tricks.as_strided(buf, (steps,) + shape, (0,) + buf.strides)


def _softmax_s(a, out=None):
    """softmax of every column of every step of a stacked (T, n, B) array (into out when given)."""
    e = np.subtract(a, a.real.max(axis=-2, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= e.sum(axis=-2, keepdims=True)
    return e


def _onehot_s(classes, n):
    """Stacked one-hot columns: classes (T, B) -> (T, n, B)."""
    out = np.zeros((classes.shape[0], n, classes.shape[1]))
    out[np.arange(classes.shape[0])[:, None], classes, np.arange(classes.shape[1])[None, :]] = 1
    return out


def _pick_s(a, classes):
    """Stacked pick: a (T, n, B), classes (T, B) -> (T, 1, B)."""
    return a[np.arange(a.shape[0])[:, None], classes, np.arange(a.shape[2])[None, :]][:, None, :]


def _tsum_matmul(a, b):
    """sum over t of a[t] @ b[t] for stacked a (T, m, k), b (T, k, n): no Python loop."""
    steps, m, k = a.shape
    n = b.shape[2]
    if k * (m + n) < m * n:  # thin products: one product over the stacked (t, k) axis
        flat_a = _empty((m, steps * k), a.dtype)
        flat_a.reshape(m, steps, k)[...] = a.transpose(1, 0, 2)
        flat_b = _empty((n, steps * k), b.dtype)
        flat_b.reshape(n, steps, k)[...] = b.transpose(2, 0, 1)
        return flat_a @ flat_b.T
    return np.matmul(a, b).sum(axis=0)  # T products, each (m, n): no copy of a or b


def _subtract_onehot_s(a, classes):
    """a[t] -= onehot(classes[t]) for every step, in place: a (T, n, B), classes (T, B)."""
    a[np.arange(a.shape[0])[:, None], classes, np.arange(a.shape[2])[None, :]] -= 1


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
        return [f"{name} = _empty({_dims_code(shape, False)}, dtype)"
                for (shape, _), name in self.buffers.items()]


INPUT_STACK_BYTES = 8 * 2**20  # largest stack for the input part of a loop equation


def _summands(node: Node) -> List[Node]:
    """The terms of a chain of ``+``."""
    if isinstance(node, Binary) and node.op == "+":
        return _summands(node.a) + _summands(node.b)
    return [node]


def _sum_of(terms: List[Node]) -> Node:
    out = terms[0]
    for term in terms[1:]:
        out = Binary("+", out, term)
    return out


class _NeedsScratch(Exception):
    """A statement written for every step at once would need a scratch buffer."""


class _NoScratch(Scratch):
    def take(self, shape) -> str:
        raise _NeedsScratch()


class FastModuleWriter(ModuleWriter):
    """The readable module's writer with statements written as in-place ufunc calls."""

    def __init__(self, model: Model, derivation: MatrixDerivation):
        super().__init__(model, derivation)
        self.p = FastPrinter(model)
        self.scratch = Scratch()
        try:
            self.split = batch_split(model)
        except NotSplittable:
            self.split = None
        if self.split is not None:
            self.loss_name, self.gradient_name = PART_LOSS, PART_GRADIENT

    # -- statements ----------------------------------------------------------
    def shape(self, node: Node):
        return tuple(self.model.shape(node))

    def operand(self, node: Node, lines: List[str]) -> str:
        """Code of an operand: the array itself when simple, else a scratch holding it."""
        if _simple(node):
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
            scaling = (1, 1) in (self.shape(node.a), self.shape(node.b))  # a factor may be a scalar
            lines.append(f"{'np.multiply' if scaling else '_matmul'}({left}, {right}, out={out})")
        elif isinstance(node, Binary) and node.op == "**" and isinstance(node.b, Num):
            base = self.in_place_argument(node.a, out, shape, lines)
            if number_only(node.a) and _simple(node.a):
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

    def hoisted_forward(self):
        """Step equations nothing in the time loop reads: computed after it, for all steps at once."""
        model = self.model
        steps = model.phase("step")
        names = {eq.name for eq in steps}
        stay = set()
        for eq in steps:
            for r in walk(eq.expr):
                if isinstance(r, Ref) and r.name in names and (
                        r.step is None or r.step.kind != "rel" or r.step.offset != 0):
                    stay.add(eq.name)
            try:
                StackedPrinter(model).print(eq.expr)
            except Exception:
                stay.add(eq.name)
        changed = True
        while changed:
            changed = False
            for eq in steps:
                if eq.name in stay:
                    for r in walk(eq.expr):
                        if isinstance(r, Ref) and r.name in names and r.name not in stay:
                            stay.add(r.name)
                            changed = True
        return [eq for eq in steps if eq.name not in stay]

    def stack_read(self, exprs):
        """Per-step names the stacked expressions read (they need every step stored)."""
        return {n.name for e in exprs for n in walk(e) if isinstance(n, (Ref, Adj))}

    def forward_function(self):
        model = self.model
        start = len(self.lines)
        self.scratch = Scratch()
        hoisted = self.hoisted_forward()
        self.hoisted_names = {eq.name for eq in hoisted}
        super().forward_function()
        self.written_stacks = {variable(model, eq.name) for eq in model.phase("step")}
        full = self.hoisted_names | self.stack_read([eq.expr for eq in hoisted])
        self.local_names = [n for n in self.step_local() if n not in full]
        for name in self.local_names:
            sym = model.symbols[name]
            old = f"    {variable(model, name)} = np.zeros({_dims_code(sym.shape, True)}, dtype=dtype)"
            new = (f"    {variable(model, name)} = _one_buffer({_dims_code(sym.shape, False)}, T + 1, dtype)"
                   f"  # {model.display(name)} is used at its own step only: one buffer serves every t")
            self.lines[start:] = [new if line == old else line for line in self.lines[start:]]
        # Rewrite the step loop's statements (the readable writer emits "target = expr").
        steps = {f"{self.p(Ref(eq.name, Step('rel', 0)))} = ": eq for eq in model.phase("step")}
        out: List[str] = []
        before_loop: List[str] = []
        sp = StackedPrinter(model)
        skip = False
        comments = {f"# ({eq.number}) {model.display(eq.name, Step('rel', 0))} = ": eq for eq in hoisted}
        for line in self.lines[start:]:
            body = line.strip()
            if line.startswith(" " * 8) and any(body.startswith(c) for c in comments):
                skip = True
                continue
            eq = next((e for prefix, e in steps.items() if body.startswith(prefix)), None)
            if eq is None or not line.startswith(" " * 8):
                if skip and line.startswith(" " * 8) and not body.startswith("#"):
                    continue  # the rest of a hoisted statement (never: one line each)
                skip = False
                out.append(line)
                continue
            if skip and eq.name in self.hoisted_names:
                skip = False
                continue
            target = self.p(Ref(eq.name, Step("rel", 0)))
            loop_expr, stacked = eq.expr, self.input_part(eq)
            if stacked is not None:
                loop_expr, input_expr = stacked
                var = variable(model, eq.name)
                before_loop += [f"    # ({eq.number}) {model.display(eq.name, Step('rel', 0))}: "
                                f"{show(input_expr)} for every step at once",
                                f"    _in_{var} = _stack({_dims_code(model.symbols[eq.name].shape, True)}, dtype)"]
                before_loop += ["    " + line for line in self.stacked_assignment(f"_in_{var}[1:]", input_expr, sp)]
            for stmt in self.statement(target, model.symbols[eq.name].shape, loop_expr, accumulate=False):
                out.append(" " * 8 + stmt)
            if stacked is not None:
                out.append(f"        {target} += _in_{variable(model, eq.name)}[t]")
        if before_loop:
            loop = next(k for k, line in enumerate(out) if line.startswith("    for t in range(1, T + 1):"))
            out[loop:loop] = before_loop
        if hoisted:
            loop = next(k for k, line in enumerate(out) if line.startswith("    for t in range(1, T + 1):"))
            end = next(k for k in range(loop + 1, len(out)) if not out[k].startswith(" " * 8))
            extra = []
            for eq in hoisted:
                extra.append(f"    # ({eq.number}) {model.display(eq.name, Step('rel', 0))} = {show(eq.expr)}"
                             "  (every step at once)")
                extra += ["    " + line for line in self.stacked_assignment(f"{variable(model, eq.name)}[1:]", eq.expr, sp)]
            if all(line.strip().startswith("#") or not line.strip() for line in out[loop + 1:end]):
                out[loop:end] = extra
            else:
                out[end:end] = extra
        self.lines[start:] = self.insert_allocations(out)

    def input_part(self, eq) -> Optional[Tuple[Node, Node]]:
        """(loop part, input part) of a loop equation that is a sum with a product of inputs.

        ``z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h``: ``W_xh @ x_t + b_h`` reads no value the
        loop computes, so it is computed for every step at once before the loop (one call
        instead of three per step). Only where the stack it needs is small at the model's
        default sizes (``INPUT_STACK_BYTES``): the per-step calls cost more than their
        arithmetic there, while a large stack costs memory and saves nothing.
        """
        if not self.model.symbols[eq.name].per_step:
            return None
        leaves = _summands(eq.expr)
        inputs = [leaf for leaf in leaves if self.reads_inputs_only(leaf)]
        rest = [leaf for leaf in leaves if not self.reads_inputs_only(leaf)]
        if not inputs or not rest or not any(isinstance(n, Binary) and n.op == "@"
                                              for leaf in inputs for n in walk(leaf)):
            return None
        input_expr, loop_expr = _sum_of(inputs), _sum_of(rest)
        shape = self.model.symbols[eq.name].shape
        sizes = self.model.sizes
        dims = [d if isinstance(d, int) else sizes.get(d) for d in shape]
        if None in dims or sizes.get("T") is None or self.shape(input_expr) != tuple(shape):
            return None
        if 8 * (sizes["T"] + 1) * dims[0] * dims[1] > INPUT_STACK_BYTES or not self.stackable(input_expr):
            return None
        return loop_expr, input_expr

    def reads_inputs_only(self, node: Node) -> bool:
        """Whether node reads only parameters, fixed values and this step's inputs."""
        for n in walk(node):
            if isinstance(n, Adj):
                return False
            if isinstance(n, Ref):
                sym = self.model.symbols[n.name]
                if sym.per_step and not (sym.kind == "input" and n.step is not None
                                         and n.step.kind == "rel" and n.step.offset == 0):
                    return False
        return True

    def stacked_assignment(self, target: str, expr: Node, sp: "StackedPrinter") -> List[str]:
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
            lines = [f"_matmul({sp(expr.a)}, {sp(expr.b)}, out={target})"]
            return lines + ([f"{target} += {sp(rest)}"] if rest is not None else [])
        expr = whole
        if isinstance(expr, Call) and expr.fn == "softmax" and sp.stacked(expr):
            return [f"_softmax_s({sp(expr.args[0])}, out={target})"]
        if (isinstance(expr, Binary) and expr.op == "-" and isinstance(expr.b, Call)
                and expr.b.fn == "onehot" and sp.stacked(expr.b)):
            return [f"{target} = {sp(expr.a)}", f"_subtract_onehot_s({target}, {sp(expr.b.args[0])})"]
        return [f"{target} = {sp(expr)}"]

    # -- backward -----------------------------------------------------------------
    def stackable(self, expr: Node) -> bool:
        try:
            StackedPrinter(self.model, self.local_names).print(expr)
        except Exception:
            return False
        return True

    def gradient_function(self, needed: Set[str]):
        model, d = self.model, self.derivation
        start = len(self.lines)
        self.scratch = Scratch()
        sp = StackedPrinter(model, self.local_names)
        loads_at, pre, steps, shared = self.gradient_preamble(needed)

        # Step-adjoint terms that read no adjoint computed in the loop: every step at once, before it.
        ready: Set[str] = set()   # per-step adjoints complete before the loop
        self.in_loop_terms: Dict[str, List[Term]] = {}

        def before_loop(term: Term) -> bool:
            if self.conditions(term, True):
                return False
            if any(model.symbols[a.name].per_step and a.name not in ready for a in adjoint_refs(term.expr)):
                return False
            return sp.stacked(term.expr) and self.stackable(term.expr)

        for name in steps:
            terms = self.step_terms(name)
            early = [t for t in terms if before_loop(t)]
            self.in_loop_terms[name] = [t for t in terms if t not in early]
            var = f"dL_d{variable(model, name)}"
            for k, term in enumerate(early):
                self.emit(f"# {self.adjoint_comment(name, term, first=k == 0)}  (every step at once)", 1)
                if k == 0:
                    for line in self.stacked_assignment(f"{var}[1:]", term.expr, sp):
                        self.emit(line, 1)
                else:
                    self.emit(f"{var}[1:] += {sp(term.expr)}", 1)
            if not self.in_loop_terms[name]:
                ready.add(name)
            in_loop_terms = self.in_loop_terms[name]
            if early or (len(in_loop_terms) == len(terms)
                         and any(not self.conditions(t, True) for t in in_loop_terms)):
                self.written_stacks.add(var)  # its first statement assigns every step

        # Parameter terms summed over steps: after the loop, as one stacked computation.
        def after_loop(term: Term) -> bool:
            return (term.summed and not self.conditions(term, False) and term.at is None
                    and sp.stacked(term.expr) and self.stackable(term.expr))

        in_loop = [n for n in steps if self.in_loop_terms[n]]
        late = [(name, term) for name in shared for term in d.adjoints[name].terms if after_loop(term)]
        self.one_buffer = self.one_buffer_adjoints(in_loop, late, shared)
        for name in self.one_buffer:
            sym = model.symbols[name]
            old = f"    dL_d{variable(model, name)} = np.zeros({_dims_code(sym.shape, True)}, dtype=dtype)"
            new = (f"    dL_d{variable(model, name)} = _one_buffer({_dims_code(sym.shape, False)}, T + 1, dtype)"
                   f"  # read at its own step only: one buffer serves every t")
            self.lines[start:] = [new if line == old else line for line in self.lines[start:]]
        self.prefactored = self.hoist_factors(in_loop)
        late = []
        loop_at = len(self.lines)
        self.emit("for t in range(T, 0, -1):", 1)
        body_at = len(self.lines)
        for name in in_loop:
            self.step_adjoint(name, 2)
        for st in model.states:
            for term in d.adjoints.get(st.name, Adjoint(st.name, [])).terms:
                if targets_step_zero(term) and term.summed:  # h_0 read at every step
                    self.accumulate(f"dL_d{variable(model, st.name)}[0]", term, 2, False, False,
                                    self.adjoint_comment(st.name, term, at_zero=True))
        for name in shared:
            for term in d.adjoints[name].terms:
                if summed_in_loop(term):
                    if after_loop(term):
                        late.append((name, term))
                    else:
                        self.accumulate(f"dL_d{variable(model, name)}", term, 2, False, False,
                                        self.adjoint_comment(name, term))
        if len(self.lines) == body_at:
            del self.lines[loop_at:]
        for name, term in late:
            var = f"dL_d{variable(model, name)}"
            self.emit(f"# {self.adjoint_comment(name, term)}  (every step at once)", 1)
            e = term.expr
            if isinstance(e, Binary) and e.op == "@" and sp.stacked(e.a) and sp.stacked(e.b):
                self.emit(f"{var} += _tsum_matmul({sp(e.a)}, {sp(e.b)})", 1)
            elif isinstance(e, Call) and e.fn == "rowsum" and sp.stacked(e.args[0]):
                # over the steps first: NumPy sums the contiguous (T, ...) axis faster than rows
                self.emit(f"{var} += ({sp(e.args[0])}).sum(axis=0).sum(axis=-1, keepdims=True)", 1)
            else:
                self.emit(f"{var} += ({sp(e)}).sum(axis=0)", 1)
        self.after_loop_terms(pre)
        self.emit(f"grads = {{{', '.join(f'{s.name!r}: dL_d{variable(model, s.name)}' for s in model.params)}}}", 1)
        states = [s for s in model.states if s.name in needed]
        if states:
            self.emit("if wrt_initial_state:", 1)
            for s in states:
                if s.name in self.one_buffer:
                    self.emit(f"dL_d{variable(model, s.name)} = _one_buffer("
                              f"{_dims_code(s.shape, False)}, T + 1, dtype)", 2)
                self.initial_state_adjoint(s.name, 2)
                self.emit(f"grads[{s.base + '_0'!r}] = dL_d{variable(model, s.name)}[0].copy()", 2)
        self.emit(f"return np.asarray(v[{variable(model, model.loss)!r}]).reshape(())[()], grads", 1)
        self.insert_loads(loads_at, self.scratch.allocations())
        self.lines[start:] = self.insert_allocations(self.lines[start:])

    def hoist_factors(self, in_loop) -> Dict[str, Node]:
        """Emit the adjoint-free factor of one-term loop adjoints for every step, before the loop.

        ``dL/dz_t = dL/dh_t * (1 - h_t**2)``: ``1 - h_t**2`` reads no adjoint, so it goes into
        the stack ``dL_dz[1:]`` at once and the loop only multiplies by ``dL/dh_t``. Returns
        the factor left for the loop of each adjoint so treated. A factor that is a stored
        value already (``h_{t-1}``) stays in the loop: hoisting it would only copy it.
        """
        left: Dict[str, Node] = {}
        for name in in_loop:
            var = f"dL_d{variable(self.model, name)}"
            terms = self.in_loop_terms[name]
            if (name in self.one_buffer or var not in self.written_stacks or len(terms) != 1
                    or len(self.step_terms(name)) != 1 or self.conditions(terms[0], True)):
                continue
            expr = terms[0].expr
            if not (isinstance(expr, Binary) and expr.op == "*"):
                continue
            for factor, rest in ((expr.b, expr.a), (expr.a, expr.b)):
                if (_simple(factor) or adjoint_refs(factor) or not adjoint_refs(rest)
                        or self.shape(factor) != self.shape(expr) or not self.stackable(factor)):
                    continue
                lines = self.stacked_into(factor, f"{var}[1:]")
                if lines is None:
                    continue
                self.emit(f"# {self.adjoint_comment(name, terms[0], first=True)}: "
                          f"{show(factor)} for every step at once", 1)
                for line in lines:
                    self.emit(line, 1)
                left[name] = rest
                break
        return left

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

    def one_buffer_adjoints(self, in_loop, late, shared) -> Set[str]:
        """Step adjoints written only in the loop and read only at their own step there."""
        d = self.derivation
        out = set()
        for name in in_loop:
            if len(self.in_loop_terms[name]) != len(self.step_terms(name)):
                continue  # part of it is computed for every step before the loop
            if any(targets_step_zero(t) for t in d.adjoints[name].terms):
                continue  # its step 0 gathers a sum over the loop
            ok = True
            for other in d.adjoints:
                for term in d.adjoints[other].terms:
                    for a in adjoint_refs(term.expr):
                        if a.name != name:
                            continue
                        loop_term = (other in self.in_loop_terms and term in self.in_loop_terms[other]) or (
                            other in shared and term.summed and (other, term) not in late)
                        if not (loop_term and a.step is not None and a.step.kind == "rel"
                                and a.step.offset == 0):
                            ok = False
            if ok:
                out.add(name)
        return out

    def step_terms(self, name: str) -> List[Term]:
        """A step adjoint's terms at steps 1..T (not those gathered into a state's step 0)."""
        return [whole_sum(t) if t.summed else t
                for t in self.derivation.adjoints[name].terms if not targets_step_zero(t)]

    def step_adjoint(self, name: str, indent: int):
        """The terms left for the loop; ``+=`` when some were computed before it."""
        all_terms = self.step_terms(name)
        terms = self.in_loop_terms.get(name, all_terms)
        var = f"dL_d{variable(self.model, name)}[t]"
        ordered = sorted(terms, key=lambda t: bool(self.conditions(t, True)))
        first = len(terms) == len(all_terms)
        if name in getattr(self, "one_buffer", ()) and ordered and self.conditions(ordered[0], True):
            # every term holds at some steps only: the first that holds writes, later ones add
            sym = self.model.symbols[name]
            self.emit("_fresh = True", indent)
            for term in ordered:
                self.emit(f"# {self.adjoint_comment(name, term)}", indent)
                self.emit(f"if {' and '.join(self.conditions(term, True))}:", indent)
                self.emit("if _fresh:", indent + 1)
                for line in self.statement(var, sym.shape, term.expr, accumulate=False):
                    self.emit(line, indent + 2)
                self.emit("_fresh = False", indent + 2)
                self.emit("else:", indent + 1)
                for line in self.statement(var, sym.shape, term.expr, accumulate=True):
                    self.emit(line, indent + 2)
            self.emit("if _fresh:", indent)
            self.emit(f"{var}.fill(0)  # the shared buffer still holds step t + 1", indent + 1)
            return
        if name in getattr(self, "prefactored", {}):
            rest = self.prefactored[name]
            self.emit(f"# {self.adjoint_comment(name, terms[0], first=True)}: times {show(rest)}", indent)
            self.scratch.start_statement()
            lines: List[str] = []
            operand = self.operand(rest, lines)
            for line in lines + [f"{var} *= {operand}"]:
                self.emit(line, indent)
            return
        for term in ordered:
            unconditional = first and not self.conditions(term, True)
            self.accumulate(var, term, indent, first, True,
                            self.adjoint_comment(name, term, first=unconditional))
            first = False

    def insert_allocations(self, lines: List[str]) -> List[str]:
        """Scratch allocations right after the function's ``dtype = ...`` line."""
        allocations = self.scratch.allocations()
        if not allocations:
            return lines
        at = next(k for k, line in enumerate(lines) if line.strip().startswith("dtype = "))
        comment = "    # scratch buffers, allocated once and reused at every step"
        return lines[:at + 1] + [comment] + ["    " + a for a in allocations] + lines[at + 1:]

    def header(self):
        super().header()
        if self.split is not None:
            self.lines[-2:-2] = batch_doc_lines(self.split)  # before the closing quotes

    def compose(self) -> str:
        text = super().compose()
        text = text.replace(HELPERS, HELPERS + FAST_HELPERS, 1)
        # every (T + 1)-step stack comes from the pool of arrays kept between calls
        text = re.sub(r"(\w+) = np\.zeros\((\(T \+ 1, [^()]*\)), dtype=dtype\)",
                      lambda m: f"{m[1]} = {'_stack' if m[1] in self.written_stacks else '_zeros'}({m[2]}, dtype)",
                      text)
        for name in (self.loss_name, self.gradient_name):
            text = text.replace(f"\ndef {name}(", f"\n@_pooled\ndef {name}(", 1)
        imports = "import collections\nimport functools\nimport importlib\nimport threading\n"
        if self.split is not None:
            imports += "from concurrent.futures import ThreadPoolExecutor\n"
        text = text.replace("import numpy as np\n", f"{imports}\nimport numpy as np\n", 1)
        if self.split is not None:
            text += "\n\n" + "\n".join(batch_entry_points(self.model, self.split, self.data_dims)) + "\n"
        return text.replace("generated by derive", "fast style, generated by derive", 1) \
                   .replace(docstring_text(regenerate_command(self.model)),
                            docstring_text(regenerate_command(self.model, "--style fast")), 1)


def generate_fast_module(model: Model, derivation: MatrixDerivation) -> str:
    """The fast-style NumPy module's source (same interface and tables as :func:`generate_module`)."""
    try:
        return FastModuleWriter(model, derivation).write()
    except Exception:  # a construct this style does not handle: the readable module is correct
        from .readable import generate_module
        return generate_module(model, derivation)


__all__ = ["generate_fast_module", "FastModuleWriter"]
