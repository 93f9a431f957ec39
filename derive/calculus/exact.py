"""The exact derivation: unroll at concrete sizes, then a scalar reverse sweep.

Every entry of every intermediate gets its own SymPy symbol (``z_2[1,0]``)
defined by a scalar expression of earlier symbols, so the forward pass is a
list of assignments whose total size grows linearly in T.  The reverse
sweep walks the assignments backwards and gives each symbol an adjoint
symbol (``dL/dz_2[1,0]``) defined as the sum, over the symbols that use it,
of SymPy's ``diff`` of their definition times their adjoint.  Nothing is
assumed beyond ``diff`` of scalar expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import sympy

from ..model.model import Model
from ..notation.blocks import dim_value
from .entries import Evaluator, Mat, zeros

Key = Tuple[str, Optional[int]]  # (symbol name, step number or None)


def entry_name(model: Model, name: str, step: Optional[int], i: int, j: int) -> str:
    sym = model.symbols[name]
    base = f"{sym.base}_{step}" if sym.per_step else name
    return f"{base}[{i},{j}]"


@dataclass
class Unrolled:
    """The forward pass of a model at concrete sizes, as scalar assignments."""

    model: Model
    sizes: Dict[str, int]
    T: int
    values: Dict[Key, Mat] = field(default_factory=dict)
    classes: Dict[Key, List[int]] = field(default_factory=dict)
    assignments: List[Tuple[sympy.Symbol, sympy.Expr]] = field(default_factory=list)
    definition: Dict[sympy.Symbol, sympy.Expr] = field(default_factory=dict)
    owner: Dict[sympy.Symbol, Key] = field(default_factory=dict)
    leaves: List[sympy.Symbol] = field(default_factory=list)
    partials: Dict[sympy.Symbol, Dict[sympy.Symbol, sympy.Expr]] = field(default_factory=dict, repr=False)
    """Each assignment's local derivatives, shared by the sweeps of several losses (each step's ``L_t``)."""

    def dim(self, d) -> int:
        return dim_value(d, self.sizes)

    def shape(self, name: str) -> Tuple[int, int]:
        rows, cols = self.model.symbols[name].shape
        return self.dim(rows), self.dim(cols)

    def lookup(self, name: str, step: Optional[int]) -> Mat:
        key = (name, step)
        if key not in self.values:
            raise KeyError(f"{self.model.display(name)} has no value at step {step}")
        return self.values[key]

    def evaluator(self, adjoint=None) -> Evaluator:
        return Evaluator(self.model, self.sizes, self.T, self.lookup, adjoint,
                         lambda name, step: self.classes[(name, step)])


def _leaf(u: Unrolled, name: str, step: Optional[int]):
    rows, cols = u.shape(name)
    m = Mat.fill(rows, cols, lambda i, j: sympy.Symbol(entry_name(u.model, name, step, i, j), real=True))
    u.values[(name, step)] = m
    for s in m.data:
        u.owner[s] = (name, step)
        u.leaves.append(s)


def _assign(u: Unrolled, name: str, step: Optional[int], value: Mat):
    rows, cols = u.shape(name)
    if (value.rows, value.cols) == (1, 1) and (rows, cols) != (1, 1):
        value = Mat.fill(rows, cols, lambda i, j: value[0, 0])
    syms = []
    for (i, j), expr in value.entries():
        s = sympy.Symbol(entry_name(u.model, name, step, i, j), real=True)
        u.assignments.append((s, expr))
        u.definition[s] = expr
        u.owner[s] = (name, step)
        syms.append(s)
    u.values[(name, step)] = Mat(rows, cols, syms)


def unroll(model: Model, sizes: Dict[str, int], class_seed: int = 0) -> Unrolled:
    """The model's forward pass at ``sizes`` (which must include T for per-step models).

    Class targets get fixed class numbers drawn with ``class_seed``; every
    other input, target, parameter and initial state is a free symbol.
    """
    T = sizes.get("T", 1) if model.has_steps else 1
    u = Unrolled(model, dict(sizes), T)
    rng = np.random.default_rng(class_seed)
    for sym in model.symbols.values():
        if sym.kind == "param":
            _leaf(u, sym.name, None)
        elif sym.kind in ("input", "target"):
            steps = range(1, T + 1) if sym.per_step else [None]
            for t in steps:
                if sym.classes is not None:
                    n, cols = u.dim(sym.classes), u.dim(sym.shape[1])
                    u.classes[(sym.name, t)] = [int(c) for c in rng.integers(0, n, size=cols)]
                else:
                    _leaf(u, sym.name, t)
        elif sym.kind == "state":
            _leaf(u, sym.name, 0)
    ev = u.evaluator()
    for eq in model.phase("pre"):
        _assign(u, eq.name, None, ev(eq.expr))
    for t in range(1, T + 1):
        for eq in model.phase("step"):
            _assign(u, eq.name, t, ev(eq.expr, t))
    for eq in model.phase("post"):
        _assign(u, eq.name, None, ev(eq.expr))
    return u


def adjoint_symbol(s: sympy.Symbol, loss: str = "L") -> sympy.Symbol:
    return sympy.Symbol(f"d{loss}/d{s.name}", real=True)


@dataclass
class ExactAdjoints:
    """The reverse sweep's result for one scalar (the loss, or one step's loss)."""

    unrolled: Unrolled
    loss_symbol: sympy.Symbol
    symbol: Dict[sympy.Symbol, sympy.Symbol] = field(default_factory=dict)
    definition: Dict[sympy.Symbol, sympy.Expr] = field(default_factory=dict)
    parts: Dict[sympy.Symbol, List[Tuple[Key, sympy.Expr]]] = field(default_factory=dict)
    order: List[sympy.Symbol] = field(default_factory=list)

    def matrix(self, name: str, step: Optional[int]) -> Mat:
        """Adjoint symbols of a quantity (0 where nothing depends on an entry)."""
        key = (name, step)
        u = self.unrolled
        if key not in u.values:
            rows, cols = u.shape(name)
            return zeros(rows, cols)
        return u.values[key].map(lambda s: self.symbol.get(s, sympy.S.Zero))

    def expression(self, name: str, step: Optional[int], use_step: Optional[int] = None) -> Mat:
        """The defining sums of a quantity's adjoint entries.

        With ``use_step``, only the parts contributed by equations at that
        step (the derivative through one step's use of a shared weight).
        """
        u = self.unrolled
        forward = u.values[(name, step)]

        def entry(s):
            parts = self.parts.get(s, [])
            if use_step is not None:
                parts = [p for p in parts if p[0][1] == use_step]
            return sympy.Add(*[p[1] for p in parts])
        return forward.map(entry)


def reverse_sweep(u: Unrolled, loss: Optional[Tuple[str, Optional[int]]] = None) -> ExactAdjoints:
    """Adjoints of every symbol with respect to one scalar of the unrolled model.

    Parameters
    ----------
    u : Unrolled
        The forward assignments.
    loss : (name, step), optional
        The scalar to differentiate; the model's loss ``L`` by default.
    """
    key = loss or (u.model.loss, None)
    loss_sym = u.values[key][0, 0]
    name = u.model.display(key[0]) if key[1] is None else f"{u.model.symbols[key[0]].base}_{key[1]}"
    result = ExactAdjoints(u, loss_sym)
    parts = result.parts
    parts[loss_sym] = [(key, sympy.S.One)]
    for s, expr in reversed(u.assignments):
        if s not in parts:
            continue
        bar = adjoint_symbol(s, name)
        result.symbol[s] = bar
        result.definition[bar] = sympy.Add(*[p[1] for p in parts[s]])
        result.order.append(s)
        owner = u.owner[s]
        derivatives = u.partials.get(s)
        if derivatives is None:
            derivatives = u.partials[s] = partials(expr)
        for v in sorted(expr.free_symbols, key=lambda x: x.name):
            d = step_at_zero(derivatives[v])
            if d != 0:
                parts.setdefault(v, []).append((owner, d * bar))
    for v in u.leaves:
        if v in parts:
            bar = adjoint_symbol(v, name)
            result.symbol[v] = bar
            result.definition[bar] = sympy.Add(*[p[1] for p in parts[v]])
            result.order.append(v)
    return result


def partials(expr: sympy.Expr) -> Dict[sympy.Symbol, sympy.Expr]:
    """``sympy.diff(expr, v)`` for every free symbol ``v``, each function's derivative taken once.

    A function of a long sum (``sigmoid(W @ x + U @ h + b)`` at one entry)
    is differentiated with respect to its argument once, and that factor is
    multiplied by the argument's derivative for each symbol in it: the chain
    rule, with SymPy's ``diff`` at each link.  The expressions are the same
    as ``diff`` gives directly (``tests/test_identity_test.py`` compares them).
    """
    free = sorted(expr.free_symbols, key=lambda x: x.name)
    apps = sorted((a for a in expr.atoms(sympy.Function) if len(a.args) == 1 and len(a.args[0].free_symbols) > 1),
                  key=sympy.default_sort_key)
    apps = [a for a in apps if not any(a != b and b.has(a) for b in apps)]  # only the outermost
    if not apps:
        return {v: sympy.diff(expr, v) for v in free}
    dummies = [sympy.Dummy() for _ in apps]
    back = dict(zip(dummies, apps))
    outer = expr.xreplace(dict(zip(apps, dummies)))
    x = sympy.Dummy()
    through = []
    for app, dummy in zip(apps, dummies):
        inner = sympy.diff(app.func(x), x).xreplace({x: app.args[0]})
        through.append((_sum_partials(app.args[0]), (sympy.diff(outer, dummy) * inner).xreplace(back)))
    rest = outer.free_symbols
    out = {}
    for v in free:
        parts = [sympy.diff(outer, v).xreplace(back)] if v in rest else []
        parts += [common * inner[v] for inner, common in through if v in inner]
        out[v] = sympy.Add(*parts)
    return out


def _sum_partials(arg: sympy.Expr) -> Dict[sympy.Symbol, sympy.Expr]:
    """``diff(arg, v)`` for each free symbol ``v`` of a sum, each term differentiated only by its own symbols.

    ``diff`` of a sum is the sum of its terms' ``diff`` (the zeros drop out of ``Add``), so grouping
    the terms by symbol first gives the same expressions without differentiating every term by every symbol.
    """
    by_symbol: Dict[sympy.Symbol, List[sympy.Expr]] = {}
    for term in sympy.Add.make_args(arg):
        for v in term.free_symbols:
            by_symbol.setdefault(v, []).append(sympy.diff(term, v))
    return {v: sympy.Add(*parts) for v, parts in by_symbol.items()}


def derive_exact(model: Model, sizes: Dict[str, int], class_seed: int = 0) -> ExactAdjoints:
    """Unroll ``model`` at ``sizes`` and run the reverse sweep for ``L``."""
    return reverse_sweep(unroll(model, sizes, class_seed))


def step_at_zero(expr: sympy.Expr) -> sympy.Expr:
    """``Heaviside(x)`` (SymPy's diff of ``Max(0, x)``, 1/2 at 0) as ``Heaviside(x, 0)``: the relu
    derivative that the generated code and the float checks use is 0 at 0."""
    if not expr.has(sympy.Heaviside):
        return expr
    return expr.replace(lambda e: isinstance(e, sympy.Heaviside) and (len(e.args) == 1 or e.args[1] != 0),
                        lambda e: sympy.Heaviside(e.args[0], 0))
