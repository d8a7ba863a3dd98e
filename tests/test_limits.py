"""Per-socket limits with a fake clock (chat.limits)."""

from __future__ import annotations

import time

import pytest

from chat.limits import RateLimiter, Throttle


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
