"""The fast style's small-size paths (issue 15): np.dot for a step's products, the stacked product of one
column, the parameter sums without copies (assigned when they are the whole gradient), the size of a
pooled array without np.prod.

Each is checked against the readable module or plain NumPy; no timings here (bench/ has them).
"""

from pathlib import Path

import numpy as np
import pytest

from derive.calculus.matrix import derive_matrix
from derive.emit.fast import generate_fast_module
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_model
from derive.numeric import random_params

ROOT = Path(__file__).resolve().parent.parent
# (model, sizes): one column (the one-column paths of _stacked_matmul and _tsum_dot) and several
CASES = [("elman-softmax", {}), ("elman-regression", {"B": 1}), ("elman-regression", {"B": 3, "T": 4}),
         (str(ROOT / "tests" / "data" / "gru.rnn"), {"B": 1}), (str(ROOT / "tests" / "data" / "gru.rnn"), {"B": 3}),
         (str(ROOT / "tests" / "data" / "lstm.rnn"), {"B": 1}), (str(ROOT / "tests" / "data" / "lstm.rnn"), {"B": 3}),
         (str(ROOT / "bench" / "models" / "char-batch.rnn"), {"B": 1, "T": 5}),
         (str(ROOT / "bench" / "models" / "char-batch.rnn"), {"B": 3, "T": 5})]


def _modules(name):
    model = load_model(name)
    d = derive_matrix(model)
    return (model, import_source(generate_module(model, d), "speedups_readable"),
            import_source(generate_fast_module(model, d), "speedups_fast"))


def _case(model, module, sizes, seed=0):
    rng = np.random.default_rng(seed)
    dims = {**module.DEFAULT_SIZES, **sizes}

    def shape(spec):
        return tuple(d if isinstance(d, int) else dims[d] for d in spec)

    params = random_params({k: shape(v) for k, v in module.PARAM_SHAPES.items()}, seed)
    data = {}
    for key, spec in module.DATA_SHAPES.items():
        if key in module.INITIAL_STATES:
            continue
        if key in module.CLASS_COUNTS:
            count = module.CLASS_COUNTS[key]
            data[key] = rng.integers(0, count if isinstance(count, int) else dims[count], size=shape(spec))
        else:
            data[key] = rng.standard_normal(shape(spec))
    return params, data


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_step_products_are_np_dot_where_the_inner_dimension_is_more_than_one():
    model = load_model("elman-regression")
    source = generate_fast_module(model, derive_matrix(model))
    assert "np.dot(W_hh, h[t - 1], out=z[t])" in source      # H = 50 inner
    assert "_matmul(W_xh, x[t - 1], out=_s0)" in source     # F = 1: an outer product, a broadcast multiply
    assert "_tanh_into(z[t], out=h[t])" in source
    assert "int(np.prod(shape))" not in source and "math.prod(shape)" in source


def test_a_gradient_of_one_sum_is_assigned_and_the_others_accumulate():
    softmax = load_model("elman-softmax")
    source = generate_fast_module(softmax, derive_matrix(softmax))
    assert "    dL_dW_hh = _tsum_dot(dL_dz[1:], h[:T].swapaxes(-1, -2))" in source
    assert "dL_dW_hh = np.zeros" not in source and "dL_dW_hh +=" not in source
    regression = load_model("elman-regression")
    source = generate_fast_module(regression, derive_matrix(regression))
    assert "    dL_dW_hh = _tsum_dot(" in source
    # W_hy's gradient is one step's product, written in place: it keeps its zeros and adds
    assert "    dL_dW_hy = np.zeros((O, H), dtype=dtype)" in source and "    dL_dW_hy += _s" in source


@pytest.mark.parametrize("name, sizes", CASES)
def test_fast_agrees_with_readable_at_one_column_and_more(name, sizes):
    model, readable, fast = _modules(name)
    params, data = _case(model, readable, sizes)
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
    for _ in range(2):  # the second call reuses the pooled arrays
        loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
        _close(loss_f, loss_r)
        assert grads_f.keys() == grads_r.keys()
        for key in grads_r:
            _close(grads_f[key], grads_r[key])
    cparams = {k: v + 1e-30j * np.ones_like(v) for k, v in params.items()}  # complex step through np.dot
    _close(fast.loss(cparams, data).imag, readable.loss(cparams, data).imag)


def test_helper_stacked_matmul_one_column_and_fallbacks():
    fast = _modules("elman-softmax")[2]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 4))
    for b in (rng.standard_normal((5, 4, 1)), rng.standard_normal((5, 4, 3)),
              rng.standard_normal((5, 1, 4)).swapaxes(-1, -2)):  # one column, several, a strided view
        out = np.full((5, 6, b.shape[2]), np.nan)
        got = fast._stacked_matmul(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-14, atol=1e-14)
        assert got is out or np.shares_memory(got, out)
    wide = np.full((5, 6, 2), np.nan)  # a non-contiguous out takes the general path
    out = wide[:, :, :1]
    fast._stacked_matmul(a, rng.standard_normal((5, 4, 1)), out)
    assert np.isfinite(out).all() and np.isnan(wide[:, :, 1]).all()


def test_helper_tsum_dot_matches_the_sum_of_products():
    fast = _modules("elman-softmax")[2]
    rng = np.random.default_rng(2)
    for m, k, n in [(4, 1, 5), (6, 3, 7), (3, 40, 2)]:  # one column a step, thin products, T products
        a, b = rng.standard_normal((5, m, k)), rng.standard_normal((5, k, n))
        want = sum(a[t] @ b[t] for t in range(5))
        np.testing.assert_allclose(fast._tsum_dot(a, b), want, rtol=1e-13, atol=1e-13)
        h = rng.standard_normal((6, n, k))  # the transposed view of a stack, as the module passes it
        want = sum(a[t] @ h[t].T for t in range(5))
        np.testing.assert_allclose(fast._tsum_dot(a, h[:5].swapaxes(-1, -2)), want, rtol=1e-13, atol=1e-13)


def test_generated_code_stays_deterministic():
    for name in ("elman-softmax", "elman-regression", str(ROOT / "tests" / "data" / "gru.rnn")):
        model = load_model(name)
        first = generate_fast_module(model, derive_matrix(model))
        assert generate_fast_module(load_model(name), derive_matrix(load_model(name))) == first


@pytest.mark.parametrize("exp_tanh", [True, False])
def test_the_loops_tanh_through_exp_or_numpy_agrees(exp_tanh, monkeypatch):
    # _tanh_into is bound when the module loads (np.tanh where NumPy's is vectorised, else _tanh):
    # run the loop's tanh both ways, whichever this CPU picks, on saturated and near-zero arguments
    model, readable, fast = _modules("elman-regression")
    monkeypatch.setattr(fast, "_EXP_TANH", exp_tanh)
    monkeypatch.setattr(fast, "_tanh_into", fast._tanh if exp_tanh else np.tanh)
    params, data = _case(model, readable, {"B": 200, "T": 4})  # H x B = 10,000: above _tanh's size threshold
    data["x"] = data["x"] * 20
    loss_r, grads_r = readable.loss_and_gradients(params, data)
    loss_f, grads_f = fast.loss_and_gradients(params, data)
    _close(loss_f, loss_r)
    for key in grads_r:
        _close(grads_f[key], grads_r[key])
    assert ("_tanh_into = _tanh if _EXP_TANH else np.tanh" in
            generate_fast_module(model, derive_matrix(model)))
