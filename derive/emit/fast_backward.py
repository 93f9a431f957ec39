"""The fast style's backward pass: what reads no adjoint of the loop is computed before or after it.

A step-adjoint term that reads no adjoint computed in the loop is computed for
every step before it, as is the adjoint-free factor of a one-term loop adjoint;
a parameter gradient summed over steps is one stacked product after it; a step
adjoint read only at its own step keeps one buffer for every step.
"""

from __future__ import annotations

import re
from typing import Dict, List, Set

from ..calculus.matrix import MatrixDerivation, Term
from ..model.model import Model
from ..notation.expr import Binary, Call, Node, adjoint_refs
from ..notation.printer import show
from .adjoint_terms import summed_in_loop, targets_step_zero, whole_sum
from .in_place import Scratch, is_simple
from .numpy_printer import dims_code, variable
from .stacked_printer import StackedPrinter


class FastBackwardSection:
    """``loss_and_gradients`` in the fast style.

    A part of :class:`derive.emit.fast.FastModuleWriter`; reads ``local_names``
    and ``written_stacks`` from its forward pass.
    """

    model: Model
    derivation: MatrixDerivation
    lines: List[str]

    def gradient_function(self, needed: Set[str]):
        """The gradient entry point, with the work that reads no loop adjoint taken out of the loop."""
        model, d = self.model, self.derivation
        start = len(self.lines)
        self.scratch = Scratch()
        sp = StackedPrinter(model, self.local_names)
        loads_at, pre, steps, shared = self.gradient_preamble(needed)

        self.step_terms_before_loop(steps, sp)
        in_loop = [n for n in steps if self.in_loop_terms[n]]
        late = [(name, term) for name in shared for term in d.adjoints[name].terms
                if self.summed_after_loop(term, sp)]
        self.one_buffer = self.one_buffer_adjoints(in_loop, late, shared)
        for name in self.one_buffer:
            sym = model.symbols[name]
            old = f"    dL_d{variable(model, name)} = np.zeros({dims_code(sym.shape, True)}, dtype=dtype)"
            new = (f"    dL_d{variable(model, name)} = _one_buffer({dims_code(sym.shape, False)}, T + 1, dtype)"
                   f"  # read at its own step only: one buffer serves every t")
            self.lines[start:] = [new if line == old else line for line in self.lines[start:]]
        self.prefactored = self.hoist_factors(in_loop)
        self.input_allocations()
        late = []
        loop_at = len(self.lines)
        self.emit("for t in range(T, 0, -1):", 1)
        body_at = len(self.lines)
        for name in in_loop:
            self.step_adjoint(name, 2)
        self.initial_state_terms_in_loop()
        self.input_terms_in_loop()
        for name in shared:
            for term in d.adjoints[name].terms:
                if summed_in_loop(term):
                    if self.summed_after_loop(term, sp):
                        late.append((name, term))
                    else:
                        self.accumulate(f"dL_d{variable(model, name)}", term, 2, False, False,
                                        self.adjoint_comment(name, term))
        if len(self.lines) == body_at:
            del self.lines[loop_at:]
        self.sums_after_loop(late, sp)
        late_all = list(late)
        self.after_loop_terms(pre)
        self.emit(f"grads = {{{', '.join(f'{s.name!r}: dL_d{variable(model, s.name)}' for s in model.params)}}}", 1)
        states = [s for s in model.states if s.name in needed]
        if states:
            self.emit("if wrt_initial_state:", 1)
            for s in states:
                if s.name in self.one_buffer:
                    self.emit(f"dL_d{variable(model, s.name)} = _one_buffer("
                              f"{dims_code(s.shape, False)}, T + 1, dtype)", 2)
                self.initial_state_adjoint(s.name, 2)
                self.emit(f"grads[{s.base + '_0'!r}] = dL_d{variable(model, s.name)}[0].copy()", 2)
        self.input_terms_after_loop()
        self.emit(f"return np.asarray(v[{variable(model, model.loss)!r}]).reshape(())[()], grads", 1)
        self.insert_loads(loads_at, self.scratch.allocations())
        self.lines[start:] = self.assign_single_sums(self.insert_allocations(self.lines[start:]), late_all)

    def step_terms_before_loop(self, steps: List[str], sp: StackedPrinter):
        """Step-adjoint terms that read no adjoint computed in the loop: every step at once, before it.

        Sets ``in_loop_terms``, the terms left for the loop of each step adjoint.
        """
        model = self.model
        ready: Set[str] = set()   # per-step adjoints complete before the loop
        self.in_loop_terms: Dict[str, List[Term]] = {}

        def before_loop(term: Term) -> bool:
            if self.conditions(term, True):
                return False
            if any(model.symbols[a.name].per_step and a.name not in ready for a in adjoint_refs(term.expr)):
                return False
            return sp.stacked(term.expr) and self.stackable(term.expr)

        for name in steps:
            terms = self.step_terms(name)
            early = [t for t in terms if before_loop(t)]
            self.in_loop_terms[name] = [t for t in terms if t not in early]
            var = f"dL_d{variable(model, name)}"
            for k, term in enumerate(early):
                self.emit(f"# {self.adjoint_comment(name, term, first=k == 0)}  (every step at once)", 1)
                if k == 0:
                    for line in self.stacked_assignment(f"{var}[1:]", term.expr, sp):
                        self.emit(line, 1)
                else:
                    self.emit(f"{var}[1:] += {sp(term.expr)}", 1)
            if not self.in_loop_terms[name]:
                ready.add(name)
            in_loop_terms = self.in_loop_terms[name]
            if early or (len(in_loop_terms) == len(terms)
                         and any(not self.conditions(t, True) for t in in_loop_terms)):
                self.written_stacks.add(var)  # its first statement assigns every step

    def summed_after_loop(self, term: Term, sp: StackedPrinter) -> bool:
        """A parameter term summed over steps that is one stacked computation after the loop."""
        return (term.summed and not self.conditions(term, False) and term.at is None
                and sp.stacked(term.expr) and self.stackable(term.expr))

    def sums_after_loop(self, late, sp: StackedPrinter):
        """The terms summed over steps after the loop, each for every step at once."""
        model = self.model
        for name, term in late:
            var = f"dL_d{variable(model, name)}"
            self.emit(f"# {self.adjoint_comment(name, term)}  (every step at once)", 1)
            e = term.expr
            if isinstance(e, Binary) and e.op == "@" and sp.stacked(e.a) and sp.stacked(e.b):
                self.emit(f"{var} += _tsum_dot({sp(e.a)}, {sp(e.b)})", 1)
            elif isinstance(e, Call) and e.fn == "rowsum" and sp.stacked(e.args[0]):
                # over the steps first: NumPy sums the contiguous (T, ...) axis faster than rows
                self.emit(f"{var} += ({sp(e.args[0])}).sum(axis=0).sum(axis=-1, keepdims=True)", 1)
            else:
                self.emit(f"{var} += ({sp(e)}).sum(axis=0)", 1)

    def assign_single_sums(self, lines: List[str], late) -> List[str]:
        """A parameter gradient whose one statement is its sum after the loop: that statement assigns it.

        ``dL_dW_hh = np.zeros(...)`` and ``dL_dW_hh += _tsum_dot(...)`` become ``dL_dW_hh =
        _tsum_dot(...)`` (two NumPy calls fewer a parameter; the sum is a new array, as the caller's
        gradient must be) where no other line writes the gradient and the sum has its shape.
        """
        model = self.model
        params = {s.name for s in model.params}
        dropped: Set[str] = set()
        for name, term in late:
            var = f"dL_d{variable(model, name)}"
            if name not in params or self.shape(term.expr) != tuple(model.symbols[name].shape):
                continue
            zeros = f"    {var} = np.zeros({dims_code(model.symbols[name].shape, False)}, dtype=dtype)"
            writes = [k for k, line in enumerate(lines)
                      if line.lstrip().startswith((f"{var} ", f"{var}[", f"{var}.")) or f"out={var}" in line]
            if len(writes) != 2 or lines[writes[0]] != zeros or not lines[writes[1]].startswith(f"    {var} += "):
                continue
            lines[writes[1]] = f"    {var} = " + lines[writes[1]][len(f"    {var} += "):]
            del lines[writes[0]]
            dropped |= set(re.findall(r"[A-Za-z_]\w*", zeros[zeros.index("("):])) - {"np", "dtype"}
        for size in sorted(dropped):  # a size only those zeros read is loaded for nothing now
            load = next((k for k, line in enumerate(lines) if line.startswith(f"    {size} = v[")), None)
            if load is not None and not any(re.search(rf"\b{size}\b", line) for k, line in enumerate(lines)
                                            if k != load and not line.lstrip().startswith("#")):
                del lines[load]
        return lines

    def hoist_factors(self, in_loop) -> Dict[str, Node]:
        """Emit the adjoint-free factor of one-term loop adjoints for every step, before the loop.

        ``dL/dz_t = dL/dh_t * (1 - h_t**2)``: ``1 - h_t**2`` reads no adjoint, so it goes into
        the stack ``dL_dz[1:]`` at once and the loop only multiplies by ``dL/dh_t``. Returns
        the factor left for the loop of each adjoint so treated. A factor that is a stored
        value already (``h_{t-1}``) stays in the loop: hoisting it would only copy it.
        """
        left: Dict[str, Node] = {}
        for name in in_loop:
            var = f"dL_d{variable(self.model, name)}"
            terms = self.in_loop_terms[name]
            if (name in self.one_buffer or var not in self.written_stacks or len(terms) != 1
                    or len(self.step_terms(name)) != 1 or self.conditions(terms[0], True)):
                continue
            expr = terms[0].expr
            if not (isinstance(expr, Binary) and expr.op == "*"):
                continue
            for factor, rest in ((expr.b, expr.a), (expr.a, expr.b)):
                if (is_simple(factor) or adjoint_refs(factor) or not adjoint_refs(rest)
                        or self.shape(factor) != self.shape(expr) or not self.stackable(factor)):
                    continue
                lines = self.stacked_into(factor, f"{var}[1:]")
                if lines is None:
                    continue
                self.emit(f"# {self.adjoint_comment(name, terms[0], first=True)}: "
                          f"{show(factor)} for every step at once", 1)
                for line in lines:
                    self.emit(line, 1)
                left[name] = rest
                break
        return left

    def one_buffer_adjoints(self, in_loop, late, shared) -> Set[str]:
        """Step adjoints written only in the loop and read only at their own step there."""
        d = self.derivation
        out = set()
        inputs = set(self.gradient_inputs())
        for name in in_loop:
            if len(self.in_loop_terms[name]) != len(self.step_terms(name)):
                continue  # part of it is computed for every step before the loop
            if any(targets_step_zero(t) for t in d.adjoints[name].terms):
                continue  # its step 0 gathers a sum over the loop
            ok = True
            for other in d.adjoints:
                for term in d.adjoints[other].terms:
                    for a in adjoint_refs(term.expr):
                        if a.name != name:
                            continue
                        loop_term = (other in self.in_loop_terms and term in self.in_loop_terms[other]) or (
                            other in shared and term.summed and (other, term) not in late) or (
                            other in inputs and self.in_loop(term) and (
                                self.model.symbols[other].per_step or summed_in_loop(term)))
                        if not (loop_term and a.step is not None and a.step.kind == "rel"
                                and a.step.offset == 0):
                            ok = False
            if ok:
                out.add(name)
        return out

    def step_terms(self, name: str) -> List[Term]:
        """A step adjoint's terms at steps 1..T (not those gathered into a state's step 0)."""
        return [whole_sum(t) if t.summed else t
                for t in self.derivation.adjoints[name].terms if not targets_step_zero(t)]

    def step_adjoint(self, name: str, indent: int):
        """The terms left for the loop; ``+=`` when some were computed before it."""
        all_terms = self.step_terms(name)
        terms = self.in_loop_terms.get(name, all_terms)
        var = f"dL_d{variable(self.model, name)}[t]"
        ordered = sorted(terms, key=lambda t: bool(self.conditions(t, True)))
        first = len(terms) == len(all_terms)
        if name in getattr(self, "one_buffer", ()) and ordered and self.conditions(ordered[0], True):
            # every term holds at some steps only: the first that holds writes, later ones add
            sym = self.model.symbols[name]
            self.emit("_fresh = True", indent)
            for term in ordered:
                self.emit(f"# {self.adjoint_comment(name, term)}", indent)
                self.emit(f"if {' and '.join(self.conditions(term, True))}:", indent)
                self.emit("if _fresh:", indent + 1)
                for line in self.statement(var, sym.shape, term.expr, accumulate=False):
                    self.emit(line, indent + 2)
                self.emit("_fresh = False", indent + 2)
                self.emit("else:", indent + 1)
                for line in self.statement(var, sym.shape, term.expr, accumulate=True):
                    self.emit(line, indent + 2)
            self.emit("if _fresh:", indent)
            self.emit(f"{var}.fill(0)  # the shared buffer still holds step t + 1", indent + 1)
            return
        if name in getattr(self, "prefactored", {}):
            rest = self.prefactored[name]
            self.emit(f"# {self.adjoint_comment(name, terms[0], first=True)}: times {show(rest)}", indent)
            self.scratch.start_statement()
            lines: List[str] = []
            operand = self.operand(rest, lines)
            for line in lines + [f"{var} *= {operand}"]:
                self.emit(line, indent)
            return
        for term in ordered:
            unconditional = first and not self.conditions(term, True)
            self.accumulate(var, term, indent, first, True,
                            self.adjoint_comment(name, term, first=unconditional))
            first = False
