"""A model's canonical text, the part of a cache key that names the model.

The text is built from the parsed model, not read from its file: comments,
blank lines, spacing and the file's name or path do not change it, while a
changed size, declaration or equation does.  Everything a derivation or a
proof reads of the model is in it, in the model's own order (the proof's
sizes follow the order sizes are declared in).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable, Optional, TypeVar

from .. import cache
from ..model.model import Model

R = TypeVar("R")


WHERE_WRITTEN = {"pos", "text"}
"""Fields of a symbol or an equation that say where and how it was written, not what it is."""

MODEL_OUTSIDE = {"name", "path", "source", "shape_cache", "size_positions", "sizes", "symbols", "equations"}
"""Fields of a model not keyed as they are: its name, file and text, caches, and the parts listed one by one."""


def _fields(item) -> str:
    return ", ".join(f"{f.name}={getattr(item, f.name)!r}" for f in fields(item) if f.name not in WHERE_WRITTEN)


def model_text(model: Model) -> str:
    """The model as a canonical text: sizes, symbols, equations (trees without positions), the rest.

    Every field of a symbol and an equation is in it but where and how it
    was written, so a field added to the model later is keyed too.
    """
    lines = ["sizes " + ", ".join(f"{name}={value!r}" for name, value in model.sizes.items())]
    lines += [f"symbol {_fields(s)}" for s in model.symbols.values()]
    lines += [f"equation {_fields(eq)}" for eq in model.equations]
    lines += [f"{f.name} {getattr(model, f.name)!r}" for f in fields(model) if f.name not in MODEL_OUTSIDE]
    return "\n".join(lines)


def sizes_key(sizes) -> tuple:
    """Sizes as a key part, in their order (the order is part of what is computed)."""
    return tuple((str(name), int(value)) for name, value in dict(sizes).items())


def cached_for_model(kind: str, model: Model, parts: tuple, compute: Callable[[], R],
                     keep: Optional[Callable[[R], bool]] = None) -> R:
    """:func:`derive.cache.cached` with the model's canonical text as the first part of the key."""
    if not cache.enabled():
        return compute()
    return cache.cached(kind, (model_text(model),) + tuple(parts), compute, keep)
