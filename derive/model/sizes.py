"""Sizes against a model: sizes given later (``--size``, a claims file) and the sizes to prove at.

A model is checked against its declared sizes when it is built; these
functions check it again against other sizes, and tell which sizes a
generated module cannot read off its inputs.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict

from ..errors import InputError, SourceText
from ..notation.blocks import SizeSum, SizeTable, dim_names, dim_value
from ..notation.expr import Adj, Ref, walk
from .build import ConstantCheck, Resolver
from .model import Model


def check_sizes(model: Model, sizes: Dict[str, int]) -> None:
    """Refuse sizes (``--size T=2``, a claims file's ``size``) under which the model no longer holds.

    The checks :func:`build_model` made against the declared sizes are made
    again against ``sizes``: every fixed step within 0..T (``h_4`` needs
    T >= 4) and every constant well defined (``1/(T-2)`` needs T != 2).

    Raises
    ------
    InputError
        At the step or the constant that fails, in the model's own text.
    """
    src = SourceText(model.source, model.path)
    resolver = Resolver(src, sizes, model.symbols)
    constants = ConstantCheck(src, sizes)
    try:
        for eq in model.equations:
            for node in walk(eq.expr):
                if isinstance(node, (Ref, Adj)) and node.step is not None and node.step.kind != "rel":
                    resolver.check_range(node.name, node.step, node.pos or eq.pos)
            constants.value(eq.expr)
    except InputError as err:
        raise InputError(f"{err.message} (with the sizes {_sizes_text(sizes)})", err.path, err.line,
                         err.column, err.line_text) from None


def constant_sizes(model: Model) -> Dict[str, int]:
    """The declared sizes no input array's shape holds, with their values (``K`` in ``L = sum(W) / K``).

    The arrays are the parameters, inputs, targets and initial states; a
    class count (``target c : class K x B``) is in none of them, and neither
    is a size only a computed quantity has.  T counts as held when an input
    or target is per step (its array has a steps axis); a model whose only
    per-step symbols are states and computed quantities runs for its
    declared T.  A generated module cannot read such a size off its inputs,
    so it uses the declared value; a proof or a check at other sizes must
    use that value too.
    """
    shaped = {n for sym in model.symbols.values() if sym.kind != "quantity" and sym.shape
              for d in sym.shape for n in dim_names(d)}
    steps_given = any(sym.per_step for sym in model.data_symbols)
    return {n: v for n, v in model.sizes.items()
            if v is not None and n not in shaped and not (n == "T" and steps_given)}


def smallest_T(model: Model) -> int:
    """The smallest T at which every fixed step of the model lies within 0..T."""
    least = 1
    for eq in model.equations:
        for node in walk(eq.expr):
            step = getattr(node, "step", None)
            if isinstance(node, Ref) and step is not None:
                if step.kind == "abs":
                    least = max(least, step.offset)
                elif step.kind == "last":  # h_{T-k}: step 0 is a state's initial value, 1 for the rest
                    least = max(least, -step.offset + (0 if model.symbols[node.name].kind == "state" else 1))
    return least


def check_size_names(model: Model, overrides: Dict[str, int]) -> None:
    """Refuse ``--size`` names the model does not declare (T counts for a model with steps).

    Raises
    ------
    InputError
        Naming the unknown sizes and the model's own.
    """
    unknown = [name for name in overrides if name not in model.sizes]
    if unknown:
        raise InputError(f"--size names {', '.join(unknown)}, which the model does not declare "
                         f"(its sizes: {', '.join(model.sizes) or 'none'})", "--size")


def sizes_for(model: Model, overrides: Dict[str, int]) -> Dict[str, int]:
    """The model's declared sizes with ``overrides`` (``--size H=8,T=5``) put in, checked.

    Raises
    ------
    InputError
        When an override names a size the model does not declare, when the
        model has steps and no T is declared or given (at the first per-step
        declaration), or when :func:`check_sizes` refuses the result.
    """
    check_size_names(model, overrides)
    sizes = {k: v for k, v in model.sizes.items() if v is not None}
    sizes.update(overrides)
    if model.has_steps and "T" not in sizes:
        first = min((sym for sym in model.symbols.values() if sym.per_step and sym.pos),
                    key=lambda sym: tuple(sym.pos))
        src = SourceText(model.source, model.path)
        raise src.error(f"{first.name} is per step, but the model declares no size T: add "
                        "'size T = ...' or give it with --size T=...", first.pos)
    check_sizes(model, sizes)
    return SizeTable(sizes)


def _sizes_text(sizes: Dict[str, int]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


def first_fitting(model: Model, candidate: Callable[[int], Dict[str, int]], tries: int = 8) -> Dict[str, int]:
    """The first of ``candidate(0)``, ``candidate(1)``, ... that :func:`check_sizes` accepts.

    Used to move small sizes up until every constant of the model is defined
    (``1/(H - 2)`` at H = 2) and every fixed step fits; after ``tries`` the
    last candidate is returned as it is, and the work at it will say what fails.
    """
    for shift in range(tries):
        sizes = SizeTable(candidate(shift))
        try:
            check_sizes(model, sizes)
            return _sums_apart(model, sizes)
        except InputError:
            continue
    return sizes


def _collisions(model: Model, sizes: Dict[str, int]) -> int:
    """How many of the model's distinct dimensions (sizes and their sums, ``4*H``) share a value at ``sizes``."""
    dims = {d for sym in model.symbols.values() if sym.shape for d in sym.shape if not isinstance(d, int)}
    values = [dim_value(d, sizes) for d in dims]
    return len(values) - len(set(values))


def _sums_apart(model: Model, sizes: SizeTable) -> SizeTable:
    """``sizes``, or the nearest sizes above them at which a model's sums (``F + H``, ``4*H``) and sizes
    all differ, so that a transposed operand fails to conform; models without sums keep ``sizes``."""
    sums = any(isinstance(d, SizeSum) for sym in model.symbols.values() if sym.shape for d in sym.shape)
    free = [n for n in sizes if n != "T" and n not in constant_sizes(model)]
    if not sums or not free or _collisions(model, sizes) == 0:
        return sizes
    for bumps in sorted(itertools.product(range(3), repeat=min(len(free), 6)), key=lambda b: (sum(b), b)):
        moved = SizeTable(sizes)
        moved.update({n: sizes[n] + b for n, b in zip(free, bumps)})
        if _collisions(model, moved) == 0:
            try:
                check_sizes(model, moved)
                return moved
            except InputError:
                continue
    return sizes

