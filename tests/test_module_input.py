"""The generated module refuses data it would otherwise misread silently."""

import numpy as np
import pytest

from derive.model.build import load_model
from derive.emit.readable import generate_module
from derive.emit.fast import generate_fast_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix

H, F, O, T = 4, 3, 5, 3


@pytest.fixture(params=[generate_module, generate_fast_module], ids=["readable", "fast"])
def module(request):
    model = load_model("elman-softmax")
    return import_source(request.param(model, derive_matrix(model)))


def arrays():
    rng = np.random.default_rng(0)
    params = {"W_hh": rng.standard_normal((H, H)), "W_xh": rng.standard_normal((H, F)), "b_h": np.zeros((H, 1)),
              "W_hy": rng.standard_normal((O, H)), "b_y": np.zeros((O, 1))}
    return params, {"x": rng.standard_normal((T, F, 1)), "c": np.array([0, 4, 2])}


@pytest.mark.parametrize("change, words", [
    ({"c": np.array([0, -1, 2])}, "class numbers 0..4; found -1..2"),
    ({"c": np.array([0, 5, 2])}, "class numbers 0..4; found 0..5"),
    ({"c": np.array([0.0, 1.0, 2.0])}, "whole numbers, not float64"),
    ({"h0": np.zeros((H, 1))}, "data has 'h0', which the model does not have"),
    ({"x": np.zeros((0, F, 1)), "c": np.zeros(0, dtype=int)}, "no steps (T = 0)"),
])
def test_bad_data_is_refused_with_its_reason(module, change, words):
    params, data = arrays()
    assert np.isfinite(module.loss(params, data))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        module.loss_and_gradients(params, dict(data, **change))


@pytest.mark.parametrize("where, name, at, value", [
    ("data", "x", (2, 1, 0), np.inf), ("data", "x", (0, 0, 0), -np.inf), ("params", "W_hh", (0, 1), np.nan),
    ("params", "b_y", (4, 0), np.inf), ("data", "h_0", (1, 0), np.nan),
])
def test_inf_and_nan_are_refused_where_they_are(module, where, name, at, value):
    params, data = arrays()
    data["h_0"] = np.zeros((H, 1))
    target = params if where == "params" else data
    target[name] = np.array(target[name], dtype=float)
    target[name][at] = value
    with pytest.raises(ValueError, match=rf"{where}\['{name}'\] holds {value} at \({', '.join(map(str, at))},?\)"):
        module.loss_and_gradients(params, data)
    with pytest.raises(ValueError, match="need finite values"):
        module.loss(params, data)


def test_the_finite_check_can_be_switched_off(module):
    params, data = arrays()
    params["W_hh"][0, 0] = np.nan
    module.CHECK_FINITE = False
    try:
        assert np.isnan(module.loss(params, data))
    finally:
        module.CHECK_FINITE = True


def test_complex_step_inputs_pass_the_finite_check(module):
    params, data = arrays()
    params["W_hh"] = params["W_hh"] + 1e-20j
    assert np.iscomplexobj(module.loss(params, data))


def test_a_missing_key_is_named_with_its_shape(module):
    params, data = arrays()
    del data["x"]
    with pytest.raises(ValueError, match=r"data lacks 'x' \(shape \(T, F, 1\)\); give every one of 'x', 'c', 'h_0' "
                                         r"\('h_0' may be left out: zeros\)"):
        module.loss(params, data)
    params, data = arrays()
    del params["W_hh"]
    with pytest.raises(ValueError, match=r"params lacks 'W_hh' \(shape \(H, H\)\)"):
        module.loss_and_gradients(params, data)


def test_an_array_with_its_axes_in_another_order_gets_the_transpose_that_fits(module):
    params, data = arrays()
    params["W_xh"] = params["W_xh"].T
    with pytest.raises(ValueError, match=r"params\['W_xh'\] has shape \(3, 4\); expected \(H, F\) = \(4, F\) "
                                         r"\(H = 4, as params\['W_hh'\] gave it\); reordered, its axes fit: pass "
                                         r"np.transpose\(params\['W_xh'\], \(1, 0\)\), of shape \(4, 3\)"):
        module.loss(params, data)


def test_per_step_arrays_in_a_list_are_read_as_one_array(module):
    params, data = arrays()
    stacked = module.loss_and_gradients(params, data)
    listed = module.loss_and_gradients(params, dict(data, x=list(data["x"])))
    assert stacked[0] == listed[0]
    assert all(np.array_equal(stacked[1][k], listed[1][k]) for k in stacked[1])
