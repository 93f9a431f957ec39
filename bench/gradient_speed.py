"""Generated gradient code against hand-written BPTT, PyTorch autograd and JAX (items 2 and 3 of issue 5, issue 15)."""

from __future__ import annotations

import time
from typing import Dict, List

import numpy as np

from bench.common import Problem, fmt_time, generated_module, median_times, problems, run_times, spread, table
from bench.jax_models import JaxElman, jax_available
from bench.torch_models import TorchElman, torch_available
from derive.notation.expr import Binary, Call, Pick, Unary, walk
from derive.calculus.matrix import derive_matrix
from derive.numeric import HAND_BPTT, HAND_LOSS

TRANSCENDENTAL = {"tanh", "exp", "log", "sigmoid", "softmax"}


def _fast_available() -> bool:
    try:
        import derive.emit.fast  # noqa: F401
    except ImportError:
        return False
    return True


def count_flops(model, sizes: Dict[str, int]) -> Dict[str, float]:
    """Floating-point operations of one forward pass and of one gradient, read off the equations.

    A product ``m x k @ k x n`` counts ``2 m k n``; every other operation one
    per result entry; ``tanh``, ``exp``, ``log``, ``sigmoid`` and ``softmax``
    are counted apart as transcendental evaluations. A per-step equation or
    adjoint term counts T times (once when it holds at one step only).
    """
    derivation = derive_matrix(model)
    T = sizes.get("T", 1)

    def dim(d):
        return d if isinstance(d, int) else sizes[d]

    def cost(expr):
        flops = trans = 0
        for node in walk(expr):
            try:
                rows, cols = (dim(d) for d in model.shape(node))
            except Exception:
                continue
            if isinstance(node, Binary) and node.op == "@":
                k = dim(model.shape(node.a)[1])
                flops += 2 * rows * k * cols
            elif isinstance(node, Call) and node.fn in TRANSCENDENTAL:
                trans += rows * cols
            elif isinstance(node, Call) and node.fn in ("sum", "rowsum", "colsum", "mean"):
                arg_rows, arg_cols = (dim(d) for d in model.shape(node.args[0]))
                flops += arg_rows * arg_cols
            elif isinstance(node, (Binary, Unary)) and not (isinstance(node, Unary) and node.op == "T"):
                flops += rows * cols
            elif isinstance(node, Pick):
                flops += 0
        return flops, trans

    fwd = [0, 0]
    for eq in model.equations:
        f, t = cost(eq.expr)
        times = T if eq.per_step else 1
        fwd[0] += f * times
        fwd[1] += t * times
    back = [0, 0]
    for name, adjoint in derivation.adjoints.items():
        sym = model.symbols[name]
        for term in adjoint.terms:
            f, t = cost(term.expr)
            times = T if (sym.per_step or term.summed) and term.at is None else 1
            back[0] += f * times
            back[1] += t * times
    return {"forward flops": fwd[0], "forward transcendental": fwd[1],
            "gradient flops": fwd[0] + back[0], "gradient transcendental": fwd[1] + back[1]}


def machine_limits(repeats: int) -> Dict[str, float]:
    """GFLOP/s of a large float64 matrix product and np.tanh / np.exp throughput, this run."""
    n = 1500
    a = np.random.default_rng(0).standard_normal((n, n))
    b = np.random.default_rng(1).standard_normal((n, n))
    out = np.empty((n, n))
    v = np.random.default_rng(2).standard_normal(415_850)  # one regression h_t
    w = np.empty_like(v)
    t = median_times({"matmul": lambda: np.matmul(a, b, out=out),
                      "tanh": lambda: np.tanh(v, out=w),
                      "exp": lambda: np.exp(v, out=w)}, max(3, repeats // 3))
    return {"matmul GFLOP/s": 2 * n ** 3 / t["matmul"] / 1e9,
            "tanh Geval/s": v.size / t["tanh"] / 1e9,
            "exp Geval/s": v.size / t["exp"] / 1e9}


def candidates(p: Problem, fast_module=None) -> Dict[str, Dict[str, object]]:
    """name -> {'grad': callable, 'loss': callable} for every implementation available."""
    out = {
        "generated": {"grad": lambda: p.module.loss_and_gradients(p.params, p.data),
                      "loss": lambda: p.module.loss(p.params, p.data)},
        "hand BPTT": {"grad": lambda: HAND_BPTT[p.hand](p.params, p.data),
                      "loss": lambda: HAND_LOSS[p.hand](p.params, p.data)},
    }
    if fast_module is not None:
        out["generated fast"] = {"grad": lambda: fast_module.loss_and_gradients(p.params, p.data),
                                 "loss": lambda: fast_module.loss(p.params, p.data)}
    if torch_available():
        tm = TorchElman("regression" if p.hand == "elman-regression" else "softmax", p.params, p.data)
        out["PyTorch autograd"] = {"grad": tm.loss_and_gradients, "loss": tm.forward}
    if jax_available():
        jm = JaxElman("regression" if p.hand == "elman-regression" else "softmax", p.params, p.data)
        out["JAX jit"] = {"grad": jm.loss_and_gradients, "loss": jm.forward}
    return out


def check_agreement(p: Problem, cands) -> float:
    """Largest relative difference of any candidate's parameter gradients from the hand BPTT (must be tiny)."""
    _, reference = HAND_BPTT[p.hand](p.params, p.data)
    worst = 0.0
    for name, c in cands.items():
        _, grads = c["grad"]()
        for k in p.params:  # the hand BPTT also gives dL/dh_0, which PyTorch and JAX are not asked for
            ref = reference[k]
            err = np.max(np.abs(np.asarray(grads[k]) - ref)) / max(np.max(np.abs(ref)), 1e-300)
            worst = max(worst, float(err))
    if worst > 1e-9:
        raise AssertionError(f"{p.label}: the implementations disagree (relative {worst:.1e})")
    return worst


def _repeats_for(f, least: int, quick: bool) -> int:
    """Runs per candidate: at least ``least``, more for fast problems (about 2 s of one candidate,
    at most 401 runs), so that a millisecond problem is not read off a few noisy runs."""
    if quick:
        return least
    f()
    start = time.perf_counter()
    f()
    return int(min(401, max(least, 2.0 / max(time.perf_counter() - start, 1e-6))))


def run(quick: bool = False) -> Dict[str, object]:
    repeats = 5 if quick else 21
    limits = machine_limits(repeats)
    results = []
    for p in problems(quick):
        fast = generated_module(p.model, "fast") if _fast_available() else None
        cands = candidates(p, fast)
        agreement = check_agreement(p, cands)
        runs = _repeats_for(cands["hand BPTT"]["grad"], repeats, quick)
        grad_runs = run_times({k: c["grad"] for k, c in cands.items()}, runs)
        loss = median_times({k: c["loss"] for k, c in cands.items()}, runs)
        flops = count_flops(p.model, p.sizes)
        results.append({"problem": p.label, "grad": {k: float(np.median(v)) for k, v in grad_runs.items()},
                        "grad spread": {k: spread(v) for k, v in grad_runs.items()},
                        "loss": loss, "flops": flops, "agreement": agreement, "runs": runs})
    return {"limits": limits, "results": results, "repeats": repeats}


def markdown(r) -> List[str]:
    limits = r["limits"]
    lines = ["### Gradient speed: generated code, hand-written BPTT, PyTorch autograd, JAX", "",
             f"Median of at least {r['repeats']} runs of `loss_and_gradients` (forward + backward; more "
             "for the faster problems, about 2 s of the hand BPTT's time, at most 401: the count is under "
             "the problem), float64, in one process, the candidates interleaved, at the thread counts of "
             "the machine line above. The problems run in the table's order: once the regression's "
             "3 MB arrays have been freed, glibc keeps arrays of that size on its heap, so later "
             "temporaries cost no page faults (for the hand BPTT's too; the all-cores table runs each "
             "implementation in a fresh process). "
             "'spread' is the interquartile range of the runs over their median, the noise to read a "
             "ratio against. Every gradient agrees with the hand BPTT's to the largest relative "
             "difference given under the problem. 'generated' is the default readable module "
             "(`derive code`), 'generated fast' the `--style fast` module (one thread: `threads=1`). "
             "'JAX jit' is `jax.jit(jax.value_and_grad(loss))` of the same model in float64, the recurrence "
             "a `lax.scan` (`bench/jax_models.py`), on the CPU, each call waiting for its result and "
             "converting the gradients to NumPy; with `--blas-threads N` its XLA CPU thread pool is "
             "limited too (`XLA_FLAGS`, see the machine line).", ""]
    rows = []
    for res in r["results"]:
        g, lo, sp = res["grad"], res["loss"], res["grad spread"]
        for k, name in enumerate(g):
            ratio_hand = g[name] / g["hand BPTT"]
            ratio_torch = (g[name] / g["PyTorch autograd"]) if "PyTorch autograd" in g else float("nan")
            ratio_jax = (g[name] / g["JAX jit"]) if "JAX jit" in g else float("nan")
            problem = [res["problem"], f"(agree to {res['agreement']:.0e}; {res['runs']} runs)"]
            rows.append([problem[k] if k < 2 else "", name, fmt_time(g[name]), f"{100 * sp[name]:.1f} %",
                         fmt_time(lo[name]), f"{g[name] / lo[name]:.2f}",
                         f"{ratio_hand:.2f}", f"{ratio_torch:.2f}", f"{ratio_jax:.2f}"])
    lines += table(["problem", "implementation", "gradient", "spread", "forward only", "gradient / forward",
                    "time / hand BPTT", "time / PyTorch", "time / JAX"], rows)
    lines += ["", "### Fraction of the machine's limits", "",
              f"Measured in the same run: a 1500 x 1500 float64 matrix product at "
              f"{limits['matmul GFLOP/s']:.1f} GFLOP/s; `np.tanh` at {limits['tanh Geval/s'] * 1e3:.0f} M "
              f"evaluations/s and `np.exp` at {limits['exp Geval/s'] * 1e3:.0f} M/s on a 415,850-entry array. "
              "Operations are counted from the equations (2mkn per matrix product, one per entry otherwise; "
              "tanh/exp/log/sigmoid/softmax entries counted apart as transcendental).", ""]
    rows = []
    for res in r["results"]:
        f = res["flops"]
        for name in [n for n in ("generated fast", "generated") if n in res["grad"]][:1]:
            t = res["grad"][name]
            gflops = f["gradient flops"] / t / 1e9
            trans = f["gradient transcendental"] / t / 1e9
            rows.append([res["problem"], name, f"{f['gradient flops'] / 1e6:.1f} M",
                         f"{f['gradient transcendental'] / 1e6:.2f} M", f"{gflops:.2f}",
                         f"{100 * gflops / limits['matmul GFLOP/s']:.1f} %",
                         f"{100 * trans / limits['tanh Geval/s']:.0f} %"])
    lines += table(["problem", "code", "gradient flops", "transcendental evals", "GFLOP/s",
                    "of matmul GFLOP/s", "transcendental rate / np.tanh rate"], rows)
    return lines
