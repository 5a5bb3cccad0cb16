"""The ERP circuit breaker opens after failures in a row, waits, then lets one probe decide."""

import pytest

from engine.circuit_breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self):
        self.now_s = 100.0

    def __call__(self):
        return self.now_s


def test_breaker_stays_closed_below_the_threshold():
    """Failures short of the threshold, then a success, leave it closed and counting afresh."""
    breaker = CircuitBreaker(3, 5.0, Clock())
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED and breaker.try_acquire() == 0


def test_breaker_opens_after_failures_in_a_row_and_refuses_calls():
    """The threshold-th failure opens it; calls must wait out the recovery time."""
    clock = Clock()
    breaker = CircuitBreaker(3, 5.0, clock)
    for _ in range(3):
        breaker.failed()
    assert breaker.state is BreakerState.OPEN and breaker.opened_total == 1
    clock.now_s += 2.0
    assert breaker.try_acquire() == pytest.approx(3.0)


def test_breaker_half_open_lets_exactly_one_probe_through():
    """After the recovery time one caller probes; the others wait for its answer."""
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failed()
    clock.now_s += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire() == 0
    assert breaker.try_acquire() > 0


def test_breaker_successful_probe_closes_it():
    """A probe that succeeds closes the breaker for everyone."""
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failed()
    clock.now_s += 5.0
    breaker.try_acquire()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.try_acquire() == 0


def test_breaker_failed_probe_opens_it_for_another_period():
    """A probe that fails opens it again from that moment, without counting a new opening."""
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failed()
    clock.now_s += 6.0
    breaker.try_acquire()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and breaker.opened_total == 1
    assert breaker.try_acquire() == pytest.approx(5.0)


def test_breaker_refuses_nonsense_settings():
    """A threshold below one or a non-positive recovery time is refused."""
    with pytest.raises(ValueError, match="failures_max"):
        CircuitBreaker(0, 5.0)
    with pytest.raises(ValueError, match="recovery_s"):
        CircuitBreaker(1, 0)


def test_breaker_trip_opens_it_for_as_long_as_the_erp_asked():
    """A 503 with Retry-After opens it at once for that long (never shorter than recovery)."""
    clock = Clock()
    breaker = CircuitBreaker(5, 2.0, clock)
    breaker.trip(20.0)
    assert breaker.state is BreakerState.OPEN and breaker.opened_total == 1
    clock.now_s += 19.0
    assert breaker.try_acquire() == pytest.approx(1.0)
    clock.now_s += 1.0
    assert breaker.try_acquire() == 0 and breaker.state is BreakerState.HALF_OPEN
