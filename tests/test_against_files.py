"""The file route of ``derive against``: the case directory, the C++ example, answers read back, bad directories."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from derive.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPP = os.path.join(ROOT, "examples", "against", "elman_softmax.cpp")
COMPILER = shutil.which("c++") or shutil.which("g++")


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_case_directory_layout(tmp_path, capsys):
    case = tmp_path / "case"
    status, out, err = run(["against", "elman-softmax", "--write-case", str(case), "--seed", "3",
                            "--sweep-cases"], capsys)
    assert status == 0 and "wrote" in err
    assert sorted(os.listdir(case)) == ["case.npz", "case.txt", "data", "params", "sweep"]
    assert sorted(os.listdir(case / "params")) == ["W_hh.txt", "W_hy.txt", "W_xh.txt", "b_h.txt", "b_y.txt"]
    assert sorted(os.listdir(case / "data")) == ["c.txt", "h_0.txt", "x.txt"]
    assert sorted(os.listdir(case / "sweep")) == ["T1", "T2", "T3"]
    assert (case / "case.txt").read_text().splitlines()[:3] == ["model elman-softmax", "seed 3", "size H 4"]
    x = (case / "data" / "x.txt").read_text().splitlines()
    assert x[:2] == ["# x (T, F, 1)", "shape 4 3 1"]
    with np.load(case / "case.npz") as z:
        assert z["data.x"].shape == (4, 3, 1) and z["param.W_hh"].shape == (4, 4)
        assert np.array_equal(np.load(case / "sweep" / "T2" / "case.npz")["data.x"], z["data.x"][:2])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".derive-case-")]


def test_write_case_refuses_a_full_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    status, _, err = run(["against", "elman-softmax", "--write-case", str(tmp_path)], capsys)
    assert status == 2 and "exists and is not empty" in err
    assert os.listdir(tmp_path) == ["keep.txt"]


def _answer(case, grads, loss):
    os.mkdir(case / "gradients")
    for k, v in grads.items():
        (case / "gradients" / f"{k}.txt").write_text(f"shape {' '.join(map(str, v.shape))}\n" +
                                                     " ".join(repr(float(a)) for a in v.reshape(-1)))
    (case / "loss.txt").write_text(repr(float(loss)))


def test_gradients_read_back_without_running_anything(tmp_path, capsys):
    from derive.numeric import elman_softmax_loss_and_gradients
    case = tmp_path / "case"
    run(["against", "elman-softmax", "--write-case", str(case)], capsys)
    with np.load(case / "case.npz") as z:
        params = {k[6:]: z[k] for k in z.files if k.startswith("param.")}
        data = {k[5:]: z[k] for k in z.files if k.startswith("data.")}
    loss, grads = elman_softmax_loss_and_gradients(params, data)
    grads = dict(grads)
    grads["W_xh"] = grads["W_xh"] * 1.001
    _answer(case, grads, loss)
    status, out, _ = run(["against", "elman-softmax", "--gradients", str(case), "--json", "--no-name"], capsys)
    doc = json.loads(out)
    assert status == 1 and doc["wrong"] == ["W_xh"] and doc["sweep"] is None
    assert any("--sweep-cases" in n for n in doc["notes"])


def test_a_changed_case_is_refused(tmp_path, capsys):
    case = tmp_path / "case"
    run(["against", "elman-softmax", "--write-case", str(case)], capsys)
    status, _, err = run(["against", "elman-softmax", "--gradients", str(case), "--seed", "0", "--size", "T=3"],
                         capsys)
    assert status == 2 and "no gradients.npz" in err
    np.savez(case / "case.npz", **{"param.W_hh": np.zeros((4, 4))})
    status, _, err = run(["against", "elman-softmax", "--gradients", str(case)], capsys)
    assert status == 2 and "is not the one written" in err


def test_not_a_case_directory(tmp_path, capsys):
    status, _, err = run(["against", "elman-softmax", "--gradients", str(tmp_path)], capsys)
    assert status == 2 and "not a case directory" in err


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler (c++ or g++) on PATH: the C++ example is not built")
def test_cpp_example_agrees(tmp_path, capsys):
    exe = tmp_path / "elman_softmax"
    subprocess.run([COMPILER, "-O1", "-std=c++17", "-o", str(exe), CPP], check=True, timeout=300)
    case = tmp_path / "case"
    assert run(["against", "elman-softmax", "--write-case", str(case), "--size", "H=6,T=5", "--seed", "2",
                "--sweep-cases"], capsys)[0] == 0
    for d in [case] + [case / "sweep" / t for t in sorted(os.listdir(case / "sweep"))]:
        subprocess.run([str(exe), str(d)], check=True, timeout=60)
    status, out, err = run(["against", "elman-softmax", "--gradients", str(case)], capsys)
    assert status == 0, out + err
    assert "result: AGREES" in out and "loss: yours" in out


def test_sweep_cases_without_answers_are_skipped(tmp_path, capsys):
    from derive.numeric import elman_softmax_loss_and_gradients
    case = tmp_path / "case"
    run(["against", "elman-softmax", "--write-case", str(case), "--sweep-cases"], capsys)
    with np.load(case / "case.npz") as z:
        params = {k[6:]: z[k] for k in z.files if k.startswith("param.")}
        data = {k[5:]: z[k] for k in z.files if k.startswith("data.")}
    loss, grads = elman_softmax_loss_and_gradients(params, data)
    grads = dict(grads)
    grads["b_y"] = -grads["b_y"]
    _answer(case, grads, loss)
    status, out, _ = run(["against", "elman-softmax", "--gradients", str(case), "--no-name"], capsys)
    assert status == 1
    assert "T = 1 skipped: your code at T = 1: no gradients.npz and no gradients/ folder" in out
    assert "steps: wrong at T = 4; no shorter length could be compared" in out
