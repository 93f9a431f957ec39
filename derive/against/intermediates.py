"""The user's intermediate adjoints (``dL/dh_t`` and the like): the first wrong one in backward order.

A user's function may return a third value, a dict of adjoints keyed by a
quantity's name without ``_t`` (``'h'``, ``'z'``; ``'dL/dh'`` is read the
same): a per-step one as a ``(T, rows, cols)`` array, ``[t - 1]`` being
``dL/dh_t``, in the mapping file's layout as the per-step inputs are; one
computed once (``'o'`` of a many-to-one model) with its own shape. derive's
adjoints are read from its generated module's ``loss_and_gradients`` as it
returns (the module is left as it is).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..emit.readable import adjoint_variables
from ..verify.rule import ROUNDING_FLOOR
from .user_code import UserCodeError


def reference_adjoints(model, derivation, module, params, data) -> Dict[str, np.ndarray]:
    """derive's adjoint of every quantity and state the module computes, by symbol name (``h_t``).

    A per-step one is ``(T + 1, rows, cols)`` with ``[t]`` the adjoint at step t.
    """
    names = adjoint_variables(model, derivation)
    code = module.loss_and_gradients.__code__
    captured: Dict[str, np.ndarray] = {}

    def on_return(frame, event, arg):
        if event == "return" and frame.f_code is code:
            local = frame.f_locals
            captured.update({k: np.array(local[v]) for k, v in names.items() if v in local})

    # the adjoints are locals of the generated function: read them from its frame as it returns
    previous = sys.getprofile()
    sys.setprofile(on_return)
    try:
        module.loss_and_gradients(params, data, wrt_initial_state=True)
    finally:
        sys.setprofile(previous)
    return captured


def backward_order(model) -> List[Tuple[str, bool]]:
    """The computed values (symbol name, per step) in the order a backward sweep reaches their adjoints."""
    post = [(e.name, False) for e in reversed(model.equations) if e.phase == "post"]
    step = [(e.name, True) for e in reversed(model.equations) if e.phase == "step"]
    pre = [(e.name, False) for e in reversed(model.equations) if e.phase == "pre"]
    return post, step, pre


@dataclass
class AdjointCheck:
    """The user's adjoints against derive's: which were compared, and the first wrong one in backward order."""

    compared: List[str]
    first_wrong: Optional[str] = None  # e.g. "dL/dh_3"
    agreed_before: List[str] = field(default_factory=list)  # the last few that agree just before it
    max_abs_error: Dict[str, float] = field(default_factory=dict)

    def sentence(self) -> str:
        if self.first_wrong is None:
            return f"every adjoint you gave agrees ({', '.join('dL/d' + c for c in self.compared)})"
        before = f"; before it {', '.join(self.agreed_before)} agree" if self.agreed_before else ""
        return f"the first wrong adjoint in backward order is {self.first_wrong}{before}"

    def to_json(self) -> dict:
        return {"compared": self.compared, "first_wrong": self.first_wrong, "agreed_before": self.agreed_before,
                "max_abs_error": self.max_abs_error}


def _user_layout_back(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "row-major":
        return np.swapaxes(a, 1, 2)
    if layout == "batch-first":
        return np.transpose(a, (1, 2, 0))
    return a


def check_adjoints(model, reference: Dict[str, np.ndarray], given, layout: str, where: str,
                   rtol: float, atol: float) -> AdjointCheck:
    """Compare the user's adjoints with derive's, step by step in backward order.

    Raises
    ------
    UserCodeError
        When ``given`` is not a dict, names no computed value, or holds a wrong shape or a value not finite.
    """
    if not isinstance(given, dict):
        raise UserCodeError("the third value returned (the adjoints) should be a dict such as {'h': dL/dh}", where)
    post, step, pre = backward_order(model)
    by_base = {model.symbols[n].base: (n, per) for n, per in post + step + pre if n in reference}
    ours: Dict[str, np.ndarray] = {}
    for key, value in given.items():
        base = str(key)[4:] if str(key).startswith("dL/d") else str(key)
        if base not in by_base:
            raise UserCodeError(f"unknown adjoint {key!r}; derive has the adjoints of {', '.join(by_base)}", where)
        name, per = by_base[base]
        want = reference[name][1:] if per else reference[name]
        a = np.asarray(value, dtype=float)
        a = _user_layout_back(a, layout) if per and a.ndim == 3 else a
        if a.shape != want.shape:
            raise UserCodeError(f"the adjoint {key!r} has shape {a.shape} (in derive's layout); expected "
                                f"{want.shape}" + (", steps first" if per else ""), where)
        if not np.isfinite(a).all():
            raise UserCodeError(f"the adjoint {key!r} holds a value that is not finite", where)
        ours[name] = a
    scale = max((float(np.max(np.abs(reference[n]), initial=0.0)) for n in ours), default=0.0)
    sequence = [(n, None) for n, _ in post if n in ours]
    T = next((reference[n].shape[0] - 1 for n, per in step if n in ours), 0)
    sequence += [(n, t) for t in range(T, 0, -1) for n, _ in step if n in ours]
    sequence += [(n, None) for n, _ in pre if n in ours]
    check = AdjointCheck(compared=[model.symbols[n].base for n in ours])
    seen: List[str] = []
    for name, t in sequence:
        b = reference[name] if t is None else reference[name][t]
        a = ours[name] if t is None else ours[name][t - 1]
        err = np.abs(a - b)
        label = "dL/d" + (name if t is None else f"{model.symbols[name].base}_{t}")
        check.max_abs_error[label] = float(err.max(initial=0.0))
        if (err > rtol * np.abs(b) + atol * scale + ROUNDING_FLOOR).any():
            check.first_wrong = label
            check.agreed_before = seen[-3:]
            break
        seen.append(label)
    return check
