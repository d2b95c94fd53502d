"""The pure core imports no I/O library and nothing of ours from outside the core."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
ALLOWED_TOP_LEVEL = {"__future__", "abc", "bisect", "collections", "dataclasses", "datetime", "decimal", "enum",
                     "functools", "hashlib", "heapq", "hmac", "itertools", "json", "math", "operator", "random",
                     "statistics", "tomllib", "typing", "pydantic", "core", "ctypes", "re"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_the_standard_library_and_pydantic() -> None:
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        extra = imported_modules(path) - ALLOWED_TOP_LEVEL
        if extra:
            offenders[str(path.relative_to(CORE))] = sorted(extra)
    assert offenders == {}, f"core modules import outside the pure core: {offenders}"
    assert len(list(CORE.rglob("*.py"))) > 10  # the walk really saw the core
