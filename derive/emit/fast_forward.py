"""The fast style's forward pass: in-place step statements, and what need not be in the time loop taken out of it.

A step equation nothing in the loop reads is computed after it for every step
at once; the input part of a loop equation is computed for every step before
it; a quantity read at its own step only keeps one buffer for every step.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..calculus.matrix import MatrixDerivation
from ..model.model import Model
from ..notation.expr import Adj, Binary, Node, Ref, Step, walk
from ..notation.printer import show
from .adjoint_terms import needed_adjoints, needed_values
from .in_place import Scratch
from .numpy_printer import dims_code, variable
from .stacked_printer import StackedPrinter

INPUT_STACK_BYTES = 8 * 2**20  # largest stack for the input part of a loop equation


def _summands(node: Node) -> List[Node]:
    """The terms of a chain of ``+``."""
    if isinstance(node, Binary) and node.op == "+":
        return _summands(node.a) + _summands(node.b)
    return [node]


def _sum_of(terms: List[Node]) -> Node:
    """The chain of ``+`` over the terms, left to right."""
    out = terms[0]
    for term in terms[1:]:
        out = Binary("+", out, term)
    return out


class FastForwardSection:
    """``_forward`` in the fast style: the readable writer's statements, rewritten.

    A part of :class:`derive.emit.fast.FastModuleWriter`; sets ``hoisted_names``,
    ``written_stacks`` and ``local_names``, which the backward pass reads.
    """

    model: Model
    derivation: MatrixDerivation
    lines: List[str]

    def step_local(self) -> List[str]:
        """Per-step quantities read only at their own step and not by the backward pass."""
        model, d = self.model, self.derivation
        needed = needed_adjoints(d)
        kept = needed_values(model, [t.expr for n in needed for t in d.adjoints[n].terms])
        kept |= {model.loss}
        out = []
        for eq in model.phase("step"):
            name = eq.name
            if name in kept or model.symbols[name].kind != "quantity":
                continue
            uses = [(e, r) for e in model.equations for r in walk(e.expr)
                    if isinstance(r, Ref) and r.name == name]
            if all(e.per_step and r.step is not None and r.step.kind == "rel" and r.step.offset == 0
                   for e, r in uses):
                out.append(name)
        return out

    def hoisted_forward(self):
        """Step equations nothing in the time loop reads: computed after it, for all steps at once."""
        model = self.model
        steps = model.phase("step")
        names = {eq.name for eq in steps}
        stay = set()
        for eq in steps:
            for r in walk(eq.expr):
                if isinstance(r, Ref) and r.name in names and (
                        r.step is None or r.step.kind != "rel" or r.step.offset != 0):
                    stay.add(eq.name)
            try:
                StackedPrinter(model).print(eq.expr)
            except Exception:
                stay.add(eq.name)
        changed = True
        while changed:
            changed = False
            for eq in steps:
                if eq.name in stay:
                    for r in walk(eq.expr):
                        if isinstance(r, Ref) and r.name in names and r.name not in stay:
                            stay.add(r.name)
                            changed = True
        return [eq for eq in steps if eq.name not in stay]

    def stack_read(self, exprs):
        """Per-step names the stacked expressions read (they need every step stored)."""
        return {n.name for e in exprs for n in walk(e) if isinstance(n, (Ref, Adj))}

    def forward_function(self):
        """``_forward``: the readable writer's, its step statements rewritten in place and hoisted."""
        model = self.model
        start = len(self.lines)
        self.scratch = Scratch()
        hoisted = self.hoisted_forward()
        self.hoisted_names = {eq.name for eq in hoisted}
        super().forward_function()  # the readable writer's, which FastModuleWriter lists after this section
        self.written_stacks = {variable(model, eq.name) for eq in model.phase("step")}
        full = self.hoisted_names | self.stack_read([eq.expr for eq in hoisted])
        self.local_names = [n for n in self.step_local() if n not in full]
        self.lines[start] = "def _forward(params, data, keep=False):"
        self.lines[start + 1] = ('    """The forward pass; returns the loss and every stored value '
                                 '(with keep, every step of each: forward() reads them)."""')
        for name in self.local_names:
            sym = model.symbols[name]
            var = variable(model, name)
            old = f"    {var} = np.zeros({dims_code(sym.shape, True)}, dtype=dtype)"
            new = (f"    {var} = _stack({dims_code(sym.shape, True)}, dtype) if keep else "
                   f"_one_buffer({dims_code(sym.shape, False)}, T + 1, dtype)"
                   f"  # {model.display(name)} is used at its own step only: one buffer serves every t")
            self.lines[start:] = [new if line == old else line for line in self.lines[start:]]
        # Rewrite the step loop's statements (the readable writer emits "target = expr").
        steps = {f"{self.p(Ref(eq.name, Step('rel', 0)))} = ": eq for eq in model.phase("step")}
        out: List[str] = []
        before_loop: List[str] = []
        sp = StackedPrinter(model)
        skip = False
        comments = {f"# ({eq.number}) {model.display(eq.name, Step('rel', 0))} = ": eq for eq in hoisted}
        for line in self.lines[start:]:
            body = line.strip()
            if line.startswith(" " * 8) and any(body.startswith(c) for c in comments):
                skip = True
                continue
            eq = next((e for prefix, e in steps.items() if body.startswith(prefix)), None)
            if eq is None or not line.startswith(" " * 8):
                if skip and line.startswith(" " * 8) and not body.startswith("#"):
                    continue  # the rest of a hoisted statement (never: one line each)
                skip = False
                out.append(line)
                continue
            if skip and eq.name in self.hoisted_names:
                skip = False
                continue
            target = self.p(Ref(eq.name, Step("rel", 0)))
            loop_expr, stacked = eq.expr, self.input_part(eq)
            if stacked is not None:
                loop_expr, input_expr = stacked
                var = variable(model, eq.name)
                before_loop += [f"    # ({eq.number}) {model.display(eq.name, Step('rel', 0))}: "
                                f"{show(input_expr)} for every step at once",
                                f"    _in_{var} = _stack({dims_code(model.symbols[eq.name].shape, True)}, dtype)"]
                before_loop += ["    " + line for line in self.stacked_assignment(f"_in_{var}[1:]", input_expr, sp)]
            for stmt in self.statement(target, model.symbols[eq.name].shape, loop_expr, accumulate=False):
                out.append(" " * 8 + stmt)
            if stacked is not None:
                out.append(f"        {target} += _in_{variable(model, eq.name)}[t]")
        if before_loop:
            loop = next(k for k, line in enumerate(out) if line.startswith("    for t in range(1, T + 1):"))
            out[loop:loop] = before_loop
        if hoisted:
            loop = next(k for k, line in enumerate(out) if line.startswith("    for t in range(1, T + 1):"))
            end = next(k for k in range(loop + 1, len(out)) if not out[k].startswith(" " * 8))
            extra = []
            for eq in hoisted:
                extra.append(f"    # ({eq.number}) {model.display(eq.name, Step('rel', 0))} = {show(eq.expr)}"
                             "  (every step at once)")
                extra += ["    " + line for line in self.stacked_assignment(f"{variable(model, eq.name)}[1:]", eq.expr, sp)]
            if all(line.strip().startswith("#") or not line.strip() for line in out[loop + 1:end]):
                out[loop:end] = extra
            else:
                out[end:end] = extra
        self.lines[start:] = self.insert_allocations(out)

    def input_part(self, eq) -> Optional[Tuple[Node, Node]]:
        """(loop part, input part) of a loop equation that is a sum with a product of inputs.

        ``z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h``: ``W_xh @ x_t + b_h`` reads no value the
        loop computes, so it is computed for every step at once before the loop (one call
        instead of three per step). Only where the stack it needs is small at the model's
        default sizes (``INPUT_STACK_BYTES``): the per-step calls cost more than their
        arithmetic there, while a large stack costs memory and saves nothing.
        """
        if not self.model.symbols[eq.name].per_step:
            return None
        leaves = _summands(eq.expr)
        inputs = [leaf for leaf in leaves if self.reads_inputs_only(leaf)]
        rest = [leaf for leaf in leaves if not self.reads_inputs_only(leaf)]
        if not inputs or not rest or not any(isinstance(n, Binary) and n.op == "@"
                                              for leaf in inputs for n in walk(leaf)):
            return None
        input_expr, loop_expr = _sum_of(inputs), _sum_of(rest)
        shape = self.model.symbols[eq.name].shape
        sizes = self.model.sizes
        dims = [d if isinstance(d, int) else sizes.get(d) for d in shape]
        if None in dims or sizes.get("T") is None or self.shape(input_expr) != tuple(shape):
            return None
        if 8 * (sizes["T"] + 1) * dims[0] * dims[1] > INPUT_STACK_BYTES or not self.stackable(input_expr):
            return None
        return loop_expr, input_expr

    def reads_inputs_only(self, node: Node) -> bool:
        """Whether node reads only parameters, fixed values and this step's inputs."""
        for n in walk(node):
            if isinstance(n, Adj):
                return False
            if isinstance(n, Ref):
                sym = self.model.symbols[n.name]
                if sym.per_step and not (sym.kind == "input" and n.step is not None
                                         and n.step.kind == "rel" and n.step.offset == 0):
                    return False
        return True
