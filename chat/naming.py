"""Guest names and connection ids."""

from __future__ import annotations

from chat.entropy import POOL

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
    return f"{POOL.choice(_ADJECTIVES)} {POOL.choice(_ANIMALS)} {POOL.randbelow(90) + 10}"


def new_session_id() -> str:
    """An opaque, unguessable id for one WebSocket connection."""
    return POOL.token_urlsafe(9)
