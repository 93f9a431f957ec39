"""One test per VJP rule: the matrix rule equals SymPy's scalar diff, entry by entry.

Each case is a one-equation model ``Y = <primitive>``, ``L = sum(Q * Y)``
with a free input ``Q``, so the adjoint reaching the primitive is generic.
"""

import pytest

from derive.model.build import load_text
from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import prove_at
from derive.calculus.rules import MODEL_RULES, VJP

HEADER = """size H = 2, K = 3
param A : H x K
param B : H x 1
param C : K x H
param S : 1 x 1
target c : class H x K
"""

# rule -> (equation for Y, shape of Y)
CASES = {
    "+": ("A + B", "H x K"),
    "-": ("A - B", "H x K"),
    "*": ("A * B", "H x K"),
    "/": ("A / (B * B + 1)", "H x K"),
    "@": ("A @ C", "H x H"),
    "**": ("A ** 3", "H x K"),
    "neg": ("-A", "H x K"),
    "T": ("A.T", "K x H"),
    "tanh": ("tanh(A)", "H x K"),
    "sigmoid": ("sigmoid(A)", "H x K"),
    "relu": ("relu(A)", "H x K"),
    "exp": ("exp(A)", "H x K"),
    "log": ("log(A * A + 1)", "H x K"),
    "softmax": ("softmax(A)", "H x K"),
    "sum": ("sum(A) * S", "1 x 1"),
    "mean": ("mean(A)", "1 x 1"),
    "rowsum": ("rowsum(A)", "H x 1"),
    "colsum": ("colsum(A)", "1 x K"),
    "pick": ("exp(A)[c]", "1 x K"),
    "onehot": ("onehot(c) * A", "H x K"),
    "ones_like": ("ones_like(A) * S", "H x K"),
    "stack": ("[A; C.T * S]", "2*H x K"),
    "slice": ("tanh([A; C.T])[H:2*H, :] + [A; C.T].T[:, 0:H].T * S", "H x K"),
}


def model_for(rule):
    expr, shape = CASES[rule]
    text = HEADER + f"input Q : {shape}\nY = {expr}\nL = sum(Q * Y)\n"
    return load_text(text, f"rule-{rule}.rnn")


def test_every_rule_has_a_case():
    assert {key[0] for key in VJP} | set(MODEL_RULES) == set(CASES) | {"step"}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_proved(rule):
    model = model_for(rule)
    derivation = derive_matrix(model)
    proof = prove_at(derivation, {"H": 2, "K": 3}, seed=1)
    assert proof.holds, [line.failures for line in proof.lines]
    assert proof.witness_max_rel < 1e-30
    assert sum(line.entries for line in proof.lines) >= 6


def test_wrong_rule_is_caught(monkeypatch):
    """A tanh rule with (1 - h)**2 in place of 1 - h**2 must fail the proof."""
    from derive.calculus import rules
    from derive.notation.expr import ONE, Binary, Num
    wrong = dict(rules.VJP)
    wrong[("tanh",)] = lambda n, G, out: (Binary("*", G, Binary("**", Binary("-", ONE, out), Num(2))),)
    monkeypatch.setattr(rules, "VJP", wrong)
    derivation = derive_matrix(model_for("tanh"))
    proof = prove_at(derivation, {"H": 2, "K": 3}, seed=1)
    assert not proof.holds
    failing = [line.name for line in proof.lines if line.failures]
    assert "A" in failing
    assert proof.witness_max_rel > 1e-3


def test_softmax_cross_entropy_fusion_proved():
    text = HEADER + "Y = softmax(A)\nL = -sum(log(Y[c])) / K\n"
    model = load_text(text, "fusion.rnn")
    derivation = derive_matrix(model)
    from derive.notation.printer import show
    (term,) = derivation.adjoints["A"].terms
    assert show(term.expr) == "-(1 / K * (onehot(c) - Y))"
    assert derivation.adjoints["A"].generic  # the unsimplified chain is kept
    assert prove_at(derivation, {"H": 3, "K": 2}).holds
    assert prove_at(derivation, {"H": 3, "K": 2}, use_generic=True).holds


@pytest.mark.parametrize("expr", ["sum(S + A)", "sum(A - S)", "sum(rowsum(tanh(S) + A) * B)",
                                  "sum(colsum(B * A))", "mean(B / (S * S + 1) + A)"])
def test_broadcast_operand_under_a_reduction(expr):
    # sum passes a 1 x 1 adjoint down to broadcast; the operand S (1 x 1) or B (H x 1) that the
    # node broadcasts gets it summed over every entry it was stretched to, not once
    model = load_text(HEADER + f"L = {expr}\n", "broadcast.rnn")
    proof = prove_at(derive_matrix(model), {"H": 2, "K": 3}, seed=1)
    assert proof.holds, [line.failures for line in proof.lines]


def test_equal_terms_of_one_adjoint_are_written_once_with_their_count():
    from derive.calculus.matrix import derive_matrix
    from derive.calculus.prove import prove
    from derive.model.build import load_text
    from derive.notation.printer import show
    text = ("size H = 3, T = 3\nparam W : H x H\nparam U : H x H\nstate h_t : H x 1 = 0\n"
            "h_t = tanh(W @ h_{t-1} + U @ h_{t-1})\nL = sum(h_T * h_T * h_T)\n")
    derivation = derive_matrix(load_text(text, "cube.rnn"))
    terms = [show(t.expr) for t in derivation.adjoints["h_t"].terms]
    assert terms.count("3 * (h_T * h_T)") == 1 and "h_T * h_T" not in terms
    assert len(terms) == 3  # the loss's term, and the recurrent terms through W and U (not equal: kept apart)
    assert prove(derivation, seed=0).holds
