"""The wire format: parse and validate client frames, encode server frames.

Pure functions only: no sockets, no database, no settings lookups (limits are passed in).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Literal

# Error codes (README, "The wire protocol").
INVALID_JSON = "invalid_json"
INVALID_TYPE = "invalid_type"
INVALID_BODY = "invalid_body"
TOO_LONG = "too_long"
INVALID_NICK = "invalid_nick"
RATE_LIMITED = "rate_limited"
BINARY_UNSUPPORTED = "binary_unsupported"
UNAVAILABLE = "unavailable"
FORBIDDEN = "forbidden"
MUTED = "muted"
# Every error code above, in one place: the page's configuration and the metrics' labels.
ERROR_CODES = (
    INVALID_JSON,
    INVALID_TYPE,
    INVALID_BODY,
    TOO_LONG,
    INVALID_NICK,
    RATE_LIMITED,
    BINARY_UNSUPPORTED,
    UNAVAILABLE,
    FORBIDDEN,
    MUTED,
)

MAX_NICK = 32
MAX_CLIENT_ID = 64
# Session ids are 12 characters (chat.naming); anything longer is not one.
MAX_SESSION = 32
# The longest mute or ban a moderator can give from the page: one year.
MAX_SANCTION_SECONDS = 365 * 24 * 3600
SANCTION_KINDS = ("mute", "ban")

# Named close codes. daphne (autobahn) lets an application send only 1000 or 3000-4999, so
# the application's own codes are 4000 plus the RFC 6455 code they stand for.
CLOSE_POLICY_VIOLATION = 4008  # RFC 1008: abuse (persistent flooding), or a ban
CLOSE_TOO_BIG = 4009  # RFC 1009: a frame over CHAT_MAX_FRAME
CLOSE_TRY_AGAIN_LATER = 4013  # RFC 1013: a dependency (database) failed; reconnect later
# The real RFC 6455 code, which chat.shutdown sends through daphne's protocol object.
CLOSE_SERVICE_RESTART = 1012  # the worker is shutting down; reconnect elsewhere

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ProtocolError(Exception):
    """A client frame that is refused; becomes an `error` frame, the socket stays open."""

    def __init__(self, code: str, detail: str, *, client_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class SendMessage:
    """A `message` frame: a body to store and broadcast."""

    body: str
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Rename:
    """A `nick` frame."""

    nick: str


@dataclass(frozen=True, slots=True)
class Typing:
    """A `typing` frame: ephemeral, never stored."""


@dataclass(frozen=True, slots=True)
class Delete:
    """A moderator's `delete` frame: remove one message everywhere."""

    id: int


@dataclass(frozen=True, slots=True)
class Sanction:
    """A moderator's `mute` or `ban` frame against the sender of a session."""

    kind: Literal["mute", "ban"]
    session: str
    seconds: int


ClientFrame = SendMessage | Rename | Typing | Delete | Sanction


def frame_size(text: str) -> int:
    """A text frame's size on the wire, in UTF-8 bytes (what CHAT_MAX_FRAME bounds)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text)


def _has_surrogates(text: str) -> bool:
    """Lone surrogates (from JSON like "\\ud800") cannot be stored or sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_body(body: Any, *, max_body: int, client_id: str | None = None) -> str:
    """Return the body trimmed of surrounding whitespace, or raise ProtocolError.

    The length counts code points, as PostgreSQL's char_length and SQLite's length do;
    `max_body` 0 switches the limit off.
    """
    if not isinstance(body, str):
        raise ProtocolError(INVALID_BODY, "The message body must be text.", client_id=client_id)
    trimmed = body.strip()
    if not trimmed:
        raise ProtocolError(INVALID_BODY, "The message is empty.", client_id=client_id)
    if "\x00" in trimmed or _has_surrogates(trimmed):
        raise ProtocolError(
            INVALID_BODY,
            "The message contains a NUL character or invalid Unicode.",
            client_id=client_id,
        )
    if max_body and len(trimmed) > max_body:
        raise ProtocolError(
            TOO_LONG,
            f"The message is {len(trimmed)} characters long; the limit is {max_body}.",
            client_id=client_id,
        )
    return trimmed


def validate_nick(nick: Any) -> str:
    """Return the nickname trimmed, or raise ProtocolError(invalid_nick)."""
    if not isinstance(nick, str):
        raise ProtocolError(INVALID_NICK, "The nickname must be text.")
    trimmed = nick.strip()
    if not trimmed:
        raise ProtocolError(INVALID_NICK, "The nickname is empty.")
    if len(trimmed) > MAX_NICK:
        raise ProtocolError(INVALID_NICK, f"The nickname is longer than {MAX_NICK} characters.")
    if _has_control_chars(trimmed):
        raise ProtocolError(INVALID_NICK, "The nickname contains control characters.")
    return trimmed


def nick_key(nick: str) -> str:
    """The form in which two nicknames count as the same: trimmed as `validate_nick` does,
    NFKC-normalised (full-width and other look-alike forms fold) and case-folded."""
    return unicodedata.normalize("NFKC", nick.strip()).casefold()


def validate_client_id(client_id: Any) -> str | None:
    """Return the client id (or None when absent), or raise ProtocolError(invalid_body)."""
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_CLIENT_ID:
        raise ProtocolError(
            INVALID_BODY, f"client_id must be a string of 1 to {MAX_CLIENT_ID} characters."
        )
    if _has_control_chars(client_id):
        raise ProtocolError(INVALID_BODY, "client_id contains control characters.")
    return client_id


def parse_client_frame(text: str, *, max_body: int) -> ClientFrame:
    """Parse one text frame from a client, or raise ProtocolError."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(INVALID_JSON, "The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(INVALID_TYPE, "The frame must be a JSON object with a 'type'.")
    raw_client_id = data.get("client_id")
    try:
        echo_id = validate_client_id(raw_client_id)
    except ProtocolError:
        echo_id = None
    kind = data.get("type")
    if kind == "message":
        client_id = validate_client_id(raw_client_id)
        body = validate_body(data.get("body"), max_body=max_body, client_id=client_id)
        return SendMessage(body=body, client_id=client_id)
    if kind == "nick":
        return Rename(nick=validate_nick(data.get("nick")))
    if kind == "typing":
        return Typing()
    if kind == "delete":
        return Delete(id=_positive_int(data.get("id"), "id", maximum=2**63 - 1))
    if kind in SANCTION_KINDS:
        session = data.get("session")
        if not isinstance(session, str) or not 0 < len(session) <= MAX_SESSION:
            raise ProtocolError(INVALID_BODY, "session must be the target's session id.")
        seconds = _positive_int(data.get("seconds"), "seconds", maximum=MAX_SANCTION_SECONDS)
        return Sanction(kind=kind, session=session, seconds=seconds)
    raise ProtocolError(
        INVALID_TYPE,
        "Unknown frame type; expected 'message', 'nick', 'typing', 'delete', 'mute' or 'ban'.",
        client_id=echo_id,
    )


def _positive_int(value: Any, name: str, *, maximum: int) -> int:
    # bool is an int in Python; JSON's true is not a number here.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise ProtocolError(INVALID_BODY, f"{name} must be a whole number from 1 to {maximum}.")
    return value


def encode(frame: dict[str, Any]) -> str:
    """Encode a server frame as compact JSON text."""
    return _json_encoder.encode(frame)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with a 'Z', millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_frame(
    *,
    id: int,
    nick: str,
    body: str,
    sent_at: str,
    client_id: str | None,
    session: str,
    account: bool = False,
) -> dict[str, Any]:
    """The `message` object, the same on the socket, in `hello` and in the API. `account`
    is true when a signed-in account sent it (its `nick` is the account's name)."""
    return {
        "type": "message",
        "id": id,
        "nick": nick,
        "body": body,
        "sent_at": sent_at,
        "client_id": client_id,
        "session": session,
        "account": account,
    }


def retract_frame(message_id: int) -> str:
    """Encode a `retract` frame: message `message_id` was deleted by a moderator."""
    return encode({"type": "retract", "id": message_id})


def error_frame(code: str, detail: str, *, client_id: str | None = None, **extra: Any) -> str:
    """Encode an `error` frame."""
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    frame.update(extra)
    return encode(frame)


class OnlineEntry(dict[str, str]):
    """One person in the online list, `{"session": ..., "nick": ...}`, that keeps its JSON
    text once encoded: a page of the list is then encoded by joining texts, not by encoding
    every entry again whenever a join or leave changes the page. Never changed once made
    (a rename makes a new entry)."""

    __slots__ = ("text",)

    def __init__(self, session: str, nick: str) -> None:
        super().__init__(session=session, nick=nick)
        self.text: str | None = None


def entry_text(entry: dict[str, str]) -> str:
    """An online entry's JSON text; an `OnlineEntry` keeps it (encoded once in its life)."""
    if type(entry) is not OnlineEntry:
        return _json_encoder.encode(entry)
    if entry.text is None:
        entry.text = _json_encoder.encode(entry)
    return entry.text


_TEXT = attrgetter("text")


def encode_entries(entries: Sequence[dict[str, str]]) -> str:
    """A JSON array of online entries, as `encode` writes it: each `OnlineEntry` is
    encoded once in its life. When every entry is an encoded `OnlineEntry` (chat.presence
    encodes each as it enters a page), their texts are joined without a Python call each."""
    try:
        return "[" + ",".join(map(_TEXT, entries)) + "]"
    except (AttributeError, TypeError):  # a plain dict, or an entry not encoded yet
        return "[" + ",".join(map(entry_text, entries)) + "]"


@dataclass(frozen=True, slots=True)
class OnlinePage:
    """The first entries of the online list, in order, and how many are online in all.

    Built by chat.presence so that a `hello` in a crowd of N does not copy an N-long list.
    """

    entries: tuple[dict[str, str], ...]
    count: int


def online_fields(
    online: Sequence[dict[str, str]] | OnlinePage, *, limit: int = 0
) -> dict[str, Any]:
    """`online` (at most `limit` entries; 0: all) and `count` (everyone), as in `hello` and
    `presence`. A page gives its own count and at most the entries it holds."""
    entries: Sequence[dict[str, str]]
    if isinstance(online, OnlinePage):
        entries, count = online.entries, online.count
    else:
        entries, count = online, len(online)
    return {"online": entries[:limit] if limit else entries, "count": count}


def presence_frame(online: Sequence[dict[str, str]] | OnlinePage, *, limit: int = 0) -> str:
    """Encode a full `presence` frame: the first page of the online list and the count."""
    return encode({"type": "presence", **online_fields(online, limit=limit)})


def presence_count_frame(count: int) -> str:
    """Encode a count-only `presence` frame: pages keep their list and update the count."""
    return encode({"type": "presence", "count": count})


def first_page_unchanged(page: OnlinePage, *, held: tuple[dict[str, str], ...] | None) -> bool:
    """Whether `page` has the entries pages already hold (`held`; None: not known)."""
    # Identity first: the online view hands out the same tuple until its first page changes.
    return held is not None and (page.entries is held or page.entries == held)


def presence_update(page: OnlinePage, *, held: tuple[dict[str, str], ...] | None) -> str:
    """The `presence` frame after a join, leave or rename: `count` only when the first page
    is the one pages hold (`held`), else the first page too. `held` None (not known) always
    sends the page."""
    if first_page_unchanged(page, held=held):
        return presence_count_frame(page.count)
    return presence_frame(page)


def typing_frame(*, session: str, nick: str) -> str:
    """Encode a `typing` frame as the others see it."""
    return encode({"type": "typing", "session": session, "nick": nick})


class _LastOnline:
    """The last `online` tuple a `hello` encoded, and its JSON text.

    chat.presence hands every join the same tuple until the first page of the online list
    changes, which in a crowd is rare (a join sorts in past the page), so a burst of joins
    encodes the page (up to CHAT_PRESENCE_LIST entries) once instead of once per join.
    """

    entries: tuple[dict[str, str], ...] | None = None
    text = ""

    @classmethod
    def encode(cls, entries: tuple[dict[str, str], ...]) -> str:
        if entries is not cls.entries:
            cls.text, cls.entries = encode_entries(entries), entries
        return cls.text


def hello_frame(*, history: list[str], **fields: Any) -> str:
    """Encode a `hello` frame whose `history` is a list of already-encoded message frames.

    The messages are spliced in as they are (each was encoded once, when it was stored or
    read), so a join costs no JSON work per history message; an `online` tuple (the online
    list's page) is spliced in too, encoded once for as long as it is unchanged.
    """
    online = fields.get("online")
    if isinstance(online, tuple) and online:
        text = encode({"type": "hello", "history": [], **fields, "online": []})
        # Only keys match: inside a JSON string a quote is always escaped.
        text = text.replace('"online":[]', '"online":' + _LastOnline.encode(online), 1)
    else:
        text = encode({"type": "hello", "history": [], **fields})
    # The first `"history":[]` is the key: inside a JSON string a quote is always escaped.
    return text.replace('"history":[]', '"history":[' + ",".join(history) + "]", 1)
