"""Entry points of the fast style that split the batch's columns over threads.

When a model's loss is a sum (or a mean) over its batch's columns
(:func:`derive.emit.batch_split.batch_split`), the loss of the whole batch and its
parameter gradients are the (weighted) sums of those of column ranges, and
``dL/dh_0`` is theirs side by side. The fast module then names its
single-threaded functions ``_loss_part`` and ``_loss_and_gradients_part``
and exposes ``loss`` and ``loss_and_gradients`` with a ``threads`` keyword
(default 1: the single-threaded function, unchanged). NumPy's ufuncs and
matrix products release the GIL, so the parts run at the same time.
"""

from __future__ import annotations

from typing import List

from ..model.model import Model
from .batch_split import BatchSplit

PART_LOSS = "_loss_part"
PART_GRADIENT = "_loss_and_gradients_part"

DOC_LINES = [
    "",
    "threads=N (keyword of loss and loss_and_gradients) computes the loss and",
    "gradients of N ranges of the batch's columns on N threads and adds them up",
    "(the loss is a {how} over the columns). Give NumPy a single-threaded BLAS",
    "when you do (OPENBLAS_NUM_THREADS=1, or threadpoolctl): several threads",
    "calling a multi-threaded OpenBLAS at once are slower than one.",
]


def batch_doc_lines(split: BatchSplit) -> List[str]:
    """The module docstring's paragraph on ``threads``."""
    how = "mean" if split.mean else "sum"
    return [line.format(how=how) for line in DOC_LINES]


def batch_entry_points(model: Model, split: BatchSplit, data_dims) -> List[str]:
    """The source lines of the batch tables and the threaded ``loss`` / ``loss_and_gradients``.

    ``data_dims(symbol)`` gives a data symbol's dims as in ``DATA_SHAPES``.
    """
    axes = {s.base: data_dims(s).index(split.size) for s in model.data_symbols}
    axes.update({f"{s.base}_0": 1 for s in model.states})
    table = ", ".join(f"{k!r}: {v}" for k, v in axes.items())
    return [
        f"BATCH_SIZE = {split.size!r}  # the size whose columns are split over threads",
        f"BATCH_AXES = {{{table}}}  # the batch's axis in every data array",
        f"BATCH_MEAN = {split.mean!r}  # the loss is a {'mean' if split.mean else 'sum'} over the columns",
        "MIN_PART_COLUMNS = 256  # narrower parts cost more in threads than they save",
        "",
        "",
        "def _batch_parts(params, data, threads):",
        '    """(weight, data) of each range of the batch\'s columns: one per thread, none narrower than MIN_PART_COLUMNS."""',
        "    if int(threads) != threads or threads < 1:",
        '        raise ValueError(f"threads must be a whole number >= 1, not {threads!r}")',
        "    batch = _sizes(params, data)[BATCH_SIZE]",
        "    count = max(1, min(int(threads), batch // MIN_PART_COLUMNS))",
        "    parts = []",
        "    for k in range(count):",
        "        lo, hi = batch * k // count, batch * (k + 1) // count",
        "        part = dict(data)",
        "        for name, axis in BATCH_AXES.items():",
        "            if name in data and np.ndim(data[name]) > axis:",
        "                part[name] = np.asarray(data[name])[(slice(None),) * axis + (slice(lo, hi),)]",
        "        parts.append(((hi - lo) / batch if BATCH_MEAN else 1, part))",
        "    return parts",
        "",
        "",
        "def _in_threads(function, parts):",
        '    """function(part) for every part: the first in this thread, the others in a pool."""',
        "    with ThreadPoolExecutor(len(parts) - 1) as pool:",
        "        later = [pool.submit(function, part) for part in parts[1:]]",
        "        return [function(parts[0])] + [f.result() for f in later]",
        "",
        "",
        "def loss(params, data, threads=1):",
        '    """The scalar loss L (complex when params are, for complex-step checks)."""',
        "    parts = _batch_parts(params, data, threads)",
        "    if len(parts) == 1:",
        f"        return {PART_LOSS}(params, data)",
        f"    values = _in_threads(lambda part: {PART_LOSS}(params, part[1]), parts)",
        "    return sum(weight * value for (weight, _), value in zip(parts, values))",
        "",
        "",
        "def loss_and_gradients(params, data, wrt_initial_state=False, wrt_inputs=False, threads=1):",
        '    """The loss and dL/dparam for every parameter (dL/dh_0 per state and dL/dx per input on request)."""',
        "    parts = _batch_parts(params, data, threads)",
        "    if len(parts) == 1:",
        f"        return {PART_GRADIENT}(params, data, wrt_initial_state, wrt_inputs)",
        f"    results = _in_threads(lambda part: {PART_GRADIENT}(params, part[1], wrt_initial_state, wrt_inputs),",
        "                          parts)",
        "    weights = [weight for weight, _ in parts]",
        "    grads = {}",
        "    for name in results[0][1]:",
        "        pieces = [weight * g[name] for weight, (_, g) in zip(weights, results)]",
        "        grads[name] = np.concatenate(pieces, axis=BATCH_AXES[name]) if name in BATCH_AXES else sum(pieces)",
        "    return sum(weight * value for weight, (value, _) in zip(weights, results)), grads",
    ]


__all__ = ["batch_entry_points", "batch_doc_lines", "PART_LOSS", "PART_GRADIENT"]
