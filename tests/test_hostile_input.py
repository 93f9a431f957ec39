"""Malformed and hostile input: a clean error with a caret and exit 2, never a traceback or a hang."""

import os

import pytest

from derive.build import load_text
from derive.cli import EXIT_INTERNAL, main
from derive.errors import InputError

BASE = ("size H = 2, T = 3, B = 2\nparam W : H x H\ninput x_t : H x B\nstate h_t : H x B = 0\n"
        "h_t = tanh(W @ h_{t-1} + x_t)\n")

REFUSED = {  # last line of the model -> words the error must hold
    "nested parentheses": ("L = sum(" + "(" * 300 + "h_T" + ")" * 300 + ")", "nested too deeply"),
    "nested signs": ("L = sum(h_T) * " + "-" * 300 + "1", "nested too deeply"),
    "a sum of 500 terms": ("L = sum(" + " + ".join(["h_T"] * 500) + ")", "expression too deep"),
    "a 5,000-digit number": ("L = sum(h_T) * " + "9" * 5000, "number too long"),
    "a huge exponent": ("L = sum(h_T) * 1e99999999", "number too long or too large"),
    "a NUL byte": ("L = sum(h_T)\x00", "U+0000"),
    "an unknown symbol": ("L = sum(h_T) ∑ 2", "N-ARY SUMMATION"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_a_positioned_message(case):
    line, words = REFUSED[case]
    with pytest.raises(InputError) as err:
        load_text(BASE + line + "\n", "hostile.rnn", "hostile")
    assert words in err.value.message and err.value.line == 6 and err.value.column >= 1
    assert "^" in err.value.format()


def test_a_size_of_thirty_digits_is_refused():
    with pytest.raises(InputError, match="a size of at most 100,000,000"):
        load_text("size H = " + "9" * 30 + "\n", "big.rnn", "big")


def test_superscript_digits_are_powers():
    model = load_text(BASE + "L = sum(h_T²) / 2\n", "sq.rnn", "sq")
    squared = load_text(BASE + "L = sum(h_T**2) / 2\n", "sq.rnn", "sq")
    assert model.equations[-1].expr == squared.equations[-1].expr


def test_a_byte_order_mark_and_crlf_are_read(tmp_path):
    path = tmp_path / "bom.rnn"
    path.write_bytes(("\ufeff" + BASE + "L = sum(h_T)\n").replace("\n", "\r\n").encode("utf-8"))
    assert main(["show", str(path), "--no-proof"]) == 0


def test_non_utf8_bytes_name_the_offset(tmp_path, capsys):
    path = tmp_path / "latin1.rnn"
    path.write_bytes(BASE.encode() + b"L = sum(h_T) # caf\xe9\n")
    assert main(["show", str(path), "--no-proof"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["verify", "elman-softmax", "--seed", "-1"], "--seed takes a whole number"),
    (["verify", "elman-softmax", "--entries", "0"], "--entries takes a whole number"),
    (["code", "elman-softmax", "-o", "/nonexistent-folder/x.py"], "there is no folder"),
])
def test_bad_arguments_exit_2(args, words, capsys):
    assert main(args) == 2
    assert words in capsys.readouterr().err


def test_an_existing_folder_as_output(tmp_path, capsys):
    assert main(["code", "elman-softmax", "-o", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err


def test_an_internal_error_has_its_own_status_and_no_traceback(monkeypatch, capsys):
    import derive.cli as cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_models", broken)
    assert main(["models"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "internal error, please report" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "models"])


def test_verify_and_report_leave_nothing_in_the_temp_folder(tmp_path, monkeypatch):
    import tempfile
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["verify", "elman-softmax", "--size", "T=3"]) == 0
    assert main(["report", "elman-softmax", "-o", str(tmp_path / "r.tex")]) == 0
    assert os.listdir(folder) == []
