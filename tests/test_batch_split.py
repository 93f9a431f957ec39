"""Splitting the batch's columns: which losses split, and the threaded fast module agrees with one thread."""

from pathlib import Path

import numpy as np
import pytest

from derive.emit.batch_split import NotSplittable, batch_split
from derive.model.build import load_model, load_text
from derive.emit.fast import generate_fast_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.verify.run import concrete_shape, random_data
from derive.numeric import random_params

ROOT = Path(__file__).resolve().parent.parent
GRU = str(ROOT / "tests" / "data" / "gru.rnn")
LSTM = str(ROOT / "tests" / "data" / "lstm.rnn")
CHAR_BATCH = str(ROOT / "bench" / "models" / "char-batch.rnn")

HEAD = """size H = 3, F = 2, T = 3, B = 4
param W : H x H
param U : H x F
param b : H x 1
input x_t : F x B
state h_t : H x B = 0
h_t = tanh(W @ h_{t-1} + U @ x_t + b)
"""


def _split(loss_lines: str):
    return batch_split(load_text(HEAD + loss_lines, "<test>"))


@pytest.mark.parametrize("name, mean", [("elman-regression", False), (CHAR_BATCH, False),
                                        (GRU, True), (LSTM, True)])
def test_models_that_split(name, mean):
    split = batch_split(load_model(name))
    assert split.size == "B" and split.mean is mean


@pytest.mark.parametrize("loss, mean", [
    ("L = sum(h_T * h_T)", False),
    ("L = sum(h_T * h_T) / B", True),
    ("L = mean(h_T * h_T)", True),
    ("L_t = sum(tanh(h_t)) / 2\nL = sum_t L_t", False),
    ("L = 3 * sum(rowsum(h_T)) - sum(h_T) / 2", False),
])
def test_losses_that_split(loss, mean):
    assert _split(loss).mean is mean


@pytest.mark.parametrize("loss, reason", [
    ("L = sum(h_T * h_T) + sum(W * W)", "added to a term that is not a batch sum"),
    ("L = sum(h_T / B)", "B divides a value that is not a batch sum"),
    ("L = sum(h_T * B) / B", "inside a value"),
    ("L = sum(h_T) / B / B", "divides the batch sum by B**2"),
    ("L = exp(sum(h_T))", "exp of a sum over the batch"),
    ("L = sum(h_T @ h_T.T)", "transpose puts the batch in the rows"),
    ("L = sum(h_T) * sum(h_T)", "multiplied by a value that depends on the batch"),
    ("L = sum(h_T) + mean(h_T)", "not a batch sum of the same scale"),
])
def test_losses_that_do_not_split(loss, reason):
    with pytest.raises(NotSplittable, match=reason.replace("*", r"\*")):
        _split(loss)


def test_models_without_a_batch_do_not_split():
    for name in ("elman-softmax", str(ROOT / "tests" / "data" / "rowmajor.rnn")):
        with pytest.raises(NotSplittable, match="no batch size"):
            batch_split(load_model(name))
    assert "threads" not in generate_fast_module(load_model("elman-softmax"),
                                                 derive_matrix(load_model("elman-softmax")))


def _fast(name, sizes, seed=0):
    model = load_model(name)
    module = import_source(generate_fast_module(model, derive_matrix(model)), "fast_split")
    sizes = dict(model.sizes, **sizes)
    params = random_params({s.name: concrete_shape(s.shape, sizes) for s in model.params}, seed)
    return module, params, random_data(model, module, sizes, seed)


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert float(np.max(np.abs(a - b))) <= tol * max(float(np.max(np.abs(b))), 1e-300)


@pytest.mark.parametrize("name", ["elman-regression", CHAR_BATCH, GRU, LSTM])
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_agree_with_one_thread(name, threads, monkeypatch):
    module, params, data = _fast(name, {"B": 7, "T": 3})
    monkeypatch.setattr(module, "MIN_PART_COLUMNS", 2)  # split even this small batch: parts of 3 and 4 (or 2, 2, 3) columns
    assert len(module._batch_parts(params, data, threads)) == threads
    loss_1, grads_1 = module.loss_and_gradients(params, data, wrt_initial_state=True)
    loss_n, grads_n = module.loss_and_gradients(params, data, wrt_initial_state=True, threads=threads)
    _close(loss_n, loss_1)
    _close(module.loss(params, data, threads=threads), loss_1)
    assert grads_n.keys() == grads_1.keys() and "h_0" in grads_n
    for key in grads_1:
        _close(grads_n[key], grads_1[key])
    cparams = {k: v + 1e-30j * np.ones_like(v) for k, v in params.items()}
    _close(module.loss(cparams, data, threads=threads).imag, module.loss(cparams, data).imag)


def test_one_thread_and_narrow_batches_run_the_serial_code():
    module, params, data = _fast("elman-regression", {"B": 300, "T": 2})
    assert len(module._batch_parts(params, data, 8)) == 1  # 300 columns: one part of >= 256
    assert module.loss_and_gradients(params, data, threads=8)[0] == module._loss_and_gradients_part(params, data)[0]
    with pytest.raises(ValueError, match="threads must be a whole number"):
        module.loss(params, data, threads=0)
    with pytest.raises(ValueError, match="y_true"):  # shapes are checked before any split
        module.loss(params, dict(data, y_true=np.zeros((2, 300))), threads=2)
