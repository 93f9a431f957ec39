"""The generated module's public ``forward(params, data)``, in both code styles.

Checked against the module's own ``loss``, the hand BPTT forward pass of
``derive.numeric.bptt``, a literal transcription of the built-in models'
equations, the other code style (on the built-in and test models, and on
random models of the property test's generator), and itself run over a
sequence cut in two chunks (the last state carried over).
"""

import doctest
import functools
import re
from pathlib import Path

import numpy as np
import pytest
from test_generated_property import ModelGenerator, draw_data

from bench.fuzz import RandomChooser
from derive.calculus.matrix import derive_matrix
from derive.emit.fast import fast_module_or_readable
from derive.emit.forward_entry import forward_keys
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.errors import InputError
from derive.model.build import builtin_names, load_model, load_text
from derive.notation.expr import Ref, SizeRef, walk
from derive.numeric import random_params
from derive.numeric.bptt import _regression_forward, _softmax_forward
from derive.verify.run import concrete_shape, random_data

ROOT = Path(__file__).resolve().parent.parent
MODELS = builtin_names() + [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests" / "data").rglob("*.rnn"))] \
    + ["bench/models/char-batch.rnn"]
STYLES = ["readable", "fast"]


@functools.cache
def sources(name):
    """(model, readable source, fast source or None when the fast writer declines it)."""
    model = load_model(str(ROOT / name) if name.endswith(".rnn") else name)
    derivation = derive_matrix(model)
    fast, why = fast_module_or_readable(model, derivation)
    return model, generate_module(model, derivation), fast if why is None else None


def modules(name):
    model, readable, fast = sources(name)
    if fast is None:
        pytest.skip(f"the fast style does not handle {name}")
    return model, import_source(readable), import_source(fast, "fast")


def case(model, module, sizes=None, seed=0):
    sizes = {**model.sizes, **({"B": 3} if "B" in model.sizes else {}), **(sizes or {})}
    params = random_params({s.name: concrete_shape(s.shape, sizes) for s in model.params}, seed)
    return sizes, params, random_data(model, module, sizes, seed)


def rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b), initial=0.0)) / max(float(np.max(np.abs(b), initial=0.0)), 1e-300)


@pytest.mark.parametrize("name", MODELS)
def test_both_styles_return_the_same_documented_values(name, monkeypatch):
    model, readable, fast = modules(name)
    # arrays the fast module takes unfilled start as NaN: a step it returns without writing shows
    monkeypatch.setattr(fast, "_empty", lambda shape, dtype: np.full(shape, np.nan, dtype=dtype))
    sizes, params, data = case(model, readable)
    got = {"readable": readable.forward(params, data), "fast": fast.forward(params, data)}
    expected_keys = [k.key for k in forward_keys(model)]
    for style, values in got.items():
        assert list(values) == expected_keys, style
        for k in forward_keys(model):
            assert np.shape(values[k.key]) == concrete_shape(k.dims, sizes), (style, k.key)
            assert np.all(np.isfinite(values[k.key])), (style, k.key)
            if k.what != "loss":
                assert values[k.key].flags.owndata, f"{style} {k.key!r} is a view into the module's arrays"
    for key in expected_keys:
        assert rel_diff(got["fast"][key], got["readable"][key]) <= 1e-12, key


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", MODELS)
def test_the_loss_is_the_module_loss_and_the_last_state_the_last_step(name, style):
    model, readable, fast = modules(name)
    module = fast if style == "fast" else readable
    _, params, data = case(model, readable, seed=3)
    values = module.forward(params, data)
    assert values[model.loss] == module.loss(params, data)
    assert values[model.loss] == module.loss_and_gradients(params, data)[0]
    stacks = {k.name: k.key for k in forward_keys(model) if k.what == "steps"}
    for k in forward_keys(model):
        if k.what == "last":
            np.testing.assert_array_equal(values[k.key], values[stacks[k.name]][-1])


def _chunk_safe(model):
    """Per-step equations read only steps t and t - 1 and no T: a sequence cut in two runs as one."""
    for eq in model.phase("step"):
        for node in walk(eq.expr):
            if isinstance(node, SizeRef) and node.name == "T":
                return False
            if isinstance(node, Ref) and model.symbols[node.name].per_step and node.step.kind != "rel":
                return False
    return model.states and all("T" not in s.shape for s in model.symbols.values() if s.kind == "param")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", MODELS)
def test_two_chunks_with_the_state_carried_over_give_the_whole_sequence(name, style):
    model, readable, fast = modules(name)
    if not _chunk_safe(model):
        pytest.skip("a per-step equation reads a fixed step or T")
    module = fast if style == "fast" else readable
    _, params, data = case(model, readable, {"T": 5}, seed=5)
    per_step = [n for n, dims in module.DATA_SHAPES.items() if dims and dims[0] == "T"]
    first = dict(data, **{n: np.asarray(data[n])[:2] for n in per_step})
    second = {n: v for n, v in data.items() if n not in module.INITIAL_STATES}
    second.update({n: np.asarray(data[n])[2:] for n in per_step})
    whole, head = module.forward(params, data), module.forward(params, first)
    for s in model.states:
        second[s.base + "_0"] = head[s.base + "_T"]
    tail = module.forward(params, second)
    for k in forward_keys(model):
        if k.what == "steps":
            joined = np.concatenate([head[k.key], tail[k.key]])
            assert rel_diff(joined, whole[k.key]) <= 1e-12, k.key
        elif k.what == "last":
            assert rel_diff(tail[k.key], whole[k.key]) <= 1e-12, k.key


def _elman_case(name, h_0, seed):
    model = load_model(name)
    readable, fast = (import_source(s) for s in sources(name)[1:])
    _, params, data = case(model, readable, {"T": 5, **({"B": 6} if "B" in model.sizes else {})}, seed)
    if not h_0:
        del data["h_0"]
    return readable, fast, params, data


@pytest.mark.parametrize("h_0", [False, True])
@pytest.mark.parametrize("name", ["elman-softmax", "elman-regression"])
def test_values_match_the_hand_bptt_forward_pass(name, h_0):
    readable, fast, params, data = _elman_case(name, h_0, seed=7)
    p, x = params, np.asarray(data["x"])
    if name == "elman-softmax":
        loss, hs, log_y, _ = _softmax_forward(params, data)
        outputs = {"y": np.exp(log_y), "o": p["W_hy"] @ hs[1:] + p["b_y"]}
    else:
        loss, hs, residual = _regression_forward(params, data)
        outputs = {"y": residual + data["y_true"]}
    z = p["W_hh"] @ hs[:-1] + p["W_xh"] @ x + p["b_h"]  # the notes' z_t from the hand pass's states
    for module in (readable, fast):
        values = module.forward(params, data)
        assert rel_diff(values["h"], hs[1:]) <= 1e-12
        assert rel_diff(values["h_T"], hs[-1]) <= 1e-12
        assert rel_diff(values["z"], z) <= 1e-12
        for key, want in outputs.items():
            assert rel_diff(values[key], want) <= 1e-12, key
        assert abs(values["L"] - loss) <= 1e-12 * abs(loss)


def run_examples(examples, names):
    """Run the docstring's examples (the module's own text) with doctest; the names they leave."""
    test = doctest.DocTest(examples, names, "the module's example", None, 0, None)
    runner = doctest.DocTestRunner()
    runner.run(test, clear_globs=False)
    assert runner.failures == 0 and runner.tries == len(examples)
    return test.globs


def test_the_docstring_example_computes_the_accuracy():
    readable, fast, params, data = _elman_case("elman-softmax", True, seed=11)
    _, _, log_y, c = _softmax_forward(params, data)
    want = np.mean(log_y.argmax(axis=1) == c)
    for module in (readable, fast):
        examples = doctest.DocTestParser().get_examples(module.__doc__)
        assert [e.source.split(" = ")[0] for e in examples] == ["v", "guess", "accuracy"]
        names = run_examples(examples, dict(vars(module), params=params, data=data))
        assert names["accuracy"] == want


@pytest.mark.parametrize("name", ["elman-regression", "tests/data/lstm.rnn"])
def test_the_docstring_example_carries_the_states(name):
    model, readable, fast = modules(name)
    for module in (readable, fast):
        _, params, data = case(model, readable, seed=2)
        examples = doctest.DocTestParser().get_examples(module.__doc__)
        names = run_examples(examples, dict(vars(module), params=params, data=data, next_data={}))
        assert sorted(names["next_data"]) == sorted(s.base + "_0" for s in model.states)
        values = module.forward(params, data)
        for s in model.states:
            np.testing.assert_array_equal(names["next_data"][s.base + "_0"], values[s.base + "_T"])


@pytest.mark.parametrize("name", MODELS)
def test_the_docstring_lists_every_key_with_its_shape(name):
    model, readable, fast = modules(name)
    sizes, params, data = case(model, readable)
    for module in (readable, fast):
        doc = module.__doc__
        listed = re.findall(r"^    '(\w+)' +(\([^)]*\)) ", doc, flags=re.MULTILINE)
        values = module.forward(params, data)
        assert [key for key, _ in listed] == list(values)
        for key, dims in listed:
            named = tuple(int(d) if d.strip().isdigit() else d.strip() for d in dims.strip("()").split(",") if d.strip())
            assert concrete_shape(named, sizes) == np.shape(values[key]), key


def test_fast_results_survive_the_next_call():
    # regression at B = 700 and softmax at H = 200, T = 100: stacks above the pooling threshold,
    # among them the pre-activation z that the fast style keeps in one buffer for loss()
    for name, sizes in (("elman-regression", {"B": 700, "T": 3}), ("elman-softmax", {"H": 200, "T": 100})):
        model, readable, fast = modules(name)
        _, params, data = case(model, readable, sizes)
        fast.release_buffers()
        first = fast.forward(params, data)
        kept = {k: np.copy(v) for k, v in first.items()}
        assert fast._free, "the call gave its large arrays back to the pool"
        other = dict(data, x=np.asarray(data["x"]) * 3, h_0=np.asarray(data["h_0"]) * -2)
        second = fast.forward(params, other)
        fast.loss_and_gradients(params, other, wrt_initial_state=True)
        for key, value in kept.items():
            np.testing.assert_array_equal(first[key], value)
            assert not np.array_equal(second[key], value), key
        again = readable.forward(params, data)
        for key in kept:
            assert rel_diff(first[key], again[key]) <= 1e-12, key


def test_complex_inputs_give_complex_values():
    model, readable, fast = modules("elman-softmax")
    _, params, data = case(model, readable)
    cparams = {k: v + 1e-30j * np.ones_like(v) for k, v in params.items()}
    for module in (readable, fast):
        values = module.forward(cparams, data)
        assert np.iscomplexobj(values["h"]) and np.iscomplexobj(values["L"])
        assert values["L"].imag == module.loss(cparams, data).imag


H, F, O, T = 4, 3, 5, 3


def misuse_arrays():
    rng = np.random.default_rng(0)
    params = {"W_hh": rng.standard_normal((H, H)), "W_xh": rng.standard_normal((H, F)), "b_h": np.zeros((H, 1)),
              "W_hy": rng.standard_normal((O, H)), "b_y": np.zeros((O, 1))}
    return params, {"x": rng.standard_normal((T, F, 1)), "c": np.array([0, 4, 2])}


def _nan_at(params, data):
    params["W_hh"] = params["W_hh"].copy()
    params["W_hh"][0, 1] = np.nan


MISUSES = {  # (how the input is spoilt, the part of the message that says how to fix it)
    "unknown data key": (lambda p, d: d.update(h0=np.zeros((H, 1))), r"\(its data: 'x', 'c', 'h_0'\)"),
    "unknown param key": (lambda p, d: p.update(W=np.zeros((H, H))), r"\(its params: 'W_hh', "),
    "missing data key": (lambda p, d: d.pop("x"), r"give every one of 'x', 'c', 'h_0'"),
    "missing param": (lambda p, d: p.pop("b_y"), r"give every one of 'W_hh', "),
    "axes swapped": (lambda p, d: p.update(W_xh=p["W_xh"].T), r"pass np.transpose\(params\['W_xh'\], \(1, 0\)\)"),
    "axis missing": (lambda p, d: d.update(x=d["x"][:, :, 0]), r"expected \(T, F, 1\) = "),
    "wrong size": (lambda p, d: d.update(h_0=np.zeros((H + 1, 1))), r"expected \(H, 1\) = \(4, 1\) \(H = 4, as params\['W_hh'\] gave it\)"),
    "class out of range": (lambda p, d: d.update(c=np.array([0, -1, 2])), r"number the classes from 0"),
    "class not whole": (lambda p, d: d.update(c=np.array([0.0, 1.0, 2.0])), r"give an integer array"),
    "no steps": (lambda p, d: d.update(x=np.zeros((0, F, 1)), c=np.zeros(0, dtype=int)), r"give at least one"),
    "not finite": (_nan_at, r"replace it, or set CHECK_FINITE = False"),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("misuse", sorted(MISUSES))
def test_misuse_gets_the_message_loss_gives_and_it_says_how_to_fix_it(misuse, style):
    _, readable, fast = modules("elman-softmax")
    module = fast if style == "fast" else readable
    params, data = misuse_arrays()
    assert np.isfinite(module.forward(params, data)["L"])
    spoil, fix = MISUSES[misuse]
    spoil(params, data)
    messages = []
    for function in (module.forward, module.loss, module.loss_and_gradients):
        with pytest.raises(ValueError) as caught:
            function(params, data)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == messages[2]
    assert re.search(fix, messages[0]), messages[0]


@pytest.mark.parametrize("name", ["elman-softmax", "tests/data/gru.rnn",
                                  "tests/data/battery/shadow_python_keywords.rnn"])
def test_the_modules_with_forward_are_deterministic(name):
    model, readable, fast = sources(name)
    derivation = derive_matrix(model)
    assert generate_module(model, derivation) == readable
    assert fast_module_or_readable(model, derivation)[0] == fast
    for source in (readable, fast):
        assert source.count("\ndef forward(params, data):") == 1


@pytest.mark.parametrize("seed", range(60))
def test_random_models_agree_in_both_styles(seed):
    # the property test's generator (tests/test_generated_property.py), run on plain seeds
    try:
        model = load_text(ModelGenerator(RandomChooser(seed)).build(), "<generated>.rnn", "generated")
    except InputError:
        pytest.skip("the loader rejects this random model")
    derivation = derive_matrix(model)
    fast_source, why = fast_module_or_readable(model, derivation)
    assert why is None, why
    readable, fast = import_source(generate_module(model, derivation)), import_source(fast_source, "fast")
    fast._empty = lambda shape, dtype: np.full(shape, np.nan, dtype=dtype)
    params = random_params({s.name: concrete_shape(s.shape, model.sizes) for s in model.params}, seed)
    data = draw_data(model, readable, seed + 1)
    with np.errstate(all="ignore"):
        got, want = fast.forward(params, data), readable.forward(params, data)
        assert want[model.loss] == readable.loss(params, data)
    assert list(got) == list(want) == [k.key for k in forward_keys(model)]
    for key in want:
        scale = float(np.nanmax(np.abs(np.where(np.isinf(want[key]), np.nan, want[key])), initial=0.0))
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12 * scale, equal_nan=True, err_msg=key)
