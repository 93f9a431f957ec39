"""Peak memory of the generated code against the hand-written BPTT (item 5 of issue 5)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import List

from bench.common import generated_module, problems, table
from derive.numeric import HAND_BPTT


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
            if hasattr(module, "release_buffers"):  # the fast style's pool: allocate it afresh, in view
                module.release_buffers()
            result[name] = peak_bytes(fn)
            if hasattr(module, "_free"):
                result["kept by generated fast"] = sum(a.nbytes for kept in module._free.values() for a in kept)
        rows.append(result)
    return {"rows": rows}


def _mb(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def markdown(r) -> List[str]:
    names = [k for k in r["rows"][0] if k not in ("problem", "kept by generated fast")]
    kept = "kept by generated fast" in r["rows"][0]
    lines = ["### Peak memory", "", "Peak traced allocation during one `loss_and_gradients` call "
             "(`tracemalloc`; NumPy reports its array buffers to it). The fast module's pool of arrays "
             "kept between calls is emptied first, so its peak counts every array it uses; 'kept' is "
             "what the pool holds after the call, until the next call or `release_buffers()`.", ""]
    rows = []
    for x in r["rows"]:
        rows.append([x["problem"]] + [_mb(x[n]) for n in names]
                    + ([_mb(x["kept by generated fast"])] if kept else [])
                    + [f"{x[n] / x['hand BPTT']:.2f}" for n in names if n != "hand BPTT"])
    lines += table(["problem"] + names + (["kept by generated fast"] if kept else [])
                   + [f"{n} / hand" for n in names if n != "hand BPTT"], rows)
    return lines
