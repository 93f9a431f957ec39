"""Verification cost at the regression size (item 4 of issue 5).

Forward passes and seconds of each numerical check of the generated
gradient of ``elman-regression`` at H=50, F=1, O=1, T=10, B=8317. Full
central differences and full complex step (every one of the 2,651 parameter
entries) take thousands of passes: the full run measures central differences
over every entry; complex step (and, with ``--quick``, central differences) is
timed on a sample of entries and extrapolated from the measured seconds per
pass, which the table says.
"""

from __future__ import annotations

import time
from typing import List

import numpy as np

from bench.common import fmt_time, generated_module, median_times, regression_problem, table
from derive.numeric import CountingLoss, central_difference, complex_step, random_direction_check


def run(quick: bool = False, style: str = "fast") -> dict:
    p = regression_problem()
    try:
        module = generated_module(p.model, style)
    except ImportError:
        module, style = p.module, "readable"
    n_entries = sum(v.size for v in p.params.values())
    sample = 4 if quick else 20
    rng = np.random.default_rng(3)
    picked = {k: np.sort(rng.choice(v.size, size=min(sample, v.size), replace=False)) for k, v in p.params.items()}
    n_sampled = sum(len(v) for v in picked.values())
    rows = {}
    t = median_times({"gradient": lambda: module.loss_and_gradients(p.params, p.data)}, 3 if quick else 7)
    rows["gradient (forward + backward)"] = {"passes": 1, "seconds": t["gradient"], "estimated": False}
    _, grads = module.loss_and_gradients(p.params, p.data)

    counting = CountingLoss(module.loss)
    start = time.perf_counter()
    if quick:
        for name in p.params:
            central_difference(counting, p.params, p.data, name, picked[name])
        per_pass = (time.perf_counter() - start) / counting.reset()
        rows["central differences, all entries"] = {"passes": 2 * n_entries, "seconds": 2 * n_entries * per_pass,
                                                    "estimated": True, "per_pass": per_pass}
    else:  # every entry, measured (about 90 s on a quiet 2-core machine)
        worst = 0.0
        for name, g in grads.items():
            cd = central_difference(counting, p.params, p.data, name)
            worst = max(worst, float(np.max(np.abs(cd.reshape(g.shape) - g)) / max(float(np.max(np.abs(g))), 1e-300)))
        rows["central differences, all entries"] = {"passes": counting.reset(), "seconds": time.perf_counter() - start,
                                                    "estimated": False, "worst_rel": worst}
    start = time.perf_counter()
    for name in p.params:
        complex_step(counting, p.params, p.data, name, picked[name])
    per_pass_c = (time.perf_counter() - start) / counting.reset()
    rows["complex step, all entries"] = {"passes": n_entries, "seconds": n_entries * per_pass_c,
                                         "estimated": True, "per_pass": per_pass_c}
    start = time.perf_counter()
    _, grads = module.loss_and_gradients(p.params, p.data)
    checks = random_direction_check(counting, grads, p.params, p.data, n_directions=4, seed=0)
    seconds = time.perf_counter() - start
    rows["gradient + random-direction check (4 directions)"] = {
        "passes": counting.reset() + 1, "seconds": seconds, "estimated": False,
        "worst_rel": max(float(c.rel_error) for c in checks)}
    rows["`derive verify` (readable module, central differences at 5 entries per parameter, complex step "
         "at 2, 4 directions, exact comparison; two checks at a time)"] = _cli_verify(p)
    return {"style": style, "rows": rows, "entries": n_entries, "sampled": n_sampled, "quick": quick}


def _cli_verify(p) -> dict:
    """What ``derive verify elman-regression`` costs at this size: every check it runs, timed."""
    from derive.calculus.matrix import derive_matrix
    from derive.verify.run import default_complex_entries, default_entries, verify
    derivation = derive_matrix(p.model)
    start = time.perf_counter()
    result = verify(p.model, derivation, p.sizes, seed=0, entries=default_entries(p.model, p.sizes),
                    complex_entries=default_complex_entries(p.model, p.sizes))
    seconds = time.perf_counter() - start
    return {"passes": sum(result.forward_passes.values()) + 1, "seconds": seconds, "estimated": False,
            "agree": all(r.passed for r in result.rows) and all(d["passed"] for d in result.directions)}


def markdown(r) -> List[str]:
    lines = ["### Verification cost at the regression size", "",
             f"Generated module ({r['style']} style), regression H=50, F=1, O=1, T=10, B=8317: "
             f"{r['entries']:,} parameter entries. "
             + ("Full central differences and complex step are" if r.get("quick") else "Full complex step is")
             + f" estimated from the seconds per forward pass measured over {r['sampled']} sampled entries "
             "(marked 'est.'); the relative errors are the largest difference from the generated gradient "
             "over its largest entry.", ""]
    rows = []
    for name, x in r["rows"].items():
        note = f"est. ({fmt_time(x['per_pass'])} per pass)" if x["estimated"] else "measured"
        if "worst_rel" in x:
            note += f"; worst relative error {x['worst_rel']:.1e}"
        if "agree" in x:
            note += "; every check agrees" if x["agree"] else "; A CHECK FAILED"
        rows.append([name, f"{x['passes']:,}", fmt_time(x["seconds"]), note])
    lines += table(["check", "forward passes", "time", "how"], rows)
    return lines
