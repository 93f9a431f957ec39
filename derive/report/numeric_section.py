"""Section 5 of a model report: the numeric evidence, the generated gradient against independent references."""

from __future__ import annotations

from typing import Optional

from .document import Doc
from .latex import escape_text, fmt_sci, name_math, sizes_math
from .typeset import Typesetter

CHECK_TITLES = [("hand", "hand BPTT"), ("complex", "complex step"), ("central", "central diff."),
                ("exact", "exact (small)")]
"""The numeric checks, as ``(check, column title)``, in the order of the table's columns."""


def numeric_section(doc: Doc, typeset: Typesetter, code: str, sizes, seed: int, entries: int,
                    memory_limit: Optional[int] = None, result=None) -> bool:
    """Write the section on the numeric evidence: the generated gradient against every reference.

    Parameters
    ----------
    doc : Doc
        The document being written.
    typeset : Typesetter
        The model, its derivation, and how they are typeset.
    code : str
        The generated module the report prints: the module checked.
    sizes : dict
        Sizes to check at.
    seed : int
        Seed of the parameters, the data and the sampled entries.
    entries : int
        Finite-difference entries per parameter.
    memory_limit : int, optional
        Bytes one complex-step pass may take (default: verify's own limit).
    result : VerifyResult, optional
        The checks already run with these arguments (:func:`run_checks`;
        :mod:`derive.report.evidence` runs them beside the proof); else they
        run here.

    Returns
    -------
    bool
        Whether every numeric check agreed.
    """
    from ..verify.rule import TOLERANCE, conclusion
    model = typeset.model
    if result is None:
        result = run_checks(typeset, code, sizes, seed, entries, memory_limit)
    doc.add(r"\section{Numeric evidence}\label{sec:numeric}", "")
    doc.para(rf"The generated gradient at ${sizes_math(result.sizes)}$, seed {seed}: parameters "
             r"$\mathcal{N}(0,1)\cdot 0.5/\sqrt{\text{columns}}$, inputs standard normal, a non-zero "
             r"initial state, all drawn from the seed. Each cell is the largest relative error "
             r"$|a-b|/\max(|b|, 10^{-8}\max|b|)$ over the compared entries of that parameter, "
             r"with the worst entry $(i,j)$ beneath. "
             rf"Complex step and central differences check {entries} entries per parameter (drawn with "
             r"the seed; all of a smaller parameter). The exact comparison evaluates the unrolled "
             rf"symbolic derivation with 50 digits at ${sizes_math(result.exact_sizes)}$. "
             rf"Repeat with \texttt{{derive verify {escape_text(model.command_argument())} --seed {seed} --size "
             rf"{escape_text(','.join(f'{k}={v}' for k, v in result.sizes.items()))} --entries {entries}}}.")
    checks = [(c, t) for c, t in CHECK_TITLES if any(r.check == c for r in result.rows)]
    doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{l" + "c" * len(checks) + "}", r"\toprule")
    doc.add("parameter & " + " & ".join(f"vs {t}" for _, t in checks) + r" \\", r"\midrule")
    params = list(dict.fromkeys(r.parameter for r in result.rows))
    for p in params:
        cells = []
        for c, _ in checks:
            r = next((r for r in result.rows if r.check == c and r.parameter == p), None)
            if r is None:
                cells.append("--")
                continue
            mark = "" if r.passed else r" \textbf{FAIL}"
            where = ",".join(str(i) for i in r.worst_index)
            cells.append(rf"\begin{{tabular}}{{@{{}}c@{{}}}}{rel_math(r.max_rel_error, r.max_abs_error)}{mark}\\"
                         rf"\scriptsize $({where})$, {r.entries} entries\end{{tabular}}")
        doc.add(rf"${name_math(p)}$ & " + " & ".join(cells) + r" \\[3pt]")
    tol = ", ".join(rf"{t} $\rho = {fmt_sci(TOLERANCE[c][0], 1)}$, $\alpha = {fmt_sci(TOLERANCE[c][1], 1)}$"
                    for c, t in checks)
    doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    if any(r.max_rel_error is None for r in result.rows) or any(d["rel_error"] is None for d in result.directions):
        doc.para(r"A dash marks a relative error that is undefined: every reference value the check "
                 r"compared is zero to rounding (below $64\,\varepsilon \approx 1.4\times 10^{-14}$), "
                 r"so the absolute error, shown beside the dash, decides.")
    doc.para(r"An entry $a$ of the generated gradient agrees with a reference $b$ when "
             r"$|a-b| \le \rho\,|b| + \alpha\,S$, $S$ the largest $|b|$ the check compared over every "
             rf"parameter and initial state: {tol}. Central differences add their own estimated error "
             r"(the gap between the differences at steps $h$ and $2h$, plus rounding) and skip an entry "
             r"whose step crosses a kink of relu or step; they support the verdict but do not decide it, "
             r"since complex step, the exact derivation and the random directions are exact to rounding.")
    if result.directions:
        doc.para(r"Random directions: the complex-step derivative of $L$ along a unit direction $v$ over "
                 r"all parameters at once, against $\nabla L \cdot v$ from the generated gradient.")
        doc.add(r"\begin{center}", r"\small", r"\begin{tabular}{rccc}", r"\toprule",
                r"direction & $\mathrm{d}L/\mathrm{d}s$ (complex step) & $\nabla L\cdot v$ & relative error \\",
                r"\midrule")
        for dct in result.directions:
            mark = "" if dct["passed"] else r" \textbf{FAIL}"
            doc.add(rf"{dct['direction']} & ${dct['complex_step']:+.12f}$ & ${dct['gradient']:+.12f}$ & "
                    rf"{rel_math(dct['rel_error'], dct['abs_error'])}{mark} \\")
        doc.add(r"\bottomrule", r"\end{tabular}", r"\end{center}", "")
    passes = ", ".join(f"{escape_text(k)} {v}" for k, v in result.forward_passes.items())
    doc.para(f"Forward passes spent: {passes}.")
    for note in result.notes:
        if "--entries" in note:
            continue
        doc.para(escape_text("Note: " + note + "."))
    verdict = conclusion(result)[len("result: "):]
    if verdict == "all checks agree":
        verdict = "every numeric check agrees"
    doc.para(r"\textbf{Result: " + escape_text(verdict) + ".}")
    return result.passed


def run_checks(typeset: Typesetter, code: str, sizes, seed: int, entries: int, memory_limit: Optional[int] = None):
    """The numeric checks of the section (:func:`derive.verify.run.verify` on the printed module).

    Takes the parameters of :func:`numeric_section`; returns the
    :class:`~derive.verify.rule.VerifyResult`.
    """
    from ..verify.run import verify
    limit = {} if memory_limit is None else {"memory_limit": memory_limit}
    return verify(typeset.model, typeset.derivation, sizes, seed=seed, entries=entries, source=code, **limit)


def rel_math(rel, abs_error: float) -> str:
    """A relative error for the tables; when it is undefined (a reference of zeros), a dash and the absolute error."""
    return f"-- (abs.\\ ${fmt_sci(abs_error)}$)" if rel is None else f"${fmt_sci(rel)}$"
