"""The verdict 'partial': the claim is some of the derivative's parts, not all of them.

The truth splits by consumer (:meth:`derive.claims.context.SizeContext.groups`):
one part for each quantity the derivative flows through.  A claim that is a
sum of some of those parts, or whose terms are parts save a few extra
terms, holds for one part only.
"""

from __future__ import annotations

import numpy as np
import sympy

from ..calculus.entries import Mat
from ..notation.expr import Adj, Binary, Node, Ref, Unary, walk
from ..notation.printer import show
from .terms import clear, label_of


def _additive_terms(node: Node, sign: int = 1) -> list[tuple[int, Node]]:
    if isinstance(node, Binary) and node.op in ("+", "-"):
        return _additive_terms(node.a, sign) + _additive_terms(node.b, sign if node.op == "+" else -sign)
    if isinstance(node, Unary) and node.op == "neg":
        return _additive_terms(node.x, -sign)
    return [(sign, node)]


def _sum(terms) -> Node:
    out = None
    for sign, term in terms:
        if out is None:
            out = term if sign > 0 else Unary("neg", term)
        else:
            out = Binary("+" if sign > 0 else "-", out, term)
    return out


def _solve(checker, lhs, values, data, from_end: bool = False):
    """0/1 coefficients writing ``values`` as a sum of the truth's parts.

    The parts of a derivative without a step are labelled by their step,
    counted from the first step or, with ``from_end``, from the last (the
    check sizes differ in T, so ``o_T`` is one part only counted from the end).
    """
    labels, rows_a, rows_b = [], [], []
    blocks = []
    for (k, t, _, T), V in zip(data, values):
        if V.shape != T.shape:
            return None
        groups = checker.groups_float(k, lhs, t)
        last = checker.contexts[k].T if from_end else None
        blocks.append(({label_of(o, t, last): g for o, g in groups.items()}, V))
        for lab in blocks[-1][0]:
            if lab not in labels:
                labels.append(lab)
    if not labels:
        return None
    for g, V in blocks:
        cols = [g[lab].ravel() if lab in g else np.zeros(V.size) for lab in labels]
        rows_a.append(np.stack(cols, axis=1))
        rows_b.append(V.ravel())
    A, b = np.vstack(rows_a), np.concatenate(rows_b)
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    rounded = np.round(coef)
    if np.any(np.abs(coef - rounded) > 1e-6) or np.any((rounded != 0) & (rounded != 1)):
        return None
    scale = max(1e-12, float(np.max(np.abs(A))) if A.size else 1.0)
    if not np.allclose(A @ rounded, b, rtol=1e-8, atol=1e-9 * scale):
        return None
    present = [lab for lab, r in zip(labels, rounded) if r == 1]
    if from_end and not _last_steps(present):
        return None
    return labels, present


def _last_steps(present) -> bool:
    """Whether parts counted from the end are, for each quantity, its last steps (T, T-1, ...)."""
    by_consumer: dict[str, list[int]] = {}
    for name, kind, v in present:
        if kind == "last":
            by_consumer.setdefault(name, []).append(v)
    return all(sorted(vs, reverse=True) == list(range(0, -len(vs), -1)) for vs in by_consumer.values())


def _solve_either(checker, lhs, values, data, from_end_first: bool):
    """:func:`_solve` with the steps counted from the start, or from the end (the claim's way first)."""
    for from_end in (from_end_first, not from_end_first):
        solved = _solve(checker, lhs, values, data, from_end)
        if solved is not None:
            return solved + (from_end,)
    return None


def _term_values(checker, term: Node, data):
    out = []
    for k, t, C, T in data:
        try:
            v = checker.contexts[k].float_evaluator()(term, t)
        except Exception:
            return None
        if v.shape == (1, 1) and T.shape != (1, 1):
            v = np.broadcast_to(v, T.shape)
        out.append(v)
    return out


def screen_partial(checker, lhs, tree: Node, data) -> dict | None:
    """Which parts of the truth the claim is, if it is some but not all of them.

    Parameters
    ----------
    checker : ClaimChecker
        The file's checker (:class:`derive.claims.checker.ClaimChecker`).
    lhs : Adj
        The derivative claimed.
    tree : Node
        The reading of the claim screened.
    data : list
        (context index, step, claim value, truth value) in floating point
        (:meth:`derive.claims.checker.ClaimChecker.evaluate`).

    Returns
    -------
    dict or None
        ``present`` (the labels of the parts the claim holds), ``labels``
        (every part's), ``matched`` (the terms of the claim that are parts)
        and ``extra`` (the other terms, as (sign, term)); None when the claim
        is no such sum.
    """
    from_end = _counts_from_end(tree)
    solved = _solve_either(checker, lhs, [C for _, _, C, _ in data], data, from_end)
    if solved is not None:
        labels, present, from_end = solved
        if present and len(present) < len(labels):
            return {"present": present, "labels": labels, "matched": tree, "extra": [], "from_end": from_end}
        return None
    terms = _additive_terms(tree)
    if len(terms) < 2:
        return None
    matched, extra, present, labels = [], [], [], []
    for sign, term in terms:
        vals = _term_values(checker, term, data)
        got = None if vals is None else _solve(checker, lhs, [sign * v for v in vals], data, from_end)
        if got is None or not got[1] or set(got[1]) & set(present):
            extra.append((sign, term))
        else:
            labels = got[0] if len(got[0]) > len(labels) else labels
            matched.append((sign, term))
            present += got[1]
    if not matched or not extra or len(set(present)) < len(labels):
        return None  # extra terms and missing ones: wrong (a repair may say which edit)
    node = _sum(matched)
    return {"present": present, "labels": labels, "matched": node, "extra": extra, "from_end": from_end}


def _counts_from_end(tree: Node) -> bool:
    """Whether the claim names a step counted from the last (``h_T``, ``o_{T-1}``)."""
    return any(isinstance(n, (Ref, Adj)) and n.step is not None and n.step.kind == "last" for n in walk(tree))


def partial_target(ctx, lhs, t, info: dict) -> Mat:
    """What a claim holding for one part equals at step ``t``: the sum of the parts it holds."""
    groups = ctx.groups(lhs, t)
    present = set(info["present"])
    rows, cols = ctx.u.shape(lhs.name)
    last = ctx.T if info.get("from_end") else None
    chosen = [m for o, m in groups.items() if label_of(o, t, last) in present]
    return Mat.fill(rows, cols, lambda i, j: sympy.Add(*[m[i, j] for m in chosen]))


def explain_partial(decider, res, tree, info, data, holding):
    """Say which parts the claim holds and which are missing or extra, and repair it.

    Takes the parameters of :func:`derive.claims.holds.explain_holds`;
    ``info`` is what :func:`screen_partial` found.
    """
    lhs, namer = decider.lhs, decider.namer
    labels, present = info["labels"], info["present"]
    missing = [lab for lab in labels if lab not in present]
    res.missing = namer.describe(lhs, missing)
    res.extra = [show(term) if sign > 0 else show(Unary("neg", term)) for sign, term in info["extra"]]
    text = f"holds for one part only{decider.reading_text(res, holding)}: "
    text += f"it equals the part {' + '.join(namer.describe(lhs, present, missing=False))} of the truth"
    if res.missing:
        text += "; missing: " + "; ".join(res.missing) + _initial_state_note(decider, missing)
    if res.extra:
        text += "; extra terms not in the truth: " + "; ".join(res.extra)
    res.explanation = text + f"; {decider.proved_text(res)}"
    terms = namer.claim_terms(lhs, missing) if res.missing else None
    if terms and not res.extra:
        res.repair = clear(info["matched"]) + "".join(f" + {m}" for m in terms)
        res.repair_edit = "add the missing term" + ("s" if len(res.missing) > 1 else "")
        res.repair_kinds = ["missing terms"]
    elif res.extra and not res.missing:
        res.repair = clear(info["matched"])
        res.repair_edit = "drop the extra term" + ("s" if len(res.extra) > 1 else "")
        res.repair_kinds = ["a term too many"]
    elif res.missing and decider.checker.model.symbols[lhs.name].per_step is False \
            and not lhs.use and lhs.loss_step is None:
        decider.find_repair(res)


def _initial_state_note(decider, missing) -> str:
    """Why a missing term that reads a state's initial value matters although ``h_0`` defaults to 0."""
    model = decider.checker.model
    for lab in missing:
        expr = decider.namer.term_expr(decider.lhs, lab)
        if expr is None:
            continue
        for n in walk(expr):
            if isinstance(n, Ref) and n.step is not None and n.step.kind == "abs" and n.step.offset == 0 \
                    and model.symbols[n.name].kind == "state":
                h0 = show(n)
                return (f" ({clear(expr)} is zero at the default {h0} = 0, but not when {h0} is given, such as a "
                        "state carried over from the previous sequence: the initial state is an input of the "
                        "model, and verdicts hold for every one)")
    return ""
