"""``derive verify``: generated code against hand BPTT, finite differences and the exact derivation."""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import numpy as np
import sympy

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # a dependency, but a checkout run without installing may lack it
    threadpool_limits = None

from ..calculus.cache_keys import cached_for_model
from ..calculus.exact import reverse_sweep, unroll
from ..calculus.matrix import MatrixDerivation
from ..calculus.prove import default_proof_sizes
from ..calculus.witness import numeric_values
from ..emit.loader import import_source
from ..emit.readable import generate_module
from ..errors import InputError, SourceText
from ..model.model import Model
from ..model.sizes import check_sizes
from ..notation.blocks import dim_value
from ..numeric import (
    HAND_BPTT,
    CountingLoss,
    central_difference_estimates,
    complex_step,
    random_direction_check,
    random_params,
)
from .rule import ROUNDING_FLOOR, TOLERANCE, VerifyResult, explain, judge


def concrete_shape(shape, sizes: Dict[str, int]):
    return tuple(dim_value(d, sizes) for d in shape)


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

MEMORY_LIMIT = 2 * 2 ** 30
"""Default of the largest memory verify lets one complex-step pass take, estimated (bytes; ``--memory``).

The estimate (16 bytes a complex value, 8 stores of each) is two to three times
the peak measured: ``derive verify elman-regression`` is estimated at 1.0
GiB (its inputs included) and peaked at 0.37 GiB resident."""


def _gib(n: int) -> str:
    return f"{n / 2**30:.2g}"


def input_values(model: Model, sizes: Dict[str, int]) -> int:
    """How many values the parameters, the data and the initial states hold at ``sizes``."""
    total = 0
    for sym in model.symbols.values():
        if sym.kind != "quantity":
            rows, cols = concrete_shape(sym.shape, sizes)
            total += rows * cols * (sizes.get("T", 1) if sym.per_step and sym.kind != "state" else 1)
    return total


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
    if key not in _EXACT_POINTS:  # and on disk by the model's canonical text (derive.cache)
        _EXACT_POINTS[key] = cached_for_model("exact_point", model, (seed,), lambda: _exact_point(model, seed))
    return _EXACT_POINTS[key]


def _exact_point(model: Model, seed: int) -> tuple:
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
    truth.update({s.base: np.array([adjoint((s.name, t)) for t in range(1, u.T + 1)]) if s.per_step
                  else adjoint((s.name, None)) for s in model.differentiable_inputs})
    return sizes, params, data, truth


def exact_comparison(model: Model, module, seed: int) -> tuple:
    """Generated code against the exact elementwise derivation at small sizes (parameters, h_0 and inputs)."""
    sizes, params, data, truth = exact_point(model, seed)
    inputs = gradient_inputs(model, module)
    _, grads = all_gradients(module, params, data, inputs)
    unchecked = {s.base for s in model.differentiable_inputs} - set(inputs)
    truth = {k: v for k, v in truth.items() if k not in unchecked}
    return sizes, judge("exact", with_states(grads, data, model), truth)


def gradient_inputs(model: Model, module) -> List[str]:
    """The data keys of the inputs whose gradients ``module`` returns (``wrt_inputs=True``); none for a
    module written before it took that argument."""
    if "wrt_inputs" not in inspect.signature(module.loss_and_gradients).parameters:
        return []
    return [s.base for s in model.differentiable_inputs]


def all_gradients(module, params, data, inputs: List[str]):
    """The loss and every gradient: parameters, initial states and (when ``inputs``) inputs."""
    if inputs:
        return module.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
    return module.loss_and_gradients(params, data, wrt_initial_state=True)


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
           complex_entries: Optional[int] = -1, source: Optional[str] = None,
           memory_limit: int = MEMORY_LIMIT) -> VerifyResult:
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
    memory_limit : int
        Bytes one complex-step pass may take, as estimated from the sizes;
        larger sizes are refused before any work.

    The result is kept in the on-disk cache (:mod:`derive.cache`) under the
    model's canonical text and every argument above; a later call with the
    same reads it, its ``seconds`` those of the first run.

    Raises
    ------
    InputError
        When ``sizes`` put a fixed step of the model outside 0..T or make a
        constant undefined, or need more memory than ``memory_limit``.
    """
    check_sizes(model, sizes)
    result = VerifyResult(model.name, dict(sizes), seed)
    # the stores of a complex pass and its temporaries, then the inputs: drawn as floats, held as complex
    needed = 8 * 16 * forward_values(model, sizes) + 24 * input_values(model, sizes)
    if needed > memory_limit:
        message = (f"the sizes {', '.join(f'{k}={v}' for k, v in sizes.items())} need about "
                   f"{_gib(needed)} GiB for one complex-step pass (limit {_gib(memory_limit)} GiB): "
                   "give smaller ones with --size, or raise the limit with --memory")
        own = all(model.sizes.get(k) == v for k, v in sizes.items())
        declared = [k for k in sizes if k in model.size_positions]
        if own and declared:  # the file's sizes, none given by --size: point at the largest
            largest = max(declared, key=lambda k: sizes[k])
            raise SourceText(model.source, model.path).error(message, model.size_positions[largest])
        raise InputError(message, model.path)
    args = (model, derivation, sizes, seed, entries, directions, hand, complex_entries, source)
    # everything the verdict depends on besides the model's canonical text (the seconds are the first run's)
    parts = (model.name, model.path.startswith("<builtin:"), tuple(sizes.items()), seed, entries, directions,
             hand, complex_entries, source, repr(list(derivation.adjoints.values())), repr(derivation.constants),
             threadpool_limits is None, min(2, os.cpu_count() or 1))
    return cached_for_model("verify", model, parts, lambda: _verify_or_verdict(result, *args))


def _verify_or_verdict(result, model, derivation, sizes, seed, entries, directions, hand, complex_entries,
                       source):
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
    inputs = gradient_inputs(model, module)
    states = [s.base + "_0" for s in model.states] + inputs
    variables = dict(params)
    variables.update({k: np.asarray(data[k], dtype=float) for k in states})
    loss = joint_loss(module.loss, states)

    start = time.perf_counter()
    _, grads = all_gradients(module, params, data, inputs)
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
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with recorder, blas:
            running = {check: pool.submit(_timed_call, task) for check, task in tasks.items()}
            done = {check: future.result() for check, future in running.items()}
    except BaseException:  # a time limit or Ctrl-C: do not wait for the checks still running
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
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
        allowed = float(rtol * abs(c.complex_step) + atol * norm + ROUNDING_FLOOR)
        result.directions.append({"direction": c.index, "complex_step": float(c.complex_step),
                                  "gradient": float(c.gradient), "abs_error": float(c.abs_error),
                                  "rel_error": (None if abs(c.complex_step) <= ROUNDING_FLOOR
                                                else float(c.rel_error)), "allowed": allowed,
                                  "passed": bool(float(c.abs_error) <= allowed)})
    if entries is not None:
        cs_text = "" if picked_c is picked else f", complex step at {complex_entries} of them"
        result.notes.append(f"finite differences at {entries} entries per parameter, initial state and input "
                            f"(drawn with the seed){cs_text}; --entries all checks every entry")
    explain(result)
    return result
