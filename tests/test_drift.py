"""Drift: what the README, .env.example, the Makefile and requirements say against the code.

Each check reads the files themselves (or imports the settings in a child process), so a
change on one side without its counterpart fails here.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chat import protocol
from tests.support import readme

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "chatproject" / "settings.py"
MAKEFILE = ROOT / "Makefile"
REQUIREMENTS = ROOT / "requirements.txt"
SOURCE_DIRS = ("chat", "chatproject")

# Names .env.example may list that Django does not read: docker compose's, and the
# variables `createsuperuser --noinput` reads.
NOT_SETTINGS = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "HTTP_PORT",
    "PROMETHEUS_PORT",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_EMAIL",
    "DJANGO_SUPERUSER_PASSWORD",
}
# Other variables the README may name: Django's, the tests', the browser run's.
OTHER_VARIABLES = NOT_SETTINGS | {
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "CI",
    "TEST_REDIS_URL",
}

# Records every (variable, default) the settings pass to chatproject.env's helpers and to
# dj_database_url.config, whatever the environment holds, then prints them as JSON.
_SPY = """
import json
import chatproject.env as env
import dj_database_url

seen = {}

def spy(helper):
    def read(name, *, default):
        seen[name] = default
        return helper(name, default=default)
    return read

for _name in ("env_str", "env_bool", "env_int", "env_list"):
    setattr(env, _name, spy(getattr(env, _name)))
_config = dj_database_url.config

def config(*, env="DATABASE_URL", default=None, **kwargs):
    seen[env] = default
    return _config(env=env, default=default, **kwargs)

dj_database_url.config = config
import chatproject.settings
print(json.dumps(seen))
"""
# Environments that between them take every branch of the settings: SQLite without Redis,
# PostgreSQL with Redis (nothing connects at import).
_BRANCHES = [
    {},
    {
        "DATABASE_URL": "postgres://chat@127.0.0.1:1/chat",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    },
]

# env_str("NAME", ...) and the like, os.environ reads, and dj_database_url's env="NAME".
_ENV_READ = re.compile(
    r"""(?:\benv_\w+\(\s*|\bos\.(?:environ\.get|getenv)\(\s*|\bos\.environ\[\s*|\benv\s*=\s*)"""
    r"""["']([A-Z][A-Z0-9_]*)["']"""
)
_ENV_LINE = re.compile(r"^\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def _normalize(value: Any) -> str:
    """A default as the README and .env.example spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    if value is None:
        return ""
    text = str(value)
    # The SQLite default is an absolute path: the docs spell it relative to the project.
    return text.replace(f"sqlite:///{ROOT}/", "sqlite:///")


@functools.cache
def settings_defaults() -> dict[str, str]:
    """Every variable the settings read through the helpers, with its default."""
    found: dict[str, str] = {}
    for branch in _BRANCHES:
        done = subprocess.run(
            [sys.executable, "-c", _SPY],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "drift-test", **branch},
        )
        assert done.returncode == 0, done.stderr
        found.update({name: _normalize(value) for name, value in json.loads(done.stdout).items()})
    return found


def settings_reads() -> set[str]:
    """Every variable chatproject/settings.py names in a read, found in its text."""
    return set(_ENV_READ.findall(SETTINGS.read_text(encoding="utf-8")))


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose first header cell is `header`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"README has no table headed {header!r}")


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def readme_defaults() -> dict[str, str]:
    """The configuration table: variable -> default, as written."""
    found: dict[str, str] = {}
    for names_cell, default_cell, *_ in _table_rows(README.read_text(encoding="utf-8"), "variable"):
        names = _ticked(names_cell)
        defaults = _ticked(default_cell) or [default_cell]
        if len(defaults) == 1:
            defaults = defaults * len(names)
        assert len(defaults) == len(names), f"README row {names}: {len(defaults)} defaults"
        found.update(zip(names, defaults, strict=True))
    return found


def env_example_values() -> dict[str, str]:
    """.env.example: variable -> value; a commented-out line only when no active one."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match:
            (commented if match.group(1) else active)[match.group(2)] = match.group(3).strip()
    return {**commented, **active}


def _same_default(written: str, actual: str) -> bool:
    """ "none"/"empty" stand for an empty default, "off" for false or 0, "on" for true."""
    spelled = {"none": "", "empty": "", "on": "true"}.get(written, written)
    if spelled == "off":
        return actual in ("false", "0")
    return spelled == actual


# --- settings, README table, .env.example ------------------------------------------------


def test_the_spy_sees_every_variable_the_settings_read() -> None:
    # A read past chatproject.env (os.environ) or in a branch no environment above takes
    # would be missing here.
    assert settings_reads() - settings_defaults().keys() == set()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "SQLITE_TIMEOUT", "REDIS_SOCKET_TIMEOUT"} <= (
        settings_defaults().keys()
    )


def test_settings_read_the_environment_only_through_the_helper() -> None:
    text = SETTINGS.read_text(encoding="utf-8")
    assert not re.search(r"\bos\.(environ|getenv)\b", text)


def test_readme_table_lists_every_variable_the_settings_read() -> None:
    assert settings_defaults().keys() - readme_defaults().keys() == set()


def test_readme_table_lists_no_variable_the_settings_do_not_read() -> None:
    assert readme_defaults().keys() - settings_defaults().keys() == set()


def test_readme_table_defaults_are_the_settings_defaults() -> None:
    actual = settings_defaults()
    wrong = {
        name: (written, actual[name])
        for name, written in readme_defaults().items()
        if name in actual and not _same_default(written, actual[name])
    }
    assert wrong == {}


def test_env_example_lists_every_variable_the_settings_read() -> None:
    assert settings_defaults().keys() - env_example_values().keys() == set()


def test_env_example_lists_nothing_else_but_compose_and_createsuperuser() -> None:
    assert env_example_values().keys() - settings_defaults().keys() - NOT_SETTINGS == set()


def test_env_example_values_are_the_settings_defaults() -> None:
    actual = settings_defaults()
    wrong = {
        name: (value, actual[name])
        for name, value in env_example_values().items()
        if name in actual and value != actual[name]
    }
    assert wrong == {}


# --- the wire protocol ---------------------------------------------------------------------


def _protocol_constants(kind: type) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(protocol).items()
        if name.isupper() and type(value) is kind
    }


def code_error_codes() -> set[str]:
    """The error codes chat/protocol.py defines (its upper-case string constants)."""
    return set(_protocol_constants(str).values())


def code_close_codes() -> set[int]:
    return {v for k, v in _protocol_constants(int).items() if k.startswith("CLOSE_")}


def test_protocol_scan_finds_codes() -> None:
    assert {"invalid_json", "rate_limited"} <= code_error_codes()
    assert {4008, 1012} <= code_close_codes()


def test_readme_lists_exactly_the_error_codes_of_the_protocol() -> None:
    documented = {_ticked(row[0])[0] for row in _table_rows(README.read_text(), "error code")}
    assert documented == code_error_codes()


def test_readme_lists_exactly_the_close_codes_of_the_protocol() -> None:
    documented = {int(_ticked(row[0])[0]) for row in _table_rows(README.read_text(), "close code")}
    assert documented == code_close_codes()


# --- commands, names and paths the README gives ----------------------------------------------


def makefile_targets() -> set[str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*):(?!=)", text, re.MULTILINE))


def test_every_make_target_the_readme_names_exists() -> None:
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README.read_text(encoding="utf-8")))
    assert named
    assert named - makefile_targets() == set()


def test_every_phony_target_is_defined() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert phony
    assert set(phony.group(1).split()) - makefile_targets() == set()


@pytest.mark.parametrize(
    "doc", ["README.md", "docs/performance.md", "docs/scaling.md", "Dockerfile", ".env.example"]
)
def test_every_variable_a_doc_names_is_read_somewhere(doc: str) -> None:
    named = set(
        re.findall(
            r"\b((?:DJANGO|CHAT|REDIS|DATABASE|SQLITE)_[A-Z0-9_]+)\b",
            (ROOT / doc).read_text(encoding="utf-8"),
        )
    )
    assert named - settings_defaults().keys() - OTHER_VARIABLES == set()


def _named_paths(text: str) -> set[str]:
    """Backticked repository paths: a known top-level folder or file of ours."""
    tops = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} | {
        ".env.example",
        ".python-version",
    }
    paths = set()
    for token in _ticked(text):
        candidate = token.split()[0] if token else ""
        first = candidate.split("/")[0]
        if first in tops and ("/" in candidate or "." in candidate) and "*" not in candidate:
            paths.add(candidate.rstrip(",.:"))
    return paths


def test_every_path_the_readme_names_exists() -> None:
    paths = _named_paths(README.read_text(encoding="utf-8"))
    assert "deploy/nginx.conf" in paths
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


@pytest.mark.parametrize("doc", ["docs/performance.md", "docs/scaling.md", ".env.example"])
def test_every_path_a_doc_names_exists(doc: str) -> None:
    # Benchmark results are named as examples of the output; they are gitignored.
    paths = {
        p
        for p in _named_paths((ROOT / doc).read_text(encoding="utf-8"))
        if not p.startswith("benchmarks/results/")
    }
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


@pytest.mark.parametrize("folder", ["chat", "chatproject", "tests", "benchmarks", "docs"])
def test_no_file_cites_a_markdown_file_that_is_not_there(folder: str) -> None:
    missing = set()
    for path in (ROOT / folder).rglob("*"):
        if path.suffix not in (".py", ".md") or "migrations" in path.parts:
            continue
        for cited in re.findall(r"\b([\w/-]+\.md)\b", path.read_text(encoding="utf-8")):
            if not (ROOT / cited).exists() and not (path.parent / cited).exists():
                missing.add(f"{path.relative_to(ROOT)}: {cited}")
    assert missing == set()


def test_the_readme_layout_names_every_module_of_the_app() -> None:
    layout = README.read_text(encoding="utf-8").split("## Layout", 1)[1]
    modules = {p.name for p in (ROOT / "chat").glob("*.py") if p.name != "__init__.py"}
    assert sorted(m for m in modules if f"`{m}`" not in layout) == []


# --- requirements and loggers ----------------------------------------------------------------


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(SOURCE_DIRS)


def _pinned() -> set[str]:
    return {
        re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].strip().lower().replace("_", "-")
        for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }


def test_every_package_the_code_imports_is_pinned_in_requirements() -> None:
    distributions = importlib.metadata.packages_distributions()
    undeclared = {
        module: distributions.get(module, ["?"])
        for module in _imported_top_levels()
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & _pinned()
    }
    assert undeclared == {}


# Runtime pins that the code does not import by name, and why they are runtime all the same.
USED_WITHOUT_IMPORT = {
    "servestatic": "named in INSTALLED_APPS and MIDDLEWARE",
    "psycopg": "Django's PostgreSQL backend loads it",
    "psycopg-pool": "Django's connection pool (DATABASE_POOL) loads it",
    "uvicorn": "the optional ASGI server (README, 'Other ASGI servers')",
    "websockets": "uvicorn's WebSocket implementation (--ws websockets-sansio)",
    "python-json-logger": "LOGGING names its formatter (DJANGO_LOG_FORMAT=json)",
    "brotli": "servestatic compresses static files with it at collectstatic",
}


def test_every_runtime_pin_is_used() -> None:
    distributions = importlib.metadata.packages_distributions()
    imported = {
        d.lower().replace("_", "-")
        for module in _imported_top_levels()
        for d in distributions.get(module, [])
    }
    assert _pinned() - imported - USED_WITHOUT_IMPORT.keys() == set()


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT).as_posix() for d in SOURCE_DIRS for p in (ROOT / d).glob("*.py")),
)
def test_a_module_logger_is_used(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    match = re.search(r"^(\w+) = logging\.getLogger\(", text, re.MULTILINE)
    if match:
        assert re.search(rf"\b{match.group(1)}\.\w+\(", text), f"{path}: unused logger"


# --- the two nginx configurations ------------------------------------------------------------


def _proxy_directives(path: Path) -> list[str]:
    text = re.sub(r"#[^\n]*", "", path.read_text(encoding="utf-8"))
    return sorted(
        " ".join(line.split())
        for line in text.splitlines()
        if line.strip().startswith(("proxy_", "map ", "least_conn", "keepalive"))
        and not line.strip().startswith("proxy_temp_path")
    )


def test_the_local_nginx_proxies_as_the_docker_one() -> None:
    assert _proxy_directives(ROOT / "deploy" / "nginx.local.conf") == _proxy_directives(
        ROOT / "deploy" / "nginx.conf"
    )


# --- the README's command blocks ---------------------------------------------------------------


def test_every_readme_command_starts_with_a_program_we_have_or_document() -> None:
    venv_bin = Path(sys.executable).parent
    unknown = []
    for words in readme.commands():
        program = words[0]
        if program.startswith(".venv/bin/"):
            if not (venv_bin / program.removeprefix(".venv/bin/")).exists():
                unknown.append(words)
        elif program not in {"make", "cp", "docker"}:
            unknown.append(words)
    assert unknown == []


def test_every_file_a_readme_command_names_exists() -> None:
    tops = {p.name for p in ROOT.iterdir()}
    named = {
        word
        for words in readme.commands()
        for word in words[1:]
        if word.split("/")[0] in tops and not word.startswith("-")
    }
    assert "examples/client.py" in named
    assert sorted(w for w in named if not (ROOT / w).exists()) == []


def test_the_readmes_uvicorn_command_is_the_tested_one() -> None:
    from tests.support.servers import Uvicorn

    documented = readme.command("/uvicorn")
    tested = Uvicorn(env={}, name="drift").command()
    assert documented[1:] == [
        "chatproject.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
        *tested[5:-1],
    ]
    assert tested[1:5] == ["--host", "127.0.0.1", "--port", tested[4]]
