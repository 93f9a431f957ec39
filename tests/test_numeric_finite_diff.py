"""Central differences, complex step, random directions and CountingLoss."""

import numpy as np
import pytest

from derive.numeric.bptt import elman_softmax_loss, elman_softmax_loss_and_gradients
from derive.numeric.finite_diff import (
    EPS,
    CountingLoss,
    central_difference,
    central_difference_step,
    complex_step,
    random_direction_check,
    random_directions,
)
from derive.numeric.random_data import random_classes, random_inputs, random_params
from derive.numeric.shapes import elman_param_shapes

A = np.array([[0.5, -2.0, 3.0], [1.25, 4.0, -0.75]])
C = np.array([[1.0, 0.0, -1.0], [2.0, -3.0, 0.5]])
P = {"w": np.array([[0.3, -1.7, 250.0], [1e-3, -42.0, 7.5]])}


def quadratic(params, data):
    w = params["w"]
    return np.sum(A * w * w) + np.sum(C * w)


def sum_exp(params, data):
    return np.sum(np.exp(params["w"]))


def test_complex_step_is_exact_on_a_quadratic():
    est = complex_step(quadratic, P, {}, "w")
    exact = 2 * A * P["w"] + C
    assert est.shape == exact.shape and est.dtype == np.float64
    np.testing.assert_allclose(est, exact, rtol=1e-14, atol=0)


def test_complex_step_selected_indices_and_inputs_untouched():
    before = P["w"].copy()
    est = complex_step(quadratic, P, {}, "w", indices=[5, 0])
    exact = (2 * A * P["w"] + C).reshape(-1)[[5, 0]]
    assert est.shape == (2,)
    np.testing.assert_allclose(est, exact, rtol=1e-14)
    np.testing.assert_array_equal(P["w"], before)
    assert P["w"].dtype == np.float64


def test_central_difference_step_rule():
    values = np.array([0.0, 0.5, -1.0, 3.0, -1e4])
    expected = EPS ** (1 / 3) * np.array([1.0, 1.0, 1.0, 3.0, 1e4])
    np.testing.assert_allclose(central_difference_step(values), expected, rtol=1e-15)


def test_central_difference_error_within_its_bound():
    w = {"w": np.array([[-3.0, -0.5, 0.0], [0.7, 2.0, 4.5]])}
    est = central_difference(sum_exp, w, {}, "w")
    exact = np.exp(w["w"])
    h = central_difference_step(w["w"])
    f = sum_exp(w, {})
    # truncation h^2/6 |f'''(xi)| plus rounding of two loss values, each
    # with a relative error of a few eps (a sum of 6 terms), over 2h
    bound = h**2 / 6 * np.exp(w["w"] + h) + 8 * EPS * f / (2 * h)
    error = np.abs(est - exact)
    assert np.all(error <= bound)
    assert np.max(error / exact) < 1e-8
    before = w["w"].copy()
    np.testing.assert_array_equal(w["w"], before)


def test_central_difference_fixed_step_shows_truncation():
    w = {"w": np.array([[0.5]])}
    coarse = central_difference(sum_exp, w, {}, "w", step=1e-2)[0, 0]
    # (e^(x+h) - e^(x-h)) / 2h = e^x sinh(h)/h = e^x (1 + h^2/6 + ...)
    assert coarse == pytest.approx(np.exp(0.5) * np.sinh(1e-2) / 1e-2, rel=1e-9)
    assert abs(coarse - np.exp(0.5)) > 1e-6


def test_counting_loss_counts_forward_passes():
    counted = CountingLoss(quadratic)
    complex_step(counted, P, {}, "w")
    assert counted.reset() == P["w"].size
    complex_step(counted, P, {}, "w", indices=[1, 2, 3])
    assert counted.reset() == 3
    central_difference(counted, P, {}, "w")
    assert counted.reset() == 2 * P["w"].size
    grads = {"w": 2 * A * P["w"] + C}
    random_direction_check(counted, grads, P, {}, n_directions=7)
    assert counted.calls == 7


def softmax_problem():
    rng = np.random.default_rng(7)
    params = random_params(elman_param_shapes(4, 3, 5), seed=7)
    data = {"x": random_inputs((4, 3, 3), rng), "c": random_classes(4, 3, 5, rng)}
    return params, data


def test_random_directions_are_unit_and_reproducible():
    params, _ = softmax_problem()
    first = random_directions(params, 3, seed=1)
    again = random_directions(params, 3, seed=1)
    for v, w in zip(first, again):
        assert list(v) == list(params)
        assert sum(np.sum(a * a) for a in v.values()) == pytest.approx(1.0, rel=1e-14)
        for name in params:
            assert v[name].shape == params[name].shape
            np.testing.assert_array_equal(v[name], w[name])


def test_random_direction_check_passes_the_true_gradient():
    params, data = softmax_problem()
    _, grads = elman_softmax_loss_and_gradients(params, data)
    counted = CountingLoss(elman_softmax_loss)
    records = random_direction_check(counted, grads, params, data, n_directions=4, seed=0)
    assert [r.index for r in records] == [0, 1, 2, 3]
    assert counted.calls == 4
    for r in records:
        assert abs(r.complex_step) > 1e-3  # a meaningful directional derivative
        assert r.rel_error < 1e-12
        assert r.abs_error == pytest.approx(abs(r.gradient - r.complex_step), abs=0)


def test_random_direction_check_catches_one_wrong_entry():
    params, data = softmax_problem()
    _, grads = elman_softmax_loss_and_gradients(params, data)
    wrong = {name: g.copy() for name, g in grads.items()}
    wrong["W_hh"][2, 1] += 1e-3
    records = random_direction_check(elman_softmax_loss, wrong, params, data)
    directions = random_directions(params, 4, seed=0)
    for r, v in zip(records, directions):
        # the error along v is exactly 1e-3 * v[W_hh][2, 1]
        assert r.gradient - r.complex_step == pytest.approx(1e-3 * v["W_hh"][2, 1], rel=1e-6)
        assert r.rel_error > 1e-6


def test_random_direction_check_rejects_missing_or_misshaped_gradients():
    params, data = softmax_problem()
    _, grads = elman_softmax_loss_and_gradients(params, data)
    with pytest.raises(ValueError, match="no entry 'b_y'"):
        random_direction_check(
            elman_softmax_loss, {k: v for k, v in grads.items() if k != "b_y"}, params, data
        )
    with pytest.raises(ValueError, match=r"gradients\['b_h'\] has shape \(4,\)"):
        random_direction_check(
            elman_softmax_loss, dict(grads, b_h=grads["b_h"].ravel()), params, data
        )
