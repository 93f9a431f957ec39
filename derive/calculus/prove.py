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

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import sympy

from ..model.model import Model
from ..model.sizes import constant_sizes, first_fitting, smallest_T
from ..notation.expr import Call
from .cache_keys import cached_for_model, sizes_key
from .exact import ExactAdjoints, reverse_sweep, unroll
from .identity_test import RandomizedIdentity
from .matrix import MatrixDerivation
from .witness import instantiate, numeric_witness



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
    """Checks a candidate entry against an exact adjoint definition.

    With ``randomized``, an identity that test shows is taken at once (with
    its error bound); the rest, and every identity without it, go through
    SymPy's cancellation in rounds of substitution.
    """

    def __init__(self, exact: ExactAdjoints, max_rounds: int = 4,
                 randomized: Optional[RandomizedIdentity] = None):
        self.exact = exact
        self.max_rounds = max_rounds
        self.randomized = randomized
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
        if self.randomized is not None and self.randomized.equal(candidate, truth):
            return True
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


def quantity_steps(model: Model, name: str, T: int) -> List[Optional[int]]:
    sym = model.symbols[name]
    if not sym.per_step:
        return [None]
    first = 0 if sym.kind == "state" else 1
    return list(range(first, T + 1))


@dataclass
class LineProof:
    """The proof of one matrix recurrence at one size combination.

    ``randomized`` of the ``entries`` were shown by the randomized identity
    test; the others symbolically.
    """

    name: str
    sizes: Dict[str, int]
    entries: int
    failures: List[str] = field(default_factory=list)
    randomized: int = 0

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
    failure_bound: float = 0.0
    """The chance that an entry the randomized test passed is not an identity (0: every entry symbolic)."""

    @property
    def holds(self) -> bool:
        return all(line.holds for line in self.lines) and self.witness_max_rel < 1e-30


def prove_at(derivation: MatrixDerivation, sizes: Dict[str, int], seed: int = 0,
             use_generic: bool = False, symbolic: bool = False) -> SizeProof:
    """Prove every recurrence of ``derivation`` at one size combination.

    ``use_generic`` proves the forms before the softmax + cross-entropy
    simplification instead.  Each entry is first put to the randomized
    identity test (:mod:`derive.calculus.identity_test`), and what it does
    not show is proved symbolically; ``symbolic`` proves every entry
    symbolically.
    """
    start = time.perf_counter()
    exact = reverse_sweep(unroll(derivation.model, sizes, class_seed=seed))
    return _prove_with(derivation, exact, seed, use_generic, symbolic, start)


def _prove_with(derivation: MatrixDerivation, exact: ExactAdjoints, seed: int, use_generic: bool,
                symbolic: bool, start: float) -> SizeProof:
    model = derivation.model
    u = exact.unrolled
    sizes = u.sizes
    randomized = None if symbolic else RandomizedIdentity(u.definition, exact.definition, seed)
    prover = EntryProver(exact, randomized=randomized)
    lines = []
    for name in derivation.order():
        adj = derivation.adjoints[name]
        terms = adj.generic if (use_generic and adj.generic) else adj.terms
        line = LineProof(name, dict(sizes), 0)
        shown_before = randomized.shown if randomized else 0
        for step in quantity_steps(model, name, u.T):
            candidate = instantiate(derivation, exact, name, step, terms)
            truth = exact.expression(name, step)
            for (i, j), value in candidate.entries():
                line.entries += 1
                if not prover.equal(value, truth[i, j]):
                    where = model.display(name) if step is None else f"{model.symbols[name].base}_{step}"
                    line.failures.append(f"{where}[{i},{j}]")
        line.randomized = randomized.shown - shown_before if randomized else 0
        lines.append(line)
    witness = numeric_witness(derivation, exact, seed, use_generic)
    classes = {(model.symbols[name].base if step is None else f"{model.symbols[name].base}_{step}"): v
               for (name, step), v in sorted(u.classes.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))}
    bound = randomized.failure_bound() if randomized and randomized.shown else 0.0
    return SizeProof(dict(sizes), lines, witness, time.perf_counter() - start, classes, bound)


@dataclass
class Proof:
    """All size combinations; ``holds`` when every line held at every size."""

    sizes: List[SizeProof]
    generic_sizes: List[SizeProof] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.sizes + self.generic_sizes)

    @property
    def randomized(self) -> int:
        """How many entries the randomized identity test showed (the rest were proved symbolically)."""
        return sum(line.randomized for p in self.sizes + self.generic_sizes for line in p.lines)

    @property
    def entries(self) -> int:
        return sum(line.entries for p in self.sizes + self.generic_sizes for line in p.lines)

    @property
    def failure_bound(self) -> float:
        """The chance that some entry the randomized test showed is not an identity (a union bound)."""
        return min(1.0, sum(p.failure_bound for p in self.sizes + self.generic_sizes))

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
          seed: int = 0, progress=None, symbolic: bool = False) -> Proof:
    """Prove ``derivation`` at each size combination (three by default).

    The forms before any softmax + cross-entropy simplification are proved
    too, so the simplification itself is checked.  ``progress``, if given,
    is called with a line of text before each size.  The proof is kept in
    the on-disk cache (:mod:`derive.cache`) under the model's canonical text,
    the sizes, the seed and the derivation's terms; a later call with the
    same reads it (its ``seconds`` are then those of the first).  Each
    entry goes to the randomized identity test first and to SymPy when that
    does not show it; ``symbolic`` proves every entry with SymPy alone.
    """
    size_list = size_list or default_proof_sizes(derivation.model)
    say = progress or (lambda message: None)
    parts = (tuple(sizes_key(s) for s in size_list), seed, repr(list(derivation.adjoints.values())),
             repr(derivation.constants), "symbolic" if symbolic else "randomized")
    computed = []

    def compute() -> Proof:
        computed.append(True)
        return _prove(derivation, size_list, seed, say, symbolic)

    proof = cached_for_model("prove", derivation.model, parts, compute)
    if not computed:
        say("the proof at every size was read from the cache (--no-cache proves again)")
    return proof


_JOB: tuple = ()
"""What :func:`_prove_size` proves: set just before the worker processes are forked, so they inherit it."""


def _prove_size(k: int):
    derivation, size_list, seed, symbolic = _JOB
    start = time.perf_counter()
    exact = reverse_sweep(unroll(derivation.model, size_list[k], class_seed=seed + k))
    main = _prove_with(derivation, exact, seed + k, False, symbolic, start)
    if not any(a.generic for a in derivation.adjoints.values()):
        return main, None
    return main, _prove_with(derivation, exact, seed + k, True, symbolic, time.perf_counter())


def proof_processes(count: int) -> int:
    """How many processes prove ``count`` size combinations: one a core, at most ``count``.

    ``DERIVE_PROOF_PROCESSES`` sets it; one process where ``fork`` is missing
    or inside a daemonic worker (which may not have children).
    """
    wanted = os.environ.get("DERIVE_PROOF_PROCESSES", "").strip()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = int(wanted) if wanted.isdigit() and int(wanted) > 0 else cores
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(n, count))


def _prove(derivation: MatrixDerivation, size_list: List[Dict[str, int]], seed: int, say,
           symbolic: bool) -> Proof:
    global _JOB
    has_generic = any(a.generic for a in derivation.adjoints.values())
    processes = proof_processes(len(size_list))
    for sizes in size_list:
        say("proving at " + ", ".join(f"{n}={v}" for n, v in sizes.items())
            + (" (and the unsimplified forms)" if has_generic else "")
            + (f" ({processes} processes side by side)" if processes > 1 else ""))
    _JOB = (derivation, size_list, seed, symbolic)
    try:
        if processes > 1:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                results = pool.map(_prove_size, range(len(size_list)), chunksize=1)
        else:
            results = [_prove_size(k) for k in range(len(size_list))]
    finally:
        _JOB = ()
    return Proof([main for main, _ in results], [g for _, g in results if g is not None])
