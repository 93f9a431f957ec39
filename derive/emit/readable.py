"""Emit the NumPy module (interface in docs/generated-module.md) from the model and its matrix derivation.

The module is vectorised over the batch with one loop over time forward and
one backward; each statement carries the equation it computes as a comment.
Only the adjoints that some gradient needs are computed. The docstring, tables
and input checks are written by :mod:`derive.emit.readable_interface`, the
public ``forward`` by :mod:`derive.emit.forward_entry`, the gradient function
by :mod:`derive.emit.readable_backward`.
"""

from __future__ import annotations

from typing import Dict, List

from ..calculus.matrix import MatrixDerivation
from ..model.model import Model
from ..notation.expr import Ref, Step
from ..notation.printer import show
from .adjoint_terms import live_derivation, needed_adjoints
from .input_gradients import InputGradientSection
from .forward_entry import ForwardSection
from .hygiene import finalize
from .module_helpers import HELPERS
from ..notation.blocks import dim_names
from .numpy_printer import NumPyPrinter, dims_code, py_name, size_name, variable
from .readable_backward import BackwardSection
from .readable_interface import InterfaceSection


class ModuleWriter(InterfaceSection, ForwardSection, BackwardSection, InputGradientSection):
    """Builds the module text line by line."""

    #: the entry points' names; a style that wraps them (:mod:`derive.emit.threads`) renames these
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
        """Add a line of code, ``indent`` levels in (an empty line for no text)."""
        self.lines.append(("    " * indent + text) if text else "")

    def write(self) -> str:
        """The module's text, every user name spelled so that it shadows nothing.

        ``self.names`` maps each identifier built from a user name to its final spelling.
        """
        text, self.names = finalize(self.compose())
        return text

    def compose(self) -> str:
        """The module's text with user names as placeholders (see :mod:`derive.emit.hygiene`)."""
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
        self.forward_entry()
        self.loss_function()
        self.gradient_function(needed)
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"

    def forward_function(self):
        """``_forward``: the sizes, the arrays as NumPy arrays, then every equation in order."""
        model = self.model
        p = self.p
        self.emit("def _forward(params, data):")
        self.emit('"""The forward pass; returns the loss and every stored value."""', 1)
        self.emit("sizes = _sizes(params, data)", 1)
        used = sorted({n for s in model.symbols.values() if s.shape for d in s.shape for n in dim_names(d)}
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
        floats = [f"np.asarray(params[{s.name!r}])" for s in model.params]
        floats += [f"np.asarray(data[{s.base!r}])" for s in model.data_symbols if s.classes is None]
        initial = tuple(s.base + "_0" for s in model.states)
        if initial:
            floats.append(f"*[np.asarray(data[k]) for k in {initial!r} if k in data]")
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
            self.emit(f"{variable(model, eq.name)} = np.zeros({dims_code(sym.shape, True)}, dtype=dtype)", 1)
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
        """The entry point that returns the loss alone."""
        loss = variable(self.model, self.model.loss)
        self.emit(f"def {self.loss_name}(params, data):")
        self.emit('"""The scalar loss L (complex when params are, for complex-step checks)."""', 1)
        self.emit(f"return np.asarray(_forward(params, data)[{loss!r}]).reshape(())[()]", 1)
        self.emit()
        self.emit()


def adjoint_variables(model: Model, derivation: MatrixDerivation) -> Dict[str, str]:
    """The name of each adjoint's array inside the readable module (``h_t`` -> ``dL_dh``)."""
    writer = ModuleWriter(model, derivation)
    writer.write()
    tokens = {name: f"dL_d{variable(model, name)}" for name in model.symbols}
    return {name: writer.names[token] for name, token in tokens.items() if token in writer.names}


def generate_module(model: Model, derivation: MatrixDerivation) -> str:
    """The NumPy module's source text (deterministic for a given model)."""
    return ModuleWriter(model, derivation).write()
