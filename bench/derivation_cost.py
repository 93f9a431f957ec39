"""Derivation cost against T and H (item 1 of issue 5).

Three ways to the same gradients of ``elman-softmax``:

- exact: :func:`derive.calculus.exact.derive_exact`, unroll with one symbol per
  intermediate entry, then a scalar reverse sweep (linear in T);
- matrix: :func:`derive.calculus.matrix.derive_matrix`, the dimension-generic
  recurrences (independent of T and H);
- ``sympy.diff`` of the fully unrolled loss: every definition substituted
  into the loss (one SymPy expression of the parameters and inputs), then
  ``diff`` with respect to every parameter entry. Run in a child process,
  stopped at the time limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Dict, List, Optional

from bench.common import fmt_time, table

MODEL = "elman-softmax"


def sizes_for(H: int, T: int) -> Dict[str, int]:
    return {"H": H, "F": 3, "O": 3, "T": T}


def time_exact(H: int, T: int) -> float:
    from derive.model.build import load_model
    from derive.calculus.exact import derive_exact
    model = load_model(MODEL)
    start = time.perf_counter()
    derive_exact(model, sizes_for(H, T))
    return time.perf_counter() - start


def time_matrix(repeats: int = 5) -> float:
    from derive.model.build import load_model
    from derive.calculus.matrix import derive_matrix
    model = load_model(MODEL)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        derive_matrix(model)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def sympy_diff_unrolled(H: int, T: int) -> dict:
    """Build the unrolled loss as one expression and diff it by every parameter entry (in this process)."""
    import sympy
    from derive.model.build import load_model
    from derive.calculus.exact import unroll
    model = load_model(MODEL)
    u = unroll(model, sizes_for(H, T))
    start = time.perf_counter()
    full: Dict[sympy.Symbol, sympy.Expr] = {}
    for s, expr in u.assignments:                 # definitions in order: substitute the earlier ones
        full[s] = expr.xreplace(full)
    loss = full[u.values[(model.loss, None)][0, 0]]
    built = time.perf_counter() - start
    params = [s for s in u.leaves if u.owner[s][0] in {p.name for p in model.params}]
    grads = [sympy.diff(loss, p) for p in params]
    total = time.perf_counter() - start
    return {"seconds": total, "build_seconds": built, "entries": len(params), "n": len(grads)}


def time_sympy_diff(H: int, T: int, limit: float) -> Optional[float]:
    """Seconds of the baseline in a child process, or None past ``limit``."""
    cmd = [sys.executable, "-m", "bench.derivation_cost", str(H), str(T)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"sympy.diff baseline failed at H={H}, T={T}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def run(quick: bool = False, limit: float = 120.0) -> dict:
    if quick:
        limit = min(limit, 10.0)
    t_values = [2, 3, 5, 10, 25] if quick else [2, 3, 4, 5, 6, 10, 25, 50, 75, 100]
    h_values = [2, 3, 4] if quick else [2, 3, 4, 6, 8]
    readme_t = [5, 10, 25] if quick else [5, 10, 25, 50]
    rows_t = []
    stopped = False
    for T in sorted(set(t_values) | set(readme_t)):
        exact = time_exact(3, T)
        baseline = None if stopped else time_sympy_diff(3, T, limit)
        stopped = stopped or baseline is None
        rows_t.append({"T": T, "exact": exact, "sympy": baseline})
    rows_h = []
    stopped = False
    for H in h_values:
        exact = time_exact(H, 3)
        baseline = None if stopped else time_sympy_diff(H, 3, limit)
        stopped = stopped or baseline is None
        rows_h.append({"H": H, "exact": exact, "sympy": baseline})
    return {"matrix": time_matrix(), "by_T": rows_t, "by_H": rows_h, "limit": limit, "readme_T": readme_t}


def _cell(seconds: Optional[float], limit: float) -> str:
    return f"> {limit:.0f} s (stopped)" if seconds is None else fmt_time(seconds)


def markdown(r) -> List[str]:
    limit = r["limit"]
    lines = ["### Derivation cost", "",
             f"`elman-softmax` with F = O = 3. The matrix derivation (`derive_matrix`) does not depend on "
             f"T or H: {fmt_time(r['matrix'])} (median of 5). The exact derivation (`derive_exact`: unroll "
             "with one symbol per intermediate entry, scalar reverse sweep) against `sympy.diff` of the fully "
             "unrolled loss (all definitions substituted into one expression, then `diff` by every parameter "
             f"entry), the latter in a child process stopped at {limit:.0f} s; once it is stopped, larger "
             "sizes are not tried.", ""]
    rows = [[str(x["T"]), fmt_time(x["exact"]), _cell(x["sympy"], limit),
             "" if x["sympy"] is None else f"{x['sympy'] / x['exact']:.0f}x"] for x in r["by_T"]]
    lines += table(["T (H = 3)", "exact derivation", "sympy.diff of unrolled loss", "sympy.diff / exact"], rows)
    lines.append("")
    rows = [[str(x["H"]), fmt_time(x["exact"]), _cell(x["sympy"], limit),
             "" if x["sympy"] is None else f"{x['sympy'] / x['exact']:.0f}x"] for x in r["by_H"]]
    lines += table(["H (T = 3)", "exact derivation", "sympy.diff of unrolled loss", "sympy.diff / exact"], rows)
    return lines


if __name__ == "__main__":  # the child process of time_sympy_diff
    print(json.dumps(sympy_diff_unrolled(int(sys.argv[1]), int(sys.argv[2]))))
