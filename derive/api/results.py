"""The API's results: small frozen dataclasses, one per command, with ``to_json()``.

Where the command has a ``--json`` document (``derive verify``, ``derive
check``), the fields are that document's keys and ``to_json()`` returns the
same document; the others hold what the command prints, in fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class _Result:
    """What every result shares: ``to_json()``."""

    _printed = ()  # fields holding what the command prints: not part of its JSON document

    def to_json(self) -> dict:
        """The fields as plain JSON values (lists, dicts, numbers, strings, None), the printed text left out."""
        out = asdict(self)
        for name in self._printed:
            out.pop(name, None)
        return json.loads(json.dumps(out))


def frozen(value: Any) -> Any:
    """Lists become tuples, at any depth, so that a result cannot be changed by accident."""
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: frozen(v) for k, v in value.items()}
    return value


def make(cls, data: Mapping[str, Any], **extra):
    """An instance of the dataclass ``cls`` from the keys of ``data`` that are its fields, ``extra`` put in."""
    known = {f.name for f in fields(cls)} - set(extra)
    return cls(**{k: frozen(v) for k, v in data.items() if k in known}, **extra)


# -- models -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Model(_Result):
    """A model, as :func:`load_model` read it: a value, safe to share; every function rebuilds what it needs."""

    name: str
    """The built-in's name, or the file's name without its extension."""
    path: str
    """``<builtin:NAME>`` or the file's path."""
    description: str
    """The model text's first line without its ``#``, as ``derive models`` lists it."""
    sizes: dict[str, int | None]
    """The declared sizes (None where a size is named but not given a value)."""
    parameters: tuple[str, ...]
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    states: tuple[str, ...]
    source: str
    """The model text."""


# -- derive show --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Equation(_Result):
    """One numbered line of ``derive show``: ``(2) h_t = tanh(z_t)   H x B``."""

    number: int
    text: str
    shape: str


@dataclass(frozen=True)
class Gradient(_Result):
    """One derived gradient, as ``derive show`` prints it."""

    number: int
    """Its equation number, after the forward equations (also in the generated code's comments)."""
    name: str
    """The quantity or parameter, as the model names it (``h_t``, ``W_hh``)."""
    text: str
    """``dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}``."""
    shape: str
    boundary: str
    """What the recurrence reads past the last step, as zero (``dL/dz_{T+1} = 0``), or ``""``."""
    initial_state: str | None
    """For a state: ``dL/dh_0 = W_hh.T @ dL/dz_1``."""
    before_simplification: str | None
    """The form before the softmax + cross-entropy simplification, where there is one (both are proved)."""


@dataclass(frozen=True)
class ProofAtSizes(_Result):
    """One size combination of the proof (a line of ``derive show``'s proof)."""

    sizes: dict[str, int]
    entries: int
    holds: bool
    witness_gap: float
    """The largest relative gap of the 50-digit numeric witness."""
    seconds: float
    classes: dict[str, tuple[int, ...]]
    """The class numbers drawn for class targets."""


@dataclass(frozen=True)
class Proof(_Result):
    """The proof that every gradient equals the exact elementwise derivation."""

    holds: bool
    sizes: tuple[ProofAtSizes, ...]
    generic_sizes: tuple[ProofAtSizes, ...]
    """The same, for the forms before the softmax + cross-entropy simplification."""
    failures: tuple[str, ...]
    randomized: int = 0
    """How many entries the randomized identity test showed; the others were proved by SymPy."""
    failure_bound: float = 0.0
    """The chance that an entry the randomized test showed is not an identity (0 when it showed none)."""


@dataclass(frozen=True)
class Derivation(_Result):
    """The matrix derivation of a model and, when asked, its proof (``derive show``)."""

    _printed = ("text",)

    model: str
    path: str
    sizes: dict[str, int | None]
    equations: tuple[Equation, ...]
    """The forward equations."""
    gradients: tuple[Gradient, ...]
    """Every gradient, in backward order."""
    constants: tuple[str, ...]
    """Adjoints that are constants, written in place (``dL/dL``)."""
    proof: Proof | None
    """None unless ``derive(..., proof=True)``."""
    text: str
    """What ``derive show`` prints (``--no-proof`` when ``proof`` is None)."""

    @property
    def holds(self) -> bool:
        """True unless the proof was run and failed (``derive show`` exits 1 then)."""
        return self.proof is None or self.proof.holds


# -- derive code --------------------------------------------------------------------------------

@dataclass(frozen=True)
class GeneratedCode(_Result):
    """The NumPy module of a model (``derive code``)."""

    model: str
    style: str
    """The style asked for: ``readable`` or ``fast``."""
    source: str
    """The module's text, as ``derive code`` prints it."""
    fallback: str | None
    """Why the fast style does not handle this model, when ``source`` is the readable module instead."""

    def write(self, path: str | os.PathLike) -> None:
        """Write the module to ``path`` whole, or not at all (``derive code -o``).

        Raises
        ------
        InputError
            When ``path`` is a folder or its folder does not exist.
        """
        from ..files import write_atomically
        write_atomically(os.fspath(path), self.source)

    def load(self):
        """The module, imported from memory (no file): ``loss``, ``loss_and_gradients``, ``PARAM_SHAPES``, ..."""
        from ..emit.loader import import_source
        return import_source(self.source)


# -- derive verify ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradientCheck(_Result):
    """One parameter (or initial state) against one reference: a row of ``derive verify``'s table."""

    check: str
    parameter: str
    entries: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    passed: bool
    failed: int
    skipped: int
    max_estimated_error: float


@dataclass(frozen=True)
class DirectionCheck(_Result):
    """One random direction: the gradient's directional derivative against complex step."""

    direction: int
    gradient: float
    complex_step: float
    abs_error: float
    rel_error: float
    allowed: float
    passed: bool


@dataclass(frozen=True)
class CheckVerdict(_Result):
    """One check's verdict (``agrees``, ``disagrees``, ``skipped``) and the tolerance it was judged by."""

    verdict: str
    rtol: float
    atol: float
    scale: float | None
    decisive: bool
    """Whether its disagreement alone makes a MISMATCH (every check but central differences)."""
    entries: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class Verification(_Result):
    """Everything ``derive verify`` measured; the fields are the keys of its ``--json`` document."""

    _printed = ("text",)

    model: str
    sizes: dict[str, int]
    seed: int
    passed: bool
    """No check that is exact to rounding disagrees (``derive verify`` exits 0)."""
    result: str
    """``agree`` or ``mismatch``."""
    evidence: tuple[str, ...]
    """The decisive checks that disagree (or ``module`` when the module raised)."""
    checks: dict[str, CheckVerdict]
    rows: tuple[GradientCheck, ...]
    directions: tuple[DirectionCheck, ...]
    exact_sizes: dict[str, int]
    forward_passes: dict[str, int]
    seconds: dict[str, float]
    notes: tuple[str, ...]
    scales: dict[str, float]
    tolerances: dict[str, dict[str, float]]
    failure: str | None
    text: str
    """What ``derive verify`` prints without ``--json``."""


# -- derive check -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimVerdict(_Result):
    """The verdict on one claim; the fields are those of a claim in ``derive check --json``."""

    line: int
    column: int
    text: str
    """The claim as written (without ``claim`` and its comment)."""
    verdict: str
    """``holds``, ``layout``, ``factor``, ``partial``, ``shape``, ``wrong``, ``undecided`` or ``error``."""
    explanation: str
    reading: str | None
    dot_reading: Any
    truth: str | None
    truth_terms: Any
    repair: str | None
    repair_edit: str | None
    counterexample: Any
    factor: str | None
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    shape: Any
    sizes_proved: tuple[dict[str, int], ...]
    entries_proved: int | None
    witness_gap: float | None
    seconds: float
    error: dict[str, Any] | None
    """For a line that does not parse or resolve: ``file``, ``line``, ``column``, ``message``."""
    limit: str | None
    internal_error: bool
    repair_edits: tuple[str, ...] = ()
    """The edits of the repair, in order (``repair_edit`` joins them)."""
    repair_kinds: tuple[str, ...] = ()
    """The slips those edits undo, in words that are the same for every claim (``a missing transpose``)."""
    repair_search: str | None = None
    """What the repair search tried when it found no repair."""
    numerator_layout: bool = False
    """The verdict is ``layout`` because the claim holds in numerator layout (every gradient transposed)."""


@dataclass(frozen=True)
class ClaimsCheck(_Result):
    """Every claim's verdict; the fields are the keys of ``derive check --json``."""

    _printed = ("text",)

    file: str
    """The claims file, or ``<text>`` for claims given as text."""
    model: str
    claims: tuple[ClaimVerdict, ...]
    summary: dict[str, int]
    """Counts per verdict, ``claims`` (the total) and ``exit_status`` (the command's)."""
    limits: dict[str, Any]
    text: str
    """What ``derive check`` prints without ``--json``."""

    @property
    def holds(self) -> bool:
        """Every claim holds (``derive check`` exits 0)."""
        return self.summary["exit_status"] == 0


@dataclass(frozen=True)
class NoteVerdict(ClaimVerdict):
    """The verdict on one equation of notes written freely: a claim's fields, and how the notes were read."""

    written: str = ""
    """The equation as the notes write it (``dL2/dWhh = ...``)."""
    read_as: str = ""
    """The claim it was read as, in the notation."""
    readings: tuple[str, ...] = ()
    """Each reading made (``Whh as W_hh``, ``L2 as L, ...``)."""


@dataclass(frozen=True)
class NotesCheck(ClaimsCheck):
    """Every derivative equation of notes written freely; the fields are the keys of
    ``derive check NOTES --model MODEL --json``: those of :class:`ClaimsCheck` (``claims`` are
    :class:`NoteVerdict`; ``holds`` is also False when an equation could not be read), and these."""

    model_from: str
    """Where the model came from (``--model``, or the notes' own ``model`` line)."""
    readings: tuple[str, ...]
    """Readings that hold for the whole file (``*`` read as the ambiguous product, ``L2`` fixing T)."""
    not_checked: tuple[dict[str, Any], ...]
    """Every finding not checked, with ``line``, ``column``, ``text``, ``kind`` and ``reason``."""
