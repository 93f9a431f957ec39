"""Notes mode: finding equations in free text, and reading the notes' spellings in the claims notation."""

from __future__ import annotations

import pytest

from derive.claims.notes_read import read_notes
from derive.claims.notes_scan import scan_notes
from derive.claims.notes_spell import Speller, writes_products
from derive.errors import SourceText
from derive.model.build import load_model, load_text

AMBIGUOUS = """size H = 3, T = 2
param W_hy : H x H
param w_hy : H x H
input x_t : H x 1
state h_t : H x 1 = 0
h_t = tanh(W_hy @ h_{t-1} + w_hy @ x_t)
L = sum(h_T)
"""


@pytest.fixture(scope="module")
def regression():
    return Speller(load_model("elman-regression"), star_dot=False)


@pytest.fixture(scope="module")
def softmax():
    return Speller(load_model("elman-softmax"), star_dot=True)


@pytest.mark.parametrize("written, read", [
    ("Whh", "W_hh"), ("Why", "W_hy"), ("by", "b_y"), ("bh", "b_h"), ("W_hh", "W_hh"),
    ("h2", "h_2"), ("h0", "h_0"), ("ht", "h_t"), ("x1", "x_1"), ("h_t", "h_t"), ("h_{t-1}", "h_{t-1}"),
    ("y_true", "y_true"), ("fh", "fh"), ("y_pred", "y_pred"),
])
def test_names_are_the_models_with_underscores_removed(regression, written, read):
    regression.readings = []
    assert regression.name(written, 1) == read
    assert regression.readings == ([] if written == read else [f"{written} as {read}"])


def test_a_name_is_matched_case_aside_only_when_that_is_unambiguous():
    speller = Speller(load_text(AMBIGUOUS, "amb.rnn", "amb"), star_dot=False)
    assert speller.name("W_hy", 1) == "W_hy" and speller.name("Wxy", 1) == "Wxy"
    assert speller.name("wHY", 7) == "W_hy" and speller.choice_points == {7: ["W_hy", "w_hy"]}
    speller.choices = {7: 1}
    assert speller.name("wHY", 7) == "w_hy"
    assert any("ambiguous (W_hy or w_hy; each is tried)" in r for r in speller.readings)


@pytest.mark.parametrize("model, written, loss, fixed", [
    ("elman-regression", "L2", "L", 2), ("elman-regression", "L", "L", None), ("elman-regression", "l", "L", None),
    ("elman-softmax", "L2", "L_2", None), ("elman-softmax", "Lt", "L_t", None), ("elman-softmax", "L_t", "L_t", None),
    ("elman-softmax", "h2", None, None),
])
def test_the_loss_at_a_step(model, written, loss, fixed):
    assert Speller(load_model(model), star_dot=False).loss(written, 1) == (loss, fixed)


@pytest.mark.parametrize("written, read", [
    ("y_t - one_hot(c)", "y_t - onehot(c)"),
    ("1 - tanh^2(z_t)", "1 - tanh(z_t)**2"),
    ("1 - tanh²(z_t)", "1 - tanh(z_t)**2"),
    ("1 - h_t^2", "1 - h_t**2"),
    ("1 - h_t²", "1 - h_t**2"),
    ("W_hy^T", "W_hy^T"),
    ("squared(1 - h2) ⋅ transpose(h1)", "squared(1 - h_2) ⋅ transpose(h_1)"),
    ("matmul(Whh, h1)", "(W_hh @ h_1)"),
    ("matmul(Whh + Wxh, matmul(Why, h1))", "((W_hh + W_xh) @ (W_hy @ h_1))"),
    ("sum t from 1 to 2 dL2/dht", "sum_{t=1}^{2} dL/dh_t"),
    ("transpose(ht-1)", "transpose(h_{t-1})"),
    ("ht - 1", "h_t - 1"),
])
def test_expressions_in_the_notation(regression, written, read):
    regression.readings = []
    assert regression.spell(written, 5).text == read


def test_every_character_keeps_its_notes_column(regression):
    spelled = regression.spell("dL2/dy ⋅ Why", 11)
    assert spelled.text == "dL/dy ⋅ W_hy"
    assert len(spelled.cols) == len(spelled.text)
    assert spelled.cols[spelled.text.index("⋅")] == 11 + "dL2/dy ⋅ Why".index("⋅")
    assert set(spelled.cols[spelled.text.index("W_hy"):]) <= set(range(11 + 9, 11 + 12))


def test_star_is_either_product_only_when_the_notes_write_no_other(softmax, regression):
    assert softmax.spell("(y_t - one_hot(c)) * W_hy.T", 1).text == "(y_t - onehot(c)) ⋅ W_hy.T"
    assert regression.spell("dL/dh_t * (1 - h_t**2)", 1).text == "dL/dh_t * (1 - h_t**2)"
    assert not writes_products(["a * b", "c*d"])
    assert writes_products(["a * b", "c @ d"]) and writes_products(["matmul(a, b)"]) and writes_products(["a ⋅ b"])


def test_jacobians_are_found_and_a_where_definition_replaces_one(regression):
    regression.readings = []
    plain = regression.spell("dL2/dy ⋅ dy/dh2", 1)
    assert plain.jacobians == [("dy/dh2", 10)]
    regression.readings = []
    defs = {"dy/dh_2": regression.spell("Why", 30)}
    used = regression.spell("dL2/dy ⋅ dy/dh2", 1, defs)
    assert used.text == "dL/dy ⋅ W_hy" and not used.jacobians
    assert "dy/dh2 as W_hy, which its where clause defines" in regression.readings
    sums = {"dy/dh_2": regression.spell("Why + Whh", 30)}
    assert regression.spell("dL2/dy ⋅ dy/dh2", 1, sums).text == "dL/dy ⋅ (W_hy + W_hh)"


def test_a_case_by_case_definition_is_a_problem(softmax):
    assert softmax.spell("{  -1/y_t[c]   if i = c (correct class)", 1).problems


def test_scanning_a_line():
    lines = [
        "Prose without a derivative, = signs and all: x = 1",
        "**∂L_t/∂W_hy** = (y_t - one_hot(c)) * h_t.T, ",
        "Thus, dL2/dWhh (t = 1) = dL2/dh1 ⋅ h1/dWhh where dh1/dWhh = squared(1 - h1) ⋅ transpose(h0).",
        "∂L_t/∂W_hh =  ∂L_t/∂z_t * h_{t-1}.T, ∂L_t/∂bh =  ∂L_t/∂z_t",
        "∂L_t/∂o_t = ∂L_t/∂y_t * ∂y_t/∂o_t = y_t - one_hot(c)",
        "dl_d_y = (O, B)  d_y_d_w = (B, H)",
        "∂y_t/∂o_t? This simplifies to below",
        "we write matmul(dL/dW, x) here",
    ]
    found, mentions = scan_notes(lines)
    assert [(f.line, f.lhs.text, f.lhs.col) for f in found] == [
        (2, "∂L_t/∂W_hy", 3), (3, "dL2/dWhh", 7), (4, "∂L_t/∂W_hh", 1), (4, "∂L_t/∂bh", 38),
        (5, "∂L_t/∂o_t", 1), (6, "dl_d_y", 1), (6, "d_y_d_w", 18)]
    assert found[0].parts[0].text == "(y_t - one_hot(c)) * h_t.T"
    thus = found[1]
    assert thus.lead == "Thus," and thus.use.text == "(t = 1)" and thus.parts[0].text == "dL2/dh1 ⋅ h1/dWhh"
    assert [(d.text, r.text) for d, r in thus.where] == [("dh1/dWhh", "squared(1 - h1) ⋅ transpose(h0)")]
    assert [p.text for p in found[4].parts] == ["∂L_t/∂y_t * ∂y_t/∂o_t", "y_t - one_hot(c)"]
    assert found[5].spelled_as_name and found[5].parts[0].text == "(O, B)"
    assert [(m.line, m.col) for m in mentions] == [(7, 1), (8, 17)]


def test_restating_thus_carries_the_step_of_use():
    notes = SourceText("dL2/dWhh (t = 1) = dL2/dh1 ⋅ squared(1 - h1) ⋅ transpose(h0)\n"
                       "Thus, dL2/dWhh = dL2/dh1 ⋅ squared(1 - h1) ⋅ transpose(h0)\n"
                       "dL2/dWhh = dL2/dh1 ⋅ squared(1 - h1) ⋅ transpose(h0)\n", "n.txt")
    read = read_notes(notes, load_model("elman-regression"))
    texts = [c.text for c in read.claims_file.claims]
    assert texts[0] == texts[1] == "dL/dW_hh (t = 1) = dL/dh_1 ⋅ squared(1 - h_1) ⋅ transpose(h_0)"
    assert texts[2] == "dL/dW_hh = dL/dh_1 ⋅ squared(1 - h_1) ⋅ transpose(h_0)"
    assert read.claims_file.model.sizes["T"] == 2 and all(c.fixed_T for c in read.claims_file.claims)


def test_positions_in_a_claim_point_into_the_notes():
    line = "   Hence dL2/dh2 = dL2/dy ⋅ Why"
    claim = read_notes(SourceText(f"\n{line}\n", "n.txt"), load_model("elman-regression")).claims_file.claims[0]
    assert (claim.line, claim.column) == (2, line.index("dL2") + 1)
    assert claim.rhs.pos == (2, line.index("⋅") + 1)  # the product, where the notes write it


def test_an_ambiguous_name_is_a_claim_for_each_reading():
    notes = SourceText("dL/dWHY = 0\n", "n.txt")
    read = read_notes(notes, load_text(AMBIGUOUS, "amb.rnn", "amb"))
    assert [c.text for c in read.claims_file.claims] == ["dL/dW_hy = 0", "dL/dw_hy = 0"]
    assert all("ambiguous" in n.readings[0] for n in read.notes)
