"""Guest names and connection ids."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "Amber",
    "Brave",
    "Calm",
    "Clever",
    "Swift",
    "Gentle",
    "Happy",
    "Jolly",
    "Lucky",
    "Quiet",
    "Sunny",
    "Witty",
    "Bold",
    "Bright",
    "Kind",
    "Merry",
)
_ANIMALS = (
    "Otter",
    "Falcon",
    "Panda",
    "Fox",
    "Heron",
    "Lynx",
    "Koala",
    "Tapir",
    "Jaguar",
    "Capybara",
    "Toucan",
    "Dolphin",
    "Badger",
    "Owl",
    "Seal",
    "Wren",
)


def guest_nick() -> str:
    """A friendly guest name such as 'Calm Otter 42' (at most 32 characters)."""
    return f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_ANIMALS)} {secrets.randbelow(90) + 10}"


def new_session_id() -> str:
    """An opaque, unguessable id for one WebSocket connection."""
    return secrets.token_urlsafe(9)
