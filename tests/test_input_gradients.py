"""Gradients with respect to the inputs: derived, proved, generated in both styles on request, and verified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derive import api
from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import prove
from derive.emit.fast import fast_module_or_readable
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_model
from derive.notation.printer import show

DATA = Path(__file__).parent / "data"
MODELS = ["elman-softmax", str(DATA / "gru.rnn"), str(DATA / "rowmajor.rnn"), str(DATA / "anchored.rnn"),
          str(DATA / "min_char_rnn.rnn")]


def _case(module, rng):
    sizes = dict(module.DEFAULT_SIZES)

    def dims(names):
        return tuple(d if isinstance(d, int) else sizes[d] for d in names)
    params = {k: rng.normal(size=dims(v)) * 0.5 for k, v in module.PARAM_SHAPES.items()}
    data = {}
    for key, names in module.DATA_SHAPES.items():
        if key in module.CLASS_COUNTS:
            count = module.CLASS_COUNTS[key]
            data[key] = rng.integers(0, count if isinstance(count, int) else sizes[count], size=dims(names))
        else:
            data[key] = rng.normal(size=dims(names))
    return params, data


def test_the_input_gradient_is_derived_and_proved():
    derivation = derive_matrix(load_model("elman-softmax"))
    assert derivation.order()[-1] == "x_t"
    assert [show(t.expr) for t in derivation.adjoints["x_t"].terms] == ["W_xh.T @ dL/dz_t"]
    assert prove(derivation, seed=0).holds


def test_a_class_input_has_no_gradient():
    derivation = derive_matrix(load_model(str(DATA / "min_char_rnn.rnn")))
    assert "inputs_t" not in derivation.adjoints


@pytest.mark.parametrize("style", ["readable", "fast"])
@pytest.mark.parametrize("name", MODELS)
def test_the_module_returns_input_gradients_that_central_differences_confirm(name, style):
    model = load_model(name)
    derivation = derive_matrix(model)
    source = generate_module(model, derivation) if style == "readable" else \
        fast_module_or_readable(model, derivation)[0]
    module = import_source(source, f"inputs_{style}")
    rng = np.random.default_rng(3)
    params, data = _case(module, rng)
    loss, grads = module.loss_and_gradients(params, data, wrt_inputs=True)
    plain_loss, plain = module.loss_and_gradients(params, data)
    assert loss == plain_loss and set(grads) == set(plain) | {s.base for s in model.differentiable_inputs}
    for key in plain:
        np.testing.assert_array_equal(grads[key], plain[key])
    for s in model.differentiable_inputs:
        g = grads[s.base]
        x = np.asarray(data[s.base], dtype=float)
        assert g.shape == x.shape
        for flat in rng.choice(x.size, size=min(12, x.size), replace=False):
            idx = np.unravel_index(flat, x.shape)
            up, down = x.copy(), x.copy()
            up[idx] += 1e-6
            down[idx] -= 1e-6
            estimate = (module.loss(params, {**data, s.base: up}) - module.loss(params, {**data, s.base: down})) / 2e-6
            assert abs(estimate - g[idx]) <= 1e-6 * max(1.0, abs(estimate))


def test_the_input_gradient_comes_back_whole_when_the_batch_is_split_over_threads():
    model = load_model("elman-regression")
    module = import_source(fast_module_or_readable(model, derive_matrix(model))[0], "inputs_threads")
    rng = np.random.default_rng(0)
    params = {"W_hh": rng.normal(size=(50, 50)) * 0.1, "W_xh": rng.normal(size=(50, 1)),
              "b_h": rng.normal(size=(50, 1)), "W_hy": rng.normal(size=(1, 50)), "b_y": rng.normal(size=(1, 1))}
    data = {"x": rng.normal(size=(10, 1, 1200)), "y_true": rng.normal(size=(1, 1200))}
    _, one = module.loss_and_gradients(params, data, wrt_inputs=True)
    _, two = module.loss_and_gradients(params, data, wrt_inputs=True, threads=2)
    assert one["x"].shape == two["x"].shape == (10, 1, 1200)
    np.testing.assert_allclose(two["x"], one["x"], rtol=1e-12, atol=1e-18)
    first = module.loss_and_gradients(params, data, wrt_inputs=True)[1]["x"].copy()
    module.loss_and_gradients(params, {**data, "x": data["x"] * 2}, wrt_inputs=True)
    np.testing.assert_array_equal(first, one["x"])  # the returned array is the caller's, not a pooled buffer


def test_verify_checks_the_input_gradient_against_every_reference():
    result = api.verify_gradients("elman-softmax", sizes={"H": 3, "T": 3})
    rows = {row.check: row for row in result.rows if row.parameter == "x"}
    assert set(rows) == {"complex", "central", "exact"}
    assert all(row.passed and row.entries > 0 for row in rows.values())


def _example_with_dx(tmp_path, slip: bool) -> str:
    """The NumPy example of docs/against.md, returning dL/dx too (with dL/dh for dL/dz when ``slip``)."""
    text = (Path(__file__).parent.parent / "examples" / "against" / "elman_softmax.py").read_text(encoding="utf-8")
    for old, new in [("    dh_next = np.zeros((H, B))", "    dh_next = np.zeros((H, B))\n    dx = np.zeros_like(x)"),
                     ("        dh_next = W_hh.T @ dz",
                      "        dh_next = W_hh.T @ dz\n        dx[t - 1] = W_xh.T @ " + ("dh" if slip else "dz")),
                     ('    g["h_0"] = dh_next', '    g["h_0"] = dh_next\n    g["x"] = dx')]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / ("dx_slip.py" if slip else "dx_right.py")
    path.write_text(text, encoding="utf-8")
    return f"{path}:loss_and_gradients"


def test_derive_against_compares_an_input_gradient_the_user_gives(tmp_path):
    from derive.against.command import Options, against_callable
    right = against_callable(Options("elman-softmax", _example_with_dx(tmp_path, slip=False)))
    assert right.passed and "x" in {row.name for row in right.rows}
    wrong = against_callable(Options("elman-softmax", _example_with_dx(tmp_path, slip=True)))
    assert not wrong.passed and wrong.wrong == ["x"]
    assert wrong.naming is None and any("only the inputs' gradients are wrong" in n for n in wrong.notes)
