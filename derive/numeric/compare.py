"""Entry-by-entry comparison of two gradients and a plain-text error table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REL_FLOOR = 1e-8
"""Relative floor of the denominator, as a fraction of the largest |reference|."""

TINY = 1e-300
"""Absolute floor of the denominator (a reference that is all zeros)."""


@dataclass(frozen=True)
class GradientComparison:
    """How one parameter's candidate gradient differs from the reference.

    Attributes
    ----------
    name : str
        Parameter name.
    n_entries : int
        Number of entries compared.
    max_abs_error : float
        Largest ``|a - b|`` (``a`` candidate, ``b`` reference).
    max_rel_error : float
        Largest ``|a - b| / max(|b|, s)``, see :func:`compare_gradients`.
    worst_index : tuple of int or None
        Index into the parameter array of the largest absolute error (None
        when nothing was compared).
    reference_value, candidate_value : float or complex or None
        Both values at ``worst_index``.
    """

    name: str
    n_entries: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple | None
    reference_value: float | complex | None
    candidate_value: float | complex | None


def compare_gradients(reference, candidate, entries=None):
    """Compare a candidate gradient with a reference, parameter by parameter.

    Parameters
    ----------
    reference : dict of str to numpy.ndarray
        The reference gradient ``b``, one full array per parameter.
    candidate : dict of str to numpy.ndarray
        The gradient under test ``a``: a full array per parameter, or, for a
        parameter listed in ``entries``, a 1-D array of the values at those
        entries only.
    entries : dict of str to array_like of int, optional
        Flat (C-order) indices into the parameter arrays, for candidates
        (such as finite differences) that cover some entries only.

    Returns
    -------
    list of GradientComparison
        One record per parameter, in the order of ``reference``.

    Raises
    ------
    ValueError
        When ``candidate`` lacks a parameter or its shape does not match.

    Notes
    -----
    The relative error of an entry is

        ``|a - b| / max(|b|, s)``,  ``s = max(1e-8 * max_j |b_j|, 1e-300)``

    where ``b`` is the reference entry, ``a`` the candidate entry and the
    maximum over ``j`` runs over all entries of that parameter's reference
    array. The floor ``s`` stops entries whose true value is zero or
    nearly so (relative to the rest of the parameter) from reporting huge
    relative errors for harmless rounding; ``1e-300`` only matters for an
    all-zero reference. The reported figure is the maximum over the compared
    entries.
    """
    entries = entries or {}
    rows = []
    for name, ref_full in reference.items():
        if name not in candidate:
            raise ValueError(f"candidate has no entry {name!r}")
        ref_full = np.asarray(ref_full)
        cand = np.asarray(candidate[name])
        if name in entries:
            flat = np.asarray(entries[name], dtype=np.intp).reshape(-1)
            if cand.shape != flat.shape:
                raise ValueError(
                    f"candidate[{name!r}] has shape {cand.shape}, expected "
                    f"{flat.shape} (one value per listed entry)"
                )
        else:
            if cand.shape != ref_full.shape:
                raise ValueError(
                    f"candidate[{name!r}] has shape {cand.shape}, expected {ref_full.shape}"
                )
            flat = np.arange(ref_full.size)
            cand = cand.reshape(-1)
        ref = ref_full.reshape(-1)[flat]
        rows.append(_compare_one(name, ref_full, flat, ref, cand))
    return rows


def _compare_one(name, ref_full, flat, ref, cand):
    """One record: ``ref`` and ``cand`` are the values at flat indices ``flat``."""
    if flat.size == 0:
        return GradientComparison(name, 0, 0.0, 0.0, None, None, None)
    floor = max(REL_FLOOR * float(np.max(np.abs(ref_full))), TINY)
    abs_err = np.abs(cand - ref)
    rel_err = abs_err / np.maximum(np.abs(ref), floor)
    k = int(np.argmax(abs_err))
    return GradientComparison(
        name=name,
        n_entries=int(flat.size),
        max_abs_error=float(abs_err[k]),
        max_rel_error=float(np.max(rel_err)),
        worst_index=tuple(int(i) for i in np.unravel_index(flat[k], ref_full.shape)),
        reference_value=ref[k].item(),
        candidate_value=cand[k].item(),
    )


def format_table(rows) -> str:
    """Plain-text table of comparison records, columns aligned.

    Parameters
    ----------
    rows : iterable of GradientComparison
        As returned by :func:`compare_gradients`.

    Returns
    -------
    str
        A header line, a rule and one line per record: parameter, entries,
        max abs err, max rel err (both ``%.2e``) and worst entry. No
        trailing newline.
    """
    header = ("parameter", "entries", "max abs err", "max rel err", "worst entry")
    body = [
        (
            row.name,
            str(row.n_entries),
            "%.2e" % row.max_abs_error,
            "%.2e" % row.max_rel_error,
            "-" if row.worst_index is None else str(row.worst_index),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    left = {0, 4}  # text columns left-aligned, numbers right-aligned

    def fmt(line):
        cells = [
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])
