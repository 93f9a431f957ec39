"""The model IR: typed symbols with shapes, per-step equations, sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from ..notation.blocks import Linear, Place, Slice, Stack, dim_linear
from ..notation.expr import Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Unary
from ..notation.sugar import as_row_softmax

Dim = Union[str, int]
Shape = Tuple[Dim, Dim]

KINDS = ("param", "input", "target", "state", "quantity")


class ShapeError(Exception):
    """Operands that do not conform; ``node`` is where, ``detail`` says why."""

    def __init__(self, message: str, node: Node):
        super().__init__(message)
        self.node = node


@dataclass
class Symbol:
    """A named matrix of the model.

    ``name`` is as declared (``x_t``, ``W_hh``, ``L``); a per-step symbol's
    name ends in ``_t`` and ``base`` drops it (the data key: ``x``).
    ``classes`` is set for a class-index target (``c_t : class O``), whose
    ``shape`` is then ``1 x batch``.
    """

    name: str
    kind: str
    per_step: bool
    shape: Optional[Shape]
    pos: Optional[Tuple[int, int]] = None
    classes: Optional[Dim] = None

    @property
    def base(self) -> str:
        return self.name[:-2] if self.per_step else self.name


@dataclass
class Equation:
    """``name = expr``; per-step equations hold at every t = 1..T.

    ``phase`` is ``"pre"`` (global, before the time loop), ``"step"`` or
    ``"post"`` (global, after the loop); ``number`` is the equation's number
    in reports and generated code.
    """

    name: str
    expr: Node
    per_step: bool
    phase: str
    number: int
    pos: Optional[Tuple[int, int]] = None
    text: str = ""


@dataclass
class Model:
    """A parsed, resolved and shape-checked model."""

    name: str
    path: str
    source: str
    sizes: Dict[str, Optional[int]]
    symbols: Dict[str, Symbol]
    equations: List[Equation]
    loss: str = "L"
    shape_cache: Dict[int, Shape] = field(default_factory=dict, repr=False)
    size_positions: Dict[str, Tuple[int, int]] = field(default_factory=dict, repr=False)
    """Where each size is declared, (line, column), for messages about a size."""

    def command_argument(self) -> str:
        """How a command line names this model: the built-in's name, or the file's path, shell-quoted."""
        import shlex
        return self.name if self.path.startswith("<builtin:") else shlex.quote(self.path)

    # -- views ---------------------------------------------------------
    def of_kind(self, kind: str) -> List[Symbol]:
        return [s for s in self.symbols.values() if s.kind == kind]

    @property
    def params(self) -> List[Symbol]:
        return self.of_kind("param")

    @property
    def states(self) -> List[Symbol]:
        return self.of_kind("state")

    @property
    def differentiable_inputs(self) -> List[Symbol]:
        """The inputs that hold numbers (not class numbers): the loss has a gradient with respect to each."""
        return [s for s in self.of_kind("input") if s.classes is None]

    @property
    def data_symbols(self) -> List[Symbol]:
        return [s for s in self.symbols.values() if s.kind in ("input", "target")]

    def equation(self, name: str) -> Optional[Equation]:
        for eq in self.equations:
            if eq.name == name:
                return eq
        return None

    def phase(self, phase: str) -> List[Equation]:
        return [eq for eq in self.equations if eq.phase == phase]

    @property
    def has_steps(self) -> bool:
        return any(s.per_step for s in self.symbols.values())

    def display(self, name: str, step=None) -> str:
        """``h_{t-1}``, ``h_T``, ``W_hh``: a symbol at a step, as the notes write it."""
        sym = self.symbols[name]
        if not sym.per_step or step is None:
            return name
        return f"{sym.base}_{step.text()}"

    # -- shapes --------------------------------------------------------
    def shape(self, node: Node) -> Shape:
        """The shape of an expression (raises :class:`ShapeError`)."""
        return infer_shape(node, self)


def pick_axis_error(model: Model, pick: Pick) -> Optional[str]:
    """Why a class pick reads a softmax along the other axis (``p[c]`` of a row-wise ``p``), else None."""
    transposed = isinstance(pick.x, Unary) and pick.x.op == "T"
    ref = pick.x.x if transposed else pick.x
    eq = model.equation(ref.name) if isinstance(ref, Ref) else None
    if eq is None:
        return None
    name = ref.name
    if transposed and isinstance(eq.expr, Call) and eq.expr.fn == "softmax":
        return (f"a pick per row of {name}, whose softmax normalises each column: write {name}[c] "
                f"(class c of each column), or normalise each row with softmax(..., rows)")
    if not transposed and as_row_softmax(eq.expr) is not None:
        return (f"a pick per column of {name}, whose softmax normalises each row: write {name}[c, rows] "
                "(class c of each row)")
    return None


def dims_equal(a: Dim, b: Dim) -> bool:
    return a == b


def broadcast(sa: Shape, sb: Shape) -> Optional[Shape]:
    """Elementwise result shape, or None when the shapes do not broadcast.

    A dimension of 1 stretches over any other (an ``n x 1`` column over
    ``n x B``, a ``1 x 1`` scalar over anything).
    """
    out = []
    for x, y in zip(sa, sb):
        if dims_equal(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return (out[0], out[1])


def shape_text(shape: Shape) -> str:
    """``H x B``, ``4*H x (F + H)``."""
    rows, cols = (f"({d})" if isinstance(d, str) and " " in d else str(d) for d in shape)
    return f"{rows} x {cols}"


def _symbol_shape(node, model: Model) -> Shape:
    sym = model.symbols[node.name]
    if sym.shape is None:
        raise ShapeError(f"the shape of {node.name} is not known yet", node)
    return sym.shape


def infer_shape(node: Node, model: Model) -> Shape:
    """Shape of ``node`` under the model's declarations.

    Raises
    ------
    ShapeError
        With the innermost node whose operands do not conform.
    """
    if isinstance(node, (Num, SizeRef)):
        return (1, 1)
    if isinstance(node, (Ref, Adj)):
        return _symbol_shape(node, model)
    if isinstance(node, Unary):
        s = infer_shape(node.x, model)
        return (s[1], s[0]) if node.op == "T" else s
    if isinstance(node, Binary):
        sa, sb = infer_shape(node.a, model), infer_shape(node.b, model)
        if node.op == "@":
            if not dims_equal(sa[1], sb[0]):
                raise ShapeError(
                    f"matrix product of {shape_text(sa)} and {shape_text(sb)}: "
                    f"inner dimensions {sa[1]} and {sb[0]} differ", node)
            return (sa[0], sb[1])
        if node.op == "**":
            if sb != (1, 1):
                raise ShapeError(f"the exponent must be a number, not {shape_text(sb)}", node)
            return sa
        if node.op == "dot":
            if dims_equal(sa[1], sb[0]):
                return (sa[0], sb[1])
            out = broadcast(sa, sb)
            if out is None:
                raise ShapeError(
                    f"'⋅' of {shape_text(sa)} and {shape_text(sb)}: neither a matrix "
                    "product nor an elementwise product conforms", node)
            return out
        out = broadcast(sa, sb)
        if out is None:
            word = {"+": "sum", "-": "difference", "*": "elementwise product",
                    "/": "quotient"}[node.op]
            raise ShapeError(
                f"{word} of {shape_text(sa)} and {shape_text(sb)}: shapes do not "
                "conform (only a dimension of 1 broadcasts)", node)
        return out
    if isinstance(node, Pick):
        if pick_axis_error(model, node):
            raise ShapeError(pick_axis_error(model, node), node)
        sx = infer_shape(node.x, model)
        if not isinstance(node.cls, Ref) or model.symbols[node.cls.name].classes is None:
            raise ShapeError("only a class target can index a matrix (y_t[c_t])", node.cls)
        csym = model.symbols[node.cls.name]
        if not dims_equal(sx[0], csym.classes):
            raise ShapeError(
                f"{node.cls.name} is a class out of {csym.classes} but the indexed "
                f"matrix has {sx[0]} rows", node)
        if not dims_equal(sx[1], csym.shape[1]):
            raise ShapeError(
                f"{node.cls.name} has {csym.shape[1]} columns but the indexed matrix "
                f"has {sx[1]}", node)
        return (1, sx[1])
    if isinstance(node, (Stack, Slice, Place)):
        return block_shape(node, model)
    if isinstance(node, Call):
        fn = node.fn
        if fn == "onehot":
            arg = node.args[0]
            if not isinstance(arg, Ref) or model.symbols[arg.name].classes is None:
                raise ShapeError("onehot takes a class target (onehot(c_t))", arg)
            csym = model.symbols[arg.name]
            return (csym.classes, csym.shape[1])
        s = infer_shape(node.args[0], model)
        if fn in ("sum", "mean"):
            return (1, 1)
        if fn == "ones_like":
            return s
        if fn == "transpose":
            return (s[1], s[0])
        if fn == "rowsum":
            return (s[0], 1)
        if fn == "colsum":
            return (1, s[1])
        return s
    raise TypeError(f"no shape rule for {type(node).__name__}")


def block_shape(node: Node, model: Model) -> Shape:
    """The shape of a row stack, a slice or a placed block (:mod:`derive.notation.blocks`)."""
    if isinstance(node, Stack):
        shapes = [infer_shape(part, model) for part in node.args]
        rows = Linear()
        for part, shape in zip(node.args, shapes):
            if not dims_equal(shape[1], shapes[0][1]):
                raise ShapeError(f"stacking [a; b] needs the same columns: {shape_text(shapes[0])} and "
                                 f"{shape_text(shape)} (columns {shapes[0][1]} and {shape[1]})", node)
            rows = rows + dim_linear(shape[0])
        return (rows.dim(), shapes[0][1])
    s = infer_shape(node.args[0], model)
    if isinstance(node, Place):
        return (node.total.dim(), s[1]) if node.axis == 0 else (s[0], node.total.dim())
    length, word = (s[0], "rows") if node.axis == 0 else (s[1], "columns")
    for bound, pos in ((node.lo, node.lo_pos), (node.hi, node.hi_pos)):
        unknown = [n for n, _ in bound.terms if n not in model.sizes]
        if unknown:
            raise ShapeError(f"the slice bound {bound.text()} reads {unknown[0]}, which is not a size (a slice "
                             f"bound is a size expression such as 0, H or 2*H)", Num(0, pos=pos or node.pos))
    checks = ((node.lo, Linear(), 0, node.lo_pos, f"the slice start {node.lo.text()} is not at least 0"),
              (node.hi, node.lo, 1, node.hi_pos, f"the slice {node.bounds_text()} is empty at some sizes "
                                                 f"(its end must exceed its start at every size)"),
              (dim_linear(length), node.hi, 0, node.hi_pos, f"the slice {node.bounds_text()} runs past the "
                                                            f"{length} {word} of a {shape_text(s)} matrix"))
    for big, small, least, pos, message in checks:
        if not (big - small).at_least(least):
            raise ShapeError(message + " (bounds are checked for every size of at least 1)",
                             Num(0, pos=pos or node.pos))
    part = (node.hi - node.lo).dim()
    return (part, s[1]) if node.axis == 0 else (s[0], part)
