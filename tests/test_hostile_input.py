"""Malformed and hostile input: a clean error with a caret and exit 2, never a traceback or a hang."""

import os

import pytest

from derive.model.build import load_text
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


# -- found by fuzzing (tests/test_fuzz.py, python -m bench.fuzz): each crashed, hung or misplaced its error ----
FUZZED = {  # last line of the model -> (column, words the error must hold)
    "a superscript step": ("L = sum(h_{²})", 12, "cannot read the step subscript {²}"),
    "a Devanagari digit step": ("L = sum(h_{१})", 12, "cannot read the step subscript {१}"),
    "a step past T": ("L = sum(h_99)", 9, "h_99 is past the last step T = 3"),
    "a braced step past T": ("L = sum(h_{99})", 9, "h_99 is past the last step T = 3"),
    "a step before 0": ("L = sum(h_{T-5})", 9, "h_{T-5} is step -2"),
    "an input at step 0 by T": ("L = sum(x_{T-3})", 9, "only a state has a value at step 0"),
    "a ten-digit step": ("L = sum(h_9999999999)", 9, "more than 9 digits"),
    "a long superscript power": ("L = sum(h_T" + "²" * 5000 + ")", 12, "number too long"),
    "an exact power that never ends": ("L = sum(h_T) * 2 ** 1e300", 18, "constant too large"),
    "a tower of powers": ("L = sum(h_T) * 2 ** 2 ** 2 ** 2 ** 2 ** 2", 23, "constant too large"),
    "a literal beyond float64": ("L = sum(h_T) * " + "9" * 30 + "e300", 16, "beyond the range of float64"),
    "an exponent that is not a constant": ("L = sum(h_T ** sum(W))", 20, "the exponent must be a constant"),
    "a division by zero": ("L = sum(h_T) / (1 - 1)", 14, "division by zero"),
    "zero to a negative power": ("L = sum(h_T) * 0 ** -1", 18, "division by zero"),
    "a negative base, fractional power": ("L = sum(h_T) * (-8) ** (1/3)", 21, "not a real number"),
    "the notes' product in an equation": ("L = sum(h_T ⋅ h_T)", 13, "'⋅' is ambiguous in an equation"),
    "a line of 600 kB": ("L = sum(h_T" + " + h_T" * 100000 + ")", 10001, "line too long"),
}


@pytest.mark.parametrize("case", sorted(FUZZED))
def test_found_by_fuzzing(case):
    line, column, words = FUZZED[case]
    with pytest.raises(InputError) as err:
        load_text(BASE + line + "\n", "fuzzed.rnn", "fuzzed")
    assert words in err.value.message, err.value.format()
    assert (err.value.line, err.value.column) == (6, column), err.value.format()
    shown = err.value.format().splitlines()
    assert len(shown) == 3 and shown[2].endswith("^") and max(map(len, shown[1:])) < 200


@pytest.mark.parametrize("declaration, column, words", [
    ("param W_t : H x H", 7, "cannot end in _t"),
    ("param V : 0 x H", 11, "a dimension must be a whole number from 1"),
    ("param V : H x 999999999999", 15, "a dimension must be a whole number from 1"),
    ("target c : class 0", 18, "a dimension must be a whole number from 1"),
])
def test_declarations_found_by_fuzzing(declaration, column, words):
    with pytest.raises(InputError) as err:
        load_text(BASE.replace("param W : H x H", declaration) + "L = sum(h_T)\n", "fuzzed.rnn", "fuzzed")
    assert words in err.value.message and (err.value.line, err.value.column) == (2, column), err.value.format()


def test_no_loss_points_past_the_last_statement():
    with pytest.raises(InputError) as err:
        load_text(BASE + "# the end\n\n", "noloss.rnn", "noloss")
    assert "no loss" in err.value.message
    assert (err.value.line, err.value.column) == (5, len("h_t = tanh(W @ h_{t-1} + x_t)") + 1)


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u2029"])
def test_only_lf_crlf_and_cr_end_a_line(separator):
    """Python's splitlines also splits at these; an editor does not, and the line number must match it."""
    with pytest.raises(InputError) as err:
        load_text(BASE + f"# a comment {separator} with a separator\nL = sum(h_T) $\n", "sep.rnn", "sep")
    assert (err.value.line, err.value.column) == (7, 14)


def test_a_file_too_large_and_too_many_statements():
    with pytest.raises(InputError, match="file too large") as err:
        load_text(BASE + "#" * 1_000_001 + "\nL = sum(h_T)\n", "big.rnn", "big")
    assert err.value.line == 6 and max(map(len, err.value.format().splitlines())) < 200
    many = "".join(f"q{k} = {k}\n" for k in range(2001))
    with pytest.raises(InputError, match="more than 2,000 statements") as err:
        load_text(many, "many.rnn", "many")
    assert err.value.line == 2001


def test_control_characters_are_shown_as_question_marks():
    with pytest.raises(InputError) as err:
        load_text(BASE + "L = sum(h_T) \x1b[31m\n", "esc.rnn", "esc")
    assert err.value.column == 14 and "U+001B" in err.value.message
    assert "\x1b" not in err.value.format() and err.value.format().splitlines()[1] == "    L = sum(h_T) ?[31m"


def test_a_byte_that_is_not_utf8_is_positioned(tmp_path, capsys):
    path = tmp_path / "latin1.rnn"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode() + b"L = sum(h_T) # caf\xe9\n")
    assert main(["show", str(path), "--no-proof"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:19: error: not UTF-8 text" in err and "    L = sum(h_T) # caf\ufffd" in err


def test_a_model_word_glued_to_its_name_in_a_claims_file(tmp_path):
    from derive.claims.read import read_claims
    path = tmp_path / "glued.claims"
    path.write_text("model elman-softmax\nmodel× elman-regression\nclaim dL/dy_t = 1\n")
    with pytest.raises(InputError, match="space between 'model'") as err:
        read_claims(str(path))
    assert (err.value.line, err.value.column) == (2, 6)
