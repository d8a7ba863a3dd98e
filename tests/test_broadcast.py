"""A worker's lobby (chat.broadcast.Lobby) and the moderation events, without Redis."""

from __future__ import annotations

from typing import Any

from chat import broadcast, protocol


class FakeLayer:
    """Just the hooks a Lobby registers."""

    def __init__(self) -> None:
        self.gate: Any = None

    def set_group_filter(self, group: str, gate: Any) -> None:
        self.gate = gate

    def on_subscribe(self, callback: Any) -> None:
        pass


def lobby(*ids: int) -> broadcast.Lobby:
    filled = broadcast.Lobby(FakeLayer())
    filled.window.fill([(i, f"m{i}") for i in ids], floor=0)
    return filled


def test_retract_frame_is_the_wire_shape():
    assert protocol.retract_frame(42) == '{"type":"retract","id":42}'


def test_retract_event_carries_the_frame_and_the_id():
    assert broadcast.retract_event(7) == {
        "type": "chat.frame",
        "text": '{"type":"retract","id":7}',
        "id": None,
        "exclude": None,
        "retract": 7,
    }


def test_a_message_event_has_no_retract_field():
    assert "retract" not in broadcast.frame_event("x", message_id=1)


def test_sanctions_event_shape():
    assert broadcast.sanctions_event() == {"type": "chat.sanctions"}


def test_a_retract_event_removes_the_message_from_the_window():
    room = lobby(1, 2, 3)
    room.admit(broadcast.retract_event(2))
    assert room.window.latest(10) == [(1, "m1"), (3, "m3")]


def test_a_retract_event_goes_on_to_the_sockets():
    assert lobby(1).admit(broadcast.retract_event(1)) is True


def test_a_retract_of_a_message_the_window_lacks_goes_on():
    assert lobby(1).admit(broadcast.retract_event(99)) is True


def test_a_retracted_message_published_late_is_dropped():
    room = lobby()
    room.admit(broadcast.retract_event(5))
    assert room.admit(broadcast.frame_event("m5", message_id=5)) is False


def test_a_retracted_message_published_late_stays_out_of_the_window():
    room = lobby()
    room.admit(broadcast.retract_event(5))
    room.admit(broadcast.frame_event("m5", message_id=5))
    assert 5 not in room.window


def test_a_resume_after_a_retract_skips_the_message():
    room = lobby(1, 2, 3)
    room.admit(broadcast.retract_event(2))
    assert room.window.after(1, limit=10) == ([(3, "m3")], False)


def test_the_lobby_remembers_a_bounded_number_of_retractions(monkeypatch):
    monkeypatch.setattr(broadcast, "MAX_RETRACTED", 2)
    room = lobby()
    for message_id in (1, 2, 3):
        room.forget(message_id)
    assert list(room.retracted) == [2, 3]


def test_pruned_event_shape():
    assert broadcast.pruned_event(7) == {"type": "chat.pruned", "through": 7}


def test_a_pruned_event_drops_the_pruned_messages_from_the_window():
    room = lobby(1, 2, 3, 4)
    room.admit(broadcast.pruned_event(2))
    assert [message_id for message_id, _ in room.window.latest(10)] == [3, 4]


def test_a_pruned_event_stops_at_the_worker():
    assert lobby(1, 2).admit(broadcast.pruned_event(1)) is False


def test_a_sanctions_event_reaches_the_listeners():
    room = lobby()
    heard: list[dict[str, Any]] = []
    room.on_sanctions(heard.append)
    room.admit(broadcast.sanctions_event())
    assert heard == [{"type": "chat.sanctions"}]


def test_a_sanctions_event_stops_at_the_worker():
    assert lobby().admit(broadcast.sanctions_event()) is False


def test_a_failing_sanctions_listener_does_not_stop_the_others(caplog):
    room = lobby()
    heard: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    room.on_sanctions(broken)
    room.on_sanctions(heard.append)
    room.admit(broadcast.sanctions_event())
    assert len(heard) == 1


async def test_a_window_fill_leaves_out_a_message_retracted_meanwhile(monkeypatch):
    room = broadcast.Lobby(FakeLayer())
    room.forget(2)
    monkeypatch.setattr(
        broadcast, "_window_rows", lambda capacity: ([(1, "m1"), (2, "m2"), (3, "m3")], 0)
    )
    await room.subscribed(True)
    assert [message_id for message_id, _ in room.window.latest(10)] == [1, 3]


async def test_a_window_fill_leaves_out_messages_pruned_meanwhile(monkeypatch):
    room = broadcast.Lobby(FakeLayer())
    room.admit(broadcast.pruned_event(2))
    monkeypatch.setattr(
        broadcast, "_window_rows", lambda capacity: ([(1, "m1"), (2, "m2"), (3, "m3")], 0)
    )
    await room.subscribed(True)
    assert [message_id for message_id, _ in room.window.latest(10)] == [3]


def test_a_full_presence_event_is_marked_and_others_are_not():
    assert broadcast.frame_event("p", presence=True)["presence"] == 1
    assert "presence" not in broadcast.frame_event('{"type":"presence","count":3}')


def test_a_full_presence_frame_reaches_the_presence_listener_and_the_sockets():
    room = lobby()
    seen: list[str] = []
    room.on_presence(seen.append)
    text = '{"type":"presence","online":[],"count":0}'
    assert room.admit(broadcast.frame_event(text, presence=True)) is True
    assert seen == [text]


def test_a_count_only_presence_frame_does_not_reach_the_presence_listener():
    room = lobby()
    seen: list[str] = []
    room.on_presence(seen.append)
    assert room.admit(broadcast.frame_event('{"type":"presence","count":3}')) is True
    assert seen == []
