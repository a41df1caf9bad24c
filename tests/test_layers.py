"""The layers hold (README, "Layout"): import-linter's contracts, and no private names across packages."""
import ast
from pathlib import Path

import pytest

from .conftest import run_subprocess

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    """`lint-imports` with the repository's contracts; in a process of its own, since import-linter
    configures logging (disabling the loggers that exist) as it starts."""
    pytest.importorskip("importlinter")
    script = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    proc = run_subprocess("-c", script, "--config", REPO / ".importlinter", "--no-cache", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


def _package_of(module: str) -> str:
    """segkit.data.build -> segkit.data; a top-level module (segkit.metrics) is its own package."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path, repo: Path) -> str:
    rel = path.relative_to(repo).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports_across_packages(repo: Path = REPO):
    """(importing module, imported module, name) for every ``from X import _name`` whose X lies in
    another segkit package than the importer."""
    found = []
    for path in sorted((repo / "segkit").rglob("*.py")):
        module = _module_name(path, repo)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(module, path.name == "__init__.py", node)
            if not source.startswith("segkit"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and _package_of(source) != _package_of(module):
                    found.append((module, source, alias.name))
    return found


def test_no_private_names_imported_across_packages():
    assert private_imports_across_packages() == []


def test_the_private_name_check_sees_a_violation(tmp_path):
    """The scan above would catch one: a module of segkit.engine importing data's private helper
    (a private name from its own package is fine)."""
    (tmp_path / "segkit" / "engine").mkdir(parents=True)
    (tmp_path / "segkit" / "engine" / "x.py").write_text("from ..data.build import _accepts\nfrom .y import _ok\n")
    assert private_imports_across_packages(tmp_path) == [("segkit.engine.x", "segkit.data.build", "_accepts")]
