"""Per-socket limits with a fake clock (chat.limits)."""

from __future__ import annotations

import time

import pytest

from chat.limits import (
    RateLimiter,
    Throttle,
    WindowCounter,
    previous_weight,
    sliding_allows,
    sliding_retry_after,
    window_at,
)
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, *, rate: int = 3, period: float = 10.0) -> RateLimiter:
    return RateLimiter(rate=rate, period=period, clock=clock)


def fill(rl: RateLimiter) -> None:
    for _ in range(rl.rate):
        assert rl.check() is None


# --- RateLimiter ----------------------------------------------------------------------------


def test_rate_limiter_allows_rate_events_in_a_period(clock):
    rl = limiter(clock, rate=3)
    assert [rl.check() for _ in range(3)] == [None, None, None]


def test_rate_limiter_refuses_the_next_event(clock):
    rl = limiter(clock, rate=3)
    fill(rl)
    assert rl.check() is not None


def test_rate_limiter_retry_after_is_the_full_period_when_burst_at_once(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    assert rl.check() == pytest.approx(10.0)


def test_rate_limiter_retry_after_counts_from_the_oldest_event(clock):
    rl = limiter(clock, rate=3, period=10.0)
    rl.check()
    clock.advance(4.0)
    rl.check()
    rl.check()
    clock.advance(1.0)
    assert rl.check() == pytest.approx(5.0)


def test_rate_limiter_retry_after_shrinks_as_time_passes(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    clock.advance(7.5)
    assert rl.check() == pytest.approx(2.5)


def test_rate_limiter_allows_again_after_waiting_retry_after(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    clock.advance(rl.check())
    assert rl.check() is None


def test_rate_limiter_still_refuses_just_before_the_window_slides(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    clock.advance(9.999)
    assert rl.check() is not None


def test_rate_limiter_window_slides_one_event_at_a_time(clock):
    rl = limiter(clock, rate=3, period=10.0)
    rl.check()
    clock.advance(5.0)
    rl.check()
    rl.check()
    clock.advance(5.0)  # only the first event has left the window
    assert [rl.check(), rl.check() is not None] == [None, True]


def test_rate_limiter_refusals_do_not_extend_the_wait(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    for _ in range(5):
        clock.advance(1.0)
        rl.check()
    clock.advance(5.0)
    assert rl.check() is None


def test_rate_limiter_allows_a_full_rate_again_after_a_period(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    clock.advance(10.0)
    assert [rl.check() for _ in range(3)] == [None, None, None]


def test_rate_limiter_rate_zero_is_unlimited(clock):
    rl = limiter(clock, rate=0)
    assert all(rl.check() is None for _ in range(10_000))


def test_rate_limiter_period_zero_is_unlimited(clock):
    rl = limiter(clock, rate=1, period=0)
    assert all(rl.check() is None for _ in range(100))


def test_rate_limiter_rate_zero_is_never_abusive(clock):
    rl = limiter(clock, rate=0)
    for _ in range(100):
        rl.check()
    assert rl.abusive is False


def test_rate_limiter_first_refusal_is_a_strike(clock):
    rl = limiter(clock, rate=3)
    fill(rl)
    rl.check()
    assert rl.strikes == 1


def test_rate_limiter_is_not_abusive_after_a_few_refusals(clock):
    rl = limiter(clock, rate=3)
    fill(rl)
    for _ in range(10):
        rl.check()
    assert rl.abusive is False


def test_rate_limiter_is_abusive_after_more_than_ten_refusals_for_a_small_rate(clock):
    rl = limiter(clock, rate=3)
    fill(rl)
    for _ in range(11):
        rl.check()
    assert rl.abusive is True


def test_rate_limiter_is_not_abusive_at_rate_refusals_for_a_large_rate(clock):
    rl = limiter(clock, rate=20)
    fill(rl)
    for _ in range(20):
        rl.check()
    assert rl.abusive is False


def test_rate_limiter_is_abusive_after_more_than_rate_refusals_for_a_large_rate(clock):
    rl = limiter(clock, rate=20)
    fill(rl)
    for _ in range(21):
        rl.check()
    assert rl.abusive is True


def test_rate_limiter_strikes_reset_after_an_allowed_event(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    for _ in range(8):
        rl.check()
    clock.advance(10.0)
    rl.check()
    assert rl.strikes == 0


def test_rate_limiter_is_not_abusive_after_an_allowed_event(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    for _ in range(11):
        rl.check()
    clock.advance(10.0)
    rl.check()
    assert rl.abusive is False


def test_rate_limiter_strikes_start_over_after_an_allowed_event(clock):
    rl = limiter(clock, rate=3, period=10.0)
    fill(rl)
    for _ in range(10):
        rl.check()
    clock.advance(10.0)
    fill(rl)
    for _ in range(10):
        rl.check()
    assert rl.abusive is False


def test_rate_limiter_without_a_clock_counts_real_time():
    rl = RateLimiter(rate=1, period=0.05)
    assert rl.check() is None
    assert rl.check() is not None
    time.sleep(0.06)
    assert rl.check() is None


# --- Throttle -------------------------------------------------------------------------------


def test_throttle_allows_the_first_event(clock):
    assert Throttle(interval=3.0, clock=clock).allow() is True


def test_throttle_refuses_a_second_event_within_the_interval(clock):
    throttle = Throttle(interval=3.0, clock=clock)
    throttle.allow()
    clock.advance(2.9)
    assert throttle.allow() is False


def test_throttle_allows_again_once_the_interval_has_passed(clock):
    throttle = Throttle(interval=3.0, clock=clock)
    throttle.allow()
    clock.advance(3.0)
    assert throttle.allow() is True


def test_throttle_refusals_do_not_push_the_next_slot_back(clock):
    throttle = Throttle(interval=3.0, clock=clock)
    throttle.allow()
    clock.advance(2.0)
    throttle.allow()
    clock.advance(1.0)
    assert throttle.allow() is True


def test_throttle_interval_counts_from_the_last_allowed_event(clock):
    throttle = Throttle(interval=3.0, clock=clock)
    throttle.allow()
    clock.advance(3.0)
    throttle.allow()
    clock.advance(2.0)
    assert throttle.allow() is False


def test_throttle_interval_zero_allows_every_event(clock):
    throttle = Throttle(interval=0, clock=clock)
    assert all(throttle.allow() for _ in range(100))


def test_rate_limiter_refund_gives_the_last_event_back(clock):
    rl = limiter(clock, rate=3)
    fill(rl)
    rl.refund()
    assert rl.check() is None


# --- Sliding window counter (per address) -----------------------------------------------


def test_window_at_gives_index_and_elapsed():
    assert window_at(1003.5, 10.0) == (100, pytest.approx(3.5))


def test_previous_weight_is_one_at_the_start_and_shrinks():
    assert previous_weight(0.0, 10.0) == 1.0
    assert previous_weight(2.5, 10.0) == pytest.approx(0.75)


def test_sliding_allows_up_to_rate_in_a_fresh_window():
    allowed = [sliding_allows(previous=0, current=n, weight=1.0, rate=3) for n in range(4)]
    assert allowed == [True, True, True, False]


def test_sliding_allows_counts_the_previous_window_by_its_weight():
    # 10 in the previous window, a quarter of which the sliding period still covers: 2.5.
    assert sliding_allows(previous=10, current=1, weight=0.25, rate=5)
    assert not sliding_allows(previous=10, current=2, weight=0.25, rate=5)


def test_sliding_retry_after_waits_for_the_previous_window_to_slide_out():
    # 10 before, 2 now, rate 5: allowed once 10 * w + 3 <= 5, i.e. w <= 0.2: at 8 s.
    wait = sliding_retry_after(previous=10, current=2, elapsed=2.5, period=10.0, rate=5)
    assert wait == pytest.approx(5.5)
    assert sliding_allows(previous=10, current=2, weight=previous_weight(8.0, 10.0), rate=5)


def test_sliding_retry_after_a_full_window_reaches_into_the_next():
    # 5 of 5 now: in the next window they count as previous; 5 * w + 1 <= 5 at w = 0.8.
    wait = sliding_retry_after(previous=0, current=5, elapsed=4.0, period=10.0, rate=5)
    assert wait == pytest.approx(6.0 + 2.0)


def counter(clock: FakeClock, *, rate: int = 3, period: float = 10.0) -> WindowCounter:
    return WindowCounter(rate=rate, period=period, clock=clock)


def test_window_counter_allows_rate_events_then_refuses():
    wc = counter(FakeClock(1000.0), rate=3)
    assert [wc.check("a") for _ in range(3)] == [None, None, None]
    assert wc.check("a") == pytest.approx(10.0 + 10.0 * (1 - 2 / 3))


def test_window_counter_keys_are_independent():
    wc = counter(FakeClock(1000.0), rate=1)
    assert wc.check("a") is None
    assert wc.check("b") is None
    assert wc.check("a") is not None


def test_window_counter_caps_a_burst_across_a_window_boundary():
    clock = FakeClock(1009.9)
    wc = counter(clock, rate=3)
    accepted = sum(wc.check("a") is None for _ in range(3))
    clock.advance(0.2)  # the next window: the previous one still weighs 0.98
    accepted += sum(wc.check("a") is None for _ in range(3))
    assert accepted == 3


def test_window_counter_allows_again_after_the_retry_after():
    clock = FakeClock(1000.0)
    wc = counter(clock, rate=3)
    for _ in range(3):
        wc.check("a")
    clock.advance(wc.check("a") + 0.001)
    assert wc.check("a") is None


def test_window_counter_refused_events_are_not_counted():
    clock = FakeClock(1000.0)
    wc = counter(clock, rate=2)
    wc.check("a")
    wc.check("a")
    for _ in range(50):
        wc.check("a")
    clock.advance(10.0 + 5.0 + 0.001)  # next window, half of it gone: 2 * 0.5 + 1 <= 2
    assert wc.check("a") is None


def test_window_counter_forgets_idle_keys():
    clock = FakeClock(1000.0)
    wc = counter(clock, rate=3)
    wc.check("a")
    clock.advance(20.0)
    wc.check("b")
    assert len(wc) == 1


def test_window_counter_rate_zero_is_no_limit():
    wc = counter(FakeClock(), rate=0)
    assert all(wc.check("a") is None for _ in range(100))
