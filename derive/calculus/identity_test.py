"""A randomized identity test: both sides evaluated exactly modulo a large prime.

The proof of :mod:`derive.calculus.prove` asks, for each entry of each
recurrence, whether a SymPy expression in the unrolled model's symbols is
identically equal to the exact adjoint's definition.  Symbolic cancellation
answers that, slowly.  This module answers it by evaluating both sides at a
random point in exact modular arithmetic, which is the Schwartz-Zippel test:

- every leaf (parameter, input, initial state entry) and every adjoint symbol
  the candidate reads is a variable, given a uniform random value modulo the
  prime ``P = 2**61 - 1``; forward symbols and the adjoints the candidate
  skips over are evaluated from their definitions;
- every function application (``tanh(u)``, ``log(u)``, ``Max(0, u)``, ...)
  is a variable of its own, one per distinct argument: two applications
  share a variable when their arguments have the same value at the point
  (equal arguments always do; different ones collide with probability at
  most their degree over ``P``), so equal applications are equal, as they
  must be.  ``exp`` of a sum is the product of the ``exp`` of its terms, with
  integer coefficients as powers (``exp(2a - b) = exp(a)**2 / exp(b)``);
  ``step(relu(a))`` is ``step(a)`` (both 0 at 0).  Each rewrite is an
  identity, so an identity shown between the variables holds between the
  functions;
- a non-zero rational function whose numerator has degree at most ``d``
  vanishes at a uniform random point with probability at most ``d / P``.
  Every value carries a bound on the degrees of its numerator and
  denominator, so each run knows the chance that it passed a false identity
  (or let two different arguments collide).  Two independent runs must both
  pass; the bound of the test is the product of the runs' bounds.

A difference that is not zero at the point is not taken as disproved: the
caller goes on to the symbolic check, which settles the identities this test
cannot see (a function identity beyond the rewrites above, a float in an
expression, a denominator that vanishes at the point).
"""

from __future__ import annotations

import hashlib
from math import comb
from typing import Dict, FrozenSet, Optional, Set, Tuple

import sympy

P = 2 ** 61 - 1
"""The prime modulus (a Mersenne prime, so values fit in 61 bits)."""

Value = Tuple[int, int, int]  # (value mod P, degree bound of the numerator, of the denominator)


class Unsupported(Exception):
    """An expression this test cannot evaluate exactly (a float, a vanishing denominator)."""


def _random(seed: int, key: str) -> int:
    digest = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") % P


def _inverse(v: int) -> int:
    if v == 0:
        raise Unsupported("a denominator vanishes at the random point")
    return pow(v, P - 2, P)


def _sum(values) -> Value:
    total, num, den = 0, 0, 0
    for v, n, d in values:
        total = (total + v) % P
        num = max(num + d, n + den)
        den += d
    return total, num, den


def _product(values) -> Value:
    total, num, den = 1, 0, 0
    for v, n, d in values:
        total = total * v % P
        num += n
        den += d
    return total, num, den


def _power(base: Value, k: int) -> Value:
    v, n, d = base
    if k >= 0:
        return pow(v, k, P), k * n, k * d
    return pow(_inverse(v), -k, P), -k * d, -k * n


class ModularRun:
    """One random point: every symbol of one exact derivation evaluated modulo ``P``.

    Parameters
    ----------
    forward : dict
        Each forward symbol's definition (the unrolled model's assignments).
    adjoint : dict
        Each adjoint symbol's definition (the reverse sweep's sums).
    seed : int
        Chooses the point; the same seed gives the same values.
    """

    def __init__(self, forward: Dict[sympy.Symbol, sympy.Expr], adjoint: Dict[sympy.Symbol, sympy.Expr],
                 seed: int):
        self.forward = forward
        self.adjoint = adjoint
        self.seed = seed
        self.forward_memo: Dict[sympy.Expr, Value] = {}
        self.atoms: Dict[tuple, int] = {}  # key -> the largest degree of its arguments
        self.passed_degrees = 0

    def collision_bound(self) -> float:
        """The chance that two different arguments of one function met the same value at this point."""
        by_function: Dict[str, list] = {}
        for key, degree in self.atoms.items():
            by_function.setdefault(key[0], []).append(degree)
        return sum(comb(len(ds), 2) * 2 * max(ds) for ds in by_function.values()) / P

    def failure_bound(self) -> float:
        """This run's chance of passing a false identity or colliding two arguments."""
        return min(1.0, self.collision_bound() + self.passed_degrees / P)

    def value(self, expr: sympy.Expr, keep: Optional[FrozenSet[sympy.Symbol]] = None,
              seen: Optional[Set[sympy.Symbol]] = None) -> Value:
        """``expr`` at the point; adjoint symbols in ``keep`` (all, when None) are variables.

        ``seen`` collects the adjoint symbols met as variables.
        """
        memo: Dict[sympy.Expr, Value] = {}
        return self._eval(expr, keep, memo, seen)

    def _eval(self, expr, keep, memo, seen) -> Value:
        if expr in memo:
            return memo[expr]
        if expr.is_Symbol:
            result = self._symbol(expr, keep, memo, seen)
        elif expr.is_Number:
            result = self._number(expr)
        elif expr.is_Add:
            result = _sum(self._eval(a, keep, memo, seen) for a in expr.args)
        elif expr.is_Mul:
            result = _product(self._eval(a, keep, memo, seen) for a in expr.args)
        elif expr.is_Pow and expr.exp.is_Integer:
            result = _power(self._eval(expr.base, keep, memo, seen), int(expr.exp))
        elif isinstance(expr, sympy.exp):
            result = self._exp(expr.args[0], keep, memo, seen)
        elif expr.args:
            result = self._application(expr, keep, memo, seen)
        else:
            raise Unsupported(f"cannot evaluate {type(expr).__name__} modulo a prime")
        memo[expr] = result
        return result

    def _symbol(self, s, keep, memo, seen) -> Value:
        if s in self.forward:
            if s not in self.forward_memo:
                self.forward_memo[s] = self._eval(self.forward[s], None, {}, None)
            return self.forward_memo[s]
        if s in self.adjoint:
            if keep is None or s in keep:
                if seen is not None:
                    seen.add(s)
                return _random(self.seed, "adjoint " + s.name), 1, 0
            return self._eval(self.adjoint[s], keep, memo, seen)
        return _random(self.seed, "leaf " + s.name), 1, 0

    @staticmethod
    def _number(n) -> Value:
        if not n.is_Rational:
            raise Unsupported(f"the number {n} is not exact")
        p, q = int(n.p), int(n.q)
        return p % P * _inverse(q % P) % P, 0, 0

    def _exp(self, argument, keep, memo, seen) -> Value:
        factors = []
        for term in sympy.Add.make_args(argument):
            coeff, rest = term.as_coeff_Mul()
            if coeff.is_Integer:
                factors.append(_power(self._atom("exp", (rest,), keep, memo, seen), int(coeff)))
            else:
                factors.append(self._atom("exp", (term,), keep, memo, seen))
        return _product(factors)

    def _application(self, expr, keep, memo, seen) -> Value:
        args = expr.args
        if isinstance(expr, sympy.Heaviside) and isinstance(args[0], sympy.Max) \
                and len(args[0].args) == 2 and sympy.S.Zero in args[0].args:
            # step(relu(a)) = step(a) when step(0) = 0
            inner = [a for a in args[0].args if a != 0][0]
            args = (inner,) + tuple(args[1:])
        return self._atom(type(expr).__name__, args, keep, memo, seen)

    def _atom(self, name: str, args, keep, memo, seen) -> Value:
        values = [self._eval(a, keep, memo, seen) for a in args]
        key = (name,) + tuple(v for v, _, _ in values)
        degree = max((n + d for _, n, d in values), default=0)
        self.atoms[key] = max(self.atoms.get(key, 0), degree)
        return _random(self.seed, repr(key)), 1, 0


class RandomizedIdentity:
    """Two independent :class:`ModularRun` points over one exact derivation.

    ``equal(candidate, truth)`` is True when both runs find the two sides
    equal; False means "not shown" (the caller then tries symbolically).
    """

    def __init__(self, forward, adjoint, seed: int, runs: int = 2):
        self.runs = [ModularRun(forward, adjoint, seed * 1000 + k) for k in range(runs)]
        self.shown = 0

    def equal(self, candidate: sympy.Expr, truth: sympy.Expr) -> bool:
        outcomes = []
        for run in self.runs:
            try:
                seen: Set[sympy.Symbol] = set()
                c = run.value(candidate, None, seen)
                t = run.value(truth, frozenset(seen))
            except Unsupported:
                return False
            if c[0] != t[0]:
                return False
            outcomes.append(max(c[1] + t[2], t[1] + c[2]))
        for run, degree in zip(self.runs, outcomes):
            run.passed_degrees += degree
        self.shown += 1
        return True

    def failure_bound(self) -> float:
        """The chance that any identity these runs passed is false (independent runs: the product)."""
        bound = 1.0
        for run in self.runs:
            bound *= run.failure_bound()
        return bound
