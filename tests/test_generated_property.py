"""Property test: random shape-correct models give modules that run and are right.

A model is built from the notation's grammar (sizes, parameters, inputs,
targets, states, per-step and global equations over every primitive) with
random choices, parsed by the project's own loader, derived, and generated in
both styles. Each module's gradients (parameters and initial states) must
agree with central differences of its own loss, and the two styles with each
other. Models the loader rejects as bad input are skipped; any other failure
(a module that does not compile, a crash, a wrong gradient, the fast writer
giving up) fails the test.

The generator is written against ``bench.fuzz.Chooser``, so the same code runs under
hypothesis (shrinkable draws) and under :class:`RandomChooser` (a plain
``random.Random``, for scanning many models outside pytest).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bench.fuzz import Chooser, DrawChooser, RandomChooser
from derive.model.build import load_text
from derive.emit.readable import generate_module
from derive.emit.fast import FastModuleWriter, generate_fast_module
from derive.errors import InputError
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.numeric import central_difference, random_params

# Precedence of a piece of model text, as the parser reads it (derive/notation/parse.py).
SUM, SUM_T, PRODUCT, PREFIX, POWER, POSTFIX, ATOM = 10, 15, 20, 30, 40, 50, 60

Dim = object  # a size name or the integer 1
FIXED, FIXED_0 = "<step>", "<step or 0>"  # stand for a fixed step (T, {T-1}, 1, 2; 0 for a state)
Shape = Tuple[Dim, Dim]


@dataclass(frozen=True)
class Text:
    """Model text of an expression and how tightly it binds."""

    text: str
    prec: int

    def at(self, need: int) -> str:
        """The text, parenthesised when it binds looser than ``need``."""
        return self.text if self.prec >= need else f"({self.text})"


# -- the generator ---------------------------------------------------------------------
@dataclass
class Ctx:
    """Where an expression stands: a per-step equation, inside ``sum_t``, or global."""

    kind: str  # "step" (a per-step equation), "sum_t" (inside sum_t of a global), "global"
    defined_at_t: List[str] = field(default_factory=list)  # per-step names readable at t here


class ModelGenerator:
    """Builds the text of one random, shape-correct model."""

    def __init__(self, c: Chooser):
        self.c = c
        self.layout = c.pick(["col", "row"])
        self.sizes: Dict[str, int] = {}
        for name in ("H", "F", "O"):
            self.sizes[name] = c.int(1, 3)
        self.batch: Dim = c.pick(["B", 1])
        if self.batch == "B":
            self.sizes["B"] = c.int(1, 3)
        self.T = c.int(1, 4)
        self.params: Dict[str, Shape] = {}
        self.data: Dict[str, Tuple[str, Shape]] = {}  # name -> (kind, shape); per-step names end in _t
        self.classes: Optional[str] = None
        self.states: Dict[str, Shape] = {}  # name_t -> shape
        self.step_quantities: Dict[str, Shape] = {}  # per-step quantities and states, in order
        self.globals: Dict[str, Shape] = {}  # global quantities defined so far
        self.pre: List[str] = []  # global quantities computed before the loop (params only)
        self.lines: List[str] = []

    # shapes
    def batched(self, feature: Dim) -> Shape:
        return (feature, self.batch) if self.layout == "col" else (self.batch, feature)

    def has_batch(self, shape: Shape) -> bool:
        return self.batch != 1 and self.batch in shape

    def feature_dims(self) -> List[Dim]:
        return ["H", "F", "O", 1]

    def at_fixed_step(self, text: str) -> str:
        """``text`` with its fixed-step placeholder (if any) replaced by a step drawn now."""
        for mark, state in ((FIXED_0, True), (FIXED, False)):
            if mark in text:
                return text.replace(mark, self.c.pick(self.fixed_steps(state)))
        return text

    def fixed_steps(self, state: bool) -> List[str]:
        steps = ["T", "1"]
        if self.T >= 2:
            steps += ["{T-1}", "2"]
        if state:
            steps.append("0")
        return steps

    # atoms
    def atoms(self, ctx: Ctx) -> List[Tuple[str, Shape, int]]:
        """(text, shape, weight) of every symbol readable in ``ctx``; a fixed step is drawn when picked."""
        out = [(p, s, 2) for p, s in self.params.items()]
        out += [(g, self.globals[g], 3) for g in self.globals if ctx.kind == "global" or g in self.pre
                or ctx.kind == "sum_t"]
        for name, (kind, shape) in self.data.items():
            if not name.endswith("_t"):
                out.append((name, shape, 2))
            elif ctx.kind == "global":
                out.append((f"{name[:-2]}_{FIXED}", shape, 1))
            else:
                out.append((name, shape, 4))
                out.append((f"{name[:-2]}_{FIXED}", shape, 1))
        for name, shape in self.step_quantities.items():
            base = name[:-2]
            if ctx.kind == "step":
                if name in ctx.defined_at_t:
                    out.append((name, shape, 6))
                if name in self.states:
                    out.append((f"{base}_{{t-1}}", shape, 6))
                    out.append((f"{base}_0", shape, 1))
            elif ctx.kind == "sum_t":
                out.append((name, shape, 6))
                if name in self.states:
                    out.append((f"{base}_{{t-1}}", shape, 2))
                out.append((f"{base}_{FIXED_0 if name in self.states else FIXED}", shape, 1))
            else:
                out.append((f"{base}_{FIXED_0 if name in self.states else FIXED}", shape, 5))
        return out

    def size_names(self) -> List[str]:
        return sorted(self.sizes) + ["T"]

    def new_param(self, shape: Shape) -> str:
        name = f"W{len(self.params) + 1}" if 1 not in shape else f"b{len(self.params) + 1}"
        if self.c.coin(10):  # a name the generated module uses for its own things
            odd = self.c.pick(["v", "np", "dtype", "grads", "sizes", "e", "out", "sum_", "L_", "dL_dW1"])
            name = odd if odd not in self.params else name
        self.params[name] = shape
        return name

    def new_data(self, shape: Shape, ctx: Ctx) -> str:
        per_step = ctx.kind != "global" and self.c.coin(80)
        name = f"d{len(self.data) + 1}" + ("_t" if per_step else "")
        self.data[name] = (self.c.pick(["input", "target"]), shape)
        return name

    def leaf(self, shape: Shape, ctx: Ctx) -> Text:
        """A symbol (maybe transposed), a new parameter or datum, a number or a size."""
        c = self.c
        if shape == (1, 1) and c.coin(25):
            return c.pick([Text(str(c.int(1, 3)), ATOM), Text("0.5", ATOM), Text(c.pick(self.size_names()), ATOM)])
        candidates = []
        for text, s, weight in self.atoms(ctx):
            if s == shape:
                candidates += [Text(text, ATOM)] * weight
            if (s[1], s[0]) == shape and s != shape:
                candidates += [Text(f"{text}.T", POSTFIX)] * max(1, weight // 2)
        if self.classes and shape == ("O", self.batch) and ctx.kind != "global":
            candidates.append(Text(f"onehot({self.classes})", ATOM))
        if not self.has_batch(shape):
            if candidates and c.coin(70):
                return self.picked(candidates)
            same = [p for p, s in self.params.items() if s == shape]
            if same and c.coin(50):
                return Text(c.pick(same), ATOM)
            return Text(self.new_param(shape), ATOM)
        if candidates and c.coin(85):
            return self.picked(candidates)
        if c.coin(40):
            return Text(self.new_data(shape, ctx), ATOM)
        # a batched datum or state times a parameter gives any batched shape
        batched = [(t, s) for t, s, _ in self.atoms(ctx) if self.has_batch(s) and s[0] != s[1]]
        if not batched:
            return Text(self.new_data(shape, ctx), ATOM)
        text, s = c.pick(batched)
        text = self.at_fixed_step(text)
        col = s[1] == self.batch  # the batch is the atom's column dimension
        feat = s[0] if col else s[1]
        a = Text(text, ATOM) if col else Text(f"{text}.T", POSTFIX)  # now (feat, batch)
        if shape == (self.batch, self.batch):
            return Text(f"{a.at(POSTFIX)}.T @ {a.at(PRODUCT + 1)}", PRODUCT)
        if shape[1] == self.batch:
            p = self.new_or_old_param((shape[0], feat))
            return Text(f"{p} @ {a.at(PRODUCT + 1)}", PRODUCT)
        p = self.new_or_old_param((feat, shape[1]))
        return Text(f"{a.at(POSTFIX)}.T @ {p}", PRODUCT)

    def picked(self, candidates: List[Text]) -> Text:
        chosen = self.c.pick(candidates)
        return Text(self.at_fixed_step(chosen.text), chosen.prec)

    def new_or_old_param(self, shape: Shape) -> str:
        same = [p for p, s in self.params.items() if s == shape]
        return self.c.pick(same) if same and self.c.coin(50) else self.new_param(shape)

    # expressions
    def expr(self, shape: Shape, ctx: Ctx, depth: int) -> Text:
        """A random expression of ``shape``."""
        c = self.c
        if depth <= 0 or c.coin(25):
            return self.leaf(shape, ctx)
        kinds = ["elementwise"] * 4 + ["matmul"] * 3 + ["function"] * 3 + ["neg", "transpose", "power",
                                                                            "divide", "scale"]
        if shape == (1, 1):
            kinds += ["reduce"] * 4
            if ctx.kind == "global":
                kinds += ["sum_t"] * 3
        if shape[1] == 1:
            kinds.append("rowsum")
        if shape[0] == 1:
            kinds.append("colsum")
        if ctx.kind == "global" and c.coin(20):
            kinds.append("sum_t")  # sum_t of a matrix
        if self.classes and shape == (1, self.batch) and ctx.kind != "global":
            kinds += ["pick"] * 2
        kind = c.pick(kinds)
        d = depth - 1
        if kind == "elementwise":
            op = c.pick(["+", "-", "*", "*"])
            small = c.pick([shape, shape, (shape[0], 1), (1, shape[1]), (1, 1)])
            a, b = self.expr(shape, ctx, d), self.expr(small, ctx, d)
            if c.coin(50):
                a, b = b, a
            need = (SUM, SUM + 1) if op in "+-" else (PRODUCT, PRODUCT + 1)
            return Text(f"{a.at(need[0])} {op} {b.at(need[1])}", SUM if op in "+-" else PRODUCT)
        if kind == "matmul":
            k = c.pick(self.feature_dims() + ([self.batch] if self.batch != 1 else []))
            a, b = self.expr((shape[0], k), ctx, d), self.expr((k, shape[1]), ctx, d)
            return Text(f"{a.at(PRODUCT)} @ {b.at(PRODUCT + 1)}", PRODUCT)
        if kind == "function":
            fn = c.pick(["tanh", "sigmoid", "relu", "exp", "log", "softmax", "squared", "tanh"])
            if fn == "exp":
                return Text(f"exp({self.bounded(shape, ctx, d).text})", ATOM)
            if fn == "log":
                return Text(f"log({self.positive(shape, ctx, d).text})", ATOM)
            return Text(f"{fn}({self.expr(shape, ctx, d).text})", ATOM)
        if kind == "neg":
            return Text(f"-{self.expr(shape, ctx, d).at(PREFIX)}", PREFIX)
        if kind == "transpose":
            inner = self.expr((shape[1], shape[0]), ctx, d)
            if c.coin(20):
                return Text(f"transpose({inner.text})", ATOM)
            return Text(f"{inner.at(POSTFIX)}.T", POSTFIX)
        if kind == "power":
            return self.power(shape, ctx, d)
        if kind == "divide":
            a = self.expr(shape, ctx, d)
            b = self.positive(c.pick([shape, (1, 1), (1, 1)]), ctx, d)
            return Text(f"{a.at(PRODUCT)} / {b.at(PRODUCT + 1)}", PRODUCT)
        if kind == "scale":
            s = c.pick([Text(c.pick(self.size_names()), ATOM), Text(str(c.int(2, 3)), ATOM),
                        self.expr((1, 1), ctx, d)])
            e = self.expr(shape, ctx, d)
            if c.coin(50):
                return Text(f"{s.at(PRODUCT)} * {e.at(PRODUCT + 1)}", PRODUCT)
            return Text(f"{e.at(PRODUCT)} / {s.at(PRODUCT + 1)}", PRODUCT) if s.text.isalpha() \
                else Text(f"{e.at(PRODUCT)} * {s.at(PRODUCT + 1)}", PRODUCT)
        if kind == "reduce":
            inner = c.pick([self.batched("H"), self.batched("O"), ("H", 1), (1, "F"), ("H", "F"), (1, 1)])
            return Text(f"{c.pick(['sum', 'mean', 'sum'])}({self.expr(inner, ctx, d).text})", ATOM)
        if kind == "rowsum":
            inner = self.expr((shape[0], c.pick(self.feature_dims() + [self.batch])), ctx, d)
            return Text(f"rowsum({inner.text})", ATOM)
        if kind == "colsum":
            inner = self.expr((c.pick(self.feature_dims() + [self.batch]), shape[1]), ctx, d)
            return Text(f"colsum({inner.text})", ATOM)
        if kind == "sum_t":
            inner = self.expr(shape, Ctx("sum_t"), d)
            return Text(f"sum_t {inner.at(PRODUCT)}", SUM_T)
        if kind == "pick":
            if c.coin(50):
                o = self.positive(("O", self.batch), ctx, d)
                return Text(f"log({o.at(POSTFIX)}[{self.classes}])", ATOM)
            return Text(f"{self.expr(('O', self.batch), ctx, d).at(POSTFIX)}[{self.classes}]", POSTFIX)
        raise AssertionError(kind)

    def power(self, shape: Shape, ctx: Ctx, d: int) -> Text:
        c = self.c
        if c.coin(30):  # a positive base takes any exponent
            base = self.positive(shape, ctx, d)
            exponent = c.pick(["-1", "0.5", "(1/2)", "-2", "3", "1.5"])
        else:
            base = self.expr(shape, ctx, d)
            exponent = c.pick(["2", "2", "3", "0", "1", "2.T", "(1 + 1)", "H"])
        if c.coin(15):
            return Text(f"squared({base.text})", ATOM)
        return Text(f"{base.at(POSTFIX)}**{exponent}", POWER)

    def bounded(self, shape: Shape, ctx: Ctx, d: int) -> Text:
        """An expression whose entries stay within a few units (an argument of exp)."""
        c = self.c
        kind = c.pick(["tanh", "sigmoid", "leaf", "half"])
        if kind == "leaf":
            return self.leaf(shape, ctx)
        if kind == "half":
            return Text(f"{self.bounded(shape, ctx, d - 1).at(PRODUCT)} / 2", PRODUCT) if d > 0 \
                else Text(f"tanh({self.leaf(shape, ctx).text})", ATOM)
        return Text(f"{kind}({self.expr(shape, ctx, d).text})", ATOM)

    def positive(self, shape: Shape, ctx: Ctx, d: int) -> Text:
        """An expression whose entries are at least about 0.05 (a log argument, a divisor)."""
        c = self.c
        options = ["exp", "sigmoid", "one_plus_square", "two_plus_tanh", "softmax"]
        if shape == (1, 1):
            options += ["number", "size"]
        kind = c.pick(options)
        if kind == "number":
            return Text(c.pick(["2", "3", "0.5"]), ATOM)
        if kind == "size":
            return Text(c.pick(self.size_names()), ATOM)
        if kind == "exp":
            return Text(f"exp({self.bounded(shape, ctx, d).text})", ATOM)
        if kind == "one_plus_square":
            return Text(f"1 + {self.expr(shape, ctx, d).at(POSTFIX)}**2", SUM)
        if kind == "two_plus_tanh":
            return Text(f"2 + tanh({self.expr(shape, ctx, d).text})", SUM)
        if kind == "softmax":  # columns of at most 3 entries: each at least about e^-2 / 3
            return Text(f"softmax({self.bounded(shape, ctx, d).text})", ATOM)
        return Text(f"sigmoid({self.bounded(shape, ctx, d).text})", ATOM)

    # the model
    def build(self) -> str:
        c = self.c
        if c.coin(85):  # else T is known from the model only: no array has T steps
            self.data["x_t"] = ("input", self.batched("F"))
        if self.layout == "col" and c.coin(25):
            self.classes = "c_t"
        n_states = c.pick([1, 1, 2])
        for k in range(n_states):
            name = ["h_t", "g_t"][k]
            self.states[name] = self.batched(c.pick(["H", "H", "O"]) if k else "H")
        equations: List[str] = []
        if c.coin(20):  # a global computed from parameters before the loop
            shape = (c.pick(["H", "F"]), c.pick(["H", 1]))
            equations.append(f"A = {self.expr(shape, Ctx('global'), 2).text}")
            self.globals["A"] = shape
            self.pre.append("A")
        defined: List[str] = []
        for name, shape in self.states.items():
            if c.coin(40):  # a pre-activation quantity first
                z = "z_t" if name == "h_t" else "u_t"
                self.step_quantities[z] = shape
                rhs = self.recurrence(name, Ctx("step", list(defined)))
                equations.append(f"{z} = {rhs}")
                defined.append(z)
                rhs = c.pick([f"tanh({z})", f"sigmoid({z})", f"relu({z})", z,
                              self.expr(shape, Ctx("step", list(defined)), 2).text])
            else:
                rhs = self.recurrence(name, Ctx("step", list(defined)))
            self.step_quantities[name] = shape
            equations.append(f"{name} = {rhs}")
            defined.append(name)
        if c.coin(40):  # a per-step output
            shape = self.batched(c.pick(["O", "H"]))
            self.step_quantities["o_t"] = shape
            equations.append(f"o_t = {self.expr(shape, Ctx('step', list(defined)), 2).text}")
            defined.append("o_t")
        if self.classes and c.coin(60):  # a classifier: softmax, then the log of the class's entry
            for name, rhs in (("a_t", self.expr(("O", self.batch), Ctx("step", list(defined)), 2).text),
                              ("p_t", "softmax(a_t)")):
                self.step_quantities[name] = ("O", self.batch)
                equations.append(f"{name} = {rhs}")
                defined.append(name)
        if c.coin(30):  # a per-step loss
            self.step_quantities["L_t"] = (1, 1)
            equations.append(f"L_t = {self.expr((1, 1), Ctx('step', list(defined)), 3).text}")
            defined.append("L_t")
        if c.coin(35):  # a global output
            shape = self.batched(c.pick(["O", "H"]))
            equations.append(f"y = {self.expr(shape, Ctx('global'), 2).text}")
            self.globals["y"] = shape
        equations.append(f"L = {self.loss()}")
        lines = ["size " + ", ".join(f"{k} = {v}" for k, v in self.sizes.items()) + f", T = {self.T}"]
        for name, shape in self.params.items():
            lines.append(f"param {name} : {shape[0]} x {shape[1]}")
        for name, (kind, shape) in self.data.items():
            lines.append(f"{kind} {name} : {shape[0]} x {shape[1]}")
        if self.classes:
            lines.append(f"target {self.classes} : class O" + (" x B" if self.batch == "B" else ""))
        for name, shape in self.states.items():
            lines.append(f"state {name} : {shape[0]} x {shape[1]}" + (" = 0" if c.coin(50) else ""))
        return "\n".join(lines + equations) + "\n"

    def recurrence(self, name: str, ctx: Ctx) -> str:
        """The right side of state ``name`` (or of its pre-activation); often an Elman-style sum."""
        c = self.c
        shape = self.states[name]
        if c.coin(50):
            return self.expr(shape, ctx, 3).text
        prev = Text(f"{name[:-2]}_{{t-1}}", ATOM)
        feat = shape[0] if self.layout == "col" else shape[1]
        w = self.new_or_old_param((feat, feat))
        product = f"{w} @ {prev.text}" if self.layout == "col" else f"{prev.text} @ {w}"
        terms = [product, self.expr(shape, ctx, 2).at(SUM + 1)]
        if c.coin(50):
            terms.append(self.new_or_old_param((feat, 1) if self.layout == "col" else (1, feat)))
        inner = " + ".join(terms)
        return c.pick([f"tanh({inner})", f"sigmoid({inner})", inner, f"relu({inner})"])

    def loss(self) -> str:
        c = self.c
        terms = []
        for k in range(c.int(1, 2)):
            kind = c.pick(["state_targets", "sum_t", "global", "L_t", "any", "classes"])
            if k == 0 and "p_t" in self.step_quantities and c.coin(70):
                kind = "classes"
            if kind == "classes" and "p_t" in self.step_quantities:
                terms.append(c.pick(["-sum_t sum(log(p_t[c_t]))", "-(sum_t mean(log(p_t[c_t])))",
                                     "sum_t -sum(log(p_t[c_t])) / T"]))
            elif kind == "state_targets":
                state = c.pick(sorted(self.states))
                target = self.new_data(self.states[state], Ctx("sum_t"))  # per-step or global
                terms.append(f"sum_t sum(({state} - {target})**2) / 2")
            elif kind == "L_t" and "L_t" in self.step_quantities:
                terms.append("sum_t L_t")
            elif kind == "global" and "y" in self.globals:
                target = self.new_data(self.globals["y"], Ctx("global"))
                terms.append(f"{c.pick(['sum', 'mean'])}((y - {target})**2)")
            elif kind == "sum_t":
                terms.append(f"sum_t {self.expr((1, 1), Ctx('sum_t'), 3).at(PRODUCT)}")
            else:
                terms.append(self.expr((1, 1), Ctx("global"), 3).at(SUM + 1))
        return " + ".join(terms)


@st.composite
def model_texts(draw) -> str:
    """The text of a random shape-correct model (most of them; the loader rejects the rest)."""
    return ModelGenerator(DrawChooser(draw)).build()


# -- checking a model ------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one model text."""

    status: str  # "rejected" (bad input), "ok"
    detail: str = ""


def concrete(shape, sizes) -> tuple:
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def draw_data(model, module, seed: int) -> Dict[str, np.ndarray]:
    """Data at the model's sizes: N(0, 1) entries, 0.5 N(0, 1) initial states, uniform classes."""
    rng = np.random.default_rng(seed)
    sizes = dict(model.sizes)
    data = {}
    for name, dims in module.DATA_SHAPES.items():
        shape = concrete(dims, sizes)
        if name in module.CLASS_COUNTS:
            n = module.CLASS_COUNTS[name]
            data[name] = rng.integers(0, n if isinstance(n, int) else sizes[n], size=shape)
        elif name.endswith("_0") and name[:-2] + "_t" in model.symbols:
            data[name] = 0.5 * rng.standard_normal(shape)
        else:
            data[name] = rng.standard_normal(shape)
    return data


def assert_close(got, want, rel, abs_, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = np.abs(got - want) > rel * np.abs(want) + abs_
    assert not bad.any(), (f"{what}: {got.ravel()[bad.ravel()][:4]} against {want.ravel()[bad.ravel()][:4]}"
                           f" (max |difference| {np.max(np.abs(got - want)):.2e})")


def check_model_text(text: str, seed: int = 0) -> Outcome:
    """Load, derive, generate both styles, run and check one model; raises AssertionError on a bug."""
    try:
        model = load_text(text, "<generated>.rnn", "generated")
    except InputError as err:
        return Outcome("rejected", err.message)
    derivation = derive_matrix(model)
    readable_source = generate_module(model, derivation)
    fast_source = FastModuleWriter(model, derivation).write()  # raises where the CLI falls back
    assert "fast style" in generate_fast_module(model, derivation).splitlines()[0], "the fast style fell back"
    readable = import_source(readable_source, "prop_readable")
    fast = import_source(fast_source, "prop_fast")
    # what the fast module does not zero-fill starts as NaN: an entry read before written shows
    fast._empty = lambda shape, dtype: np.full(shape, np.nan, dtype=dtype)
    sizes = dict(model.sizes)
    params = random_params({s.name: concrete(s.shape, sizes) for s in model.params}, seed)
    data = draw_data(model, readable, seed + 1)
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True)
    loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    assert np.isfinite(loss_r), f"loss {loss_r}"
    assert_close(readable.loss(params, data), loss_r, 1e-13, 1e-13 * abs(loss_r), "loss() and loss_and_gradients")
    assert_close(loss_f, loss_r, 1e-10, 1e-12 * abs(loss_r), "fast loss")
    assert grads_f.keys() == grads_r.keys(), f"gradient keys {sorted(grads_f)} and {sorted(grads_r)}"
    numeric = {name: central_difference(readable.loss, params, data, name) for name in params}
    for state in model.states:
        key = state.base + "_0"
        numeric[key] = central_difference(lambda p, _: readable.loss(params, dict(data, **p)),
                                          {key: data[key]}, None, key)
    # central differences carry a rounding error of about 1e-10 |L| (step 6e-6)
    scale = max([float(np.max(np.abs(g))) for g in numeric.values() if np.size(g)] + [1e-4 * (1 + abs(loss_r))])
    for name, want in numeric.items():
        got = grads_r.get(name)
        if got is None:  # a gradient not returned must be zero
            assert name not in params, f"no gradient for parameter {name}"
            got = np.zeros_like(want)
        assert_close(got, want, 1e-5, 1e-6 * scale, f"readable dL/d{name} against central differences")
    for name in grads_r:
        assert_close(grads_f[name], grads_r[name], 1e-9, 1e-12 * scale, f"fast dL/d{name} against readable")
    assert_close(fast.loss(params, data), loss_r, 1e-10, 1e-12 * abs(loss_r), "fast loss()")
    if hasattr(fast, "BATCH_SIZE") and sizes[fast.BATCH_SIZE] > 1:  # the batch's columns split over threads
        fast.MIN_PART_COLUMNS = 1
        loss_p, grads_p = fast.loss_and_gradients(params, data, wrt_initial_state=True, threads=2)
        assert_close(loss_p, loss_r, 1e-10, 1e-12 * abs(loss_r), "loss on two threads")
        assert_close(fast.loss(params, data, threads=2), loss_r, 1e-10, 1e-12 * abs(loss_r), "loss() on two threads")
        for name in grads_r:
            assert_close(grads_p[name], grads_r[name], 1e-9, 1e-12 * scale, f"dL/d{name} on two threads")
    return Outcome("ok")


_PASSED: set = set()  # texts checked already: hypothesis draws some models more than once


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(model_texts())
def test_random_models_generate_correct_code(text):
    if text in _PASSED:
        outcome = Outcome("ok", "again")
    else:
        with np.errstate(all="ignore"):  # overflow in a discarded branch of a generated expression is no failure
            outcome = check_model_text(text, zlib.crc32(text.encode()))
    if outcome.status == "ok":
        _PASSED.add(text)
    event(outcome.status + (f" ({outcome.detail})" if outcome.detail else ""))
    assume(outcome.status != "rejected")


def test_generator_mostly_valid():
    # the loader rejects few generated models: the property test is not mostly skips
    statuses = []
    for seed in range(200):
        try:
            load_text(ModelGenerator(RandomChooser(seed)).build(), "<generated>.rnn")
            statuses.append("ok")
        except InputError:
            statuses.append("rejected")
    assert statuses.count("rejected") <= 10, statuses


# The smallest models of each bug the property test found (issue 10): each broke one style or
# both (a module that did not compile or crashed, a wrong gradient, a fast writer giving up).
_COLUMNS = ("size H = 2, F = 3, O = 2, B = 3, T = 3\nparam W : H x H\nparam U : H x F\n"
            "input x_t : F x B\nstate h_t : H x B = 0\nh_t = tanh(W @ h_{t-1} + U @ x_t)\n")
_VECTOR = ("size H = 2, F = 3, O = 3, T = 3\nparam W : H x H\nparam U : H x F\nparam r : 1 x H\n"
           "input x_t : F x 1\nstate h_t : H x 1 = 0\nh_t = tanh(W @ h_{t-1} + U @ x_t)\n")
_WITH_B = _COLUMNS.replace("param U", "param b : H x 1\nparam U")
REGRESSIONS = {
    # printing: a 1 x 1 value may be a Python or NumPy scalar
    "transpose of a scalar": _COLUMNS + "L = mean(h_T.T)\n",
    "matmul with a scalar": _VECTOR + "L = sum(h_T) + H * (r @ h_2)\n",
    "number transposed": _COLUMNS + "L = sum(h_T) + sum(W**2.T)\n",
    "rowsum of a number": _COLUMNS + "L = sum(h_T) * rowsum(3)\n",
    "softmax of a size": _COLUMNS + "L = sum(h_T) * softmax(F)\n",
    "tanh of a size": _COLUMNS + "L = sum(h_T) * tanh(H)\n",
    "negative power of a size": _COLUMNS + "L = sum(h_T) * H**-1 + sum(h_T * h_T) * (1 + 1)**-2\n",
    "stacked product with a scalar factor": _COLUMNS + "o_t = sum(W) @ colsum(h_t)\nL = sum_t sum(o_t * o_t)\n",
    # simplification: X**0 is a matrix of ones, not the number 1
    "power zero": _COLUMNS + "L = sum(rowsum(h_T**0) * h_T)\n",
    "power zero of a broadcast sum": _WITH_B + "L = sum(h_T) + sum((h_T + W @ b)**0)\n",
    # writers
    "sum_t of a fixed step": _COLUMNS + "L = sum_t sum(h_T)\n",
    "sum_t of a fixed step times a step": _COLUMNS + "L = sum_t sum(h_T * h_t)\n",
    "unused quantity": _COLUMNS + "o_t = W @ h_{t-1}\nL = sum(h_T)\n",
    "size only as a number": _COLUMNS + "L = sum(h_T) / O\n",
    "class count in no shape": _COLUMNS.replace("state", "target c_t : class O x B\nstate")
    + "L = sum(h_T) * sum_t sum(onehot(c_t))\n",
    "sum_t of a parameter alone": _WITH_B.replace("W @ h_{t-1} + ", "") + "L = sum(W) + sum_t sum(b * b)\n",
    "state read at step 0 only": ("size H = 2, B = 3, T = 2\nparam W : H x H\ninput d_t : H x B\nstate h_t : H x B\n"
                                  "h_t = sigmoid(d_t)\nL = sum(W @ h_0)\n"),
    "global before the loop read by sum_t": _WITH_B + "y = (sum_t b) * 3\nL = sum(y * y) + sum(W @ y)\n",
    "pick of one matrix by per-step classes": _VECTOR.replace("state", "param a : O x 1\ntarget c_t : class O\nstate")
    + "L = sum(h_T) + sum_t sum(sigmoid(a)[c_t])\n",
    "scratch buffer of a size the gradient does not name": (
        "size H = 2, F = 2, B = 3, T = 1\nparam b : 1 x F\ninput x_t : F x B\nstate h_t : H x B = 0\n"
        "h_t = -(ones_like(h_{t-1}))\nL = (b @ x_1 @ transpose(b @ x_T)).T\n"),
    # derivation: a broadcast operand under sum, and the steps inside a sum_t
    "broadcast operand under a sum": _WITH_B + "L = sum(mean(b) - h_T)\n",
    "broadcast operand under a rowsum": _COLUMNS.replace("param U", "param s : 1 x 1\nparam U")
    + "L = sum(rowsum(tanh(s) + h_T))\n",
    "sum_t inside a term": _COLUMNS + "L = sum(tanh(sum_t h_{t-1}))\n",
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name):
    with np.errstate(all="ignore"):
        assert check_model_text(REGRESSIONS[name]).status == "ok"


def test_size_of_an_omitted_initial_state():
    # K is in no shape but g's: without g_0 in the data the module takes K from the model
    text = ("size H = 2, K = 3, B = 2, T = 3\nparam W : H x H\ninput x_t : H x B\nstate h_t : H x B = 0\n"
            "state g_t : K x B = 0\nh_t = tanh(W @ h_{t-1} + x_t)\ng_t = tanh(g_{t-1}) + sum(h_t)\nL = sum(g_T)\n")
    model = load_text(text, "omitted.rnn")
    derivation = derive_matrix(model)
    params = {"W": 0.5 * np.eye(2)}
    data = {"x": np.ones((3, 2, 2))}
    for source in (generate_module(model, derivation), FastModuleWriter(model, derivation).write()):
        module = import_source(source, "prop_omitted")
        loss, grads = module.loss_and_gradients(params, data)
        assert np.isclose(loss, module.loss(params, dict(data, g_0=np.zeros((3, 2)))))
        assert grads["W"].shape == (2, 2)


RUFF = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(RUFF is None, reason="ruff not installed")
def test_generated_code_of_odd_models_passes_ruff(tmp_path):
    texts = list(REGRESSIONS.values()) + [ModelGenerator(RandomChooser(seed)).build() for seed in range(40)]
    for k, text in enumerate(texts):
        try:
            model = load_text(text, "<generated>.rnn", "generated")
        except InputError:
            continue
        derivation = derive_matrix(model)
        (tmp_path / f"m{k}.py").write_text(generate_module(model, derivation))
        (tmp_path / f"m{k}_fast.py").write_text(FastModuleWriter(model, derivation).write())
    # pyflakes and syntax only: odd models print odd but correct code (`-(-x)`, `((3 / 2))`)
    run = subprocess.run([RUFF, "check", "--no-cache", "--isolated", "--select", "E9,F", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_non_constant_exponent_refused():
    # d/ds of b**s is not derived: the loader refuses the model rather than give a wrong gradient
    text = "size H = 2\nparam b : H x 1\nparam s : 1 x 1\nL = sum(b**2 ** s)\n"
    with pytest.raises(InputError) as err:
        load_text(text, "power.rnn")
    assert (err.value.line, err.value.column) == (4, 17)
    assert "exponent" in err.value.message and "^" in err.value.format()


if __name__ == "__main__":  # scan: python tests/test_generated_property.py [N]
    import sys
    import traceback
    from collections import Counter
    counts = Counter()
    for seed in range(int(sys.argv[1]) if len(sys.argv) > 1 else 200):
        text = ModelGenerator(RandomChooser(seed)).build()
        try:
            with np.errstate(all="ignore"):
                counts[check_model_text(text, seed).status] += 1
        except Exception as err:  # noqa: BLE001 - a scan reports every failure
            kind = f"{type(err).__name__}: {str(err).splitlines()[0][:int(sys.argv[2]) if len(sys.argv) > 2 else 100]}"
            counts[kind] += 1
            if counts[kind] == 1:
                print(f"--- seed {seed}: {kind}\n{text}", flush=True)
                traceback.print_exc(limit=-1)
    print(counts)
