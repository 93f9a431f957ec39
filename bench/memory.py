"""Peak memory of the generated code against the hand-written BPTT (item 5 of issue 5)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import List

from bench.common import generated_module, problems, table
from numeric import HAND_BPTT


def peak_bytes(fn) -> int:
    """Peak traced allocation (bytes) during one call (NumPy reports its buffers to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(quick: bool = False) -> dict:
    rows = []
    for p in problems(quick):
        cands = {"generated": p.module, "hand BPTT": None}
        try:
            cands["generated fast"] = generated_module(p.model, "fast")
        except ImportError:
            pass
        result = {"problem": p.label}
        for name, module in cands.items():
            if module is None:
                fn = (lambda: HAND_BPTT[p.hand](p.params, p.data))
            else:
                fn = (lambda m=module: m.loss_and_gradients(p.params, p.data))
            fn()
            result[name] = peak_bytes(fn)
        rows.append(result)
    return {"rows": rows}


def _mb(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def markdown(r) -> List[str]:
    names = [k for k in r["rows"][0] if k != "problem"]
    lines = ["### Peak memory", "", "Peak traced allocation during one `loss_and_gradients` call "
             "(`tracemalloc`; NumPy reports its array buffers to it).", ""]
    rows = []
    for x in r["rows"]:
        rows.append([x["problem"]] + [_mb(x[n]) for n in names]
                    + [f"{x[n] / x['hand BPTT']:.2f}" for n in names if n != "hand BPTT"])
    lines += table(["problem"] + names + [f"{n} / hand" for n in names if n != "hand BPTT"], rows)
    return lines
