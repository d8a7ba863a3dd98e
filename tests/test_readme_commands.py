"""The README's command blocks work as pasted: each `make` line names targets and variables
the Makefile has (checked with `make -n`, which runs nothing), and the offline install reads
the folder that `make wheels` fills. The client command runs against a live server in
tests/test_example_client.py; `make scale` runs in tests/test_scale_live.py; the uvicorn
command is the tested one (tests/test_drift.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support import readme
from tests.support.environment import missing
from tests.support.servers import ROOT

MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _make_lines() -> list[list[str]]:
    return [words for words in readme.command_lines() if words[0] == "make"]


def test_the_readme_has_make_commands() -> None:
    assert ["make", "test"] in _make_lines()
    assert ["make", "run"] in _make_lines()


@pytest.mark.parametrize("words", _make_lines(), ids=" ".join)
def test_each_make_command_names_targets_and_variables_the_makefile_has(words) -> None:
    if shutil.which("make") is None:
        missing("make is not installed")
    assignments = [w.split("=", 1)[0] for w in words[1:] if readme.ASSIGNMENT.match(w)]
    # make takes any variable on its command line: one the Makefile never reads is a typo.
    unread = [name for name in assignments if f"$({name})" not in MAKEFILE]
    assert unread == [], f"{' '.join(words)}: the Makefile reads no {unread}"
    # -n prints what would run (an unknown target fails) and runs nothing.
    done = subprocess.run(
        ["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_offline_install_reads_what_make_wheels_writes() -> None:
    (install,) = [w for w in readme.commands() if "--no-index" in w]
    folder = install[install.index("--find-links") + 1]
    lock = install[install.index("-r") + 1]
    assert (ROOT / lock).exists()
    assert re.search(rf"pip download .*-r {re.escape(lock)} -d {re.escape(folder)}\b", MAKEFILE)
    assert "--require-hashes" in install
