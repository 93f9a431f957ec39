"""The sizes the numeric evidence and the figures run at, and which sizes count examples."""

from __future__ import annotations

from typing import Dict, Optional

from ..model.sizes import check_size_names
from ..notation.blocks import SizeTable, dim_names


def batch_dims(model) -> set:
    """Size names that count examples: dimensions of the data that no parameter has."""
    data_dims = {n for s in model.data_symbols if s.shape for d in s.shape for n in dim_names(d)}
    param_dims = {n for s in model.params if s.shape for d in s.shape for n in dim_names(d)}
    return data_dims - param_dims - {"T"}


def resolve_sizes(model, sizes: Optional[Dict[str, int]]) -> Dict[str, int]:
    """Sizes for the numeric evidence: the model's own, 3 for any it leaves open (T: 4), then ``sizes``.

    Raises
    ------
    InputError
        When ``sizes`` names a size the model does not declare.
    """
    check_size_names(model, sizes or {})
    out = {k: v for k, v in model.sizes.items() if v is not None}
    for dim in {n for s in model.symbols.values() if s.shape for d in s.shape for n in dim_names(d)} | \
            {s.classes for s in model.symbols.values() if isinstance(s.classes, str)}:
        out.setdefault(dim, 3)
    if model.has_steps:
        out.setdefault("T", 4)
    out.update(sizes or {})
    return SizeTable(out)


def small_sizes(model, sizes: Dict[str, int]) -> Dict[str, int]:
    """Sizes capped for the figures that check every entry (5 per dimension, 3 examples, T <= 5)."""
    batch = batch_dims(model)
    out = {}
    for k, v in sizes.items():
        cap = 3 if k in batch else 5
        out[k] = min(v, cap)
    return out


def default_entries(model, sizes: Dict[str, int]) -> int:
    """Finite-difference entries per parameter: 10, or 3 for a model whose forward pass is large."""
    total = 0
    for s in model.symbols.values():
        if s.shape is None:
            continue
        n = 1
        for d in s.shape:
            n *= d if isinstance(d, int) else sizes.get(d, 1)
        total += n * (sizes.get("T", 1) if s.per_step else 1)
    return 3 if total > 1_000_000 else 10
