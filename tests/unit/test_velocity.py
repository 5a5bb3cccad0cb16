"""Velocity math: exponentially weighted sell rates, the bounded buffer, the lag EWMA."""

import math
import random

import pytest

from engine.channel_publishing import Velocity
from engine.velocity import Ewma, SellRates, velocity_buffer_units


def test_sell_rate_of_a_steady_stream_converges_to_its_rate():
    """Two units every second for ten half-lives reads as 2 units/s."""
    rates = SellRates(half_life_s=10)
    for second in range(100):
        rates.observe("a", 2, at_s=float(second))
    assert rates.rate_per_s("a", now_s=99.0) == pytest.approx(2.0, rel=0.05)


def test_sell_rate_halves_every_half_life_once_sales_stop():
    """With no sales, the rate halves each half-life, on the clock passed in."""
    rates = SellRates(half_life_s=30)
    rates.observe("a", 12, at_s=0.0)
    first = rates.rate_per_s("a", 0.0)
    assert first == pytest.approx(12 * math.log(2) / 30)
    assert rates.rate_per_s("a", 30.0) == pytest.approx(first / 2)
    assert rates.rate_per_s("a", 90.0) == pytest.approx(first / 8)


def test_sell_rate_ignores_increases_and_unknown_keys():
    """Receipts (no units sold) and keys never seen have no rate."""
    rates = SellRates(half_life_s=10)
    rates.observe("a", 0, at_s=1.0)
    rates.observe("a", -5, at_s=1.0)
    assert rates.rate_per_s("a", 1.0) == 0.0 and rates.rate_per_s("b", 1.0) == 0.0


def test_sell_rate_out_of_order_observation_counts_at_the_newest_time():
    """An update stamped before the last one never inflates the rate by decaying backwards."""
    rates = SellRates(half_life_s=10)
    rates.observe("a", 4, at_s=10.0)
    rates.observe("a", 4, at_s=5.0)
    assert rates.rate_per_s("a", 10.0) == pytest.approx(8 * math.log(2) / 10)


def test_sell_rates_forget_the_key_sold_least_recently_past_the_bound():
    """The table is bounded: the oldest-sold key goes first."""
    rates = SellRates(half_life_s=10, keys_max=2)
    for at_s, key in enumerate(("a", "b", "a", "c")):
        rates.observe(key, 1, at_s=float(at_s))
    assert len(rates) == 2
    assert rates.rate_per_s("b", 3.0) == 0.0 and rates.rate_per_s("a", 3.0) > 0


@pytest.mark.parametrize("figure, rate, lag, expected", [
    (100, 0.5, 10.0, 5),     # rate × lag
    (100, 0.56, 10.0, 6),    # to the nearest unit
    (100, 0.04, 10.0, 0),    # a rate decayed to almost nothing holds nothing back
    (100, 10.0, 60.0, 30),   # capped at max_units (30 < 50% of 100)
    (20, 10.0, 60.0, 10),    # capped at max_percent of the figure
    (3, 10.0, 60.0, 2),      # 50% of 3, rounded up
    (0, 10.0, 60.0, 0),      # nothing to hold back
    (-4, 10.0, 60.0, 0),     # exposure is never buffered further
    (100, 0.0, 60.0, 0),     # not selling
    (100, 1.0, 0.0, 0),      # a channel that hears at once
])
def test_velocity_buffer_is_rate_times_lag_bounded(figure, rate, lag, expected):
    """rate × lag to the nearest unit, at most max_units and max_percent of the figure."""
    velocity = Velocity(half_life_s=60, max_units=30, max_percent=50.0)
    assert velocity_buffer_units(figure, rate, lag, velocity) == expected


def test_velocity_buffer_never_exceeds_its_bounds_for_random_inputs():
    """For any figure, rate and lag the buffer is within [0, min(max_units, ⌈pct·figure⌉)]."""
    draw = random.Random(7)
    for _ in range(2_000):
        velocity = Velocity(max_units=draw.randint(0, 100), max_percent=draw.uniform(0, 100))
        figure = draw.randint(-50, 500)
        units = velocity_buffer_units(figure, draw.uniform(0, 20), draw.uniform(0, 600),
                                      velocity)
        cap = min(velocity.max_units, math.ceil(max(figure, 0) * velocity.max_percent / 100))
        assert 0 <= units <= cap


def test_ewma_starts_at_the_first_sample_then_moves_by_its_weight():
    """None until fed; each sample pulls the mean a fifth of the way."""
    mean = Ewma(weight=0.2)
    assert mean.value is None
    mean.add(10.0)
    mean.add(20.0)
    assert mean.value == pytest.approx(12.0)
