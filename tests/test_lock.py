"""The lock files agree with the pins they were compiled from (`make lock`).

`requirements*.txt` name the direct dependencies; `requirements*.lock` are what gets installed
(`pip install --require-hashes`). A pin changed without `make lock` would be silently ignored
by every install: these tests fail instead.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    ("requirements.txt", "requirements.lock"),
    ("requirements-dev.txt", "requirements-dev.lock"),
    ("requirements-bench.txt", "requirements-bench.lock"),
]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    """PEP 503: `Twisted`, `twisted` and `psycopg_pool` name the same project as pip sees it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_pins(path: Path) -> dict[str, str]:
    """`name -> version` of a requirements file, following its `-r` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins.update(direct_pins(path.parent / line[3:].strip()))
        elif line:
            match = PIN.match(line)
            assert match, f"{path.name}: {line!r} is not pinned with =="
            pins[normalise(match[1])] = match[3]
    return pins


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """`name -> (version, number of hashes)` of a lock file."""
    entries: dict[str, tuple[str, int]] = {}
    current = ""
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = normalise(match[1])
            entries[current] = (match[3], 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
    return entries


@pytest.mark.parametrize(("pins", "lock"), PAIRS)
def test_every_pin_is_locked_at_its_version(pins: str, lock: str) -> None:
    wanted = direct_pins(ROOT / pins)
    have = locked(ROOT / lock)
    wrong = {
        name: (version, have.get(name, ("missing", 0))[0])
        for name, version in wanted.items()
        if have.get(name, ("", 0))[0] != version
    }
    assert not wrong, f"{lock} disagrees with {pins} (pin, lock): {wrong}; run `make lock`"


@pytest.mark.parametrize(("pins", "lock"), PAIRS)
def test_every_locked_package_has_hashes(pins: str, lock: str) -> None:
    entries = locked(ROOT / lock)
    assert len(entries) > len(direct_pins(ROOT / pins)), "the lock holds the indirect ones too"
    unhashed = [name for name, (_, hashes) in entries.items() if not hashes]
    assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_the_locks_agree_with_the_runtime_lock() -> None:
    """The dev and bench locks are compiled against the runtime lock: the tests and the
    benchmark run the versions a deployment runs."""
    runtime = locked(ROOT / "requirements.lock")
    for _, lock in PAIRS[1:]:
        other = locked(ROOT / lock)
        differ = {
            name: (version, other[name][0])
            for name, (version, _) in runtime.items()
            if name in other and other[name][0] != version
        }
        assert not differ, f"{lock} and requirements.lock differ: {differ}"
        assert runtime.keys() <= other.keys(), f"{lock} lacks {runtime.keys() - other.keys()}"


def test_installs_use_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements.lock" in (ROOT / "Dockerfile").read_text()
    assert not re.search(r"pip install (-q )?-r requirements", makefile)
