"""Start and stop the servers under test: the baselines and the product (daphne or uvicorn).

Every process is started in a session of its own and stopped by its process group, also
on error. Databases (an SQLite file in a temporary folder, and a PostgreSQL database of this
run's own when PostgreSQL answers) are migrated once per run and dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration under test."""

    name: str
    kind: str  # "bare", "broadcast", "daphne", "uvicorn"
    procs: int = 1
    db: str | None = None  # "sqlite" or "pg" for the product
    env: tuple[tuple[str, str], ...] = ()
    # The product's channel layer: "broadcast" (its own), or channels-redis's "pubsub" or
    # "core" for comparison (benchmarks/settings_layers.py; the product offers only its own).
    layer: str = "broadcast"

    @property
    def is_product(self) -> bool:
        return self.kind in ("daphne", "uvicorn")


@dataclass
class Running:
    """The processes of one started server configuration."""

    spec: ServerSpec
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    redis_prefix: str | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of every server process (all threads)."""
        return sum(proc_cpu_seconds(pid) for pid in self.pids)

    def rss_bytes(self) -> int:
        """Resident memory of every server process."""
        return sum(proc_rss_bytes(pid) for pid in self.pids)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def log_tail(self, chars: int = 2000) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
            for log in self.logs
            if log.exists()
        )


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime from /proc/<pid>/stat (0 if the process is gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    """VmRSS from /proc/<pid>/status (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Databases:
    """The product's databases for one run: SQLite always, PostgreSQL when reachable."""

    def __init__(self, *, workdir: Path, pg_admin_url: str | None) -> None:
        self.workdir = workdir
        self.pg_admin_url = pg_admin_url
        self.sqlite_path = workdir / "bench.sqlite3"
        self.pg_name = f"bench_{os.getpid()}"
        self.urls: dict[str, str] = {}

    def setup(self, kinds: set[str]) -> None:
        """Create and migrate the databases the run needs."""
        if "sqlite" in kinds:
            self.urls["sqlite"] = f"sqlite:///{self.sqlite_path}"
            migrate(self.urls["sqlite"])
        if "pg" in kinds:
            if not self.pg_admin_url:
                raise RuntimeError("PostgreSQL is not configured")
            import psycopg

            with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}"')
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            base = self.pg_admin_url.rsplit("/", 1)[0]
            self.urls["pg"] = f"{base}/{self.pg_name}"
            migrate(self.urls["pg"])

    def teardown(self) -> None:
        """Drop the PostgreSQL database (the SQLite file goes with the work folder)."""
        if "pg" in self.urls and self.pg_admin_url:
            import psycopg

            with (
                contextlib.suppress(Exception),
                psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=3) as conn,
            ):
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def pg_reachable(url: str) -> bool:
    """True when PostgreSQL answers at `url`."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:
        return False


def product_env(
    *, db_url: str, redis_url: str, prefix: str, extra: dict[str, str], layer: str = "broadcast"
) -> dict:
    """The environment of a product process: production settings, limits off for load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DJANGO_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="chatproject.settings",
        DJANGO_SECRET_KEY="benchmark-only-not-a-secret",  # noqa: S106 (a throwaway server)
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        CHAT_REDIS_PREFIX=prefix,
        CHAT_RATE="0",
        CHAT_MAX_SOCKETS_PER_IP="0",
        CHAT_SHUTDOWN_GRACE="1",
        PYTHONUNBUFFERED="1",
    )
    if layer != "broadcast":
        env.update(DJANGO_SETTINGS_MODULE="benchmarks.settings_layers", BENCH_CHAT_LAYER=layer)
    env.update(extra)
    return env


def migrate(db_url: str) -> None:
    """`manage.py migrate` against `db_url` (bounded)."""
    env = product_env(db_url=db_url, redis_url="", prefix="bench-migrate", extra={})
    env.pop("REDIS_URL")
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


def _command(spec: ServerSpec, port: int) -> list[str]:
    if spec.kind in ("bare", "broadcast"):
        return [
            sys.executable,
            "-m",
            "benchmarks.baselines",
            "--mode",
            spec.kind,
            "--port",
            str(port),
        ]
    if spec.kind == "daphne":
        return [str(BIN / "daphne"), "-b", HOST, "-p", str(port), "chatproject.asgi:application"]
    if spec.kind == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
            "chatproject.asgi:application",
        ]
    raise ValueError(spec.kind)


def _ready(spec: ServerSpec, port: int) -> bool:
    if spec.is_product:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def start(
    spec: ServerSpec,
    *,
    logdir: Path,
    db_urls: dict[str, str],
    redis_url: str,
    prefix: str,
    timeout: float = 40,
) -> Running:
    """Start every process of `spec` and wait until each answers (stops them on failure)."""
    running = Running(spec=spec, redis_prefix=prefix if spec.is_product else None)
    try:
        for i in range(spec.procs):
            port = free_port()
            log = logdir / f"{spec.kind}-{i}-{port}.log"
            env = (
                product_env(
                    db_url=db_urls[spec.db or "sqlite"],
                    redis_url=redis_url,
                    prefix=prefix,
                    extra=dict(spec.env),
                    layer=spec.layer,
                )
                if spec.is_product
                else {**os.environ, **dict(spec.env)}
            )
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    _command(spec, port),
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            running.procs.append(proc)
            running.ports.append(port)
            running.logs.append(log)
        deadline = time.monotonic() + timeout
        for port, proc in zip(running.ports, running.procs, strict=True):
            while not _ready(spec, port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{spec.name} did not start:\n{running.log_tail()}")
                time.sleep(0.1)
    except BaseException:
        stop(running)
        raise
    return running


def stop(running: Running, *, grace: float = 5) -> None:
    """SIGTERM every process group, SIGKILL after `grace` seconds; clear Redis keys."""
    for proc in running.procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running.procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def metric_sum(running: Running, name: str, **labels: str) -> float | None:
    """One sample of chat.metrics summed over the product's processes (their /metrics, from
    127.0.0.1, which CHAT_METRICS_ALLOW lets in); None when a process serves no metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for port in running.ports:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except (OSError, urllib.error.URLError):
            return None
        total += sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )
    return total


def clear_redis(redis_url: str, prefix: str) -> None:
    """Delete every key of one prefix."""
    import redis

    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


def redis_cpu_seconds(redis_url: str) -> float:
    """used_cpu_user + used_cpu_sys of the Redis server (it is shared: indicative only)."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        info = client.info("cpu")
        client.close()
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except Exception:
        return 0.0


def make_workdir() -> Path:
    """A temporary folder for logs and the SQLite database."""
    return Path(tempfile.mkdtemp(prefix="chat-bench-"))


def remove_workdir(path: Path, *, keep: bool) -> None:
    if not keep:
        shutil.rmtree(path, ignore_errors=True)
