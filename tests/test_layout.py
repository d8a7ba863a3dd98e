"""The test suite's own layout: shared code lives in tests/support, not in test modules."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _package(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).parts[:-1])


def _imports(source: str, package: str) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in `source`, relative ones made absolute."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((module, [alias.name for alias in node.names]))
    return found


def _is_test_module(module: str) -> bool:
    return module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")


def _offences(source: str, package: str = "tests") -> list[str]:
    offences = []
    for module, names in _imports(source, package):
        if _is_test_module(module) or any(
            _is_test_module(f"{module}.{name}") for name in names if module.startswith("tests")
        ):
            offences.append(f"imports test module {module} {names or ''}".rstrip())
        if module.endswith("conftest"):
            # Fixtures reach tests by name; anything else shared belongs in tests/support.
            offences.append(f"imports from {module} {names}")
    return offences


def test_no_test_module_imports_another_test_module_or_a_conftest():
    offences = {
        str(path.relative_to(TESTS.parent)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := _offences(path.read_text(), _package(path)))
    }
    assert offences == {}, "move shared code into tests/support: " + repr(offences)


def test_the_layout_check_catches_imports_of_test_modules_and_conftests():
    source = (
        "from tests.test_presence_live import nicks\n"
        "from tests import test_consumers\n"
        "from .test_views import stored\n"
        "from tests.conftest import _missing\n"
        "from tests.support.client import ChatClient\n"
        "from tests.conftest import REDIS_PREFIX\n"
        "from tests.browser.conftest import Frame\n"
    )
    assert len(_offences(source, "tests.browser")) == 6


# Names that a module may define again on purpose: the server under test, configured for that
# module (e.g. a lower resume cap), in place of the shared one.
PER_MODULE_SERVERS = {"server", "worker"}


def _fixtures(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
        ):
            names.append(node.name)
    return names


def test_each_fixture_is_defined_once() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for name in _fixtures(path):
            where.setdefault(name, []).append(str(path.relative_to(TESTS)))
    again = {
        name: paths
        for name, paths in where.items()
        if len(paths) > 1 and name not in PER_MODULE_SERVERS
    }
    assert again == {}
