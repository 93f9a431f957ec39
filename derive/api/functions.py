"""The API's functions: each does what one command does and returns its result (:mod:`derive.api.results`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping

from ..cache import using as using_cache
from ..errors import InputError
from ..limits import COMMAND_SECONDS
from .claims_source import read_notes
from .results import (
    CheckVerdict,
    ClaimsCheck,
    ClaimVerdict,
    Derivation,
    DirectionCheck,
    Equation,
    GeneratedCode,
    Gradient,
    GradientCheck,
    Model,
    NotesCheck,
    NoteVerdict,
    Proof,
    ProofAtSizes,
    Verification,
    frozen,
    make,
)

MEMORY_GIB = 2.0
"""Default of ``memory_gib`` in :func:`verify_gradients`, as ``derive verify --memory``."""


def _describe(ir) -> Model:
    kinds = {kind: tuple(s.name for s in ir.symbols.values() if s.kind == kind)
             for kind in ("param", "input", "target", "state")}
    first = ir.source.splitlines()[0].lstrip("# ").strip() if ir.source.strip() else ""
    return Model(ir.name, ir.path, first, dict(ir.sizes), kinds["param"], kinds["input"], kinds["target"],
                 kinds["state"], ir.source)


def load_model(name_or_path: str | os.PathLike) -> Model:
    """Read a built-in model by name, or a model file by path.

    Parameters
    ----------
    name_or_path : str or path-like
        A built-in name (see :func:`list_models`) or the path of a model file.

    Returns
    -------
    Model
        The model's name, path, sizes, symbols and text.

    Raises
    ------
    InputError
        When there is no such model, or its text is not a valid model (the
        error names the file, line and column).
    """
    from ..model.build import load_model as build
    return _describe(build(os.fspath(name_or_path)))


def list_models() -> tuple[Model, ...]:
    """The built-in models, sorted by name (``derive models``)."""
    from ..model.build import builtin_names
    return tuple(load_model(name) for name in builtin_names())


def _model_of(model: Model | str | os.PathLike) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise TypeError(f"model takes a Model, a built-in name or a path, not {type(model).__name__}")


def _ir(model: Model):
    """A fresh internal model (the library's ``Model`` is mutable: nothing is shared between calls)."""
    from ..model.build import load_text
    return load_text(model.source, model.path, model.name)


# -- derive show --------------------------------------------------------------------------------

def _proof_at(p) -> ProofAtSizes:
    return ProofAtSizes(dict(p.sizes), sum(line.entries for line in p.lines), p.holds, p.witness_max_rel,
                        p.seconds, frozen(dict(p.classes)))


def derive(model: Model | str | os.PathLike, proof: bool = False, seed: int = 0,
           progress: Callable[[str], None] | None = None, cache: bool = True,
           symbolic_proof: bool = False) -> Derivation:
    """Derive every gradient of a model in matrix form and, when asked, prove it (``derive show``).

    Parameters
    ----------
    model : Model, str or path-like
        A model from :func:`load_model`, or a built-in name or model path.
    proof : bool
        Also prove every gradient equal to the exact elementwise derivation at
        three small size combinations (seconds for the built-ins).
    seed : int
        Seed of the proof's class targets and numeric witness (``--seed``).
    progress : callable, optional
        Called with a line of text before each size of the proof.
    cache : bool
        Read the proof from the on-disk cache when an unchanged model was
        proved before, and store it there (docs/cache.md); False proves
        afresh (``--no-cache``).
    symbolic_proof : bool
        Prove every entry with SymPy alone, without the randomized identity
        test (``--symbolic-proof``; slower).

    Returns
    -------
    Derivation

    Raises
    ------
    InputError
        When the model cannot be read, or ``seed`` is negative.
    """
    from ..calculus.matrix import derive_matrix
    from ..calculus.prove import prove
    from ..calculus.show import adjoint_text, boundary_note, format_show, initial_state_text
    from ..model.model import shape_text
    from ..notation.expr import Step
    from ..notation.printer import show
    _check_seed(seed)
    m = _model_of(model)
    ir = _ir(m)
    matrix = derive_matrix(ir)
    with using_cache(cache):
        proved = prove(matrix, seed=seed, progress=progress, symbolic=symbolic_proof) if proof else None
    equations = tuple(Equation(eq.number, f"{ir.display(eq.name, Step('rel', 0) if eq.per_step else None)}"
                               f" = {show(eq.expr)}", shape_text(ir.symbols[eq.name].shape))
                      for eq in ir.equations)
    numbers = matrix.numbers()
    gradients = []
    for name in matrix.order():
        adjoint = matrix.adjoints[name]
        generic = adjoint_text(ir, adjoint, adjoint.generic) if adjoint.generic else None
        gradients.append(Gradient(numbers[name], name, adjoint_text(ir, adjoint),
                                  shape_text(ir.symbols[name].shape), boundary_note(adjoint),
                                  initial_state_text(ir, adjoint), generic))
    constants = _constant_names(ir, matrix)
    result_proof = None
    if proved is not None:
        result_proof = Proof(proved.holds, tuple(_proof_at(p) for p in proved.sizes),
                             tuple(_proof_at(p) for p in proved.generic_sizes), tuple(proved.failures()),
                             proved.randomized, proved.failure_bound)
    return Derivation(ir.name, ir.path, dict(ir.sizes), equations, tuple(gradients), constants, result_proof,
                      format_show(ir, matrix, proved))


def _constant_names(ir, matrix) -> tuple[str, ...]:
    from ..notation.expr import Adj, Step
    from ..notation.printer import show
    return tuple(show(Adj(n, Step("rel", 0) if ir.symbols[n].per_step else None)) for n in matrix.constants)


# -- derive code --------------------------------------------------------------------------------

STYLES = ("readable", "fast")


def generate_code(model: Model | str | os.PathLike, style: str = "readable") -> GeneratedCode:
    """The NumPy module with ``loss(params, data)`` and ``loss_and_gradients(params, data)``.

    Parameters
    ----------
    model : Model, str or path-like
        A model from :func:`load_model`, or a built-in name or model path.
    style : {"readable", "fast"}
        ``fast`` writes in-place ufunc calls with the same interface; a model
        the fast style does not handle gets the readable module, and
        ``fallback`` says why.

    Returns
    -------
    GeneratedCode

    Raises
    ------
    InputError
        When the model cannot be read or ``style`` is neither style.
    """
    from ..calculus.matrix import derive_matrix
    if style not in STYLES:
        raise InputError(f"style takes 'readable' or 'fast', not {style!r}", "style")
    ir = _ir(_model_of(model))
    matrix = derive_matrix(ir)
    if style == "fast":
        from ..emit.fast import fast_module_or_readable
        source, reason = fast_module_or_readable(ir, matrix)
    else:
        from ..emit.readable import generate_module
        source, reason = generate_module(ir, matrix), None
    return GeneratedCode(ir.name, style, source, reason)


# -- derive verify ------------------------------------------------------------------------------

def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed takes a whole number of at least 0, not {seed!r}", "seed")


def _entry_counts(entries, ir, sizes) -> tuple[int | None, int | None]:
    from ..verify.run import default_complex_entries, default_entries
    if entries is None:
        return default_entries(ir, sizes), default_complex_entries(ir, sizes)
    if entries == "all":
        return None, None
    if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
        raise InputError(f"entries takes a whole number of at least 1 or 'all', not {entries!r}", "entries")
    return entries, entries


def verify_gradients(model: Model | str | os.PathLike, sizes: Mapping[str, int] | None = None,
                     seed: int = 0, entries: int | str | None = None, memory_gib: float = MEMORY_GIB,
                     source: str | None = None, cache: bool = True) -> Verification:
    """Check the generated gradient code numerically (``derive verify``).

    Parameters
    ----------
    model : Model, str or path-like
        A model from :func:`load_model`, or a built-in name or model path.
    sizes : mapping, optional
        Sizes to use instead of the declared ones (``--size H=8,T=5``:
        ``{"H": 8, "T": 5}``).
    seed : int
        Seed of the random parameters, data and sampled entries (``--seed``).
    entries : int, "all" or None
        Entries per parameter for complex step and central differences
        (``--entries``); None: 30, or 5 and 2 when a forward pass computes
        over a million values.
    memory_gib : float
        Most memory one complex-step pass may take, as estimated from the
        sizes (``--memory``); larger sizes are refused before any work.
    source : str, optional
        A module to check instead of the generated one (an edited copy of
        :attr:`GeneratedCode.source`, say); an exception it raises is a
        mismatch, not an error.
    cache : bool
        Read the exact derivation at its random point from the on-disk
        cache when an unchanged model was verified before, and store it
        there (docs/cache.md); False derives afresh (``--no-cache``).

    Returns
    -------
    Verification

    Raises
    ------
    InputError
        When the model cannot be read, a size is unknown or out of range,
        the sizes need more than ``memory_gib``, or an argument is out of range.
    """
    from ..calculus.matrix import derive_matrix
    from ..model.sizes import sizes_for
    from ..verify.rule import format_result
    from ..verify.run import verify
    _check_seed(seed)
    if not isinstance(memory_gib, (int, float)) or not 0 < memory_gib < 2 ** 20:
        raise InputError(f"memory_gib takes a number of GiB above 0, not {memory_gib!r}", "memory_gib")
    given = dict(sizes or {})
    for name, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"sizes takes whole numbers of at least 1, not {name}={value!r}", "sizes")
    ir = _ir(_model_of(model))
    chosen = sizes_for(ir, given)
    count, complex_count = _entry_counts(entries, ir, chosen)
    with using_cache(cache):
        result = verify(ir, derive_matrix(ir), chosen, seed=seed, entries=count, complex_entries=complex_count,
                        memory_limit=int(memory_gib * 2 ** 30), source=source)
    doc = json.loads(json.dumps(result.to_json()))
    return make(Verification, doc, text=format_result(result),
                 rows=tuple(make(GradientCheck, r) for r in doc["rows"]),
                 directions=tuple(make(DirectionCheck, d) for d in doc["directions"]),
                 checks={c: make(CheckVerdict, v) for c, v in doc["checks"].items()})


# -- derive check -------------------------------------------------------------------------------

def check_claims(source: str | os.PathLike, model: Model | str | os.PathLike | None = None, *,
                 allow_model_path: bool = False, claim_seconds: float | None = None,
                 seconds: float | None = COMMAND_SECONDS, max_claims: int = 500,
                 progress=None, cache: bool = True) -> ClaimsCheck:
    """Check every claim of a hand derivation (``derive check``).

    Parameters
    ----------
    source : str or path-like
        A claims file's path, or the claims themselves as text: a ``str``
        with a line break, or one line that starts with ``claim`` (or another
        statement's word) and names no file, is text; any other ``str`` a path. In text, a
        ``model`` line may name a built-in model, or an absolute path with
        ``allow_model_path``; give a model file with ``model`` instead.
    model : Model, str or path-like, optional
        The model the claims are about, for claims without a ``model`` line
        (claims that name their own model are refused with it).
    allow_model_path : bool
        Let ``model PATH`` name an absolute path or a file outside the claims
        file's folder (``--allow-model-path``).
    claim_seconds : float, optional
        Time limit per claim (default 20 s); a claim past it is ``undecided``.
    seconds : float, optional
        Time limit of the whole check (None: none); claims left are ``undecided``.
    max_claims : int
        The most claims the file may hold.
    progress : text stream, optional
        Where to say which claim is being checked (``derive check`` uses stderr).
    cache : bool
        Reuse, from the on-disk cache, what an earlier check of the same
        model and claims stored (docs/cache.md); False checks afresh
        (``--no-cache``).

    Returns
    -------
    ClaimsCheck
        A claim line that does not parse gets the verdict ``error``; a bug of
        derive's while checking a claim makes it ``undecided`` with
        ``internal_error`` set.

    Raises
    ------
    InputError
        When the file or its model cannot be read, or no claim can be read
        (``derive check`` exits 2 then).
    """
    from ..claims.command import limits_of
    from ..claims.listing import json_document, listing
    from ..claims.verdicts import check_file
    started = time.monotonic()
    notes = read_notes(source, None if model is None else _model_of(model), allow_model_path, max_claims)
    with using_cache(cache):
        results = check_file(notes, progress=progress, claim_seconds=claim_seconds, seconds=seconds,
                             started=started)
    limits = limits_of(claim_seconds, seconds, max_claims)
    doc = json.loads(json.dumps(json_document(notes, results, limits), ensure_ascii=False))
    return make(ClaimsCheck, doc, claims=tuple(make(ClaimVerdict, c) for c in doc["claims"]),
                 text=listing(notes, results))


def check_notes(path: str | os.PathLike, model: Model | str | os.PathLike | None = None, *,
                allow_model_path: bool = False, claim_seconds: float | None = None,
                seconds: float | None = COMMAND_SECONDS, max_claims: int = 500,
                progress=None, cache: bool = True) -> NotesCheck:
    """Check every derivative equation of notes written freely (``derive check NOTES --model MODEL``).

    Parameters
    ----------
    path : str or path-like
        The notes file (docs/check.md, "Notes as written").
    model : Model, str or path-like, optional
        The model the notes are about: a built-in, or a model file in the notes' folder (anywhere with
        ``allow_model_path``); without it, the notes' own ``model`` line.
    allow_model_path, claim_seconds, seconds, max_claims, progress, cache
        As for :func:`check_claims`.

    Returns
    -------
    NotesCheck
        The verdicts of the equations checked, each with how it was read, and every finding not checked.

    Raises
    ------
    InputError
        When the notes or the model cannot be read, or no equation of the loss can be checked.
    """
    from ..claims.command import limits_of
    from ..claims.notes_command import MAX_FINDINGS, notes_model, read_notes_source
    from ..claims.notes_listing import notes_json, notes_listing
    from ..claims.notes_read import read_notes as read_written
    from ..claims.verdicts import check_file
    started = time.monotonic()
    if isinstance(model, Model):
        model = model.name if model.path.startswith("<builtin:") else model.path
    src = read_notes_source(os.fspath(path))
    ir, model_note = notes_model(src, None if model is None else os.fspath(model), allow_model_path)
    notes = read_written(src, ir, max_claims=max_claims, max_findings=MAX_FINDINGS)
    if not notes.claims_file.claims:
        raise InputError(f"no derivative equation of the loss could be checked ({notes.found} found)",
                         os.fspath(path))
    with using_cache(cache):
        results = check_file(notes.claims_file, progress=progress, claim_seconds=claim_seconds, seconds=seconds,
                             started=started)
    limits = limits_of(claim_seconds, seconds, max_claims)
    doc = json.loads(json.dumps(notes_json(notes, results, limits, model_note), ensure_ascii=False))
    return make(NotesCheck, doc, claims=tuple(make(NoteVerdict, c) for c in doc["claims"]),
                text=notes_listing(notes, results, model_note))
