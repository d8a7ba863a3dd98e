"""The deployment files: docker-compose.yml, Dockerfile, deploy/nginx.conf,
deploy/prometheus.yml, .env.example.

Plain checks on the files themselves; no Docker, no database.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
PROMETHEUS_CONF = ROOT / "deploy" / "prometheus.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS_SOURCES = [ROOT / "chatproject" / "settings.py", ROOT / "chatproject" / "env.py"]

# env_str("NAME", ...), env_bool(...), env_int(...), env_list(...), os.environ.get("NAME"),
# os.getenv("NAME") and dj_database_url.config(env="NAME", ...).
_ENV_READ_PATTERNS = [
    re.compile(r"""\benv_\w+\(\s*["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""\bos\.(?:environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""),
    re.compile(r"""\bos\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""),
    re.compile(r"""\benv\s*=\s*["']([A-Z][A-Z0-9_]*)["']"""),
]
# NAME=value, also commented out ("# NAME=value") for settings whose default is "unset".
_ENV_EXAMPLE_NAME = re.compile(r"^\s*(?:#\s*)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


@functools.cache
def _compose() -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load(COMPOSE.read_text(encoding="utf-8"))


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def _command_text(command: str | list[str] | None) -> str:
    if command is None:
        return ""
    return command if isinstance(command, str) else " ".join(command)


def _runs_daphne(service: dict[str, Any]) -> bool:
    """True when the service's command, or else its image's CMD, starts daphne."""
    if "command" in service:
        return "daphne" in _command_text(service["command"])
    if "build" not in service:
        return False
    cmds = [args for keyword, args in _dockerfile_instructions() if keyword == "CMD"]
    return bool(cmds) and "daphne" in cmds[-1]


def _web_service_names() -> list[str]:
    return sorted(name for name, service in _services().items() if _runs_daphne(service))


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """depends_on in its long form, whichever form the file uses."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def _nginx_upstream_servers() -> set[str]:
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text(encoding="utf-8"))
    servers: set[str] = set()
    for block in re.findall(r"\bupstream\s+\S+\s*\{(.*?)\}", text, re.DOTALL):
        servers.update(re.findall(r"^\s*server\s+([\w.-]+)(?::\d+)?", block, re.MULTILINE))
    return servers


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for source in SETTINGS_SOURCES:
        text = source.read_text(encoding="utf-8")
        for pattern in _ENV_READ_PATTERNS:
            names.update(pattern.findall(text))
    return names


def _env_example_names() -> set[str]:
    return set(_ENV_EXAMPLE_NAME.findall(ENV_EXAMPLE.read_text(encoding="utf-8")))


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_file_validates_against_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_no_version_key() -> None:
    assert "version" not in _compose()


def test_compose_has_no_links() -> None:
    assert [name for name, service in _services().items() if "links" in service] == []


def test_every_depends_on_target_is_a_defined_service() -> None:
    undefined = {
        (name, target)
        for name, service in _services().items()
        for target in _depends_on(service)
        if target not in _services()
    }
    assert undefined == set()


def test_at_least_two_services_run_daphne() -> None:
    assert len(_web_service_names()) >= 2


@pytest.mark.parametrize("name", [*_web_service_names(), "redis", "postgres", "prometheus"])
def test_service_has_healthcheck(name: str) -> None:
    healthcheck = _services()[name].get("healthcheck") or {}
    assert healthcheck.get("test")
    assert not healthcheck.get("disable")


@pytest.mark.parametrize("name", _web_service_names())
def test_web_service_waits_for_healthy_redis_and_postgres(name: str) -> None:
    deps = _depends_on(_services()[name])
    assert deps.get("redis", {}).get("condition") == "service_healthy"
    assert deps.get("postgres", {}).get("condition") == "service_healthy"


@pytest.mark.parametrize("name", _web_service_names())
def test_web_service_starts_after_migrations_complete(name: str) -> None:
    migrators = {
        target
        for target, dep in _depends_on(_services()[name]).items()
        if dep.get("condition") == "service_completed_successfully"
        and "migrate" in _command_text(_services().get(target, {}).get("command"))
    }
    assert migrators


def test_web_services_publish_no_ports() -> None:
    published = [name for name in _web_service_names() if _services()[name].get("ports")]
    assert published == []


def test_nginx_waits_for_healthy_web_services() -> None:
    deps = _depends_on(_services()["nginx"])
    assert {name: deps.get(name, {}).get("condition") for name in _web_service_names()} == {
        name: "service_healthy" for name in _web_service_names()
    }


# --- deploy/nginx.conf ---------------------------------------------------------------------


def test_nginx_upstream_lists_every_web_service() -> None:
    assert set(_web_service_names()) <= _nginx_upstream_servers()


def test_nginx_forwards_websocket_upgrades() -> None:
    text = NGINX_CONF.read_text(encoding="utf-8")
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", text)
    assert re.search(r"proxy_http_version\s+1\.1;", text)
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", text)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", text)


def test_nginx_does_not_proxy_metrics() -> None:
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text(encoding="utf-8"))
    assert re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+40[34];\s*\}", text)


# --- deploy/prometheus.yml -----------------------------------------------------------------


@functools.cache
def _prometheus() -> dict[str, Any]:
    config: dict[str, Any] = YAML(typ="safe", pure=True).load(
        PROMETHEUS_CONF.read_text(encoding="utf-8")
    )
    return config


def _chat_job() -> dict[str, Any]:
    jobs: list[dict[str, Any]] = [
        job for job in _prometheus()["scrape_configs"] if job["job_name"] == "chat"
    ]
    assert len(jobs) == 1
    return jobs[0]


def _scrape_targets() -> set[str]:
    return {target for static in _chat_job()["static_configs"] for target in static["targets"]}


def test_prometheus_scrapes_every_web_service_directly() -> None:
    assert _scrape_targets() == {f"{name}:8000" for name in _web_service_names()}
    assert _chat_job().get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_service_mounts_the_scrape_config() -> None:
    volumes = _services()["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "--config.file=/etc/prometheus/prometheus.yml" in _services()["prometheus"]["command"]


def test_prometheus_scrapes_with_the_workers_metrics_token() -> None:
    auth = _chat_job()["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    secret = auth["credentials_file"].removeprefix("/run/secrets/")
    assert secret in _services()["prometheus"]["secrets"]
    assert _compose()["secrets"][secret] == {"environment": "CHAT_METRICS_TOKEN"}
    for name in _web_service_names():
        assert "CHAT_METRICS_TOKEN" in _services()[name]["environment"]


def test_scraped_worker_names_are_allowed_hosts() -> None:
    for name in _web_service_names():
        raw = _services()[name]["environment"]["DJANGO_ALLOWED_HOSTS"]
        hosts = set(re.sub(r"\$\{[^}]*\}", "", raw).split(","))
        assert {target.split(":")[0] for target in _scrape_targets()} <= hosts


def test_prometheus_is_published_on_loopback_only() -> None:
    ports = _services()["prometheus"].get("ports", [])
    assert ports
    assert all(str(port).startswith("127.0.0.1:") for port in ports)


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_runs_no_migrations_at_build() -> None:
    runs = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN"]
    assert runs
    assert [args for args in runs if "migrate" in args] == []


def test_dockerfile_runs_as_non_root_user() -> None:
    users = [args for keyword, args in _dockerfile_instructions() if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


# --- .env.example --------------------------------------------------------------------------


def test_settings_scan_finds_the_variables_settings_read() -> None:
    # Guards the next test against passing on an empty scan.
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CHAT_MAX_BODY"} <= (
        _settings_env_names()
    )


def test_env_example_names_every_variable_settings_read() -> None:
    assert _settings_env_names() - _env_example_names() == set()


def test_env_example_leaves_secret_key_empty() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"^DJANGO_SECRET_KEY=\s*$", text, re.MULTILINE)
