"""The derive.numeric package stays independent of SymPy and of eval/exec."""

import ast
import pathlib
import subprocess
import sys

import derive.numeric

PACKAGE = pathlib.Path(derive.numeric.__file__).parent
ALLOWED = {"numpy", "__future__", "dataclasses", "math", "typing"}


def test_importing_numeric_does_not_load_sympy():
    code = (
        "import sys, derive.numeric, derive.numeric.bptt, derive.numeric.finite_diff, derive.numeric.compare, "
        "derive.numeric.random_data, derive.numeric.shapes; "
        "assert 'sympy' not in sys.modules, 'sympy loaded'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr


def test_sources_import_only_numpy_and_stdlib_and_never_eval():
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.name for f in files} >= {"bptt.py", "finite_diff.py", "compare.py"}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name}: imports from outside derive.numeric"
                roots = set() if node.level == 1 else {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert roots <= ALLOWED, f"{path.name}: imports {roots - ALLOWED}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, path.name
