"""Production settings: the secret is required and `check --deploy` is clean or justified."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "x9" * 30 + "-Production-Looking-Key-With-Variety-1234567890"


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CHAT_"))}
    base.pop("REDIS_URL", None)
    base["DJANGO_SETTINGS_MODULE"] = "chatproject.settings"
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_app_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = run_manage("check", DJANGO_DEBUG="false", DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_mode_starts_without_a_secret_key():
    result = run_manage("check", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_check_deploy_reports_only_what_the_readme_justifies():
    result = run_manage("check", "--deploy", DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY)
    reported = set(re.findall(r"\((\w+\.\w+)\)", result.stdout + result.stderr))
    readme = (ROOT / "README.md").read_text()
    unjustified = {check for check in reported if check not in readme}
    assert not unjustified, f"check --deploy reports {unjustified}, not explained in README"


def test_check_deploy_is_clean_with_tls_settings_on():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_SSL_REDIRECT="true",
        DJANGO_SECURE_COOKIES="true",
        DJANGO_HSTS_SECONDS="31536000",
        DJANGO_HSTS_INCLUDE_SUBDOMAINS="true",
        DJANGO_HSTS_PRELOAD="true",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _database_options(**env: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; from django.conf import settings; django.setup(); "
            "print(settings.DATABASES['default'].get('OPTIONS', {}).get('pool'))",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
            "DJANGO_SETTINGS_MODULE": "chatproject.settings",
            "DJANGO_DEBUG": "true",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_uses_the_connection_pool_by_default():
    pool = _database_options(DATABASE_URL="postgres://u@127.0.0.1:5432/chat")
    assert pool.startswith("{")


def test_persistent_connections_switch_the_pool_off():
    # Django refuses pooling together with CONN_MAX_AGE: the latter wins.
    pool = _database_options(
        DATABASE_URL="postgres://u@127.0.0.1:5432/chat", DATABASE_CONN_MAX_AGE="60"
    )
    assert pool == "None"


def test_an_unknown_log_format_is_refused():
    result = run_manage("check", DJANGO_DEBUG="true", DJANGO_LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "DJANGO_LOG_FORMAT must be 'text' or 'json'" in result.stderr


# The in-memory layer's warning comes from building the ASGI application (a serving process),
# not from every manage.py command.
SERVE = ("shell", "-c", "import chatproject.asgi")


def test_json_log_format_writes_every_line_as_json():
    result = run_manage(*SERVE, DJANGO_DEBUG="true", DJANGO_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    warning = next(line for line in lines if "in-memory channel layer" in line["message"])
    assert (warning["level"], warning["logger"]) == ("WARNING", "chatproject")


def test_text_log_format_is_the_default():
    result = run_manage(*SERVE, DJANGO_DEBUG="true")
    assert "WARNING chatproject REDIS_URL is not set" in result.stderr


def test_a_management_command_does_not_warn_about_the_layer():
    result = run_manage("check", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "REDIS_URL is not set" not in result.stderr
