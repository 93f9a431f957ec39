"""The readable module's gradient function: the backward pass over time, one term per statement.

Each adjoint term is one statement under the equation it computes as a
comment; a term that holds at some steps only is guarded by its condition.
"""

from __future__ import annotations

import re
from typing import List, Optional, Set

from ..calculus.matrix import Adjoint, MatrixDerivation, Term, boundary_offsets, initial_state_terms
from ..model.model import Model
from ..notation.expr import Adj, Step, fix_steps
from ..notation.printer import show
from .adjoint_terms import summed_in_loop, targets_step_zero, whole_sum
from .hygiene import spelled_as
from .numpy_printer import NumPyPrinter, dims_code, size_name, variable


class BackwardSection:
    """``loss_and_gradients``: the adjoints the gradients need, then the gradients.

    A part of :class:`derive.emit.readable.ModuleWriter`, which provides
    ``emit``, ``lines``, ``model``, ``derivation``, ``p`` (the printer),
    ``numbers`` (each equation's number) and ``gradient_name``.
    """

    model: Model
    derivation: MatrixDerivation
    p: NumPyPrinter
    lines: List[str]

    def adjoint_comment(self, name: str, term: Optional[Term] = None, at_zero=False,
                        first=False) -> str:
        """The comment over a term's statement: its equation number and ``dL/dx_t += ...``.

        Parameters
        ----------
        name : str
            The symbol whose adjoint the term adds to.
        term : Term, optional
            The term; without it, the adjoint alone (``(5) dL/dh_t``).
        at_zero : bool
            Show the adjoint at step 0 (an initial state's), the term's steps fixed there.
        first : bool
            The term's statement assigns (``=``) rather than adds (``+=``).
        """
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
        """The tests on ``t`` under which a term holds (at one step, or where its steps exist)."""
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
        """Add a term to ``target`` (assign it when ``first``), guarded by its conditions."""
        conds = self.conditions(term, per_step_target)
        code = self.p(term.expr)
        self.emit(f"# {comment}", indent)
        if conds:
            self.emit(f"if {' and '.join(conds)}:", indent)
            self.emit(f"{target} += {code}", indent + 1)
        else:
            self.emit(f"{target} {'=' if first else '+='} {code}", indent)

    def gradient_preamble(self, needed: Set[str]):
        """The function header, the global adjoints and zeroed accumulators.

        Returns where the loads from the forward pass go, and the needed
        pre-loop globals, per-step quantities and shared (summed) names.
        """
        model = self.model
        self.emit(f"def {self.gradient_name}(params, data, wrt_initial_state=False, wrt_inputs=False):")
        self.emit('"""The loss and dL/dparam for every parameter (dL/dh_0 per state and dL/dx per input on '
                  'request)."""', 1)
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
            self.emit(f"dL_d{variable(model, name)} = np.zeros({dims_code(sym.shape, False)}, dtype=dtype)", 1)
        for name in steps:
            sym = model.symbols[name]
            self.emit(f"dL_d{variable(model, name)} = np.zeros({dims_code(sym.shape, True)}, dtype=dtype)", 1)
        return loads_at, pre, steps, shared

    def gradient_function(self, needed: Set[str]):
        """The gradient entry point: the backward loop over ``t = T..1``, then the gradients."""
        model, d = self.model, self.derivation
        loads_at, pre, steps, shared = self.gradient_preamble(needed)
        self.input_allocations()
        if steps or any(summed_in_loop(t) for name in shared for t in d.adjoints[name].terms):
            loop_at = len(self.lines)
            self.emit("for t in range(T, 0, -1):", 1)
            for name in steps:
                self.step_adjoint(name, 2)
            self.initial_state_terms_in_loop()
            self.input_terms_in_loop()
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
        self.input_terms_after_loop()
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
        """The whole adjoint of a value computed after the forward loop."""
        sym = self.model.symbols[name]
        terms = self.derivation.adjoints[name].terms
        var = f"dL_d{variable(self.model, name)}"
        self.emit(f"{var} = np.zeros({dims_code(sym.shape, False)}, dtype=dtype)", indent)
        for term in terms:
            term = whole_sum(term) if term.summed else term
            self.accumulate(var, term, indent, False, False, self.adjoint_comment(name, term))

    def initial_state_terms_in_loop(self):
        """Inside the backward loop, add to ``dL/dh_0`` the terms of a state's ``h_0`` read at every step."""
        model = self.model
        for s in model.states:
            for term in self.derivation.adjoints.get(s.name, Adjoint(s.name, [])).terms:
                if targets_step_zero(term) and term.summed:
                    self.accumulate(f"dL_d{variable(model, s.name)}[0]", term, 2, False, False,
                                    self.adjoint_comment(s.name, term, at_zero=True))

    def step_adjoint(self, name: str, indent: int):
        """A per-step adjoint at step ``t`` inside the backward loop: unconditional terms first."""
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
        """The terms of a state's adjoint at step 0 that the backward loop does not add up."""
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
