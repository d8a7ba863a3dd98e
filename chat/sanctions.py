"""A worker's in-memory book of mutes and bans, so that no handshake or frame reads the
database.

Plain data, no I/O: built from `chat.selectors.sanctions_active` (the consumer side keeps
one per worker and builds a new one when a `chat.sanctions` event says the table changed),
then asked `muted(...)` on each message and `banned(...)` on each handshake. Entries expire
by themselves: an answer compares against the `now` the caller passes (seconds since the
epoch, `time.time()`), so no clean-up task is needed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from chat.models import Sanction

MUTE = Sanction.Kind.MUTE.value
BAN = Sanction.Kind.BAN.value

AddressKey = ipaddress.IPv4Address | ipaddress.IPv6Address | str


def address_key(address: str) -> AddressKey:
    """The form in which two client addresses compare: parsed (so '::1' and '0::1' match),
    an IPv4-mapped IPv6 address as its IPv4; anything unparsable as it is."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


@dataclass(frozen=True, slots=True)
class Entry:
    """One sanction as plain data: its kind, its one target and when it ends (epoch seconds)."""

    kind: str
    expires_at: float
    user_id: int | None = None
    session: str | None = None
    address: str | None = None

    @classmethod
    def from_sanction(cls, sanction: Sanction) -> Entry:
        """The entry of a stored sanction (reads no related object)."""
        return cls(
            kind=sanction.kind,
            expires_at=sanction.expires_at.timestamp(),
            user_id=sanction.user_id,
            session=sanction.session,
            address=sanction.address,
        )


class SanctionBook:
    """Who is muted or banned, by account id, guest session and client address.

    A ban also mutes: `muted` answers "may not send", `banned` answers "may not connect".
    """

    __slots__ = ("_by_address", "_by_session", "_by_user")

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        # kind -> target -> latest end, for each kind of target.
        self._by_user: dict[str, dict[int, float]] = {MUTE: {}, BAN: {}}
        self._by_session: dict[str, dict[str, float]] = {MUTE: {}, BAN: {}}
        self._by_address: dict[str, dict[AddressKey, float]] = {MUTE: {}, BAN: {}}
        for entry in entries:
            if entry.kind not in (MUTE, BAN):
                continue
            if entry.user_id is not None:
                _keep_latest(self._by_user[entry.kind], entry.user_id, entry.expires_at)
            elif entry.session is not None:
                _keep_latest(self._by_session[entry.kind], entry.session, entry.expires_at)
            elif entry.address is not None:
                key = address_key(entry.address)
                _keep_latest(self._by_address[entry.kind], key, entry.expires_at)

    @classmethod
    def from_sanctions(cls, sanctions: Iterable[Sanction]) -> SanctionBook:
        """A book of stored sanctions (e.g. `selectors.sanctions_active(now=...)`)."""
        return cls(Entry.from_sanction(s) for s in sanctions)

    def __bool__(self) -> bool:
        """Whether the book holds any entry at all (expired ones included)."""
        return any(
            table
            for tables in (self._by_user, self._by_session, self._by_address)
            for table in tables.values()
        )

    def muted(
        self, *, user_id: int | None, session: str | None, address: str | None, now: float
    ) -> float | None:
        """Seconds until the last mute or ban on any of these targets ends; None if none."""
        return _longest(
            self._remaining(MUTE, user_id, session, address, now),
            self._remaining(BAN, user_id, session, address, now),
        )

    def banned(
        self, *, user_id: int | None, session: str | None, address: str | None, now: float
    ) -> float | None:
        """Seconds until the last ban on any of these targets ends; None if none."""
        return self._remaining(BAN, user_id, session, address, now)

    def _remaining(
        self,
        kind: str,
        user_id: int | None,
        session: str | None,
        address: str | None,
        now: float,
    ) -> float | None:
        ends = 0.0
        if user_id is not None:
            ends = max(ends, self._by_user[kind].get(user_id, 0.0))
        if session is not None:
            ends = max(ends, self._by_session[kind].get(session, 0.0))
        by_address = self._by_address[kind]
        if address is not None and by_address:
            ends = max(ends, by_address.get(address_key(address), 0.0))
        return ends - now if ends > now else None


def _keep_latest[K](table: dict[K, float], key: K, expires_at: float) -> None:
    if expires_at > table.get(key, 0.0):
        table[key] = expires_at


def _longest(*remaining: float | None) -> float | None:
    known = [r for r in remaining if r is not None]
    return max(known) if known else None
