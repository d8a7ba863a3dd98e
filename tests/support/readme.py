"""The README's ```sh command blocks, as the tests that run or check them read them."""

from __future__ import annotations

import re

from tests.support.servers import ROOT

README = ROOT / "README.md"
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def command_lines() -> list[list[str]]:
    """Each command of the README's ```sh blocks as words, as pasted: continuations joined,
    comments dropped (environment assignments kept)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split("#", 1)[0].split()
            if words:
                commands.append(words)
    return commands


def commands() -> list[list[str]]:
    """Each command as `command_lines`, without the environment assignments before it."""
    found = []
    for words in command_lines():
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words:
            found.append(words)
    return found


def command(name: str) -> list[str]:
    """The one README command with a word ending in `name` ("/uvicorn", "examples/client.py")."""
    (found,) = [words for words in commands() if any(w.endswith(name) for w in words)]
    return found
