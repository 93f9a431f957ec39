"""``derive against``: correct implementations pass, bad input is exit 2 with a clear message, the outputs."""

import json
import os
import textwrap

import numpy as np
import pytest

from derive.against.cases import read_text_array, text_of_array
from derive.against.command import Options, Reference, against_callable
from derive.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "against")
EXAMPLE = os.path.join(ROOT, "examples", "against", "elman_softmax.py")


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


CORRECT = [
    ("elman-softmax", EXAMPLE + ":loss_and_gradients", None, ""),
    ("elman-softmax", "derive.numeric.bptt:elman_softmax_loss_and_gradients", None, ""),
    ("elman-regression", "derive.numeric.bptt:elman_regression_loss_and_gradients", None, "H=6,B=5,T=5"),
    ("elman-regression", os.path.join(DATA, "elman_regression.py") + ":loss_and_gradients", None, "H=6,B=5,T=5"),
    ("elman-regression", os.path.join(DATA, "elman_regression_rows.py") + ":loss_and_gradients",
     os.path.join(DATA, "rows.map"), "H=6,B=5,T=5"),
    ("elman-regression", os.path.join(DATA, "elman_regression_rows.py") + ":loss_and_gradients_batch_first",
     os.path.join(DATA, "batch_first.map"), "H=6,B=5,T=5"),
    ("tests/data/gru.rnn", os.path.join(DATA, "gru.py") + ":loss_and_gradients", None, ""),
    ("tests/data/gru.rnn", os.path.join(DATA, "gru_stacked.py") + ":loss_and_gradients",
     os.path.join(DATA, "gru_stacked.map"), "H=4,B=3,T=5"),
]


@pytest.mark.parametrize("model,impl,mapping,size", CORRECT, ids=[c[1].split(os.sep)[-1] for c in CORRECT])
@pytest.mark.parametrize("seed", [0, 7])
def test_correct_implementations_pass(model, impl, mapping, size, seed, capsys):
    argv = ["against", os.path.join(ROOT, model) if model.startswith("tests") else model, impl,
            "--seed", str(seed), "--json"]
    argv += ["--mapping", mapping] if mapping else []
    argv += ["--size", size] if size else []
    status, out, err = run(argv, capsys)
    assert status == 0, out + err
    doc = json.loads(out)
    assert doc["passed"] and doc["wrong"] == [] and doc["loss_agrees"]
    assert all(p["passed"] and p["wrong_entries"] == 0 for p in doc["parameters"])
    assert "h_0" in [p["name"] for p in doc["parameters"]]


def _buggy(tmp_path, old, new):
    text = open(EXAMPLE, encoding="utf-8").read()
    assert text.count(old) == 1
    path = tmp_path / "impl.py"
    path.write_text(text.replace(old, new))
    return f"{path}:loss_and_gradients"


def test_wrong_gradient_listing(tmp_path, capsys):
    impl = _buggy(tmp_path, "dh = W_hy.T @ do + dh_next", "dh = W_hy.T @ do")
    status, out, err = run(["against", "elman-softmax", impl, "--no-name"], capsys)
    assert status == 1
    assert "right for T = 1, wrong from T = 2: the recurrent path" in out
    assert "W_hh            16" in out and "WRONG (16 of 16 entries)" in out
    assert "W_hy            20              0              0  agrees" in out
    assert out.rstrip().endswith("result: WRONG: W_hh, W_xh, b_h, h_0")


def test_wrong_gradient_json(tmp_path, capsys):
    impl = _buggy(tmp_path, 'g["b_y"] += do.sum', 'g["b_y"] -= do.sum')
    status, out, _ = run(["against", "elman-softmax", impl, "--json", "--no-name"], capsys)
    assert status == 1
    doc = json.loads(out)
    assert doc["wrong"] == ["b_y"] and doc["status"] == 1
    row = next(p for p in doc["parameters"] if p["name"] == "b_y")
    worst = row["worst"][0]
    assert worst["yours"] == pytest.approx(-worst["derivation"])
    assert doc["sweep"]["first_wrong_of"] == {"b_y": 1}


def test_outputs_are_deterministic(tmp_path, capsys):
    impl = _buggy(tmp_path, "(1.0 - h[t] ** 2)", "(1.0 - h[t]) ** 2")
    first = run(["against", "elman-softmax", impl, "--no-name"], capsys)
    assert first == run(["against", "elman-softmax", impl, "--no-name"], capsys)


def _impl(tmp_path, body):
    path = tmp_path / "user_impl.py"
    path.write_text("import numpy as np\n" + textwrap.dedent(body))
    return f"{path}:f"


BAD = {
    "missing key": ("""
        def f(params, data):
            return 0.0, {k: np.zeros_like(v) for k, v in params.items() if k != "W_hh"}
        """, ["no key 'W_hh'", "(H, H) = (4, 4)"]),
    "wrong shape": ("""
        def f(params, data):
            g = {k: np.zeros_like(v) for k, v in params.items()}
            g["W_xh"] = np.zeros((3, 4))
            return 0.0, g
        """, ["'W_xh' has shape (3, 4)", "expected (H, F) = (4, 3)"]),
    "not finite": ("""
        def f(params, data):
            g = {k: np.zeros_like(v) for k, v in params.items()}
            g["b_y"][2, 0] = np.nan
            return 0.0, g
        """, ["'b_y' holds nan at [2, 0]"]),
    "unknown key": ("""
        def f(params, data):
            g = {k: np.zeros_like(v) for k, v in params.items()}
            g["W_oops"] = g["b_y"]
            return 0.0, g
        """, ["unknown gradient key 'W_oops'"]),
    "raises": ("""
        def helper(a):
            return a["nope"]

        def f(params, data):
            return helper(params)
        """, ["your function raised KeyError", "user_impl.py", "in helper", "KeyError: 'nope'"]),
    "import fails": ("""
        raise RuntimeError("broken at import")
        """, ["importing your module failed", "RuntimeError: broken at import"]),
    "not a dict": ("""
        def f(params, data):
            return 1.0, [1, 2]
        """, ["the answer is a list"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_answers_are_exit_2(case, tmp_path, capsys):
    body, wanted = BAD[case]
    status, out, err = run(["against", "elman-softmax", _impl(tmp_path, body)], capsys)
    assert status == 2 and out == ""
    for w in wanted:
        assert w in err, err
    assert "Traceback" not in err.split("\n")[0]
    assert os.path.join("derive", "against") not in err, "derive's own frames are never shown"


@pytest.mark.parametrize("spec,wanted", [
    ("no_colon.py", "path/to/impl.py:function"),
    ("/no/such/file.py:f", "no such file"),
    ("no_such_package_xyz.mod:f", "no module named 'no_such_package_xyz'"),
    (EXAMPLE + ":missing_function", "no function 'missing_function'"),
])
def test_bad_specs_are_exit_2(spec, wanted, capsys):
    status, _, err = run(["against", "elman-softmax", spec], capsys)
    assert status == 2 and wanted in err


@pytest.mark.parametrize("text,wanted", [
    ("layout sideways\n", ":1:8: error: layout takes one of columns, row-major, batch-first"),
    ("\nname W_zz Wzz\n", ":2:6: error: 'W_zz' is not a name of the model elman-softmax"),
    ("name W_hh A\nname W_hh B\n", ":2:6: error: W_hh is mapped twice"),
    ("stack W W_hh W_xh\n", ":1:14: error: W_xh has dims"),
    ("frobnicate x\n", ":1:1: error: unknown directive 'frobnicate'"),
    ("name W_hh 1x\n", ":1:11: error: '1x' is not a name"),
    ("name W_hh W_xh\n", "two arrays would both be called 'W_xh'"),
])
def test_mapping_errors_have_line_and_column(text, wanted, tmp_path, capsys):
    path = tmp_path / "m.map"
    path.write_text(text)
    status, _, err = run(["against", "elman-softmax", EXAMPLE + ":loss_and_gradients", "--mapping", str(path)], capsys)
    assert status == 2 and wanted in err, err


def test_one_route_only(tmp_path, capsys):
    status, _, err = run(["against", "elman-softmax"], capsys)
    assert status == 2 and "one of IMPL, --write-case DIR or --gradients DIR" in err
    status, _, err = run(["against", "elman-softmax", EXAMPLE + ":loss_and_gradients", "--gradients",
                          str(tmp_path)], capsys)
    assert status == 2


def test_text_array_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    for a in (rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 1)), np.array(2.5),
              rng.integers(0, 5, size=(4, 1))):
        path = tmp_path / "a.txt"
        path.write_text(text_of_array("a", a, "(T, F, B)"))
        back = read_text_array(str(path))
        assert back.shape == a.shape and np.array_equal(back, a)


def test_text_array_errors(tmp_path):
    from derive.errors import InputError
    path = tmp_path / "a.txt"
    path.write_text("shape 2 2\n1 2\n3 x\n")
    with pytest.raises(InputError, match="'x' is not a number") as info:
        read_text_array(str(path))
    assert (info.value.line, info.value.column) == (3, 3)
    path.write_text("shape 2 2\n1 2 3\n")
    with pytest.raises(InputError, match="holds 3 numbers, but its shape"):
        read_text_array(str(path))


def test_mapping_changes_only_the_user_side():
    ref = Reference("tests/data/gru.rnn")
    plain = against_callable(Options("tests/data/gru.rnn", impl=os.path.join(DATA, "gru.py") + ":loss_and_gradients"),
                             ref)
    stacked = against_callable(Options("tests/data/gru.rnn", impl=os.path.join(DATA, "gru_stacked.py") +
                                       ":loss_and_gradients", mapping=os.path.join(DATA, "gru_stacked.map")), ref)
    assert [r.name for r in plain.rows] == [r.name for r in stacked.rows]
    assert plain.reference_loss == stacked.reference_loss and plain.passed and stacked.passed


def _with_adjoints(tmp_path, slip=None):
    text = open(EXAMPLE, encoding="utf-8").read()
    edits = [("    dh_next = np.zeros((H, B))", "    DH, DZ = np.zeros((T, H, B)), np.zeros((T, H, B))\n"
              "    dh_next = np.zeros((H, B))"),
             ("        dz = dh * (1.0 - h[t] ** 2)            # tanh'\n",
              "        dz = dh * (1.0 - h[t] ** 2)            # tanh'\n        DH[t - 1], DZ[t - 1] = dh, dz\n"),
             ("    return loss, g", '    return loss, g, {"h": DH, "dL/dz": DZ}')]
    edits += [slip] if slip else []
    for old, new in edits:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "with_adjoints.py"
    path.write_text(text)
    return f"{path}:loss_and_gradients"


def test_adjoints_agree(tmp_path, capsys):
    status, out, _ = run(["against", "elman-softmax", _with_adjoints(tmp_path)], capsys)
    assert status == 0
    assert "adjoints: every adjoint you gave agrees (dL/dh, dL/dz)" in out


def test_first_wrong_adjoint_in_backward_order(tmp_path, capsys):
    slip = ("        g[\"W_hh\"] += dz @ h[t - 1].T\n",
            "        g[\"W_hh\"] += dz @ h[t - 1].T\n        dz = dz if t > 2 else 2 * dz\n")
    status, out, _ = run(["against", "elman-softmax", _with_adjoints(tmp_path, slip), "--json", "--no-name"], capsys)
    doc = json.loads(out)
    assert status == 1
    # dz_2 is doubled after DZ[1] was stored: the first adjoint the user got wrong is dh_1, sent back from it
    assert doc["adjoints"]["first_wrong"] == "dL/dh_1"
    assert doc["adjoints"]["agreed_before"] == ["dL/dz_3", "dL/dh_2", "dL/dz_2"]


@pytest.mark.parametrize("given,wanted", [
    ('{"h": DH[1:]}', "the adjoint 'h' has shape (3, 4, 1) (in derive's layout); expected (4, 4, 1), steps first"),
    ('{"q": DZ}', "unknown adjoint 'q'; derive has the adjoints of"),
])
def test_bad_adjoints_are_exit_2(given, wanted, tmp_path, capsys):
    impl = _with_adjoints(tmp_path, ('{"h": DH, "dL/dz": DZ}', given))
    status, _, err = run(["against", "elman-softmax", impl], capsys)
    assert status == 2 and wanted in err, err


def test_a_length_your_code_refuses_is_skipped_in_the_sweep(tmp_path, capsys):
    impl = _buggy(tmp_path, "    T, B = x.shape[0], x.shape[2]\n",
                  "    T, B = x.shape[0], x.shape[2]\n    assert T > 1, 'needs two steps'\n")
    text = (tmp_path / "impl.py").read_text().replace('g["b_y"] += do.sum', 'g["b_y"] -= do.sum')
    (tmp_path / "impl.py").write_text(text)
    status, out, _ = run(["against", "elman-softmax", impl, "--no-name"], capsys)
    assert status == 1
    assert "T = 1 skipped: your code at T = 1: your function raised AssertionError:" in out
    assert "first wrong length per parameter: b_y T = 2" in out


def test_a_user_module_may_use_dataclasses(tmp_path, capsys):
    text = open(EXAMPLE, encoding="utf-8").read()
    text = text.replace("import numpy as np\n", "import numpy as np\nfrom dataclasses import dataclass\n\n\n"
                        "@dataclass\nclass Sizes:\n    T: int\n", 1)
    path = tmp_path / "with_dataclass.py"
    path.write_text(text)
    status, out, err = run(["against", "elman-softmax", f"{path}:loss_and_gradients"], capsys)
    assert status == 0, err


def test_a_wrong_loss_is_exit_1(tmp_path, capsys):
    impl = _buggy(tmp_path, "    return loss, g", "    return loss + 1e-3, g")
    status, out, _ = run(["against", "elman-softmax", impl], capsys)
    assert status == 1
    assert "DIFFERS (the forward pass)" in out and out.rstrip().endswith("result: WRONG: the loss")


def test_sweep_sentences():
    from derive.against.localise import Sweep
    lengths = [1, 2, 3]
    recurrent = Sweep(lengths, {1: [], 2: ["W_hh"], 3: ["W_hh"]}, states=("h_0",))
    assert recurrent.summary() == "right for T = 1, wrong from T = 2: the recurrent path (through h_(t-1))"
    own = Sweep(lengths, {1: ["b_y"], 2: ["b_y"], 3: ["b_y"]}, states=("h_0",))
    assert own.summary().startswith("wrong already at T = 1: a term of each step's own path")
    lstm = Sweep(lengths, {1: [], 2: ["W_f"], 3: ["W_f"]}, states=("h_0", "c_0"))  # the path named by the states
    assert lstm.summary().endswith("the recurrent path (through h_(t-1) or c_(t-1))")
    state = Sweep(lengths, {1: ["h_0"], 2: ["h_0", "W_hh"], 3: ["h_0", "W_hh"]}, states=("h_0",))
    assert state.first_wrong == 2 and state.first_wrong_of("h_0") == 1
    assert state.summary().startswith("dL/dh_0 wrong already at T = 1, the parameters' gradients from T = 2")
    later = Sweep([1, 2, 3, 4], {1: [], 2: [], 3: ["U_n"], 4: ["U_n"]})
    assert later.summary().startswith("right for T = 1..2, wrong from T = 3")
