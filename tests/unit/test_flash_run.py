"""The flash-sale driver against an in-memory target: the closed curve's saturating loop."""

from __future__ import annotations

import asyncio

import pytest

from loadtest import flash_results
from loadtest.flash_run import FlashRun, RunSettings
from loadtest.recorder import Recorder
from loadtest.targets import HoldAnswer
from loadtest.workload import WorkloadSpec, build_buyers

SKUS = ["HOT"]


class CountingTarget:
    """Holds units of one stock in memory, each call taking `service_s`; counts overlap."""

    name = "memory"

    def __init__(self, stock: int, service_s: float) -> None:
        self.stock, self.service_s = stock, service_s
        self.reserves_in_flight = self.reserves_in_flight_peak = self.reserves = 0
        self.holds: dict[str, int] = {}

    async def setup(self, skus, stock):
        pass

    async def reserve(self, key, lines, ttl_s, timeout_s):
        self.reserves += 1
        self.reserves_in_flight += 1
        self.reserves_in_flight_peak = max(self.reserves_in_flight_peak,
                                           self.reserves_in_flight)
        try:
            await asyncio.sleep(self.service_s)
        finally:
            self.reserves_in_flight -= 1
        units = sum(quantity for _, quantity in lines)
        if units > self.stock:
            return HoldAnswer(False)
        self.stock -= units
        self.holds[key] = units
        return HoldAnswer(True, key)

    async def commit(self, reservation_id, key, timeout_s):
        await asyncio.sleep(self.service_s)
        return self.holds.pop(reservation_id, None) is not None

    async def release(self, reservation_id, key, timeout_s):
        await asyncio.sleep(self.service_s)
        units = self.holds.pop(reservation_id, None)
        self.stock += units or 0
        return units is not None

    async def read(self, skus):
        return {sku: (sum(self.holds.values()), 0) for sku in skus}

    async def close(self):
        pass


def played(buyers: int, duration_s: float, in_flight_max: int, service_s: float,
           arrival: str = "closed") -> tuple[CountingTarget, dict]:
    spec = WorkloadSpec(duration_s=duration_s, buyers=buyers, skus=1, stock=50,
                        arrival=arrival, cart_mix=((1, 1),), think_s=0.0, abandon_rate=0.0,
                        commit_ratio=1.0)
    target = CountingTarget(spec.stock, service_s)
    recorder = Recorder()
    run = FlashRun(target, build_buyers(spec), SKUS, spec,
                   RunSettings(requests_in_flight_max=in_flight_max, progress=False),
                   recorder, "test")
    facts = asyncio.run(run.run())
    return target, flash_results.target_figures(recorder, facts, SKUS, spec.stock)


def test_closed_curve_keeps_at_most_the_in_flight_limit_of_reserves_outstanding():
    """Every buyer starts at once, yet no more Reserves than the limit are ever outstanding,
    and every buyer is served when the duration allows."""
    target, figures = played(buyers=400, duration_s=30, in_flight_max=8,
                                 service_s=0.001)
    assert target.reserves == 400
    assert target.reserves_in_flight_peak == 8
    assert figures["held"] == 50 and figures["oversold"] == 0


def test_closed_curve_stops_offering_buyers_at_the_duration():
    """Buyers left when the duration passes are never begun; ops/s counts the saturated
    window only, so it is about the target's own rate (8 in flight / 10 ms each)."""
    target, figures = played(buyers=100_000, duration_s=0.5, in_flight_max=8,
                                 service_s=0.01)
    assert target.reserves < 1_000
    assert 0.5 <= figures["saturated_s"] < 1.0
    assert 300 < figures["ops_per_s"] < 900


def test_an_open_curve_starts_buyers_on_schedule_and_rates_the_whole_run():
    """A flat curve spreads 40 buyers over the duration: the run lasts about as long, and
    ops/s is every answer over the run, the offered rate a target that keeps up is given."""
    target, figures = played(buyers=40, duration_s=0.4, in_flight_max=8, service_s=0.001,
                             arrival="flat")
    assert target.reserves == 40 and figures["saturated_s"] == 0
    assert 0.3 < figures["run_s"] < 1.0
    assert figures["ops_per_s"] == pytest.approx(figures["ops"] / figures["run_s"], rel=0.01)
