"""Writes. Consumers and views call these; they never touch the ORM themselves."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from chat.models import Message

logger = logging.getLogger(__name__)

# The columns written on insert, in this order (`id` comes from the database).
_INSERT_FIELDS = ("nick", "body", "sent_at", "client_id", "session")


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: what the sender sent and who sent it."""

    nick: str
    body: str
    client_id: str | None
    session: str


def message_create(
    *, nick: str, body: str, client_id: str | None, session: str
) -> tuple[Message, bool]:
    """Store a message; return it and whether it is new.

    Idempotent by `client_id`: a second call with a stored `client_id` stores nothing and
    returns the original message, so a resend after a reconnect is safe.
    """
    item = NewMessage(nick=nick, body=body, client_id=client_id, session=session)
    return message_create_many(items=[item])[0]


def message_create_many(*, items: Sequence[NewMessage]) -> list[tuple[Message, bool]]:
    """Store many messages; return each one, in input order, and whether it is new.

    Idempotent by `client_id` as `message_create` is. On PostgreSQL and SQLite (3.35 or
    newer) the new rows are written with one `INSERT ... ON CONFLICT (client_id) DO NOTHING
    RETURNING` statement, so one round trip stores a whole batch and the unique index settles
    races between processes; rows that were already stored cost one more SELECT. Within
    `items`, a repeated `client_id` is stored once: its later copies get the first one's
    message with `created=False`. New rows get ids in input order.
    """
    if not items:
        return []
    connection = connections[router.db_for_write(Message)]
    if not _can_insert_returning(connection):
        return [_create_one(item) for item in items]

    # The first item of each client_id is inserted; later copies get its message.
    client_ids: set[str] = set()
    to_insert: list[NewMessage] = []
    for item in items:
        if item.client_id is None:
            to_insert.append(item)
        elif item.client_id not in client_ids:
            client_ids.add(item.client_id)
            to_insert.append(item)

    sent_at = timezone.now()
    inserted: dict[str, Message] = {}
    new_without_client_id: list[Message] = []
    fields = [Message._meta.get_field(name) for name in _INSERT_FIELDS]
    chunk = max(1, connection.ops.bulk_batch_size(fields, to_insert))
    for start in range(0, len(to_insert), chunk):
        part = to_insert[start : start + chunk]
        returned = _insert_returning(connection, part, sent_at)
        # RETURNING gives the rows in no promised order; ids follow the VALUES order.
        returned.sort()
        stored_ids = {client_id for _, client_id in returned}
        new_items = [i for i in part if i.client_id is None or i.client_id in stored_ids]
        for item, (pk, client_id) in zip(new_items, returned, strict=True):
            assert item.client_id == client_id
            message = _built(connection, pk, item, sent_at)
            if client_id is None:
                new_without_client_id.append(message)
            else:
                inserted[client_id] = message

    conflicts = [cid for cid in client_ids if cid not in inserted]
    existing: dict[str, Message] = (
        Message.objects.using(connection.alias).in_bulk(conflicts, field_name="client_id")
        if conflicts
        else {}
    )
    missing = set(conflicts) - existing.keys()
    if missing:
        # Only possible if a conflicting row was deleted between our two statements.
        raise IntegrityError(f"messages vanished during insert: {sorted(missing)}")

    results: list[tuple[Message, bool]] = []
    seen: set[str] = set()
    without_client_id = iter(new_without_client_id)
    for item in items:
        if item.client_id is None:
            results.append((next(without_client_id), True))
        elif item.client_id in inserted:
            results.append((inserted[item.client_id], item.client_id not in seen))
        else:
            results.append((existing[item.client_id], False))
        if item.client_id is not None:
            seen.add(item.client_id)
    return results


def _can_insert_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether the database takes `INSERT ... ON CONFLICT DO NOTHING RETURNING`."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        return connection.Database.sqlite_version_info >= (3, 35)
    return False


def _insert_returning(
    connection: BaseDatabaseWrapper, items: Sequence[NewMessage], sent_at: datetime
) -> list[tuple[int, str | None]]:
    """Insert `items` in one statement; return (id, client_id) of the rows it stored."""
    meta = Message._meta
    qn = connection.ops.quote_name
    fields = [meta.get_field(name) for name in _INSERT_FIELDS]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only the model's own (quoted) table and column names go into the text; every value is
    # a parameter.
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(items))} "
        f"ON CONFLICT ({qn(meta.get_field('client_id').column)}) DO NOTHING "
        f"RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('client_id').column)}"
    )
    params: list[object] = []
    for item in items:
        values = {
            "nick": item.nick,
            "body": item.body,
            "sent_at": sent_at,
            "client_id": item.client_id,
            "session": item.session,
        }
        params.extend(f.get_db_prep_save(values[f.name], connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, client_id) for pk, client_id in cursor.fetchall()]


def _built(
    connection: BaseDatabaseWrapper, pk: int, item: NewMessage, sent_at: datetime
) -> Message:
    """The model instance of a row just inserted, as if it had been loaded."""
    message = Message(
        id=pk,
        nick=item.nick,
        body=item.body,
        sent_at=sent_at,
        client_id=item.client_id,
        session=item.session,
    )
    message._state.adding = False
    message._state.db = connection.alias
    return message


def _create_one(item: NewMessage) -> tuple[Message, bool]:
    """Store one message with a look-up and an insert (databases without RETURNING)."""
    if item.client_id is not None:
        existing = Message.objects.filter(client_id=item.client_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                nick=item.nick, body=item.body, client_id=item.client_id, session=item.session
            )
    except IntegrityError:
        # Two resends raced; the other one won.
        if item.client_id is None:
            raise
        return Message.objects.get(client_id=item.client_id), False
    return message, True
