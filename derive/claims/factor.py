"""The verdict 'factor': the claim is a constant times the derivative (``2``, ``-1``, ``1/B``)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import sympy

from ..calculus.entries import Mat
from ..notation.expr import Binary, Num, SizeRef, Unary
from ..notation.printer import show
from .context import sizes_text
from .numeric import agrees
from .terms import clear


def _fraction(c: float) -> Fraction | None:
    f = Fraction(c).limit_denominator(100000)
    return f if abs(float(f) - c) <= 1e-9 * max(1.0, abs(c)) else None


def _frac_text(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def name_factor(cs: list[float], combos: list[dict[str, int]]) -> str | None:
    """The constant ``c`` in notation (``2``, ``1/B``, ``1/(O*B)``), or None.

    Every name of the vocabulary that fits the factors at every size is a
    candidate; the simplest wins (the smallest coefficient, then the fewest
    sizes).  The check sizes are the same small numbers in turn, so their
    product is the same at every size combination and a spurious name fits
    beside the real one (``24/(H*V)`` beside ``B`` when H*V*B = 24): it always
    has the larger coefficient.  Two names equally simple give None.

    Parameters
    ----------
    cs : list of float
        The factor found at each size combination.
    combos : list of dict
        The size combinations, one per factor.

    Returns
    -------
    str or None
        The same fraction at every size, or a fraction times (or over) one
        size or the product of two; None when no such name fits, or two fit
        equally well.
    """
    fr = [_fraction(c) for c in cs]
    if all(f is not None for f in fr) and len(set(fr)) == 1:
        return _frac_text(fr[0])
    names = [n for n in combos[0] if len({c[n] for c in combos}) > 1]
    groups = [(n,) for n in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    fits = []
    for power in (-1, 1):
        for group in groups:
            rs = [_fraction(c * math.prod(combo[n] for n in group) ** (-power)) for c, combo in zip(cs, combos)]
            if all(r is not None for r in rs) and len(set(rs)) == 1:
                r = rs[0]
                fits.append(((abs(r.numerator) + r.denominator, len(group)), _factor_text(r, group, power)))
    if not fits:
        return None
    fits.sort()
    if len(fits) > 1 and fits[0][0] == fits[1][0]:
        return None
    return fits[0][1]


def _factor_text(r: Fraction, group: tuple, power: int) -> str:
    """``r/n``, ``r*n``, ``r/(a*b)``, ``r*a*b`` with a coefficient of 1 (or -1) left out."""
    prod = "*".join(group)
    if power == -1:
        return f"{_frac_text(r)}/({prod})" if len(group) > 1 else (f"1/{prod}" if r == 1 else f"{_frac_text(r)}/{prod}")
    if len(group) == 1 and r in (1, -1):
        return ("-" if r == -1 else "") + prod
    return f"{_frac_text(r)}*{prod}"


def screen_factor(data, scale: float, combos: list[dict[str, int]]) -> dict | None:
    """The constant (other than 1) the claim is times the truth at each size, if there is one.

    Parameters
    ----------
    data : list
        (context index, step, claim value, truth value) in floating point
        (:meth:`derive.claims.checker.ClaimChecker.evaluate`).
    scale : float
        The truth's magnitude (:func:`derive.claims.numeric.truth_scale`).
    combos : list of dict
        The sizes of each context.

    Returns
    -------
    dict or None
        ``{"c": {context index: Fraction}, "name": str or None}`` (see
        :func:`name_factor`), or None when the claim is not a rational
        constant times the truth at every size.
    """
    cs = []
    for k in range(len(combos)):
        rows = [(C, T) for kk, _, C, T in data if kk == k]
        if not rows:
            continue
        if any(C.shape != T.shape for C, T in rows):
            return None
        den = sum(float(np.sum(T * T)) for _, T in rows)
        if den <= 1e-24:
            return None
        c = sum(float(np.sum(C * T)) for C, T in rows) / den
        if abs(c) < 1e-9:
            return None
        if not all(agrees(C, c * T, scale * max(1.0, abs(c))) for C, T in rows):
            return None
        cs.append((k, c))
    if len(cs) < len({k for k, _, _, _ in data}) or not cs or all(abs(c - 1) < 1e-7 for _, c in cs):
        return None
    fr = [_fraction(c) for _, c in cs]
    if any(f is None for f in fr):
        return None
    name = name_factor([c for _, c in cs], [combos[k] for k, _ in cs])
    return {"c": dict((k, f) for (k, _), f in zip(cs, fr)), "name": name}


def factor_target(truth: Mat, info: dict, k: int) -> Mat:
    """What a claim holding up to a factor equals in context ``k``: the factor times the truth."""
    f = info["c"][k]
    c = sympy.Rational(f.numerator, f.denominator)
    return truth.map(lambda e: c * e)


def explain_factor(decider, res, tree, info, data, holding):
    """Say which constant the claim is off by, and repair it.

    Takes the parameters of :func:`derive.claims.holds.explain_holds`;
    ``info`` is what :func:`screen_factor` found.
    """
    name = info["name"]
    res.factor = name
    fr = list(info["c"].values())
    shown = name or ", ".join(f"{_frac_text(f)} at {sizes_text(decider.combos[k])}" for k, f in info["c"].items())
    hint = ""
    if name and "/" in name and any(ch.isalpha() for ch in name.split("/")[1]):
        hint = " (a mean where the loss sums, or a sum where it means)"
    elif fr and all(f == -1 for f in fr):
        hint = " (a sign slip)"
    res.explanation = (f"holds up to a constant factor{decider.reading_text(res, holding)}: the claim "
                       f"is {shown} times the truth{hint}; {decider.proved_text(res)}")
    decider.find_repair(res)
    if name and not res.repair:
        res.repair, res.repair_edit = _undo_factor(name, tree)
        res.repair_kinds = ["a constant factor (a mean for a sum, a sign)"]
        if not res.repair:
            res.repair = res.repair_edit = None
            res.repair_kinds = []


def _undo_factor(name: str, tree) -> tuple[str, str]:
    """The claim with a named factor undone (``(...) / B``, ``B * (...)``) and the edit's words."""
    negated = name.startswith("-") and not re.fullmatch(r"-\d+(/\d+)?", name)
    node, words = _undo_node(name[1:] if negated else name, tree)
    if node is None:
        return "", ""
    return (clear(Unary("neg", node)), words + " and negate") if negated else (clear(node), words)


def _undo_node(name: str, tree) -> tuple:
    """:func:`_undo_factor` as a tree."""
    m = re.fullmatch(r"(-?\d+)(?:/(\d+))?", name)
    if m:  # a number p/q: multiply by q/p
        f = 1 / Fraction(int(m.group(1)), int(m.group(2) or 1))
        if f == -1:
            return Unary("neg", tree), "negate the right side"
        if f.numerator == 1:
            return Binary("/", tree, Num(Fraction(f.denominator))), f"divide by {f.denominator}"
        return Binary("*", Num(f), tree), f"multiply by {_frac_text(f)}"
    m = re.fullmatch(r"(\d+)/\(?([A-Za-z_]\w*)(?:\*([A-Za-z_]\w*))?\)?", name)
    if m:  # r/(a*b) or 1/a: multiply by (a*b)/r
        size = SizeRef(m.group(2)) if m.group(3) is None else Binary("*", SizeRef(m.group(2)), SizeRef(m.group(3)))
        node = Binary("*", size, tree)
        if m.group(1) != "1":
            node = Binary("/", node, Num(Fraction(int(m.group(1)))))
        return node, f"multiply by {show(size)}" + (f" / {m.group(1)}" if m.group(1) != "1" else "")
    m = re.fullmatch(r"(?:(\d+)\*)?([A-Za-z_]\w*)(?:\*([A-Za-z_]\w*))?", name)
    if m:  # r*a*b: divide by it
        size = SizeRef(m.group(2)) if m.group(3) is None else Binary("*", SizeRef(m.group(2)), SizeRef(m.group(3)))
        if m.group(1):
            size = Binary("*", Num(Fraction(int(m.group(1)))), size)
        return Binary("/", tree, size), f"divide by {show(size)}"
    return None, ""
