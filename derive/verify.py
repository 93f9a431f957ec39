"""``derive verify``: generated code against hand BPTT, finite differences and the exact derivation."""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np
import sympy

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # a dependency, but a checkout run without installing may lack it
    threadpool_limits = None

from numeric import (HAND_BPTT, CountingLoss, central_difference, compare_gradients,
                     complex_step, random_direction_check, random_params)

from .codegen import generate_module
from .exact import reverse_sweep, unroll
from .loader import import_source
from .matrix import MatrixDerivation
from .model import Model
from .prove import default_proof_sizes, numeric_values

TOLERANCE = {"hand": 1e-12, "complex": 1e-10, "central": 1e-5, "exact": 1e-10, "direction": 1e-10}


@dataclass
class CheckRow:
    """One parameter against one reference."""

    check: str
    parameter: str
    entries: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    passed: bool


@dataclass
class VerifyResult:
    """Everything ``derive verify`` measured."""

    model: str
    sizes: Dict[str, int]
    seed: int
    rows: List[CheckRow] = field(default_factory=list)
    directions: List[dict] = field(default_factory=list)
    exact_sizes: Dict[str, int] = field(default_factory=dict)
    forward_passes: Dict[str, int] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows) and all(d["passed"] for d in self.directions)

    def to_json(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["tolerances"] = TOLERANCE
        return out


def concrete_shape(shape, sizes: Dict[str, int]):
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def random_data(model: Model, module, sizes: Dict[str, int], seed: int) -> Dict[str, np.ndarray]:
    """Inputs, targets and (non-zero) initial states for the generated module, from ``seed``."""
    rng = np.random.default_rng(seed + 1)
    initial = {s.base + "_0" for s in model.states}
    data = {}
    for name, dims in module.DATA_SHAPES.items():
        shape = concrete_shape(dims, sizes)
        if name in module.CLASS_COUNTS:
            n = module.CLASS_COUNTS[name]
            n = n if isinstance(n, int) else sizes[n]
            data[name] = rng.integers(0, n, size=shape)
        elif name in initial:
            data[name] = 0.5 * rng.standard_normal(shape)
        else:
            data[name] = rng.standard_normal(shape)
    return data


def _rows(check: str, reference, candidate, entries=None) -> List[CheckRow]:
    out = []
    for c in compare_gradients(reference, candidate, entries):
        out.append(CheckRow(check, c.name, c.n_entries, float(c.max_abs_error), float(c.max_rel_error),
                            tuple(int(i) for i in c.worst_index), float(c.max_rel_error) <= TOLERANCE[check]))
    return out


LARGE_FORWARD = 10 ** 6


def forward_values(model: Model, sizes: Dict[str, int]) -> int:
    """How many values one forward pass computes (per-step quantities times T)."""
    total = 0
    for eq in model.equations:
        rows, cols = concrete_shape(model.symbols[eq.name].shape, sizes)
        total += rows * cols * (sizes.get("T", 1) if eq.per_step else 1)
    return total


def default_entries(model: Model, sizes: Dict[str, int]) -> int:
    """Finite-difference entries per parameter: 30, or 5 when a forward pass is large."""
    return 5 if forward_values(model, sizes) > LARGE_FORWARD else 30


def default_complex_entries(model: Model, sizes: Dict[str, int]) -> int:
    """Complex-step entries per parameter: 30, or 2 when a forward pass is large.

    A complex forward pass costs about 7 real ones at the regression size
    (NumPy's complex ``tanh`` is a scalar loop); the random-direction checks
    still take every entry into account.
    """
    return 2 if forward_values(model, sizes) > LARGE_FORWARD else 30


def sample_entries(params, limit: Optional[int], rng) -> Dict[str, np.ndarray]:
    """Flat indices to check per parameter: all, or ``limit`` drawn without replacement."""
    out = {}
    for name, value in params.items():
        n = value.size
        if limit is None or n <= limit:
            out[name] = np.arange(n)
        else:
            out[name] = np.sort(rng.choice(n, size=limit, replace=False))
    return out


def exact_comparison(model: Model, module, seed: int) -> tuple:
    """Generated code against the exact elementwise derivation at small sizes."""
    sizes = default_proof_sizes(model)[0]
    u = unroll(model, sizes, class_seed=seed)
    exact = reverse_sweep(u)
    values = numeric_values(u, exact, seed)
    params = {s.name: np.array([[float(values[e]) for e in row] for row in _rows_of(u.values[(s.name, None)])])
              for s in model.params}
    data = {}
    for s in model.data_symbols:
        if s.classes is not None:
            data[s.base] = np.array([u.classes[(s.name, t)] for t in range(1, u.T + 1)]) if s.per_step \
                else np.array(u.classes[(s.name, None)])
        elif s.per_step:
            data[s.base] = np.array([[[float(values[e]) for e in row] for row in _rows_of(u.values[(s.name, t)])]
                                     for t in range(1, u.T + 1)])
        else:
            data[s.base] = np.array([[float(values[e]) for e in row] for row in _rows_of(u.values[(s.name, None)])])
    for s in model.states:
        data[s.base + "_0"] = np.array([[float(values[e]) for e in row] for row in _rows_of(u.values[(s.name, 0)])])
    truth = {s.name: np.array([[float(values.get(exact.symbol.get(e), sympy.S.Zero)) for e in row]
                               for row in _rows_of(u.values[(s.name, None)])]) for s in model.params}
    _, grads = module.loss_and_gradients(params, data)
    return sizes, _rows("exact", truth, grads)


def _rows_of(mat):
    return [[mat[i, j] for j in range(mat.cols)] for i in range(mat.rows)]


PASS_CHECKS = ("complex step", "central differences", "random directions")


def _timed_call(run):
    """(run(), its seconds)."""
    start = time.perf_counter()
    out = run()
    return out, time.perf_counter() - start


def verify(model: Model, derivation: MatrixDerivation, sizes: Dict[str, int], seed: int = 0,
           entries: Optional[int] = 30, directions: int = 4, hand: bool = True,
           complex_entries: Optional[int] = -1) -> VerifyResult:
    """Run every numeric check of the generated code for ``model`` at ``sizes``.

    Parameters
    ----------
    entries : int or None
        Entries per parameter for the complex-step and central-difference
        checks (drawn with ``seed``); None checks every entry.
    hand : bool
        Compare with the hand-written BPTT when ``numeric`` has one for the model.
    complex_entries : int or None
        Entries per parameter for the complex-step check, drawn from those
        drawn for ``entries`` when fewer (-1: the same as ``entries``).
    """
    result = VerifyResult(model.name, dict(sizes), seed)
    module = import_source(generate_module(model, derivation))
    shapes = {s.name: concrete_shape(s.shape, sizes) for s in model.params}
    params = random_params(shapes, seed)
    data = random_data(model, module, sizes, seed)

    start = time.perf_counter()
    _, grads = module.loss_and_gradients(params, data)
    result.seconds["generated gradient"] = time.perf_counter() - start

    if hand and model.name in HAND_BPTT and model.path.startswith("<builtin:"):
        _, hand_grads = HAND_BPTT[model.name](params, data)
        result.rows += _rows("hand", hand_grads, grads)
    else:
        result.notes.append("no hand-written BPTT for this model: that column is skipped")

    rng = np.random.default_rng(seed + 2)
    picked = sample_entries(params, entries, rng)
    picked_c = picked
    if None not in (entries, complex_entries) and 0 <= complex_entries < entries:
        rng_c = np.random.default_rng(seed + 3)
        picked_c = {n: np.sort(rng_c.choice(picked[n], size=min(complex_entries, len(picked[n])), replace=False))
                    for n in params}

    counted = {check: CountingLoss(module.loss) for check in PASS_CHECKS}
    tasks = {  # the costliest first: two workers take them in this order
        "complex step": lambda: {n: complex_step(counted["complex step"], params, data, n, picked_c[n])
                                 for n in params},
        "central differences": lambda: {n: central_difference(counted["central differences"], params, data,
                                                              n, picked[n]) for n in params},
        "random directions": lambda: random_direction_check(counted["random directions"], grads, params, data,
                                                            n_directions=directions, seed=seed),
        "exact derivation": lambda: exact_comparison(model, module, seed),
    }
    # NumPy lets go of the interpreter inside its loops, so the checks run two at a time, each
    # with a one-thread BLAS (two checks on a two-thread BLAS each were slower than one by one)
    start = time.perf_counter()
    workers = min(2, os.cpu_count() or 1) if threadpool_limits is not None else 1
    if threadpool_limits is None:
        result.notes.append("threadpoolctl is not installed: the checks ran one after another")
    blas = threadpool_limits(limits=1, user_api="blas") if workers > 1 else contextlib.nullcontext()
    with blas, ThreadPoolExecutor(max_workers=workers) as pool:
        running = {check: pool.submit(_timed_call, task) for check, task in tasks.items()}
        done = {check: future.result() for check, future in running.items()}
    for check in tasks:
        result.seconds[check] = done[check][1]
    result.seconds["all checks, two at a time" if workers > 1 else "all checks"] = time.perf_counter() - start
    for check in PASS_CHECKS:
        result.forward_passes[check] = counted[check].calls
    cs, cd, checks = (done[c][0] for c in PASS_CHECKS)
    result.exact_sizes, exact_rows = done["exact derivation"][0]
    result.rows += _rows("complex", grads, cs, picked_c) + _rows("central", grads, cd, picked) + exact_rows
    for c in checks:
        result.directions.append({"direction": c.index, "complex_step": float(c.complex_step),
                                  "gradient": float(c.gradient), "abs_error": float(c.abs_error),
                                  "rel_error": float(c.rel_error),
                                  "passed": float(c.rel_error) <= TOLERANCE["direction"]})
    if entries is not None:
        cs_text = "" if picked_c is picked else f", complex step at {complex_entries} of them"
        result.notes.append(f"finite differences at {entries} entries per parameter (drawn with the seed)"
                            f"{cs_text}; --entries all checks every entry")
    return result


CHECK_TITLES = {"hand": "vs hand BPTT", "complex": "vs complex step", "central": "vs central diff",
                "exact": "vs exact (small)"}


def format_result(result: VerifyResult) -> str:
    """The human-readable tables of a :class:`VerifyResult`."""
    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    lines = [f"derive verify {result.model}: sizes {sizes}; seed {result.seed} "
             f"(repeat with --seed {result.seed} --size {','.join(f'{k}={v}' for k, v in result.sizes.items())})",
             "", "max relative error of the generated gradient, per parameter "
             "(rel = |a-b| / max(|b|, 1e-8 max|b|); worst entry in brackets)", ""]
    checks = [c for c in CHECK_TITLES if any(r.check == c for r in result.rows)]
    params = list(dict.fromkeys(r.parameter for r in result.rows))
    header = ["parameter"] + [CHECK_TITLES[c] for c in checks]
    table = [header]
    for p in params:
        row = [p]
        for c in checks:
            r = next((r for r in result.rows if r.check == c and r.parameter == p), None)
            mark = "" if r.passed else " FAIL"
            row.append(f"{r.max_rel_error:.1e} abs {r.max_abs_error:.1e} {list(r.worst_index)}{mark}")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    tol = ", ".join(f"{CHECK_TITLES.get(k, k)} {v:.0e}" for k, v in TOLERANCE.items())
    lines.append(f"tolerances: {tol}")
    lines.append("random directions (complex step along a unit direction over all parameters):")
    for d in result.directions:
        lines.append(f"  direction {d['direction']}: directional derivative {d['complex_step']:+.15e}, "
                     f"gradient . v {d['gradient']:+.15e}, rel {d['rel_error']:.1e}"
                     f"{'' if d['passed'] else ' FAIL'}")
    exact = ", ".join(f"{k}={v}" for k, v in result.exact_sizes.items())
    lines.append(f"exact derivation compared at {exact} (50-digit evaluation of the unrolled sweep)")
    lines.append("forward passes: " + ", ".join(f"{k} {v}" for k, v in result.forward_passes.items()))
    lines.append("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items()))
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append("result: all checks agree" if result.passed else "result: MISMATCH (see FAIL above)")
    return "\n".join(lines)
