"""Emit the NumPy module (interface in the README) from the model and its matrix derivation.

The module is vectorised over the batch with one loop over time forward and
one backward; each statement carries the equation it computes as a comment.
Only the adjoints that some gradient needs are computed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Set

from .. import __version__
from ..notation.expr import Adj, Call, Ref, SizeRef, Step, adjoint_refs, fix_steps, walk
from ..calculus.matrix import Adjoint, MatrixDerivation, Term, boundary_offsets, initial_state_terms
from .hygiene import finalize, spelled_as
from ..model.model import Model
from .numpy_printer import NumPyPrinter, py_name, size_name, variable
from ..notation.printer import show

HELPERS = '''

def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _relu(a):
    return a * (a.real > 0)


def _step(a):
    return (a.real > 0).astype(float)


def _softmax(a):
    e = np.exp(a - a.real.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _onehot(classes, n):
    out = np.zeros((n, classes.shape[0]))
    out[classes, np.arange(classes.shape[0])] = 1
    return out


def _pick(a, classes):
    return a[classes, np.arange(a.shape[1])][None, :]


def _fit(label, array, dims, sizes):
    """Check an array against symbolic dims, learning the sizes it fixes."""
    if array.ndim != len(dims):
        raise ValueError(f"{label} has shape {array.shape}; expected {_expected(dims, sizes)}")
    for got, dim in zip(array.shape, dims):
        want = dim if isinstance(dim, int) else sizes.setdefault(dim, got)
        if got != want:
            raise ValueError(f"{label} has shape {array.shape}; expected {_expected(dims, sizes)}"
                             f" ({dim} = {want})")


def _expected(dims, sizes):
    return tuple(d if isinstance(d, int) else sizes.get(d, d) for d in dims)


def _check_keys(params, data):
    """Refuse a key the model does not have (a misspelt h0 for h_0 would be ignored)."""
    for what, given, known in (("params", params, PARAM_SHAPES), ("data", data, DATA_SHAPES)):
        unknown = sorted(set(given) - set(known), key=str)
        if unknown:
            raise ValueError(f"{what} has {', '.join(map(repr, unknown))}, which the model does not have "
                             f"(its {what}: {', '.join(map(repr, known))})")


def _check_classes(name, array, count):
    """Class numbers must be whole numbers in 0..count-1 (-1 would wrap around to the last class)."""
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"data[{name!r}] holds class numbers: whole numbers, not {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= count):
        raise ValueError(f"data[{name!r}] holds class numbers 0..{count - 1}; found {array.min()}..{array.max()}")
'''


def docstring_text(text: str) -> str:
    """User text (a file name) made safe inside the module's triple-quoted docstring."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def regenerate_command(model: Model, style: str = "") -> str:
    """The command that writes this module again: the built-in's name, or the file's path, shell-quoted."""
    return f"derive code {style + ' ' if style else ''}{model.command_argument()}"


def _dims_code(shape, per_step: bool) -> str:
    dims = [d if isinstance(d, int) else size_name(d) for d in shape]
    if per_step:
        dims = ["T + 1"] + dims
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def whole_sum(term: Term) -> Term:
    """A term summed over steps, written as one value: ``sum_t`` of its expression.

    For a target the time loop does not sum into: a global after the loop
    (``y`` read inside ``L = sum_t ...``) or one fixed step of a per-step
    quantity (``h_T`` inside ``sum_t``), whose adjoint must be whole before
    the backward loop reads it at that step.
    """
    return replace(term, expr=Call("sum_t", (term.expr,)), summed=False)


def summed_in_loop(term: Term) -> bool:
    """A term summed over steps that the backward loop adds up, one step at a time.

    One that reads nothing at the step ``t`` (``sum_t b`` of a parameter, or
    ``sum_t`` in a global computed before the loop) is the same at every step:
    it is added whole after the loop (:func:`whole_sum`), where the adjoint it
    reads may only then be complete.
    """
    return term.summed and any(isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "rel"
                               for n in walk(term.expr))


def targets_step_zero(term: Term) -> bool:
    """A term that exists only at step 0 (a state's initial value)."""
    return term.at is not None and term.at.kind == "abs" and term.at.offset == 0


def live_derivation(derivation: MatrixDerivation) -> MatrixDerivation:
    """The derivation without the terms that read an adjoint which is zero.

    A quantity the loss does not depend on (``o_t`` that nothing reads) has no
    adjoint, yet the terms its equation contributes to its operands read it
    (``dL/dh_{t-1}`` gets ``... dL/do_t``): such a term is zero, and so is an
    adjoint left with no other term. The live adjoints are the least set that
    holds the loss's and every adjoint with a term reading live adjoints only.

    Returns
    -------
    MatrixDerivation
        ``derivation`` itself when nothing is dead; else a copy whose dead
        adjoints are gone (a parameter's stays, with no terms).
    """
    adjoints = derivation.adjoints

    def reads_live(term: Term, live: Set[str]) -> bool:
        return all(a.name in live for a in adjoint_refs(term.expr))

    live: Set[str] = set()
    while True:
        grown = {name for name, adjoint in adjoints.items() if any(reads_live(t, live) for t in adjoint.terms)}
        if grown == live:
            break
        live = grown
    kept = {name: [t for t in adjoint.terms if reads_live(t, live)] for name, adjoint in adjoints.items()}
    if all(len(kept[name]) == len(adjoint.terms) for name, adjoint in adjoints.items()):
        return derivation
    params = {s.name for s in derivation.model.params}
    pruned = {name: replace(adjoint, terms=kept[name]) for name, adjoint in adjoints.items()
              if kept[name] or name in params}
    return MatrixDerivation(derivation.model, pruned, derivation.constants)


def needed_adjoints(derivation: MatrixDerivation, with_states: bool = True) -> Set[str]:
    """Adjoints that the parameter (and initial-state) gradients depend on."""
    model = derivation.model
    todo = [s.name for s in model.params] + ([s.name for s in model.states] if with_states else [])
    seen: Set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in derivation.adjoints:
            continue
        seen.add(name)
        for term in derivation.adjoints[name].terms:
            todo += [a.name for a in adjoint_refs(term.expr)]
    return seen


def needed_values(model: Model, exprs) -> Set[str]:
    """Symbols whose forward values the given expressions read."""
    return {n.name for e in exprs for n in walk(e) if isinstance(n, Ref)}


class ModuleWriter:
    """Builds the module text line by line."""

    #: the entry points' names; a style that wraps them (see codegen_threads) renames these
    loss_name = "loss"
    gradient_name = "loss_and_gradients"

    def __init__(self, model: Model, derivation: MatrixDerivation):
        self.model = model
        self.derivation = live_derivation(derivation)
        self.p = NumPyPrinter(model)
        self.lines: List[str] = []
        self.numbers = {eq.name: eq.number for eq in model.equations}
        self.numbers.update(derivation.numbers())  # as `derive show` numbers them, dead ones included

    def emit(self, text: str = "", indent: int = 0):
        self.lines.append(("    " * indent + text) if text else "")

    # -- pieces --------------------------------------------------------------
    def adjoint_comment(self, name: str, term: Optional[Term] = None, at_zero=False,
                        first=False) -> str:
        model = self.model
        sym = model.symbols[name]
        step = (Step("abs", 0) if at_zero else Step("rel", 0)) if sym.per_step else None
        lhs = show(Adj(name, step))
        if term is None:
            return f"({self.numbers[name]}) {lhs}"
        expr = fix_steps(term.expr, 0) if at_zero and not term.summed else term.expr
        prefix = "sum_t " if term.summed else ""
        return f"({self.numbers[name]}) {lhs} {'=' if first else '+='} {prefix}{show(expr)}"

    def conditions(self, term: Term, per_step_target: bool) -> List[str]:
        out = []
        if term.at is not None and per_step_target:
            target = {"last": "T", "abs": ""}[term.at.kind]
            out.append(f"t == {target}{term.at.offset if term.at.kind == 'abs' else ''}"
                       if term.at.kind == "abs" or term.at.offset == 0
                       else f"t == T - {-term.at.offset}")
        for off in boundary_offsets(term):
            out.append(f"t + {off} <= T" if off > 0 else f"t - {-off} >= 1")
        return out

    def accumulate(self, target: str, term: Term, indent: int, first: bool,
                   per_step_target: bool, comment: str):
        conds = self.conditions(term, per_step_target)
        code = self.p(term.expr)
        self.emit(f"# {comment}", indent)
        if conds:
            self.emit(f"if {' and '.join(conds)}:", indent)
            self.emit(f"{target} += {code}", indent + 1)
        else:
            self.emit(f"{target} {'=' if first else '+='} {code}", indent)

    # -- module ----------------------------------------------------------------
    def write(self) -> str:
        """The module's text, every user name spelled so that it shadows nothing.

        ``self.names`` maps each identifier built from a user name to its final spelling.
        """
        text, self.names = finalize(self.compose())
        return text

    def compose(self) -> str:
        """The module's text with user names as placeholders (see :mod:`derive.hygiene`)."""
        needed = needed_adjoints(self.derivation)
        self.header()
        self.emit("import numpy as np")
        self.emit()
        self.tables()
        self.lines += HELPERS.splitlines()
        self.emit()
        self.emit()
        self.sizes_function()
        self.forward_function()
        self.loss_function()
        self.gradient_function(needed)
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"

    def header(self):
        model = self.model
        self.emit(f'"""Loss and gradients of the model {docstring_text(repr(model.name))}, '
                  f'generated by derive {__version__}.')
        self.emit()
        self.emit("Forward equations (numbers as in `derive show`):")
        for eq in model.equations:
            self.emit(f"    ({eq.number}) {model.display(eq.name, Step('rel', 0))} = {show(eq.expr)}")
        self.emit()
        self.emit("Interface: loss(params, data) and loss_and_gradients(params, data).")
        self.emit(f"Regenerate rather than edit: {docstring_text(regenerate_command(model))}")
        self.emit('"""')
        self.emit()

    def data_dims(self, sym):
        if sym.classes is not None:
            return (("T",) if sym.per_step else ()) + (sym.shape[1],)
        return (("T",) if sym.per_step else ()) + tuple(sym.shape)

    def tables(self):
        model = self.model
        params = ", ".join(f"{s.name!r}: {tuple(s.shape)!r}" for s in model.params)
        self.emit(f"PARAM_SHAPES = {{{params}}}")
        data = [f"{s.base!r}: {self.data_dims(s)!r}" for s in model.data_symbols]
        data += [f"'{s.base}_0': {tuple(s.shape)!r}" for s in model.states]
        self.emit(f"DATA_SHAPES = {{{', '.join(data)}}}")
        classes = ", ".join(f"{s.base!r}: {s.classes!r}" for s in model.data_symbols if s.classes is not None)
        self.emit(f"CLASS_COUNTS = {{{classes}}}")
        sizes = ", ".join(f"{k!r}: {v!r}" for k, v in model.sizes.items())
        self.emit(f"DEFAULT_SIZES = {{{sizes}}}")

    def array_sizes(self, optional: bool = False) -> Set[str]:
        """The sizes that the shapes of the arguments fix (``_sizes`` reads them off).

        With ``optional``, those of the initial states, which the caller may leave out.
        """
        model = self.model
        if optional:
            dims = [d for s in model.states for d in s.shape]
        else:
            dims = [d for s in model.params for d in s.shape]
            dims += [d for s in model.data_symbols for d in self.data_dims(s)]
        return {d for d in dims if isinstance(d, str)}

    def sizes_as_numbers(self) -> Set[str]:
        """The sizes that equations or gradients use as numbers (``/ B``)."""
        trees = [eq.expr for eq in self.model.equations]
        trees += [t.expr for a in self.derivation.adjoints.values() for t in a.terms]
        return {n.name for tree in trees for n in walk(tree) if isinstance(n, SizeRef)}

    def sizes_function(self):
        self.emit("def _sizes(params, data):")
        self.emit('"""Sizes read off the arrays; inconsistent shapes raise ValueError."""', 1)
        self.emit("_check_keys(params, data)", 1)
        self.emit("sizes = {}", 1)
        self.emit("for name, dims in PARAM_SHAPES.items():", 1)
        self.emit('_fit(f"params[{name!r}]", np.asarray(params[name]), dims, sizes)', 2)
        self.emit("for name, dims in DATA_SHAPES.items():", 1)
        self.emit("if name in data:", 2)
        self.emit("array = np.asarray(data[name])", 3)
        self.emit("if name in CLASS_COUNTS and array.ndim == len(dims) - 1:", 3)
        self.emit("array = array.reshape(array.shape + (1,))", 4)
        self.emit("elif name in CLASS_COUNTS and array.ndim == len(dims) + 1 and array.shape[-1] == 1:", 3)
        self.emit("array = array.reshape(array.shape[:-1])", 4)
        self.emit('_fit(f"data[{name!r}]", array, dims, sizes)', 3)
        self.emit("for name, count in CLASS_COUNTS.items():", 1)
        self.emit("if name in data:", 2)
        self.emit("count = count if isinstance(count, int) else sizes.get(count, DEFAULT_SIZES.get(count))", 3)
        self.emit("_check_classes(name, np.asarray(data[name]), count)", 3)
        self.emit('if sizes.get("T", 1) < 1:', 1)
        self.emit('raise ValueError("the data has no steps (T = 0): give at least one")', 2)
        self.emit("return sizes", 1)
        self.emit()
        self.emit()

    def forward_function(self):
        model = self.model
        p = self.p
        self.emit("def _forward(params, data):")
        self.emit('"""The forward pass; returns the loss and every stored value."""', 1)
        self.emit("sizes = _sizes(params, data)", 1)
        used = sorted({d for s in model.symbols.values() if s.shape for d in s.shape if isinstance(d, str)}
                      | {s.classes for s in model.symbols.values() if isinstance(s.classes, str)}
                      | ({"T"} if model.has_steps else set()) | self.sizes_as_numbers())
        fixed, optional = self.array_sizes(), self.array_sizes(optional=True)
        for size in used:
            if size in fixed:
                self.emit(f"{size_name(size)} = sizes[{size!r}]", 1)
            elif size in optional:
                self.emit(f"{size_name(size)} = sizes.get({size!r}, DEFAULT_SIZES[{size!r}])"
                          "  # an initial state's, when one is given", 1)
            else:
                self.emit(f"{size_name(size)} = DEFAULT_SIZES[{size!r}]  # in no array's shape", 1)
        floats = [f"params[{s.name!r}]" for s in model.params]
        floats += [f"data[{s.base!r}]" for s in model.data_symbols if s.classes is None]
        initial = tuple(s.base + "_0" for s in model.states)
        if initial:
            floats.append(f"*[data[k] for k in {initial!r} if k in data]")
        # 0.0 is a weak scalar: float32 arrays stay float32, integers become float64
        self.emit(f"dtype = np.result_type(0.0, {', '.join(floats)})", 1)
        for s in model.params:
            self.emit(f"{py_name(s.name)} = np.asarray(params[{s.name!r}], dtype=dtype)", 1)
        for s in model.data_symbols:
            var = variable(model, s.name)
            if s.classes is not None:
                shape = "(T, -1)" if s.per_step else "(-1,)"
                self.emit(f"{var} = np.asarray(data[{s.base!r}]).reshape{shape}", 1)
            else:
                self.emit(f"{var} = np.asarray(data[{s.base!r}], dtype=dtype)", 1)
        for eq in model.phase("pre"):
            self.emit(f"# ({eq.number}) {eq.name} = {show(eq.expr)}", 1)
            self.emit(f"{variable(model, eq.name)} = {p(eq.expr)}", 1)
        steps = model.phase("step")
        for eq in steps:
            sym = model.symbols[eq.name]
            self.emit(f"{variable(model, eq.name)} = np.zeros({_dims_code(sym.shape, True)}, dtype=dtype)", 1)
        for s in model.states:
            self.emit(f"if {s.base + '_0'!r} in data:", 1)
            self.emit(f"{variable(model, s.name)}[0] = data[{s.base + '_0'!r}]", 2)
        if steps:
            self.emit("for t in range(1, T + 1):", 1)
            for eq in steps:
                self.emit(f"# ({eq.number}) {model.display(eq.name, Step('rel', 0))} = {show(eq.expr)}", 2)
                self.emit(f"{p(Ref(eq.name, Step('rel', 0)))} = {p(eq.expr)}", 2)
        for eq in model.phase("post"):
            self.emit(f"# ({eq.number}) {eq.name} = {show(eq.expr)}", 1)
            self.emit(f"{variable(model, eq.name)} = {p(eq.expr)}", 1)
        self.emit("return locals()", 1)
        self.emit()
        self.emit()

    def loss_function(self):
        loss = variable(self.model, self.model.loss)
        self.emit(f"def {self.loss_name}(params, data):")
        self.emit('"""The scalar loss L (complex when params are, for complex-step checks)."""', 1)
        self.emit(f"return np.asarray(_forward(params, data)[{loss!r}]).reshape(())[()]", 1)
        self.emit()
        self.emit()

    def gradient_preamble(self, needed: Set[str]):
        """The function header, the global adjoints and zeroed accumulators.

        Returns where the loads from the forward pass go, and the needed
        pre-loop globals, per-step quantities and shared (summed) names.
        """
        model = self.model
        self.emit(f"def {self.gradient_name}(params, data, wrt_initial_state=False):")
        self.emit('"""The loss and dL/dparam for every parameter (and dL/dh_0 per state on request)."""', 1)
        self.emit("v = _forward(params, data)", 1)
        loads_at = len(self.lines)
        post = [eq.name for eq in reversed(model.phase("post")) if eq.name in needed]
        steps = [eq.name for eq in reversed(model.phase("step")) if eq.name in needed]
        pre = [eq.name for eq in reversed(model.phase("pre")) if eq.name in needed]
        for name in post:
            self.global_adjoint(name, 1)
        shared = pre + [s.name for s in model.params]
        for name in shared:
            sym = model.symbols[name]
            self.emit(f"dL_d{variable(model, name)} = np.zeros({_dims_code(sym.shape, False)}, dtype=dtype)", 1)
        for name in steps:
            sym = model.symbols[name]
            self.emit(f"dL_d{variable(model, name)} = np.zeros({_dims_code(sym.shape, True)}, dtype=dtype)", 1)
        return loads_at, pre, steps, shared

    def gradient_function(self, needed: Set[str]):
        model, d = self.model, self.derivation
        loads_at, pre, steps, shared = self.gradient_preamble(needed)
        if steps or any(summed_in_loop(t) for name in shared for t in d.adjoints[name].terms):
            loop_at = len(self.lines)
            self.emit("for t in range(T, 0, -1):", 1)
            for name in steps:
                self.step_adjoint(name, 2)
            for s in model.states:
                for term in d.adjoints.get(s.name, Adjoint(s.name, [])).terms:
                    if targets_step_zero(term) and term.summed:  # h_0 read at every step
                        self.accumulate(f"dL_d{variable(model, s.name)}[0]", term, 2, False, False,
                                        self.adjoint_comment(s.name, term, at_zero=True))
            for name in shared:
                for term in d.adjoints[name].terms:
                    if summed_in_loop(term):
                        self.accumulate(f"dL_d{variable(model, name)}", term, 2, False, False,
                                        self.adjoint_comment(name, term))
            if len(self.lines) == loop_at + 1:  # every step adjoint lives at step 0 only (h_0 alone is read)
                del self.lines[loop_at:]
        self.after_loop_terms(pre)
        self.emit(f"grads = {{{', '.join(f'{s.name!r}: dL_d{variable(model, s.name)}' for s in model.params)}}}", 1)
        states = [s for s in model.states if s.name in needed]
        if states:
            self.emit("if wrt_initial_state:", 1)
            for s in states:
                self.initial_state_adjoint(s.name, 2)
                self.emit(f"grads[{s.base + '_0'!r}] = dL_d{variable(model, s.name)}[0]", 2)
        self.emit(f"return np.asarray(v[{variable(model, model.loss)!r}]).reshape(())[()], grads", 1)
        self.insert_loads(loads_at)

    def after_loop_terms(self, pre: List[str]):
        """The terms of the globals and parameters that the backward loop does not add up."""
        model = self.model
        for name in pre + [s.name for s in model.params]:
            for term in self.derivation.adjoints[name].terms:
                if not summed_in_loop(term):
                    term = whole_sum(term) if term.summed else term
                    self.accumulate(f"dL_d{variable(model, name)}", term, 1, False, False,
                                    self.adjoint_comment(name, term))

    def insert_loads(self, at: int, later: List[str] = ()):
        """Read from the forward pass exactly the names the backward pass uses.

        ``later`` holds lines that will join the function after the loads (the fast style's
        scratch allocations): the names they use are loaded too.
        """
        import re
        body = "\n".join(line for line in list(self.lines[at:]) + list(later) if not line.lstrip().startswith("#"))
        code = re.sub(r"'[^']*'", "", body)  # names inside strings are not uses
        code = re.sub(r"\.[A-Za-z_]\w*", "", code)  # nor attributes (h.T reads no size T)
        used = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", code))
        model = self.model
        names = [size_name(s) for s in sorted(model.sizes)] + ["dtype"]
        names += sorted({variable(model, s.name) for s in model.symbols.values()}, key=spelled_as)
        loads = [f"    {n} = v[{n!r}]" for n in names if n in used]
        self.lines[at:at] = loads

    def global_adjoint(self, name: str, indent: int):
        sym = self.model.symbols[name]
        terms = self.derivation.adjoints[name].terms
        var = f"dL_d{variable(self.model, name)}"
        self.emit(f"{var} = np.zeros({_dims_code(sym.shape, False)}, dtype=dtype)", indent)
        for term in terms:
            term = whole_sum(term) if term.summed else term
            self.accumulate(var, term, indent, False, False, self.adjoint_comment(name, term))

    def step_adjoint(self, name: str, indent: int):
        terms = [whole_sum(t) if t.summed else t
                 for t in self.derivation.adjoints[name].terms if not targets_step_zero(t)]
        var = f"dL_d{variable(self.model, name)}[t]"
        ordered = sorted(terms, key=lambda t: bool(self.conditions(t, True)))
        first = True
        for term in ordered:
            unconditional = first and not self.conditions(term, True)
            self.accumulate(var, term, indent, first, True,
                            self.adjoint_comment(name, term, first=unconditional))
            first = False

    def initial_state_adjoint(self, name: str, indent: int):
        for term in initial_state_terms(self.derivation.adjoints[name]):
            if term.summed:
                continue  # accumulated in the backward loop
            self.emit(f"# {self.adjoint_comment(name, term, at_zero=True)}", indent)
            code = f"dL_d{variable(self.model, name)}[0] += {self.p(fix_steps(term.expr, 0))}"
            late = [o for o in boundary_offsets(term) if o > 1]
            if late:  # the consumer at step max(late) exists only when T reaches it
                self.emit(f"if T >= {max(late)}:", indent)
                self.emit(code, indent + 1)
            else:
                self.emit(code, indent)
        for term in self.derivation.adjoints[name].terms:
            if term.at is not None and term.at.kind == "last" and term.at.offset < 0 and not term.summed:
                # h_{T-k} is the initial state when T = k: the loop over t = T..1 never reaches it
                self.emit(f"# {self.adjoint_comment(name, term, at_zero=True)} (when T = {-term.at.offset})",
                          indent)
                self.emit(f"if T == {-term.at.offset}:", indent)
                self.emit(f"dL_d{variable(self.model, name)}[0] += {self.p(fix_steps(term.expr, 0))}",
                          indent + 1)


def adjoint_variables(model: Model, derivation: MatrixDerivation) -> Dict[str, str]:
    """The name of each adjoint's array inside the readable module (``h_t`` -> ``dL_dh``)."""
    writer = ModuleWriter(model, derivation)
    writer.write()
    tokens = {name: f"dL_d{variable(model, name)}" for name in model.symbols}
    return {name: writer.names[token] for name, token in tokens.items() if token in writer.names}


def generate_module(model: Model, derivation: MatrixDerivation) -> str:
    """The NumPy module's source text (deterministic for a given model)."""
    return ModuleWriter(model, derivation).write()
