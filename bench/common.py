"""Shared pieces of the benchmarks: timing, machine description, problem set-up."""

from __future__ import annotations

import datetime
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from derive.model.build import load_model
from derive.emit.readable import generate_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix
from derive.model.model import Model

BENCH_DIR = Path(__file__).parent
MODELS_DIR = BENCH_DIR / "models"


def run_times(functions: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds of every run of each function, the candidates run round-robin.

    Interleaving the candidates spreads any load from other processes over
    all of them instead of penalising whichever ran during a busy spell.
    """
    for f in functions.values():
        for _ in range(warmup):
            f()
    times: Dict[str, List[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return times


def median_times(functions: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, float]:
    """Median seconds of each function (see :func:`run_times`)."""
    return {name: float(np.median(ts)) for name, ts in run_times(functions, repeats, warmup).items()}


def spread(times: List[float]) -> float:
    """The interquartile range of run times over their median: the noise a ratio is read against."""
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return float((q3 - q1) / median)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown BLAS"


def jax_text() -> str:
    """JAX's version and its CPU threads: XLA's own pool, one thread when ``XLA_FLAGS`` says so."""
    from bench.jax_models import jax_version
    one = "intra_op_parallelism_threads=1" in os.environ.get("XLA_FLAGS", "")
    return f"{jax_version()}{' (1 thread, XLA_FLAGS)' if one else ''}"


def machine_lines() -> List[str]:
    import sympy
    try:
        import torch
        torch_text = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch_text = "torch not installed"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    return [
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__} ({blas_name()}, BLAS threads: {threads}), "
        f"SymPy {sympy.__version__}, {torch_text}, {jax_text()}",
        f"- load average at start (1, 5, 15 min): {load}",
    ]


@dataclass
class Problem:
    """A model at benchmark sizes with its generated module, parameters and data."""

    label: str
    model: Model
    sizes: Dict[str, int]
    module: object
    params: Dict[str, np.ndarray]
    data: Dict[str, np.ndarray]
    hand: str  # key of numeric.HAND_BPTT computing the same loss


def generated_module(model: Model, style: str = "readable"):
    derivation = derive_matrix(model)
    if style == "fast":
        from derive.emit.fast import generate_fast_module
        return import_source(generate_fast_module(model, derivation), "derive_bench_fast")
    return import_source(generate_module(model, derivation), "derive_bench")


def param_shapes(model: Model, sizes: Dict[str, int]):
    return {s.name: tuple(d if isinstance(d, int) else sizes[d] for d in s.shape) for s in model.params}


def regression_problem(seed: int = 0) -> Problem:
    """elman-regression at the notes' size: H=50, F=1, O=1, T=10, B=8317, h_0 = 0."""
    from derive.numeric import random_params
    model = load_model("elman-regression")
    sizes = dict(model.sizes)
    rng = np.random.default_rng(seed + 1)
    T, F, O, B = sizes["T"], sizes["F"], sizes["O"], sizes["B"]
    data = {"x": rng.standard_normal((T, F, B)), "y_true": rng.standard_normal((O, B))}
    params = random_params(param_shapes(model, sizes), seed)
    return Problem("regression H=50 F=1 O=1 T=10 B=8317", model, sizes,
                   generated_module(model), params, data, "elman-regression")


def char_problem(batch: int, seed: int = 0) -> Problem:
    """The character model: H=100, vocabulary V=65 (one-hot x_t, F = O = 65), T=25."""
    from derive.numeric import random_params
    if batch == 1:
        model = load_model("elman-softmax")
    else:
        model = load_model(str(MODELS_DIR / "char-batch.rnn"))
    H, V, T = 100, 65, 25
    sizes = {"H": H, "F": V, "O": V, "T": T}
    if batch != 1:
        sizes["B"] = batch
    rng = np.random.default_rng(seed + 1)
    chars = rng.integers(0, V, size=(T + 1, batch))
    x = np.zeros((T, V, batch))
    steps, cols = np.indices((T, batch))
    x[steps, chars[:-1], cols] = 1.0                      # x_t = onehot(char t)
    data = {"x": x, "c": chars[1:]}                       # target: the next character
    params = random_params(param_shapes(model, sizes), seed)
    return Problem(f"character H=100 V=65 T=25 B={batch}", model, sizes,
                   generated_module(model), params, data, "elman-softmax")


def problems(quick: bool = False) -> List[Problem]:
    return [regression_problem(), char_problem(1), char_problem(32)]


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out
