"""``derive report``: the derivation as a LaTeX document, checked by the machine.

:func:`build_report` assembles the ``.tex`` text (deterministic: no dates,
no timings); :func:`run_report` writes it, or compiles it to PDF in a
temporary directory and moves the PDF into place, so a failure never
leaves a half-written file.

A model report has seven parts: the model with shapes under each term, the
gradients step by step, the proof, the generated code with equation
numbers, the numeric evidence, and the figures.  A claims file (a hand
derivation) gives the model, each claim beside the truth with its verdict
and repair, and the derived gradients it was checked against.

Exit status of :func:`run_report`: 0 when every check inside holds; 1 when
the proof or a numeric check fails, or (for a claims file) a claim does
not hold -- the report is still written; 2 on bad input, an unknown output
type, no TeX engine for ``.pdf`` (nothing is written), or a failed compile.

The parts live in their own modules: :mod:`.model_report` and
:mod:`.claims_report` assemble the two kinds of report from the sections
(:mod:`.model_section`, :mod:`.derivation_section`, :mod:`.proof_section`,
:mod:`.code_section`, :mod:`.numeric_section`, :mod:`.figures_section`),
which typeset through :class:`.typeset.Typesetter` into a
:class:`.document.Doc`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from ..errors import InputError
from ..files import write_atomically
from .claims_check import check_claims, is_claims_file
from .claims_report import VERDICT_WORDS, claims_report
from .document import Report, say
from .model_report import model_report

# check_claims, VERDICT_WORDS and Report are here for the tests, which reach them through this module.
__all__ = ["build_report", "run_report", "compile_pdf", "tex_engine", "CompileError", "TEX_HINT",
           "Report", "check_claims", "VERDICT_WORDS"]

TEX_HINT = ("install TeX (Debian: apt-get install texlive-latex-base texlive-latex-recommended latexmk), "
            "or write the LaTeX source with -o FILE.tex")


def build_report(source: str, seed: int = 0, sizes: Optional[Dict[str, int]] = None,
                 entries: Optional[int] = None, progress: Optional[TextIO] = None, *,
                 allow_model_path: bool = False, memory_limit: Optional[int] = None,
                 against: Optional[str] = None, mapping: Optional[str] = None) -> Report:
    """Assemble the LaTeX report of a model or a claims file.

    Parameters
    ----------
    source : str
        A built-in model name, a model file, or a claims file.
    seed : int
        Seed of the proof's witness points and of the numeric checks.
    sizes : dict, optional
        Sizes for the numeric evidence (default: the model's own).
    entries : int, optional
        Finite-difference entries per parameter (default: 10, or 3 for a
        large model).
    progress : text stream, optional
        Where to say what is being done.
    allow_model_path : bool
        Let a claims file's ``model PATH`` leave the claims file's folder
        (as ``derive check --allow-model-path``).
    memory_limit : int, optional
        Bytes the numeric evidence may take per complex-step pass (default:
        :data:`derive.verify.run.MEMORY_LIMIT`).
    against : str, optional
        A user's implementation (``impl.py:function``, imported and run) or an answered case directory:
        the report ends with ``derive against``'s findings on it (:mod:`derive.report.against_section`).
    mapping : str, optional
        The mapping file of ``against`` (docs/against.md).

    Returns
    -------
    Report
        The deterministic ``.tex`` text, and whether every check held.

    Raises
    ------
    InputError
        When the source cannot be read.
    """
    if is_claims_file(source):
        if against is not None:
            raise InputError("--against compares an implementation with a model's derivation: give a model, "
                             "not a claims file", source)
        return claims_report(source, progress, allow_model_path=allow_model_path)
    from ..calculus.cache_keys import cached_for_model
    from ..model.build import load_model
    model = load_model(source)
    computed = []

    def compute() -> Report:
        computed.append(True)
        return model_report(source, seed, sizes, entries, progress, memory_limit=memory_limit)

    # the report shows the model as written (comments too), so its text is part of the key
    parts = (model.name, model.path, model.source, seed, tuple(sorted((sizes or {}).items())), entries, memory_limit)
    report = cached_for_model("model_report", model, parts, compute)
    if not computed:
        say(progress, "the report was read from the cache (--no-cache builds it again)")
    if against is not None:  # the user's code may have changed since: never from the cache
        from .against_section import with_against
        say(progress, f"comparing {against} with the derivation")
        report = with_against(report, source, against, mapping, seed, sizes)
    return report


def tex_engine() -> Optional[List[str]]:
    """The command that compiles a ``.tex`` to PDF here (latexmk, else pdflatex), or None."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


class CompileError(Exception):
    """pdflatex failed; the message holds the end of the log."""


def compile_pdf(tex: str, output: str, engine: Optional[List[str]] = None) -> None:
    """Compile ``tex`` in a temporary directory and move the PDF to ``output``.

    Raises
    ------
    CompileError
        When there is no engine or the compile fails (nothing is written).
    """
    engine = engine or tex_engine()
    if engine is None:
        raise CompileError("no TeX engine (latexmk or pdflatex) found: " + TEX_HINT)
    target = Path(output)
    with tempfile.TemporaryDirectory(prefix="derive-report-") as tmp:
        src = Path(tmp) / "report.tex"
        src.write_text(tex, encoding="utf-8")
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
        runs = 1 if engine[0] == "latexmk" else 2
        for _ in range(runs):
            proc = subprocess.run(engine + ["report.tex"], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
            if proc.returncode != 0:
                log = Path(tmp) / "report.log"
                text = log.read_text(errors="replace") if log.exists() else proc.stdout.decode(errors="replace")
                errors = [ln for ln in text.splitlines() if ln.startswith("!")][:5]
                raise CompileError("pdflatex failed: " + ("; ".join(errors) or text[-800:]))
        pdf = Path(tmp) / "report.pdf"
        if not pdf.exists():
            raise CompileError("pdflatex produced no PDF")
        write_atomically(str(target), pdf.read_bytes())


def compile_cached(tex: str, output: str, engine: List[str], err: Optional[TextIO]) -> None:
    """:func:`compile_pdf`, or the PDF an earlier compile of the same text with the same engine left in the cache."""
    from .. import cache
    program = shutil.which(engine[0])
    stamp = os.stat(program).st_mtime_ns if program else None  # a reinstalled TeX compiles afresh
    computed = []

    def compile_now() -> bytes:
        computed.append(True)
        say(err, "compiling the PDF")
        compile_pdf(tex, output, engine)
        return Path(output).read_bytes()

    pdf = cache.cached("pdf", (tex, tuple(engine), program, stamp), compile_now)
    if not computed:
        say(err, "the PDF of this report was read from the cache")
        write_atomically(output, pdf)


def run_report(source: str, output: str, seed: int, out: TextIO, err: TextIO,
               sizes: Optional[Dict[str, int]] = None, entries: Optional[int] = None, *,
               allow_model_path: bool = False, memory_limit: Optional[int] = None,
               against: Optional[str] = None, mapping: Optional[str] = None) -> int:
    """``derive report SOURCE -o OUTPUT``: write the report as ``.tex`` or ``.pdf``.

    Parameters
    ----------
    source : str
        A built-in model name, a model file or a claims file.
    output : str
        ``FILE.tex`` (no TeX needed) or ``FILE.pdf`` (compiled with latexmk or pdflatex).
    seed : int
        Seed of the proof witness and the numeric checks.
    out, err : text streams
        ``wrote FILE`` and progress go to ``err``; ``out`` stays empty.
    sizes : dict, optional
        Sizes for the numeric evidence (default: the model's).
    entries : int, optional
        Finite-difference entries per parameter.
    against, mapping : str, optional
        As for :func:`build_report`.

    Returns
    -------
    int
        0 when every check held, 1 when one failed (the report is still
        written and says which), 2 on bad input, an unknown output type,
        no TeX engine for a PDF, or a failed compile (nothing written).
    """
    suffix = Path(output).suffix.lower()
    if suffix not in (".tex", ".pdf"):
        print(f"derive report: error: the output must end in .tex or .pdf, not {output!r}", file=err)
        return 2
    folder = Path(output).parent
    if str(folder) and not folder.is_dir():
        print(f"derive report: error: no such directory '{folder}' for {output}", file=err)
        return 2
    engine = None
    if suffix == ".pdf":
        engine = tex_engine()
        if engine is None:
            print(f"derive report: error: cannot write {output}: no TeX engine (latexmk or pdflatex) on "
                  f"PATH; {TEX_HINT}", file=err)
            return 2
    try:
        report = build_report(source, seed=seed, sizes=sizes, entries=entries, progress=err,
                              allow_model_path=allow_model_path, memory_limit=memory_limit,
                              against=against, mapping=mapping)
    except InputError as error:
        print(error.format(), file=err)
        return 2
    if suffix == ".tex":
        write_atomically(output, report.tex)
    else:
        try:
            compile_cached(report.tex, output, engine, err)
        except CompileError as error:
            print(f"derive report: error: {error}", file=err)
            return 2
    print(f"wrote {output}", file=err)
    if not report.passed:
        print("derive report: a check failed; the report says which", file=err)
    return 0 if report.passed else 1
