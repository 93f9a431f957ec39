"""Where a user's gradient is wrong: which parameters, which entries, and from which sequence length on.

The decision rule (docs/against.md): an entry ``a`` of the user's gradient
agrees with derive's ``b`` when ``|a - b| <= rtol |b| + atol S + 64 eps``,
``S`` the largest ``|b|`` over every parameter (and initial state) compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..verify.rule import ROUNDING_FLOOR

RTOL = 1e-6
ATOL = 1e-9
"""Defaults of ``--rtol`` and ``--atol``: loose enough for float64 code that sums in another order,
tight enough that every slip of the corpus is far outside (their errors are of the gradient's order)."""

WORST_ENTRIES = 5


@dataclass
class ParamRow:
    """One parameter's comparison: the errors, how many entries are wrong, the worst ones."""

    name: str
    entries: int
    max_abs_error: float
    max_rel_error: float
    wrong: int
    worst: List[dict] = field(default_factory=list)  # {"index", "yours", "derivation", "abs_error"}

    @property
    def passed(self) -> bool:
        return self.wrong == 0


def compare(reference: Dict[str, np.ndarray], user: Dict[str, np.ndarray], rtol: float = RTOL,
            atol: float = ATOL) -> List[ParamRow]:
    """Compare the user's gradients with derive's, entry by entry, under the decision rule.

    Parameters
    ----------
    reference, user : dict of str to numpy.ndarray
        derive's gradient and the user's, by derive's names; only the keys of ``user`` are compared.

    Returns
    -------
    list of ParamRow
        One a parameter of ``user``, in the order of ``reference``.
    """
    names = [k for k in reference if k in user]
    scale = max((float(np.max(np.abs(reference[k]), initial=0.0)) for k in names), default=0.0)
    rows = []
    for k in names:
        b = np.asarray(reference[k], dtype=float)
        a = np.asarray(user[k], dtype=float).reshape(b.shape)
        err = np.abs(a - b)
        bad = err > rtol * np.abs(b) + atol * scale + ROUNDING_FLOOR
        floor = max(1e-8 * scale, 1e-300)
        rel = err / np.maximum(np.abs(b), floor)
        order = np.argsort(-err, axis=None, kind="stable")[:WORST_ENTRIES]
        worst = []
        for flat in order:
            idx = tuple(int(i) for i in np.unravel_index(int(flat), b.shape))
            if not bad[idx]:
                break
            worst.append({"index": list(idx), "yours": float(a[idx]), "derivation": float(b[idx]),
                          "abs_error": float(err[idx])})
        rows.append(ParamRow(k, int(b.size), float(err.max(initial=0.0)), float(rel.max(initial=0.0)),
                             int(bad.sum()), worst))
    return rows


def entry_relative_errors(reference: Dict[str, np.ndarray], user: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every entry's relative error ``|yours - derive's| / max(|derive's|, 1e-8 S)`` (S: the largest
    ``|derive's|`` entry compared), as :func:`compare` measures it, by parameter of ``user``."""
    names = [k for k in reference if k in user]
    scale = max((float(np.max(np.abs(reference[k]), initial=0.0)) for k in names), default=0.0)
    floor = max(1e-8 * scale, 1e-300)
    out = {}
    for k in names:
        b = np.asarray(reference[k], dtype=float)
        out[k] = np.abs(np.asarray(user[k], dtype=float).reshape(b.shape) - b) / np.maximum(np.abs(b), floor)
    return out


def loss_agrees(yours: Optional[float], ours: float, rtol: float = RTOL) -> Optional[bool]:
    """Whether the user's loss is derive's to ``rtol`` (None when the user gave none)."""
    if yours is None:
        return None
    return bool(abs(yours - ours) <= rtol * abs(ours) + ROUNDING_FLOOR)


@dataclass
class Sweep:
    """The T sweep: the wrong parameters at each length tried, and the first length at which any is wrong."""

    lengths: List[int]
    wrong: Dict[int, List[str]]
    skipped: List[Tuple[int, str]] = field(default_factory=list)  # lengths the model refuses, and why
    states: Tuple[str, ...] = ()  # the initial states' gradients (h_0): left out of the sentence on the path

    @property
    def first_wrong(self) -> Optional[int]:
        """The first length at which a parameter's gradient (an initial state's when no parameter's) is wrong."""
        params = next((t for t in self.lengths if set(self.wrong[t]) - set(self.states)), None)
        return params if params is not None else next((t for t in self.lengths if self.wrong[t]), None)

    def first_wrong_of(self, name: str) -> Optional[int]:
        return next((t for t in self.lengths if name in self.wrong[t]), None)

    def summary(self) -> str:
        """One sentence: the first wrong length and what it says of the slip."""
        first = self.first_wrong
        if first is None:
            return f"right at every length tried (T = {', '.join(map(str, self.lengths))})"
        right = [t for t in self.lengths if t < first]
        early = [s for s in self.states if (self.first_wrong_of(s) or first) < first]
        if early:
            return (f"{', '.join('dL/d' + s for s in early)} wrong already at T = {self.first_wrong_of(early[0])}, "
                    f"the parameters' gradients from T = {first}: the gradient sent back through {self.previous()}")
        if not right and any(t < first for t, _ in self.skipped):
            return f"wrong at T = {first}; no shorter length could be compared (see below)"
        if not right:
            return (f"wrong already at T = {first}: a term of each step's own path, not (only) the "
                    "recurrent path")
        upto = f"T = {right[0]}" if len(right) == 1 else f"T = {right[0]}..{right[-1]}"
        return f"right for {upto}, wrong from T = {first}: the recurrent path (through {self.previous()})"

    def previous(self) -> str:
        """The model's states one step back (``h_(t-1) or c_(t-1)``), for the sentence on the recurrent path."""
        names = [s[:-2] + "_(t-1)" for s in self.states if s.endswith("_0")]
        return " or ".join(names) or "the previous step's state"


def sweep_lengths(T: int, run: Callable[[int], List[str]], states: Tuple[str, ...] = (),
                  targets: Tuple[str, ...] = (), every_length: bool = False) -> Sweep:
    """Run ``run(t)`` (the names of the wrong parameters at length ``t``) for t = 1..T.

    ``run`` raises ``ValueError`` for a length the model refuses (a fixed step past it); such lengths are
    skipped and noted. Unless ``every_length``, the sweep stops once every name of ``targets`` (the
    gradients wrong at the full length) has been wrong at some length, since each one's first wrong length
    is then known.
    """
    lengths, wrong, skipped = [], {}, []
    first = None
    for t in range(1, T + 1):
        try:
            names = run(t)
        except ValueError as exc:
            skipped.append((t, str(exc).splitlines()[0]))
            continue
        lengths.append(t)
        wrong[t] = names
        if names and first is None:
            first = t
        if not every_length and targets and all(any(n in wrong[u] for u in lengths) for n in targets):
            break
    return Sweep(lengths, wrong, skipped, tuple(states))
