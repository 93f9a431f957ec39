"""Time and memory limits of whole commands: status 2, a one-line reason, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from derive.cli import MEMORY_GIB, main
from derive.limits import OutOfTime, time_limit
from derive.verify.run import MEMORY_LIMIT

LSTM = str(Path(__file__).parent / "data" / "lstm.rnn")


def test_the_cli_default_memory_is_the_librarys():
    assert MEMORY_GIB * 2 ** 30 == MEMORY_LIMIT


def test_time_limit_raises_in_the_main_thread_and_is_lifted_after():
    with pytest.raises(OutOfTime):
        with time_limit(0.05):
            while True:
                pass
    with time_limit(None):
        pass  # no limit: nothing raised


def test_show_past_its_time_limit_stops_with_status_2(capsys):
    assert main(["show", LSTM, "--seconds", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "stopped: past the time limit of 0.2 s (--seconds)" in err and "Traceback" not in err


def test_verify_past_its_time_limit_stops_without_waiting_for_its_workers():
    run = subprocess.run([sys.executable, "-m", "derive", "verify", LSTM, "--seconds", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "stopped: past the time limit of 1 s" in run.stderr and "Traceback" not in run.stderr


def test_report_past_its_time_limit_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.tex"
    assert main(["report", LSTM, "-o", str(out), "--seconds", "0.3"]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_verify_memory_limit_is_a_flag(capsys):
    assert main(["verify", "elman-regression", "--size", "H=200,B=20000", "--memory", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "limit 0.5 GiB" in err and "--memory" in err


@pytest.mark.parametrize("flag", [["--seconds", "0"], ["--seconds", "-1"], ["--seconds", "inf"],
                                  ["--memory", "0"], ["--memory", "lots"]])
def test_bad_limits_are_refused(flag, capsys):
    command = ["verify", "elman-softmax"] + flag
    with pytest.raises(SystemExit) as stop:
        main(command)
    assert stop.value.code == 2
    assert "takes a number" in capsys.readouterr().err


def test_a_models_own_sizes_past_the_memory_limit_are_shown_at_the_largest(tmp_path, capsys):
    path = tmp_path / "big.rnn"
    path.write_text("size T = 1, B = 4, K = 100000000, H = 4\nparam W : H x H\ninput x_t : H x B\n"
                    "input u : K x B\nstate h_t : H x B = 0\nh_t = tanh(W @ h_{t-1} + x_t)\n"
                    "L = sum(h_T) + sum(u * u)\n")
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:20: error: the sizes T=1, B=4, K=100000000, H=4 need about" in err and "^" in err


def test_the_memory_estimate_counts_the_inputs_too(tmp_path, capsys):
    # found by bench/fuzz.py: the input x_t alone took 4.5 GiB, which the estimate left out (MemoryError, exit 3)
    path = tmp_path / "wide_input.rnn"
    path.write_text("size G = 1\nsize K_2 = 100000000\nsize H = 2\nsize B = 3\nsize T = 2\nparam W0 : G x G\n"
                    "param W1 : K_2 x G\nparam b2 : 1 x H\nparam b3 : H x 1\ninput x_t : B x K_2\n"
                    "state g_t : B x G = 0\ng_t = tanh(g_{t-1} @ W0 + x_t @ W1)\nL = b2 @ b3\n")
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:6: error: the sizes" in err and "MemoryError" not in err
