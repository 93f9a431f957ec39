"""derive verify's decision rule: every returned gradient checked, no false MISMATCH, every slip caught."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from derive.model.build import load_model
from derive.cli import main
from derive.emit.readable import generate_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.verify.run import verify
from derive.verify.rule import CheckRow, VerifyResult, conclusion, format_result, judge
from derive.numeric import central_difference_estimates, complex_step, random_params

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

STATE_LOSSES = {  # losses that read the state directly beside per-step data
    "squared error": ("target d_t : H x B", "L = sum_t sum((h_t - d_t)**2) / 2"),
    "upstream gradient": ("input g_t : H x B", "L = sum_t sum(h_t * g_t)"),
    "one step back": ("input g_t : H x B", "L = sum_t sum(h_{t-1} * g_t)"),
}


def state_loss_model(tmp_path, kind: str):
    data_line, loss = STATE_LOSSES[kind]
    path = tmp_path / "state_loss.rnn"
    path.write_text("size H = 3, F = 2, T = 4, B = 2\nparam W_hh : H x H\nparam W_xh : H x F\n"
                    f"input x_t : F x B\n{data_line}\nstate h_t : H x B = 0\n"
                    f"h_t = tanh(W_hh @ h_{{t-1}} + W_xh @ x_t)\n{loss}\n")
    return load_model(str(path))


@pytest.mark.parametrize("kind", sorted(STATE_LOSSES))
def test_initial_state_gradient_of_losses_that_read_the_state(tmp_path, kind):
    model = state_loss_model(tmp_path, kind)
    derivation = derive_matrix(model)
    module = import_source(generate_module(model, derivation))
    rng = np.random.default_rng(5)
    sizes = dict(model.sizes)
    params = random_params({s.name: (3, 3) if s.name == "W_hh" else (3, 2) for s in model.params}, 5)
    data = {"x": rng.standard_normal((4, 2, 2)), "h_0": rng.standard_normal((3, 2))}
    data.update({k: rng.standard_normal((4, 3, 2)) for k in ("d", "g") if k in module.DATA_SHAPES})
    _, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)

    def loss_of_h0(p, _):
        return module.loss(params, dict(data, h_0=p["h_0"]))

    truth = complex_step(loss_of_h0, {"h_0": data["h_0"]}, None, "h_0")
    assert np.allclose(grads["h_0"], truth, rtol=1e-12, atol=1e-13)
    result = verify(model, derivation, sizes, seed=1)
    assert result.passed and ("exact", "h_0") in {(r.check, r.parameter) for r in result.rows}


def test_show_gives_no_step_zero_loss_term(tmp_path, capsys):
    model = state_loss_model(tmp_path, "squared error")
    assert main(["show", model.path]) == 0  # with the proof, which checks dL/dh_0 entry by entry
    out = capsys.readouterr().out
    assert "dL/dh_0 = W_hh.T @ (dL/dh_1 * (1 - h_1**2)) " in out and "d_0" not in out
    assert "result: proved at every size above" in out
    code = generate_module(model, derive_matrix(model))
    assert "d[-1]" not in code and "dL_dh[0] += W_hh.T @ (dL_dh[1] * (1 - h[1]**2))" in code


def test_an_h0_only_consumer_two_steps_later_is_guarded(tmp_path):
    path = tmp_path / "lag.rnn"
    path.write_text("size H = 2, T = 3, B = 2\nparam W : H x H\ninput g_t : H x B\nstate h_t : H x B = 0\n"
                    "h_t = tanh(W @ h_{t-1})\nL = sum_t sum(h_t * g_t)\n")
    model = load_model(str(path))
    assert verify(model, derive_matrix(model), {"H": 2, "T": 1, "B": 2}, seed=0).passed


def test_verify_checks_every_returned_gradient():
    model = load_model("elman-softmax")
    result = verify(model, derive_matrix(model), dict(model.sizes), seed=3)
    checked = {(r.check, r.parameter) for r in result.rows}
    for check in ("hand", "complex", "central", "exact"):
        assert (check, "h_0") in checked and (check, "W_hh") in checked
    assert result.passed and result.verdicts() == {c: "agrees" for c in
                                                   ("hand", "complex", "central", "exact", "direction")}


def test_verify_json_gives_each_check_its_verdict_and_tolerance(capsys):
    assert main(["verify", "elman-softmax", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["result"] == "agree" and doc["evidence"] == []
    for check in ("hand", "complex", "central", "exact", "direction"):
        entry = doc["checks"][check]
        assert entry["verdict"] == "agrees" and entry["rtol"] > 0 and entry["atol"] > 0
        assert entry["decisive"] == (check != "central")


def test_an_entry_is_judged_at_the_gradient_scale():
    # 2.5e-6 off by 1e-13 in a gradient of scale 1: rounding, not a mismatch; off by 1e-6: a mismatch
    generated = {"a": np.array([1.0, 2.5e-6])}
    rows, scale = judge("complex", generated, {"a": np.array([1.0, 2.5e-6 + 1e-13])})
    assert scale == 1.0 and rows[0].passed and rows[0].max_rel_error > 1e-8
    rows, _ = judge("complex", generated, {"a": np.array([1.0, 3.5e-6])})
    assert not rows[0].passed and rows[0].failed == 1


def test_central_differences_alone_do_not_fail_a_run():
    def row(check, passed):
        return CheckRow(check, "W", 4, 0.0, 0.0, (0, 0), passed, 0 if passed else 1)

    result = VerifyResult("m", {}, 0, rows=[row("complex", True), row("exact", True), row("central", False)],
                          directions=[{"passed": True}])
    assert result.passed and result.evidence == []
    assert "only central differences disagree" in conclusion(result)
    result.rows[0] = row("complex", False)
    assert not result.passed and result.evidence == ["complex"]
    assert conclusion(result).startswith("result: MISMATCH: complex step")


def test_central_differences_detect_a_kink():
    def loss(p, _):
        loss.last = bool(p["w"][0] > 0)
        return max(p["w"][0], 0.0) + p["w"][1] ** 2

    loss.last = None
    est = central_difference_estimates(loss, {"w": np.array([1e-9, 0.5])}, None, "w",
                                       branches=lambda: loss.last)
    assert list(est.smooth) == [False, True]
    assert abs(est.value[1] - 1.0) <= est.error[1] + 1e-12 and est.error[1] < 1e-6


def test_central_differences_take_the_second_step_only_where_in_doubt():
    def loss(p, _):
        loss.calls += 1
        return float(np.sum(np.sin(p["w"])))

    loss.calls = 0
    w = np.array([0.3, 1.1])
    est = central_difference_estimates(loss, {"w": w}, None, "w", settled=lambda k, v, e: k == 0)
    assert loss.calls == 1 + 2 + 4
    assert np.allclose(est.value, np.cos(w), rtol=1e-9)
    assert abs(est.value[1] - np.cos(1.1)) <= est.error[1]


def test_verify_skips_entries_at_a_relu_kink(tmp_path, monkeypatch):
    import derive.verify.run as verify_module
    path = tmp_path / "kink.rnn"
    path.write_text("size F = 3, B = 4\nparam W : 1 x F\ninput x : F x B\nL = sum(relu(W @ x))\n")
    model = load_model(str(path))
    params = random_params({"W": (1, 3)}, 0)
    w = params["W"][0]
    x = np.random.default_rng(9).standard_normal((3, 4))
    x[:, 0] -= w * (w @ x[:, 0] - 1e-9) / (w @ w)  # the first column sits 1e-9 from the kink
    monkeypatch.setattr(verify_module, "random_data", lambda *a: {"x": x})
    result = verify(model, derive_matrix(model), {"F": 3, "B": 4}, seed=0)
    central = next(r for r in result.rows if r.check == "central")
    assert central.skipped == 3 and central.passed and result.passed
    assert any("straddle a kink" in n for n in result.notes)


def test_a_module_that_raises_is_a_mismatch_not_a_traceback():
    model = load_model("elman-softmax")
    derivation = derive_matrix(model)
    broken = generate_module(model, derivation).replace("x[t - 1].T", "x[t + 1].T")
    result = verify(model, derivation, dict(model.sizes), seed=0, source=broken)
    assert not result.passed and result.evidence == ["module"]
    assert conclusion(result).startswith("result: MISMATCH: the module raised IndexError")


def test_every_injected_slip_is_caught():
    sys.path.insert(0, str(ROOT))
    from bench.mutations import MUTATIONS, run_mutations
    caught = run_mutations()
    assert len(caught) == len(MUTATIONS) >= 20
    missed = [c.slip for c in caught if c.passed]
    assert not missed
    # each is caught by a check that is exact to rounding, not by central differences alone
    assert all(set(c.evidence) - {"central"} for c in caught)


def test_a_gradient_near_zero_reports_a_sane_relative_error():
    rows, _ = judge("central", {"a": np.array([1.0]), "b": np.array([1e-300])},
                    {"a": np.array([1.0]), "b": np.array([1.3e-22])}, estimated={"a": [0.0], "b": [0.0]})
    assert rows[1].max_rel_error < 1e-13 and rows[1].passed


BATTERY = ["state_sqerr", "state_prev_upstream", "shadow_module_names", "shadow_python_keywords",
           "rnnlm_britz_V_param", "rowmajor_tanh_upstream", "mean_over_time", "relu_h32_regression",
           "gru_rowmajor_upstream", "lstm_cell_state_upstream", "anchored_initial_state", "sigmoid_bce"]


@pytest.mark.parametrize("name", BATTERY)
def test_battery_models_verify_without_a_false_mismatch(name):
    # the fast part of the battery; `python bench/battery.py` runs all 48 models at three seeds
    model = load_model(str(DATA / "battery" / f"{name}.rnn"))
    result = verify(model, derive_matrix(model), dict(model.sizes), seed=2)
    assert result.passed and not result.failure, [r for r in result.rows if not r.passed]
    assert any(r.parameter.endswith("_0") for r in result.rows) == bool(model.states)


def test_a_one_class_softmax_whose_gradient_is_zero_agrees(tmp_path):
    path = tmp_path / "one_class.rnn"
    path.write_text("size H = 5, O = 1, B = 1, T = 2\nparam b0 : 1 x H\ninput x1 : O x B\ninput x2 : H x B\n"
                    "target c_t : class O x B\no_t = x1 + ((b0 @ x2) / T)\ny_t = softmax(o_t)\n"
                    "L_t = -sum(log(y_t[c_t]))\nL = sum_t L_t / B\n")
    model = load_model(str(path))
    assert verify(model, derive_matrix(model), dict(model.sizes), seed=0).passed


def test_a_model_without_parameters_verifies_its_state(tmp_path):
    path = tmp_path / "no_params.rnn"
    path.write_text("size H = 2, T = 3\ninput x_t : H x 1\nstate h_t : H x 1 = 0\nh_t = tanh(h_{t-1} + x_t)\n"
                    "L = sum(h_T)\n")
    model = load_model(str(path))
    result = verify(model, derive_matrix(model), dict(model.sizes), seed=0)
    assert result.passed and {r.parameter for r in result.rows} == {"h_0", "x"}


def test_sizes_too_large_for_memory_are_an_input_error(capsys):
    assert main(["verify", "elman-regression", "--size", "H=100000,B=100000"]) == 2
    assert "give smaller ones with --size" in capsys.readouterr().err


def test_an_exception_in_derives_own_module_is_not_a_verdict(monkeypatch):
    import derive.verify.run as verify_module
    model = load_model("elman-softmax")
    monkeypatch.setattr(verify_module, "generate_module",
                        lambda m, d: generate_module(m, d).replace("x[t - 1].T", "x[t + 1].T"))
    with pytest.raises(IndexError):
        verify(model, derive_matrix(model), dict(model.sizes), seed=0)


def test_a_fixed_step_that_is_the_initial_state_at_the_declared_T(tmp_path):
    # h_{T-3} at T = 3 is h_0: the loop over t = T..1 never reaches it, so the module adds it after
    path = tmp_path / "h_T3.rnn"
    path.write_text("size H = 2, T = 3\nparam W : H x H\nstate h_t : H x 1 = 0\nh_t = tanh(W @ h_{t-1})\n"
                    "L = sum(h_{T-3}) + sum(h_T)\n")
    model = load_model(str(path))
    for T in (3, 4):
        assert verify(model, derive_matrix(model), {"H": 2, "T": T}, seed=0).passed


def test_a_gradient_that_is_exactly_zero_meets_rounding_noise_in_a_random_direction(tmp_path):
    # found by bench/fuzz.py: b2 shifts every logit of a softmax alike, so dL/db2 = 0 exactly, while the
    # complex-step directional derivative carries rounding noise (1.8e-17); it was a false MISMATCH
    path = tmp_path / "shift.rnn"
    path.write_text("size dtype = 5, Hid = 2, H = 2, B = 1, T = 5\nz0_t = W0 @ h__{t-1} + W1 @ x_t\n"
                    "h__t = relu(z0_t)\ny = softmax((b2 - x1).T)\nL = -sum(log(y[c])) / B\n"
                    "param W0 : dtype x dtype\nparam W1 : dtype x Hid\nparam b2 : 1 x 1\ninput x_t : Hid x B\n"
                    "input x1 : B x H\ntarget c : class H x B\nstate h__t : dtype x B = 0\n")
    model = load_model(str(path))
    result = verify(model, derive_matrix(model), dict(model.sizes), seed=0, entries=3)
    assert result.passed, format_result(result)
    assert all(d["passed"] and d["abs_error"] < 1e-15 for d in result.directions)


def test_a_zero_reference_has_no_relative_error_and_the_absolute_error_decides():
    # every reference value zero: |a - b| / 1e-300 printed 1e+284; now undefined, shown as '-'
    rows, scale = judge("complex", {"z": np.array([1e-17, 0.0])}, {"z": np.zeros(2)})
    assert scale == 0.0 and rows[0].max_rel_error is None and rows[0].passed
    assert rows[0].max_abs_error == 1e-17
    rows, _ = judge("complex", {"z": np.array([1e-3, 0.0])}, {"z": np.zeros(2)})
    assert rows[0].max_rel_error is None and not rows[0].passed and rows[0].failed == 1
    # a reference that is not all zero keeps its relative error, however small its entries
    rows, _ = judge("complex", {"a": np.array([1.0]), "z": np.array([1e-17])}, {"a": np.array([1.0]), "z": [0.0]})
    assert rows[1].max_rel_error is not None and rows[1].max_rel_error < 1e-8


def test_verify_prints_a_dash_for_a_gradient_that_is_zero(tmp_path, capsys):
    # a one-class softmax: dL/db0 is exactly zero; the exact derivation's 50-digit reference is 1e-52-ish
    path = tmp_path / "one_class.rnn"
    path.write_text("size H = 5, O = 1, B = 1, T = 2\nparam b0 : 1 x H\ninput x1 : O x B\ninput x2 : H x B\n"
                    "target c_t : class O x B\no_t = x1 + ((b0 @ x2) / T)\ny_t = softmax(o_t)\n"
                    "L_t = -sum(log(y_t[c_t]))\nL = sum_t L_t / B\n")
    model = load_model(str(path))
    result = verify(model, derive_matrix(model), dict(model.sizes), seed=0)
    assert result.passed
    # at O = 1 every gradient is zero (the inputs' too); the exact check runs at O = 3, where dL/dx1 is not
    assert all(r.max_rel_error is None for r in result.rows if r.check != "exact")
    assert {r.parameter for r in result.rows} == {"b0", "x1", "x2"}
    assert all(d["rel_error"] is None for d in result.directions)
    text = format_result(result)
    assert "e+2" not in text and "e+3" not in text  # no 1e+284, no 3e+34
    row = next(line for line in text.splitlines() if line.startswith("b0 "))
    assert row.split()[1] == "-" and "abs" in row
    assert main(["verify", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["max_rel_error"] for r in doc["rows"] if r["check"] != "exact"} == {None}
