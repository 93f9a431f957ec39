"""The exact derivation at one size combination, as the claim checker needs it.

A :class:`SizeContext` unrolls the model at concrete sizes, runs reverse
sweeps for each loss a claim names (``L``, or ``L_k`` for ``dL_t/dX``), and
keeps a 50-digit random point with every forward and adjoint value, both as
SymPy Floats (the witness) and as float arrays (fast screening).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from ..calculus.entries import Evaluator, Mat, elementwise, zeros
from ..calculus.exact import ExactAdjoints, reverse_sweep, unroll
from ..calculus.high_precision import PRECISION
from ..calculus.identity_test import RandomizedIdentity
from ..calculus.prove import EntryProver, instantiate
from ..model.model import Model
from ..notation.expr import Adj, Iverson, Node, StepSum, adjoint_refs
from .numeric import FloatEvaluator

LossKey = tuple[str, int | None]


def sizes_text(sizes: dict[str, int]) -> str:
    """``H=2, T=3``: sizes as the verdicts name them."""
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


class ClaimEvaluator(Evaluator):
    """The entry-wise evaluator, with derivatives resolved at the current step ``t``."""

    def value_of(self, node: Node, t):
        if isinstance(node, Adj):
            return self.adjoint(node, t)
        if isinstance(node, StepSum):
            return self.step_sum(node, t)
        if isinstance(node, Iverson):
            if t is not None and node.holds_at(t, self.T):
                return self.value_of(node.args[0], t)
            rows, cols = (self.dim(d) for d in self.model.shape(node.args[0]))
            return zeros(rows, cols)
        return super().value_of(node, t)

    def step_sum(self, node: StepSum, t):
        """``sum_{k=a}^{b} x`` at the claim's step ``t`` (zero over an empty range)."""
        try:
            steps, body = node.summands(t, self.T)
        except ValueError as err:
            raise KeyError(str(err)) from None
        total = None
        for s in steps:
            m = self.value_of(body, s)
            total = m if total is None else elementwise(total, m, lambda x, y: x + y)
        if total is None:
            rows, cols = (self.dim(d) for d in self.model.shape(body))
            return zeros(rows, cols)
        return total


@dataclass
class _Merged:
    """What :class:`EntryProver` reads of an exact derivation, over several sweeps."""

    unrolled: object
    definition: dict[sympy.Symbol, sympy.Expr]


def _zero(expr: sympy.Expr) -> bool:
    """Zero by rational cancellation (keeps ``exp(o)**2`` as a power of ``exp(o)``)."""
    if expr == 0 or sympy.expand(expr) == 0:
        return True
    return sympy.cancel(sympy.together(expr)) == 0


class ClaimProver(EntryProver):
    """:class:`EntryProver` with a cheaper first pass: cancellation before expansion.

    Expanding ``exp(o)**2`` into ``exp(2*o)`` hides the softmax identities
    from ``cancel``; trying cancellation on the unexpanded forms first
    settles them at once.  Otherwise the inherited rounds run.
    """

    lemmas: dict[sympy.Symbol, sympy.Expr] = {}
    closed_form = None

    def equal(self, candidate: sympy.Expr, truth: sympy.Expr) -> bool:
        """``candidate == truth`` as an identity: by the randomized identity test when it shows it
        (:mod:`derive.calculus.identity_test`), else symbolically, where proved lemmas (an adjoint
        equal to a closed form, from claims already proved) are used first."""
        if self.randomized is not None and self.randomized.equal(candidate, truth):
            return True
        keep = {s for s in candidate.free_symbols if s in self.adjoint_owner}
        diff = candidate - truth
        if self.closed_form is not None:
            for s in diff.free_symbols:
                if s in self.adjoint_owner and s not in keep:
                    self.closed_form(s)
        known = {s: self.lemmas[s] for s in diff.free_symbols if s in self.lemmas and s not in keep}
        if known:
            diff = diff.xreplace(known)
        diff = self.expand_adjoints(diff, keep).xreplace(self.named)
        if _zero(diff):
            return True
        if diff.has(sympy.Heaviside):
            # relu's step: rebuilding Max(0, ...) level by level is slow; the inherited rounds
            # atomize step(relu(a)) as step(a) at once
            return super().equal(candidate, truth)
        probe = diff
        for _ in range(self.max_rounds):
            probe = self.forward_level(probe)
            if _zero(probe):
                return True
        return super().equal(candidate, truth)


class SizeContext:
    """Unrolled model, sweeps and a numeric point at one size combination.

    Parameters
    ----------
    model : Model
        The resolved model.
    sizes : dict
        Concrete sizes, T included for a per-step model.
    seed : int
        Seeds the class targets and the random point.
    tick : callable, optional
        Called now and then while the model is unrolled and evaluated (and
        kept as ``self.tick`` for the sweeps); it may raise to stop the work.
    """

    def __init__(self, model: Model, sizes: dict[str, int], seed: int = 0, tick=None):
        self.tick = tick
        self.model = model
        self.sizes = dict(sizes)
        self.seed = seed
        self.u = unroll(model, sizes, class_seed=seed)
        self.T = self.u.T
        self.sweeps: dict[LossKey, ExactAdjoints] = {}
        self.identity_tests: list[RandomizedIdentity] = []  # every one the provers used, for the error bound
        self.values: dict[sympy.Symbol, sympy.Expr] = {}
        self.floats: dict[sympy.Symbol, float] = {}
        self._prover: EntryProver | None = None
        self.lemmas: dict[sympy.Symbol, sympy.Expr] = {}
        self.derivation = None  # set by the checker: closed forms come from it
        self._closed_tried = set()
        self._bar_key: dict[sympy.Symbol, tuple] = {}
        self._np_cache: dict[tuple, np.ndarray] = {}
        rng = np.random.default_rng(seed + 1000)
        for s in self.u.leaves:
            self.values[s] = sympy.Float(repr(float(rng.normal(0.0, 0.5))), PRECISION)
        for k, (s, expr) in enumerate(self.u.assignments):
            if tick is not None and k % 32 == 0:
                tick()
            self.values[s] = sympy.N(expr.xreplace(self.values), PRECISION)
        self.floats = {s: float(v) for s, v in self.values.items()}

    # -- sweeps ---------------------------------------------------------
    def loss_key(self, node: Adj, t: int | None) -> LossKey | None:
        """The concrete loss of a derivative at step ``t`` (None when out of range)."""
        if node.loss_step is None:
            return (node.loss, None)
        k = node.loss_step.at(t or 0, self.T)
        return (node.loss, k) if 1 <= k <= self.T else None

    def sweep(self, key: LossKey) -> ExactAdjoints:
        """The reverse sweep for one scalar, with its adjoints' values at the point."""
        if key not in self.sweeps:
            what = f"sweeping back from {key[0]}" + ("" if key[1] is None else f" at step {key[1]}")
            if self.tick is not None:
                self.tick(what)
            exact = reverse_sweep(self.u, loss=key)
            for k, s in enumerate(exact.order):
                if self.tick is not None and k % 32 == 0:
                    self.tick(what)
                bar = exact.symbol[s]
                self._bar_key[bar] = (key, s)
                v = sympy.N(exact.definition[bar].xreplace(self.values), PRECISION)
                self.values[bar] = v
                self.floats[bar] = float(v)
            self.sweeps[key] = exact
            self._prover = None
        return self.sweeps[key]

    def prover(self) -> EntryProver:
        """An :class:`EntryProver` that knows the adjoints of every sweep run so far."""
        if self._prover is None:
            first = next(iter(self.sweeps.values()))
            prover = ClaimProver(first)
            definition, owners = {}, {}
            for exact in self.sweeps.values():
                definition.update(exact.definition)
                owners.update({bar: s for s, bar in exact.symbol.items()})
            prover.exact = _Merged(self.u, definition)
            prover.randomized = RandomizedIdentity(self.u.definition, definition, self.seed)
            self.identity_tests.append(prover.randomized)
            prover.adjoint_owner = owners
            prover.lemmas = self.lemmas
            prover.closed_form = self.closed_form
            self._prover = prover
        return self._prover

    def closed_form(self, bar: sympy.Symbol):
        """Prove and keep a closed form of an adjoint of ``L`` (``y_t - onehot(c_t)``).

        The matrix derivation's terms for the quantity, instantiated at the
        step, are used when they refer to no other adjoint; the entry is
        proved equal to the adjoint's definition before it is kept.
        """
        if bar in self._closed_tried or bar in self.lemmas or self.derivation is None:
            return
        self._closed_tried.add(bar)
        loss_key, s = self._bar_key.get(bar, (None, None))
        if loss_key != (self.model.loss, None):
            return
        name, step = self.u.owner[s]
        adj = self.derivation.adjoints.get(name)
        if adj is None or any(adjoint_refs(t.expr) for t in adj.terms):
            return
        exact = self.sweeps[loss_key]
        mat = instantiate(self.derivation, exact, name, step, adj.terms)
        k = self.u.values[(name, step)].data.index(s)
        value = mat.data[k]
        prover = self.prover()
        if value.free_symbols & set(prover.adjoint_owner):
            return
        if prover.equal(value, exact.definition[bar]):
            self.lemmas[bar] = value

    # -- values ---------------------------------------------------------
    def step_of(self, step, t: int | None) -> int | None:
        return None if step is None else step.at(t or 0, self.T)

    def adjoint_mat(self, node: Adj, t: int | None) -> Mat:
        """The exact adjoint a derivative names at step ``t`` (symbols, or the
        defining sums of one step's use)."""
        rows, cols = self.u.shape(node.name)
        key = self.loss_key(node, t)
        if key is None:
            return zeros(rows, cols)
        exact = self.sweep(key)
        step = self.step_of(node.step, t)
        if node.use is not None:
            use = self.step_of(node.use, t)
            if not 1 <= use <= self.T:
                return zeros(rows, cols)
            return exact.expression(node.name, step, use_step=use)
        return exact.matrix(node.name, step)

    def to_float(self, m: Mat) -> np.ndarray:
        """A Mat of expressions in the unrolled symbols, at the numeric point."""
        out = np.empty((m.rows, m.cols))
        for (i, j), e in m.entries():
            if e.is_Symbol:
                out[i, j] = self.floats.get(e, 0.0)
            elif e.is_Number:
                out[i, j] = float(e)
            else:
                out[i, j] = float(sympy.N(e.xreplace(self.values), 30))
        return out

    def to_witness(self, m: Mat) -> list[sympy.Expr]:
        """Entries at the numeric point, 50 digits."""
        return [sympy.N(e.xreplace(self.values), PRECISION) for e in m.data]

    def adjoint_float(self, node: Adj, t: int | None) -> np.ndarray:
        key = (node, self.loss_key(node, t), self.step_of(node.step, t), self.step_of(node.use, t))
        if key not in self._np_cache:
            self._np_cache[key] = self.to_float(self.adjoint_mat(node, t))
        return self._np_cache[key]

    def forward_float(self, name: str, step: int | None) -> np.ndarray:
        key = ("fwd", name, step)
        if key not in self._np_cache:
            m = self.u.lookup(name, step)
            self._np_cache[key] = self.to_float(m)
        return self._np_cache[key]

    def float_evaluator(self) -> FloatEvaluator:
        model = self.model
        return FloatEvaluator(self.sizes, self.T, self.forward_float, self.adjoint_float,
                              lambda name, step: self.u.classes[(name, step)],
                              lambda name: self.u.dim(model.symbols[name].classes),
                              lambda node: tuple(self.u.dim(d) for d in model.shape(node)))

    def symbolic_evaluator(self) -> ClaimEvaluator:
        return ClaimEvaluator(self.model, self.sizes, self.T, self.u.lookup, self.adjoint_mat,
                              lambda name, step: self.u.classes[(name, step)])

    # -- the truth --------------------------------------------------------
    def has_value(self, lhs: Adj, t: int | None) -> bool:
        """Whether the claimed derivative exists at step ``t``."""
        step = self.step_of(lhs.step, t)
        if (lhs.name, step) not in self.u.values:
            return False
        if lhs.loss_step is not None and self.loss_key(lhs, t) is None:
            return False
        if lhs.use is not None and not 1 <= self.step_of(lhs.use, t) <= self.T:
            return False
        return True

    def truth(self, lhs: Adj, t: int | None) -> Mat:
        """The exact derivative's defining sums at step ``t``."""
        exact = self.sweep(self.loss_key(lhs, t))
        use = self.step_of(lhs.use, t) if lhs.use is not None else None
        return exact.expression(lhs.name, self.step_of(lhs.step, t), use_step=use)

    def groups(self, lhs: Adj, t: int | None) -> dict[tuple, Mat]:
        """The truth split by consumer: (quantity, step) -> its contribution."""
        exact = self.sweep(self.loss_key(lhs, t))
        use = self.step_of(lhs.use, t) if lhs.use is not None else None
        forward = self.u.values[(lhs.name, self.step_of(lhs.step, t))]
        owners: dict[tuple, list[list[sympy.Expr]]] = {}
        for k, s in enumerate(forward.data):
            for owner, expr in exact.parts.get(s, []):
                if use is not None and owner[1] != use:
                    continue
                owners.setdefault(owner, [[] for _ in forward.data])[k].append(expr)
        return {owner: Mat(forward.rows, forward.cols, [sympy.Add(*e) for e in entries])
                for owner, entries in owners.items()}
