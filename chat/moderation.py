"""Moderation writes: delete messages (with an audit record), impose and lift sanctions.

Each write commits first and then tells every worker through the channel layer (after
`transaction.on_commit`, so a rolled-back change is never announced): a deletion publishes
one `retract` frame per message to the lobby, a sanction change publishes the
`chat.sanctions` control event (chat.broadcast documents both).

The callers check who is asking (`chat.selectors.can_moderate`); these services check it
again when given the acting account.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from chat import broadcast
from chat.models import Deletion, Message, Sanction
from chat.selectors import can_moderate

logger = logging.getLogger(__name__)

Via = Literal["page", "admin"]
Kind = Literal["mute", "ban"]

# Ids per statement: well under every supported database's parameter limit.
DELETE_CHUNK = 500


class SanctionRefused(ValueError):
    """A sanction that may not be imposed: on a moderator's account, or malformed."""


def message_delete(*, ids: Iterable[int], by: Any | None, via: Via) -> list[int]:
    """Delete messages for everyone; return the ids deleted now, ascending.

    Records a `Deletion` per message and deletes the rows in one transaction; after the
    commit one `retract` frame per id goes to the lobby. Unknown or already deleted ids are
    skipped (not returned), so a repeat or a race between two moderators is harmless.
    """
    if via not in Deletion.Via.values:
        raise ValueError(f"via must be one of {Deletion.Via.values}, not {via!r}")
    _require_moderator(by)
    wanted = sorted({int(i) for i in ids})
    deleted: list[int] = []
    if not wanted:
        return deleted
    with transaction.atomic():
        now = timezone.now()
        for start in range(0, len(wanted), DELETE_CHUNK):
            chunk = wanted[start : start + DELETE_CHUNK]
            # Locked (PostgreSQL) so that two moderators deleting one message record it once.
            rows = list(Message.objects.select_for_update().filter(id__in=chunk).order_by("id"))
            if not rows:
                continue
            Deletion.objects.bulk_create(
                [
                    Deletion(
                        message_id=m.id,
                        nick=m.nick,
                        body=m.body,
                        sent_at=m.sent_at,
                        session=m.session,
                        sender_id=m.user_id,
                        deleted_by=by,
                        deleted_at=now,
                        via=via,
                    )
                    for m in rows
                ]
            )
            chunk_ids = [m.id for m in rows]
            Message.objects.filter(id__in=chunk_ids).delete()
            deleted.extend(chunk_ids)
        if deleted:
            transaction.on_commit(partial(_announce_retract, list(deleted)))
    logger.info(
        "messages deleted count=%d ids=%s by=%s via=%s",
        len(deleted),
        deleted[:20],
        _user_id(by),
        via,
        extra={"count": len(deleted), "ids": deleted[:20], "by": _user_id(by), "via": via},
    )
    return deleted


def sanction_create(
    *,
    kind: Kind,
    seconds: int,
    by: Any | None,
    user: Any | None = None,
    session: str | None = None,
    address: str | None = None,
    reason: str = "",
) -> Sanction:
    """Mute or ban one target (an account, a guest session or a client address) for
    `seconds`; every worker reloads its sanctions after the commit.

    Raises SanctionRefused for a moderator's account, no target or several, a bad kind,
    duration or address; PermissionDenied when `by` may not moderate.
    """
    if kind not in Sanction.Kind.values:
        raise SanctionRefused(f"kind must be one of {Sanction.Kind.values}, not {kind!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise SanctionRefused("seconds must be a positive integer.")
    session = session or None
    address = _clean_address(address) if address else None
    if sum(target is not None for target in (user, session, address)) != 1:
        raise SanctionRefused("Give exactly one target: an account, a session or an address.")
    if user is not None and can_moderate(user):
        raise SanctionRefused(f"{user} is a moderator and cannot be muted or banned.")
    _require_moderator(by)
    with transaction.atomic():
        sanction = Sanction.objects.create(
            kind=kind,
            user=user,
            session=session,
            address=address,
            expires_at=timezone.now() + timedelta(seconds=seconds),
            created_by=by,
            reason=reason,
        )
        transaction.on_commit(_announce_sanctions)
    logger.info(
        "sanction created id=%s kind=%s target=%s until=%s by=%s",
        sanction.id,
        kind,
        sanction.target,
        sanction.expires_at.isoformat(),
        _user_id(by),
        extra={
            "sanction": sanction.id,
            "kind": kind,
            "target": sanction.target,
            "until": sanction.expires_at.isoformat(),
            "by": _user_id(by),
        },
    )
    return sanction


def sanction_sender(
    *, kind: Kind, session: str, seconds: int, by: Any, own_session: str | None = None
) -> list[Sanction]:
    """Mute or ban whoever sent as `session` (the page's frames name a connection): their
    account when they were signed in, else that guest session and its client address (as
    recorded with their latest message). A session that never sent a message is sanctioned
    by session only.

    Raises SanctionRefused for oneself or a moderator's account.
    """
    if session == own_session:
        raise SanctionRefused("You cannot mute or ban yourself.")
    latest = Message.objects.filter(session=session).order_by("-id").first()
    if latest is not None and latest.user_id is not None:
        if by is not None and latest.user_id == by.pk:
            raise SanctionRefused("You cannot mute or ban yourself.")
        user = get_user_model().objects.get(pk=latest.user_id)
        return [sanction_create(kind=kind, seconds=seconds, by=by, user=user)]
    address = None
    if latest is not None and latest.address:
        try:
            address = _clean_address(latest.address)
        except SanctionRefused:
            logger.info(
                "sanction of session %s: no usable client address",
                session,
                extra={"target_session": session},
            )
    with transaction.atomic():
        made = [sanction_create(kind=kind, seconds=seconds, by=by, session=session)]
        if address is not None:
            made.append(sanction_create(kind=kind, seconds=seconds, by=by, address=address))
    return made


def sanction_lift(*, id: int, by: Any | None = None) -> bool:
    """End a sanction now (the row stays, with `lifted_at`); False when it was already lifted
    or does not exist. Every worker reloads its sanctions after the commit."""
    _require_moderator(by)
    with transaction.atomic():
        changed = Sanction.objects.filter(id=id, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lifted_by=by
        )
        if changed:
            transaction.on_commit(_announce_sanctions)
    if changed:
        logger.info(
            "sanction lifted id=%s by=%s",
            id,
            _user_id(by),
            extra={"sanction": id, "by": _user_id(by)},
        )
    return bool(changed)


def _require_moderator(by: Any | None) -> None:
    # None: the system itself (a management command, a test), trusted.
    if by is not None and not can_moderate(by):
        raise PermissionDenied("Only moderators may do this.")


def _user_id(user: Any | None) -> object:
    return getattr(user, "pk", None)


def _clean_address(address: str) -> str:
    address = address.strip()
    try:
        validate_ipv46_address(address)
    except ValidationError:
        raise SanctionRefused(f"{address!r} is not an IP address.") from None
    # Stored as GenericIPAddressField stores it, so that the admin shows one form.
    return clean_ipv6_address(address) if ":" in address else address


def _announce_retract(ids: list[int]) -> None:
    try:
        broadcast.run_from_sync(broadcast.publish_retract, ids)
    except Exception as exc:
        # Deleted for good; open pages keep showing the messages until they reload.
        logger.warning(
            "retract of %d messages not published (%s)", len(ids), exc, extra={"count": len(ids)}
        )


def _announce_sanctions() -> None:
    try:
        broadcast.run_from_sync(broadcast.publish_sanctions_changed)
    except Exception as exc:
        logger.warning("sanctions change not published (%s); seen at the next reload", exc)
