"""``derive against``: run (or read) the user's gradients, compare them with derive's, localise, name the slip."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..calculus.matrix import derive_matrix
from ..emit.loader import import_source
from ..emit.readable import generate_module
from ..errors import InputError
from ..model.build import load_model
from ..model.sizes import sizes_for
from ..verify.run import with_states
from .cases import Case, make_case, read_answer, read_case, truncated, write_case
from .intermediates import check_adjoints, reference_adjoints
from .listing import format_result, to_json
from .localise import ATOL, RTOL, compare, entry_relative_errors, loss_agrees, sweep_lengths
from .mapping import Mapping, read_mapping
from .naming import name_slip
from .result import AgainstResult
from .user_code import call_user, check_answer, load_callable


@dataclass
class Options:
    """What ``derive against`` was asked: the model, the route, sizes, seed, mapping and tolerances."""

    model: str
    impl: Optional[str] = None
    write_case: Optional[str] = None
    gradients: Optional[str] = None
    sizes: Dict[str, int] = field(default_factory=dict)
    seed: int = 0
    mapping: Optional[str] = None
    rtol: float = RTOL
    atol: float = ATOL
    sweep: bool = True
    name: bool = True
    naming_seconds: float = 6.0
    sweep_cases: bool = False
    every_length: bool = False  # the T sweep runs every length (the report plots them), not only to the first wrong


FLOAT32_LIKE = 1e-3
"""Below this largest relative error, a wrong gradient may be float32 rounding: the listing says so."""

SWEEP_FOLDER = "sweep"
"""The folder of a case directory that holds the shorter cases of the file route's T sweep."""


class Reference:
    """The model, its derivation and its generated module: derive's side of the comparison."""

    def __init__(self, spec: str):
        self.model = load_model(spec)
        self.derivation = derive_matrix(self.model)
        self.module = import_source(generate_module(self.model, self.derivation))
        self.states = [s.base + "_0" for s in self.model.states]
        self.inputs = [s.base for s in self.model.differentiable_inputs]

    def gradients(self, params, data):
        """derive's loss and gradients (parameters, initial states and inputs) at one case.

        On one BLAS thread: at these sizes a second thread gains nothing, and on a machine whose other core
        is busy it made this pass 10 to 30 times slower.
        """
        with one_blas_thread():
            loss, grads = self.module.loss_and_gradients(params, data, wrt_initial_state=True, wrt_inputs=True)
        return float(np.real(loss)), with_states(grads, data, self.model)

    def mapping(self, path: Optional[str]) -> Mapping:
        if path is None:
            return Mapping(per_step=frozenset(s.base for s in self.model.data_symbols if s.per_step),
                           classes=frozenset(s.base for s in self.model.data_symbols if s.classes is not None))
        return read_mapping(path, self.model, dict(self.module.PARAM_SHAPES))


def _expected(ref: Reference, mapping: Mapping, case: Case):
    """The user's gradient keys, their shapes and dims (the user's layout), and the optional ones."""
    uparams, udata = mapping.to_user(case.params, case.data)
    shapes = {k: (tuple(v), True) for k, v in ref.module.PARAM_SHAPES.items()}
    shapes.update({k: (tuple(v), False) for k, v in ref.module.DATA_SHAPES.items()})
    udims = {mapping.user_name(k): _dims_text(mapping.user_dims(k, d, p)) for k, (d, p) in shapes.items()}
    for theirs, group in mapping.stacks.items():  # the members' rows one after another, then moved as a parameter
        rows = " + ".join(str(shapes[o][0][0]) for o in group)
        udims[theirs] = _dims_text(mapping.user_dims(theirs, (rows, shapes[group[0]][0][1]), True))
    expected = {k: v.shape for k, v in uparams.items()}
    optional = tuple(mapping.user_name(s) for s in ref.states + ref.inputs)
    for s in ref.states + ref.inputs:
        expected[mapping.user_name(s)] = udata[mapping.user_name(s)].shape
    return uparams, udata, expected, udims, optional


def _dims_text(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def _user_gradients(ref: Reference, mapping: Mapping, case: Case, answer, where: str):
    _, _, expected, udims, optional = _expected(ref, mapping, case)
    loss, ugrads = check_answer(answer, expected, udims, optional, where)
    return loss, mapping.gradients_from_user(ugrads, case.params, ref.states, ref.inputs)


def _finish(ref: Reference, options: Options, case: Case, source: str, loss, grads, run_user=None,
            adjoints=None) -> AgainstResult:
    start = time.perf_counter()
    ref_loss, ref_grads = ref.gradients(case.params, case.data)
    rows = compare(ref_grads, grads, options.rtol, options.atol)
    result = AgainstResult(ref.model.name, source, dict(case.sizes), case.seed, options.rtol, options.atol,
                           loss, ref_loss, rows)
    result.entry_errors = entry_relative_errors(ref_grads, grads)
    if adjoints is not None:
        reference = reference_adjoints(ref.model, ref.derivation, ref.module, case.params, case.data)
        result.adjoints = check_adjoints(ref.model, reference, adjoints[0], adjoints[1], source, options.rtol,
                                         options.atol)
    result.seconds["comparison"] = time.perf_counter() - start
    missing = [s for s in ref.states if s not in grads]
    if missing:
        result.notes.append(f"no gradient of {', '.join(missing)} was given: not compared")
    if result.passed:
        return result
    if result.loss_agrees is False and ref.states:
        zeroed = dict(case.data)
        zeroed.update({s: np.zeros_like(case.data[s]) for s in ref.states if s in case.data})
        if loss_agrees(loss, ref.gradients(case.params, zeroed)[0], options.rtol):
            result.notes.append(
                f"your loss is derive's with every initial state zero ({', '.join(ref.states)}): your forward pass "
                f"starts from zero, not from the case's data['{ref.states[0]}']; read the initial states from the "
                "data (the sentences on steps and slips below assume you do)")
    worst = max((r.max_rel_error for r in rows if not r.passed), default=0.0)
    if 0 < worst < FLOAT32_LIKE:
        result.notes.append(f"the largest relative error of a wrong gradient is {worst:.2g}, the size of float32 "
                            "rounding: if your code computes in float32, compare with --rtol 1e-4 (the sentences "
                            "on steps and slips below assume float64)")
    T = case.sizes.get("T")
    if options.sweep and run_user is not None and T and T > 1:
        start = time.perf_counter()

        def wrong_at(t):
            short = truncated(case, ref.model, t)
            try:
                _, expected = ref.gradients(short.params, short.data)
            except ValueError as exc:
                raise ValueError(f"derive's module refuses T = {t}: {exc}") from None
            try:
                _, user = run_user(short)
            except InputError as exc:  # your code failed at this length, or its answer there is missing
                raise ValueError(f"your code at T = {t}: {exc.message.splitlines()[0]}") from None
            rows_at = compare(expected, user, options.rtol, options.atol)
            result.length_errors[t] = {r.name: r.max_rel_error for r in rows_at}
            return [r.name for r in rows_at if not r.passed]
        result.sweep = sweep_lengths(T, wrong_at, tuple(ref.states), tuple(result.wrong), options.every_length)
        result.seconds["T sweep"] = time.perf_counter() - start
    elif run_user is None and options.sweep:
        result.notes.append("no T sweep: write the case with --sweep-cases and answer every sweep/T* case too")
    wrong = [w for w in result.wrong if w not in ref.inputs]  # the slips' vocabulary has no dL/dx
    if options.name and not wrong:
        result.notes.append("no slip named: only the inputs' gradients are wrong, and the slip search "
                            "mutates the gradients of the parameters and initial states")
    elif options.name:
        start = time.perf_counter()
        named = {k: v for k, v in grads.items() if k not in ref.inputs}
        result.naming = name_slip(ref.model, ref.derivation, case.params, case.data, named,
                                  options.naming_seconds, ref.states, wrong)
        result.seconds["naming"] = time.perf_counter() - start
    return result


def against_callable(options: Options, ref: Optional[Reference] = None) -> AgainstResult:
    """The callable route: run the user's function on a random case, compare, sweep T, name the slip.

    Raises
    ------
    InputError
        Bad sizes or mapping; the user's code failing to import or run, or returning a bad answer.
    """
    ref = ref or Reference(options.model)
    mapping = ref.mapping(options.mapping)
    fn = load_callable(options.impl)
    sizes = sizes_for(ref.model, options.sizes)
    case = make_case(ref.model, ref.module, sizes, options.seed)

    given = {}

    def run_user(c: Case):
        uparams, udata, _, _, _ = _expected(ref, mapping, c)
        answer = call_user(fn, uparams, udata, options.impl)
        if isinstance(answer, tuple) and len(answer) == 3:  # (loss, gradients, adjoints)
            given.setdefault(c.sizes.get("T"), answer[2])
            answer = answer[:2]
        return _user_gradients(ref, mapping, c, answer, options.impl)
    start = time.perf_counter()
    loss, grads = run_user(case)
    seconds = time.perf_counter() - start
    adjoints = given.get(case.sizes.get("T"))
    result = _finish(ref, options, case, options.impl, loss, grads, run_user,
                     None if adjoints is None else (adjoints, mapping.layout))
    if mapping.describe() and not result.passed:
        result.notes.append(mapping.describe())
    result.seconds["your code"] = seconds
    return result


def write_case_dir(options: Options, ref: Optional[Reference] = None) -> Case:
    """The file route's first half: write a case directory (the user's names and layout).

    With ``options.sweep_cases``, the case cut to each shorter length T = 1..T-1 goes in ``sweep/T1`` ...
    below it, for the T sweep of the file route.
    """
    ref = ref or Reference(options.model)
    mapping = ref.mapping(options.mapping)
    case = make_case(ref.model, ref.module, sizes_for(ref.model, options.sizes), options.seed)
    uparams, udata, _, udims, _ = _expected(ref, mapping, case)
    cases = [("", case, uparams, udata)]
    if options.sweep_cases:
        for t in range(1, case.sizes.get("T", 1)):
            short = truncated(case, ref.model, t)
            p, d, _, _, _ = _expected(ref, mapping, short)
            cases.append((os.path.join(SWEEP_FOLDER, f"T{t}"), short, p, d))
    write_case(options.write_case, ref.model, cases, udims)
    return case


def _answer_in(ref: Reference, mapping: Mapping, directory: str, case: Case):
    """The user's loss and gradients (derive's names) in ``directory``, after checking it holds ``case``."""
    uparams, udata, _, _ = read_case(directory)
    want_p, want_d, expected, udims, optional = _expected(ref, mapping, case)
    for kind, got, want in (("parameter", uparams, want_p), ("data array", udata, want_d)):
        for k, v in want.items():
            if k not in got or got[k].shape != v.shape or not np.array_equal(got[k], v):
                raise InputError(f"the case's {kind} {k!r} is not the one written for model {ref.model.name} "
                                 f"with this mapping (seed {case.seed}): give the --mapping the case was written "
                                 "with, or write the case again with --write-case", directory)
    loss, answer = read_answer(directory, expected)
    return _user_gradients(ref, mapping, case, (loss, answer), directory)


def against_files(options: Options, ref: Optional[Reference] = None) -> AgainstResult:
    """The file route's second half: read the user's answer from a case directory and compare. Runs nothing.

    When the directory holds ``sweep/T1`` ... (written with ``--sweep-cases``) and the user's program
    answered there too, those answers make the T sweep.
    """
    ref = ref or Reference(options.model)
    mapping = ref.mapping(options.mapping)
    directory = options.gradients
    _, _, sizes, seed = read_case(directory)
    try:
        sizes = sizes_for(ref.model, sizes)
    except InputError as exc:
        raise InputError(f"case.txt: {exc.message}", directory) from None
    case = make_case(ref.model, ref.module, sizes, seed)
    loss, grads = _answer_in(ref, mapping, directory, case)
    run_user = None
    if os.path.isdir(os.path.join(directory, SWEEP_FOLDER)):
        def run_user(short: Case):
            return _answer_in(ref, mapping, os.path.join(directory, SWEEP_FOLDER, f"T{short.sizes['T']}"), short) \
                if short.sizes["T"] < case.sizes["T"] else (loss, grads)
    result = _finish(ref, options, case, directory, loss, grads, run_user)
    if mapping.describe() and not result.passed:
        result.notes.append(mapping.describe())
    return result


def run_against(options: Options, as_json: bool, out, err) -> int:
    """Run the route ``options`` asks for, print the listing (or JSON) to ``out``, return the exit status.

    0: every gradient agrees (or a case was written); 1: a gradient or the loss is wrong. Bad input raises
    :class:`~derive.errors.InputError` (exit status 2 in the command line).
    """
    if options.write_case is not None:
        case = write_case_dir(options)
        sizes = ", ".join(f"{k}={v}" for k, v in case.sizes.items())
        print(f"wrote {options.write_case}: model {options.model}, seed {case.seed}, sizes {sizes}; your program "
              f"writes its loss to loss.txt and its gradients to gradients/NAME.txt (or gradients.npz) there, then "
              f"run: derive against {options.model} --gradients {options.write_case}", file=err)
        return 0
    result = against_files(options) if options.gradients is not None else against_callable(options)
    if as_json:
        print(json.dumps(to_json(result), indent=2, sort_keys=True), file=out)
    else:
        print(format_result(result), file=out)
    return result.status


def one_blas_thread():
    """A context in which NumPy's BLAS uses one thread (nothing changes without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
