"""Verdicts of ``derive check`` on small claims files (three or more of each)."""

from __future__ import annotations

import pytest

from derive.claims.read import read_claims
from derive.claims.verdicts import check_file

SOFTMAX = """\
model elman-softmax

claim dL/do_t = y_t - onehot(c_t)
claim dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}
claim dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T
claim dL/dW_hh = sum_t h_{t-1} @ dL/dz_t.T
claim dL/dW_hy = sum_t h_t @ dL/do_t.T
claim dL/db_h = sum_t dL/dz_t.T
claim dL/dh_t = W_hy.T @ dL/do_t
claim dL_t/dW_hh = dL_t/dz_t @ h_{t-1}.T
claim dL/dW_hh = dL/dz_t @ h_{t-1}.T
claim dL/dz_t = dL/dh_t * (1 - h_t)**2
claim dL/dh_t = W_hy.T @ dL/do_t + W_hh @ dL/dz_{t+1}
claim dL/dW_hy = sum_t dL/do_t @ h_{t-1}.T
claim dL/dW_hy = sum_t dL/do_t @ h_t
claim dL/db_y = sum_t dL/do_t.T @ W_hy
claim dL/dh_t = W_hy @ dL/do_t + W_hh.T @ dL/dz_{t+1}
claim dL/do_t = onehot(c_t) - y_t
claim dL/dW_hh = 2 * sum_t dL/dz_t @ h_{t-1}.T
claim dL/dz_t = dL/dh_t ⋅ (1 - h_t**2)
claim dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1} + W_hh.T @ dL/dz_t
"""

MEAN_LOSS = """\
# many-to-one regression whose loss is a mean over the batch
size H = 3, F = 2, O = 2, T = 3, B = 4
param  W_hh : H x H
param  W_xh : H x F
param  b_h  : H x 1
param  W_hy : O x H
param  b_y  : O x 1
input  x_t  : F x B
target y_true : O x B
state  h_t  : H x B = 0
z_t = W_hh @ h_{t-1} + W_xh @ x_t + b_h
h_t = tanh(z_t)
y   = W_hy @ h_T + b_y
L   = sum((y - y_true)**2) / B

claim dL/dy = 2 * (y - y_true)
claim dL/dW_hy = 2 * (y - y_true) @ h_T.T
claim dL/dy = y - y_true
claim dL/dy = 2 * (y - y_true) / B
claim dL/dW_hh = sum_t dL/dz_t ⋅ h_{t-1}.T
claim dL/dz_t = dL/dh_t ⋅ (1 - h_t**2)
claim dL/dh_t = W_hh.T @ dL/dz_{t+1}
claim dL/db_h = sum_t dL/dz_t
claim dL/dW_xh = sum_t dL/dh_t @ x_t.T
claim dL/db_y = rowsum(dL/dy)
"""


def _check(tmp_path_factory, name, text):
    path = tmp_path_factory.mktemp("claims") / name
    path.write_text(text, encoding="utf-8")
    notes = read_claims(str(path))
    return {r.claim.text: r for r in check_file(notes)}


@pytest.fixture(scope="module")
def softmax(tmp_path_factory):
    return _check(tmp_path_factory, "softmax.claims", SOFTMAX)


@pytest.fixture(scope="module")
def mean_loss(tmp_path_factory):
    return _check(tmp_path_factory, "mean.claims", MEAN_LOSS)


@pytest.mark.parametrize("text", [
    "dL/do_t = y_t - onehot(c_t)",
    "dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}",
    "dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T",
])
def test_holds(softmax, text):
    r = softmax[text]
    assert r.verdict == "holds", r.explanation
    assert len(r.sizes_proved) == 3 and r.entries_proved > 0
    assert r.witness_gap is not None and r.witness_gap < 1e-30
    for sizes in r.sizes_proved:  # distinct sizes so a transpose cannot hide
        values = [v for k, v in sizes.items() if k != "T"]
        assert len(set(values)) == len(values)


@pytest.mark.parametrize("text", [
    "dL/dW_hh = sum_t h_{t-1} @ dL/dz_t.T",  # square: shapes cannot tell
    "dL/dW_hy = sum_t h_t @ dL/do_t.T",
    "dL/db_h = sum_t dL/dz_t.T",
])
def test_layout(softmax, text):
    r = softmax[text]
    assert r.verdict == "layout", r.explanation
    assert "transpose" in r.explanation and "numerator layout" in r.explanation


@pytest.mark.parametrize("text, missing", [
    ("dL/dh_t = W_hy.T @ dL/do_t", "W_hh.T @ dL/dz_{t+1}"),
    ("dL_t/dW_hh = dL_t/dz_t @ h_{t-1}.T", "earlier steps k = 1..t-1"),
    ("dL/dW_hh = dL/dz_t @ h_{t-1}.T", "other steps"),
])
def test_partial_names_missing_terms(softmax, text, missing):
    r = softmax[text]
    assert r.verdict == "partial", r.explanation
    assert any(missing in m for m in r.missing), r.missing


def test_partial_recurrent_term_repair(softmax):
    r = softmax["dL/dh_t = W_hy.T @ dL/do_t"]
    assert r.repair == "W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}"


def test_partial_extra_term(softmax):
    r = softmax["dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1} + W_hh.T @ dL/dz_t"]
    assert r.verdict == "partial"
    assert r.extra == ["W_hh.T @ dL/dz_t"] and not r.missing


def test_partial_missing_bias_step(mean_loss):
    r = mean_loss["dL/dh_t = W_hh.T @ dL/dz_{t+1}"]
    assert r.verdict == "partial"
    assert any("W_hy.T @ dL/dy" in m for m in r.missing)


@pytest.mark.parametrize("text, repair", [
    ("dL/dz_t = dL/dh_t * (1 - h_t)**2", "dL/dh_t * (1 - h_t**2)"),
    ("dL/dh_t = W_hy.T @ dL/do_t + W_hh @ dL/dz_{t+1}", "W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}"),
    ("dL/dW_hy = sum_t dL/do_t @ h_{t-1}.T", "sum_t dL/do_t @ h_t.T"),
])
def test_wrong_with_repair(softmax, text, repair):
    r = softmax[text]
    assert r.verdict == "wrong", r.explanation
    assert r.repair == repair
    ce = r.counterexample
    assert ce and ce["claim"] != ce["truth"] and "sizes" in ce and "entry" in ce
    assert r.truth.startswith(text.split(" = ")[0])


def test_wrong_without_repair(mean_loss):
    r = mean_loss["dL/dW_xh = sum_t dL/dh_t @ x_t.T"]
    assert r.verdict == "wrong"
    assert "sum_t dL/dz_t @ x_t.T" in r.truth


@pytest.mark.parametrize("text", [
    "dL/dW_hy = sum_t dL/do_t @ h_t",
    "dL/db_y = sum_t dL/do_t.T @ W_hy",
    "dL/dh_t = W_hy @ dL/do_t + W_hh.T @ dL/dz_{t+1}",
])
def test_shape(softmax, text):
    r = softmax[text]
    assert r.verdict == "shape", r.explanation
    assert r.shape and r.shape["line"] and r.shape["column"]


def test_shape_operands_and_repair(softmax, mean_loss):
    r = softmax["dL/dh_t = W_hy @ dL/do_t + W_hh.T @ dL/dz_{t+1}"]
    assert r.shape["operands"]["left"]["shape"] == "O x H"
    assert r.shape["operands"]["right"]["shape"] == "O x 1"
    assert r.repair == "W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}"
    r = mean_loss["dL/db_h = sum_t dL/dz_t"]
    assert r.verdict == "shape" and r.shape["claimed"] == "H x B"
    assert r.repair == "rowsum(sum_t dL/dz_t)"


@pytest.mark.parametrize("fixture, text, factor", [
    ("softmax", "dL/do_t = onehot(c_t) - y_t", "-1"),
    ("softmax", "dL/dW_hh = 2 * sum_t dL/dz_t @ h_{t-1}.T", "2"),
    ("mean_loss", "dL/dy = 2 * (y - y_true)", "B"),
    ("mean_loss", "dL/dW_hy = 2 * (y - y_true) @ h_T.T", "B"),
    ("mean_loss", "dL/dy = y - y_true", "1/2*B"),
])
def test_factor(request, fixture, text, factor):
    r = request.getfixturevalue(fixture)[text]
    assert r.verdict == "factor", r.explanation
    assert r.factor == factor


def test_mean_loss_holds(mean_loss):
    assert mean_loss["dL/dy = 2 * (y - y_true) / B"].verdict == "holds"
    assert mean_loss["dL/db_y = rowsum(dL/dy)"].verdict == "holds"


def test_dot_must_be_matmul(mean_loss):
    r = mean_loss["dL/dW_hh = sum_t dL/dz_t ⋅ h_{t-1}.T"]
    assert r.verdict == "holds"
    assert "as @" in r.dot_choices and r.reading == "sum_t dL/dz_t @ h_{t-1}.T"


def test_dot_must_be_elementwise(mean_loss, softmax):
    for r in (mean_loss["dL/dz_t = dL/dh_t ⋅ (1 - h_t**2)"], softmax["dL/dz_t = dL/dh_t ⋅ (1 - h_t**2)"]):
        assert r.verdict == "holds"
        assert "as *" in r.dot_choices and r.reading == "dL/dh_t * (1 - h_t**2)"


def test_undecided_on_time_limit(tmp_path, monkeypatch):
    from derive.claims import verdicts
    monkeypatch.setattr(verdicts, "TIME_LIMIT", 0.0)
    path = tmp_path / "t.claims"
    path.write_text("model elman-softmax\nclaim dL/do_t = y_t - onehot(c_t)\n"
                    "claim dL/dh_t = W_hy.T @ dL/do_t\nclaim dL/dW_hh = sum_t dL/dz_t @ h_{t-1}.T\n")
    results = check_file(read_claims(str(path)))
    assert [r.verdict for r in results] == ["undecided"] * 3
    assert all("time limit" in r.explanation for r in results)
