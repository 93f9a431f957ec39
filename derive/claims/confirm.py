"""The symbolic proof of a screened verdict, entry by entry, with a 50-digit witness."""

from __future__ import annotations

import sympy

from ..calculus.entries import Mat
from .context import sizes_text
from .factor import factor_target
from .holds import layout_target
from .partial import partial_target


def confirm(checker, claim, verdict: str, tree, info: dict):
    """Prove the verdict entry by entry at every check size and step (a proof already made is reused).

    The printed truth of a claim is proved as a claim of its own
    (:mod:`derive.claims.vouch`), and a claim that holds as written is often
    that same truth: a proof that closed is kept on the checker, keyed by
    everything it depends on, and given again instead of proved twice.

    Parameters
    ----------
    checker : ClaimChecker
        The file's checker (:class:`derive.claims.checker.ClaimChecker`).
    claim : Claim
        The claim.
    verdict : str
        The verdict screened: holds, layout, factor or partial.
    tree : Node
        The reading of the claim (``info["matched"]`` instead when given).
    info : dict
        What the screening found.

    Returns
    -------
    tuple
        (proved, entries proved, worst 50-digit gap or None, the sizes proved at).
    """
    if info:  # factor and partial targets depend on what the screening found: proved each time
        return _confirm(checker, claim, verdict, tree, info)
    proved = checker.__dict__.setdefault("confirmed", {})
    key = (claim.lhs, claim.rhs, tree, verdict)
    if key not in proved:
        outcome = _confirm(checker, claim, verdict, tree, info)
        if not outcome[0]:  # a proof that did not close is tried again: later lemmas may close it
            return outcome
        proved[key] = outcome
    ok, entries, worst, sizes = proved[key]
    return ok, entries, worst, [dict(s) for s in sizes]


def _confirm(checker, claim, verdict: str, tree, info: dict):
    lhs = claim.lhs
    entries, worst, sizes = 0, 0.0, []
    for k, ctx in enumerate(checker.contexts):
        sev = ctx.symbolic_evaluator()
        prover = None
        steps = checker.steps(claim, ctx)
        used = False
        learn = lhs if verdict == "holds" and lhs.use is None else None
        for t in steps:
            where = f"proving at {sizes_text(ctx.sizes)}" + ("" if t is None else f", step {t}")
            checker.tick(where)
            try:
                C = sev(info.get("matched", tree), t)
            except KeyError:
                continue
            truth = _target(verdict, ctx, k, t, lhs, info)
            if (C.rows, C.cols) == (1, 1) and (truth.rows, truth.cols) != (1, 1):
                C = Mat.fill(truth.rows, truth.cols, lambda i, j: C[0, 0])
            prover = ctx.prover()
            for (i, j), value in C.entries():
                checker.tick(where)
                target = truth[i, j]
                a = sympy.N(value.xreplace(ctx.values), 50)
                b = sympy.N(target.xreplace(ctx.values), 50)
                gap = abs(float(a - b)) / max(1.0, abs(float(b)))
                if not gap < 1e-30 or not prover.equal(value, target):
                    return False, entries, None, sizes
                if learn is not None:
                    _learn(ctx, prover, learn, t, i, j, value)
                entries += 1
                worst = max(worst, gap)
            used = True
        if used:
            sizes.append(dict(ctx.sizes))
    return True, entries, worst, sizes


def _learn(ctx, prover, lhs, t, i, j, value):
    """Keep a proved closed form of an adjoint symbol for later proofs."""
    if any(s in prover.adjoint_owner for s in value.free_symbols):
        return
    bar = ctx.adjoint_mat(lhs, t)[i, j]
    if bar.is_Symbol and bar in prover.adjoint_owner:
        ctx.lemmas.setdefault(bar, value)


def _target(verdict, ctx, k, t, lhs, info) -> Mat:
    """What the claim equals at step ``t`` of context ``k`` if the verdict is right."""
    if verdict == "partial":
        return partial_target(ctx, lhs, t, info)
    truth = ctx.truth(lhs, t)
    if verdict == "layout":
        return layout_target(truth)
    if verdict == "factor":
        return factor_target(truth, info, k)
    return truth
