"""Readings of the notes' ambiguous ``⋅`` and single edits of a claim (searched in sequences by
:mod:`derive.claims.repair_search`).

Both only build trees; :mod:`derive.claims.decide` decides which ones hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction

from ..notation.expr import Adj, Binary, Call, Node, Num, Ref, SizeRef, Step, StepSum, Unary, iverson
from ..notation.printer import show

PRODUCTS = ("@", "*", "dot")
LOW = ("+", "-")
HIGH = ("@", "*", "dot", "/")
MAX_READINGS = 243
REDUCTIONS = ("sum", "rowsum", "colsum")

Reading = tuple[Node, list[tuple[tuple, str, bool]]]


def readings(node: Node) -> list[Reading]:
    """Every resolution of the ``dot`` products: ``@``, ``*``, or ``@`` with the
    operands swapped (the notes' row-vector order).

    Returns
    -------
    list of (tree, choices)
        ``choices`` lists (position, how) for each ``⋅``, in reading order.
    """
    if isinstance(node, Binary):
        out = []
        for a, ca in readings(node.a):
            for b, cb in readings(node.b):
                if node.op != "dot":
                    out.append((replace(node, a=a, b=b), ca + cb))
                    continue
                for how in ("@", "*", "@ swapped"):
                    if how == "@ swapped":
                        tree = Binary("@", b, a, pos=node.pos)
                    else:
                        tree = Binary(how, a, b, pos=node.pos)
                    out.append((tree, ca + cb + [(node.pos, how, node.implicit)]))
                if len(out) > MAX_READINGS:
                    return out
        return out
    kids = node.children()
    if not kids:
        return [(node, [])]
    combos: list[Reading] = [((), [])]
    for k in kids:
        combos = [(done + (tree,), c + ck) for done, c in combos for tree, ck in readings(k)]
    return [(node.rebuild(tuple(done)), c) for done, c in combos]


def has_dot(node: Node) -> bool:
    if isinstance(node, Binary) and node.op == "dot":
        return True
    return any(has_dot(k) for k in node.children())


def describe_choices(choices) -> str:
    """``⋅ at column 24 as @, ⋅ at column 31 as *``."""
    parts = []
    for pos, how, *implicit in choices:
        where = f" at column {pos[1]}" if pos else ""
        what = {"@": "@ (matrix product)", "*": "* (elementwise)",
                "@ swapped": "@ with its operands swapped (the row-vector order)"}[how]
        product = "the product written without an operator" if implicit and implicit[0] else "⋅"
        parts.append(f"{product}{where} as {what}")
    return ", ".join(parts)


# -- tree surgery ---------------------------------------------------------
def subtrees(node: Node, path=()) -> Iterator[tuple[tuple, Node]]:
    yield path, node
    for k, child in enumerate(node.children()):
        yield from subtrees(child, path + (k,))


def replace_at(node: Node, path: tuple, new: Node) -> Node:
    if not path:
        return new
    kids = list(node.children())
    kids[path[0]] = replace_at(kids[path[0]], path[1:], new)
    return node.rebuild(tuple(kids))


def _chain(node: Node) -> tuple[list[Node], list[str]]:
    """A left-associated product chain as factors and operators."""
    if isinstance(node, Binary) and node.op in HIGH:
        factors, ops = _chain(node.a)
        return factors + [node.b], ops + [node.op]
    return [node], []


def _build(factors: list[Node], ops: list[str]) -> Node:
    out = factors[0]
    for f, op in zip(factors[1:], ops):
        out = Binary(op, out, f)
    return out


def _has_relative_step(node: Node) -> bool:
    """Whether the tree reads a step ``t + k`` (outside a ``sum_t``)."""
    if isinstance(node, Call) and node.fn in ("sum_t", "sum_range"):
        return False
    if isinstance(node, (Ref, Adj)) and node.step is not None and node.step.kind == "rel":
        return True
    return any(_has_relative_step(k) for k in node.children())


def _in_sum(root: Node, path: tuple) -> bool:
    """Whether the subtree at ``path`` is a term of a sum (``a + b``, ``a - b``)."""
    parent = root
    for k in path[:-1]:
        parent = parent.children()[k]
    return isinstance(parent, Binary) and parent.op in LOW


def _is_scalar_leaf(node: Node) -> bool:
    return isinstance(node, (Num, SizeRef))


def tanh_reason(model, h: Node) -> str:
    """`` (tanh'(z) = 1 - tanh(z)**2 = 1 - h_t**2, not (1 - h_t)**2)`` when ``h`` is a tanh of the model."""
    if model is None or not isinstance(h, Ref):
        return ""
    eq = model.equation(h.name)
    if eq is None or not (isinstance(eq.expr, Call) and eq.expr.fn == "tanh"):
        return ""
    return f" (tanh'(z) = 1 - tanh(z)**2 = 1 - {show(h)}**2, not (1 - {show(h)})**2)"


def edits(node: Node, model=None) -> Iterator[tuple[Node, str]]:
    """Single edits of a claim tree, most likely slips first.

    Parameters
    ----------
    node : Node
        The claim's right side.
    model : Model, optional
        When given, an edit of tanh's derivative says why it is right.

    Yields
    ------
    (tree, description, kind)
        ``kind`` names the slip the edit undoes, the same words for every
        claim (a class's most common slips are counted by it).
    """
    nodes = list(subtrees(node))
    # a transpose added or removed
    for path, n in nodes:
        if isinstance(n, Unary) and n.op == "T":
            yield replace_at(node, path, n.x), f"remove the transpose of {show(n.x)}", "a transpose too many"
    for path, n in nodes:
        if isinstance(n, (Ref, Adj, Binary, Call)) and not _is_scalar_leaf(n):
            yield replace_at(node, path, Unary("T", n)), f"transpose {show(n)}", "a missing transpose"
    # operand order
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in PRODUCTS:
            yield replace_at(node, path, replace(n, a=n.b, b=n.a)), \
                f"swap the operands of {show(n)}", "a product's operands swapped"
    # (1 - h)**2 -> 1 - h**2
    for path, n in nodes:
        if (isinstance(n, Binary) and n.op == "**" and isinstance(n.a, Binary) and n.a.op == "-"):
            new = Binary("-", n.a.a, Binary("**", n.a.b, n.b))
            yield replace_at(node, path, new), f"{show(new)} for {show(n)}{tanh_reason(model, n.a.b)}", \
                "(1 - h)**2 written for 1 - h**2"
    # 1 - h -> 1 - h**2 (and 1 - tanh(z) -> 1 - tanh(z)**2)
    for path, n in nodes:
        if (isinstance(n, Binary) and n.op == "-" and isinstance(n.a, Num) and n.a.value == 1
                and isinstance(n.b, (Ref, Call))):
            new = Binary("-", n.a, Binary("**", n.b, Num(Fraction(2))))
            yield replace_at(node, path, new), f"{show(new)} for {show(n)}{tanh_reason(model, n.b)}", \
                "1 - h written for 1 - h**2"
    # @ <-> *
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in ("@", "*"):
            other = "*" if n.op == "@" else "@"
            yield replace_at(node, path, replace(n, op=other)), f"{other} for {n.op} in {show(n)}", \
                "@ and * mixed up"
    # a reduction for another (sum for colsum, rowsum for sum)
    for path, n in nodes:
        if isinstance(n, Call) and n.fn in REDUCTIONS:
            for other in REDUCTIONS:
                if other != n.fn:
                    new = replace(n, fn=other)
                    yield replace_at(node, path, new), f"{other} for {n.fn} in {show(n)}", \
                        "one sum for another (sum, rowsum, colsum)"
    # + for - (and - for +)
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in LOW:
            other = "-" if n.op == "+" else "+"
            yield replace_at(node, path, replace(n, op=other)), f"{other} for {n.op} in {show(n)}", \
                "+ and - mixed up"
    # missing parentheses around a sum inside a product chain
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in LOW:
            lf, lo = _chain(n.a)
            rf, ro = _chain(n.b)
            if len(lf) + len(rf) < 3:
                continue
            group = Binary(n.op, lf[-1], rf[0])
            new = _build(lf[:-1] + [group] + rf[1:], lo + ro)
            yield replace_at(node, path, new), f"parenthesise ({show(group)})", "missing parentheses"
    # a term that exists at the last step only (the read-out of a many-to-one model): [t = T]
    for path, n in nodes:
        if path and isinstance(n, (Binary, Adj)) and not _has_relative_step(n) and _in_sum(node, path):
            yield replace_at(node, path, iverson(n, "=", Step("last", 0))), \
                f"{show(n)} at the last step only ([t = T])", "a last-step term written at every step"
    # a step off by one
    for path, n in nodes:
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel":
            for by in (-1, 1):
                new = replace(n, step=n.step.shifted(by))
                yield replace_at(node, path, new), f"{show(new)} for {show(n)}", "a step off by one"
    # a range sum's bound off by one
    for path, n in nodes:
        if isinstance(n, StepSum):
            for which in ("lo", "hi"):
                for by in (-1, 1):
                    bound = getattr(n, which)
                    new = replace(n, **{which: Step(bound.kind, bound.offset + by)})
                    yield replace_at(node, path, new), f"the {'lower' if which == 'lo' else 'upper'} bound " \
                        f"{Step(bound.kind, bound.offset + by).text().strip('{}')} for {bound.text().strip('{}')}", \
                        "a range sum's bound off by one"
    # a constant factor or a sign
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in ("*", "/") and _is_scalar_leaf(n.b):
            yield replace_at(node, path, n.a), f"drop the factor {n.op} {show(n.b)}", "a constant factor too many"
        if isinstance(n, Binary) and n.op == "*" and _is_scalar_leaf(n.a):
            yield replace_at(node, path, n.b), f"drop the factor {show(n.a)} *", "a constant factor too many"
        if isinstance(n, Unary) and n.op == "neg":
            yield replace_at(node, path, n.x), f"drop the minus sign of {show(n)}", "a sign"
    yield Unary("neg", node), "negate the whole right side", "a sign"
    # a term too many
    for path, n in nodes:
        if isinstance(n, Binary) and n.op in LOW:
            yield replace_at(node, path, n.a), f"drop the term {show(n.b)}", "a term too many"
            b = n.b if n.op == "+" else Unary("neg", n.b)
            yield replace_at(node, path, b), f"drop the term {show(n.a)}", "a term too many"
    yield Call("rowsum", (node,)), "sum over the batch (rowsum)", "a missing sum over the batch"
    if not any(isinstance(n, Call) and n.fn == "sum_t" for _, n in nodes):
        yield Call("sum_t", (node,)), "sum over the steps (sum_t)", "a missing sum over the steps"
