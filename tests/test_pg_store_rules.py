"""The parts of chat.pg_store that need no PostgreSQL: when it is on, and that its values and
SQL line up with Django's path (chat.services), on any database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from django.db import connection

from chat import pg_store, services, writer
from chat.serializers import ROW_FIELDS
from chat.services import NewMessage


def test_the_insert_values_follow_the_insert_columns() -> None:
    """`_insert_values` must list an item's values in `services._INSERT_FIELDS` order, or the
    loop's path would write each value into another column."""
    sent_at = datetime(2026, 11, 30, tzinfo=UTC)
    item = NewMessage(
        nick="Ana", body="hi", client_id="c1", session="s1", user_id=7, address="10.0.0.1"
    )
    by_field = {
        "nick": item.nick,
        "body": item.body,
        "sent_at": sent_at,
        "client_id": item.client_id,
        "session": item.session,
        "user": item.user_id,
        "address": item.address,
    }
    assert pg_store._insert_values(item, sent_at) == tuple(
        by_field[name] for name in services._INSERT_FIELDS
    )
    # Without the address, the columns `row_to_frame` takes after the id.
    assert services._INSERT_FIELDS[:-1] == ROW_FIELDS[1:]


def test_the_lookup_of_stored_client_ids_reads_the_frame_columns() -> None:
    sql = pg_store._select_sql(connection)
    assert sql.startswith(
        'SELECT "id", "nick", "body", "sent_at", "client_id", "session", "user_id"'
    )
    assert sql.endswith('WHERE "client_id" = ANY(%s)')


@pytest.mark.django_db
def test_it_is_off_on_other_databases_and_when_switched_off(settings) -> None:
    settings.CHAT_ASYNC_WRITER = False
    assert not pg_store.enabled()
    settings.CHAT_ASYNC_WRITER = True
    assert pg_store.enabled() == (connection.vendor == "postgresql")


class _Store:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_stopping_worker_closes_the_writers_connection_unless_a_batch_is_running() -> None:
    await writer.close()  # no writer in this loop yet: nothing to do
    loop_writer = writer.get_writer()
    await writer.close()  # a writer without a connection of its own
    store = _Store()
    loop_writer._async_store = store  # type: ignore[assignment]
    never = asyncio.get_running_loop().create_future()
    loop_writer._task = asyncio.ensure_future(never)
    try:
        await writer.close()
        assert not store.closed, "a batch in flight keeps its connection"
    finally:
        loop_writer._task.cancel()
    await asyncio.sleep(0)
    await writer.close()
    assert store.closed
