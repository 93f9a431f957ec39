"""The fast-style module agrees with the readable module (no timing here: speed lives in bench/)."""

from pathlib import Path

import numpy as np
import pytest

from derive.model.build import builtin_names, load_model
from derive.emit.readable import generate_module
from derive.emit.fast import generate_fast_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.verify.run import concrete_shape, random_data
from derive.numeric import random_params

ROOT = Path(__file__).resolve().parent.parent
MODELS = builtin_names() + [str(p) for p in sorted((ROOT / "tests" / "data").glob("*.rnn"))] \
    + [str(ROOT / "bench" / "models" / "char-batch.rnn")]


def _modules(model):
    d = derive_matrix(model)
    return import_source(generate_module(model, d)), import_source(generate_fast_module(model, d), "fast")


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert float(np.max(np.abs(a - b))) <= tol * scale


def _setup(name, sizes=None, seed=0):
    model = load_model(name)
    readable, fast = _modules(model)
    sizes = dict(model.sizes, **(sizes or {}))
    params = random_params({s.name: concrete_shape(s.shape, sizes) for s in model.params}, seed)
    data = random_data(model, readable, sizes, seed)
    return model, readable, fast, params, data


@pytest.mark.parametrize("name", MODELS)
def test_same_loss_and_gradients(name):
    model, readable, fast, params, data = _setup(name, {"B": 3} if "B" in load_model(name).sizes else None)
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True)
    loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    _close(loss_f, loss_r)
    assert grads_f.keys() == grads_r.keys()
    for key in grads_r:
        _close(grads_f[key], grads_r[key])


@pytest.mark.parametrize("name", MODELS)
def test_no_uninitialised_entry_is_read(name, monkeypatch):
    # every array the module takes without zero-filling starts as NaN: a stack the generated
    # code reads before writing (a "_stack" that should have been "_zeros") turns up as NaN
    model, readable, fast, params, data = _setup(name, {"B": 3} if "B" in load_model(name).sizes else None)
    monkeypatch.setattr(fast, "_empty", lambda shape, dtype: np.full(shape, np.nan, dtype=dtype))
    assert "_stack(" in generate_fast_module(model, derive_matrix(model))
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True)
    loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    _close(loss_f, loss_r)
    for key in grads_r:
        _close(grads_f[key], grads_r[key])


@pytest.mark.parametrize("name", MODELS)
def test_same_tables_and_complex_loss(name):
    model, readable, fast, params, data = _setup(name, {"B": 2} if "B" in load_model(name).sizes else None)
    for table in ("PARAM_SHAPES", "DATA_SHAPES", "CLASS_COUNTS", "DEFAULT_SIZES"):
        assert getattr(fast, table) == getattr(readable, table)
    cparams = {k: v + 1e-30j * np.ones_like(v) for k, v in params.items()}
    _close(fast.loss(cparams, data).imag, readable.loss(cparams, data).imag)
    _close(fast.loss(params, data), readable.loss(params, data))


@pytest.mark.parametrize("exp_tanh", [True, False])
def test_exp_tanh_path_on_large_arrays(exp_tanh, monkeypatch):
    # H x B = 50 x 200 = 10,000 entries: above the threshold where _tanh uses exp (on CPUs without
    # NumPy's SIMD tanh; both paths are run here, whichever this CPU picks)
    model, readable, fast, params, data = _setup("elman-regression", {"B": 200, "T": 4})
    monkeypatch.setattr(fast, "_EXP_TANH", exp_tanh)
    monkeypatch.setattr(fast, "_tanh_into", fast._tanh if exp_tanh else np.tanh)  # the loops' tanh, chosen at load
    data["x"] = data["x"] * 20  # saturated and near-zero pre-activations alike
    loss_r, grads_r = readable.loss_and_gradients(params, data)
    loss_f, grads_f = fast.loss_and_gradients(params, data)
    _close(loss_f, loss_r)
    for key in grads_r:
        _close(grads_f[key], grads_r[key])


@pytest.mark.parametrize("exp_tanh", [True, False])
def test_helper_tanh_matches_numpy(exp_tanh, monkeypatch):
    fast = _modules(load_model("elman-regression"))[1]
    monkeypatch.setattr(fast, "_EXP_TANH", exp_tanh)
    a = np.concatenate([np.linspace(-30, 30, 8001), [0.0, -0.0, 1e-300, -1e-12, 710.0, -710.0]])
    np.testing.assert_allclose(fast._tanh(a), np.tanh(a), rtol=4e-16 * 4, atol=4e-16)
    assert np.all(np.signbit(fast._tanh(a)) == np.signbit(np.tanh(a)))


def test_fast_style_is_marked_and_readable_default_unchanged():
    model = load_model("elman-regression")
    d = derive_matrix(model)
    assert "np.matmul(" in generate_fast_module(model, d)
    assert "np.matmul(" not in generate_module(model, d)


@pytest.mark.parametrize("name", ["elman-softmax", "elman-regression", str(ROOT / "bench" / "models" / "char-batch.rnn")])
@pytest.mark.parametrize("steps", [1, 2])
def test_short_sequences(name, steps):
    # the all-steps-at-once statements slice the time axis: check the shortest sequences
    sizes = {"T": steps, **({"B": 3} if "B" in load_model(name).sizes else {})}
    model, readable, fast, params, data = _setup(name, sizes, seed=steps)
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True)
    loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    _close(loss_f, loss_r)
    for key in grads_r:
        _close(grads_f[key], grads_r[key])


def test_hoisted_statements_present():
    model = load_model("elman-softmax")
    source = generate_fast_module(model, derive_matrix(model))
    assert "_softmax_s(" in source and "_tsum_matmul(" in source
    assert "(every step at once)" in source
    assert "_matmul(W_xh, x[:T], out=_in_z[1:])" in source and "z[t] += _in_z[t]" in source
    assert "1 - h_t**2 for every step at once" in source and "dL_dz[t] *= dL_dh[t]" in source
    assert "L = L_t[1:].sum(axis=0)" in source
    # at the regression's default sizes the input part's stack would take 33 MB: it stays in the loop
    regression = load_model("elman-regression")
    assert "_in_z" not in generate_fast_module(regression, derive_matrix(regression))


def test_helper_tsum_matmul_and_outer_product():
    fast = _modules(load_model("elman-regression"))[1]
    rng = np.random.default_rng(0)
    for m, k, n in [(4, 1, 5), (6, 3, 7), (3, 40, 2)]:  # outer products, one stacked product, T products
        a, b = rng.standard_normal((5, m, k)), rng.standard_normal((5, k, n))
        want = sum(a[t] @ b[t] for t in range(5))
        np.testing.assert_allclose(fast._tsum_matmul(a, b), want, rtol=1e-13, atol=1e-13)
    a, b, out = rng.standard_normal((4, 1)), rng.standard_normal((1, 6)), np.empty((4, 6))
    np.testing.assert_allclose(fast._matmul(a, b, out=out), a @ b, rtol=1e-15)


def test_buffers_kept_between_calls_never_leak_into_results(monkeypatch):
    # regression at B=700: the (T + 1, H, B) stacks are 1.4 MB, above the pooling threshold
    model, readable, fast, params, data = _setup("elman-regression", {"B": 700, "T": 3})
    fast.release_buffers()
    loss_1, grads_1 = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    kept = {k: v.copy() for k, v in grads_1.items()}
    assert fast._free, "the call gave its large arrays back to the pool"
    other = dict(data, x=data["x"] * 3, h_0=data["h_0"] * -2)
    fast.loss_and_gradients(params, other, wrt_initial_state=True)  # reuses (and overwrites) the pool
    for key in kept:
        np.testing.assert_array_equal(grads_1[key], kept[key])
    loss_3, grads_3 = fast.loss_and_gradients(params, data, wrt_initial_state=True)
    assert loss_3 == loss_1
    for key in kept:
        np.testing.assert_array_equal(grads_3[key], kept[key])
    _close(loss_1, readable.loss(params, data))
    monkeypatch.setattr(fast, "BUFFER_BYTES", 0)
    fast.loss(params, data)
    assert not fast._free


def test_a_model_the_fast_writer_cannot_handle_gets_the_readable_module_and_a_note(monkeypatch, capsys):
    import derive.emit.fast as fast
    from derive.cli import main

    def refuse(self):
        raise NotImplementedError("no in-place form for this construct")

    monkeypatch.setattr(fast.FastModuleWriter, "write", refuse)
    assert main(["code", "elman-softmax", "--style", "fast"]) == 0
    captured = capsys.readouterr()
    assert "the fast style does not handle this model (NotImplementedError: no in-place form" in captured.err
    assert "fast style, generated by derive" not in captured.out and "def loss_and_gradients" in captured.out
