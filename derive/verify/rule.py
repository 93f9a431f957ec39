"""The decision rule of ``derive verify``: when an entry agrees, what a check's verdict is, what the run says.

Kept apart from running the checks (:mod:`derive.verify.run`) so that the rule,
documented in ``docs/verify.md``, reads in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np

TOLERANCE = {  # (rtol, atol): an entry agrees when |a - b| <= rtol |b| + atol S (see decide)
    "hand": (1e-10, 1e-12), "complex": (1e-9, 1e-11), "central": (1e-7, 1e-9),
    "exact": (1e-9, 1e-11), "direction": (1e-9, 1e-11)}
"""Per check, the relative and absolute tolerance of one entry.

An entry ``a`` of the generated gradient agrees with the reference ``b``
when ``|a - b| <= rtol |b| + atol S``, where ``S`` is the largest ``|b|``
that check compared over every parameter and initial state: an entry of
``2.5e-6`` in a gradient whose scale is 1 is judged at the gradient's scale,
as rounding affects it. Central differences add their own estimated error
per entry (:func:`derive.numeric.central_difference_estimates`). A random
direction agrees when ``|g.v - D_v| <= rtol |D_v| + atol |g| + ROUNDING_FLOOR`` (a zero
gradient, as of a bias under a softmax, meets rounding noise in ``D_v``).
"""

ROUNDING_FLOOR = 64 * np.finfo(np.float64).eps
"""An absolute difference no check holds against an entry: the rounding of order-one intermediate
values (a softmax of one class has the gradient 0, computed as 1 - 1 plus rounding)."""

#: checks whose disagreement is evidence of a wrong gradient on its own: each is exact to rounding
DECISIVE = ("hand", "complex", "exact", "direction")


@dataclass
class CheckRow:
    """One parameter (or initial state) against one reference."""

    check: str
    parameter: str
    entries: int
    max_abs_error: float
    max_rel_error: Optional[float]  # None when undefined: every reference value the check compared is ~0
    worst_index: tuple
    passed: bool
    failed: int = 0
    skipped: int = 0
    max_estimated_error: float = 0.0


@dataclass
class VerifyResult:
    """Everything ``derive verify`` measured."""

    model: str
    sizes: Dict[str, int]
    seed: int
    rows: List[CheckRow] = field(default_factory=list)
    directions: List[dict] = field(default_factory=list)
    exact_sizes: Dict[str, int] = field(default_factory=dict)
    forward_passes: Dict[str, int] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    scales: Dict[str, float] = field(default_factory=dict)
    failure: Optional[str] = None

    def verdicts(self) -> Dict[str, str]:
        """Per check: ``agrees``, ``disagrees``, or ``skipped`` (every entry at a kink)."""
        out = {}
        for check in CHECK_TITLES:
            rows = [r for r in self.rows if r.check == check]
            if rows:
                compared = sum(r.entries - r.skipped for r in rows)
                out[check] = ("disagrees" if not all(r.passed for r in rows)
                              else "agrees" if compared else "skipped")
        if self.directions:
            out["direction"] = "agrees" if all(d["passed"] for d in self.directions) else "disagrees"
        return out

    @property
    def evidence(self) -> List[str]:
        """The decisive checks that disagree (or ``module`` when it raised): what a MISMATCH rests on."""
        found = [c for c, v in self.verdicts().items() if c in DECISIVE and v == "disagrees"]
        return found + (["module"] if self.failure else [])

    @property
    def passed(self) -> bool:
        """No decisive check disagrees.

        Central differences alone never fail a run: where they disagree and
        the checks that are exact to rounding agree, the output says so.
        """
        return not self.evidence

    def to_json(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["result"] = "agree" if self.passed else "mismatch"
        out["evidence"] = self.evidence
        verdicts = self.verdicts()
        out["checks"] = {c: {"verdict": v, "rtol": TOLERANCE[c][0], "atol": TOLERANCE[c][1],
                             "scale": self.scales.get(c), "decisive": c in DECISIVE,
                             "entries": sum(r.entries for r in self.rows if r.check == c),
                             "failed": sum(r.failed for r in self.rows if r.check == c),
                             "skipped": sum(r.skipped for r in self.rows if r.check == c)}
                         for c, v in verdicts.items()}
        out["tolerances"] = {c: {"rtol": r, "atol": a} for c, (r, a) in TOLERANCE.items()}
        return out




def judge(check: str, generated: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
          entries: Optional[Dict[str, np.ndarray]] = None, estimated: Optional[Dict[str, np.ndarray]] = None,
          smooth: Optional[Dict[str, np.ndarray]] = None) -> tuple:
    """Rows of one check: the generated gradient against a reference, entry by entry.

    Parameters
    ----------
    generated : dict
        The generated gradient, one full array per variable.
    reference : dict
        Full arrays, or (with ``entries``) the reference values at those flat indices.
    estimated : dict, optional
        The reference's own estimated error per entry (central differences).
    smooth : dict, optional
        False where the reference is not defined (a kink): those entries are skipped.

    Returns
    -------
    (list of CheckRow, float)
        The rows, and the scale ``S`` of the tolerance (see :data:`TOLERANCE`).

    Notes
    -----
    When ``S`` is at most :data:`ROUNDING_FLOOR` (every reference value the
    check compared is zero to rounding), a relative error has no meaning (it
    would divide rounding noise by nothing): ``max_rel_error`` is None and the
    absolute error, which the verdict uses anyway, decides.
    """
    rtol, atol = TOLERANCE[check]
    flat, refs, gens, oks = {}, {}, {}, {}
    for name, ref in reference.items():
        g = np.asarray(generated[name], dtype=float).reshape(-1)
        idx = np.asarray(entries[name]) if entries is not None else np.arange(g.size)
        flat[name], gens[name] = idx, g[idx]
        refs[name] = np.asarray(ref, dtype=float).reshape(-1)
        oks[name] = np.ones(idx.shape, bool) if smooth is None else np.asarray(smooth[name], bool)
    compared = [np.abs(refs[n][oks[n]]) for n in refs if oks[n].any()]
    scale = max((float(a.max()) for a in compared), default=0.0)
    rows = []
    for name, ref in refs.items():
        shape = np.shape(generated[name])
        ok = oks[name]
        err = np.abs(gens[name] - ref)
        allowed = rtol * np.abs(ref) + atol * scale + ROUNDING_FLOOR
        if estimated is not None:
            allowed = allowed + np.asarray(estimated[name])
        bad = (err > allowed) & ok
        shown = np.where(ok, err, -1.0)
        k = int(np.argmax(shown)) if ok.any() else 0
        floor = max(1e-8 * float(np.max(np.abs(ref[ok]), initial=0.0)), 1e-8 * scale, 1e-300)
        rel = err[ok] / np.maximum(np.abs(ref[ok]), floor)
        max_rel = None if ok.any() and scale <= ROUNDING_FLOOR else float(rel.max(initial=0.0))
        worst = tuple(int(i) for i in np.unravel_index(int(flat[name][k]), shape)) if flat[name].size else ()
        est = float(np.max(np.asarray(estimated[name])[ok], initial=0.0)) if estimated is not None else 0.0
        rows.append(CheckRow(check, name, int(ref.size), float(err[k]) if ok.any() else 0.0,
                             max_rel, worst, not bad.any(), int(bad.sum()),
                             int((~ok).sum()), est))
    return rows, scale


def explain(result: VerifyResult) -> None:
    """Notes on what the verdicts rest on: kinks skipped, central differences overruled."""
    skipped = [r for r in result.rows if r.skipped]
    if skipped:
        count = sum(r.skipped for r in skipped)
        where = ", ".join(f"{r.parameter} {r.skipped}" for r in skipped)
        result.notes.append(f"{count} central-difference entries straddle a kink (a relu or step argument "
                            f"changes sign within the step): not differentiable there, skipped ({where})")
    verdicts = result.verdicts()
    if verdicts.get("central") == "disagrees" and result.passed:
        agree = [CHECK_NAMES[c] for c in DECISIVE if verdicts.get(c) == "agrees"]
        bad = [r for r in result.rows if r.check == "central" and not r.passed]
        where = ", ".join(f"{r.parameter}{list(r.worst_index)}" for r in bad)
        result.notes.append(
            f"central differences disagree beyond their estimated error at {sum(r.failed for r in bad)} "
            f"entries ({where}), but {', '.join(agree)} agree, and they are exact to rounding: read as "
            "finite-difference error, not a mismatch")


CHECK_TITLES = {"hand": "vs hand BPTT", "complex": "vs complex step", "central": "vs central diff",
                "exact": "vs exact (small)"}
CHECK_NAMES = {"hand": "hand BPTT", "complex": "complex step", "central": "central differences",
               "exact": "the exact derivation", "direction": "random directions", "module": "the module"}


def rel_text(rel: Optional[float]) -> str:
    """A relative error for the tables: ``3.1e-16``, or ``-`` when it is undefined (a zero reference)."""
    return "-" if rel is None else f"{rel:.1e}"


def _cell(r: CheckRow) -> str:
    text = f"{rel_text(r.max_rel_error)} abs {r.max_abs_error:.1e}"
    if r.check == "central":
        text += f" est {r.max_estimated_error:.0e}"
    text += f" {list(r.worst_index)}"
    if r.failed:
        text += f" FAIL {r.failed}/{r.entries}"
    if r.skipped:
        text += f" ({r.skipped} at a kink)"
    return text


def conclusion(result: VerifyResult) -> str:
    """The result line: what agrees, or which decisive checks disagree."""
    verdicts = result.verdicts()
    if result.failure:
        return f"result: MISMATCH: {result.failure}"
    if not result.passed:
        return ("result: MISMATCH: " + ", ".join(CHECK_NAMES[c] for c in result.evidence)
                + " disagree (FAIL above)")
    if verdicts.get("central") == "disagrees":
        agree = [CHECK_NAMES[c] for c in DECISIVE if verdicts.get(c) == "agrees"]
        return ("result: the gradient agrees with " + ", ".join(agree)
                + "; only central differences disagree (see the note)")
    return "result: all checks agree"


def format_result(result: VerifyResult) -> str:
    """The human-readable tables of a :class:`VerifyResult`."""
    sizes = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
    lines = [f"derive verify {result.model}: sizes {sizes}; seed {result.seed} "
             f"(repeat with --seed {result.seed} --size {','.join(f'{k}={v}' for k, v in result.sizes.items())})",
             "", "max relative error of the generated gradient, per parameter, initial state and input "
             "(rel = |a-b| / max(|b|, 1e-8 max|b|), the max over that gradient or, when it is all "
             "near zero, over all of them; - when every reference value is zero to rounding, below 64 eps: "
             "the absolute error decides; est: central differences' own estimated error; worst entry "
             "in brackets)", ""]
    checks = [c for c in CHECK_TITLES if any(r.check == c for r in result.rows)]
    params = list(dict.fromkeys(r.parameter for r in result.rows))
    header = ["gradient of"] + [CHECK_TITLES[c] for c in checks]
    table = [header]
    for p in params:
        row = [p]
        for c in checks:
            r = next((r for r in result.rows if r.check == c and r.parameter == p), None)
            row.append("-" if r is None else _cell(r))
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("random directions (complex step along a unit direction over all parameters, initial states and inputs):")
    for d in result.directions:
        lines.append(f"  direction {d['direction']}: directional derivative {d['complex_step']:+.15e}, "
                     f"gradient . v {d['gradient']:+.15e}, rel {rel_text(d['rel_error'])}"
                     f"{'' if d['passed'] else ' FAIL'}")
    exact = ", ".join(f"{k}={v}" for k, v in result.exact_sizes.items())
    lines.append(f"exact derivation compared at {exact} (50-digit evaluation of the unrolled sweep)")
    lines.append("")
    lines.append("verdict per check (an entry agrees when |a - b| <= rtol |b| + atol S, S the largest |b| "
                 "the check compared; central differences add their estimate):")
    for check, verdict in result.verdicts().items():
        rtol, atol = TOLERANCE[check]
        scale = result.scales.get(check)
        scale_text = f"{scale:.1e}" if scale is not None else "|gradient|"
        role = "" if check in DECISIVE else ", supporting evidence only"
        lines.append(f"  {CHECK_NAMES[check]}: {verdict} (rtol {rtol:.0e}, atol {atol:.0e} x {scale_text}{role})")
    lines.append("forward passes: " + ", ".join(f"{k} {v}" for k, v in result.forward_passes.items()))
    lines.append("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items()))
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append(conclusion(result))
    return "\n".join(lines)
