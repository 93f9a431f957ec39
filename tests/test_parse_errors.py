"""Malformed model files: each names the right line and column, exits 2, writes nothing."""

import pytest

from derive.model.build import load_text
from derive.cli import main
from derive.errors import InputError

GOOD = """size H = 2, F = 1, T = 3
param W : H x H
param U : H x F
input x_t : F x 1
state h_t : H x 1 = 0
h_t = tanh(W @ h_{t-1} + U @ x_t)
L = sum(h_T)
"""

# (text, line, column, words the message must contain)
CASES = [
    ("size H = 2\nparam W : H x H\nL = sum(W @ )\n", 3, 13, "expected an expression"),
    ("size H = 2\nparam W : H x Q\nL = sum(W)\n", 2, 15, "unknown size 'Q'"),
    ("size H = 2\nparam W : H x H\nL = sum(V)\n", 3, 9, "unknown symbol 'V'"),
    ("size H = 2, F = 3\nparam W : H x H\nparam U : H x F\nL = sum(W @ U.T)\n", 4, 11, "inner dimensions H and F"),
    ("size H = 2\nparam W : H x H\nL = sum(W $ W)\n", 3, 11, "unexpected character '$'"),
    ("size H = 2\nparam W : H x H\nL = sum(W @ W\n", 3, 14, "expected ')'"),
    ("size H = 2\nparam W : H x H\nL = frobnicate(W)\n", 3, 5, "unknown function 'frobnicate'"),
    ("size H = 2\nparam W : H x H\nL = sum(W W)\n", 3, 11, "expected an operator"),
    ("size H = 2, T = 2\nparam W : H x H\nz_t = W @ z_{t-1}\nL = sum_t sum(z_t)\n", 3, 11, "needs a value before step 1"),
    ("size H = 2, T = 2\nparam W : H x H\nstate h_t : H x 1 = 0\nh_t = tanh(W @ h_{t+1})\nL = sum(h_T)\n", 4, 16, "looks ahead"),
    ("size H = 2\nparam W : H x H\nparam W : H x H\nL = sum(W)\n", 3, 7, "declared twice"),
    ("size H = 2\nparam W : H x H\nL = W\n", 3, 1, "must be 1 x 1"),
    ("size H = 2, T = 2\nparam W : H x H\nstate h_t : H x 1 = 0\nh_t = tanh(W @ h_{t-1})\nL = sum(h_t)\n", 5, 9, "global equation"),
    ("size H = 2\nparam W : H x 2x\n", 2, 16, "unexpected 'x'"),
    ("size H = 2\nparam W : H x2\n", 2, 13, "space on each side"),
    ("size H = 2\nparam W : H x H\nL = sum(W)\nL = sum(W)\n", 4, 1, "two equations"),
    ("size H = 2\nparam W : H x H\nL = sum(W_{t-x})\n", 3, 12, "cannot read the step subscript"),
    ("size H = 2\nparam W : H x H\nL = sum(W_{t-1)\n", 3, 11, "unclosed subscript"),
    ("size H = 0\n", 1, 10, "at least 1"),
    ("size H = 2, T = 3\nparam W : H x H\nstate h_t : H x 1 = 0\nh_t = tanh(W @ h_T)\nL = sum(h_T)\n", 4, 16,
     "not computed yet"),
    ("size H = 2, O = 3, T = 2\nparam W : O x H\ntarget c_t : class O\nL_t = c_t\nL = sum_t L_t\n", 4, 7, "holds class numbers"),
    (GOOD.replace("L = sum(h_T)", "bptt_truncate = 4\nL = sum(h_T)"), 7, 1, "not supported: truncated BPTT"),
]


def test_good_model_parses():
    model = load_text(GOOD, "good.rnn")
    assert [eq.name for eq in model.equations] == ["h_t", "L"]


@pytest.mark.parametrize("text,line,column,words", CASES)
def test_error_position(text, line, column, words):
    with pytest.raises(InputError) as info:
        load_text(text, "bad.rnn")
    err = info.value
    assert (err.line, err.column) == (line, column), err.format()
    assert words in err.message
    shown = err.format().splitlines()
    assert shown[0].startswith(f"bad.rnn:{line}:{column}: error:")
    assert shown[2].index("^") - 4 == column - 1  # the caret sits under the column


def test_cli_exit_status_2_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.rnn"
    bad.write_text(CASES[0][0])
    out = tmp_path / "out.py"
    assert main(["code", str(bad), "-o", str(out)]) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]
    err = capsys.readouterr().err
    assert "bad.rnn:3:13: error" in err and "^" in err


def test_missing_file_is_input_error(capsys):
    assert main(["show", "no/such/model.rnn", "--no-proof"]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_bad_size_option(capsys):
    assert main(["verify", "elman-softmax", "--size", "H=x"]) == 2
    assert "--size" in capsys.readouterr().err
