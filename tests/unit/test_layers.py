"""The layers hold (docs/architecture.md): services and adapters under shared/ know nothing of HTTP.

They raise `shared.errors` classes and return plain values; only shared/http/ (the HTTP edge) and the
entry points under functions/ import flask, functions_framework or shared.http. Checked on the source
with `ast`, so an import inside a function body counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FORBIDDEN = ("flask", "functions_framework", "shared.http")

# Modules not yet converted to domain errors (an entry must exist; the list should stay empty).
PENDING_CONVERSION: frozenset[str] = frozenset()


def _pending(relative: str) -> bool:
    return any(
        relative == entry or (entry.endswith("/") and relative.startswith(entry)) for entry in PENDING_CONVERSION
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from shared import http` names the package through its parent
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def layer_violations(root: Path = SHARED) -> list[str]:
    violations = []
    edge = root / "http"
    for path in sorted(root.rglob("*.py")):
        if edge in path.parents:
            continue
        relative = path.relative_to(root.parent).as_posix()
        if _pending(relative):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        violations += [f"{relative}:{line} imports {module}" for line, module in _imports(tree) if _forbidden(module)]
    return violations


@pytest.mark.policy("P20")
def test_no_module_under_shared_outside_the_http_edge_imports_http() -> None:
    assert layer_violations() == []


@pytest.mark.policy("P20")
def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    (root / "http").mkdir(parents=True)
    (root / "http" / "app.py").write_text("import flask\n")
    (root / "svc.py").write_text(
        "from shared.http.problems import Problem\n"
        "def f():\n    import functions_framework\n"
        "from shared import http\n"
        "import flask.json as fj\n"
        "from shared.errors import NotFound\nimport flasklike\n"
    )
    found = layer_violations(root)
    assert sorted(v.split(" imports ")[1] for v in found) == [
        "flask.json",
        "functions_framework",
        "shared.http",
        "shared.http.problems",
        "shared.http.problems.Problem",
    ]


@pytest.mark.policy("P20")
def test_every_pending_entry_still_exists() -> None:
    """An allow-list entry whose module is gone (or renamed) must go too, so the list only shrinks."""
    for entry in PENDING_CONVERSION:
        assert (SHARED.parent / entry).exists(), entry
