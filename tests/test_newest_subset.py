"""tests/newest.txt (the subset CI runs on Python 3.12 with the newest JAX) stays in sync with the suite:
every entry exists, every algorithm family and every oracle test file is covered, and CI runs it."""
import ast
import re
from pathlib import Path

from jaxrl import agents

ROOT = Path(__file__).resolve().parent.parent
ALSO_COVERED = {"oracles", "envpool", "resume", "sharding", "multihost", "platform"}


def _entries():
    """[(file, test name or None, {tags})] from tests/newest.txt."""
    out = []
    for line in (ROOT / "tests" / "newest.txt").read_text().splitlines():
        entry, _, comment = line.partition("#")
        if entry.strip():
            path, _, name = entry.strip().partition("::")
            out.append((path, name or None, {t.strip() for t in comment.split(",") if t.strip()}))
    return out


def _test_functions(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_entry_names_an_existing_test_file_or_test():
    entries = _entries()
    assert len(entries) >= 10
    for path, name, tags in entries:
        f = ROOT / path
        assert re.fullmatch(r"tests/test_\w+\.py", path) and f.is_file(), f"tests/newest.txt: no such test file {path}"
        assert name is None or name.split("[")[0] in _test_functions(f), f"tests/newest.txt: {path} has no test {name}"
        assert tags, f"tests/newest.txt: say what {path}::{name} covers after a '#'"


def _slow_tests(path: Path) -> set:
    """The test functions of ``path`` decorated with ``@pytest.mark.slow`` (CI's ``-m "not slow"`` leaves them out)."""
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and any(ast.unparse(d) == "pytest.mark.slow" for d in n.decorator_list)}


def test_no_entry_names_a_slow_test():
    """An entry CI would deselect covers nothing: the learning test of each family must be one `make test` runs."""
    for path, name, _ in _entries():
        if name is not None:
            assert name.split("[")[0] not in _slow_tests(ROOT / path), \
                f"tests/newest.txt: {path}::{name} is marked slow, so CI never runs it; list a fast test"


def test_every_algorithm_family_and_area_is_covered():
    tags = set().union(*(t for _, _, t in _entries()))
    families = {agents.get(name)[0].__name__.rsplit(".", 1)[-1] for name in agents.algorithms()}
    assert "ppo" in families and "dqn" in families
    missing = (families | ALSO_COVERED) - tags
    assert not missing, f"tests/newest.txt covers no test of {sorted(missing)}: add one (a learning test per family)"


def test_every_oracle_test_file_is_listed_whole():
    whole = {path for path, name, _ in _entries() if name is None}
    oracles = {f"tests/{f.name}" for f in (ROOT / "tests").glob("test_*.py")
               if re.search(r"^\s*(import|from)\s+(rlax|distrax)\b", f.read_text(), re.M)}
    assert oracles and oracles <= whole, f"oracle test files missing from tests/newest.txt: {sorted(oracles - whole)}"


def test_ci_runs_the_full_suite_then_the_subset():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test\n") < ci.index("make test-newest")
    makefile = (ROOT / "Makefile").read_text()
    assert "tests/newest.txt" in makefile and "constraints-py312.txt" in makefile
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M), "README's test command is what CI runs"
