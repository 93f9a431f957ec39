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
from ..notation.expr import Binary, Node, Unary
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


def _solve(checker, lhs, values, data):
    """0/1 coefficients writing ``values`` as a sum of the truth's parts."""
    labels, rows_a, rows_b = [], [], []
    blocks = []
    for (k, t, _, T), V in zip(data, values):
        if V.shape != T.shape:
            return None
        groups = checker.groups_float(k, lhs, t)
        blocks.append(({label_of(o, t): g for o, g in groups.items()}, V))
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
    return labels, [lab for lab, r in zip(labels, rounded) if r == 1]


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
    solved = _solve(checker, lhs, [C for _, _, C, _ in data], data)
    if solved is not None:
        labels, present = solved
        if present and len(present) < len(labels):
            return {"present": present, "labels": labels, "matched": tree, "extra": []}
        return None
    terms = _additive_terms(tree)
    if len(terms) < 2:
        return None
    matched, extra, present, labels = [], [], [], []
    for sign, term in terms:
        vals = _term_values(checker, term, data)
        got = None if vals is None else _solve(checker, lhs, [sign * v for v in vals], data)
        if got is None or not got[1] or set(got[1]) & set(present):
            extra.append((sign, term))
        else:
            labels = got[0] if len(got[0]) > len(labels) else labels
            matched.append((sign, term))
            present += got[1]
    if not matched or not extra or len(set(present)) < len(labels):
        return None  # extra terms and missing ones: wrong (a repair may say which edit)
    node = _sum(matched)
    return {"present": present, "labels": labels, "matched": node, "extra": extra}


def partial_target(ctx, lhs, t, info: dict) -> Mat:
    """What a claim holding for one part equals at step ``t``: the sum of the parts it holds."""
    groups = ctx.groups(lhs, t)
    present = set(info["present"])
    rows, cols = ctx.u.shape(lhs.name)
    chosen = [m for o, m in groups.items() if label_of(o, t) in present]
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
        text += "; missing: " + "; ".join(res.missing)
    if res.extra:
        text += "; extra terms not in the truth: " + "; ".join(res.extra)
    res.explanation = text + f"; {decider.proved_text(res)}"
    simple = all(not m.startswith("the contributions") for m in res.missing)
    if res.missing and simple and not res.extra:
        res.repair = clear(info["matched"]) + "".join(f" + {m}" for m in res.missing)
        res.repair_edit = "add the missing term" + ("s" if len(res.missing) > 1 else "")
    elif res.extra and not res.missing:
        res.repair = clear(info["matched"])
        res.repair_edit = "drop the extra term" + ("s" if len(res.extra) > 1 else "")
    elif res.missing and decider.checker.model.symbols[lhs.name].per_step is False \
            and not lhs.use and lhs.loss_step is None:
        decider.find_repair(res)
