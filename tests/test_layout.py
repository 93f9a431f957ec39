"""The package's layout: stages that import only downwards, no cycles, modules and classes of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "derive"

STAGES = ["base", "notation", "model", "calculus", "emit", "numeric", "verify", "claims", "against", "report", "api", "top"]
"""The pipeline from bottom to top; a module may import its own stage and the stages below it."""

BASE = {"derive", "derive.errors", "derive.files", "derive.limits", "derive.cache"}
TOP = {"derive.cli", "derive.__main__"}

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module in TOP:
        return "top"
    return module.split(".")[1]


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``derive`` that ``path`` imports, at any depth of its code (function bodies too)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:  # ``from . import x`` may name a module
                full = f"{stem}.{alias.name}"
                found.add(full if full in modules else stem)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def test_every_module_belongs_to_a_stage():
    for module in import_graph():
        assert stage_of(module) in STAGES, f"{module} is in no stage of {STAGES}"


def test_stages_import_only_downwards():
    wrong = []
    for module, deps in import_graph().items():
        rank = STAGES.index(stage_of(module))
        for dep in deps:
            if STAGES.index(stage_of(dep)) > rank:
                wrong.append(f"{module} ({stage_of(module)}) imports {dep} ({stage_of(dep)})")
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]):
        state[module] = 1
        for dep in sorted(graph[module]):
            if dep == module or state.get(dep) == 2:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert "derive.notation.expr" in graph["derive.notation.parse"]
    assert "derive.calculus.matrix" in graph["derive.emit.readable"]
    assert "derive.numeric" in graph["derive.verify.run"] or any(
        m.startswith("derive.numeric") for m in graph["derive.verify.run"])


def test_modules_and_classes_stay_small():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module_name(path)}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_long.append(f"{module_name(path)}.{node.name}: {size} lines (at most {MAX_CLASS_LINES})")
    assert not too_long, "\n".join(too_long)


def test_every_elementwise_function_is_known_to_every_stage():
    """Adding an elementwise primitive means one entry in each stage's table; none may be forgotten."""
    from derive.calculus.entries import ELEMENTWISE as SYMPY_FORM
    from derive.calculus.rules import VJP
    from derive.claims.numeric import ELEMENTWISE as FLOAT_FORM
    from derive.emit.numpy_printer import FUNCTION_CODE
    from derive.notation.expr import ELEMENTWISE_FUNCTIONS, FUNCTIONS
    from derive.report.latex import FUNCTION_TEX
    for name in ELEMENTWISE_FUNCTIONS:
        assert name in FUNCTIONS
        assert (name,) in VJP, f"{name}: no VJP rule (calculus/rules.py)"
        assert name in SYMPY_FORM, f"{name}: no SymPy form (calculus/entries.py)"
        assert name in FLOAT_FORM, f"{name}: no float form (claims/numeric.py)"
        assert name in FUNCTION_CODE, f"{name}: no NumPy spelling (emit/numpy_printer.py)"
        assert name in FUNCTION_TEX, f"{name}: no LaTeX spelling (report/latex.py)"


def test_the_architecture_document_names_every_module():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
               if not p.name.startswith("__") and f"`{p.name}`" not in text]
    assert not missing, f"docs/architecture.md does not say what these modules own: {missing}"
