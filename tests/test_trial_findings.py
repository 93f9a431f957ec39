"""What a newcomer's and a hostile trial of stacks and slices found, each mended and kept mended.

Every model here was written for the trial, not for the feature: a slice whose gradient is a
constant, a class count that only a sum of sizes holds, a mask of two constants, a pick by a size in
a claim, a stack of one operand, a state's line at t = 0, and claims left undecided.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from derive.claims.listing import summary_line
from derive.cli import main
from derive.model.build import load_text
from derive.model.sizes import constant_sizes
from derive.report.run import build_report

STATE_ONLY = """size H = 3, T = 2
param b : H x 1
state h_t : H x 1 = 0
h_t = tanh(b + h_{t-1})
"""

MODELS = {
    "slice of the last state": STATE_ONLY + "L = sum(h_T[0:1])\n",
    "slice of a 1 x 1 sum": STATE_ONLY + "L = sum_t sum(h_t)[0:1]\n",
    "a class count only a sum holds": """size F = 2, O = 1, B = 2, T = 3
input x_t : F x B
target x1_t : (O + F) x B
target c_t : class O x B
o_t = x1_t[0:O]
y_t = softmax(o_t)
L_t = -sum(log(y_t[c_t]))
L = sum_t L_t / B
""",
    "a mask of two constants": """size H = 2, F = 2, T = 2
param W : H x H
param U : H x F
input x_t : F x 1
state h_t : H x 1 = 0
h_t = tanh(W @ h_{t-1} + U @ x_t)
L = sum(h_T) * (1 > 0)
""",
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_verify_agrees_where_the_module_used_to_raise(name, tmp_path, capsys):
    path = tmp_path / "m.rnn"
    path.write_text(MODELS[name])
    assert main(["verify", str(path)]) == 0
    assert "result: all checks agree" in capsys.readouterr().out


def test_T_is_a_constant_when_no_input_or_target_has_steps():
    # the module cannot read T off its arrays, so the proof and verify must use the declared T
    assert constant_sizes(load_text(MODELS["slice of the last state"], "m.rnn")) == {"T": 2}
    assert "T" not in constant_sizes(load_text(MODELS["a mask of two constants"], "m.rnn"))


def test_a_pick_by_a_size_in_a_claim_is_a_shape_verdict(tmp_path, capsys):
    path = tmp_path / "c.claims"
    path.write_text("model elman-softmax\nclaim dL/dh_t = (h_t)[H]\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "SHAPE" in out and "only a class target can index a matrix" in out


@pytest.mark.parametrize("stack", ["[x_t]", "[x_t, h_{t-1}]", "[[x_t; h_{t-1}]]"])
def test_a_stack_without_a_semicolon_says_what_a_stack_is(stack, tmp_path, capsys):
    path = tmp_path / "m.rnn"
    path.write_text("size H = 2, F = 2, T = 2\nparam W : H x (F + H)\nparam b : H x 1\ninput x_t : F x 1\n"
                    f"state h_t : H x 1 = 0\nh_t = tanh(W @ {stack} + b)\nL = sum(h_T)\n")
    assert main(["show", str(path), "--no-proof"]) == 2
    err = capsys.readouterr().err
    assert "m.rnn:6:17: error: a '[' that starts an operand is a stack of two or more matrices" in err
    assert "Iverson bracket such as [t = T]; found" in err


def test_a_states_line_copied_from_show_says_the_truth_at_t_0(tmp_path, capsys):
    (tmp_path / "plain.rnn").write_text("""size F = 3, H = 2, T = 3, B = 2
param Wx : H x F
param Wh : H x H
param b : H x 1
param V : 1 x H
input x_t : F x B
state h_t : H x B = 0
h_t = tanh(Wx @ x_t + Wh @ h_{t-1} + b)
L = sum_t sum(V @ h_t)
""")
    (tmp_path / "plain.claims").write_text(
        "model plain.rnn\nclaim dL/dh_t = V.T @ ones_like(V @ h_t) + Wh.T @ (dL/dh_{t+1} * (1 - h_{t+1}**2))\n")
    assert main(["check", str(tmp_path / "plain.claims")]) == 1
    out = capsys.readouterr().out
    assert "step t = 0" in out
    assert "for t = 1..T; at t = 0, dL/dh_0 = Wh.T @ (dL/dh_1 * (1 - h_1**2))" in out


def _results(*verdicts):
    return [SimpleNamespace(verdict=v) for v in verdicts]


def test_undecided_claims_are_not_counted_among_those_that_do_not_hold():
    line = summary_line(_results("holds", "holds", "holds", "wrong", "wrong", "undecided", "undecided"))
    assert line.endswith("(2 of 7 do not hold, 2 undecided)")
    assert summary_line(_results("holds", "undecided")).endswith("(1 of 2 undecided)")
    assert summary_line(_results("holds", "error")).endswith("(1 of 2 do not hold)")


def test_the_report_names_the_stack_and_slice_rules_and_no_hand_bptt_it_lacks(tmp_path):
    (tmp_path / "m.rnn").write_text("""size H = 2, F = 2, T = 2
param W : 2*H x (F + H)
param b : 2*H x 1
input x_t : F x 1
state h_t : H x 1 = 0
a_t = W @ [x_t; h_{t-1}] + b
h_t = tanh(a_t[0:H]) * sigmoid(a_t[H:2*H])
L = sum(h_T)
""")
    tex = build_report(str(tmp_path / "m.rnn"), allow_model_path=True).tex
    assert "R14" in tex and "R15" in tex and "row stack" in tex  # in the table of rules
    assert re.search(r"by R[0-9R, ]*R14", tex) and re.search(r"by R[0-9R, ]*R15", tex)  # and cited in the steps
    assert "hand-written BPTT (Sections" not in tex
    assert "complex step, finite differences and the exact derivation (Sections" in tex
    builtin = build_report("elman-softmax").tex
    assert "and an independent hand-written BPTT (Sections" in builtin


def test_a_shape_error_names_the_array_that_fixed_the_size():
    import numpy as np

    from derive.calculus.matrix import derive_matrix
    from derive.emit.loader import import_source
    from derive.emit.readable import generate_module

    model = load_text("""size H = 3, T = 2
param W : 2*H x H
param b : 2*H x 1
state h_t : H x 1 = 0
a_t = W @ h_{t-1} + b
h_t = tanh(a_t[0:H]) * sigmoid(a_t[H:2*H])
L = sum(h_T)
""", "m.rnn")
    module = import_source(generate_module(model, derive_matrix(model)), "m")
    params = {"W": np.ones((7, 3)), "b": np.ones((6, 1))}  # W's 7 rows are the wrong ones
    with pytest.raises(ValueError, match=r"params\['b'\] has shape \(6, 1\); expected \(2\*H, 1\) = \(7, 1\) "
                                         r"\(2\*H = 7, as params\['W'\] gave it\)"):
        module.loss(params, {"h_0": np.zeros((3, 1))})
