"""The Python API (derive/api/): every function on a built-in or example model, against the command's output."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import derive
from derive import api
from derive.cli import main
from derive.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "examples" / "tour"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """(exit status, stdout) of ``derive ARGV``, run in this process."""
    capsys.readouterr()
    status = main(list(argv))
    return status, capsys.readouterr().out


def without_timings(doc):
    """A JSON document with its measured seconds taken out (they differ from run to run)."""
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def test_import_derive_loads_neither_the_api_nor_sympy_nor_numpy():
    code = ("import sys, derive; print(sorted(m for m in ('derive.api', 'derive.cli', 'sympy', 'numpy') "
            "if m in sys.modules)); print(derive.load_model.__module__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[]", "derive.api.functions"]


def test_the_package_exports_the_api_names():
    exported = [name for name in derive.__all__ if name != "__version__"]
    assert set(exported) == set(api.__all__) - {"MEMORY_GIB", "STYLES"}
    for name in exported:
        assert getattr(derive, name) is getattr(api, name), name
    assert derive.derive is api.derive and "verify_gradients" in dir(derive)
    with pytest.raises(AttributeError):
        derive.no_such_name  # noqa: B018


def test_list_models_is_derive_models(capsys):
    status, out = run_cli(capsys, "models")
    assert status == 0
    models = api.list_models()
    assert [f"{m.name:20s} {m.description}" for m in models] == out.splitlines()
    softmax = api.load_model("elman-softmax")
    assert softmax in models and softmax.path == "<builtin:elman-softmax>"
    assert softmax.parameters == ("W_hh", "W_xh", "b_h", "W_hy", "b_y")
    assert softmax.states == ("h_t",) and softmax.targets == ("c_t",)


def test_a_model_file_loads_with_its_declarations():
    model = api.load_model(TOUR / "char_rnn.rnn")
    assert (model.name, model.path) == ("char_rnn", str(TOUR / "char_rnn.rnn"))
    assert model.sizes == {"H": 16, "V": 10, "T": 8, "B": 4}
    assert model.source == (TOUR / "char_rnn.rnn").read_text(encoding="utf-8")
    assert model.to_json()["parameters"] == ["W_xh", "W_hh", "b_h", "W_hy", "b_y"]


def test_derive_is_derive_show_without_the_proof(capsys):
    status, out = run_cli(capsys, "show", "elman-softmax", "--no-proof")
    result = api.derive("elman-softmax")
    assert status == 0 and result.proof is None and result.holds
    assert result.text + "\n" == out
    printed = out.splitlines()
    for line in result.equations + result.gradients:
        row = [p for p in printed if p.lstrip().startswith(f"({line.number}) ")]
        assert len(row) == 1 and line.text in row[0] and row[0].endswith(line.shape), line
    by_name = {g.name: g for g in result.gradients}
    assert by_name["h_t"].text == "dL/dh_t = W_hy.T @ dL/do_t + W_hh.T @ dL/dz_{t+1}"
    assert by_name["h_t"].boundary == "dL/dz_{T+1} = 0"
    assert by_name["h_t"].initial_state == "dL/dh_0 = W_hh.T @ dL/dz_1"
    assert by_name["o_t"].before_simplification is not None
    assert f"constants written in place: {', '.join(result.constants)}" in printed


def test_derive_with_the_proof_is_derive_show(capsys):
    status, out = run_cli(capsys, "show", "elman-softmax", "--seed", "1")
    result = api.derive(api.load_model("elman-softmax"), proof=True, seed=1)
    timing = re.compile(r", \d+\.\d s")
    assert status == 0 and result.proof.holds
    assert timing.sub("", result.text + "\n") == timing.sub("", out)
    size_lines = [line for line in out.splitlines() if " entries holds," in line]
    proved = result.proof.sizes + result.proof.generic_sizes
    assert len(size_lines) == len(proved) == 6
    for line, size in zip(size_lines, proved):
        assert line.lstrip().startswith(", ".join(f"{k}={v}" for k, v in size.sizes.items()) + ":")
        assert f": {size.entries} entries holds" in line and size.holds
    assert result.proof.failures == ()


@pytest.mark.parametrize("style", ["readable", "fast"])
def test_generate_code_is_derive_code(capsys, tmp_path, style):
    status, out = run_cli(capsys, "code", str(TOUR / "char_rnn.rnn"), "--style", style)
    code = api.generate_code(TOUR / "char_rnn.rnn", style=style)
    assert status == 0 and code.source == out and code.fallback is None
    assert (code.model, code.style) == ("char_rnn", style)
    code.write(tmp_path / "grad.py")
    assert (tmp_path / "grad.py").read_text(encoding="utf-8") == out
    module = code.load()
    assert set(module.PARAM_SHAPES) == set(api.load_model(TOUR / "char_rnn.rnn").parameters)


@pytest.mark.parametrize("argv, kwargs", [
    ((), {}),
    (("--size", "H=3,T=3", "--seed", "2", "--entries", "4"), {"sizes": {"H": 3, "T": 3}, "seed": 2, "entries": 4}),
])
def test_verify_gradients_is_derive_verify_json(capsys, argv, kwargs):
    status, out = run_cli(capsys, "verify", "elman-softmax", "--json", *argv)
    result = api.verify_gradients("elman-softmax", **kwargs)
    assert status == 0 and result.passed and result.result == "agree"
    cli = json.loads(out)
    assert set(cli) == set(result.to_json())
    assert without_timings(result.to_json()) == without_timings(cli)
    assert result.rows[0].check == cli["rows"][0]["check"] and result.checks["hand"].decisive
    assert result.text.endswith("result: all checks agree")


def test_verify_gradients_of_an_edited_module_is_a_mismatch():
    code = api.generate_code("elman-softmax")
    edited = code.source.replace("(1 - h[t]**2)", "(1 + h[t]**2)")
    assert edited != code.source
    result = api.verify_gradients("elman-softmax", source=edited)
    assert not result.passed and result.result == "mismatch" and "hand" in result.evidence


@pytest.fixture(scope="module")
def tour_check():
    """``derive check examples/tour/notes.claims --json``: (exit status, document, listing), and the API's result."""
    out = []
    for as_json in (True, False):
        run = subprocess.run([sys.executable, "-m", "derive", "check", str(TOUR / "notes.claims")]
                             + (["--json"] if as_json else []), capture_output=True, text=True, cwd=ROOT, check=False,
                             timeout=300)
        out.append((run.returncode, run.stdout))
    return out, api.check_claims(TOUR / "notes.claims")


def test_check_claims_is_derive_check_json(tour_check):
    [(status, document), (_, listing)], result = tour_check
    cli = json.loads(document)
    assert status == 1 == result.summary["exit_status"] and not result.holds
    assert set(cli) == set(result.to_json())
    assert set(cli["claims"][0]) == {f.name for f in dataclasses.fields(api.ClaimVerdict)}
    assert without_timings(result.to_json()) == without_timings(cli)
    assert result.text == listing
    assert [c.verdict for c in result.claims] == ["holds", "holds", "wrong", "wrong"]


def test_check_claims_takes_text_and_a_model(tour_check):
    _, from_file = tour_check
    lines = (TOUR / "notes.claims").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "model char_rnn.rnn"
    text = "\n".join(["# the model is given as model="] + lines[1:]) + "\n"
    result = api.check_claims(text, model=api.load_model(TOUR / "char_rnn.rnn"))
    assert result.file == "<text>" and result.model == "char_rnn"
    assert without_timings([c.to_json() for c in result.claims]) == without_timings(
        [c.to_json() for c in from_file.claims])
    assert result.text.startswith("<text>: model char_rnn, 4 claims")


def test_a_claim_line_of_text_that_does_not_parse_is_an_error_verdict():
    result = api.check_claims("claim dL/do_t = y_t - onehot(c_t)\nclaim dL/db_y = = 1\n", model="elman-softmax")
    holds, error = result.claims
    assert holds.verdict == "holds" and error.verdict == "error"
    assert (error.error["file"], error.error["line"], error.error["column"]) == ("<text>", 2, 17)
    assert result.summary["exit_status"] == 1


def test_a_claims_file_without_a_model_line_takes_the_model_given(tmp_path):
    notes = tmp_path / "notes.claims"
    notes.write_text("# no model line\nclaim dL/db_y = = 2\nclaim dL/do_t = (y_t - onehot(c_t)) / B\n", encoding="utf-8")
    with pytest.raises(InputError, match="no model"):
        api.check_claims(notes)
    result = api.check_claims(notes, model=TOUR / "char_rnn.rnn")
    assert (result.file, result.model) == (str(notes), "char_rnn")
    assert [(c.line, c.verdict) for c in result.claims] == [(2, "error"), (3, "holds")]
    assert result.claims[0].error["file"] == str(notes)
    assert result.text.startswith(f"{notes}: model char_rnn, 2 claims")


def test_bad_input_raises_input_error_with_its_place(tmp_path):
    bad = tmp_path / "bad.rnn"
    bad.write_text("size H = 2\nparam W : H x H\nL = sum(W @ @ W)\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        api.load_model(bad)
    assert (caught.value.path, caught.value.line) == (str(bad), 3)
    cases = [
        (lambda: api.load_model("no-such-model"), "no such model file or built-in model"),
        (lambda: api.generate_code("elman-softmax", style="slow"), "style takes"),
        (lambda: api.verify_gradients("elman-softmax", sizes={"Q": 2}), "does not declare"),
        (lambda: api.verify_gradients("elman-softmax", sizes={"H": 0}), "at least 1"),
        (lambda: api.verify_gradients("elman-softmax", entries=0), "entries takes"),
        (lambda: api.derive("elman-softmax", seed=-1), "seed takes"),
        (lambda: api.verify_gradients("elman-regression", memory_gib=0.001), "complex-step pass"),
        (lambda: api.check_claims("model elman-softmax\nclaim dL/do_t = 1\n", model="elman-softmax"),
         "name their own model"),
        (lambda: api.check_claims(tmp_path / "none.claims"), "no such file"),
        (lambda: api.generate_code("elman-softmax").write(tmp_path / "no" / "x.py"), "there is no folder"),
    ]
    for call, words in cases:
        with pytest.raises(InputError, match=words):
            call()
    assert not (tmp_path / "no").exists()


def test_results_are_frozen():
    model = api.load_model("elman-softmax")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"
    gradient = api.derive(model).gradients[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        gradient.text = "dL/dL = 2"


def test_the_example_of_docs_api_runs_as_written(tmp_path):
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    shown = doc.split("```text\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.py").write_text(example, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "example.py"], capture_output=True, text=True, cwd=tmp_path, env=env, check=False,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == shown


def test_one_claim_on_one_line_is_text_not_a_path():
    result = derive.check_claims("claim dL/dW_hy = sum_t dL/do_t @ h_{t-1}.T", model="elman-softmax")
    (claim,) = result.claims
    assert claim.verdict == "wrong" and claim.repair == "sum_t dL/do_t @ h_t.T"
    assert claim.repair_kinds == ("a step off by one",)


def test_check_notes_is_derive_check_notes_json(capsys):
    from derive.cli import main
    notes = ROOT / "tests" / "data" / "notes" / "seed001.txt"
    status = main(["check", str(notes), "--model", "elman-regression", "--json"])
    doc = json.loads(capsys.readouterr().out)
    result = api.check_notes(notes, api.load_model("elman-regression"), cache=False)
    assert not result.holds and result.summary["exit_status"] == status == 1
    assert [(c.line, c.column, c.verdict) for c in result.claims] == \
        [(c["line"], c["column"], c["verdict"]) for c in doc["claims"]]
    assert result.claims[0].written.startswith("dL2/dh2") and "h2 as h_2" in result.claims[0].readings
    assert len(result.not_checked) == len(doc["not_checked"]) > 0
    with pytest.raises(InputError):
        api.check_notes(ROOT / "README.md", "elman-softmax")  # no equation of the loss in it
