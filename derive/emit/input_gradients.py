"""``dL/dx`` for every input that holds numbers, on request (``loss_and_gradients(..., wrt_inputs=True)``).

The gradient function of both styles computes it inside its backward loop, at
step ``t``, from the adjoints the loop has just computed: an input's terms
read the adjoints of the equations that consume it (``dL/dx_t = W_xh.T @
dL/dz_t``). A term that reads an adjoint the loop does not hold (one computed
after it) is added after the loop instead, in a loop of its own.
"""

from __future__ import annotations

from typing import List

from ..calculus.matrix import MatrixDerivation, Term
from ..model.model import Model
from ..notation.expr import adjoint_refs
from .adjoint_terms import summed_in_loop, whole_sum
from .numpy_printer import dims_code, variable


class InputGradientSection:
    """The part of the gradient function for the inputs; a mixin of both module writers."""

    model: Model
    derivation: MatrixDerivation

    def gradient_inputs(self) -> List[str]:
        """The inputs with a gradient, in the model's order (zero where the loss does not read them)."""
        return [s.name for s in self.model.differentiable_inputs]

    def input_terms(self, name: str) -> List[Term]:
        adjoint = self.derivation.adjoints.get(name)
        return adjoint.terms if adjoint is not None else []

    def in_loop(self, term: Term) -> bool:
        """Whether the backward loop holds, at step ``t``, every adjoint the term reads."""
        post = {eq.name for eq in self.model.phase("post")}
        return all(self.model.symbols[a.name].per_step or a.name in post for a in adjoint_refs(term.expr))

    def input_allocations(self):
        """Zeroed ``dL/dx`` arrays, before the backward loop."""
        names = self.gradient_inputs()
        if not names:
            return
        self.emit("if wrt_inputs:", 1)
        for name in names:
            sym = self.model.symbols[name]
            self.emit(f"dL_d{variable(self.model, name)} = np.zeros({dims_code(sym.shape, sym.per_step)}, "
                      f"dtype=dtype)", 2)

    def input_terms_in_loop(self, indent: int = 2):
        """Inside the backward loop: each per-step input's terms at step ``t``, a shared input's summed terms."""
        model = self.model
        blocks = []
        for name in self.gradient_inputs():
            terms = self.input_terms(name)
            if not terms:
                continue
            if model.symbols[name].per_step and all(self.in_loop(t) for t in terms):
                blocks.append((name, None))
            elif not model.symbols[name].per_step:
                blocks += [(name, t) for t in terms if summed_in_loop(t) and self.in_loop(t)]
        if not blocks:
            return
        self.emit("if wrt_inputs:", indent)
        for name, term in blocks:
            if term is None:
                self.step_adjoint(name, indent + 1)
            else:
                self.accumulate(f"dL_d{variable(model, name)}", term, indent + 1, False, False,
                                self.adjoint_comment(name, term))

    def input_terms_after_loop(self):
        """After the backward loop: the terms left, then each input's gradient in ``grads`` (data layout)."""
        model = self.model
        names = self.gradient_inputs()
        if not names:
            return
        self.emit("if wrt_inputs:", 1)
        for name in names:
            sym = model.symbols[name]
            terms = self.input_terms(name)
            var = f"dL_d{variable(model, name)}"
            if sym.per_step and terms and not all(self.in_loop(t) for t in terms):
                self.emit("for t in range(T, 0, -1):", 2)
                self.step_adjoint(name, 3)
            elif not sym.per_step:
                for term in terms:
                    if not (summed_in_loop(term) and self.in_loop(term)):
                        term = whole_sum(term) if term.summed else term
                        self.accumulate(var, term, 2, False, False, self.adjoint_comment(name, term))
            key = sym.base if sym.per_step else name
            # a copy: the fast style's (T + 1)-step arrays go back to its pool when the call returns
            self.emit(f"grads[{key!r}] = {var}[1:].copy()" if sym.per_step else f"grads[{key!r}] = {var}", 2)
