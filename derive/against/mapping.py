"""The mapping file of ``derive against``: the user's names, data layout and stacked matrices.

One directive a line, ``#`` starts a comment::

    layout row-major           # or batch-first, or columns (derive's own, the default)
    name W_hh Whh              # the user calls derive's W_hh "Whh" (parameters, data, h_0)
    stack W W_u W_r W_n        # the user's W is derive's W_u, W_r, W_n stacked by rows

The text is read as data, word by word; nothing in it is evaluated.
docs/against.md gives the layouts' shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from ..errors import InputError, split_lines
from ..model.model import Model

LAYOUTS = ("columns", "row-major", "batch-first")
MAX_MAPPING_BYTES = 1 << 20


@dataclass
class Mapping:
    """How the user's arrays relate to derive's: renames, a layout, stacks (derive's layout, by rows)."""

    layout: str = "columns"
    names: Dict[str, str] = field(default_factory=dict)  # derive's name -> the user's
    stacks: Dict[str, List[str]] = field(default_factory=dict)  # the user's name -> derive's, top to bottom
    per_step: frozenset = frozenset()
    classes: frozenset = frozenset()

    def user_name(self, ours: str) -> str:
        return self.names.get(ours, ours)

    def describe(self) -> str:
        """How the listing's names and indices, derive's, relate to the user's ('' without a mapping)."""
        parts = [f"{ours} is your {theirs}" for ours, theirs in self.names.items() if ours != theirs]
        parts += [f"{', '.join(group)} are the rows of your {theirs}, in order" for theirs, group in self.stacks.items()]
        if self.layout != "columns":
            parts.append(f"your arrays are {self.layout}: a matrix's entry [i, j] above is your [j, i]")
        return "" if not parts else "names and indices above are derive's: " + "; ".join(parts)

    def user_dims(self, key: str, dims: Tuple, param: bool) -> Tuple:
        """An array's dims by name (derive's layout) in the user's layout, the way :meth:`to_user` moves it."""
        dims = tuple(dims)
        if self.layout == "columns":
            return dims
        if param:
            return dims[::-1]
        if key in self.classes:
            return dims[::-1] if key in self.per_step and self.layout == "batch-first" else dims
        if key in self.per_step:
            steps, rows, cols = dims
            return (cols, steps, rows) if self.layout == "batch-first" else (steps, cols, rows)
        return dims[::-1] if len(dims) == 2 else dims

    def _data_out(self, key: str, a: np.ndarray) -> np.ndarray:
        if self.layout == "columns":
            return a
        if key in self.classes:
            return a.T if key in self.per_step and self.layout == "batch-first" else a
        if key in self.per_step:
            return np.transpose(a, (2, 0, 1) if self.layout == "batch-first" else (0, 2, 1))
        return a.T if a.ndim == 2 else a

    def _data_in(self, key: str, a: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`_data_out` for an array of numbers (the gradient of an input)."""
        if self.layout == "columns":
            return a
        if key in self.per_step:
            return np.transpose(a, (1, 2, 0) if self.layout == "batch-first" else (0, 2, 1))
        return a.T if a.ndim == 2 else a

    def _param_out(self, a: np.ndarray) -> np.ndarray:
        return a if self.layout == "columns" else a.T

    def to_user(self, params: Dict[str, np.ndarray], data: Dict[str, np.ndarray]):
        """derive's parameters and data as the user's code takes them (new arrays, C-contiguous)."""
        stacked = {o for group in self.stacks.values() for o in group}
        uparams = {self.user_name(k): self._param_out(v) for k, v in params.items() if k not in stacked}
        for theirs, group in self.stacks.items():
            uparams[theirs] = self._param_out(np.vstack([params[o] for o in group]))
        udata = {self.user_name(k): self._data_out(k, v) for k, v in data.items()}
        copy = lambda d: {k: np.ascontiguousarray(v).copy() for k, v in d.items()}  # noqa: E731
        return copy(uparams), copy(udata)

    def gradients_from_user(self, grads: Dict[str, np.ndarray], params: Dict[str, np.ndarray],
                            states: List[str], inputs: List[str] = ()) -> Dict[str, np.ndarray]:
        """The user's gradients (checked for shape already) by derive's names, in derive's layout.

        ``inputs`` are the data keys of the inputs whose gradients (``dL/dx``) the user may give.
        """
        out = {}
        for ours in params:
            theirs = self.user_name(ours)
            if theirs in grads:
                out[ours] = self._param_out(grads[theirs])
        for theirs, group in self.stacks.items():
            whole = self._param_out(grads[theirs])
            at = 0
            for o in group:
                rows = params[o].shape[0]
                out[o] = whole[at:at + rows]
                at += rows
        for key in states:
            theirs = self.user_name(key)
            if theirs in grads:
                g = grads[theirs]
                out[key] = g.T if self.layout != "columns" and g.ndim == 2 else g
        for key in inputs:
            theirs = self.user_name(key)
            if theirs in grads:
                out[key] = self._data_in(key, grads[theirs])
        return out


def read_mapping(path: str, model: Model, param_shapes: Dict[str, Tuple]) -> Mapping:
    """Read a mapping file for ``model``; every error carries its line and column.

    Parameters
    ----------
    param_shapes : dict
        derive's parameters and their dims (a stack's members must share their columns).

    Raises
    ------
    InputError
        An unknown directive, layout or name, a name mapped twice, a stack of matrices whose columns differ.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MAPPING_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the mapping file: {exc.strerror or exc}", path) from None
    if len(raw) > MAX_MAPPING_BYTES:
        raise InputError(f"the mapping file is larger than {MAX_MAPPING_BYTES} bytes", path)
    text = raw.decode("utf-8", errors="replace")
    mapping = Mapping(per_step=frozenset(s.base for s in model.data_symbols if s.per_step),
                      classes=frozenset(s.base for s in model.data_symbols if s.classes is not None))
    known = list(param_shapes) + [s.base for s in model.data_symbols] + [s.base + "_0" for s in model.states]
    used_user, used_ours = {}, set()
    seen_layout = False
    for number, line in enumerate(split_lines(text), 1):
        body = line.split("#", 1)[0]
        words, cols = [], []
        at = 0
        for w in body.split():
            at = body.index(w, at)
            words.append(w)
            cols.append(at + 1)
            at += len(w)
        if not words:
            continue

        def fail(message, k=0):
            raise InputError(message, path, number, cols[k] if k < len(cols) else len(line) + 1, line)

        def ours(k):
            if words[k] not in known:
                fail(f"{words[k]!r} is not a name of the model {model.name}; its names are {', '.join(known)}", k)
            if words[k] in used_ours:
                fail(f"{words[k]} is mapped twice", k)
            used_ours.add(words[k])
            return words[k]

        def theirs(k):
            if not words[k].isidentifier():
                fail(f"{words[k]!r} is not a name (letters, digits, _)", k)
            if words[k] in used_user:
                fail(f"{words[k]} is already the name of {used_user[words[k]]}", k)
            return words[k]

        directive = words[0]
        if directive == "layout":
            if len(words) != 2 or words[1] not in LAYOUTS:
                fail(f"layout takes one of {', '.join(LAYOUTS)}", min(1, len(words) - 1) if len(words) > 1 else 0)
            if seen_layout:
                fail("the layout is given twice")
            seen_layout, mapping.layout = True, words[1]
        elif directive == "name":
            if len(words) != 3:
                fail("name takes derive's name, then yours: 'name W_hh Whh'", 0)
            o = ours(1)
            t = theirs(2)
            mapping.names[o] = t
            used_user[t] = o
        elif directive == "stack":
            if len(words) < 4:
                fail("stack takes your name, then two or more of derive's parameters: 'stack W W_u W_r W_n'", 0)
            t = theirs(1)
            group = []
            for k in range(2, len(words)):
                o = ours(k)
                if o not in param_shapes:
                    fail(f"only parameters are stacked; {o} is data", k)
                if param_shapes[o][1:] != param_shapes[words[2]][1:]:
                    fail(f"{o} has dims {param_shapes[o]} and {words[2]} {param_shapes[words[2]]}: stacked "
                         "by rows, their columns must agree", k)
                group.append(o)
            mapping.stacks[t] = group
            used_user[t] = "+".join(group)
        else:
            fail(f"unknown directive {directive!r}: use layout, name or stack", 0)
    stacked = {o for group in mapping.stacks.values() for o in group}
    final = [mapping.user_name(k) for k in known if k not in stacked] + list(mapping.stacks)
    clash = sorted({n for n in final if final.count(n) > 1})
    if clash:
        raise InputError(f"two arrays would both be called {clash[0]!r}: rename the other one too", path)
    return mapping
