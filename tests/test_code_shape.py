"""The shape of the code: no module under ``jaxrl/`` over 350 lines, no function over 80 lines.

A function's length runs from its ``def`` line to its last line (``ast``'s ``lineno`` and
``end_lineno``; decorators not counted); a nested function counts inside its parent, and is
checked on its own too.
"""
import ast
from pathlib import Path

import jaxrl

ROOT = Path(jaxrl.__file__).resolve().parent
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 80


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT.parent))


def test_the_package_is_where_the_tests_look():
    names = {_name(p) for p in _modules()}
    assert "jaxrl/driver/loop.py" in names and "jaxrl/cli.py" in names and len(names) > 30


def test_no_module_over_350_lines():
    long = {_name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _functions(tree):
    """(qualified name, lines) of every function and method, nested ones included."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out.append((name, child.end_lineno - child.lineno + 1, child.lineno))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def test_function_length_is_measured_from_def_to_end():
    src = ("@dec\ndef f(x):\n    def g():\n        return 1\n\n    return g\n\n"
           "class C:\n    def m(self):\n        pass\n")
    assert _functions(ast.parse(src)) == [("f", 5, 2), ("f.g", 2, 3), ("C.m", 2, 9)]


def test_no_function_over_80_lines():
    long = []
    for path in _modules():
        for name, n, line in _functions(ast.parse(path.read_text(), filename=str(path))):
            if n > MAX_FUNCTION_LINES:
                long.append(f"{_name(path)}:{line} {name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(long)
