"""The slips a backward pass can make, as single edits of the matrix derivation (docs/against-mutations.md).

A :class:`Mutation` turns the truth into a slip: it replaces, drops or adds
terms of one adjoint. The tree edits are the claims checker's
(:func:`derive.claims.repairs.edits`, :func:`derive.claims.model_edits.renames`)
where an edit of the truth is itself a slip, with the kind word of the slip it
makes, and the inverses of its repairs (``1 - h**2`` written ``(1 - h)**2``, a
term dropped) written here.  Every edit is shape-checked against its adjoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from ..calculus.matrix import Adjoint, MatrixDerivation, Term, adjoints_read_from, initial_state_terms
from ..claims.model_edits import renames
from ..claims.repairs import edits, replace_at, subtrees
from ..emit.adjoint_terms import live_derivation
from ..model.model import ShapeError, broadcast
from ..notation.expr import Adj, Binary, Node, Num, Ref, SizeRef, Step, Unary, adjoint_refs, fix_steps, transform, walk
from ..notation.printer import show

SLIP_OF_EDIT = {
    # a claims edit applied to the truth -> the slip it makes; the edits not listed are not used
    "a transpose too many": "a missing transpose",
    "a missing transpose": "a transpose too many",
    "a product's operands swapped": "a product's operands swapped",
    "@ and * mixed up": "@ and * mixed up",
    "one sum for another (sum, rowsum, colsum)": "one sum for another (sum, rowsum, colsum)",
    "+ and - mixed up": "+ and - mixed up",
    "a step off by one": "a step off by one",
    "a constant factor too many": "a missing constant factor",
    "a sign": "a sign",
    "a term too many": "missing terms",
    "one quantity or gradient for another of its shape": "one quantity or gradient for another of its shape",
}
"""The claims checker's edit kinds used, and the slip each makes when it edits the truth."""

INITIAL_STATE = "a wrong initial-state gradient"
RECURRENT = "a missing recurrent term"
SQUARE = "(1 - h)**2 written for 1 - h**2"
LINEAR = "1 - h written for 1 - h**2"
LAST_ONLY = "the last step's term for the sum over every step"
EVERY_STEP = "a last-step term written at every step"
MISSING_FACTOR = "a missing factor (a derivative left out)"
GATE = "u written for 1 - u"
TANH_FOR_SIGMOID = "tanh's derivative 1 - s**2 written for a sigmoid's s * (1 - s)"
SIGMOID_FOR_TANH = "a sigmoid's derivative h * (1 - h) written for tanh's 1 - h**2"


LIKELIEST = (SQUARE, LINEAR, TANH_FOR_SIGMOID, SIGMOID_FOR_TANH, RECURRENT, "a missing transpose", MISSING_FACTOR, "an extra 1/B", "a missing 1/B",
             "an extra 1/T", "a missing 1/T", "a step off by one", "a transpose too many", "a product's operands swapped",
             LAST_ONLY, EVERY_STEP, INITIAL_STATE, "a sign", GATE, "one quantity or gradient for another of its shape",
             "a factor 2 (a square's derivative, a loss's 1/2)", "missing terms", "@ and * mixed up",
             "one sum for another (sum, rowsum, colsum)", "+ and - mixed up", "a missing constant factor",
             "an extra factor B", "an extra factor T")
"""The slip kinds from the most common in hand-written backward passes to the least; the search runs them in
this order (a kind not listed last)."""


def likelihood_rank(kinds) -> tuple:
    """The sort key of a mutation's kinds under :data:`LIKELIEST` (smaller runs first)."""
    return tuple(LIKELIEST.index(k) if k in LIKELIEST else len(LIKELIEST) for k in kinds)


@dataclass(frozen=True)
class Mutation:
    """Terms of one adjoint replaced (``None``: dropped) by index, and terms added.

    Two mutations combine when they edit different adjoints, or different terms of one.
    """

    adjoint: str
    changes: tuple[tuple[int, Term | None], ...]
    extra: tuple[Term, ...]
    description: str
    kinds: tuple[str, ...]

    def touches(self) -> set:
        return {(self.adjoint, i) for i, _ in self.changes} | ({(self.adjoint, "extra")} if self.extra else set())


def mutated(derivation: MatrixDerivation, mutations) -> MatrixDerivation:
    """A copy of ``derivation`` with every mutation applied (the original is left alone)."""
    adjoints: dict[str, Adjoint] = dict(derivation.adjoints)
    for m in mutations:
        old = adjoints[m.adjoint]
        terms: list[Term | None] = list(old.terms)
        for index, term in m.changes:
            terms[index] = term
        adjoints[m.adjoint] = replace(old, terms=[t for t in terms if t is not None] + list(m.extra))
    return MatrixDerivation(derivation.model, adjoints, derivation.constants)


def changed_part(old: Node, new: Node) -> tuple[Node, Node]:
    """The smallest subtrees where ``old`` and ``new`` differ (what the edit changed)."""
    while old != new:
        kids_old, kids_new = old.children(), new.children()
        if type(old) is not type(new) or len(kids_old) != len(kids_new) or not kids_old:
            break
        if old.rebuild(kids_new) != new:  # the node itself differs (an operator, a function)
            break
        differing = [k for k in range(len(kids_old)) if kids_old[k] != kids_new[k]]
        if len(differing) != 1:
            break
        old, new = kids_old[differing[0]], kids_new[differing[0]]
    return old, new


def which_one(expr: Node, tree: Node, old: Node, new: Node) -> str:
    """`` (the 2nd of 2)`` when ``old`` occurs more than once in ``expr`` (counted left to right), else ``''``."""
    places = [path for path, n in subtrees(expr) if n == old]
    for k, path in enumerate(places):
        if len(places) > 1 and replace_at(expr, path, new) == tree:
            return f" (the {_ordinal(k + 1)} of {len(places)})"
    return ""


def _ordinal(n: int) -> str:
    return f"{n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'}"


def _fits(model, expr: Node, shape) -> bool:
    """Whether ``expr`` has ``shape`` or broadcasts into it (``sum`` for ``rowsum`` gives a 1 x 1)."""
    try:
        got = model.shape(expr)
    except (ShapeError, KeyError, TypeError):
        return False
    return tuple(got) == tuple(shape) or broadcast(tuple(shape), tuple(got)) == tuple(shape)


def _one_minus_square(n: Node) -> bool:
    return (isinstance(n, Binary) and n.op == "-" and isinstance(n.a, Num) and n.a.value == 1
            and isinstance(n.b, Binary) and n.b.op == "**" and n.b.b == Num(Fraction(2)))


def _sigmoid_derivative(n: Node):
    """``s`` when ``n`` is ``s * (1 - s)`` or ``(1 - s) * s``, else None."""
    if not (isinstance(n, Binary) and n.op == "*"):
        return None
    for s, rest in ((n.a, n.b), (n.b, n.a)):
        if isinstance(rest, Binary) and rest.op == "-" and rest.a == Num(Fraction(1)) and rest.b == s:
            return s
    return None


def own_edits(expr: Node) -> Iterator[tuple[Node, str, Node, Node]]:
    """The slips of a tree that no claims repair undoes as written: ``(1 - h)**2``, ``1 - h``, the
    derivative of tanh for a sigmoid's and the other way round, ``u`` for ``1 - u``, ``h_{T-1}`` for
    ``h_T``, the last step's ``h_{T-1}`` for the running ``h_{t-1}``, a factor left out."""
    two = Num(Fraction(2))
    for path, n in subtrees(expr):
        if _one_minus_square(n):
            for new, kind in ((Binary("**", Binary("-", n.a, n.b.a), n.b.b), SQUARE), (Binary("-", n.a, n.b.a), LINEAR),
                              (Binary("*", n.b.a, Binary("-", n.a, n.b.a)), SIGMOID_FOR_TANH)):
                yield replace_at(expr, path, new), kind, n, new
        elif _sigmoid_derivative(n) is not None:
            gate = _sigmoid_derivative(n)
            new = Binary("-", Num(Fraction(1)), Binary("**", gate, two))
            yield replace_at(expr, path, new), TANH_FOR_SIGMOID, n, new
        elif isinstance(n, Binary) and n.op == "-" and n.a == Num(Fraction(1)) and isinstance(n.b, Ref):
            yield replace_at(expr, path, n.b), GATE, n, n.b
    for path, n in subtrees(expr):
        if isinstance(n, Ref) and n.step is not None and n.step.kind == "last":
            new = replace(n, step=Step("last", n.step.offset - 1))
            yield replace_at(expr, path, new), "a step off by one", n, new
        elif isinstance(n, Ref) and n.step is not None and n.step.kind == "rel" and n.step.offset <= 0:
            new = replace(n, step=Step("last", n.step.offset))
            yield replace_at(expr, path, new), EVERY_STEP, n, new
    for path, n in subtrees(expr):
        if isinstance(n, Binary) and n.op == "*":
            for keep, drop in ((n.a, n.b), (n.b, n.a)):
                if not adjoint_refs(drop) and any(isinstance(k, Ref) for _, k in subtrees(drop)):
                    yield replace_at(expr, path, keep), MISSING_FACTOR, n, keep


def _pointless(kind: str, old: Node, tree: Node, whole: Node) -> bool:
    """An edit that is no slip of its own: ``x * y`` for ``y * x``, ``W.T.T``, the whole side negated
    (:meth:`Vocabulary.scales` negates each term), a step of an adjoint moved (it reads one not computed yet)."""
    if kind == "a product's operands swapped":
        return isinstance(old, Binary) and old.op == "*"
    if kind == "a transpose too many":
        return any(isinstance(n, Unary) and n.op == "T" and isinstance(n.x, Unary) and n.x.op == "T"
                   for _, n in subtrees(tree))
    if kind == "a sign":
        return old == whole
    return kind == "a step off by one" and isinstance(old, Adj)


def tree_edits(expr: Node, model) -> Iterator[tuple[Node, str, Node, Node]]:
    """Every edit of a term's tree that makes a slip: the tree, the slip's kind, the part replaced and its
    replacement; the likeliest slips first."""
    yield from own_edits(expr)
    for tree, _, kind in edits(expr, model):
        slip = SLIP_OF_EDIT.get(kind)
        if slip is not None:
            old, new = changed_part(expr, tree)
            sizes = sorted({k.name for _, k in subtrees(old) if isinstance(k, SizeRef)})
            if slip == "a missing constant factor" and sizes:
                slip = f"a missing 1/{sizes[0]}"
            if not _pointless(slip, old, tree, expr):
                yield tree, slip, old, new
    for tree, _, kind in renames(expr, model):
        old, new = changed_part(expr, tree)
        yield tree, kind, old, new


class Vocabulary:
    """The single mutations of one derivation, in a fixed order (see :func:`single_mutations`)."""

    def __init__(self, derivation: MatrixDerivation):
        self.derivation = derivation
        self.model = derivation.model
        self.numbers = derivation.numbers()
        needed = _read_by_gradients(live_derivation(derivation))
        self.sites = [n for n in derivation.order() if n in needed and derivation.adjoints[n].terms
                      and n not in derivation.constants]
        self.rank = {n: k for k, n in enumerate(derivation.order())}

    def lhs(self, name: str) -> str:
        """``dL/dz_t``."""
        return show(Adj(name, Step("rel", 0) if self.model.symbols[name].per_step else None))

    def where(self, name: str) -> str:
        """``dL/dz_t, eq. (8)``."""
        return f"{self.lhs(name)}, eq. ({self.numbers[name]})"

    def shape(self, name: str):
        return self.model.symbols[name].shape

    def edited_trees(self, name: str, expr: Node) -> Iterator[tuple[Node, str, Node, Node]]:
        """The tree edits of one term that conform to its adjoint's shape and read no adjoint not yet computed."""
        seen = set()
        for tree, kind, old, new in tree_edits(expr, self.model):
            if kind in ("a transpose too many", "a missing transpose") and _fits(self.model, old, (1, 1)):
                continue  # the transpose of a number
            if tree in seen or tree == expr or not self.conforms(name, tree):
                continue
            seen.add(tree)
            yield tree, kind, old, new

    def conforms(self, name: str, tree: Node) -> bool:
        """Whether an edited tree fits the adjoint's shape and reads no adjoint not yet computed."""
        return _fits(self.model, tree, self.shape(name)) and not self.unready(name, tree)

    def unready(self, name: str, tree: Node) -> bool:
        """Whether ``tree`` reads, at its own step, an adjoint the backward pass computes after ``name``
        (``dL/dz_t`` inside ``dL/dh_t``): the code would read zeros, the term dropped."""
        if not self.model.symbols[name].per_step:
            return False
        rank = self.rank
        return any(a.step is not None and a.step.kind == "rel" and a.step.offset == 0
                   and rank.get(a.name, -1) >= rank[name] for a in adjoint_refs(tree))

    def term_edits(self, name: str) -> Iterator[Mutation]:
        """Each term's tree edited, or dropped."""
        terms = self.derivation.adjoints[name].terms
        for i, term in enumerate(terms):
            for tree, kind, old, new in self.edited_trees(name, term.expr):
                yield Mutation(name, ((i, replace(term, expr=tree)),), (),
                               f"{show(new)} in place of {show(old)}{which_one(term.expr, tree, old, new)} in "
                               f"{self.where(name)}", (kind,))
        for i, term in enumerate(terms):
            recurrent = bool(term.consumer and term.consumer > 0)
            yield Mutation(name, ((i, None),), (), f"{self.where(name)} without its term {show(term.expr)}",
                           (RECURRENT if recurrent else "missing terms",))

    def step_edits(self, name: str) -> Iterator[Mutation]:
        """A read-out term at every step, a sum over steps cut to the last step's term."""
        sym = self.model.symbols[name]
        for i, term in enumerate(self.derivation.adjoints[name].terms):
            if sym.per_step and term.at is not None and term.at.kind == "last" and term.at.offset == 0:
                yield Mutation(name, ((i, replace(term, at=None)),), (),
                               f"{show(term.expr)} at every step in place of the last step only in {self.where(name)}",
                               (EVERY_STEP,))
            if term.summed and not sym.per_step:
                last = transform(term.expr, _at_last)
                yield Mutation(name, ((i, replace(term, expr=last, summed=False)),), (),
                               f"{show(last)} in place of sum_t {show(term.expr)} in {self.where(name)}", (LAST_ONLY,))

    def scales(self, name: str) -> Iterator[Mutation]:
        """The whole adjoint negated, or scaled by 2, 1/2, a batch size or a step count."""
        terms = self.derivation.adjoints[name].terms
        sizes = [s for s in ("B", "T") if s in self.model.sizes]
        in_truth = {n.name for t in self.derivation.adjoints.values() for term in t.terms
                    for n in walk(term.expr) if isinstance(n, SizeRef)}
        factors = [(Num(Fraction(-1)), "negated", "a sign")]
        for s in sizes:
            factors.append((Binary("/", Num(Fraction(1)), SizeRef(s)), f"divided by {s}", f"an extra 1/{s}"))
            factors.append((SizeRef(s), f"multiplied by {s}", f"a missing 1/{s}" if s in in_truth
                            else f"an extra factor {s}"))
        factors.append((Num(Fraction(2)), "doubled", "a factor 2 (a square's derivative, a loss's 1/2)"))
        factors.append((Num(Fraction(1, 2)), "halved", "a factor 2 (a square's derivative, a loss's 1/2)"))
        for factor, how, kind in factors:
            changes = tuple((i, replace(t, expr=Binary("*", factor, t.expr))) for i, t in enumerate(terms))
            yield Mutation(name, changes, (), f"{self.lhs(name)} {how}, eq. ({self.numbers[name]})",
                           (kind,))
        if len(terms) > 1:
            for i, t in enumerate(terms):
                yield Mutation(name, ((i, replace(t, expr=Unary("neg", t.expr))),), (),
                               f"the sign of its term {show(t.expr)} flipped in {self.where(name)}", ("a sign",))

    def initial_state_edits(self, name: str) -> Iterator[Mutation]:
        """``dL/dh_0`` alone wrong: left zero, ``dL/dh_1`` given for it, or one of its terms edited."""
        adjoint = self.derivation.adjoints[name]
        start = [t for t in initial_state_terms(adjoint) if t.at is None]
        if not start:
            return
        undo = tuple(_at_zero(Unary("neg", t.expr), t) for t in start)
        zero = show(Adj(name, Step("abs", 0)))
        number = f"eq. ({self.numbers[name]}) at step 0"
        yield Mutation(name, (), undo, f"{zero} left zero, {number}", (INITIAL_STATE,))
        yield Mutation(name, (), undo + (Term(Adj(name, Step("rel", 1)), "mutation", at=Step("abs", 0)),),
                       f"{show(Adj(name, Step('abs', 1)))} in place of {zero}, {number}",
                       (INITIAL_STATE, "a step off by one"))
        for term in start:
            for tree, kind, old, new in self.edited_trees(name, term.expr):
                yield Mutation(name, (), (_at_zero(Unary("neg", term.expr), term), _at_zero(tree, term)),
                               f"{show(fix_steps(new, 0))} in place of {show(fix_steps(old, 0))}"
                               f"{which_one(term.expr, tree, old, new)} in {zero} only, "
                               f"{number}", (INITIAL_STATE, kind))

    def singles(self) -> Iterator[Mutation]:
        """Every single mutation, adjoint by adjoint in backward order, the likeliest slips of each first;
        one whose edited adjoint another already gave is left out."""
        seen = set()
        for m in self._all():
            key = (m.adjoint, tuple(mutated(self.derivation, [m]).adjoints[m.adjoint].terms))
            if key not in seen:
                seen.add(key)
                yield m

    def _all(self) -> Iterator[Mutation]:
        for name in self.sites:
            yield from self.term_edits(name)
            yield from self.step_edits(name)
            yield from self.scales(name)
        for s in self.model.states:
            if s.name in self.sites:
                yield from self.initial_state_edits(s.name)


def _read_by_gradients(derivation: MatrixDerivation) -> set:
    """The adjoints that the parameters' and initial states' gradients read (an input's gradient is no user's)."""
    model = derivation.model
    return adjoints_read_from(derivation, [s.name for s in model.params] + [s.name for s in model.states])


def _at_last(n: Node) -> Node:
    """``h_{t-1}`` -> ``h_{T-1}``: a step of the summed term read at the last step."""
    if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel":
        return replace(n, step=Step("last", n.step.offset))
    return n


def _at_zero(expr: Node, like: Term) -> Term:
    """A term that adds ``expr`` (read at step 0) to the initial state's adjoint only."""
    return Term(expr, like.source, at=Step("abs", 0))


def single_mutations(derivation: MatrixDerivation) -> list[Mutation]:
    """The single mutations of a derivation, shape-checked, in the order the search runs them first.

    Returns
    -------
    list of Mutation
        Deterministic: the same derivation gives the same list.
    """
    return list(Vocabulary(derivation).singles())
