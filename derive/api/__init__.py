"""The Python API: what the commands do, as functions for scripts, notebooks and tests.

Each function returns a small frozen dataclass (:mod:`derive.api.results`).
Where the command has a ``--json`` document (``derive verify``, ``derive
check``), the fields are that document's keys and ``to_json()`` returns the
same document; the others hold what the command prints, in fields
(``derive show``, ``derive code``, ``derive models``). Bad input raises
:class:`derive.errors.InputError`, where the command exits with status 2.
``docs/api.md`` documents every name here. The names are also importable
from ``derive`` itself (``from derive import load_model``).
"""

from ..errors import InputError
from .functions import (
    MEMORY_GIB,
    STYLES,
    check_claims,
    check_notes,
    derive,
    generate_code,
    list_models,
    load_model,
    verify_gradients,
)
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
)

__all__ = [
    "MEMORY_GIB",
    "STYLES",
    "CheckVerdict",
    "ClaimVerdict",
    "ClaimsCheck",
    "Derivation",
    "DirectionCheck",
    "Equation",
    "GeneratedCode",
    "Gradient",
    "GradientCheck",
    "InputError",
    "Model",
    "NotesCheck",
    "NoteVerdict",
    "Proof",
    "ProofAtSizes",
    "Verification",
    "check_claims",
    "check_notes",
    "derive",
    "generate_code",
    "list_models",
    "load_model",
    "verify_gradients",
]
