"""The matrix VJP table: one rule per primitive.

A rule takes the node ``n``, the adjoint ``G`` flowing into it (shaped like
``n``, or a 1 x 1 scalar that broadcasts) and ``out``, the expression that
names ``n``'s value (the equation's left side when ``n`` is a whole
right-hand side, so ``tanh`` gives ``1 - h_t**2`` rather than
``1 - tanh(z_t)**2``).  It returns one adjoint per child, ``None`` where
the child takes no gradient (a constant, a class index).  An adjoint may be
smaller than its node (``sum`` passes its 1 x 1 adjoint down unchanged, to
broadcast); the caller stretches it with ``ones_like`` where a matrix
product or a symbol needs the full shape, and sums a broadcast operand back
to its shape (:func:`derive.calculus.matrix.unbroadcast`).

A row stack's adjoint is the slices of ``G`` its operands' rows span; a
slice's is ``G`` placed in zeros at its rows (or columns). These and the
mean read their operands' shapes (:data:`MODEL_RULES`).

Each rule is proved against SymPy's scalar ``diff`` by ``tests/test_rules.py``.
"""

from __future__ import annotations

from ..notation.blocks import Linear, dim_linear, place, slice_of
from ..notation.expr import ARITHMETIC, ONE, Binary, Call, Node, Num, SizeRef, Unary


def neg(x):
    return Unary("neg", x)


def T(x):
    return Unary("T", x)


def mul(a, b):
    return Binary("*", a, b)


def sub(a, b):
    return Binary("-", a, b)


def is_constant(node: Node) -> bool:
    return isinstance(node, (Num, SizeRef))


VJP = {
    ("+",): lambda n, G, out: (G, G),
    ("-",): lambda n, G, out: (G, neg(G)),
    ("*",): lambda n, G, out: (mul(G, n.b), mul(G, n.a)),
    ("/",): lambda n, G, out: (Binary("/", G, n.b),
                               None if is_constant(n.b) else neg(Binary("/", mul(G, n.a), Binary("**", n.b, Num(2))))),
    ("@",): lambda n, G, out: (Binary("@", G, T(n.b)), Binary("@", T(n.a), G)),
    ("**",): lambda n, G, out: (mul(G, mul(n.b, Binary("**", n.a, sub(n.b, ONE)))), None),
    ("neg",): lambda n, G, out: (neg(G),),
    ("T",): lambda n, G, out: (T(G),),
    ("tanh",): lambda n, G, out: (mul(G, sub(ONE, Binary("**", out, Num(2)))),),
    ("sigmoid",): lambda n, G, out: (mul(G, mul(out, sub(ONE, out))),),
    ("relu",): lambda n, G, out: (mul(G, Call("step", n.args)),),
    ("exp",): lambda n, G, out: (mul(G, out),),
    ("log",): lambda n, G, out: (Binary("/", G, n.args[0]),),
    ("step",): lambda n, G, out: (None,),
    ("softmax",): lambda n, G, out: (mul(out, sub(G, Call("colsum", (mul(out, G),)))),),
    ("sum",): lambda n, G, out: (G,),  # G broadcasts over every entry
    ("rowsum",): lambda n, G, out: (G,),
    ("colsum",): lambda n, G, out: (G,),
    ("ones_like",): lambda n, G, out: (None,),
    ("onehot",): lambda n, G, out: (None,),
    ("pick",): lambda n, G, out: (mul(Call("onehot", (n.cls,)), G), None),
}


def spans(node, model):
    """``(lo, hi)`` of each operand's rows in a row stack, in order."""
    ends = [Linear()]
    for part in node.args:
        ends.append(ends[-1] + dim_linear(model.shape(part)[0]))
    return zip(ends, ends[1:])


def length(node, axis, model) -> Linear:
    """The rows (``axis`` 0) or columns of ``node``."""
    return dim_linear(model.shape(node)[axis])


def _full(G, node, model):
    """``G`` stretched to ``node``'s shape when it is a broadcasting 1 x 1."""
    return G if model.shape(G) == model.shape(node) else mul(G, Call("ones_like", (node,)))


def dim_node(d) -> Node:
    """A dimension as a number in a tree: ``3``, ``H``, ``4 * H``, ``F + H``."""
    if isinstance(d, int):
        return Num(d)
    terms = [SizeRef(n) if c == 1 else Binary("*", Num(c), SizeRef(n)) for n, c in dim_linear(d).terms]
    out = terms[0]
    for term in terms[1:]:
        out = Binary("+", out, term)
    return out if not dim_linear(d).const else Binary("+", out, Num(dim_linear(d).const))


def mean_rule(n, G, out, model):
    """``mean(X)``: every entry gets ``G / (rows * cols)``."""
    rows, cols = model.shape(n.args[0])
    count = [dim_node(d) for d in (rows, cols) if d != 1]
    if not count:
        return (G,)
    denominator = count[0] if len(count) == 1 else Binary("*", count[0], count[1])
    return (Binary("/", G, denominator),)


MODEL_RULES = {  # the rules that need operands' shapes
    "mean": mean_rule,
    "stack": lambda n, G, out, m: tuple(slice_of(G, 0, lo, hi) for lo, hi in spans(n, m)),
    "slice": lambda n, G, out, m: (place(_full(G, n, m), n.axis, n.lo, n.hi, length(n.args[0], n.axis, m)),),
}
"""Rules that read their operands' shapes: the mean's count, a stack's spans, a slice's whole length."""


def rule_key(node: Node) -> tuple:
    """The table key of a node (its operator or function name)."""
    if isinstance(node, (Binary, Unary)):
        return (node.op,)
    if isinstance(node, Call):
        return (node.fn,)
    return ("pick",)


def vjp(node: Node, G: Node, out: Node, model):
    """Adjoints of ``node``'s children given the adjoint ``G`` of ``node``.

    Where ``G`` is smaller than an elementwise ``node`` (a ``sum`` passed it
    down to broadcast) and an operand is broadcast too (``S`` in ``sum(S +
    A)``), that operand's adjoint is stretched to the node's shape first, so
    that summing it back (:func:`derive.calculus.matrix.unbroadcast`) counts every
    entry it was broadcast over.
    """
    if isinstance(node, Call) and node.fn in MODEL_RULES:
        return MODEL_RULES[node.fn](node, G, out, model)
    key = rule_key(node)
    if key not in VJP:
        raise NotImplementedError(f"no VJP rule for {key[0]}")
    adjoints = VJP[key](node, G, out)
    if isinstance(node, Binary) and node.op in ARITHMETIC and model.shape(G) != model.shape(node):
        adjoints = tuple(_stretched(a, child, node, out, model) for a, child in zip(adjoints, node.children()))
    return adjoints


def _stretched(adjoint, child: Node, node: Node, out: Node, model):
    """``adjoint * ones_like(...)`` of ``node``'s shape, for an operand ``node`` broadcasts."""
    full = model.shape(node)
    if adjoint is None or model.shape(child) == full or model.shape(adjoint) == full:
        return adjoint
    like = next((c for c in node.children() if model.shape(c) == full), out)
    return mul(adjoint, Call("ones_like", (like,)))
