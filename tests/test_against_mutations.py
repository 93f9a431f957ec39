"""Naming the slip (derive/against/mutations.py): hand-written buggy backward passes are named by their slip.

The user's gradients come from the backward passes written here by hand (the
Elman one after derive/numeric/bptt.py, the GRU one from the cell's equations),
each with one slip switched on: never from the mutation machinery itself.
Every search gets a generous time budget, so what it finds does not depend
on the machine's load.
"""

import numpy as np
import pytest

from derive.against.mutation_vocabulary import single_mutations
from derive.against.mutations import MATCH_RTOL, agrees, name_the_slip
from derive.calculus.matrix import derive_matrix
from derive.emit.loader import import_source
from derive.emit.readable import generate_module
from derive.model.build import load_model
from derive.numeric import random_params
from derive.verify.run import concrete_shape, random_data

BUDGET = 300.0
SIZES = {
    "elman-regression": {"H": 4, "F": 2, "O": 2, "T": 4, "B": 3},
    "elman-softmax": {"H": 4, "F": 3, "O": 5, "T": 4},
    "tests/data/gru.rnn": {"H": 3, "F": 2, "O": 3, "T": 3, "B": 4},
}


class Case:
    """A model, its derivation and one random case in the generated module's convention."""

    def __init__(self, name):
        self.model = load_model(name)
        self.derivation = derive_matrix(self.model)
        module = import_source(generate_module(self.model, self.derivation))
        sizes = dict(module.DEFAULT_SIZES)
        sizes.update(SIZES[name])
        self.params = random_params({k: concrete_shape(v, sizes) for k, v in module.PARAM_SHAPES.items()}, 3)
        self.data = random_data(self.model, module, sizes, 3)
        self.sizes = sizes

    def name(self, grads):
        return name_the_slip(self.model, self.derivation, self.params, self.data, grads, seconds=BUDGET)


CASES = {}


def case(name):
    if name not in CASES:
        CASES[name] = Case(name)
    return CASES[name]


# -- hand-written backward passes, one slip at a time ---------------------------------------------------------
def elman_states(p, data):
    x = np.asarray(data["x"], dtype=float)
    hs = [np.asarray(data["h_0"], dtype=float)]
    for t in range(x.shape[0]):
        hs.append(np.tanh(p["W_hh"] @ hs[-1] + p["W_xh"] @ x[t] + p["b_h"]))
    return x, hs


def elman_recurrence(p, x, hs, dh_out, slip):
    """BPTT through z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h, h_t = tanh(z_t) (after derive/numeric/bptt.py)."""
    T = x.shape[0]
    g = {k: np.zeros_like(p[k]) for k in ("W_hh", "W_xh", "b_h")}
    dz_next = np.zeros_like(hs[0])
    W = p["W_hh"] if slip == "W_hh for W_hh.T" else p["W_hh"].T
    for t in range(T, 0, -1):
        dh = dh_out[t - 1] + (0 if slip == "no recurrent term" else W @ dz_next)
        deriv = {"(1 - h)**2": (1 - hs[t]) ** 2, "1 - h": 1 - hs[t]}.get(slip, 1 - hs[t] ** 2)
        dz = dh * deriv
        g["W_hh"] += dz @ (hs[t] if slip == "h_t in dW_hh" else hs[t - 1]).T
        g["W_xh"] += dz @ x[t - 1].T / (T if slip == "dW_xh over T" else 1)
        if slip != "db_h last step only" or t == T:
            g["b_h"] += dz.sum(axis=1, keepdims=True)
        dz_next = dz
    g["h_0"] = np.zeros_like(hs[0]) if slip == "h_0 zero" else W @ dz_next
    return g


def regression_grads(p, data, slip=None):
    x, hs = elman_states(p, data)
    dy = p["W_hy"] @ hs[-1] + p["b_y"] - data["y_true"]
    dy = {"mean over the batch": dy / dy.shape[1], "twice dy": 2 * dy}.get(slip, dy)
    dh_out = np.zeros((len(hs) - 1,) + hs[0].shape)
    dh_out[-1] = p["W_hy"].T @ dy
    g = {"W_hy": dy @ hs[-1].T, "b_y": dy.sum(axis=1, keepdims=True)}
    g.update(elman_recurrence(p, x, hs, dh_out, slip))
    return g


def softmax_grads(p, data, slip=None):
    x, hs = elman_states(p, data)
    T = x.shape[0]
    c = np.asarray(data["c"]).reshape(T)
    g = {"W_hy": np.zeros_like(p["W_hy"]), "b_y": np.zeros_like(p["b_y"])}
    dh_out = []
    for t in range(1, T + 1):
        o = p["W_hy"] @ hs[t] + p["b_y"]
        y = np.exp(o - o.max()) / np.exp(o - o.max()).sum()
        do = y.copy()
        do[c[t - 1]] -= 1
        do = -do if slip == "onehot - y" else do
        g["W_hy"] += do @ (hs[t - 1] if slip == "h_{t-1} in dW_hy" else hs[t]).T
        g["b_y"] += do
        dh_out.append(p["W_hy"].T @ do)
    g.update(elman_recurrence(p, x, hs, np.array(dh_out), slip))
    return g


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_grads(p, data, slip=None):
    """The GRU of tests/data/gru.rnn: forward, then BPTT gate by gate."""
    x = np.asarray(data["x"], dtype=float)
    T, B = x.shape[0], x.shape[2]
    hs, us, rs, ns = [np.asarray(data["h_0"], dtype=float)], [None], [None], [None]
    for t in range(T):
        h = hs[-1]
        u = sigmoid(p["W_u"] @ x[t] + p["U_u"] @ h + p["b_u"])
        r = sigmoid(p["W_r"] @ x[t] + p["U_r"] @ h + p["b_r"])
        n = np.tanh(p["W_n"] @ x[t] + p["U_n"] @ (r * h) + p["b_n"])
        hs.append((1 - u) * n + u * h)
        us.append(u), rs.append(r), ns.append(n)
    o = p["W_y"] @ hs[-1] + p["b_y"]
    y = np.exp(o - o.max(axis=0)) / np.exp(o - o.max(axis=0)).sum(axis=0)
    do = y.copy()
    do[np.asarray(data["c"]).reshape(B), np.arange(B)] -= 1
    do = do if slip == "no 1/B" else do / B
    g = {k: np.zeros_like(v) for k, v in p.items()}
    g["W_y"], g["b_y"] = do @ hs[-1].T, do.sum(axis=1, keepdims=True)
    dh = p["W_y"].T @ do
    for t in range(T, 0, -1):
        h_prev, u, r, n = hs[t - 1], us[t], rs[t], ns[t]
        dn, du = dh * (u if slip == "u for 1 - u" else 1 - u), dh * (h_prev - n)
        dh_prev = 0 if slip == "no u path" else dh * u
        da_n = dn * {"(1 - n)**2 in da_n": (1 - n) ** 2, "n * (1 - n) in da_n": n * (1 - n)}.get(slip, 1 - n ** 2)
        drh = p["U_n"].T @ da_n
        dr = drh * (hs[t] if slip == "h_t in dr" else h_prev)
        dh_prev = dh_prev + drh * r
        da_r, da_u = dr * (1 - r ** 2 if slip == "1 - r**2 in da_r" else r * (1 - r)), du * u * (1 - u)
        dh_prev = dh_prev + (p["U_r"] if slip == "U_r for U_r.T" else p["U_r"].T) @ da_r + p["U_u"].T @ da_u
        for gate, da, inner in (("n", da_n, r * h_prev), ("r", da_r, h_prev), ("u", da_u, h_prev)):
            g["W_" + gate] += da @ x[t - 1].T
            g["U_" + gate] += da @ inner.T
            g["b_" + gate] += da.sum(axis=1, keepdims=True)
        dh = dh_prev
    g["h_0"] = dh
    return g


HAND = {"elman-regression": regression_grads, "elman-softmax": softmax_grads, "tests/data/gru.rnn": gru_grads}

SLIPS = [
    # model, the hand pass's slip, the kind named, words of the description
    ("elman-regression", "(1 - h)**2", "(1 - h)**2 written for 1 - h**2", "(1 - h_t)**2 in place of 1 - h_t**2 in dL/dz_t"),
    ("elman-regression", "no recurrent term", "a missing recurrent term", "dL/dh_t, eq. (7) without its term W_hh.T"),
    ("elman-regression", "W_hh for W_hh.T", "a missing transpose", "W_hh in place of W_hh.T in dL/dh_t"),
    ("elman-regression", "h_t in dW_hh", "a step off by one", "h_t in place of h_{t-1} in dL/dW_hh"),
    ("elman-regression", "mean over the batch", "an extra 1/B", "dL/dy divided by B"),
    ("elman-regression", "twice dy", "a factor 2 (a square's derivative, a loss's 1/2)", "dL/dy doubled"),
    ("elman-regression", "h_0 zero", "a wrong initial-state gradient", "dL/dh_0 left zero"),
    ("elman-softmax", "onehot - y", "a sign", "dL/do_t negated"),
    ("elman-softmax", "h_{t-1} in dW_hy", "a step off by one", "h_{t-1} in place of h_t in dL/dW_hy"),
    ("elman-softmax", "db_h last step only", "the last step's term for the sum over every step", "in dL/db_h"),
    ("elman-softmax", "1 - h", "1 - h written for 1 - h**2", "1 - h_t in place of 1 - h_t**2 in dL/dz_t"),
    ("elman-softmax", "dW_xh over T", "an extra 1/T", "dL/dW_xh divided by T"),
    ("tests/data/gru.rnn", "no 1/B", "a missing 1/B", "dL/do"),
    ("tests/data/gru.rnn", "no u path", "a missing recurrent term", "without its term dL/dh_{t+1} * u_{t+1}"),
    ("tests/data/gru.rnn", "U_r for U_r.T", "a missing transpose", "U_r in place of U_r.T in dL/dh_t"),
    ("tests/data/gru.rnn", "h_t in dr", "a step off by one", "h_t in place of h_{t-1} in dL/dr_t"),
    ("tests/data/gru.rnn", "u for 1 - u", "u written for 1 - u", "u_t in place of 1 - u_t in dL/dn_t"),
    ("tests/data/gru.rnn", "(1 - n)**2 in da_n", "(1 - h)**2 written for 1 - h**2",
     "(1 - n_t)**2 in place of 1 - n_t**2 wherever it occurs: in dL/dh_t, dL/dr_t, dL/dW_n, dL/dU_n, dL/db_n"),
    ("tests/data/gru.rnn", "1 - r**2 in da_r", "tanh's derivative 1 - s**2 written for a sigmoid's s * (1 - s)",
     "1 - r_t**2 in place of r_t * (1 - r_t) wherever it occurs"),
    ("tests/data/gru.rnn", "n * (1 - n) in da_n", "a sigmoid's derivative h * (1 - h) written for tanh's 1 - h**2",
     "n_t * (1 - n_t) in place of 1 - n_t**2 wherever it occurs"),
]


@pytest.mark.parametrize("name", sorted(HAND))
def test_the_hand_passes_without_a_slip_are_derives_and_are_never_named(name):
    c = case(name)
    module = import_source(generate_module(c.model, c.derivation))
    _, ours = module.loss_and_gradients(c.params, c.data, wrt_initial_state=True)
    theirs = HAND[name](c.params, c.data)
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        assert np.allclose(theirs[k], ours[k], rtol=1e-10, atol=1e-13), k
    naming = c.name(theirs)
    assert naming.matches == ()
    assert naming.tried == 0
    assert "the derivation itself" in naming.stopped


@pytest.mark.parametrize("name, slip, kind, words", SLIPS, ids=[f"{m}:{s}" for m, s, _, _ in SLIPS])
def test_a_hand_written_slip_is_named(name, slip, kind, words):
    c = case(name)
    grads = HAND[name](c.params, c.data, slip)
    correct = HAND[name](c.params, c.data)
    assert any(not np.allclose(grads[k], correct[k]) for k in grads), "the slip changes nothing here"
    naming = c.name(grads)
    assert naming.stopped == ""
    named = [(m.kinds, m.description) for m in naming.matches]
    assert any(kind in kinds and words in text for kinds, text in named), named
    scale = max(float(np.abs(g).max()) for g in grads.values())
    for m in naming.matches:  # each match reproduces the user's numbers, as the rule says
        assert sorted(m.gradients) == sorted(grads)
        assert all(agrees(m.gradients[k], grads[k], 1e-10 * scale, MATCH_RTOL) for k in grads)
    assert naming.tried >= 1 and kind in naming.tried_kinds


def test_two_slips_are_named_as_a_pair():
    c = case("elman-regression")
    p, data = c.params, c.data
    x, hs = elman_states(p, data)
    dy = (p["W_hy"] @ hs[-1] + p["b_y"] - data["y_true"]) / hs[0].shape[1]
    dh_out = np.zeros((len(hs) - 1,) + hs[0].shape)
    dh_out[-1] = p["W_hy"].T @ dy
    grads = {"W_hy": dy @ hs[-1].T, "b_y": dy.sum(axis=1, keepdims=True)}
    grads.update(elman_recurrence(p, x, hs, dh_out, "(1 - h)**2"))
    naming = c.name(grads)
    texts = [m.description for m in naming.matches]
    assert any("dL/dy divided by B" in t and "(1 - h_t)**2 in place of 1 - h_t**2" in t for t in texts), texts
    match = next(m for m in naming.matches if "dL/dy divided by B" in m.description)
    assert set(match.kinds) == {"an extra 1/B", "(1 - h)**2 written for 1 - h**2"}


def test_the_search_is_deterministic_and_says_what_it_tried_when_nothing_matches():
    c = case("elman-regression")
    grads = regression_grads(c.params, c.data)
    grads["W_hh"] = grads["W_hh"] + 0.25 * np.eye(grads["W_hh"].shape[0])  # no slip of the vocabulary does this
    first, again = c.name(grads), c.name(grads)
    assert first.matches == () and first.tried > 0
    assert (first.tried, first.tried_kinds, first.stopped) == (again.tried, again.tried_kinds, again.stopped)
    assert "a missing transpose" in first.tried_kinds
    assert [m.description for m in single_mutations(c.derivation)] == \
        [m.description for m in single_mutations(derive_matrix(load_model("elman-regression")))]


def test_a_tight_budget_stops_the_search_and_says_so():
    c = case("tests/data/gru.rnn")
    grads = gru_grads(c.params, c.data)
    grads["U_u"] = grads["U_u"] * 1.5
    naming = name_the_slip(c.model, c.derivation, c.params, c.data, grads, seconds=0.0)
    assert naming.tried <= 1
    assert "budget ran out" in naming.stopped


def test_only_the_gradients_given_are_compared():
    c = case("elman-regression")
    grads = regression_grads(c.params, c.data, "h_t in dW_hh")
    del grads["h_0"]
    naming = c.name(grads)
    assert any("h_t in place of h_{t-1} in dL/dW_hh" in m.description for m in naming.matches)
    assert all("h_0" not in m.gradients for m in naming.matches)


def test_the_callers_arrays_are_left_as_they_were():
    c = case("elman-regression")
    before = {k: v.copy() for k, v in c.params.items()}
    grads = regression_grads(c.params, c.data, "twice dy")
    c.name(grads)
    for k, v in c.params.items():
        assert v.flags.writeable and np.array_equal(v, before[k]), k
