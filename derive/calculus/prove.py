"""Prove the matrix recurrences equal to the exact derivation, entry by entry.

For each size combination the model is unrolled (:mod:`derive.calculus.exact`) and
every term of every matrix recurrence is instantiated at every step with the
exact derivation's own adjoint symbols standing for the adjoints it refers
to.  Each entry must equal the exact adjoint's defining sum as a symbolic
identity; when plain expansion does not show it, the definitions of the
symbols involved are substituted (adjoints the recurrence skips over, then
forward values one level at a time) and SymPy simplifies again.  Since both
sides then refer to the same adjoint symbols, equality of every line is a
proof by induction over the backward pass.

A second, independent witness runs the matrix recurrences numerically at a
random point with 50-digit arithmetic and compares every adjoint with the
exact sweep evaluated at the same point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import sympy

from ..model.model import Model
from ..model.sizes import constant_sizes, first_fitting, smallest_T
from ..notation.expr import Adj, Call
from .cache_keys import cached_for_model, sizes_key
from .entries import Mat, elementwise, zeros
from .exact import ExactAdjoints, Unrolled, reverse_sweep, unroll
from .matrix import MatrixDerivation, Term, in_range

PRECISION = 50


def _add(a: Optional[Mat], b: Mat) -> Mat:
    return b if a is None else elementwise(a, b, lambda x, y: x + y)


def default_proof_sizes(model: Model, count: int = 3) -> List[Dict[str, int]]:
    """Small size combinations to prove at, with distinct values per size.

    Distinct values make a transposed operand fail to conform; B > 1 and
    T >= 3 are always among them.  T is at least the largest fixed step the
    model reads (``h_4`` needs T >= 4).  A size no declared shape holds (a
    constant such as ``L = sum(W) / K``, or T in a model without steps) keeps
    its declared value: a generated module cannot read it off its inputs, so
    it uses that value.  Where a constant is undefined at a combination
    (``1/(H - 2)`` at H = 2), every size but T moves up until it is defined.
    """
    fixed = constant_sizes(model)
    names = [n for n in model.sizes if n != "T" and n not in fixed]
    patterns = [(2, 3, 4, 5, 2, 3), (3, 2, 2, 3, 4, 2), (2, 4, 3, 2, 3, 4)]
    least_T = smallest_T(model)
    combos = []
    for k in range(count):
        pattern = patterns[k % len(patterns)]

        def candidate(shift: int, k: int = k, pattern: tuple = pattern) -> Dict[str, int]:
            sizes = {n: pattern[(i + k) % len(pattern)] + shift for i, n in enumerate(names)}
            if "T" not in fixed and (model.has_steps or "T" in model.sizes):
                sizes["T"] = max((3, 4, 3)[k % 3], least_T)
            sizes.update(fixed)
            return sizes

        sizes = first_fitting(model, candidate)
        combos.append(sizes)
    return combos


TRANSCENDENTAL = (sympy.exp, sympy.tanh, sympy.log, sympy.Heaviside, sympy.Max)


def atomize(expr: sympy.Expr, table: Dict) -> sympy.Expr:
    """Replace each function application by one symbol per canonical argument.

    ``exp(-a)`` and ``exp(-(a))`` written differently become the same atom,
    so an identity between rational functions of the atoms is what remains
    to be shown; it is sound because equal atoms are equal values.
    """
    if expr.is_Atom:
        return expr
    inner = expr.args[0] if isinstance(expr, sympy.Heaviside) else None
    if isinstance(inner, sympy.Max) and len(inner.args) == 2 and sympy.S.Zero in inner.args \
            and len(expr.args) == 2 and expr.args[1] == 0:
        # step(relu(a)) = step(a) when step(0) = 0: both are 1 where a > 0 and 0 elsewhere
        return atomize(sympy.Heaviside([a for a in inner.args if a != 0][0], 0), table)
    args = [atomize(a, table) for a in expr.args]
    if isinstance(expr, sympy.exp):
        # exp(2a - b) = E_a**2 / E_b, so exp(o), exp(2 o) and exp(-o) share an atom
        factors = []
        for term in sympy.Add.make_args(sympy.expand(args[0])):
            coeff, rest = term.as_coeff_Mul()
            if not coeff.is_Integer:
                break
            key = (sympy.exp, (rest,))
            if key not in table:
                table[key] = sympy.Dummy(f"exp{len(table)}")
            factors.append(table[key] ** coeff)
        else:
            return sympy.Mul(*factors)
    if isinstance(expr, TRANSCENDENTAL):
        key = (expr.func, tuple(sympy.expand(a) for a in args))
        if key not in table:
            table[key] = sympy.Dummy(f"{expr.func.__name__}{len(table)}")
        return table[key]
    return expr.func(*args)


def numerically_zero(expr: sympy.Expr, digits: int = 30) -> bool:
    """A cheap filter: ``expr`` (atomized) at a fixed random point is 0 to ``digits``.

    Only a False answer is used on its own (a non-zero value disproves an
    identity); True sends the expression on to the symbolic check.
    """
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    rng = np.random.default_rng(len(symbols))
    point = {s: sympy.Float(repr(float(rng.uniform(0.2, 1.3))), digits) for s in symbols}
    terms = expr.args if expr.is_Add else (expr,)
    values = [sympy.N(t.xreplace(point), digits) for t in terms]
    if not all(v.is_number and v.is_finite for v in values):
        return True  # cannot tell numerically: let the symbolic check decide
    total = sympy.Add(*values)  # summed at full precision, not in floats
    scale = max([abs(complex(v)) for v in values] + [1e-300])
    return abs(complex(total)) <= scale * 10.0 ** (8 - digits)


def is_zero(expr: sympy.Expr, thorough: bool = False) -> bool:
    """Whether SymPy shows ``expr`` to be identically zero.

    Function applications become atoms, then rational cancellation;
    ``simplify`` (slow) only when ``thorough``.
    """
    if expr == 0:
        return True
    e = atomize(expr, {})
    if not numerically_zero(e):
        return False
    if sympy.expand(e) == 0:
        return True
    if sympy.cancel(sympy.together(e)) == 0:
        return True
    return thorough and sympy.simplify(expr) == 0


class EntryProver:
    """Checks a candidate entry against an exact adjoint definition."""

    def __init__(self, exact: ExactAdjoints, max_rounds: int = 4):
        self.exact = exact
        self.max_rounds = max_rounds
        self.adjoint_owner = {bar: s for s, bar in exact.symbol.items()}
        self.transcendental = {sym for sym, expr in exact.unrolled.assignments
                               if expr.has(*TRANSCENDENTAL) or any(p.exp.is_negative for p in expr.atoms(sympy.Pow))}
        self.rank = {sym: k for k, (sym, _) in enumerate(exact.unrolled.assignments)}
        self.named = {expr: sym for sym, expr in exact.unrolled.assignments
                      if not expr.is_Symbol and not expr.is_Add and not expr.is_Mul}
        self.softmax_outputs = {sym for sym, _ in exact.unrolled.assignments
                                if _is_softmax(exact.unrolled.model, exact.unrolled.owner[sym][0])}

    def expand_adjoints(self, expr: sympy.Expr, keep) -> sympy.Expr:
        """Replace adjoint symbols not in ``keep`` by their definitions, recursively."""
        for _ in range(1000):
            subs = {s: self.exact.definition[s] for s in expr.free_symbols
                    if s in self.adjoint_owner and s not in keep}
            if not subs:
                return expr
            expr = expr.xreplace(subs)
        raise RecursionError("adjoint substitution did not terminate")

    def forward_level(self, expr: sympy.Expr) -> sympy.Expr:
        """Substitute the definitions of the latest-computed quantity in ``expr``.

        Peeling one quantity at a time, downstream first (``y_t`` before
        ``o_t``), keeps the expressions small.
        """
        u = self.exact.unrolled
        present = [s for s in expr.free_symbols if s in u.definition]
        if not present:
            return expr
        latest = max(present, key=lambda s: self.rank[s])
        owner = u.owner[latest]
        return expr.xreplace({s: u.definition[s] for s in present if u.owner[s] == owner})

    def equal(self, candidate: sympy.Expr, truth: sympy.Expr) -> bool:
        """``candidate == truth`` as an identity in the unrolled model's symbols."""
        keep = {s for s in candidate.free_symbols if s in self.adjoint_owner}
        diff = self.expand_adjoints(candidate - truth, keep)
        # Adjoint symbols are free variables: a difference is identically zero
        # exactly when its value at adjoints 0 and its derivative in each are.
        keep = sorted(keep & diff.free_symbols, key=lambda s: s.name)
        parts = [diff.diff(a) for a in keep] + [diff.xreplace({a: 0 for a in keep})]
        return all(self.part_is_zero(part) for part in parts)

    def part_is_zero(self, diff: sympy.Expr) -> bool:
        """One adjoint-free part of a difference, shown zero in rounds of substitution."""
        if is_zero(diff):
            return True
        if is_zero(diff.xreplace(self.named)):  # tanh(z_1[0,0]) -> h_1[0,0]
            return True
        defs = self.exact.unrolled.definition
        nonpolynomial = {s: defs[s] for s in diff.free_symbols if s in self.transcendental}
        if nonpolynomial and is_zero(diff.xreplace(nonpolynomial)):  # sigmoid outputs and the like
            return True
        softmax = {s: defs[s] for s in diff.free_symbols if s in self.softmax_outputs}
        if softmax and is_zero(diff.xreplace(softmax)):  # softmax of an expression, at every step at once
            return True
        for round_ in range(self.max_rounds):
            diff = self.forward_level(diff)
            if is_zero(diff, thorough=round_ == self.max_rounds - 1):
                return True
        return False


def _is_softmax(model: Model, name: str) -> bool:
    """Whether the model computes ``name`` as a softmax."""
    eq = model.equation(name)
    return eq is not None and isinstance(eq.expr, Call) and eq.expr.fn == "softmax"


def instantiate(derivation: MatrixDerivation, exact: ExactAdjoints, name: str,
                step: Optional[int], terms: List[Term], adjoint_lookup=None) -> Mat:
    """Sum of a recurrence's terms at a concrete step, with exact adjoints referenced."""
    u = exact.unrolled
    lookup = adjoint_lookup or (lambda node, s: exact.matrix(node.name, s))
    ev = u.evaluator(lookup)
    total = None
    rows, cols = u.shape(name)
    per_step = u.model.symbols[name].per_step
    for term in terms:
        if per_step and term.at is not None and term.at.at(step, u.T) != step:
            continue
        if term.summed:
            for t in range(1, u.T + 1):
                if in_range(term, t, u.T):
                    total = _add(total, ev(term.expr, t))
        elif not per_step or in_range(term, step, u.T):
            total = _add(total, ev(term.expr, step))
    if total is None:
        return zeros(rows, cols)
    if (total.rows, total.cols) != (rows, cols):
        total = elementwise(zeros(rows, cols), total, lambda x, y: x + y)
    return total


def quantity_steps(model: Model, name: str, T: int) -> List[Optional[int]]:
    sym = model.symbols[name]
    if not sym.per_step:
        return [None]
    first = 0 if sym.kind == "state" else 1
    return list(range(first, T + 1))


@dataclass
class LineProof:
    """The proof of one matrix recurrence at one size combination."""

    name: str
    sizes: Dict[str, int]
    entries: int
    failures: List[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.failures


@dataclass
class SizeProof:
    """Everything proved at one size combination."""

    sizes: Dict[str, int]
    lines: List[LineProof]
    witness_max_rel: float
    seconds: float
    classes: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return all(line.holds for line in self.lines) and self.witness_max_rel < 1e-30


def prove_at(derivation: MatrixDerivation, sizes: Dict[str, int], seed: int = 0,
             use_generic: bool = False) -> SizeProof:
    """Prove every recurrence of ``derivation`` at one size combination.

    ``use_generic`` proves the forms before the softmax + cross-entropy
    simplification instead.
    """
    start = time.perf_counter()
    model = derivation.model
    u = unroll(model, sizes, class_seed=seed)
    exact = reverse_sweep(u)
    prover = EntryProver(exact)
    lines = []
    for name in derivation.order():
        adj = derivation.adjoints[name]
        terms = adj.generic if (use_generic and adj.generic) else adj.terms
        line = LineProof(name, dict(sizes), 0)
        for step in quantity_steps(model, name, u.T):
            candidate = instantiate(derivation, exact, name, step, terms)
            truth = exact.expression(name, step)
            for (i, j), value in candidate.entries():
                line.entries += 1
                if not prover.equal(value, truth[i, j]):
                    where = model.display(name) if step is None else f"{model.symbols[name].base}_{step}"
                    line.failures.append(f"{where}[{i},{j}]")
        lines.append(line)
    witness = numeric_witness(derivation, exact, seed, use_generic)
    classes = {(model.symbols[name].base if step is None else f"{model.symbols[name].base}_{step}"): v
               for (name, step), v in sorted(u.classes.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))}
    return SizeProof(dict(sizes), lines, witness, time.perf_counter() - start, classes)


def numeric_values(u: Unrolled, exact: ExactAdjoints, seed: int) -> Dict[sympy.Symbol, sympy.Float]:
    """All forward and exact adjoint values at a random point, 50 digits."""
    rng = np.random.default_rng(seed + 1000)
    values: Dict[sympy.Symbol, sympy.Expr] = {}
    for s in u.leaves:
        values[s] = sympy.Float(repr(float(rng.normal(0.0, 0.5))), PRECISION)
    for s, expr in u.assignments:
        values[s] = sympy.N(expr.xreplace(values), PRECISION)
    for s in exact.order:
        bar = exact.symbol[s]
        values[bar] = sympy.N(exact.definition[bar].xreplace(values), PRECISION)
    return values


def numeric_witness(derivation: MatrixDerivation, exact: ExactAdjoints, seed: int,
                    use_generic: bool = False) -> float:
    """Largest relative gap between the matrix recurrences run numerically and the exact sweep."""
    u = exact.unrolled
    model = derivation.model
    values = numeric_values(u, exact, seed)
    computed: Dict[tuple, Mat] = {}

    def lookup(node: Adj, step):
        key = (node.name, step)
        if key not in computed:
            rows, cols = u.shape(node.name)
            return zeros(rows, cols)
        return computed[key]

    worst = 0.0
    for name, step in backward_schedule(model, u.T, derivation):
        adj = derivation.adjoints[name]
        terms = adj.generic if (use_generic and adj.generic) else adj.terms
        m = instantiate(derivation, exact, name, step, terms, lookup)
        m = m.map(lambda e: sympy.N(e.xreplace(values), PRECISION))
        computed[(name, step)] = m
        truth = exact.matrix(name, step).map(lambda s: values.get(s, sympy.S.Zero))
        for (i, j), v in m.entries():
            ref = truth[i, j]
            gap = abs(float(v - ref))
            scale = max(abs(float(ref)), 1e-300)
            worst = max(worst, gap / scale if abs(float(ref)) > 1e-40 else gap)
    return worst


def backward_schedule(model: Model, T: int, derivation: MatrixDerivation):
    """(quantity, step) in the order a backward pass computes them."""
    order = []
    adjoints = derivation.adjoints
    for eq in reversed(model.phase("post")):
        order.append((eq.name, None))
    steps = [eq.name for eq in reversed(model.phase("step"))]
    for t in range(T, 0, -1):
        order += [(n, t) for n in steps if n in adjoints]
    order += [(s.name, 0) for s in model.states if s.name in adjoints]
    for eq in reversed(model.phase("pre")):
        order.append((eq.name, None))
    order += [(s.name, None) for s in model.params]
    return [(n, s) for n, s in order if n in adjoints]


@dataclass
class Proof:
    """All size combinations; ``holds`` when every line held at every size."""

    sizes: List[SizeProof]
    generic_sizes: List[SizeProof] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.sizes + self.generic_sizes)

    def failures(self) -> List[str]:
        out = []
        for p in self.sizes + self.generic_sizes:
            for line in p.lines:
                if line.failures:
                    out.append(f"{line.name} at {p.sizes}: {', '.join(line.failures[:5])}")
            if p.witness_max_rel >= 1e-30:
                out.append(f"numeric witness at {p.sizes}: relative gap {p.witness_max_rel:.1e}")
        return out


def prove(derivation: MatrixDerivation, size_list: Optional[List[Dict[str, int]]] = None,
          seed: int = 0, progress=None) -> Proof:
    """Prove ``derivation`` at each size combination (three by default).

    The forms before any softmax + cross-entropy simplification are proved
    too, so the simplification itself is checked.  ``progress``, if given,
    is called with a line of text before each size.  The proof is kept in
    the on-disk cache (:mod:`derive.cache`) under the model's canonical text,
    the sizes, the seed and the derivation's terms; a later call with the
    same reads it (its ``seconds`` are then those of the first).
    """
    size_list = size_list or default_proof_sizes(derivation.model)
    say = progress or (lambda message: None)
    parts = (tuple(sizes_key(s) for s in size_list), seed, repr(list(derivation.adjoints.values())),
             repr(derivation.constants))
    computed = []

    def compute() -> Proof:
        computed.append(True)
        return _prove(derivation, size_list, seed, say)

    proof = cached_for_model("prove", derivation.model, parts, compute)
    if not computed:
        say("the proof at every size was read from the cache (--no-cache proves again)")
    return proof


def _prove(derivation: MatrixDerivation, size_list: List[Dict[str, int]], seed: int, say) -> Proof:
    proofs, generic = [], []
    for k, sizes in enumerate(size_list):
        say("proving at " + ", ".join(f"{n}={v}" for n, v in sizes.items()))
        proofs.append(prove_at(derivation, sizes, seed + k))
    if any(a.generic for a in derivation.adjoints.values()):
        for k, sizes in enumerate(size_list):
            say("proving the unsimplified forms at " + ", ".join(f"{n}={v}" for n, v in sizes.items()))
            generic.append(prove_at(derivation, sizes, seed + k, use_generic=True))
    return Proof(proofs, generic)
