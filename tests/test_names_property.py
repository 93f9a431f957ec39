"""Any name a user may declare gives a generated module that runs and returns the right gradients.

A model with a name slot in every role (sizes, parameters, input, target,
state, quantity) is filled with random valid names, drawn among others from
every identifier the emitters themselves use, Python's keywords and builtins,
and adjoint spellings of other names (``dL_dW`` beside ``W``). Both styles are
generated and run; their gradients must equal those of the same model under
plain names at the same numbers (renaming changes no arithmetic).
"""

import ast
import keyword

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.model.build import load_model
from derive.emit.readable import generate_module
from derive.emit.fast import FastModuleWriter
from derive.errors import InputError
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix

TEMPLATE = """size {H} = 3, {F} = 2, {O} = 2, T = 3, {B} = 4
param {P1} : {H} x {H}
param {P2} : {H} x {F}
param {P3} : {H} x 1
param {P4} : {O} x {H}
input {X}_t : {F} x {B}
target {Y} : {O} x {B}
state {S}_t : {H} x {B} = 0
{Z}_t = {P1} @ {S}_{{t-1}} + {P2} @ {X}_t + {P3}
{S}_t = tanh({Z}_t)
L = sum(({P4} @ {S}_T - {Y})**2) / (2 * {B})
"""
PLAIN = dict(H="H", F="F", O="O", B="B", P1="W_hh", P2="W_xh", P3="b_h", P4="W_hy", X="x", Y="y", S="h",
             Z="z")
SLOTS = list(PLAIN)


def _module_names() -> list:
    """Every identifier the two emitters write for the plain model."""
    model = load_model_text(TEMPLATE.format(**PLAIN))
    derivation = derive_matrix(model)
    names = set()
    for source in (generate_module(model, derivation), FastModuleWriter(model, derivation).write()):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.Attribute)):
                names.add(getattr(node, "name", None) or node.attr)
    return sorted(n for n in names if n[0].isalpha())


def load_model_text(text: str, tmp=[]):
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".rnn", delete=False) as f:
        f.write(text)
    return load_model(f.name)


INTERNAL = _module_names()
PYTHON = sorted(n for n in set(keyword.kwlist) | {"locals", "sum", "range", "len", "print", "dict", "id", "max"}
                if n[0].isalpha())
IDENT = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,3}(_[A-Za-z0-9]{1,3})?", fullmatch=True)
NAME = st.one_of(st.sampled_from(INTERNAL), st.sampled_from(PYTHON), IDENT)


@st.composite
def names(draw):
    chosen = {}
    for slot in SLOTS:
        pick = draw(st.one_of(NAME, st.sampled_from(["dL_d" + v for v in chosen.values()] or ["dL_dW"])))
        chosen[slot] = pick
    return chosen


def run_both(model, params, data):
    derivation = derive_matrix(model)
    out = []
    for source in (generate_module(model, derivation), FastModuleWriter(model, derivation).write()):
        module = import_source(source)
        loss, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
        out.append((loss, grads))
    return out


def numbers(chosen):
    rng = np.random.default_rng(0)
    shapes = {"P1": (3, 3), "P2": (3, 2), "P3": (3, 1), "P4": (2, 3)}
    params = {chosen[k]: 0.5 * rng.standard_normal(s) for k, s in shapes.items()}
    data = {chosen["X"]: rng.standard_normal((3, 2, 4)), chosen["Y"]: rng.standard_normal((2, 4)),
            chosen["S"] + "_0": 0.5 * rng.standard_normal((3, 4))}
    return params, data


REFERENCE = run_both(load_model_text(TEMPLATE.format(**PLAIN)), *numbers(PLAIN))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(names())
def test_any_accepted_name_gives_a_correct_module(chosen):
    sizes = [chosen[k] for k in ("H", "F", "O", "B")]
    symbols = [v for k, v in chosen.items() if k not in ("H", "F", "O", "B")]
    assume(len(set(sizes)) == len(sizes) and len(set(symbols)) == len(symbols))
    assume("T" not in chosen.values())
    try:
        model = load_model_text(TEMPLATE.format(**chosen))
    except InputError:
        return  # refused with a message: allowed (the test of the messages is elsewhere)
    params, data = numbers(chosen)
    for (loss, grads), (ref_loss, ref_grads) in zip(run_both(model, params, data), REFERENCE):
        assert loss == pytest.approx(ref_loss, rel=1e-13)
        for slot, plain in PLAIN.items():
            if slot in ("P1", "P2", "P3", "P4"):
                np.testing.assert_allclose(grads[chosen[slot]], ref_grads[plain], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grads[chosen["S"] + "_0"], ref_grads["h_0"], rtol=1e-12, atol=1e-14)


def test_the_names_that_broke_modules_before():
    # a parameter named like a size (Britz's V), internal names, an adjoint's spelling
    chosen = dict(PLAIN, O="V", P4="V", P1="dL_dW_hy", P2="v", P3="locals", S="np")
    model = load_model_text(TEMPLATE.format(**chosen))
    params, data = numbers(chosen)
    for (loss, grads), (ref_loss, ref_grads) in zip(run_both(model, params, data), REFERENCE):
        np.testing.assert_allclose(grads["dL_dW_hy"], ref_grads["W_hh"], rtol=1e-12)
        np.testing.assert_allclose(grads["V"], ref_grads["W_hy"], rtol=1e-12)
        np.testing.assert_allclose(grads["np_0"], ref_grads["h_0"], rtol=1e-12)


def test_name_refusals_are_input_errors():
    refused = 0
    for word in INTERNAL + PYTHON:
        try:
            load_model_text(TEMPLATE.format(**dict(PLAIN, P1=word)))
        except InputError:
            refused += 1
    assert refused < len(INTERNAL + PYTHON)  # most names are simply accepted
