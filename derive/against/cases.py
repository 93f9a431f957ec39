"""Cases for ``derive against``: random parameters and data at given sizes, and the case directory on disk.

A case directory holds ``case.npz`` (every array, keys ``param.NAME`` and
``data.NAME``), one plain-text file per array under ``params/`` and
``data/``, and ``case.txt`` (the model, the sizes and the seed). The user's
program writes its answer in the same plain-text format under
``gradients/`` (one file per parameter, optionally ``h_0``) with its loss in
``loss.txt``, or all of it in ``gradients.npz``. docs/against.md describes
the layout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..model.model import Model
from ..numeric import random_params
from ..verify.run import concrete_shape, random_data

MAX_TEXT_VALUES = 10 ** 7
"""Most values one plain-text array may hold (a larger file is refused before it is read whole)."""


@dataclass
class Case:
    """One point to compare at: the sizes, the seed, the parameters and the data (derive's layout)."""

    sizes: Dict[str, int]
    seed: int
    params: Dict[str, np.ndarray]
    data: Dict[str, np.ndarray]


def make_case(model: Model, module, sizes: Dict[str, int], seed: int) -> Case:
    """Random parameters and data at ``sizes`` from ``seed``, drawn as ``derive verify`` draws them.

    Parameters
    ----------
    model : Model
        The model's IR.
    module : module
        The generated module of ``model`` (its ``DATA_SHAPES`` and ``CLASS_COUNTS``).
    sizes : dict of str to int
        Every size of the model.
    seed : int
        Seed of the draw; the same seed gives the same case.

    Returns
    -------
    Case
    """
    shapes = {s.name: concrete_shape(s.shape, sizes) for s in model.params}
    return Case(dict(sizes), seed, random_params(shapes, seed), random_data(model, module, sizes, seed))


def truncated(case: Case, model: Model, steps: int) -> Case:
    """The case cut to its first ``steps`` steps (every per-step data array sliced on its step axis)."""
    per_step = {s.base for s in model.data_symbols if s.per_step}
    data = {k: (v[:steps] if k in per_step else v) for k, v in case.data.items()}
    sizes = dict(case.sizes)
    sizes["T"] = steps
    return Case(sizes, case.seed, case.params, data)


def text_of_array(name: str, array: np.ndarray, dims: str = "") -> str:
    """The plain-text form of one array: a comment, ``shape d1 d2 ...``, then one row of the last axis a line."""
    array = np.asarray(array)
    head = f"# {name}" + (f" {dims}" if dims else "") + "\n"
    head += "shape" + "".join(f" {n}" for n in array.shape) + "\n"
    if array.ndim == 0:
        rows = [array.reshape(1)]
    else:
        rows = array.reshape(-1, array.shape[-1]) if array.size else []
    if np.issubdtype(array.dtype, np.integer):
        body = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in rows)
    else:
        body = "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows)
    return head + body


def read_text_array(path: str, expected: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """Read a plain-text array: ``#`` lines skipped, an optional ``shape`` line, then the numbers.

    Without a ``shape`` line the numbers take ``expected`` (when given) or stay flat.

    Raises
    ------
    InputError
        On a word that is not a number (with its line and column), or a count that does not fit the shape.
    """
    if os.path.getsize(path) > 40 * MAX_TEXT_VALUES:
        raise InputError(f"the file is larger than {40 * MAX_TEXT_VALUES} bytes", path)
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    shape, values = None, []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "shape" and shape is None and not values:
            if not all(w.isdigit() for w in words[1:]):
                raise InputError("a shape line holds whole numbers only: 'shape 4 3'", path, number, 1, line)
            shape = tuple(int(w) for w in words[1:])
            continue
        for w in words:
            try:
                values.append(float(w))
            except ValueError:
                raise InputError(f"{w!r} is not a number", path, number, line.find(w) + 1, line) from None
    flat = np.array(values, dtype=float)
    target = shape if shape is not None else expected
    if target is None:
        return flat
    if int(np.prod(target, dtype=np.int64)) != flat.size:
        raise InputError(f"the file holds {flat.size} numbers, but its shape {tuple(target)} takes "
                         f"{int(np.prod(target, dtype=np.int64))}", path)
    return flat.reshape(target)


def case_text(model: Model, case: Case) -> str:
    """The ``case.txt`` of a case directory: the model, the sizes and the seed, one ``key value`` a line."""
    lines = [f"model {model.name}", f"seed {case.seed}"]
    lines += [f"size {k} {v}" for k, v in case.sizes.items()]
    return "\n".join(lines) + "\n"


def _write_one(folder: str, model: Model, case: Case, params, data, dims) -> None:
    os.makedirs(folder, exist_ok=True)
    arrays = {f"param.{k}": v for k, v in params.items()}
    arrays.update({f"data.{k}": v for k, v in data.items()})
    np.savez(os.path.join(folder, "case.npz"), **arrays)
    for sub, group in (("params", params), ("data", data)):
        os.mkdir(os.path.join(folder, sub))
        for k, v in group.items():
            with open(os.path.join(folder, sub, k + ".txt"), "w", encoding="utf-8") as f:
                f.write(text_of_array(k, v, dims.get(k, "")))
    with open(os.path.join(folder, "case.txt"), "w", encoding="utf-8") as f:
        f.write(case_text(model, case))


def write_case(directory: str, model: Model, cases: List[Tuple[str, Case, dict, dict]], dims: Dict[str, str]) -> None:
    """Write a case directory whole, or nothing: into a temporary sibling, then renamed into place.

    Parameters
    ----------
    directory : str
        Must not exist, or be empty.
    cases : list of (str, Case, dict, dict)
        Each case's folder relative to ``directory`` (``""`` for the directory itself, ``sweep/T1`` for a
        shorter one), the case, and its parameters and data as the user's program reads them (after a
        mapping file's renames and layout).
    dims : dict of str to str
        A comment per array (its dims by name), written in its text file.

    Raises
    ------
    InputError
        When ``directory`` exists and is not empty, or its parent does not exist.
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise InputError("the case directory exists and is not empty: give a new one", directory)
    parent = os.path.dirname(directory)
    if not os.path.isdir(parent):
        raise InputError("its parent directory does not exist", directory)
    tmp = tempfile.mkdtemp(prefix=".derive-case-", dir=parent)
    try:
        for sub, case, params, data in cases:
            _write_one(os.path.join(tmp, sub) if sub else tmp, model, case, params, data, dims)
        if os.path.isdir(directory):
            os.rmdir(directory)
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_case(directory: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, int], int]:
    """The parameters, data, sizes and seed of a case directory (as written: the user's names and layout).

    Raises
    ------
    InputError
        When ``case.npz`` or ``case.txt`` is missing or unreadable.
    """
    npz, txt = os.path.join(directory, "case.npz"), os.path.join(directory, "case.txt")
    if not (os.path.isfile(npz) and os.path.isfile(txt)):
        raise InputError("not a case directory (no case.npz and case.txt): write one with --write-case", directory)
    sizes, seed = {}, 0
    with open(txt, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            words = line.split()
            if len(words) == 3 and words[0] == "size" and words[2].isdigit():
                sizes[words[1]] = int(words[2])
            elif len(words) == 2 and words[0] == "seed" and words[1].isdigit():
                seed = int(words[1])
            elif words and words[0] not in ("model", "#"):
                raise InputError("expected 'model NAME', 'seed N' or 'size NAME N'", txt, number, 1, line)
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read it: {exc}", npz) from None
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param.")}
    data = {k[5:]: v for k, v in arrays.items() if k.startswith("data.")}
    return params, data, sizes, seed


def read_answer(directory: str, names: Dict[str, Tuple[int, ...]]) -> Tuple[Optional[float], Dict[str, np.ndarray]]:
    """The user's loss and gradients from a case directory: ``gradients.npz``, or ``loss.txt`` and ``gradients/*.txt``.

    Parameters
    ----------
    names : dict of str to tuple of int
        The gradients expected (the user's names) and their shapes, used when a text file has no ``shape`` line.

    Returns
    -------
    (float or None, dict)
        The loss (None when not written) and the gradients found (missing ones are left out for the caller to name).
    """
    npz = os.path.join(directory, "gradients.npz")
    if os.path.isfile(npz):
        try:
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read it: {exc}", npz) from None
        loss = arrays.pop("loss", None)
        return (None if loss is None else float(np.asarray(loss).reshape(-1)[0])), arrays
    folder = os.path.join(directory, "gradients")
    if not os.path.isdir(folder):
        raise InputError("no gradients.npz and no gradients/ folder: your program writes its answer there "
                         "(see docs/against.md)", directory)
    grads = {}
    for name, shape in names.items():
        path = os.path.join(folder, name + ".txt")
        if os.path.isfile(path):
            grads[name] = read_text_array(path, shape)
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".txt") and entry[:-4] not in grads:
            grads[entry[:-4]] = read_text_array(os.path.join(folder, entry))
    loss_path = os.path.join(directory, "loss.txt")
    loss = None
    if os.path.isfile(loss_path):
        value = read_text_array(loss_path)
        if value.size != 1:
            raise InputError(f"loss.txt holds {value.size} numbers; it takes one", loss_path)
        loss = float(value.reshape(-1)[0])
    return loss, grads
