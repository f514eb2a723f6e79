"""The rules of ../shared/DESIGN.md that code can check: which way imports go, and no name that is both a
module and a function. (The file itself lives outside a learner's clone; these tests need only helpers/.)"""

import ast
import inspect
from pathlib import Path

import helpers
from helpers import notebooks

HELPERS = Path(helpers.__file__).resolve().parent
LESSONS = [notebooks.module_of(path) for path in notebooks.lesson_notebooks()]  # in lesson order
ENGINE = ["engine", "checkpoint", "distributed", "prepare"]  # prepare: token files from any text file (issue 16)
TOOLS = ["cli", "__main__", "export", "doctor", "bundle"]  # cli is `python -m helpers COMMAND`: it runs the others
BELOW = ["bootstrap", "device", "downloads", "files", "notebooks", "plots", "runs", "seeding"]
ABOVE = ["model_map"]  # hand-written, above the lessons like the engine: it draws lesson 06's model from its config


def helpers_imports(module: str) -> set[str]:
    """The helpers modules that helpers/<module>.py imports, at any depth of its code."""
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            parts = node.module.split(".")
            found.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("helpers."))
    return found - {module}


def test_every_module_has_a_place():
    modules = {path.stem for path in HELPERS.glob("*.py")} - {"__init__"}
    assert modules == set(LESSONS + ENGINE + TOOLS + BELOW + ABOVE), "add the new module to a layer here and in DESIGN.md"


def test_a_lesson_imports_only_earlier_lessons_and_the_infrastructure_below():
    for number, module in enumerate(LESSONS):
        allowed = set(LESSONS[:number]) | set(BELOW)
        assert helpers_imports(module) <= allowed, f"{module} imports {helpers_imports(module) - allowed}"


def test_the_infrastructure_below_imports_no_lesson_and_no_engine():
    for module in BELOW:
        assert helpers_imports(module) <= set(BELOW), f"{module} imports {helpers_imports(module) - set(BELOW)}"


def test_the_engine_imports_lessons_and_infrastructure_and_no_tool():
    for module in ENGINE:
        allowed = set(LESSONS) | {"modern"} | set(BELOW) | set(ENGINE)  # modern: lesson 10's module (DESIGN.md)
        assert helpers_imports(module) <= allowed, f"{module} imports {helpers_imports(module) - allowed}"


def test_the_modules_above_the_lessons_import_lessons_and_infrastructure_only():
    """helpers/model_map.py follows the engine's rules; no lesson and no infrastructure module imports it
    (the two tests above check that from the other side)."""
    for module in ABOVE:
        allowed = set(LESSONS) | set(BELOW)
        assert helpers_imports(module) <= allowed, f"{module} imports {helpers_imports(module) - allowed}"


def test_nothing_imports_a_tool_but_the_command_line_that_runs_them():
    for module in LESSONS + ENGINE + BELOW + TOOLS + ABOVE:
        if module not in ("cli", "__main__"):
            assert not helpers_imports(module) & set(TOOLS), f"{module} imports {helpers_imports(module) & set(TOOLS)}"


def test_no_name_is_both_a_module_and_a_function():
    modules = {path.stem for path in HELPERS.glob("*.py")}
    clashes = []
    for module in modules - {"__init__", "__main__"}:
        source = (HELPERS / f"{module}.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        clashes += [f"helpers.{module}.{name}" for name in names & modules]
    assert not clashes
    assert inspect.isfunction(helpers.train) and inspect.isfunction(helpers.generate)  # not shadowed by a module


def test_every_exported_cell_is_a_sitting_long():
    """Taught code comes one idea per cell, at about 40 lines; no exported cell passes 60 (DESIGN.md)."""
    too_long = []
    for path in notebooks.lesson_notebooks():
        for source in notebooks._code_cells(notebooks._read(path)):
            lines = source.rstrip("\n").split("\n")
            if lines[0].strip() == notebooks.EXPORT_MARK and len(lines) > 60:
                too_long.append(f"{path.name}: a cell of {len(lines)} lines starting {lines[1][:50]!r}")
    assert not too_long
