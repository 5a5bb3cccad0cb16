"""A partition host sweeps due holds at its own clock and spends no command on an idle sweep."""

from __future__ import annotations

from engine.model import Reserve, ReserveLine
from engine.partition_host import HOUSEKEEPING_INTERVAL_MS, PartitionHost

NOW_MS = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


def host_with_hold(ttl_s: int = 2) -> tuple[PartitionHost, Clock]:
    clock = Clock()
    host = PartitionHost(0, clock_ms=clock)
    host.state.load_items(["sku"], ["dc"], [5])
    host.apply([Reserve("k", "r0-x", (ReserveLine("sku", "dc", 2),), ttl_seconds=ttl_s)])
    return host, clock


def test_sweep_expires_a_hold_once_it_is_due():
    """A hold is expired by the first sweep at or after its due time, not before."""
    host, clock = host_with_hold(ttl_s=2)
    clock.now_ms += 1_999
    assert host.sweep() == 0
    clock.now_ms += 1
    assert host.sweep() == 1
    assert host.state.quantities_of("sku", "dc")["reserved"] == 0


def test_sweep_with_nothing_due_takes_no_sequence_number():
    """Idle sweeps apply no command, so an idle partition journals nothing."""
    host, clock = host_with_hold(ttl_s=60)
    seq = host.state.seq
    for _ in range(10):
        clock.now_ms += 500
        host.sweep()
    assert host.state.seq == seq


def test_sweep_still_housekeeps_when_idle_for_long():
    """Without any hold due, a sweep still runs once per housekeeping interval."""
    host, clock = host_with_hold(ttl_s=3_600)
    seq = host.state.seq
    clock.now_ms += HOUSEKEEPING_INTERVAL_MS
    host.sweep()
    assert host.state.seq == seq + 1
