"""Hand-written BPTT of the built-in models against numerical derivatives."""

import math

import numpy as np
import pytest

from derive.numeric.bptt import (
    HAND_BPTT,
    HAND_LOSS,
    elman_regression_loss,
    elman_regression_loss_and_gradients,
    elman_softmax_loss,
    elman_softmax_loss_and_gradients,
)
from derive.numeric.compare import compare_gradients
from derive.numeric.finite_diff import central_difference, complex_step
from derive.numeric.random_data import random_classes, random_inputs, random_params
from derive.numeric.shapes import elman_param_shapes


def softmax_case(H=4, F=3, O=5, T=4, B=1, seed=0, h_0=False):
    rng = np.random.default_rng(seed + 100)
    params = random_params(elman_param_shapes(H, F, O), seed)
    data = {"x": random_inputs((T, F, B), rng), "c": random_classes(T, B, O, rng)}
    if h_0:
        data["h_0"] = random_inputs((H, B), rng)
    return params, data


def regression_case(H=5, F=1, O=1, T=6, B=7, seed=0, h_0=False):
    rng = np.random.default_rng(seed + 200)
    params = random_params(elman_param_shapes(H, F, O), seed)
    data = {"x": random_inputs((T, F, B), rng), "y_true": random_inputs((O, B), rng)}
    if h_0:
        data["h_0"] = random_inputs((H, B), rng)
    return params, data


CASES = {
    "softmax-B1": ("elman-softmax", lambda **kw: softmax_case(B=1, **kw)),
    "softmax-B3": ("elman-softmax", lambda **kw: softmax_case(B=3, **kw)),
    "regression": ("elman-regression", lambda **kw: regression_case(**kw)),
}


def numerical(method, loss, params, data):
    return {name: method(loss, params, data, name) for name in params}


def max_rel(rows):
    return max(row.max_rel_error for row in rows)


@pytest.mark.parametrize("h_0", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bptt_matches_complex_step_on_every_entry(case, h_0):
    model, make = CASES[case]
    params, data = make(h_0=h_0)
    loss, grads = HAND_BPTT[model](params, data)
    assert list(grads) == list(params) + ["h_0"]
    for name in params:
        assert grads[name].shape == params[name].shape
        assert grads[name].dtype == np.float64
    assert loss == pytest.approx(HAND_LOSS[model](params, data), rel=1e-15)
    reference = numerical(complex_step, HAND_LOSS[model], params, data)
    rows = compare_gradients(reference, grads)
    assert sum(row.n_entries for row in rows) == sum(p.size for p in params.values())
    assert max_rel(rows) < 1e-10
    if h_0:  # dL/dh_0 = W_hh.T @ dL/dz_1, against complex step through the data
        def loss_of_h0(p, _):
            return HAND_LOSS[model](params, dict(data, h_0=p["h_0"]))
        by_cs = complex_step(loss_of_h0, {"h_0": data["h_0"]}, None, "h_0")
        assert max_rel(compare_gradients({"h_0": by_cs}, grads)) < 1e-10


@pytest.mark.parametrize("case", sorted(CASES))
def test_bptt_matches_central_differences(case):
    model, make = CASES[case]
    params, data = make(h_0=True, seed=3)
    _, grads = HAND_BPTT[model](params, data)
    reference = numerical(central_difference, HAND_LOSS[model], params, data)
    assert max_rel(compare_gradients(reference, grads)) < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bptt_matches_central_differences_relative_to_gradient_scale(case, seed):
    # Per-entry relative error of central differences can reach ~1e-6 on an
    # entry whose gradient is near zero (seed 0, softmax-B1: b_h[2] ~ -8e-6); against
    # the largest entry of each parameter the error stays near eps**(2/3).
    model, make = CASES[case]
    params, data = make(h_0=True, seed=seed)
    _, grads = HAND_BPTT[model](params, data)
    reference = numerical(central_difference, HAND_LOSS[model], params, data)
    for row in compare_gradients(reference, grads):
        assert row.max_abs_error < 1e-7 * np.max(np.abs(reference[row.name]))


def test_nonzero_h0_is_honoured():
    params, data = softmax_case(B=3, h_0=True)
    no_state = {k: v for k, v in data.items() if k != "h_0"}
    zero_state = dict(no_state, h_0=np.zeros_like(data["h_0"]))
    loss_h0, grads_h0 = elman_softmax_loss_and_gradients(params, data)
    loss_none, grads_none = elman_softmax_loss_and_gradients(params, no_state)
    loss_zero, grads_zero = elman_softmax_loss_and_gradients(params, zero_state)
    assert loss_h0 != pytest.approx(loss_none, rel=1e-6)
    assert loss_zero == loss_none
    for name in params:
        np.testing.assert_array_equal(grads_zero[name], grads_none[name])
    # h_0 enters W_hh's gradient only through dz_1 @ h_0.T
    assert not np.allclose(grads_h0["W_hh"], grads_none["W_hh"])


def _literal_softmax_loss(params, data):
    """The seed-002 forward pass, one column and one entry at a time."""
    W_hh, W_xh, b_h = params["W_hh"], params["W_xh"], params["b_h"]
    W_hy, b_y = params["W_hy"], params["b_y"]
    x, c = data["x"], data["c"]
    T, F, B = x.shape
    H, O = W_hh.shape[0], W_hy.shape[0]
    total = 0.0
    for col in range(B):
        h = [data["h_0"][i, col] if "h_0" in data else 0.0 for i in range(H)]
        for t in range(T):
            h = [
                math.tanh(
                    sum(W_hh[i, j] * h[j] for j in range(H))
                    + sum(W_xh[i, f] * x[t, f, col] for f in range(F))
                    + b_h[i, 0]
                )
                for i in range(H)
            ]
            o = [sum(W_hy[k, j] * h[j] for j in range(H)) + b_y[k, 0] for k in range(O)]
            y = [math.exp(v) / sum(math.exp(u) for u in o) for v in o]
            total += -math.log(y[c[t, col]])
    return total


def _literal_regression_loss(params, data):
    """The seeds 000/001 forward pass, one column and one entry at a time."""
    W_hh, W_xh, b_h = params["W_hh"], params["W_xh"], params["b_h"]
    W_hy, b_y = params["W_hy"], params["b_y"]
    x, y_true = data["x"], data["y_true"]
    T, F, B = x.shape
    H, O = W_hh.shape[0], W_hy.shape[0]
    total = 0.0
    for col in range(B):
        h = [data["h_0"][i, col] if "h_0" in data else 0.0 for i in range(H)]
        for t in range(T):
            h = [
                math.tanh(
                    sum(W_hh[i, j] * h[j] for j in range(H))
                    + sum(W_xh[i, f] * x[t, f, col] for f in range(F))
                    + b_h[i, 0]
                )
                for i in range(H)
            ]
        for k in range(O):
            y = sum(W_hy[k, j] * h[j] for j in range(H)) + b_y[k, 0]
            total += (y - y_true[k, col]) ** 2 / 2
    return total


def test_forward_passes_match_a_literal_transcription():
    # complex step reuses our forward pass, so check that pass independently
    params, data = softmax_case(B=3, h_0=True)
    assert elman_softmax_loss(params, data) == pytest.approx(
        _literal_softmax_loss(params, data), rel=1e-13
    )
    params, data = regression_case(O=2, h_0=True)
    assert elman_regression_loss(params, data) == pytest.approx(
        _literal_regression_loss(params, data), rel=1e-13
    )


def test_class_shapes_for_one_column_are_equivalent():
    params, data = softmax_case(B=1)
    c = data["c"]
    results = [
        elman_softmax_loss_and_gradients(params, dict(data, c=shape))
        for shape in (c, c.reshape(-1), c.reshape(-1, 1))
    ]
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        for name in params:
            np.testing.assert_array_equal(grads[name], results[0][1][name])


def test_regression_batch_gradient_is_sum_of_example_gradients():
    # seed 000: the matmul over the batch sums the examples' gradients
    params, data = regression_case(B=4)
    _, total = elman_regression_loss_and_gradients(params, data)
    summed = {name: np.zeros_like(p) for name, p in params.items()}
    for col in range(4):
        one = {"x": data["x"][:, :, col : col + 1], "y_true": data["y_true"][:, col : col + 1]}
        _, grads = elman_regression_loss_and_gradients(params, one)
        for name in params:
            summed[name] += grads[name]
    for name in params:
        np.testing.assert_allclose(total[name], summed[name], rtol=1e-12, atol=1e-15)


def test_complex_input_keeps_the_imaginary_part():
    params, data = softmax_case(B=2)
    shifted = {k: v.astype(np.complex128) for k, v in params.items()}
    shifted["b_y"][0, 0] += 1e-20j
    loss = elman_softmax_loss(shifted, data)
    assert np.iscomplexobj(loss) and np.imag(loss) != 0
    _, grads = elman_softmax_loss_and_gradients(params, data)
    assert np.imag(loss) / 1e-20 == pytest.approx(grads["b_y"][0, 0], rel=1e-12)


def test_float32_input_gives_float32_close_to_float64():
    params, data = regression_case()
    _, grads64 = elman_regression_loss_and_gradients(params, data)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    d32 = {k: v.astype(np.float32) for k, v in data.items()}
    loss32, grads32 = elman_regression_loss_and_gradients(p32, d32)
    assert loss32.dtype == np.float32
    for name in params:
        assert grads32[name].dtype == np.float32
        np.testing.assert_allclose(grads32[name], grads64[name], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, d: p.update(W_hh=np.zeros((4, 3))), "W_hh has shape (4, 3), expected (4, 4)"),
        (lambda p, d: p.update(b_y=np.zeros((5,))), "b_y has shape (5,), expected (5, 1)"),
        (lambda p, d: d.update(h_0=np.zeros((4, 2))), "h_0 has shape (4, 2), expected (4, 3)"),
        (lambda p, d: d.update(c=np.zeros((4, 2), dtype=int)), "c has shape (4, 2), expected (4, 3)"),
        (lambda p, d: d.update(c=np.full((4, 3), 5)), "c has a class outside [0, 5)"),
        (lambda p, d: d.update(x=np.zeros((4, 3))), "x has shape (4, 3)"),
        (lambda p, d: d.pop("c"), "data has no entry 'c'"),
    ],
)
def test_inconsistent_shapes_raise_value_error(change, message):
    params, data = softmax_case(B=3)
    change(params, data)
    with pytest.raises(ValueError) as excinfo:
        elman_softmax_loss_and_gradients(params, data)
    assert message in str(excinfo.value)


def test_regression_target_shape_is_checked():
    params, data = regression_case()
    data["y_true"] = data["y_true"].T
    with pytest.raises(ValueError, match=r"y_true has shape \(7, 1\), expected \(1, 7\)"):
        elman_regression_loss(params, data)
