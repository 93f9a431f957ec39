"""derive: a symbolic derivation verifier for recurrent neural network gradients.

The Python API (``docs/api.md``) is importable from here: ``from derive import
load_model, derive, verify_gradients``. The names are loaded on first use, so
``import derive`` loads nothing else (the command line starts as fast as before).
"""

import importlib

__version__ = "0.1.0"

_API = ("CheckVerdict", "ClaimVerdict", "ClaimsCheck", "Derivation", "DirectionCheck", "Equation", "GeneratedCode",
        "Gradient", "GradientCheck", "InputError", "Model", "NotesCheck", "NoteVerdict", "Proof", "ProofAtSizes",
        "Verification", "check_claims", "check_notes", "derive", "generate_code", "list_models", "load_model", "verify_gradients")

__all__ = ["CheckVerdict", "ClaimVerdict", "ClaimsCheck", "Derivation", "DirectionCheck", "Equation", "GeneratedCode",
           "Gradient", "GradientCheck", "InputError", "Model", "NotesCheck", "NoteVerdict", "Proof", "ProofAtSizes",
           "Verification", "__version__", "check_claims", "check_notes", "derive", "generate_code", "list_models", "load_model", "verify_gradients"]


def __getattr__(name: str):
    # PEP 562: the API is imported when one of its names is first asked for (by string, so that
    # importing the package does not import the stages above it)
    if name in _API:
        value = getattr(importlib.import_module("derive.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
