"""User text that reaches generated Python or LaTeX (file names, comments) is escaped on every route."""

import ast
import re
import shutil
from pathlib import Path

import pytest

from derive.model.build import load_model
from derive.cli import main
from derive.emit.readable import generate_module
from derive.emit.fast import generate_fast_module
from derive.emit.loader import import_source
from derive.calculus.matrix import derive_matrix

DATA = Path(__file__).resolve().parent / "data"
HOSTILE_NAME = 'x"""; __import__("os").system("touch PWNED"); """\\end{lstlisting}\\input{secret}'
HOSTILE_COMMENT = '# """ \'\'\' \\end{lstlisting}\\input{/etc/passwd} \\write18{touch PWNED}\n'


@pytest.fixture
def hostile_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{HOSTILE_NAME}.rnn"
    path.write_text(HOSTILE_COMMENT + (DATA / "state_loss.rnn").read_text())
    return load_model(str(path))


@pytest.mark.parametrize("generate", [generate_module, generate_fast_module])
def test_a_file_name_cannot_close_the_module_docstring(hostile_model, tmp_path, generate):
    source = generate(hostile_model, derive_matrix(hostile_model))
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree)
    assert HOSTILE_NAME.replace("\\", "\\\\") in docstring  # the name is text inside the docstring
    assert isinstance(tree.body[0], ast.Expr) and not any(
        isinstance(n, ast.Call) and getattr(n.func, "id", "") == "__import__" for n in ast.walk(tree))
    import_source(source)
    assert not (tmp_path / "PWNED").exists()


def test_verify_and_code_on_a_hostile_file_name_run_nothing(hostile_model, tmp_path):
    assert main(["verify", hostile_model.path, "--entries", "2"]) == 0
    assert main(["code", hostile_model.path, "-o", str(tmp_path / "m.py")]) == 0
    import_source((tmp_path / "m.py").read_text())
    assert not (tmp_path / "PWNED").exists()
    assert "derive code '" in (tmp_path / "m.py").read_text()  # the path, shell-quoted


def test_the_report_escapes_file_names_and_comments(hostile_model, tmp_path):
    assert main(["report", hostile_model.path, "-o", str(tmp_path / "r.tex")]) == 0
    tex = (tmp_path / "r.tex").read_text()
    assert tex.count("\\begin{lstlisting}") == tex.count("\\end{lstlisting}")
    outside = re.sub(r"\\begin\{lstlisting\}.*?\n\\end\{lstlisting\}", "", tex, flags=re.S)
    for command in ("\\input{", "\\write18", "\\end{lstlisting}"):
        assert command not in outside  # user text outside verbatim listings is escaped


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no TeX on this machine")
def test_the_hostile_report_compiles_and_runs_nothing(hostile_model, tmp_path):
    assert main(["report", hostile_model.path, "-o", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").stat().st_size > 1000 and not (tmp_path / "PWNED").exists()
