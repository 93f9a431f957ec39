"""The generated fast module with one core kept busy by another process, at one and two BLAS threads (issue 15).

A multi-threaded OpenBLAS splits a product between its threads and waits for
the slowest: when another process holds one core, the thread that shares that
core runs at a fraction of its speed and the whole product waits for it. Here
every (problem, implementation, thread count) runs in a child process of
:mod:`bench.all_cores`, with ``OPENBLAS_NUM_THREADS`` (and PyTorch's
``set_num_threads``) at 1 and at 2, once with another process spinning in a
Python loop (``while True: pass``, started before the child and stopped after
it) and once without. The children run round-robin, ``rounds`` times, so that
the other load of the machine falls on every row alike; the table gives the
medians of all their runs and the load average at the start and the end.

Run alone as ``python bench/busy_core.py [--quick]``, or as the ``busy-core``
section of ``python -m bench``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

if __package__ in (None, ""):  # run as a script: the repository on the path, as `python -m bench` has it
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.all_cores import PROBLEMS, _problem, _spawn  # noqa: E402

SPIN = "while True:\n    pass\n"


def implementations() -> Dict[str, Dict[str, object]]:
    """name -> how its child runs (BLAS threads; PyTorch's threads follow them)."""
    from bench.torch_models import torch_available
    out = {}
    for impl, label in (("fast", "generated fast"), ("torch", "PyTorch autograd")):
        if impl == "torch" and not torch_available():
            continue
        for blas in (1, 2):
            threads = 1 if impl == "fast" else blas  # the fast module's threads=1; PyTorch's own threads
            out[f"{label}, BLAS threads {blas}"] = {"impl": impl, "blas": blas, "threads": threads}
    return out


def _timed(key: str, spec: Dict[str, object], repeats: int, busy: bool) -> List[float]:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        return _spawn(key, spec, repeats)["times"]
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def run(quick: bool = False) -> Dict[str, object]:
    import numpy as np
    specs = implementations()
    rounds, repeats = (1, 5) if quick else (3, 11)
    load_start = os.getloadavg()
    times = {(key, name, busy): [] for key in PROBLEMS for name in specs for busy in (False, True)}
    for _ in range(rounds):
        for key in PROBLEMS:
            for busy in (False, True):
                for name, spec in specs.items():
                    times[(key, name, busy)] += _timed(key, spec, repeats, busy)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    spreads = {k: float(np.subtract(*np.percentile(v, [75, 25])) / np.median(v)) for k, v in times.items()}
    labels = {key: _problem(key).label for key in PROBLEMS}
    return {"rounds": rounds, "repeats": repeats, "labels": labels, "specs": list(specs),
            "median": medians, "spread": spreads, "load": (load_start, os.getloadavg()), "cores": os.cpu_count()}


def markdown(r) -> List[str]:
    from bench.common import fmt_time, table
    (a, b) = r["load"]
    lines = ["### A busy core: one BLAS thread or two", "",
             f"Each row in its own process (`bench/busy_core.py`), on the {r['cores']} cores of the machine "
             "line, once with another process spinning in a Python loop ('busy') and once without "
             "('as found': the machine's other load only); `OPENBLAS_NUM_THREADS` and PyTorch's threads "
             "at 1 or 2, the fast module with `threads=1`. Median of "
             f"{r['rounds']} x {r['repeats']} runs, the processes round-robin; spread as above. Load "
             f"average (1, 5, 15 min) at the start {a[0]:.2f}, {a[1]:.2f}, {a[2]:.2f} and at the end "
             f"{b[0]:.2f}, {b[1]:.2f}, {b[2]:.2f}.", ""]
    rows = []
    for key, label in r["labels"].items():
        first = True
        for name in r["specs"]:
            calm, busy = r["median"][(key, name, False)], r["median"][(key, name, True)]
            one = r["median"][(key, name.replace("BLAS threads 2", "BLAS threads 1"), True)]
            rows.append([label if first else "", name, fmt_time(calm),
                         f"{100 * r['spread'][(key, name, False)]:.0f} %", fmt_time(busy),
                         f"{100 * r['spread'][(key, name, True)]:.0f} %", f"{busy / calm:.2f}",
                         f"{busy / one:.2f}"])
            first = False
    lines += table(["problem", "implementation", "as found", "spread", "busy", "spread", "busy / as found",
                    "busy / same code at 1 thread, busy"], rows)
    return lines


if __name__ == "__main__":
    result = run("--quick" in sys.argv[1:])
    print("\n".join(markdown(result)))
