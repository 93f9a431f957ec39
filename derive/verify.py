"""``derive verify``: generated code against hand BPTT, finite differences and the exact derivation."""

from __future__ import annotations

import contextlib
import os
import threading
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

from numeric import (HAND_BPTT, CountingLoss, central_difference_estimates, complex_step,
                     random_direction_check, random_params)

from .codegen import generate_module
from .errors import InputError
from .exact import reverse_sweep, unroll
from .loader import import_source
from .matrix import MatrixDerivation
from .model import Model
from .prove import default_proof_sizes, numeric_values

TOLERANCE = {  # (rtol, atol): an entry agrees when |a - b| <= rtol |b| + atol S (see decide)
    "hand": (1e-10, 1e-12), "complex": (1e-9, 1e-11), "central": (1e-7, 1e-9),
    "exact": (1e-9, 1e-11), "direction": (1e-9, 1e-11)}
"""Per check, the relative and absolute tolerance of one entry.

An entry ``a`` of the generated gradient agrees with the reference ``b``
when ``|a - b| <= rtol |b| + atol S``, where ``S`` is the largest ``|b|``
that check compared over every parameter and initial state: an entry of
``2.5e-6`` in a gradient whose scale is 1 is judged at the gradient's scale,
as rounding affects it. Central differences add their own estimated error
per entry (:func:`numeric.central_difference_estimates`). A random
direction agrees when ``|g.v - D_v| <= rtol |D_v| + atol |g|``.
"""

ROUNDING_FLOOR = 64 * np.finfo(np.float64).eps
"""An absolute difference no check holds against an entry: the rounding of order-one intermediate
values (a softmax of one class has the gradient 0, computed as 1 - 1 plus rounding)."""

#: checks whose disagreement is evidence of a wrong gradient on its own: each is exact to rounding
DECISIVE = ("hand", "complex", "exact", "direction")


@dataclass
class CheckRow:
    """One parameter (or initial state) against one reference."""

    check: str
    parameter: str
    entries: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    passed: bool
    failed: int = 0
    skipped: int = 0
    max_estimated_error: float = 0.0


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
    scales: Dict[str, float] = field(default_factory=dict)
    failure: Optional[str] = None

    def verdicts(self) -> Dict[str, str]:
        """Per check: ``agrees``, ``disagrees``, or ``skipped`` (every entry at a kink)."""
        out = {}
        for check in CHECK_TITLES:
            rows = [r for r in self.rows if r.check == check]
            if rows:
                compared = sum(r.entries - r.skipped for r in rows)
                out[check] = ("disagrees" if not all(r.passed for r in rows)
                              else "agrees" if compared else "skipped")
        if self.directions:
            out["direction"] = "agrees" if all(d["passed"] for d in self.directions) else "disagrees"
        return out

    @property
    def evidence(self) -> List[str]:
        """The decisive checks that disagree (or ``module`` when it raised): what a MISMATCH rests on."""
        found = [c for c, v in self.verdicts().items() if c in DECISIVE and v == "disagrees"]
        return found + (["module"] if self.failure else [])

    @property
    def passed(self) -> bool:
        """No decisive check disagrees.

        Central differences alone never fail a run: where they disagree and
        the checks that are exact to rounding agree, the output says so.
        """
        return not self.evidence

    def to_json(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["result"] = "agree" if self.passed else "mismatch"
        out["evidence"] = self.evidence
        verdicts = self.verdicts()
        out["checks"] = {c: {"verdict": v, "rtol": TOLERANCE[c][0], "atol": TOLERANCE[c][1],
                             "scale": self.scales.get(c), "decisive": c in DECISIVE,
                             "entries": sum(r.entries for r in self.rows if r.check == c),
                             "failed": sum(r.failed for r in self.rows if r.check == c),
                             "skipped": sum(r.skipped for r in self.rows if r.check == c)}
                         for c, v in verdicts.items()}
        out["tolerances"] = {c: {"rtol": r, "atol": a} for c, (r, a) in TOLERANCE.items()}
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


def judge(check: str, generated: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
          entries: Optional[Dict[str, np.ndarray]] = None, estimated: Optional[Dict[str, np.ndarray]] = None,
          smooth: Optional[Dict[str, np.ndarray]] = None) -> tuple:
    """Rows of one check: the generated gradient against a reference, entry by entry.

    Parameters
    ----------
    generated : dict
        The generated gradient, one full array per variable.
    reference : dict
        Full arrays, or (with ``entries``) the reference values at those flat indices.
    estimated : dict, optional
        The reference's own estimated error per entry (central differences).
    smooth : dict, optional
        False where the reference is not defined (a kink): those entries are skipped.

    Returns
    -------
    (list of CheckRow, float)
        The rows, and the scale ``S`` of the tolerance (see :data:`TOLERANCE`).
    """
    rtol, atol = TOLERANCE[check]
    flat, refs, gens, oks = {}, {}, {}, {}
    for name, ref in reference.items():
        g = np.asarray(generated[name], dtype=float).reshape(-1)
        idx = np.asarray(entries[name]) if entries is not None else np.arange(g.size)
        flat[name], gens[name] = idx, g[idx]
        refs[name] = np.asarray(ref, dtype=float).reshape(-1)
        oks[name] = np.ones(idx.shape, bool) if smooth is None else np.asarray(smooth[name], bool)
    compared = [np.abs(refs[n][oks[n]]) for n in refs if oks[n].any()]
    scale = max((float(a.max()) for a in compared), default=0.0)
    rows = []
    for name, ref in refs.items():
        shape = np.shape(generated[name])
        ok = oks[name]
        err = np.abs(gens[name] - ref)
        allowed = rtol * np.abs(ref) + atol * scale + ROUNDING_FLOOR
        if estimated is not None:
            allowed = allowed + np.asarray(estimated[name])
        bad = (err > allowed) & ok
        shown = np.where(ok, err, -1.0)
        k = int(np.argmax(shown)) if ok.any() else 0
        floor = max(1e-8 * float(np.max(np.abs(ref[ok]), initial=0.0)), 1e-8 * scale, 1e-300)
        rel = err[ok] / np.maximum(np.abs(ref[ok]), floor)
        worst = tuple(int(i) for i in np.unravel_index(int(flat[name][k]), shape)) if flat[name].size else ()
        est = float(np.max(np.asarray(estimated[name])[ok], initial=0.0)) if estimated is not None else 0.0
        rows.append(CheckRow(check, name, int(ref.size), float(err[k]) if ok.any() else 0.0,
                             float(rel.max(initial=0.0)), worst, not bad.any(), int(bad.sum()),
                             int((~ok).sum()), est))
    return rows, scale


class BranchRecorder:
    """Records the branch every ``relu`` and ``step`` of a generated module takes.

    While installed, the module's ``_relu`` and ``_step`` note the sign
    pattern of their argument's real part; :meth:`take` returns what this
    thread recorded since its last call (threads keep separate records).
    """

    FUNCTIONS = ("_relu", "_step")

    def __init__(self, module):
        self.module = module
        self.local = threading.local()
        self.saved = {}

    def __enter__(self):
        for name in self.FUNCTIONS:
            original = getattr(self.module, name, None)
            if original is None:
                continue
            self.saved[name] = original
            setattr(self.module, name, self.wrap(original))
        return self

    def __exit__(self, *exc):
        for name, original in self.saved.items():
            setattr(self.module, name, original)

    def wrap(self, original):
        def recorded(a):
            if not hasattr(self.local, "pattern"):
                self.local.pattern = []
            self.local.pattern.append(np.packbits(np.real(a) > 0).tobytes())
            return original(a)
        return recorded

    def take(self) -> tuple:
        pattern = tuple(getattr(self.local, "pattern", ()))
        self.local.pattern = []
        return pattern


def joint_loss(loss, states: List[str]):
    """``loss(params, data)`` as a function of the parameters and initial states together.

    The initial states (``h_0``) are data of the generated module; differentiating
    with respect to them takes them from the variables' dict instead.
    """
    def of_variables(variables, data):
        params = {k: v for k, v in variables.items() if k not in states}
        merged = dict(data)
        merged.update({k: variables[k] for k in states})
        return loss(params, merged)
    return of_variables


LARGE_FORWARD = 10 ** 6

MEMORY_LIMIT = 4 * 2 ** 30
"""Largest memory verify lets one forward pass's values take (bytes)."""


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


_EXACT_POINTS: Dict[tuple, tuple] = {}


def exact_point(model: Model, seed: int) -> tuple:
    """The exact derivation evaluated at a random point: sizes, params, data and the true gradient.

    Kept for the process by the model's text and the seed, since it does not
    depend on the module under test (checking several modules of one model
    derives once).
    """
    key = (model.path, model.source, seed)
    if key in _EXACT_POINTS:
        return _EXACT_POINTS[key]
    sizes = default_proof_sizes(model)[0]
    u = unroll(model, sizes, class_seed=seed)
    exact = reverse_sweep(u)
    values = numeric_values(u, exact, seed)

    def value(key):
        return np.array([[float(values[e]) for e in row] for row in _rows_of(u.values[key])])

    def adjoint(key):
        return np.array([[float(values.get(exact.symbol.get(e), sympy.S.Zero)) for e in row]
                         for row in _rows_of(u.values[key])])

    params = {s.name: value((s.name, None)) for s in model.params}
    data = {}
    for s in model.data_symbols:
        if s.classes is not None:
            data[s.base] = np.array([u.classes[(s.name, t)] for t in range(1, u.T + 1)]) if s.per_step \
                else np.array(u.classes[(s.name, None)])
        elif s.per_step:
            data[s.base] = np.array([value((s.name, t)) for t in range(1, u.T + 1)])
        else:
            data[s.base] = value((s.name, None))
    for s in model.states:
        data[s.base + "_0"] = value((s.name, 0))
    truth = {s.name: adjoint((s.name, None)) for s in model.params}
    truth.update({s.base + "_0": adjoint((s.name, 0)) for s in model.states})
    _EXACT_POINTS[key] = sizes, params, data, truth
    return _EXACT_POINTS[key]


def exact_comparison(model: Model, module, seed: int) -> tuple:
    """Generated code against the exact elementwise derivation at small sizes (parameters and h_0)."""
    sizes, params, data, truth = exact_point(model, seed)
    _, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
    return sizes, judge("exact", with_states(grads, data, model), truth)


def _rows_of(mat):
    return [[mat[i, j] for j in range(mat.cols)] for i in range(mat.rows)]


PASS_CHECKS = ("complex step", "central differences", "random directions")


def with_states(grads: Dict[str, np.ndarray], data, model: Model) -> Dict[str, np.ndarray]:
    """The module's gradients with every initial state's, zero where the module returned none."""
    out = dict(grads)
    for s in model.states:
        key = s.base + "_0"
        if key not in out:
            out[key] = np.zeros(np.shape(data[key]))
    return out


def _timed_call(run):
    """(run(), its seconds)."""
    start = time.perf_counter()
    out = run()
    return out, time.perf_counter() - start


def verify(model: Model, derivation: MatrixDerivation, sizes: Dict[str, int], seed: int = 0,
           entries: Optional[int] = 30, directions: int = 4, hand: bool = True,
           complex_entries: Optional[int] = -1, source: Optional[str] = None) -> VerifyResult:
    """Run every numeric check of the generated code for ``model`` at ``sizes``.

    Every gradient the module returns is checked: each parameter's and each
    state's initial value's (``h_0``), against complex step, central
    differences, random directions, the exact derivation and, for the
    built-ins, the hand-written BPTT.

    Parameters
    ----------
    entries : int or None
        Entries per variable for the complex-step and central-difference
        checks (drawn with ``seed``); None checks every entry.
    hand : bool
        Compare with the hand-written BPTT when ``numeric`` has one for the model.
    complex_entries : int or None
        Entries per variable for the complex-step check, drawn from those
        drawn for ``entries`` when fewer (-1: the same as ``entries``).
    source : str, optional
        A module to check instead of the generated one (an edited copy, say),
        with the generated module's interface.
    """
    result = VerifyResult(model.name, dict(sizes), seed)
    needed = 8 * 16 * forward_values(model, sizes)  # the stores of a complex pass and its temporaries
    if needed > MEMORY_LIMIT:
        raise InputError(f"these sizes need about {needed / 2**30:.0f} GiB for one complex-step pass "
                         f"(limit {MEMORY_LIMIT / 2**30:.0f} GiB): give smaller ones with --size", model.path)
    if source is None:  # derive's own module: an exception in it is a bug of derive's, not a verdict
        return _verify(result, model, derivation, sizes, seed, entries, directions, hand, complex_entries,
                       source)
    try:
        return _verify(result, model, derivation, sizes, seed, entries, directions, hand, complex_entries,
                       source)
    except Exception as exc:  # the module under test failed: that is a verdict
        result.failure = f"the module raised {type(exc).__name__}: {exc}"
        return result


def _verify(result, model, derivation, sizes, seed, entries, directions, hand, complex_entries, source):
    module = import_source(source if source is not None else generate_module(model, derivation))
    shapes = {s.name: concrete_shape(s.shape, sizes) for s in model.params}
    params = random_params(shapes, seed)
    data = random_data(model, module, sizes, seed)
    states = [s.base + "_0" for s in model.states]
    variables = dict(params)
    variables.update({k: data[k] for k in states})
    loss = joint_loss(module.loss, states)

    start = time.perf_counter()
    _, grads = module.loss_and_gradients(params, data, wrt_initial_state=True)
    result.seconds["generated gradient"] = time.perf_counter() - start
    grads = with_states(grads, data, model)

    if hand and model.name in HAND_BPTT and model.path.startswith("<builtin:"):
        _, hand_grads = HAND_BPTT[model.name](params, data)
        rows, result.scales["hand"] = judge("hand", grads, hand_grads)
        result.rows += rows
    else:
        result.notes.append("no hand-written BPTT for this model: that column is skipped")

    rng = np.random.default_rng(seed + 2)
    picked = sample_entries(variables, entries, rng)
    picked_c = picked
    if None not in (entries, complex_entries) and 0 <= complex_entries < entries:
        rng_c = np.random.default_rng(seed + 3)
        picked_c = {n: np.sort(rng_c.choice(picked[n], size=min(complex_entries, len(picked[n])), replace=False))
                    for n in variables}

    rtol, atol = TOLERANCE["central"]
    scale = max((float(np.max(np.abs(np.asarray(grads[n]).reshape(-1)[picked[n]]), initial=0.0))
                 for n in variables), default=0.0)

    def settled(name):  # an entry that agrees at the first step needs no second one
        g = np.asarray(grads[name], dtype=float).reshape(-1)[picked[name]]
        return lambda k, value, error: abs(g[k] - value) <= rtol * abs(value) + atol * scale + error

    counted = {check: CountingLoss(loss) for check in PASS_CHECKS}
    recorder = BranchRecorder(module)
    branches = recorder.take if any(hasattr(module, f) for f in recorder.FUNCTIONS) else None
    tasks = {  # the costliest first: two workers take them in this order
        "complex step": lambda: {n: complex_step(counted["complex step"], variables, data, n, picked_c[n])
                                 for n in variables},
        "central differences": lambda: {
            n: central_difference_estimates(counted["central differences"], variables, data, n, picked[n],
                                            branches=branches, settled=settled(n)) for n in variables},
        "random directions": lambda: random_direction_check(counted["random directions"], grads, variables,
                                                            data, n_directions=directions, seed=seed),
        "exact derivation": lambda: exact_comparison(model, module, seed),
    }
    # NumPy lets go of the interpreter inside its loops, so the checks run two at a time, each
    # with a one-thread BLAS (two checks on a two-thread BLAS each were slower than one by one)
    start = time.perf_counter()
    workers = min(2, os.cpu_count() or 1) if threadpool_limits is not None else 1
    if threadpool_limits is None:
        result.notes.append("threadpoolctl is not installed: the checks ran one after another")
    blas = threadpool_limits(limits=1, user_api="blas") if workers > 1 else contextlib.nullcontext()
    with recorder, blas, ThreadPoolExecutor(max_workers=workers) as pool:
        running = {check: pool.submit(_timed_call, task) for check, task in tasks.items()}
        done = {check: future.result() for check, future in running.items()}
    for check in tasks:
        result.seconds[check] = done[check][1]
    result.seconds["all checks, two at a time" if workers > 1 else "all checks"] = time.perf_counter() - start
    for check in PASS_CHECKS:
        result.forward_passes[check] = counted[check].calls
    cs, cd, checks = (done[c][0] for c in PASS_CHECKS)
    result.exact_sizes, (exact_rows, result.scales["exact"]) = done["exact derivation"][0]
    rows, result.scales["complex"] = judge("complex", grads, cs, picked_c)
    result.rows += rows
    rows, result.scales["central"] = judge("central", grads, {n: e.value for n, e in cd.items()}, picked,
                                           estimated={n: e.error for n, e in cd.items()},
                                           smooth={n: e.smooth for n, e in cd.items()})
    result.rows += rows + exact_rows
    rtol, atol = TOLERANCE["direction"]
    norm = float(np.sqrt(sum(float(np.sum(np.asarray(g, dtype=float) ** 2)) for g in grads.values())))
    for c in checks:
        allowed = rtol * abs(c.complex_step) + atol * norm
        result.directions.append({"direction": c.index, "complex_step": float(c.complex_step),
                                  "gradient": float(c.gradient), "abs_error": float(c.abs_error),
                                  "rel_error": float(c.rel_error), "allowed": allowed,
                                  "passed": float(c.abs_error) <= allowed})
    if entries is not None:
        cs_text = "" if picked_c is picked else f", complex step at {complex_entries} of them"
        result.notes.append(f"finite differences at {entries} entries per parameter and initial state "
                            f"(drawn with the seed){cs_text}; --entries all checks every entry")
    _explain(result)
    return result


def _explain(result: VerifyResult) -> None:
    """Notes on what the verdicts rest on: kinks skipped, central differences overruled."""
    skipped = [r for r in result.rows if r.skipped]
    if skipped:
        count = sum(r.skipped for r in skipped)
        where = ", ".join(f"{r.parameter} {r.skipped}" for r in skipped)
        result.notes.append(f"{count} central-difference entries straddle a kink (a relu or step argument "
                            f"changes sign within the step): not differentiable there, skipped ({where})")
    verdicts = result.verdicts()
    if verdicts.get("central") == "disagrees" and result.passed:
        agree = [CHECK_NAMES[c] for c in DECISIVE if verdicts.get(c) == "agrees"]
        bad = [r for r in result.rows if r.check == "central" and not r.passed]
        where = ", ".join(f"{r.parameter}{list(r.worst_index)}" for r in bad)
        result.notes.append(
            f"central differences disagree beyond their estimated error at {sum(r.failed for r in bad)} "
            f"entries ({where}), but {', '.join(agree)} agree, and they are exact to rounding: read as "
            "finite-difference error, not a mismatch")


CHECK_TITLES = {"hand": "vs hand BPTT", "complex": "vs complex step", "central": "vs central diff",
                "exact": "vs exact (small)"}
CHECK_NAMES = {"hand": "hand BPTT", "complex": "complex step", "central": "central differences",
               "exact": "the exact derivation", "direction": "random directions", "module": "the module"}


def _cell(r: CheckRow) -> str:
    text = f"{r.max_rel_error:.1e} abs {r.max_abs_error:.1e}"
    if r.check == "central":
        text += f" est {r.max_estimated_error:.0e}"
    text += f" {list(r.worst_index)}"
    if r.failed:
        text += f" FAIL {r.failed}/{r.entries}"
    if r.skipped:
        text += f" ({r.skipped} at a kink)"
    return text


def conclusion(result: VerifyResult) -> str:
    """The result line: what agrees, or which decisive checks disagree."""
    verdicts = result.verdicts()
    if result.failure:
        return f"result: MISMATCH: {result.failure}"
    if not result.passed:
        return ("result: MISMATCH: " + ", ".join(CHECK_NAMES[c] for c in result.evidence)
                + " disagree (FAIL above)")
    if verdicts.get("central") == "disagrees":
        agree = [CHECK_NAMES[c] for c in DECISIVE if verdicts.get(c) == "agrees"]
        return ("result: the gradient agrees with " + ", ".join(agree)
                + "; only central differences disagree (see the note)")
    return "result: all checks agree"


def format_result(result: VerifyResult) -> str:
    """The human-readable tables of a :class:`VerifyResult`."""
    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    lines = [f"derive verify {result.model}: sizes {sizes}; seed {result.seed} "
             f"(repeat with --seed {result.seed} --size {','.join(f'{k}={v}' for k, v in result.sizes.items())})",
             "", "max relative error of the generated gradient, per parameter and initial state "
             "(rel = |a-b| / max(|b|, 1e-8 max|b|), the max over that gradient or, when it is all "
             "near zero, over all of them; est: central differences' own estimated error; worst entry "
             "in brackets)", ""]
    checks = [c for c in CHECK_TITLES if any(r.check == c for r in result.rows)]
    params = list(dict.fromkeys(r.parameter for r in result.rows))
    header = ["gradient of"] + [CHECK_TITLES[c] for c in checks]
    table = [header]
    for p in params:
        row = [p]
        for c in checks:
            r = next((r for r in result.rows if r.check == c and r.parameter == p), None)
            row.append("-" if r is None else _cell(r))
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("random directions (complex step along a unit direction over all parameters and initial states):")
    for d in result.directions:
        lines.append(f"  direction {d['direction']}: directional derivative {d['complex_step']:+.15e}, "
                     f"gradient . v {d['gradient']:+.15e}, rel {d['rel_error']:.1e}"
                     f"{'' if d['passed'] else ' FAIL'}")
    exact = ", ".join(f"{k}={v}" for k, v in result.exact_sizes.items())
    lines.append(f"exact derivation compared at {exact} (50-digit evaluation of the unrolled sweep)")
    lines.append("")
    lines.append("verdict per check (an entry agrees when |a - b| <= rtol |b| + atol S, S the largest |b| "
                 "the check compared; central differences add their estimate):")
    for check, verdict in result.verdicts().items():
        rtol, atol = TOLERANCE[check]
        scale = result.scales.get(check)
        scale_text = f"{scale:.1e}" if scale is not None else "|gradient|"
        role = "" if check in DECISIVE else ", supporting evidence only"
        lines.append(f"  {CHECK_NAMES[check]}: {verdict} (rtol {rtol:.0e}, atol {atol:.0e} x {scale_text}{role})")
    lines.append("forward passes: " + ", ".join(f"{k} {v}" for k, v in result.forward_passes.items()))
    lines.append("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items()))
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append(conclusion(result))
    return "\n".join(lines)
