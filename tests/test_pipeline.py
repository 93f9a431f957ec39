"""End to end: derive, prove, emit and check numerically, for every cell kind."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from derive.model.build import load_model
from derive.cli import main
from derive.emit.readable import generate_module
from derive.emit.fast import generate_fast_module
from derive.calculus.exact import unroll
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.notation.printer import show
from derive.calculus.prove import default_proof_sizes, prove, prove_at
from derive.calculus.show import adjoint_text
from derive.verify.run import random_data
from derive.numeric import complex_step, compare_gradients, random_params

DATA = Path(__file__).parent / "data"
CELLS = {
    "elman-softmax": {"H": 3, "F": 2, "O": 4, "T": 4},
    "elman-regression": {"H": 4, "F": 2, "O": 3, "T": 4, "B": 5},
    str(DATA / "gru.rnn"): {"H": 3, "F": 2, "O": 3, "T": 4, "B": 3},
    str(DATA / "lstm.rnn"): {"H": 3, "F": 2, "O": 2, "T": 3, "B": 2},
    str(DATA / "rowmajor.rnn"): {"B": 3, "F": 2, "H": 4, "O": 2, "T": 3},
    str(DATA / "anchored.rnn"): {"H": 3, "F": 2, "T": 4},
}


def text_of(model, name):
    d = derive_matrix(model)
    return adjoint_text(model, d.adjoints[name])


def test_softmax_recurrences_as_in_the_notes():
    m = load_model("elman-softmax")
    assert text_of(m, "o_t") == "dL/do_t = y_t - onehot(c_t)"
    assert text_of(m, "h_t") == "dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}"
    assert text_of(m, "z_t") == "dL/dz_t = dL/dh_t * (1 - h_t**2)"
    assert text_of(m, "W_hh") == "dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T"
    assert text_of(m, "b_y") == "dL/db_y = sum_t dL/do_t"


def test_regression_batch_sums_as_in_the_notes():
    m = load_model("elman-regression")
    assert text_of(m, "y") == "dL/dy = y - y_true"
    assert text_of(m, "W_hy") == "dL/dW_hy = dL/dy @ h_T.T"  # the matmul over B sums examples
    assert text_of(m, "b_y") == "dL/db_y = rowsum(dL/dy)"
    assert text_of(m, "b_h") == "dL/db_h = sum_t rowsum(dL/dz_t)"
    assert text_of(m, "h_t") == "dL/dh_t = [t = T] W_hy.T @ dL/dy + W_hh.T @ dL/dz_{t+1}"


@pytest.mark.parametrize("name", ["elman-softmax", "elman-regression"])
def test_builtin_proved_at_three_sizes(name):
    d = derive_matrix(load_model(name))
    sizes = default_proof_sizes(d.model)
    assert len(sizes) >= 3 and len({tuple(s.items()) for s in sizes}) == len(sizes)
    assert all(s["T"] >= 3 for s in sizes)
    if "B" in d.model.sizes:
        assert all(s["B"] > 1 for s in sizes)
    proof = prove(d)
    assert proof.holds, proof.failures()
    assert all(p.witness_max_rel < 1e-30 for p in proof.sizes)
    if name == "elman-softmax":
        assert proof.generic_sizes and all(p.holds for p in proof.generic_sizes)


@pytest.mark.parametrize("name", ["gru.rnn", "lstm.rnn", "rowmajor.rnn", "anchored.rnn"])
def test_other_cells_proved(name):
    d = derive_matrix(load_model(str(DATA / name)))
    sizes = {k: v for k, v in {"H": 2, "F": 1, "O": 2, "T": 3, "B": 2}.items() if k in d.model.sizes}
    proof = prove_at(d, sizes)
    assert proof.holds, [(l.name, l.failures[:3]) for l in proof.lines if l.failures]


def test_a_wrong_recurrence_fails_the_proof():
    """Drop the recurrent term of dL/dh_t: the proof must say so."""
    d = derive_matrix(load_model("elman-softmax"))
    adj = d.adjoints["h_t"]
    adj.terms = [t for t in adj.terms if "z_{t+1}" not in show(t.expr)]
    proof = prove_at(d, default_proof_sizes(d.model)[0])
    assert not proof.holds
    assert [l.name for l in proof.lines if l.failures] == ["h_t"]


def test_exact_derivation_grows_linearly_in_T():
    m = load_model("elman-softmax")
    counts = [len(unroll(m, {"H": 2, "F": 2, "O": 3, "T": T}).assignments) for T in (5, 10, 20)]
    assert counts[1] - counts[0] == (counts[2] - counts[1]) / 2


def concrete(shape, sizes):
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_generated_code_matches_complex_step(name):
    sizes = CELLS[name]
    model = load_model(name)
    module = import_source(generate_module(model, derive_matrix(model)))
    params = random_params({s.name: concrete(s.shape, sizes) for s in model.params}, seed=3)
    data = random_data(model, module, sizes, seed=3)
    loss, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
    assert np.isclose(loss, module.loss(params, data), rtol=1e-14)
    reference = {n: complex_step(module.loss, params, data, n) for n in params}
    for row in compare_gradients(reference, {n: grads[n] for n in params}):
        assert row.max_rel_error < 1e-10, (row.name, row.max_rel_error)
    # dL/dh_0 through the data dict, by complex step on the initial state
    for state in model.states:
        key = state.base + "_0"
        h0 = data[key]
        fd = np.zeros_like(h0)
        for idx in np.ndindex(h0.shape):
            bumped = dict(data)
            z = h0.astype(complex)
            z[idx] += 1e-30j
            bumped[key] = z
            fd[idx] = np.imag(module.loss(params, bumped)) / 1e-30
        assert np.allclose(grads[key], fd, rtol=1e-10, atol=1e-14)


def test_generated_code_interface():
    model = load_model("elman-regression")
    source = generate_module(model, derive_matrix(model))
    assert source == generate_module(load_model("elman-regression"), derive_matrix(model))
    assert "import numpy as np" in source and "sympy" not in source
    assert "# (1) z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h" in source
    module = import_source(source)
    sizes = {"H": 3, "F": 1, "O": 1, "T": 4, "B": 6}
    params = random_params({s.name: concrete(s.shape, sizes) for s in model.params}, seed=0)
    data = random_data(model, module, sizes, seed=0)
    loss32, grads32 = module.loss_and_gradients({k: v.astype(np.float32) for k, v in params.items()},
                                                {k: v.astype(np.float32) for k, v in data.items()})
    assert grads32["W_hh"].dtype == np.float32
    _, grads = module.loss_and_gradients(params, data)
    assert set(grads) == {"W_hh", "W_xh", "b_h", "W_hy", "b_y"}
    assert all(grads[k].shape == params[k].shape for k in params)
    bad = dict(params, W_hh=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"params\[.W_hh.\] has shape \(3, 4\); expected \(H, H\) = \(3, 3\)"):
        module.loss(bad, data)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_generated_code_passes_ruff(tmp_path):
    for name in CELLS:
        model = load_model(name)
        stem = model.name.replace('-', '_')
        (tmp_path / f"{stem}.py").write_text(generate_module(model, derive_matrix(model)))
        (tmp_path / f"{stem}_fast.py").write_text(generate_fast_module(model, derive_matrix(model)))
    run = subprocess.run(["ruff", "check", "--no-cache", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_verify_json(capsys):
    assert main(["verify", "elman-softmax", "--seed", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["seed"] == 4
    checks = {(r["check"], r["parameter"]) for r in doc["rows"]}
    assert ("hand", "W_hh") in checks and ("complex", "b_y") in checks and ("exact", "W_hy") in checks
    hand = [r for r in doc["rows"] if r["check"] == "hand"]
    assert max(r["max_rel_error"] for r in hand) <= 1e-12
    assert max(r["max_rel_error"] for r in doc["rows"] if r["check"] == "complex") <= 1e-10


def test_cli_verify_regression_small_batch(capsys):
    assert main(["verify", "elman-regression", "--size", "B=40,H=8", "--entries", "all"]) == 0
    out = capsys.readouterr().out
    assert "vs hand BPTT" in out and "result: all checks agree" in out


def test_verify_fewer_complex_step_entries():
    from derive.verify.run import verify
    model = load_model("elman-regression")
    sizes = {"H": 6, "F": 2, "O": 2, "T": 3, "B": 4}
    result = verify(model, derive_matrix(model), sizes, seed=1, entries=6, complex_entries=2)
    count = {(r.check, r.parameter): r.entries for r in result.rows}
    assert count[("central", "W_hh")] == 6 and count[("complex", "W_hh")] == 2
    assert count[("complex", "b_y")] == 2 and result.passed
    assert result.forward_passes["complex step"] == 2 * 7  # 5 parameters, h_0 and the input x
    assert "complex step at 2 of them" in result.notes[-1]


def test_verify_same_results_on_one_or_two_workers(monkeypatch):
    # the checks run two at a time where there are two cores: the errors, counts and their
    # order must not depend on it
    import derive.verify.run as verify_module
    model = load_model("elman-regression")
    sizes = {"H": 5, "F": 2, "O": 3, "T": 4, "B": 6}
    monkeypatch.setattr(verify_module.os, "cpu_count", lambda: 2)
    two = verify_module.verify(model, derive_matrix(model), sizes, seed=2, entries=8)
    monkeypatch.setattr(verify_module.os, "cpu_count", lambda: 1)
    one = verify_module.verify(model, derive_matrix(model), sizes, seed=2, entries=8)
    if verify_module.threadpool_limits is not None:  # installed with the package
        assert "all checks, two at a time" in two.seconds
    assert "all checks" in one.seconds
    assert one.rows == two.rows and one.directions == two.directions
    assert one.forward_passes == two.forward_passes and list(one.forward_passes) == [
        "complex step", "central differences", "random directions"]
    assert two.passed
    monkeypatch.setattr(verify_module, "threadpool_limits", None)  # not installed: one by one, said
    serial = verify_module.verify(model, derive_matrix(model), sizes, seed=2, entries=8)
    assert serial.rows == two.rows and "all checks" in serial.seconds
    assert "threadpoolctl is not installed: the checks ran one after another" in serial.notes


def test_cli_show_and_code(tmp_path, capsys):
    assert main(["show", "elman-softmax"]) == 0
    out = capsys.readouterr().out
    assert "dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}" in out
    assert "result: proved at every size above" in out and "H=2, F=3, O=4, T=3" in out
    target = tmp_path / "m.py"
    assert main(["code", "elman-softmax", "-o", str(target)]) == 0
    first = target.read_bytes()
    assert main(["code", "elman-softmax", "-o", str(target)]) == 0
    assert target.read_bytes() == first
    assert main(["models"]) == 0
    assert "elman-regression" in capsys.readouterr().out
