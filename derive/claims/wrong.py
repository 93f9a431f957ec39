"""The verdict 'wrong': a counterexample, and a repair of up to three edits or a near miss if there is one."""

from __future__ import annotations

import numpy as np
import sympy

from .context import sizes_text


def _step_text(t) -> str:
    return "" if t is None else f", step t = {t}"


def counterexample(checker, lhs, tree, data) -> dict | None:
    """The first entry at which the claim and the truth differ, at 50 digits.

    Parameters
    ----------
    checker : ClaimChecker
        The file's checker (:class:`derive.claims.checker.ClaimChecker`).
    lhs : Adj
        The derivative claimed.
    tree : Node
        The reading of the claim.
    data : list
        Its screening values (:meth:`derive.claims.checker.ClaimChecker.evaluate`).

    Returns
    -------
    dict or None
        The sizes, step, entry, both values, the seed of the random point
        and the class targets; None when no entry differs in floating point.
    """
    best = None
    for k, t, C, T in data:
        D = C.T if C.shape != T.shape else C
        if D.shape != T.shape:
            continue
        diff = np.abs(D - T)
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        if diff[idx] > 1e-9 * max(1.0, float(np.max(np.abs(T)))):
            best = (k, t, idx)
            break
    if best is None:
        return None
    k, t, (i, j) = best
    ctx = checker.contexts[k]
    C = ctx.symbolic_evaluator()(tree, t)
    T = ctx.truth(lhs, t)
    if (C.rows, C.cols) == (1, 1):
        cv = C[0, 0]
    else:
        cv = C[i, j] if (C.rows, C.cols) == (T.rows, T.cols) else C[j, i]
    a = sympy.N(cv.xreplace(ctx.values), 50)
    b = sympy.N(T[i, j].xreplace(ctx.values), 50)
    return {"sizes": dict(ctx.sizes), "step": t, "entry": [int(i), int(j)],
            "claim": float(a), "truth": float(b), "seed": ctx.seed,
            "classes": {ctx.model.symbols[n].base if s is None else f"{ctx.model.symbols[n].base}_{s}": v
                        for (n, s), v in sorted(ctx.u.classes.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))}}


def explain_wrong(decider, res, tree, info, data, holding):
    """Say where the claim fails, and the edit that repairs it (or that comes closest).

    Takes the parameters of :func:`derive.claims.holds.explain_holds`.
    """
    decider.tick("computing a counterexample")
    res.counterexample = counterexample(decider.checker, decider.lhs, tree, data)
    ce = res.counterexample
    text = "wrong"
    if res.dot_choices:
        text += f" under every reading of ⋅ (closest: {res.reading})"
    if ce:
        text += (f": at sizes {sizes_text(ce['sizes'])}{_step_text(ce['step'])}, entry {ce['entry']}, "
                 f"the claim gives {ce['claim']:.6g} but the truth is {ce['truth']:.6g} "
                 "(at a random point)")
    text += f"; {decider.truth_phrase()}"
    near = {}
    text += "; " + decider.find_repair(res, near)
    if not res.repair and "partial" in near:
        text += "; " + near["partial"]
    res.explanation = text
