"""Row stacks ``[x_t; h_{t-1}]``, row slices ``a_t[0:H]`` and dimensions that are sums (``4*H x (F + H)``).

The models of tests/data: a character LSTM with one weight matrix over the stacked input
(``min_char_lstm.rnn``) and CS231n's LSTM layer with fused gate matrices split by rows
(``cs231n_lstm.rnn``). Each is verified, proved and generated in both styles; the character model's
gradients are compared with a NumPy backward pass written here, the fused layer's with the gradients
of the same layer written with its gates apart, stacked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import prove_at
from derive.cli import main
from derive.emit.fast import fast_module_or_readable
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_model, load_text
from derive.notation.blocks import SizeTable, dim_value
from derive.notation.printer import show

DATA = Path(__file__).parent / "data"
MIN_CHAR_LSTM = DATA / "min_char_lstm.rnn"
CS231N_LSTM = DATA / "cs231n_lstm.rnn"

SPLIT_GATES = """size B = 3, D = 4, H = 3, V = 5, T = 4
param Wx_i : H x D
param Wx_f : H x D
param Wx_o : H x D
param Wx_g : H x D
param Wh_i : H x H
param Wh_f : H x H
param Wh_o : H x H
param Wh_g : H x H
param b_i : H x 1
param b_f : H x 1
param b_o : H x 1
param b_g : H x 1
param W_vocab : V x H
param b_vocab : V x 1
input x_t : D x B
target y_t : class V x B
state h_t : H x B = 0
state c_t : H x B = 0
i_t = sigmoid(Wx_i @ x_t + Wh_i @ h_{t-1} + b_i)
f_t = sigmoid(Wx_f @ x_t + Wh_f @ h_{t-1} + b_f)
o_t = sigmoid(Wx_o @ x_t + Wh_o @ h_{t-1} + b_o)
g_t = tanh(Wx_g @ x_t + Wh_g @ h_{t-1} + b_g)
c_t = f_t * c_{t-1} + i_t * g_t
h_t = o_t * tanh(c_t)
s_t = W_vocab @ h_t + b_vocab
p_t = softmax(s_t)
L_t = -sum(log(p_t[y_t])) / B
L = sum_t L_t
"""

GATES = "ifog"


def _modules(path):
    model = load_model(str(path))
    derivation = derive_matrix(model)
    readable = import_source(generate_module(model, derivation), "concat_readable")
    fast_source, reason = fast_module_or_readable(model, derivation)
    assert reason is None, reason
    return model, readable, import_source(fast_source, "concat_fast")


def _case(module, seed=0):
    """Random parameters and data for a generated module at its declared sizes."""
    rng = np.random.default_rng(seed)
    sizes = SizeTable(module.DEFAULT_SIZES)

    def dims(names):
        return tuple(dim_value(d, sizes) for d in names)
    params = {k: rng.normal(size=dims(v)) * 0.5 for k, v in module.PARAM_SHAPES.items()}
    data = {}
    for key, names in module.DATA_SHAPES.items():
        if key in module.CLASS_COUNTS:
            data[key] = rng.integers(0, dim_value(module.CLASS_COUNTS[key], sizes), size=dims(names))
        else:
            data[key] = rng.normal(size=dims(names)) * 0.5
    return params, data


# -- notation and shapes -----------------------------------------------------------------------------

def test_sums_of_sizes_are_one_dimension_whatever_their_order():
    model = load_text("size F = 2, H = 3, B = 4\nparam W : 4*H x (H + F)\nparam b : 4H x 1\ninput x_t : F x B\n"
                      "state h_t : H x B = 0\na_t = W @ [x_t; h_{t-1}] + b\nh_t = tanh(a_t[H:2*H, :])\n"
                      "L = sum_t sum(h_t)\n", "sums.rnn")
    assert model.symbols["W"].shape == ("4*H", "F + H")
    assert model.symbols["b"].shape == ("4*H", 1)
    assert model.shape(model.equations[0].expr.a.b) == ("F + H", "B")
    assert model.symbols["a_t"].shape == ("4*H", "B")
    assert show(model.equation("h_t").expr) == "tanh(a_t[H:2*H])"


def test_the_row_forms_of_a_slice_read_alike_and_a_column_slice_reads_columns():
    model = load_text("size H = 2, B = 3\nparam A : 3*H x B\nX = A[0:H] + A[H:2*H, :]\nY = A[:, 0:1]\n"
                      "L = sum(X) + sum(Y)\n", "forms.rnn")
    x = model.equation("X").expr
    assert x.a.hi == x.b.lo and x.a.axis == x.b.axis == 0
    assert model.symbols["X"].shape == ("H", "B")
    assert model.symbols["Y"].shape == ("3*H", 1)


def test_printed_stacks_and_slices_read_back_as_the_same_trees():
    model = load_model(str(MIN_CHAR_LSTM))
    derivation = derive_matrix(model)
    trees = [eq.expr for eq in model.equations] + [t.expr for a in derivation.adjoints.values() for t in a.terms]
    lines = [f"claim dL/dQ = {show(tree)}" for tree in trees]
    from derive.errors import SourceText
    from derive.notation.parse import parse_statements
    from derive.notation.blocks import Slice, Stack
    from derive.notation.expr import walk
    blocks = [n for tree in trees for n in walk(tree) if isinstance(n, (Slice, Stack))]
    assert len(blocks) >= 8
    for line, tree in zip(lines, trees):
        again = parse_statements(SourceText(line, "again.claims"), claims=True)[0].expr
        assert show(again) == show(tree), line


def test_latex_sets_a_stack_as_a_column_of_blocks_and_a_slice_with_its_rows():
    from derive.report.latex import latex, shape_math
    model = load_model(str(MIN_CHAR_LSTM))
    assert latex(model.equations[0].expr, model) == (
        r"W \, \begin{bmatrix} \operatorname{onehot}\left(w_{t}\right) \\[3pt] h_{t-1} \end{bmatrix} + b")
    assert latex(model.equation("f_t").expr, model) == r"\sigma\left(a_{t}[H:2H]\right)"
    assert shape_math(model.symbols["W"].shape) == r"4H\times (H + V)"


BAD = {
    "columns": ("size F = 2, H = 3, B = 4\nparam W : H x (F + H)\ninput x_t : F x B\nstate h_t : H x 1 = 0\n"
                "h_t = tanh(W @ [x_t; h_{t-1}])\nL = sum_t sum(h_t)\n",
                (5, 16), ["F x B", "H x 1", "same columns"]),
    "past the end": ("size H = 3, B = 2\nparam A : 4*H x B\nX = A[3*H:5*H]\nL = sum(X)\n",
                     (3, 11), ["5*H", "runs past", "4*H x B"]),
    "empty": ("size H = 3, B = 2\nparam A : 4*H x B\nX = A[H:H, :]\nL = sum(X)\n",
              (3, 9), ["empty"]),
    "not provable": ("size H = 3, F = 2, B = 2\nparam A : 4*H x B\nX = A[0:H - F]\nL = sum(X)\n",
                     (3, 9), ["empty"]),
    "a symbol as bound": ("size H = 3, B = 2\nparam A : 4*H x B\nparam c : 1 x 1\nX = A[0:c]\nL = sum(X)\n",
                          (4, 9), ["not a size", "c"]),
    "a function as bound": ("size H = 3, B = 2\nparam A : 4*H x B\nX = A[0:tanh(H)]\nL = sum(X)\n",
                            (3, 9), ["size expression"]),
    "a fraction as bound": ("size H = 3, B = 2\nparam A : 4*H x B\nX = A[0:H/2]\nL = sum(X)\n",
                            (3, 10), ["size expression"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_stack_or_slice_is_an_input_error_at_its_caret(case, tmp_path, capsys):
    text, (line, column), words = BAD[case]
    path = tmp_path / "bad.rnn"
    path.write_text(text, encoding="utf-8")
    assert main(["show", str(path), "--no-proof"]) == 2
    err = capsys.readouterr().err
    assert f"bad.rnn:{line}:{column}: error:" in err, err
    for word in words:
        assert word in err, err
    source_line, caret = err.strip().splitlines()[-2:]
    assert source_line.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - source_line.index(source_line.strip()) == column - 1 - (
        len(text.splitlines()[line - 1]) - len(text.splitlines()[line - 1].lstrip()))
    assert "Traceback" not in err


# -- the two models -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [MIN_CHAR_LSTM, CS231N_LSTM], ids=["min_char_lstm", "cs231n_lstm"])
def test_verify_agrees_on_every_check(path, capsys):
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    for check in ("complex step: agrees", "central differences: agrees", "the exact derivation: agrees"):
        assert check in out
    assert "result: all checks agree" in out


@pytest.mark.parametrize("path", [MIN_CHAR_LSTM, CS231N_LSTM], ids=["min_char_lstm", "cs231n_lstm"])
def test_show_proves_the_derivation(path, capsys):
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "result: proved at every size above" in out
    # the four gates' adjoints come back as one row stack, not as blocks placed in zeros
    assert "dL/da_t = [dL/di_t * (i_t * (1 - i_t)); dL/df_t * (f_t * (1 - f_t)); " in out
    assert "place(" not in out


def test_proof_sizes_keep_every_dimension_apart():
    from derive.calculus.prove import default_proof_sizes
    model = load_model(str(MIN_CHAR_LSTM))
    dims = {d for s in model.symbols.values() if s.shape for d in s.shape if not isinstance(d, int)}
    for sizes in default_proof_sizes(model):
        values = [dim_value(d, sizes) for d in dims]
        assert len(set(values)) == len(values), sizes


@pytest.mark.parametrize("path", [MIN_CHAR_LSTM, CS231N_LSTM], ids=["min_char_lstm", "cs231n_lstm"])
def test_readable_and_fast_modules_agree(path):
    _, readable, fast = _modules(path)
    assert "fast style" in fast.__doc__
    params, data = _case(readable)
    loss_r, grads_r = readable.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
    loss_f, grads_f = fast.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
    assert np.isclose(loss_r, loss_f, rtol=1e-13)
    assert set(grads_r) == set(grads_f) and set(params) <= set(grads_r)
    for key in grads_r:
        np.testing.assert_allclose(grads_f[key], grads_r[key], rtol=1e-11, atol=1e-13)


def test_a_module_refuses_a_sum_dimension_its_sizes_contradict():
    _, readable, _ = _modules(CS231N_LSTM)
    params, data = _case(readable)
    for name in ("Wx", "Wh", "b"):  # 4*H - 1 rows in each, while Wh's columns give H
        params[name] = params[name][1:]
    with pytest.raises(ValueError, match=r"the arrays give 11 for the dimension 4\*H, but H = 3 make it 12"):
        readable.loss(params, data)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_char_lstm(params, data):
    """The character LSTM's loss and gradients, forward and backward by hand (one column a step)."""
    W, b, Wy, by = (params[k] for k in ("W", "b", "Wy", "by"))
    V, H = Wy.shape
    T = len(data["w"])
    h, s = {0: data["h_0"]}, {0: data["s_0"]}
    z, gates, p = {}, {}, {}
    loss = 0.0
    for t in range(1, T + 1):
        x = np.zeros((V, 1))
        x[int(data["w"][t - 1, 0]), 0] = 1
        z[t] = np.vstack([x, h[t - 1]])
        a = W @ z[t] + b
        i, f, o, g = _sigmoid(a[:H]), _sigmoid(a[H:2 * H]), _sigmoid(a[2 * H:3 * H]), np.tanh(a[3 * H:])
        gates[t] = (i, f, o, g)
        s[t] = f * s[t - 1] + i * g
        h[t] = o * np.tanh(s[t])
        e = np.exp(Wy @ h[t] + by - np.max(Wy @ h[t] + by))
        p[t] = e / e.sum()
        loss -= np.log(p[t][int(data["c"][t - 1, 0]), 0])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next, ds_next = np.zeros((H, 1)), np.zeros((H, 1))
    for t in range(T, 0, -1):
        i, f, o, g = gates[t]
        dy = p[t].copy()
        dy[int(data["c"][t - 1, 0]), 0] -= 1
        grads["Wy"] += dy @ h[t].T
        grads["by"] += dy
        dh = Wy.T @ dy + dh_next
        ds = dh * o * (1 - np.tanh(s[t]) ** 2) + ds_next
        da = np.vstack([ds * g * i * (1 - i), ds * s[t - 1] * f * (1 - f),
                        dh * np.tanh(s[t]) * o * (1 - o), ds * i * (1 - g ** 2)])
        grads["W"] += da @ z[t].T
        grads["b"] += da
        dh_next, ds_next = (W.T @ da)[V:], ds * f
    grads["h_0"], grads["s_0"] = dh_next, ds_next
    return loss, grads


def test_the_character_lstm_matches_a_numpy_backward_pass_written_by_hand():
    _, readable, fast = _modules(MIN_CHAR_LSTM)
    for seed in range(3):
        params, data = _case(readable, seed)
        want_loss, want = numpy_char_lstm(params, data)
        for module in (readable, fast):
            loss, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
            assert np.isclose(loss, want_loss, rtol=1e-12)
            for key in want:
                np.testing.assert_allclose(grads[key], want[key], rtol=1e-9, atol=1e-12)


def test_the_fused_layer_gives_the_loss_and_the_stacked_gradients_of_the_split_gates():
    _, fused, _ = _modules(CS231N_LSTM)
    split_model = load_text(SPLIT_GATES, "split_gates.rnn")
    split = import_source(generate_module(split_model, derive_matrix(split_model)), "split_gates")
    params, data = _case(fused, 7)
    H = params["Wh"].shape[1]
    parts = {}
    for k, gate in enumerate(GATES):
        rows = slice(k * H, (k + 1) * H)
        parts.update({f"Wx_{gate}": params["Wx"][rows], f"Wh_{gate}": params["Wh"][rows],
                      f"b_{gate}": params["b"][rows]})
    parts.update(W_vocab=params["W_vocab"], b_vocab=params["b_vocab"])
    loss_f, grads_f = fused.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
    loss_s, grads_s = split.loss_and_gradients(parts, data, wrt_initial_state=True, wrt_inputs=True)
    assert np.isclose(loss_f, loss_s, rtol=1e-13)
    for name in ("Wx", "Wh", "b"):
        stacked = np.vstack([grads_s[f"{name}_{gate}"] for gate in GATES])
        np.testing.assert_allclose(grads_f[name], stacked, rtol=1e-11, atol=1e-14)
    for key in ("W_vocab", "b_vocab", "x", "h_0", "c_0"):
        np.testing.assert_allclose(grads_f[key], grads_s[key], rtol=1e-11, atol=1e-14)


def test_a_wrong_stack_rule_fails_the_proof(monkeypatch):
    """The rule's proof is not vacuous: the spans of a stack's operands swapped must fail."""
    from derive.calculus import rules
    from derive.notation.blocks import slice_of
    model = load_text("size H = 2, K = 3\nparam A : H x K\nparam C : K x H\ninput Q : 2*H x K\n"
                      "Y = [A; C.T * A]\nL = sum(Q * Y)\n", "stack.rnn")
    wrong = dict(rules.MODEL_RULES)
    wrong["stack"] = lambda n, G, out, m: tuple(slice_of(G, 0, lo, hi) for lo, hi in
                                                reversed(list(rules.spans(n, m))))
    monkeypatch.setattr(rules, "MODEL_RULES", wrong)
    proof = prove_at(derive_matrix(model), {"H": 2, "K": 3}, seed=1)
    assert not proof.holds


# -- claims ---------------------------------------------------------------------------------------------

CLAIMS = """model min_char_lstm.rnn
claim dL/da_t = [dL/di_t * i_t * (1 - i_t); dL/df_t * f_t * (1 - f_t); dL/do_t * o_t * (1 - o_t); dL/dg_t * (1 - g_t^2)]
claim dL/dh_t = Wy.T @ dL/dy_t + (W.T @ dL/da_{t+1})[V:V + H]
claim dL/dh_t = Wy.T @ dL/dy_t + W[:, V:V + H].T @ dL/da_{t+1}
claim dL/dh_t = Wy.T @ dL/dy_t + (W.T @ dL/da_{t+1})[0:H]
"""


def test_claims_with_slices_and_stacks_are_checked(tmp_path, capsys):
    (tmp_path / "min_char_lstm.rnn").write_text(MIN_CHAR_LSTM.read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "lstm.claims"
    path.write_text(CLAIMS, encoding="utf-8")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    for line in (2, 3, 4):
        assert f"lstm.claims:{line}:1: holds:" in out, out
    assert "lstm.claims:5:1: WRONG:" in out, out
    # the truth the checker prints for the slip is read back in the notation, slice and all
    assert "the truth: dL/dh_t = Wy.T @ dL/dy_t + (W.T @ dL/da_{t+1})[V:H + V]" in out, out
    assert "4 claims: 3 holds, 1 wrong" in out
