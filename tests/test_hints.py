"""Every command the tool tells the user to run works as printed and does what it says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from derive.cli import main

DATA = Path(__file__).parent / "data"


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def without_timings(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("seconds:"))


@pytest.mark.parametrize("model", ["elman-softmax", str(DATA / "gru.rnn")])
def test_verify_repeat_hint_repeats_the_run(model, capsys):
    status, out, _ = run(["verify", model, "--seed", "3"], capsys)
    assert status == 0
    hint = re.search(r"\(repeat with (--seed \d+ --size \S+)\)", out)
    assert hint, out
    again, out_again, _ = run(["verify", model] + hint.group(1).split(), capsys)
    assert again == status and without_timings(out_again) == without_timings(out)


def test_generated_module_regenerate_hint_gives_the_same_module(tmp_path, monkeypatch, capsys):
    shutil.copy(DATA / "lstm.rnn", tmp_path / "lstm.rnn")
    monkeypatch.chdir(tmp_path)
    for style in ("readable", "fast"):
        status, first, _ = run(["code", "lstm.rnn", "--style", style], capsys)
        assert status == 0
        command = re.search(r"Regenerate rather than edit: derive (code .*)", first).group(1).split()
        status, again, _ = run(command, capsys)
        assert status == 0 and again == first


def test_report_commands_work_as_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, _ = run(["report", "elman-softmax", "-o", "r.tex"], capsys)
    assert status == 0
    tex = (tmp_path / "r.tex").read_text()
    commands = re.findall(r"\\texttt\{derive ((?:code|verify|report|show|check) [^}]*)\}", tex)
    assert any(c.startswith("verify") for c in commands) and any(c.startswith("code") for c in commands)
    for command in commands:
        argv = command.replace(r"{\ttfamily\char95}", "_").split()
        if argv[0] == "report":
            argv += ["-o", "again.tex"]
        status, _, err = run(argv, capsys)
        assert status == 0, (command, err)


def test_the_reports_numbers_are_what_its_verify_command_prints(tmp_path, monkeypatch, capsys):
    import json

    from derive.report.latex import fmt_sci
    monkeypatch.chdir(tmp_path)
    assert run(["report", "elman-softmax", "-o", "r.tex", "--seed", "2"], capsys)[0] == 0
    tex = (tmp_path / "r.tex").read_text()
    command = re.search(r"\\texttt\{derive (verify [^}]*)\}", tex).group(1).replace(r"{\ttfamily\char95}", "_")
    status, out, _ = run(command.split() + ["--json"], capsys)
    assert status == 0
    rows = json.loads(out)["rows"]
    assert rows
    for row in rows:
        assert f"${fmt_sci(row['max_rel_error'])}$" in tex, row


def test_a_report_names_a_class_target_without_steps_as_declared(tmp_path):
    from derive.report.run import build_report
    path = tmp_path / "m2o.rnn"
    path.write_text("size H = 3, O = 4, T = 3\nparam W : O x H\ninput x_t : H x 1\ntarget k : class O\n"
                    "state h_t : H x 1 = 0\nh_t = tanh(h_{t-1} + x_t)\ny = softmax(W @ h_T)\nL = -log(y[k])\n")
    report = build_report(str(path))
    assert report.passed
    assert "Class targets drawn for the proof" in report.tex and "k_{None}" not in report.tex
    assert re.search(r"\$k = \d\$", report.tex)
