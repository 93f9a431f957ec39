"""Fuzzing the front end: whatever the text, the only exception is a well-placed InputError.

Inputs come from ``bench/fuzz.py``'s generator, drawn by hypothesis:
mutations of the repository's model and claims files (characters, tokens,
lines, unicode, NUL, BOM, CRLF, tabs, long numbers, deep nesting, huge sums,
keywords as names, odd steps) and models and claims from the grammar. Each
goes through :func:`derive.model.build.load_text` or the claims reader
(:func:`derive.claims.read.read_claims`; no verdicts), and the error, if any,
must be an :class:`~derive.errors.InputError` with a line and a column in
the text and a caret under that column (:func:`bench.fuzz.error_problem`).
``python -m bench.fuzz`` runs the same generator for longer, end to end.
"""

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import Case, DrawChooser, contract_problem, generate_case
from derive.model.build import load_text
from derive.errors import InputError


@st.composite
def cases(draw, kind, source):
    return generate_case(DrawChooser(draw), kind=kind, source=source)


FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])


def assert_contract(case: Case):
    with tempfile.TemporaryDirectory() as folder:
        problem = contract_problem(case, folder)
    assert problem is None, f"{case.origin}: {case.text[:3000]!r}\n{problem}"


@settings(FUZZ, max_examples=1500)
@given(cases("model", "mutation"))
def test_mutated_models(case):
    assert_contract(case)


@settings(FUZZ, max_examples=700)
@given(cases("model", "grammar"))
def test_models_from_the_grammar(case):
    assert_contract(case)


@settings(FUZZ, max_examples=500)
@given(cases("claims", "mutation"))
def test_mutated_claims(case):
    assert_contract(case)


@settings(FUZZ, max_examples=300)
@given(cases("claims", "grammar"))
def test_claims_from_the_grammar(case):
    assert_contract(case)


# -- reproducers of what the long run (python -m bench.fuzz) found, each fixed ---------------------
BASE = ("size H = 2, T = 3, B = 2\nparam W : H x H\ninput x_t : H x B\nstate h_t : H x B = 0\n"
        "h_t = tanh(W @ h_{t-1} + x_t)\n")

FOUND = [  # (kind, text), minimized; each broke the contract before its fix
    ("model", BASE + "L = sum(h_{²})\n"),  # int('²'): ValueError in parse_step
    ("model", BASE + "L = sum(h_T)" + "²" * 5000 + "\n"),  # no length check: ValueError in Fraction
    ("model", "#\x1c\nsize H = 2\nL = sum(H $ H)\n"),  # \x1c, \x85, U+2028 ended lines: wrong line numbers
    ("model", "#\x85\nL = 1 $\n"),
    ("model", "#\u2028\nL = 1 $\n"),
    ("model", "size H = 2\n"),  # no loss: no position
    ("claims", "model elman-softmax\nmodel× elman-regression\nclaim dL/dy_t = 1\n"),  # AssertionError
    ("model", BASE + "L = sum(h_T" + " + h_T" * 100000 + ")\n"),  # a 600 kB line shown whole, after seconds
]


@pytest.mark.parametrize("kind, text", FOUND, ids=[f"found-{k}" for k in range(len(FOUND))])
def test_found_by_the_long_run(kind, text):
    assert_contract(Case(kind, "found", text))


def test_a_chain_of_thousands_of_equations_is_no_recursion_error():
    chain = "".join(f"q{k} = q{k - 1} * 2\n" for k in reversed(range(1, 1990)))  # the loss first
    model = load_text("L = q1989\n" + chain + "q0 = 1\n", "chain.rnn")
    assert [eq.name for eq in model.equations][:2] == ["q0", "q1"] and model.equations[-1].name == "L"


def test_lines_are_numbered_as_an_editor_numbers_them():
    with pytest.raises(InputError) as err:
        load_text("# a form feed \x0c and a line separator \u2028 inside a comment\nL = 1 $\n", "ff.rnn")
    assert (err.value.line, err.value.column) == (2, 7)
