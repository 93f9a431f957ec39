"""Sizes chosen for proofs and checks, and sizes given by the user, against what the model reads.

Each model here once crashed or gave a false MISMATCH: a fixed step past the
proof's T, a size used only as a constant (which a generated module cannot
read off its inputs), a constant undefined at a small proof size, and
``--size`` making a fixed step fall past T.
"""

from __future__ import annotations

import pytest

from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import default_proof_sizes, prove
from derive.cli import main
from derive.errors import InputError
from derive.model.build import load_text
from derive.model.sizes import check_sizes
from derive.verify.run import verify

FIXED_STEP = """size H = 2
size T = 5
param W : H x H
input x_t : H x 1
state h_t : H x 1 = 0
h_t = tanh(W @ h_{t-1} + x_t)
L = sum(h_4)
"""

FIXED_FROM_END = FIXED_STEP.replace("sum(h_4)", "sum(h_{T-4} * h_T)")

T_AS_CONSTANT = """size H = 2
size T = 4
param W : H x 1
L = sum(W * W) / (T - 2)
"""

SIZE_AS_CONSTANT = """size H = 2
size K = 7
param W : H x 1
L = sum(W * W) / K
"""

UNDEFINED_AT_SMALL_SIZE = """size H = 5
param W : H x 1
L = sum(W * W) / (H - 2)
"""

CLASS_COUNT_ONLY = """size T = 1, B = 2, Hid = 1, V = 3, x1 = 5
state h1_t : x1 x B = 0
target c_t : class Hid x B
input x_t : V x B
param t : x1 x V
param W0 : x1 x x1
h1_t = tanh(W0 @ h1_{t-1} + t @ x_t)
o_t = onehot(c_t)
y_t = softmax(o_t)
L_t = -sum(log(y_t[c_t]))
L = sum_t L_t / B
"""  # found by bench/fuzz.py: Hid is a class count and a computed quantity's size, in no input array

MODELS = {"class count only": CLASS_COUNT_ONLY, "fixed step": FIXED_STEP, "fixed from end": FIXED_FROM_END, "T as constant": T_AS_CONSTANT,
          "size as constant": SIZE_AS_CONSTANT, "undefined at small size": UNDEFINED_AT_SMALL_SIZE}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_proof_sizes_fit_the_model(name):
    model = load_text(MODELS[name], f"{name}.rnn")
    for sizes in default_proof_sizes(model):
        check_sizes(model, sizes)  # raises if a fixed step or a constant does not fit


@pytest.mark.parametrize("name", sorted(MODELS))
def test_proof_holds_and_verify_agrees(name):
    model = load_text(MODELS[name], f"{name}.rnn")
    derivation = derive_matrix(model)
    assert prove(derivation, seed=0).holds
    sizes = {k: v for k, v in model.sizes.items() if v is not None}
    result = verify(model, derivation, sizes, seed=0)
    assert result.passed, result.failure


def test_a_size_used_only_as_a_constant_keeps_its_value_in_the_proof():
    model = load_text(SIZE_AS_CONSTANT, "k.rnn")
    assert all(sizes["K"] == 7 for sizes in default_proof_sizes(model))
    model = load_text(T_AS_CONSTANT, "t.rnn")
    assert all(sizes["T"] == 4 for sizes in default_proof_sizes(model))


def test_the_proof_reaches_the_largest_fixed_step():
    model = load_text(FIXED_STEP, "f.rnn")
    assert min(sizes["T"] for sizes in default_proof_sizes(model)) == 4


def test_sizes_that_break_a_fixed_step_are_refused_at_the_step():
    model = load_text(FIXED_STEP, "f.rnn")
    with pytest.raises(InputError) as info:
        check_sizes(model, {"H": 2, "T": 3})
    err = info.value
    assert (err.line, err.column) == (7, 9)
    assert "h_4 is past the last step T = 3" in err.message and "T = 3" in err.message


def test_verify_size_override_is_checked_against_the_model(tmp_path, capsys):
    path = tmp_path / "f.rnn"
    path.write_text(FIXED_STEP)
    assert main(["verify", str(path), "--size", "T=2"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7:9: error: h_4 is past the last step T = 2" in err
    assert "^" in err and "Traceback" not in err


def test_verify_size_override_that_makes_a_constant_undefined(tmp_path, capsys):
    path = tmp_path / "t.rnn"
    path.write_text(T_AS_CONSTANT)
    assert main(["verify", str(path), "--size", "T=2"]) == 2
    assert "division by zero (with the sizes H = 2, T = 2)" in capsys.readouterr().err


NO_T = """size H = 2
param W : H x 1
input x_t : H x 1
L = sum_t sum(W * x_t)
"""


def test_a_model_with_steps_and_no_size_T_asks_for_it_at_its_first_per_step_line(tmp_path, capsys):
    path = tmp_path / "no_t.rnn"
    path.write_text(NO_T)
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:7: error: x_t is per step, but the model declares no size T" in err and "^" in err


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_a_model_with_no_size_T_generates_code_that_reads_T_from_the_data(tmp_path, style, capsys):
    path = tmp_path / "no_t.rnn"
    path.write_text(NO_T)
    assert main(["verify", str(path), "--size", "T=3"]) == 0
    out = tmp_path / "m.py"
    assert main(["code", str(path), "--style", style, "-o", str(out)]) == 0
    from derive.emit.loader import import_source
    module = import_source(out.read_text())
    import numpy as np
    x = np.arange(6.0).reshape(3, 2, 1)
    loss, grads = module.loss_and_gradients({"W": np.ones((2, 1))}, {"x": x})
    assert loss == x.sum() and np.array_equal(grads["W"], x.sum(axis=0))


def test_a_size_override_the_model_does_not_declare_is_refused(capsys):
    assert main(["verify", "elman-softmax", "--size", "Z=3"]) == 2
    assert "--size names Z, which the model does not declare" in capsys.readouterr().err


@pytest.mark.parametrize("model, claims", [
    (SIZE_AS_CONSTANT, ["dL/dW = 2 * W / K", "dL/dW = 2 * W / 7"]),  # K = 7 is what the model says
    (T_AS_CONSTANT, ["dL/dW = 2 * W / (T - 2)", "dL/dW = W"]),
    (UNDEFINED_AT_SMALL_SIZE, ["dL/dW = 2 * W / (H - 2)"]),
    (FIXED_STEP, ["dL/dh_t = W.T @ (dL/dh_{t+1} * (1 - h_{t+1}**2))"]),
])
def test_claims_are_checked_at_sizes_the_model_allows(tmp_path, capsys, model, claims):
    path = tmp_path / "notes.claims"
    path.write_text(model + "".join(f"claim {c}\n" for c in claims))
    assert main(["check", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.count(": holds: ") == len(claims) and "internal error" not in out


def test_a_claims_file_size_that_breaks_a_fixed_step_is_an_error_at_the_step(tmp_path, capsys):
    (tmp_path / "f.rnn").write_text(FIXED_STEP)
    notes = tmp_path / "notes.claims"
    notes.write_text("model f.rnn\nsize T = 3\nclaim dL/dh_T = W.T @ dL/dh_T\n")
    assert main(["check", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "f.rnn:7:9: error: h_4 is past the last step T = 3" in err


def test_a_class_target_without_steps_is_named_as_declared_in_the_proof():
    model = load_text("size H = 3, O = 4, T = 3\nparam W : O x H\ninput x_t : H x 1\ntarget k : class O\n"
                      "state h_t : H x 1 = 0\nh_t = tanh(h_{t-1} + x_t)\ny = softmax(W @ h_T)\nL = -log(y[k])\n",
                      "m2o.rnn")
    proof = prove(derive_matrix(model), seed=0)
    assert proof.holds
    assert all(set(size.classes) == {"k"} for size in proof.sizes)
