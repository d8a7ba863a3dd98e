"""The worker's window of recent messages (chat.recent): plain data, no sockets."""

from __future__ import annotations

from chat.recent import RecentWindow


def _rows(*ids: int) -> list[tuple[int, str]]:
    return [(i, f"m{i}") for i in ids]


def _filled(*ids: int, capacity: int = 5, floor: int = 0) -> RecentWindow:
    window = RecentWindow(capacity=capacity)
    window.fill(_rows(*ids), floor=floor)
    return window


def test_an_unfilled_window_answers_nothing() -> None:
    window = RecentWindow(capacity=5)
    window.add(1, "m1")
    assert not window.ready
    assert window.after(0, limit=10) is None


def test_latest_gives_the_newest_oldest_first() -> None:
    assert _filled(1, 2, 3, 4).latest(2) == _rows(3, 4)


def test_latest_zero_gives_nothing() -> None:
    assert _filled(1, 2).latest(0) == []


def test_after_inside_the_window_gives_every_newer_message() -> None:
    assert _filled(1, 2, 3, 4).after(2, limit=10) == (_rows(3, 4), False)


def test_after_below_the_floor_is_not_covered() -> None:
    assert _filled(5, 6, floor=4).after(3, limit=10) is None


def test_after_at_the_floor_is_covered() -> None:
    assert _filled(5, 6, floor=4).after(4, limit=10) == (_rows(5, 6), False)


def test_after_with_a_limit_keeps_the_newest_and_says_truncated() -> None:
    assert _filled(1, 2, 3, 4).after(0, limit=2) == (_rows(3, 4), True)


def test_a_duplicate_from_the_stream_is_refused() -> None:
    window = _filled(1, 2)
    assert window.add(3, "m3") is True
    assert window.add(3, "again") is False
    assert window.latest(5) == _rows(1, 2, 3)


def test_a_new_message_from_the_stream_is_kept() -> None:
    window = _filled(1, 2)
    assert window.add(3, "m3") is True
    assert window.after(2, limit=5) == (_rows(3), False)


def test_an_out_of_order_message_is_kept_in_id_order() -> None:
    window = _filled(1, 2, 4)
    assert window.add(3, "m3") is True
    assert window.latest(5) == _rows(1, 2, 3, 4)


def test_a_message_below_the_floor_is_delivered_but_not_kept() -> None:
    window = _filled(5, 6, floor=4)
    assert window.add(2, "m2") is True
    assert 2 not in window


def test_past_capacity_the_oldest_go_and_the_floor_rises() -> None:
    window = _filled(1, 2, 3, capacity=3)
    window.add(4, "m4")
    assert window.latest(5) == _rows(2, 3, 4)
    assert window.after(0, limit=5) is None
    assert window.after(1, limit=5) == (_rows(2, 3, 4), False)


def test_the_first_fill_reports_nothing_missed() -> None:
    window = RecentWindow(capacity=5)
    assert window.fill(_rows(1, 2), floor=0) == []


def test_a_refill_reports_what_the_stream_missed_oldest_first() -> None:
    window = _filled(1, 2)
    window.add(5, "m5")
    assert window.fill(_rows(1, 2, 3, 4, 5), floor=0) == _rows(3, 4)


def test_a_refill_does_not_report_messages_older_than_the_old_floor() -> None:
    window = _filled(3, 4, capacity=2, floor=2)
    assert window.fill(_rows(1, 2, 3, 4), floor=0) == []


def test_messages_from_the_stream_before_the_first_fill_are_merged() -> None:
    window = RecentWindow(capacity=5)
    window.add(3, "m3")
    window.fill(_rows(1, 2), floor=0)
    assert window.latest(5) == _rows(1, 2, 3)


def test_a_removed_message_is_gone_from_history_and_resume() -> None:
    window = _filled(1, 2, 3)
    window.remove(2)
    assert window.latest(5) == _rows(1, 3)
    assert window.after(1, limit=5) == (_rows(3), False)


def test_a_message_first_read_from_the_database_is_delivered_when_its_publish_arrives() -> None:
    """The first fill may read a message whose publish is still on its way: the stream's
    copy must still reach this worker's sockets (once)."""
    window = _filled(1, 2)
    assert window.add(2, "m2") is True
    assert window.add(2, "m2") is False


def test_a_message_pushed_by_a_catch_up_is_not_delivered_again() -> None:
    window = _filled(1)
    missed = window.fill(_rows(1, 2), floor=0)
    assert missed == _rows(2)
    assert window.add(2, "m2") is False


def test_a_prune_forgets_the_pruned_messages() -> None:
    window = _filled(1, 2, 3, 4, 5)
    window.prune(3)
    assert window.latest(10) == _rows(4, 5)


def test_a_prune_raises_the_floor_so_older_resumes_go_to_the_database() -> None:
    window = _filled(1, 2, 3, 4, 5)
    window.prune(3)
    assert window.after(2, limit=10) is None


def test_a_resume_from_the_prune_point_is_still_covered() -> None:
    window = _filled(1, 2, 3, 4, 5)
    window.prune(3)
    assert window.after(3, limit=10) == (_rows(4, 5), False)


def test_a_prune_below_the_window_changes_nothing_held() -> None:
    window = _filled(5, 6, floor=4)
    window.prune(2)
    assert (window.latest(10), window.floor) == (_rows(5, 6), 4)


def test_a_prune_of_an_unfilled_window_leaves_it_unfilled() -> None:
    window = RecentWindow(capacity=5)
    window.add(1, "m1")
    window.prune(1)
    assert (window.ready, 1 in window) == (False, False)


def test_newest_is_the_highest_id_held_or_the_floor_when_none_is() -> None:
    assert RecentWindow(capacity=5).newest() is None
    assert _filled().newest() == 0
    window = _filled(3, 4, floor=2)
    assert window.newest() == 4
    window.add(9, "m9")
    assert window.newest() == 9
    window.prune(through=9)
    assert window.newest() == 9
