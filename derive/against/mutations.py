"""Naming the slip: the mutated derivation whose gradients are the user's (docs/against-mutations.md).

Each single mutation of :mod:`derive.against.mutation_vocabulary` is emitted
as a NumPy module (:func:`derive.emit.readable.generate_module`), imported
from memory and run on the user's case; the forward pass, the same for every
mutant, is computed once and lent to each. Singles run first, those that can
explain exactly the gradients that are wrong before the others; when none
matches, pairs of the singles that came closest run, within the time budget.
"""

from __future__ import annotations

import contextlib
import itertools
import linecache
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # a dependency, but a checkout run without installing may lack it
    threadpool_limits = None

from ..calculus.matrix import MatrixDerivation, adjoints_read_from
from ..emit.loader import import_source
from ..emit.readable import generate_module
from .mutation_groups import Candidate, everywhere
from .mutation_vocabulary import Mutation, Vocabulary, likelihood_rank, mutated

MATCH_RTOL = 1e-7
"""A gradient matches when every entry is within ``MATCH_RTOL`` times its largest entry (the larger of the
two arrays'), plus ``FLOOR_RTOL`` times the largest entry of every gradient compared."""

FLOOR_RTOL = 1e-10

MAX_MATCHES = 4
"""Most matching mutants reported (the first found: singles before pairs)."""

PROMISING = 12
"""Singles kept for pairs: those that came closest to the user's gradients."""


@dataclass(frozen=True)
class Mutant:
    """A mutated derivation: what was changed, the slip kinds, its gradients on the case."""

    description: str
    kinds: tuple[str, ...]
    gradients: dict[str, np.ndarray]


@dataclass(frozen=True)
class Naming:
    """The mutants that reproduce the user's gradients, and what the search tried."""

    matches: tuple[Mutant, ...]
    tried: int
    tried_kinds: tuple[str, ...]
    stopped: str


def agrees(mine: np.ndarray, theirs: np.ndarray, floor: float, rtol: float = MATCH_RTOL) -> bool:
    """Whether two gradients are equal to rounding (:data:`MATCH_RTOL`); ``floor`` is an absolute allowance."""
    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if a.size != b.size:
        return False
    a = a.reshape(b.shape)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale + floor


def relative_error(mine: np.ndarray, theirs: np.ndarray) -> float:
    """``|mine - theirs| / |theirs|`` (Frobenius), inf when not finite or not the same size."""
    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if a.size != b.size or not np.all(np.isfinite(a)):
        return math.inf
    return float(np.linalg.norm(a.reshape(b.shape) - b)) / max(float(np.linalg.norm(b)), 1e-300)


class MutantRunner:
    """Runs mutated derivations on one case; the forward values are computed once and shared.

    Parameters
    ----------
    derivation : MatrixDerivation
        The truth.
    params, data : dict
        The case, in the generated module's calling convention.
    keys : list of str
        The gradients compared (parameters, and ``h_0`` per state when the user gave it).
    """

    def __init__(self, derivation: MatrixDerivation, params, data, keys: list[str]):
        self.model = derivation.model
        self.params, self.data, self.keys = params, data, keys
        self.with_states = any(s.base + "_0" in keys for s in self.model.states)
        self.failures = 0
        self.seconds = 0.0
        truth = import_source(generate_module(self.model, derivation), "derive_mutant")
        with np.errstate(all="ignore"):
            values = truth._forward(params, data)
        self.values = {k: _frozen(v) for k, v in values.items()}
        self.truth = self._call(truth)
        _forget(truth)

    def _call(self, module) -> dict[str, np.ndarray]:
        own = module._forward
        module._forward = lambda params, data: dict(self.values)  # the same forward pass for every mutant
        try:
            with np.errstate(all="ignore"):
                _, grads = module.loss_and_gradients(self.params, self.data, wrt_initial_state=self.with_states)
        finally:
            module._forward = own
        return {k: np.asarray(grads[k]) for k in self.keys}

    def gradients(self, derivation: MatrixDerivation, mutations=()) -> dict[str, np.ndarray] | None:
        """The mutant's gradients, or None when its module cannot be written or run (counted in ``failures``)."""
        start = time.perf_counter()
        try:
            source = module_text(derivation, tuple(mutations))
            module = import_source(source, "derive_mutant")
            try:
                return self._call(module)
            finally:
                _forget(module)
        except Exception:  # noqa: BLE001 - a mutant that does not emit or run is skipped, whatever the error
            self.failures += 1
            return None
        finally:
            self.seconds += time.perf_counter() - start


_TEXTS: OrderedDict[tuple, str] = OrderedDict()
CACHED_TEXTS = 2000
"""Mutant modules' texts kept between searches (the same mutants of one model recur from case to case)."""


def module_text(derivation: MatrixDerivation, mutations: tuple[Mutation, ...]) -> str:
    """The mutated derivation's module text, from the cache when this model's mutation was written before."""
    model = derivation.model
    key = (model.name, model.path, model.source, mutations)
    text = _TEXTS.get(key)
    if text is None:
        text = generate_module(model, mutated(derivation, mutations))
        _TEXTS[key] = text
        while len(_TEXTS) > CACHED_TEXTS:
            _TEXTS.popitem(last=False)
    return text


def _frozen(value):
    """A read-only copy of an array (the caller's own arrays are left writable), anything else as it is.

    A mutant that writes into the shared forward values then fails instead of changing them for the next.
    """
    if not isinstance(value, np.ndarray):
        return value
    value = value.copy()
    value.flags.writeable = False
    return value


def _forget(module) -> None:
    """Drop an imported mutant from the import system's and the traceback cache's tables."""
    sys.modules.pop(module.__name__, None)
    linecache.cache.pop(module.__spec__.origin, None)


def affected_keys(derivation: MatrixDerivation, keys: list[str]) -> dict[str, set]:
    """For each adjoint, the compared gradients that read it (an edit of it can change only those)."""
    model = derivation.model
    reads: dict[str, set] = {}
    for key in keys:
        start = next((s.name for s in model.states if s.base + "_0" == key), key)
        for name in adjoints_read_from(derivation, [start]):
            reads.setdefault(name, set()).add(key)
    return reads


class Search:
    """One run of :func:`name_the_slip` (see its docstring)."""

    def __init__(self, derivation: MatrixDerivation, runner: MutantRunner, user: dict[str, np.ndarray],
                 deadline: float, seconds: float, rtol: float):
        self.derivation, self.runner, self.user = derivation, runner, user
        self.deadline = deadline
        self.seconds, self.rtol = seconds, rtol
        scale = max(float(np.max(np.abs(np.asarray(u, dtype=float)), initial=0.0)) for u in user.values())
        self.floor = FLOOR_RTOL * scale
        self.wrong = {k for k in user if not agrees(runner.truth[k], user[k], self.floor, rtol)}
        self.reads = affected_keys(derivation, list(user))
        self.tried = 0
        self.kinds: list[str] = []
        self.matches: list[Mutant] = []
        self.matched: list[Candidate] = []
        self.scores: list[tuple[float, int, Candidate]] = []

    def affected(self, candidate: Candidate) -> set:
        """The compared gradients a candidate can change (an initial state's alone for terms added at step 0)."""
        out = set()
        for m in candidate.mutations:
            if not m.changes and all(t.at is not None and t.at.kind == "abs" and t.at.offset == 0 for t in m.extra):
                out |= {s.base + "_0" for s in self.derivation.model.states if s.name == m.adjoint} & set(self.user)
            else:
                out |= self.reads.get(m.adjoint, set())
        return out

    def matched_adjoints(self) -> list:
        """The sets of adjoints the matches edit."""
        return [_adjoints(match) for match in self.matched]

    def out_of_time(self) -> bool:
        return time.perf_counter() > self.deadline

    def run(self, candidate: Candidate) -> dict[str, np.ndarray] | None:
        grads = self.runner.gradients(self.derivation, candidate.mutations)
        if grads is None:
            return None
        self.tried += 1
        for kind in candidate.kinds:
            if kind not in self.kinds:
                self.kinds.append(kind)
        if all(agrees(grads[k], self.user[k], self.floor, self.rtol) for k in self.user):
            self.matched.append(candidate)
            self.matches.append(Mutant(candidate.description, candidate.kinds, grads))
        return grads

    def score(self, grads: dict[str, np.ndarray]) -> float:
        """How much closer the mutant is to the user's gradients than the truth (negative: closer)."""
        total = 0.0
        for k in self.user:
            before = relative_error(self.runner.truth[k], self.user[k])
            after = relative_error(grads[k], self.user[k])
            if k in self.wrong:
                total += math.log(max(after, 1e-16) / max(before, 1e-16)) if math.isfinite(after) else 10.0
            elif not agrees(grads[k], self.user[k], self.floor, self.rtol):
                total += 1.0  # a right gradient made wrong: the partner must mend it
        return total

    def singles(self, candidates: list[Candidate]) -> str:
        """Run the singles that could explain the wrong gradients; return why the search stopped early, or ''."""
        exact = [c for c in candidates if self.affected(c) == self.wrong]
        wider = [c for c in candidates if self.affected(c) > self.wrong]
        order = sorted(exact, key=lambda m: likelihood_rank(m.kinds)) + sorted(wider, key=lambda m: likelihood_rank(m.kinds))
        for n, m in enumerate(order):
            if n == len(exact) and self.matches:
                break  # a mutation of exactly the wrong gradients' adjoints explains them
            if self.matches and _adjoints(m) not in self.matched_adjoints():
                continue  # after a match, only the other readings of the same equations
            if self.out_of_time():
                return (f"the {self.seconds:g} s budget ran out with {len(order) - n} of {len(order)} single "
                        "mutations not yet tried")
            grads = self.run(m)
            if grads is not None:
                self.scores.append((self.score(grads), n, m))
        return ""

    def pairs(self, candidates: list[Candidate]) -> str:
        """Pairs of the closest singles with a partner that covers the rest of the wrong gradients."""
        ranked = [m for s, _, m in sorted(self.scores, key=lambda s: (s[0], s[1])) if s < 0][:PROMISING]
        narrower = [c for c in candidates if c not in ranked and self.affected(c) and self.affected(c) < self.wrong]
        pool = ranked + sorted(narrower, key=lambda m: likelihood_rank(m.kinds))
        pairs = []
        for a, b in itertools.combinations(pool, 2):
            if a.touches() & b.touches() or not self.wrong <= self.affected(a) | self.affected(b):
                continue
            if a not in ranked and b not in ranked:
                continue
            pairs.append(a.with_(b))
        for n, pair in enumerate(pairs):
            if self.matches:
                break
            if self.out_of_time():
                return f"the {self.seconds:g} s budget ran out with {len(pairs) - n} of {len(pairs)} pairs not yet tried"
            self.run(pair)
        return ""


def name_the_slip(model, derivation: MatrixDerivation, params, data, user_gradients, *, seconds: float = 6.0,
                  rtol: float = MATCH_RTOL) -> Naming:
    """Find the mutated derivations that reproduce a user's gradients.

    Parameters
    ----------
    model : Model
        The model (``derivation.model``).
    derivation : MatrixDerivation
        Its matrix derivation, the truth.
    params, data : dict of str to numpy.ndarray
        The case, in the generated module's calling convention (docs/generated-module.md).
    user_gradients : dict of str to numpy.ndarray
        The user's gradients by parameter name (and ``h_0`` per state), in derive's layout.
    seconds : float
        The time budget of the whole search, derive's own run on the case included; it is checked before
        each mutated derivation runs.
    rtol : float
        The match tolerance (:data:`MATCH_RTOL`).

    Returns
    -------
    Naming
        The matching mutants (singles before pairs, at most :data:`MAX_MATCHES`), the number of mutated
        derivations run, their kinds, and why the search stopped early (or ``""``).
    """
    del model  # the derivation's own model is used; the argument keeps the command's calling convention
    # many small products: one BLAS thread each is faster than threads fighting over busy cores
    with threadpool_limits(1) if threadpool_limits is not None else contextlib.nullcontext():
        return _search(derivation, params, data, user_gradients, seconds, rtol)


def _search(derivation, params, data, user_gradients, seconds, rtol) -> Naming:
    deadline = time.perf_counter() + seconds
    keys = [k for k in _gradient_keys(derivation) if k in user_gradients]
    user = {k: np.asarray(user_gradients[k]) for k in keys}
    if not user:
        return Naming((), 0, (), "no gradient of the model was given")
    runner = MutantRunner(derivation, params, data, keys)
    search = Search(derivation, runner, user, deadline, seconds, rtol)
    if not search.wrong:
        return Naming((), 0, (), "the derivation itself reproduces your gradients")
    vocabulary = Vocabulary(derivation)
    candidates = [Candidate.single(m) for m in vocabulary.singles()] + everywhere(vocabulary)
    stopped = search.singles(candidates)
    if not search.matches and not stopped:
        stopped = search.pairs(candidates)
    return Naming(tuple(search.matches[:MAX_MATCHES]), search.tried, tuple(search.kinds), stopped)


def _adjoints(candidate: Candidate) -> frozenset:
    return frozenset(m.adjoint for m in candidate.mutations)


def _gradient_keys(derivation: MatrixDerivation) -> list[str]:
    model = derivation.model
    return [s.name for s in model.params] + [s.base + "_0" for s in model.states]
