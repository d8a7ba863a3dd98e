"""Writes. Consumers and views call these; they never touch the ORM themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.utils import timezone

from chat.models import Message

# The columns written on insert, in this order (`id` comes from the database).
_INSERT_FIELDS = ("nick", "body", "sent_at", "client_id", "session", "user", "address")


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: what the sender sent and who sent it."""

    nick: str
    body: str
    client_id: str | None
    session: str
    # The sender's account, when signed in.
    user_id: int | None = None
    # The sender's client address (for sanctions by address).
    address: str = ""


def message_create(
    *,
    nick: str,
    body: str,
    client_id: str | None,
    session: str,
    user_id: int | None = None,
    address: str = "",
) -> tuple[Message, bool]:
    """Store a message; return it and whether it is new.

    Idempotent by `client_id`: a second call with a stored `client_id` stores nothing and
    returns the original message, so a resend after a reconnect is safe.
    """
    item = NewMessage(
        nick=nick,
        body=body,
        client_id=client_id,
        session=session,
        user_id=user_id,
        address=address,
    )
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

    to_insert, client_ids = batch_plan(items)
    fields = [Message._meta.get_field(name) for name in _INSERT_FIELDS]
    size = max(1, connection.ops.bulk_batch_size(fields, to_insert))
    parts = [to_insert[start : start + size] for start in range(0, len(to_insert), size)]
    sent_at = timezone.now()
    new: list[Message] = []
    # One statement commits on its own (no BEGIN/COMMIT round trips); the several needed past
    # the database's parameter limit commit together.
    with transaction.atomic(using=connection.alias) if len(parts) > 1 else nullcontext():
        for part in parts:
            new.extend(_insert_returning(connection, part, sent_at))

    # Rows stored before: by an earlier call, or by another process a moment ago. (Should the
    # database fail right here, the rows just inserted stay stored although the caller sees
    # an error; their resends are then answered with created=False.)
    inserted = {m.client_id for m in new if m.client_id is not None}
    conflicts = [cid for cid in client_ids if cid not in inserted]
    existing: dict[str, Message] = (
        Message.objects.using(connection.alias).in_bulk(conflicts, field_name="client_id")
        if conflicts
        else {}
    )
    return batch_results(items, new, existing, client_id=lambda m: m.client_id)


def batch_plan(items: Sequence[NewMessage]) -> tuple[list[NewMessage], set[str]]:
    """The items a batch inserts (each `client_id` once, and all without one) and the set
    of its client ids."""
    client_ids: set[str] = set()
    to_insert: list[NewMessage] = []
    for item in items:
        if item.client_id is None:
            to_insert.append(item)
        elif item.client_id not in client_ids:
            client_ids.add(item.client_id)
            to_insert.append(item)
    return to_insert, client_ids


def batch_results[T](
    items: Sequence[NewMessage],
    new: Sequence[T],
    existing: dict[str, T],
    *,
    client_id: Callable[[T], str | None],
) -> list[tuple[T, bool]]:
    """Each item's stored message (`new`: the rows this batch inserted, in input order;
    `existing`: the ones stored before, by client id) and whether it is new: a client id's
    first copy in a batch that inserted it is new, every other copy is not."""
    inserted = {client_id(m): m for m in new if client_id(m) is not None}
    without_client_id = iter([m for m in new if client_id(m) is None])
    conflicts = {item.client_id for item in items if item.client_id is not None} - inserted.keys()
    if missing := conflicts - existing.keys():
        # Only possible if a conflicting row was deleted between the two statements.
        raise IntegrityError(f"messages vanished during insert: {sorted(missing)}")
    results: list[tuple[T, bool]] = []
    answered: set[str] = set()
    for item in items:
        if item.client_id is None:
            results.append((next(without_client_id), True))
            continue
        if item.client_id in inserted:
            results.append((inserted[item.client_id], item.client_id not in answered))
        else:
            results.append((existing[item.client_id], False))
        answered.add(item.client_id)
    return results


def insert_returning_sql(connection: BaseDatabaseWrapper, rows: int) -> str:
    """`INSERT` of `rows` messages (`_INSERT_FIELDS`, one parameter each) that skips a stored
    `client_id` and returns each new row's id and client id."""
    key = (connection.vendor, rows)
    sql = _insert_sql.get(key)
    if sql is None:
        meta = Message._meta
        qn = connection.ops.quote_name
        columns = ", ".join(qn(column(name)) for name in _INSERT_FIELDS)
        row = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
        # Only the model's own (quoted) table and column names go into the text; every value
        # is a parameter.
        sql = (
            f"INSERT INTO {qn(meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([row] * rows)} "
            f"ON CONFLICT ({qn(column('client_id'))}) DO NOTHING "
            f"RETURNING {qn(column('id'))}, {qn(column('client_id'))}"
        )
        if len(_insert_sql) < _MAX_CACHED_SQL:
            _insert_sql[key] = sql
    return sql


def returned_in_order(
    items: Sequence[NewMessage], returned: Sequence[tuple[int, str | None]]
) -> list[tuple[int, NewMessage]]:
    """Pair the rows an `insert_returning_sql` statement returned with the items it stored.

    RETURNING lists rows in no promised order, but ids are drawn in VALUES order: the n-th
    smallest id belongs to the n-th item that did not conflict.
    """
    rows = sorted(returned)
    client_ids = {client_id for _, client_id in rows}
    new_items = [item for item in items if item.client_id is None or item.client_id in client_ids]
    pairs = []
    for item, (pk, client_id) in zip(new_items, rows, strict=True):
        if item.client_id != client_id:
            raise RuntimeError(f"RETURNING rows out of VALUES order: {rows!r}")
        pairs.append((pk, item))
    return pairs


def column(name: str) -> str:
    """The database column of a `Message` field."""
    found = cast("Field[Any, Any]", Message._meta.get_field(name)).column
    # Every column here is a concrete field's, which is never None once the model is built.
    assert found is not None
    return found


_insert_sql: dict[tuple[str, int], str] = {}
# Batches have at most a few hundred rows (chat.writer.BATCH_MAX); a bound all the same.
_MAX_CACHED_SQL = 1000


def _can_insert_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether the database takes `INSERT ... ON CONFLICT DO NOTHING RETURNING`."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        # `Database` (the backend's DB-API module) is missing from django-stubs.
        return bool(connection.Database.sqlite_version_info >= (3, 35))  # type: ignore[attr-defined]
    return False


def _insert_returning(
    connection: BaseDatabaseWrapper, items: Sequence[NewMessage], sent_at: datetime
) -> list[Message]:
    """Insert `items` in one statement; return the messages it stored (in input order)."""
    fields = [cast("Field[Any, Any]", Message._meta.get_field(name)) for name in _INSERT_FIELDS]
    params: list[Any] = []
    for item in items:
        values = {**asdict(item), "sent_at": sent_at}
        params.extend(f.get_db_prep_save(values[f.attname], connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(insert_returning_sql(connection, len(items)), params)
        returned = cursor.fetchall()
    # (sent_at is not returned: it is ours.)
    return [
        _built(connection, pk, item, sent_at) for pk, item in returned_in_order(items, returned)
    ]


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
        user_id=item.user_id,
        address=item.address,
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
                nick=item.nick,
                body=item.body,
                client_id=item.client_id,
                session=item.session,
                user_id=item.user_id,
                address=item.address,
            )
    except IntegrityError:
        # Two resends raced; the other one won.
        if item.client_id is None:
            raise
        return Message.objects.get(client_id=item.client_id), False
    return message, True
