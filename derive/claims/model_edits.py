"""Edits of a claim that need the model: a quantity named for another of its shape, and the last
step's term for the sum over steps.

The edits that need only the tree are in :mod:`derive.claims.repairs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from ..calculus.matrix import ADJOINT_KINDS
from ..model.model import ShapeError
from ..notation.expr import Adj, Call, Node, Ref, Step, outside_step_sums
from ..notation.printer import show
from .repairs import replace_at, subtrees


def _shape(model, node: Node):
    try:
        return model.shape(node)
    except (ShapeError, KeyError, TypeError):
        return None


def renames(node: Node, model) -> Iterator[tuple[Node, str]]:
    """A quantity or a derivative read as another of the same shape at the same step.

    ``c_{t-1}`` for ``h_{t-1}`` (the cell state for the hidden state), and
    ``dL/dh_t`` for ``dL/dz_t`` (the gradient after the nonlinearity where
    the one before it is meant).

    Yields
    ------
    (tree, description, kind)
    """
    for path, n in subtrees(node):
        if not isinstance(n, (Ref, Adj)) or n.name not in model.symbols:
            continue
        sym = model.symbols[n.name]
        shape = _shape(model, n)
        if shape is None:
            continue
        for name in sorted(model.symbols):
            other = model.symbols[name]
            if name == n.name or other.per_step != sym.per_step:
                continue
            if isinstance(n, Adj) and other.kind not in ADJOINT_KINDS:  # inputs and targets have no gradient
                continue
            new = replace(n, name=name)
            if _shape(model, new) != shape:
                continue
            yield replace_at(node, path, new), f"{show(new)} for {show(n)}{_through(model, n, new)}", \
                "one quantity or gradient for another of its shape"


def _through(model, old: Node, new: Node) -> str:
    """`` (h_t = tanh(z_t): dL/dh_t is the gradient after the tanh, dL/dz_t the one before it)``."""
    if not isinstance(old, Adj):
        return ""
    eq = model.equation(old.name)
    if eq is None or not isinstance(eq.expr, Call) or len(eq.expr.args) != 1:
        return ""
    arg = eq.expr.args[0]
    if not (isinstance(arg, Ref) and arg.name == new.name):
        return ""
    fn = eq.expr.fn
    return (f" ({model.display(old.name, old.step)} = {fn}({model.display(new.name, new.step)}): {show(old)} is "
            f"the gradient after the {fn}, {show(new)} the one before it)")


def _fixed_steps(node: Node) -> list[Step]:
    steps = []

    def note(n):
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind != "rel":
            steps.append(n.step)
        return n
    outside_step_sums(node, note)
    return steps


def last_step_only(node: Node) -> Iterator[tuple[Node, str]]:
    """The term of the last step written for the sum over every step.

    ``dL/do_T @ h_T.T`` becomes ``sum_t dL/do_t @ h_t.T`` (each step ``T + k``
    read as ``t + k``).

    Yields
    ------
    (tree, description, kind)
    """
    steps = _fixed_steps(node)
    if not steps or any(s.kind != "last" for s in steps):
        return

    def free(n):
        if isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "last":
            return replace(n, step=Step("rel", n.step.offset))
        return n
    body = outside_step_sums(node, free)
    yield Call("sum_t", (body,)), f"the sum over every step, sum_t {show(body)}, for the last step's term only", \
        "the last step's term for the sum over every step"


def model_edits(node: Node, model) -> Iterator[tuple[Node, str]]:
    """Every model-aware edit of a claim tree (after the tree-only ones of :func:`derive.claims.repairs.edits`)."""
    yield from last_step_only(node)
    yield from renames(node, model)

