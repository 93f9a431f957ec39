"""Gradient speed on every core: each implementation in its own process, at its best thread setting.

In one process, a multi-threaded OpenBLAS and PyTorch's OpenMP threads spin
while the other works, and the interleaved timings of the main table are
then meaningless above one thread. Here every (problem, implementation)
runs in a child process with its own thread settings:

- hand BPTT and the generated fast module with ``threads=1``: OpenBLAS on
  every core (its matrix products are the only parallel work);
- the generated fast module with ``threads=N`` (N cores): OpenBLAS on one
  thread, the batch's columns split over N threads (a multi-threaded
  OpenBLAS called from several threads at once is slower than one);
- PyTorch autograd: ``torch.set_num_threads(N)``.

The children run round-robin, ``rounds`` times, and the table gives the
median of all their runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

PROBLEMS = ("regression", "char1", "char32")
ROOT = Path(__file__).resolve().parent.parent


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def implementations(n: int) -> Dict[str, Dict[str, object]]:
    """name -> how its child runs: BLAS/OpenMP threads and the fast module's ``threads``."""
    return {
        "hand BPTT": {"impl": "hand", "blas": n, "threads": 1},
        "generated fast, threads=1": {"impl": "fast", "blas": n, "threads": 1},
        f"generated fast, threads={n}": {"impl": "fast", "blas": 1, "threads": n},
        "PyTorch autograd": {"impl": "torch", "blas": n, "threads": n},
    }


def _problem(key: str):
    from bench.common import char_problem, regression_problem
    return regression_problem() if key == "regression" else char_problem(int(key[len("char"):]))


def child(problem_key: str, impl: str, threads: int, repeats: int) -> Dict[str, object]:
    """Run in the child: times of ``repeats`` gradient calls (after one warm-up)."""
    from bench.common import generated_module, run_times
    from derive.numeric import HAND_BPTT
    p = _problem(problem_key)
    parts = 1
    if impl == "hand":
        def f():
            return HAND_BPTT[p.hand](p.params, p.data)
    elif impl == "fast":
        module = generated_module(p.model, "fast")
        kwargs = {"threads": threads} if hasattr(module, "_batch_parts") else {}
        if kwargs:
            parts = len(module._batch_parts(p.params, p.data, threads))

        def f():
            return module.loss_and_gradients(p.params, p.data, **kwargs)
    else:
        import torch
        from bench.torch_models import TorchElman
        torch.set_num_threads(threads)
        f = TorchElman("regression" if p.hand == "elman-regression" else "softmax", p.params, p.data).loss_and_gradients
    return {"times": run_times({"f": f}, repeats)["f"], "parts": parts}


def _spawn(problem_key: str, spec: Dict[str, object], repeats: int) -> Dict[str, object]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(spec["blas"])
    cmd = [sys.executable, "-m", "bench.all_cores", problem_key, str(spec["impl"]), str(spec["threads"]),
           str(repeats)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run(quick: bool = False) -> Dict[str, object]:
    import numpy as np

    from bench.torch_models import torch_available
    n = cores()
    specs = implementations(n)
    if not torch_available():
        specs.pop("PyTorch autograd")
    rounds, repeats = (1, 5) if quick else (3, 11)
    times: Dict[str, Dict[str, List[float]]] = {k: {name: [] for name in specs} for k in PROBLEMS}
    parts: Dict[str, Dict[str, int]] = {k: {} for k in PROBLEMS}
    for _ in range(rounds):
        for key in PROBLEMS:
            for name, spec in specs.items():
                result = _spawn(key, spec, repeats)
                times[key][name] += result["times"]
                parts[key][name] = result["parts"]
    labels = {key: _problem(key).label for key in PROBLEMS}
    medians = {key: {name: float(np.median(ts)) for name, ts in by.items()} for key, by in times.items()}
    return {"cores": n, "rounds": rounds, "repeats": repeats, "labels": labels,
            "median": medians, "parts": parts, "specs": specs}


def markdown(r) -> List[str]:
    from bench.common import fmt_time, table
    n = r["cores"]
    lines = ["### Gradient speed on all cores", "",
             f"Each implementation in its own process on all {n} cores: hand BPTT and the fast module "
             f"with `threads=1` with OpenBLAS on {n} threads; the fast module with `threads={n}` with "
             f"OpenBLAS on one thread and the batch's columns split over {n} threads (parts of at least "
             f"256 columns, so the narrow character batches run as one part, and the row differs from "
             f"`threads=1` only by OpenBLAS on one thread); PyTorch with "
             f"`torch.set_num_threads({n})`. Median of {r['rounds']} x {r['repeats']} runs, the processes "
             "round-robin.", ""]
    rows = []
    for key, label in r["labels"].items():
        m = r["median"][key]
        for k, name in enumerate(m):
            torch_time = m.get("PyTorch autograd")
            rows.append([label if k == 0 else "", name, str(r["parts"][key][name]), fmt_time(m[name]),
                         f"{m[name] / m['hand BPTT']:.2f}",
                         f"{m[name] / torch_time:.2f}" if torch_time else ""])
    lines += table(["problem", "implementation", "batch parts", "gradient", "time / hand BPTT",
                    "time / PyTorch"], rows)
    return lines


if __name__ == "__main__":
    key, impl, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(child(key, impl, threads, repeats)))
