"""The randomized identity test of the proof, its error bound, and the faster exact sweep and witness."""

from __future__ import annotations

import sympy

from derive.against.mutation_vocabulary import mutated, single_mutations
from derive.calculus.exact import partials, reverse_sweep, unroll
from derive.calculus.high_precision import PRECISION
from derive.calculus.identity_test import P, RandomizedIdentity
from derive.calculus.matrix import derive_matrix
from derive.calculus.prove import EntryProver, default_proof_sizes, prove, quantity_steps
from derive.calculus.show import format_show
from derive.calculus.witness import instantiate, numeric_values
from derive import derive as derive_api
from derive.cli import main
from derive.model.build import load_model

a, b, c, q = sympy.symbols("a b c q", real=True)
h, s, g = sympy.symbols("h s g", real=True)


def _test(forward=None, adjoint=None) -> RandomizedIdentity:
    return RandomizedIdentity(forward or {}, adjoint or {}, seed=3)


def test_true_identities_of_the_derivatives_are_shown():
    z = a * b + c
    tanh = _test({h: sympy.tanh(z)})
    assert tanh.equal(1 - h ** 2, sympy.diff(sympy.tanh(z), c))
    sigmoid = 1 / (1 + sympy.exp(-z))
    assert _test({s: sigmoid}).equal(s * (1 - s), sympy.diff(sigmoid, c))
    assert _test().equal(sympy.exp(a) ** 2 / sympy.exp(b), sympy.exp(2 * a - b))
    assert _test().equal(sympy.Heaviside(sympy.Max(0, a), 0), sympy.Heaviside(a, 0))
    p0 = sympy.exp(a) / (sympy.exp(a) + sympy.exp(b))
    assert _test({s: p0}).equal(1 - s, sympy.diff(sympy.log(p0), a))


def test_false_identities_are_not_shown():
    z = a * b + c
    assert not _test({h: sympy.tanh(z)}).equal((1 - h) ** 2, sympy.diff(sympy.tanh(z), c))
    assert not _test({h: sympy.tanh(z)}).equal(1 - h, sympy.diff(sympy.tanh(z), c))
    p0 = sympy.exp(a) / (sympy.exp(a) + sympy.exp(b))
    assert not _test({s: p0}).equal(1 + s, sympy.diff(sympy.log(p0), a))
    assert not _test().equal(sympy.tanh(a * b), sympy.tanh(b * c))


def test_adjoints_the_candidate_reads_are_variables_and_the_others_are_expanded():
    definitions = {g: 2 * q, q: a * c}
    assert _test(adjoint=definitions).equal(2 * q, g)  # q read by the candidate: a variable
    assert _test(adjoint=definitions).equal(2 * a * c, g)  # q not read: expanded
    assert not _test(adjoint=definitions).equal(3 * q, g)


def test_a_float_is_left_to_the_symbolic_check():
    assert not _test().equal(a * sympy.Float(0.5), a / 2)
    assert _test().equal(a * sympy.Rational(1, 2), a / 2)


def test_the_error_bound_grows_with_what_was_passed_and_stays_tiny():
    t = _test({h: sympy.tanh(a * b + c)})
    before = t.failure_bound()
    assert t.equal(1 - h ** 2, sympy.diff(sympy.tanh(a * b + c), c))
    after = t.failure_bound()
    assert 0 < after < 1e-30
    assert before < after
    assert all(run.passed_degrees > 0 for run in t.runs)
    assert max(run.failure_bound() for run in t.runs) < 1e3 / P


def _verdicts(derivation, u, exact):
    """Each entry's verdict from the randomized test alone and from SymPy alone."""
    randomized = RandomizedIdentity(u.definition, exact.definition, 0)
    symbolic = EntryProver(exact)
    pairs = []
    for name in derivation.order():
        terms = derivation.adjoints[name].terms
        for step in quantity_steps(derivation.model, name, u.T):
            try:
                candidate = instantiate(derivation, exact, name, step, terms)
            except (KeyError, ValueError):  # a step-shifted slip that reads a step outside 1..T
                continue
            truth = exact.expression(name, step)
            for (i, j), value in candidate.entries():
                pairs.append((randomized.equal(value, truth[i, j]), symbolic.equal(value, truth[i, j])))
    return pairs


def test_on_slipped_derivations_the_randomized_test_agrees_with_sympy_entry_by_entry():
    # the slips of `derive against` (a missing transpose, (1 - h)**2, a dropped recurrent term, ...)
    model = load_model("elman-softmax")
    derivation = derive_matrix(model)
    u = unroll(model, default_proof_sizes(model)[0])
    exact = reverse_sweep(u)
    slips = single_mutations(derivation)[::8]
    assert len(slips) >= 12
    caught = 0
    for slip in slips:
        pairs = _verdicts(mutated(derivation, [slip]), u, exact)
        assert all(r == s for r, s in pairs), slip
        caught += any(not r for r, _ in pairs)
    assert caught >= len(slips) * 3 // 4  # most slips make some entry false at these sizes; both tests see it


def test_partials_are_the_expressions_diff_gives():
    for name in ("elman-regression", "tests/data/gru.rnn"):
        model = load_model(name)
        u = unroll(model, {**default_proof_sizes(model)[0], "T": 2})
        for _, expr in u.assignments:
            fast = partials(expr)
            assert fast == {v: sympy.diff(expr, v) for v in expr.free_symbols}


def test_the_witness_values_are_sympys_50_digit_values():
    model = load_model("tests/data/gru.rnn")
    u = unroll(model, {**default_proof_sizes(model)[0], "T": 2})
    exact = reverse_sweep(u)
    values = numeric_values(u, exact, seed=4)
    reference = {v: sympy.Float(values[v], PRECISION) for v in u.leaves}  # the same random point
    for symbol, expr in u.assignments:
        reference[symbol] = sympy.N(expr.xreplace(reference), PRECISION)
    for symbol in exact.order:
        bar = exact.symbol[symbol]
        reference[bar] = sympy.N(exact.definition[bar].xreplace(reference), PRECISION)
    assert len(reference) > 300
    for symbol, expected in reference.items():
        assert abs(values[symbol] - expected) <= 1e-40 * max(1.0, abs(expected)), symbol


def test_the_proof_in_parallel_processes_is_the_serial_proof(monkeypatch):
    derivation = derive_matrix(load_model("elman-softmax"))
    proofs = []
    for processes in ("1", "2"):
        monkeypatch.setenv("DERIVE_PROOF_PROCESSES", processes)
        proofs.append(prove(derivation))
    serial, parallel = proofs
    assert serial.holds and parallel.holds
    for x, y in zip(serial.sizes + serial.generic_sizes, parallel.sizes + parallel.generic_sizes):
        assert (x.sizes, x.lines, x.witness_max_rel, x.classes, x.failure_bound) == \
               (y.sizes, y.lines, y.witness_max_rel, y.classes, y.failure_bound)


def test_show_says_how_each_entry_was_proved_and_the_bound(capsys):
    model = load_model("elman-softmax")
    derivation = derive_matrix(model)
    randomized = prove(derivation)
    assert randomized.randomized == randomized.entries > 0
    assert 0 < randomized.failure_bound < 1e-20
    text = format_show(model, derivation, randomized)
    assert f"{randomized.entries} of {randomized.entries} entries were shown by a randomized identity test" in text
    assert f"below {randomized.failure_bound:.0e}" in text
    symbolic = prove(derivation, symbolic=True)
    assert symbolic.holds and symbolic.randomized == 0 and symbolic.failure_bound == 0
    assert [p.lines[0].entries for p in symbolic.sizes] == [p.lines[0].entries for p in randomized.sizes]
    assert main(["show", "elman-softmax", "--symbolic-proof"]) == 0
    assert "Each entry is a symbolic identity (SymPy)" in capsys.readouterr().out
    api = derive_api("elman-softmax", proof=True, symbolic_proof=True, cache=False)
    assert api.proof.holds and api.proof.randomized == 0
    assert derive_api("elman-softmax", proof=True, cache=False).proof.randomized == randomized.entries
