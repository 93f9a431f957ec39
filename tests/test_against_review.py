"""What a newcomer's trial of ``derive against`` found false or confusing, each checked as mended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from derive.against.naming import NamingResult
from derive.cli import main
from derive.report.against_section import MAX_CELLS, heat_grid

EXAMPLE = Path(__file__).parent.parent / "examples" / "against" / "elman_softmax.py"
ROWS_MAP = Path(__file__).parent / "data" / "against" / "rows.map"


def _impl(tmp_path, body: str) -> str:
    path = tmp_path / "impl.py"
    path.write_text("import sys, time\nimport numpy as np\nsys.path.insert(0, %r)\n" % str(EXAMPLE.parent) +
                    "from elman_softmax import loss_and_gradients as right\n" + body, encoding="utf-8")
    return f"{path}:fn"


def test_derives_own_time_limit_is_not_called_the_users_error(tmp_path, capsys):
    impl = _impl(tmp_path, "def fn(params, data):\n    time.sleep(1000)\n")
    assert main(["against", "elman-softmax", impl, "--seconds", "2"]) == 2
    err = capsys.readouterr().err
    assert "past the time limit of 2 s (--seconds)" in err and "your function raised" not in err


def test_what_the_users_code_prints_does_not_spoil_the_json(tmp_path, capsys):
    impl = _impl(tmp_path, "print('at import')\ndef fn(params, data):\n    print('debug')\n    return right(params, data)\n")
    assert main(["against", "elman-softmax", impl, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is True and "debug" in captured.err


def test_a_search_stopped_early_does_not_say_no_mutation_would_match():
    stopped = NamingResult([], 64, ["a missing transpose"], "the 6 s budget ran out with 138 of 215 single "
                           "mutations not yet tried", ["W_hh"])
    [text] = stopped.sentences(["W_hh"])
    assert text.startswith("none of the 64 mutated derivations tried reproduces your gradients")
    assert "no mutation" not in text and "--naming-seconds" in text
    finished = NamingResult([], 40, ["a sign"], "", ["W_hh"])
    assert finished.sentences(["W_hh"])[0].startswith("no mutation of the derivation reproduces your gradients")


def test_a_match_names_only_the_gradients_it_compared():
    # the inputs' gradients are not part of the search: a match must not claim them
    match = NamingResult([{"description": "d", "kinds": ["a sign"]}], 3, ["a sign"], "", ["W_hh", "b_h"])
    assert match.sentences(["W_hh", "b_h", "x"])[0].startswith("your dL/dW_hh, dL/db_h equal the derivation")


def test_float32_rounding_gets_a_hint(tmp_path, capsys):
    # float32 arithmetic through a few steps: relative errors of a few 1e-6 (rounding alone gives about 6e-8)
    impl = _impl(tmp_path, "def fn(params, data):\n    loss, g = right(params, data)\n"
                           "    return loss, {k: v * (1 + 3e-6) for k, v in g.items()}\n")
    assert main(["against", "elman-softmax", impl, "--no-name"]) == 1
    assert "the size of float32 rounding" in capsys.readouterr().out


def test_shapes_are_named_in_the_users_layout(tmp_path, capsys):
    path = tmp_path / "rows.py"
    path.write_text("import numpy as np\ndef fn(params, data):\n"
                    "    return {k: np.zeros((3, 3)) if k == 'Why' else np.zeros(v.shape) for k, v in params.items()}\n",
                    encoding="utf-8")
    assert main(["against", "elman-regression", f"{path}:fn", "--mapping", str(ROWS_MAP),
                 "--size", "H=4,T=3,B=2"]) == 2
    assert "the gradient 'Why' has shape (3, 3); expected (H, O) = (4, 1)" in capsys.readouterr().err


def test_a_large_gradient_is_drawn_as_blocks_holding_their_largest_error():
    err = np.zeros((50, 8317))
    err[17, 4000] = 3.0
    grid, note = heat_grid("h_0", err)
    assert max(grid.shape) <= MAX_CELLS and grid.max() == 3.0  # the one wrong entry is not averaged away
    assert "one cell per block of" in note
    steps, _ = heat_grid("x", np.ones((10, 1, 8317)))
    assert steps.ndim == 2 and max(steps.shape) <= MAX_CELLS


def test_a_forward_pass_that_starts_from_zero_is_told_so(tmp_path, capsys):
    # found on public code (a CS231n LSTM, Britz's RNNLM): their forward fixes h_0 = 0, the case draws one
    impl = _impl(tmp_path, "def fn(params, data):\n    data = dict(data)\n    data['h_0'] = np.zeros_like(data['h_0'])\n"
                           "    return right(params, data)\n")
    assert main(["against", "elman-softmax", impl, "--no-name", "--no-sweep"]) == 1
    out = capsys.readouterr().out
    assert "your loss is derive's with every initial state zero (h_0)" in out and "data['h_0']" in out


def test_a_mapped_implementation_is_told_how_derives_names_and_indices_are_its_own(tmp_path, capsys):
    text = (Path(__file__).parent / "data" / "against" / "elman_regression_rows.py").read_text(encoding="utf-8")
    assert text.count("dh = dz @ Whh.T") == 1
    path = tmp_path / "rows.py"
    path.write_text(text.replace("dh = dz @ Whh.T", "dh = dz @ Whh"), encoding="utf-8")
    assert main(["against", "elman-regression", f"{path}:loss_and_gradients", "--mapping", str(ROWS_MAP),
                 "--size", "H=4,T=3,B=2"]) == 1
    out = capsys.readouterr().out
    assert "names and indices above are derive's: W_hh is your Whh" in out
    assert "row-major: a matrix's entry [i, j] above is your [j, i]" in out


def test_a_search_with_nothing_to_search_says_so():
    nothing = NamingResult([], 0, [], "the derivation itself reproduces your gradients", ["W_hh"])
    assert nothing.sentences(["x"]) == ["no slip searched: the derivation itself reproduces your gradients (dL/dW_hh)"]
