"""The user's implementation: loading ``impl.py:function`` or ``package.module:function``, calling
it, checking its answer.

Importing the user's module runs the user's code with the user's rights;
``derive against`` says so in its help and docs/against.md. An exception in
that code is the user's error (exit status 2), shown with the tail of the
user's traceback, the frames of derive left out.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..limits import OutOfTime

TRACEBACK_FRAMES = 4
"""Frames of the user's traceback shown (the innermost)."""

_DERIVE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UserCodeError(InputError):
    """The user's code failed to import, raised, or returned something that is not an answer."""


def _user_traceback(exc: BaseException) -> str:
    """The innermost frames of ``exc`` outside derive and the import machinery, then the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_DERIVE_DIR + os.sep)
              and "importlib" not in f.filename and not f.filename.startswith("<frozen")]
    lines = traceback.format_list(frames[-TRACEBACK_FRAMES:])
    tail = "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))
    return "\n".join("    " + line for line in tail.rstrip("\n").splitlines())


def load_callable(spec: str) -> Callable:
    """The function ``spec`` names: ``path/to/impl.py:function`` or ``package.module:function``.

    Raises
    ------
    UserCodeError
        A malformed spec, a missing file or module, an exception while importing, a name that is not a function.
    """
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UserCodeError("the implementation is given as path/to/impl.py:function or package.module:function",
                            spec)
    try:
        if where.endswith(".py") or os.sep in where or "/" in where:
            if not os.path.isfile(where):
                raise UserCodeError("no such file", where)
            module_name = "derive_against_user_" + os.path.splitext(os.path.basename(where))[0].replace("-", "_")
            spec_ = importlib.util.spec_from_file_location(module_name, os.path.abspath(where))
            if spec_ is None or spec_.loader is None:
                raise UserCodeError("cannot import this file as Python", where)
            module = importlib.util.module_from_spec(spec_)
            folder = os.path.dirname(os.path.abspath(where))
            sys.path.insert(0, folder)  # the user's module may import its neighbours
            sys.modules[module_name] = module  # as an import would (pickle and typing look modules up there)
            try:
                with contextlib.redirect_stdout(sys.stderr):  # what importing prints must not mix into --json
                    spec_.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
            finally:
                if folder in sys.path:
                    sys.path.remove(folder)
        else:
            with contextlib.redirect_stdout(sys.stderr):
                module = importlib.import_module(where)
    except UserCodeError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise UserCodeError(f"no module named {exc.name!r} (run from the folder that holds it, or give a "
                                "path ending in .py)", spec) from None
        raise UserCodeError(f"importing your module failed:\n{_user_traceback(exc)}", where) from None
    except BaseException as exc:  # the user's code, whatever it raised (SystemExit too)
        if isinstance(exc, (KeyboardInterrupt, OutOfTime)):  # Ctrl-C, or derive's own --seconds: not the user's
            raise
        raise UserCodeError(f"importing your module failed:\n{_user_traceback(exc)}", where) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UserCodeError(f"the module has no function {name!r}", where)
    return fn


def call_user(fn: Callable, params: Dict[str, np.ndarray], data: Dict[str, np.ndarray], spec: str):
    """``fn(params, data)`` on copies of the inputs; an exception is the user's error.

    Raises
    ------
    UserCodeError
        With the user's traceback tail.
    """
    p = {k: v.copy() for k, v in params.items()}
    d = {k: v.copy() for k, v in data.items()}
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the user's prints must not mix into --json
            return fn(p, d)
    except (KeyboardInterrupt, OutOfTime):  # Ctrl-C, or derive's own --seconds: not the user's error
        raise
    except BaseException as exc:
        raise UserCodeError(f"your function raised {type(exc).__name__}:\n{_user_traceback(exc)}", spec) from None


def check_answer(answer, expected: Dict[str, Tuple[int, ...]], dims: Dict[str, str], optional: Tuple[str, ...],
                 where: str) -> Tuple[Optional[float], Dict[str, np.ndarray]]:
    """Check the user's answer: ``(loss, gradients)`` or the gradients alone; every expected key, its shape, finite.

    Parameters
    ----------
    answer : object
        What the user's function returned, or ``(loss, dict)`` read from files.
    expected : dict of str to tuple of int
        The gradients the answer must hold (the user's names) and their shapes.
    dims : dict of str to str
        Each key's dims by name, e.g. ``(H, H)``, for the messages.
    optional : tuple of str
        Keys the answer may hold or leave out (the initial states' gradients).
    where : str
        Where the answer came from, for the messages.

    Returns
    -------
    (float or None, dict)
        The loss (None when not given) and the gradients as float arrays of the expected shapes.
        A shape that differs from the expected one only by axes of length 1 is reshaped.

    Raises
    ------
    UserCodeError
        A missing or unknown key, a wrong shape (named with the expected shape), a value that is not finite.
    """
    loss = None
    if isinstance(answer, tuple) and len(answer) == 2:
        loss, grads = answer
    else:
        grads = answer
    if not isinstance(grads, dict):
        kind = type(grads).__name__
        raise UserCodeError(f"the answer is {'an' if kind[:1] in 'aeiou' else 'a'} {kind}; it should be "
                            "(loss, gradients) with "
                            "gradients a dict of parameter name -> array", where)
    if loss is not None:
        try:
            loss = float(np.asarray(loss).reshape(-1)[0]) if np.size(loss) == 1 else None
        except (TypeError, ValueError):
            loss = None
        if loss is None:
            raise UserCodeError("the loss is not one number", where)
    missing = [k for k in expected if k not in grads and k not in optional]
    if missing:
        k = missing[0]
        raise UserCodeError(f"the gradients have no key {k!r} (shape {dims.get(k, '')} = {expected[k]}); "
                            f"expected keys: {', '.join(expected)}", where)
    unknown = sorted(str(k) for k in grads if k not in expected)
    if unknown:
        raise UserCodeError(f"unknown gradient key {unknown[0]!r}; expected keys: {', '.join(expected)}", where)
    out = {}
    for k, shape in expected.items():
        if k not in grads:
            continue
        try:
            a = np.asarray(grads[k], dtype=float)
        except (TypeError, ValueError):
            raise UserCodeError(f"the gradient {k!r} is not an array of numbers", where) from None
        if a.shape != shape:
            if a.size == int(np.prod(shape, dtype=np.int64)) and \
                    tuple(n for n in a.shape if n != 1) == tuple(n for n in shape if n != 1):
                a = a.reshape(shape)
            else:
                raise UserCodeError(f"the gradient {k!r} has shape {a.shape}; expected {dims.get(k, '')} = "
                                    f"{shape}", where)
        bad = ~np.isfinite(a)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise UserCodeError(f"the gradient {k!r} holds {a[at]} at {list(at)} (not finite)", where)
        out[k] = a
    if loss is not None and not np.isfinite(loss):
        raise UserCodeError(f"the loss is {loss} (not finite)", where)
    return loss, out
