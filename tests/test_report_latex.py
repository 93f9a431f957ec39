"""The LaTeX printer and escaping behind ``derive report`` (no TeX needed)."""

from derive.model.build import load_model, load_text
from derive.notation.expr import Adj, Binary, Num, Ref, Step, Unary
from derive.report.claims_check import is_claims_file
from derive.report.code_section import code_index
from derive.report.latex import ascii_fold, escape_text, fmt_sci, latex, name_math

T = Step("rel", 0)


def test_escape_text_specials():
    text = escape_text("a_b \\ {x} ^ & % $ # ~ < > |")
    tt = r"{\ttfamily\char%d}"
    expected = ("a" + tt % 95 + "b " + tt % 92 + " " + tt % 123 + "x" + tt % 125 + " " + tt % 94
                + r" \& \% " + tt % 36 + r" \# " + tt % 126 + " " + tt % 60 + " " + tt % 62 + " " + tt % 124)
    assert text == expected


def test_escape_text_unicode():
    assert escape_text("∂L/∂h ⋅ W") == r"$\partial$L/$\partial$h $\cdot$ W"
    assert escape_text("é") == r"\'{e}"
    assert escape_text("中") == "[U+4E2D]"
    assert ascii_fold("W ⊙ h ⋅ Σ_t") == "W * h . sum_t"


def test_name_math():
    assert name_math("W_hh") == r"W_{\mathit{hh}}"
    assert name_math("h", "t-1") == "h_{t-1}"
    assert name_math("y_true") == r"y_{\mathrm{true}}"
    assert r"\char95" in name_math("b_")
    assert r"\char95" in name_math("W_h_2x")
    assert name_math("x2_in", "t") == r"{x2}_{\mathit{in},t}"


def test_printer_operators():
    m = load_model("elman-softmax")
    assert latex(Adj("W_hh"), m) == r"\frac{\partial L}{\partial W_{\mathit{hh}}}"
    assert latex(Adj("h_t", T), m, inline=True) == r"\partial L/\partial h_{t}"
    expr = Binary("@", Unary("T", Ref("W_hh")), Adj("z_t", Step("rel", 1)))
    assert latex(expr, m) == r"W_{\mathit{hh}}^{\top} \, \frac{\partial L}{\partial z_{t+1}}"
    prod = Binary("*", Adj("h_t", T), Binary("-", Num(1), Binary("**", Ref("h_t", T), Num(2))))
    assert latex(prod, m) == r"\frac{\partial L}{\partial h_{t}} \odot \left(1 - h_{t}^{2}\right)"


def test_shapes_beneath():
    m = load_model("elman-softmax")
    text = latex(Binary("@", Ref("W_hh"), Ref("h_t", Step("rel", -1))), m, shapes=True)
    assert text == (r"\underset{\scriptscriptstyle H\times H}{W_{\mathit{hh}}} \, "
                    r"\underset{\scriptscriptstyle H\times 1}{h_{t-1}}")
    squared = latex(Binary("**", Ref("h_t", T), Num(2)), m, shapes=True)
    assert squared.startswith("{\\underset") and squared.endswith("}^{2}")


def test_fmt_sci():
    assert fmt_sci(0) == "0"
    assert fmt_sci(3.5e-8) == r"3.5\times 10^{-8}"
    assert fmt_sci(1e-12) == r"10^{-12}"


def test_code_index_ties_equations_to_lines():
    code = "x = 1\n    # (11) dL/dh_t = a\n    y = 2\n    # (11) dL/dh_t += b\n    if t + 1 <= T:\n        y += 3\n"
    assert code_index(code) == {11: [3, 6]}


def test_claims_detection(tmp_path):
    assert not is_claims_file("elman-softmax")
    notes = tmp_path / "n.claims"
    notes.write_text("model elman-softmax\nclaim dL/do_t = y_t - onehot(c_t)\n")
    assert is_claims_file(str(notes))
    assert not is_claims_file("tests/data/odd_names.rnn")


def test_odd_names_load():
    m = load_model("tests/data/odd_names.rnn")
    assert {"W_h_2x", "W_in__x", "b_", "y_true_"} <= set(m.symbols)
    assert load_text("size H = 2\nparam w_ : H x 1\nL = sum(w_)\n", "<t>").symbols["w_"]
