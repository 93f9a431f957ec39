"""Turn parsed statements into a resolved, shape-checked :class:`Model`."""

from __future__ import annotations

import codecs
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import InputError, SourceText, split_lines
from ..notation.blocks import SizeTable, dim_names
from ..notation.expr import Adj, Binary, Call, Node, Num, Pick, Ref, SizeRef, Step, Unary, walk
from ..notation.expression_parser import MAX_STEP_DIGITS
from ..notation.parse import MAX_SIZE, MAX_TEXT, Statement, parse_statements
from .model import Equation, Model, ShapeError, Symbol, shape_text

STEP_SUFFIX = re.compile(r"^(.+)_(T|[0-9]+)$")
BUILTIN_DIR = Path(__file__).parent / "builtin"


class Resolver:
    """Resolves raw names in expressions against a model's declarations."""

    def __init__(self, src: SourceText, sizes: Dict[str, Optional[int]], symbols: Dict[str, Symbol]):
        self.src = src
        self.sizes = sizes
        self.symbols = symbols

    def per_step(self, base: str) -> Optional[str]:
        name = base + "_t"
        return name if name in self.symbols and self.symbols[name].per_step else None

    def name(self, raw: str, step: Optional[Step], pos, allow_size: bool = True):
        """(resolved symbol name, step), a SizeRef, or an error."""
        if step is not None:
            full = self.per_step(raw)
            if full is None:
                raise self.src.error(f"'{raw}' with a step subscript, but no per-step symbol {raw}_t is declared", pos)
            self.check_range(full, step, pos)
            return full, step
        if raw in self.symbols:
            sym = self.symbols[raw]
            return raw, (Step("rel", 0) if sym.per_step else None)
        if allow_size and raw in self.sizes:
            return SizeRef(raw, pos=pos), None
        m = STEP_SUFFIX.match(raw)
        if m and self.per_step(m.group(1)):
            at = m.group(2)
            if len(at.lstrip("0")) > MAX_STEP_DIGITS:
                raise self.src.error(f"'{raw}': a step number of more than {MAX_STEP_DIGITS} digits", pos)
            step = Step("last", 0) if at == "T" else Step("abs", int(at))
            self.check_range(m.group(1) + "_t", step, pos)
            return m.group(1) + "_t", step
        known = ", ".join(sorted(self.symbols))
        raise self.src.error(f"unknown symbol '{raw}' (declared: {known})", pos)

    def check_range(self, name: str, step: Step, pos):
        """Refuse a fixed step outside 0..T (``h_99``, ``h_{T-5}`` when T = 3), T where it is known."""
        sym = self.symbols[name]
        shown = f"{sym.base}_{step.text()}"
        if step.kind == "last" and step.offset > 0:
            raise self.src.error(f"{shown} is past the last step T", pos)
        T = self.sizes.get("T")
        if step.kind in ("rel", "outer") or not isinstance(T, int):
            return
        at = step.at(0, T)
        if at > T:
            raise self.src.error(f"{shown} is past the last step T = {T}", pos)
        if at < 0:
            raise self.src.error(f"{shown} is step {at}: steps run from 1 to T = {T} (and 0 for a state's "
                                 "initial value)", pos)
        if at == 0 and step.kind == "last" and sym.kind != "state":
            raise self.src.error(f"{shown} is step 0: steps run from 1 to T = {T}; only a state has a value "
                                 "at step 0", pos)

    def expression(self, node: Node, per_step: bool, allow_adjoints: bool = False) -> Node:
        """Resolve every name in ``node``; ``per_step`` is the context it stands in."""
        self.in_step_equation = per_step
        return self._resolve(node, per_step, allow_adjoints)

    def _resolve(self, node: Node, per_step: bool, allow_adjoints: bool) -> Node:
        if isinstance(node, Ref):
            got = self.name(node.name, node.step, node.pos)
            if isinstance(got[0], SizeRef):
                return got[0]
            name, step = got
            self.check_step(name, step, per_step, node.pos)
            return Ref(name, step, pos=node.pos)
        if isinstance(node, Adj):
            if not allow_adjoints:
                raise self.src.error("a derivative can stand only in a claim", node.pos)
            return node  # claims resolve their own derivatives
        if isinstance(node, Call) and node.fn == "sum_t":
            if per_step:
                raise self.src.error("sum_t inside a per-step expression: the sum over steps "
                                     "belongs in a global equation", node.pos)
            return replace(node, args=(self._resolve(node.args[0], True, allow_adjoints),))
        kids = node.children()
        if not kids:
            return node
        return node.rebuild(tuple(self._resolve(k, per_step, allow_adjoints) for k in kids))

    def check_step(self, name: str, step: Optional[Step], per_step: bool, pos):
        sym = self.symbols[name]
        if step is None:
            return
        shown = f"{sym.base}_{step.text()}"
        if step.kind == "rel":
            if not per_step:
                raise self.src.error(
                    f"{shown} in a global equation: name a step ({sym.base}_T) or sum over steps (sum_t)", pos)
            if step.offset > 0:
                raise self.src.error(f"{shown} looks ahead in time; an equation at step t can use steps up to t", pos)
            if step.offset < 0 and sym.kind != "state":
                raise self.src.error(
                    f"{shown} needs a value before step 1: declare 'state {name} : ... = 0'", pos)
            if step.offset < -1:
                raise self.src.error(f"{shown}: a state can be used one step back (t-1) only", pos)
        elif step.kind == "abs" and step.offset == 0 and sym.kind != "state":
            raise self.src.error(f"{shown}: steps run from 1 to T; only a state has a value at step 0", pos)
        elif (getattr(self, "in_step_equation", False) and sym.kind in ("state", "quantity")
              and not (step.kind == "abs" and step.offset == 0)):
            raise self.src.error(f"{shown} in a per-step equation reads a step that is not computed yet "
                                 f"at earlier steps; only {sym.base}_0 can be named at a fixed step here", pos)
        elif step.kind == "last" and step.offset > 0:
            raise self.src.error(f"{shown} is past the last step T", pos)


def _declare(st: Statement, src: SourceText, sizes, symbols):
    if st.name in symbols:
        raise src.error(f"'{st.name}' is declared twice", st.name_pos)
    for dim, pos in zip((st.classes,) + tuple(st.shape) if st.classes is not None else st.shape, st.dim_pos):
        for size in (n for n in dim_names(dim) if n not in sizes):
            raise src.error(f"unknown size '{size}': declare it in a 'size' line", pos)
    per_step = st.name.endswith("_t")
    symbols[st.name] = Symbol(st.name, st.kind, per_step, st.shape, st.name_pos, st.classes)


def _check_distinct_keys(symbols: Dict[str, Symbol], src: SourceText):
    """Refuse names that read as a step of a per-step symbol, or share a key of the generated module.

    ``h_0`` beside a state ``h_t`` (or ``x_2`` beside ``x_t``) would mean both
    that symbol and a step; the module's ``data`` dict keys an input ``x_t`` as
    ``x`` and a state's initial value as ``h_0``, its gradients dict keys
    parameters by name and initial values as ``h_0``.
    """
    per_step = {s.base: s for s in symbols.values() if s.per_step}
    for sym in symbols.values():
        base, _, sub = sym.name.rpartition("_")
        if not sym.per_step and base in per_step and (sub.isdigit() or sub == "T"):
            raise src.error(f"'{sym.name}' reads as {per_step[base].name} at step {sub}: "
                            "give it another name", sym.pos)
    for kinds, what in ((("input", "target", "state"), "data"), (("param", "state"), "gradients")):
        keys: Dict[str, Symbol] = {}
        for sym in symbols.values():
            if sym.kind not in kinds:
                continue
            key = sym.base + "_0" if sym.kind == "state" else sym.base
            if key in keys:
                raise src.error(f"'{sym.name}' and '{keys[key].name}' would share the key '{key}' of the "
                                f"generated module's {what} dict: rename one", sym.pos)
            keys[key] = sym


def _phase_of(eq_name: str, expr: Node, symbols, phases) -> str:
    for ref in walk(expr):
        if isinstance(ref, Ref):
            sym = symbols[ref.name]
            if sym.per_step or phases.get(ref.name) == "post":
                return "post"
    return "pre"


def _order(equations: List[Equation], src: SourceText) -> List[Equation]:
    """Equations in an order where each one's same-step inputs come first.

    A depth-first search with a stack of its own: a chain of thousands of
    equations must not exhaust Python's recursion.
    """
    by_name = {eq.name: eq for eq in equations}
    done, order, visiting = set(), [], set()

    def uses(eq: Equation):
        for ref in walk(eq.expr):
            if not isinstance(ref, Ref):
                continue
            same_step = ref.step is None or (ref.step.kind == "rel" and ref.step.offset == 0)
            if ref.name == eq.name:
                if same_step:
                    raise src.error(f"{eq.name} is defined in terms of itself", ref.pos)
            elif ref.name in by_name and (same_step or not eq.per_step):
                yield by_name[ref.name]

    for root in equations:
        if root.name in done:
            continue
        visiting.add(root.name)
        stack = [(root, uses(root))]
        while stack:
            eq, pending = stack[-1]
            for dep in pending:
                if dep.name in done:
                    continue
                if dep.name in visiting:
                    raise src.error(f"{dep.name} depends on itself at the same step", dep.pos)
                visiting.add(dep.name)
                stack.append((dep, uses(dep)))
                break
            else:
                stack.pop()
                visiting.discard(eq.name)
                done.add(eq.name)
                order.append(eq)
    rank = {"pre": 0, "step": 1, "post": 2}
    return sorted(order, key=lambda e: rank[e.phase])


TRUNCATION_NAMES = {"bptt_truncate", "truncate", "truncation", "bptt_steps", "tbptt", "truncated_bptt"}
"""Option names of truncated BPTT, refused rather than read as a quantity nothing uses."""


def build_model(statements: List[Statement], src: SourceText, name: str) -> Model:
    """Resolve and check the model statements of a file.

    Raises
    ------
    InputError
        On an unknown name, a misplaced step, a shape that does not conform,
        a missing loss or a state without an equation.
    """
    sizes: Dict[str, Optional[int]] = SizeTable()  # also answers a sum of sizes, sizes['4*H']
    size_positions: Dict[str, Tuple[int, int]] = {}
    symbols: Dict[str, Symbol] = {}
    eq_statements = []
    for st in statements:
        if st.kind == "size":
            for size_name, value, pos in st.sizes:
                if size_name in sizes:
                    raise src.error(f"size '{size_name}' is given twice", pos)
                sizes[size_name] = value
                size_positions[size_name] = pos
    for st in statements:
        if st.kind in ("param", "input", "target", "state"):
            if st.kind == "state" and not st.name.endswith("_t"):
                raise src.error(f"a state is per-step: name it {st.name}_t", st.name_pos)
            if st.kind == "param" and st.name.endswith("_t"):
                raise src.error(f"a parameter is shared by every step, so its name cannot end in _t (the "
                                f"suffix of a per-step symbol): name it {st.name[:-2]}", st.name_pos)
            _declare(st, src, sizes, symbols)
        elif st.kind == "equation":
            eq_statements.append(st)
    defined = {}
    for st in eq_statements:
        if st.name.lower() in TRUNCATION_NAMES:
            raise src.error(f"not supported: truncated BPTT ('{st.name} = ...'). derive derives the full gradient "
                            "of the loss, through every step; a truncated gradient is not the loss's gradient, and "
                            "read as an equation this line would silently change nothing. Leave the line out "
                            "(`derive against` on a truncated backward pass says from which T it differs)",
                            st.name_pos)
        if st.name in defined:
            raise src.error(f"'{st.name}' has two equations", st.name_pos)
        sym = symbols.get(st.name)
        if sym is not None and sym.kind != "state":
            raise src.error(f"'{st.name}' is a declared {sym.kind}; it cannot be given an equation", st.name_pos)
        if st.name in sizes:
            raise src.error(f"'{st.name}' is a size; it cannot be given an equation", st.name_pos)
        if sym is None:
            symbols[st.name] = Symbol(st.name, "quantity", st.name.endswith("_t"), None, st.name_pos)
        defined[st.name] = st
    for sym in symbols.values():
        if sym.kind == "state" and sym.name not in defined:
            raise src.error(f"state {sym.name} has no equation ({sym.name} = ...)", sym.pos)
    _check_distinct_keys(symbols, src)

    resolver = Resolver(src, sizes, symbols)
    equations, phases = [], {}
    for number, st in enumerate(eq_statements, start=1):
        per_step = symbols[st.name].per_step
        expr = resolver.expression(st.expr, per_step)
        ConstantCheck(src, sizes).value(expr)
        phase = "step" if per_step else _phase_of(st.name, expr, symbols, phases)
        phases[st.name] = phase
        equations.append(Equation(st.name, expr, per_step, phase, number, st.name_pos, st.text.strip()))
    for eq in equations:  # a global equation may use a later one: settle phases
        if eq.phase == "pre" and _phase_of(eq.name, eq.expr, symbols, phases) == "post":
            eq.phase = phases[eq.name] = "post"
    for eq in equations:
        if eq.phase == "pre":
            _check_pre(eq, phases, src)
    equations = _order(equations, src)
    model = Model(name, src.path, src.text, sizes, symbols, equations, size_positions=size_positions)
    if model.has_steps and "T" not in sizes:
        sizes["T"] = None  # the number of steps, known from the data only
    for eq in equations:
        try:
            shape = model.shape(eq.expr)
        except ShapeError as err:
            raise src.error(str(err), err.node.pos or eq.pos)
        sym = symbols[eq.name]
        if sym.shape is not None and sym.shape != shape:
            raise src.error(f"{eq.name} is declared {shape_text(sym.shape)} but its equation gives "
                            f"{shape_text(shape)}", eq.pos)
        sym.shape = shape
    _check_loss(model, src)
    return model


def _check_pre(eq: Equation, phases, src):
    for ref in walk(eq.expr):
        if isinstance(ref, Ref) and phases.get(ref.name) == "post":
            raise src.error(f"{eq.name} is computed before the time loop but uses {ref.name}", ref.pos)


def _check_loss(model: Model, src: SourceText):
    loss = model.symbols.get(model.loss)
    if loss is None or loss.kind != "quantity":
        raise src.error("no loss: the model needs an equation for the scalar L", _end_of(src))
    if loss.per_step:
        raise src.error("L must be a single scalar over all steps (L = sum_t L_t)", loss.pos)
    if loss.shape != (1, 1):
        raise src.error(f"the loss L must be 1 x 1, but its equation gives {shape_text(loss.shape)} "
                        "(sum it: L = sum(...))", loss.pos)
    for eq in model.equations:
        allowed = {id(n.cls) for n in walk(eq.expr) if isinstance(n, Pick)}
        allowed |= {id(n.args[0]) for n in walk(eq.expr) if isinstance(n, Call) and n.fn == "onehot"}
        for node in walk(eq.expr):
            if isinstance(node, Ref) and model.symbols[node.name].classes is not None and id(node) not in allowed:
                raise src.error(f"{node.name} holds class numbers: use it as y_t[{node.name}] "
                                f"or onehot({node.name})", node.pos)


def _end_of(src: SourceText) -> Optional[Tuple[int, int]]:
    """The position just past the last statement of a text (line 1 of a blank one; None when empty)."""
    for lineno in range(len(src.lines), 0, -1):
        line = src.lines[lineno - 1].split("#", 1)[0].rstrip()
        if line.strip():
            return lineno, len(line) + 1
    return (1, 1) if src.lines else None


FLOAT_MAX = Fraction(10) ** 308
"""A bound on the constants of a model: float64 ends near 1.8e308."""


class ConstantCheck:
    """The constant parts of an expression (numbers, sizes) folded as the derivation will fold them.

    Refuses what no float64 code can compute: an exponent that is not a
    constant (the derivative of ``x**c`` treats ``c`` as one), a division by
    a constant zero, a negative number to a fractional power, and a constant
    beyond float64's range (``2 ** 1e300`` would otherwise be computed exactly,
    and never finish). Powers are bounded before they are computed.
    """

    def __init__(self, src: SourceText, sizes: Dict[str, Optional[int]]):
        self.src = src
        self.sizes = sizes

    def value(self, node: Node) -> Optional[Fraction]:
        """The value of a constant ``node``, None for any other; raises InputError as above."""
        kids = [self.value(k) for k in node.children()]
        if isinstance(node, Num):
            return self.bounded(node.value, node)
        if isinstance(node, SizeRef):
            size = self.sizes.get(node.name)
            return Fraction(size if isinstance(size, int) else MAX_SIZE)
        if isinstance(node, Unary):
            return None if kids[0] is None else (-kids[0] if node.op == "neg" else kids[0])
        if not isinstance(node, Binary):
            return None
        a, b = kids
        if node.op == "**":
            return self.power(node, a, b)
        if node.op == "/" and b == 0:
            raise self.src.error("division by zero", node.pos)
        if a is None or b is None:
            return None
        if node.op == "+":
            return self.bounded(a + b, node)
        if node.op == "-":
            return self.bounded(a - b, node)
        if node.op == "/":
            return self.bounded(a / b, node)
        return self.bounded(a * b, node)  # *, @ and ⋅ of two scalars

    def power(self, node: Binary, a: Optional[Fraction], b: Optional[Fraction]) -> Optional[Fraction]:
        symbol = next((n for n in walk(node.b) if isinstance(n, (Ref, Adj))), None)
        if symbol is not None:
            raise self.src.error("the exponent must be a constant (a number or a size): derive "
                                 "differentiates x**c for a constant c only", symbol.pos or node.pos)
        if b is None or a is None:
            return None
        if a == 0 and b < 0:
            raise self.src.error("division by zero: 0 to a negative power", node.pos)
        if a < 0 and b.denominator != 1:
            raise self.src.error("a negative number to a fractional power is not a real number", node.pos)
        if abs(a) in (0, 1):
            return a ** int(b) if b.denominator == 1 else abs(a)
        bits = max(abs(a.numerator).bit_length(), a.denominator.bit_length())
        if abs(b) * (bits - 1) > 1100:  # well beyond 1e308 or below 1e-308
            raise self.src.error(f"constant too large: {_short(a)} to the power {_short(b)} is beyond the range "
                                 "of float64 (about 1.8e308)", node.pos)
        if b.denominator != 1:
            return None  # a float; the derivation does not fold it
        return self.bounded(a ** int(b), node)

    def bounded(self, v: Fraction, node: Node) -> Fraction:
        if abs(v) > FLOAT_MAX:
            raise self.src.error(f"constant too large: {_short(v)} is beyond the range of float64 "
                                 "(about 1.8e308)", node.pos)
        return v


def _short(v: Fraction) -> str:
    """A constant for a message, at most a few dozen characters."""
    text = str(v)
    if len(text) <= 24:
        return text
    return f"{float(v):.3g}" if abs(v) < FLOAT_MAX else f"a {len(str(int(v)))}-digit number"


def load_text(text: str, path: str, name: Optional[str] = None) -> Model:
    """A model from its text (``path`` only names it in messages)."""
    src = SourceText(text, path)
    statements = parse_statements(src)
    return build_model(statements, src, name or Path(path).stem)


def builtin_names() -> List[str]:
    """The built-in model names, sorted."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.rnn"))


def read_source(name_or_path: str):
    """(text, path, name) of a built-in model or a file."""
    if name_or_path in builtin_names():
        path = BUILTIN_DIR / f"{name_or_path}.rnn"
        return path.read_text(encoding="utf-8"), f"<builtin:{name_or_path}>", name_or_path
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"no such model file or built-in model '{name_or_path}' "
                         f"(built-in: {', '.join(builtin_names())})", name_or_path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"file too large: {path.stat().st_size:,} bytes (a model is a few kilobytes; "
                         f"at most {MAX_FILE_BYTES:,})", str(path))
    return decode_source(path.read_bytes(), str(path)), str(path), path.stem


MAX_FILE_BYTES = 4 * MAX_TEXT
"""Largest model file read (the text limit of the parser, four bytes a character)."""


def decode_source(data: bytes, path: str) -> str:
    """The UTF-8 text of a file's bytes, a leading byte-order mark dropped.

    Raises
    ------
    InputError
        At the line and column of the first byte that is not UTF-8.
    """
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[skip:skip + err.start].decode("utf-8")
        lines = split_lines(before + "x")
        column = len(lines[-1])
        shown = split_lines(data[skip:].decode("utf-8", "replace"))
        line_text = shown[len(lines) - 1] if len(lines) <= len(shown) else ""
        raise InputError(f"not UTF-8 text ({err.reason} at byte {skip + err.start})", path, len(lines),
                         column, line_text) from None


def load_model(name_or_path: str) -> Model:
    """A built-in model by name, or a model file by path.

    Raises
    ------
    InputError
        When the file is missing or its text is not a valid model.
    """
    text, path, name = read_source(name_or_path)
    return load_text(text, path, name)
