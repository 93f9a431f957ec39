"""The report on a model: the model, its gradients step by step, the proof, the code, the evidence, the figures."""

from __future__ import annotations

import contextlib
from typing import Dict, Optional, TextIO

from .. import __version__
from ..errors import InputError
from ..numeric import HAND_BPTT
from .code_section import code_index, code_section, generate_code
from .derivation_section import derivation_section
from .document import Doc, Report, begin_document, say
from .evidence import can_fork, start_evidence
from .figures_section import figures_section
from .latex import breakable, escape_text
from .model_section import model_section
from .numeric_section import numeric_section, run_checks
from .proof_section import proof_section
from .sizes import default_entries, resolve_sizes
from .typeset import Typesetter


def model_report(source: str, seed: int, sizes: Optional[Dict[str, int]], entries: Optional[int],
                 progress: Optional[TextIO], memory_limit: Optional[int] = None) -> Report:
    """The full report on a model (see :func:`derive.report.run.build_report` for the parameters).

    Returns
    -------
    Report
        The ``.tex`` text, passed when the proof and every numeric check hold.

    Raises
    ------
    InputError
        When the model cannot be read.
    """
    from ..calculus.matrix import derive_matrix
    from ..calculus.prove import prove
    from ..model.build import load_model
    model = load_model(source)
    derivation = derive_matrix(model)
    doc = Doc()
    begin_document(doc, rf"Derivation report: \texttt{{{breakable(model.name)}}}",
                   rf"generated and checked by \texttt{{derive {__version__}}}, seed {seed}")
    first = model.source.splitlines()[0].lstrip("# ").strip() if model.source.strip().startswith("#") else ""
    if first:
        doc.para(rf"\emph{{{escape_text(first)}}}")
    hand = model.name in HAND_BPTT and model.path.startswith("<builtin:")  # as derive verify decides
    doc.para(r"This report derives the gradient of the loss with respect to every parameter of the model, "
             r"as a careful hand derivation would, and records what the machine checked: the proof "
             r"of every recurrence (Section~\ref{sec:proof}), the generated NumPy code that computes them "
             r"(Section~\ref{sec:code}), and numeric comparisons with complex step, finite differences and the "
             r"exact derivation" + (r", and an independent hand-written BPTT" if hand else "")
             + r" (Sections~\ref{sec:numeric} and~\ref{sec:figures}).")
    typeset = Typesetter(model, derivation)
    code = generate_code(model, derivation)
    if code is not None:
        typeset.code_lines = code_index(code)
    model_section(doc, typeset)
    derivation_section(doc, typeset)
    with _evidence(model, typeset, code, sizes, seed, entries, memory_limit) as evidence:
        say(progress, "proving every recurrence at three sizes")
        proof = prove(derivation, seed=seed)
        proof_section(doc, typeset, proof)
        passed = proof.holds
        code_section(doc, typeset, code)
        if code is not None:
            run_sizes = resolve_sizes(model, sizes)
            n_entries = entries if entries is not None else default_entries(model, run_sizes)
            say(progress, f"numeric checks at {', '.join(f'{k}={v}' for k, v in run_sizes.items())}")
            result, figures = evidence.result() if evidence is not None else (None, None)
            passed = numeric_section(doc, typeset, code, run_sizes, seed, n_entries, memory_limit,
                                     result=result) and passed
            say(progress, "figures")
            if figures is None:
                figures_section(doc, typeset, code, run_sizes, seed)
            else:
                doc.add(*figures)
    doc.add(r"\end{document}")
    return Report(doc.text(), passed)


@contextlib.contextmanager
def _evidence(model, typeset, code, sizes, seed, entries, memory_limit):
    """The numeric checks and the figures started beside the proof (:mod:`derive.report.evidence`).

    Yields an :class:`~derive.report.evidence.Evidence` whose result is the
    checks' :class:`~derive.verify.rule.VerifyResult` and the figures'
    LaTeX lines, or None when they run in their turn: no code, no fork
    (:func:`~derive.report.evidence.can_fork`), or sizes that cannot be read
    (the report raises their error where it always has, after the proof).
    """
    if code is None or not can_fork():
        yield None
        return
    try:
        run_sizes = resolve_sizes(model, sizes)
    except InputError:
        yield None
        return
    n_entries = entries if entries is not None else default_entries(model, run_sizes)

    def compute():
        result = run_checks(typeset, code, run_sizes, seed, n_entries, memory_limit)
        figures = Doc()
        figures_section(figures, typeset, code, run_sizes, seed)
        return result, figures.lines

    with start_evidence(compute, fork=True) as evidence:
        yield evidence
