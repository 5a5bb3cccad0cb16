"""Velocity-aware buffers: a figure's exponentially weighted sell rate times the channel's
publish lag, held back from what the channel is shown (pure; the caller brings the clock)."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from engine.channel_publishing import Velocity

LN2 = math.log(2)


class SellRates:
    """Per key, units sold per second, weighted so a sale half_life_s old counts half.

    Each key keeps an exponentially decayed sum S of the units it lost; for a steady
    rate r, S tends to r/k with k = ln 2 / half_life_s, so the rate is S·k. It decays
    on its own when sales stop. Bounded: past keys_max the key sold least recently goes.
    """

    def __init__(self, half_life_s: float, keys_max: int = 1_000_000) -> None:
        if half_life_s <= 0 or keys_max < 1:
            raise ValueError("half_life_s must be above 0 and keys_max at least 1")
        self._k_per_s = LN2 / half_life_s
        self._keys_max = keys_max
        self._sums: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # (S, at_s)

    def __len__(self) -> int:
        return len(self._sums)

    def observe(self, key: Hashable, units: int, at_s: float) -> None:
        """`units` sold at `at_s` (a decrease of the figure); out-of-order times count as now."""
        if units <= 0:
            return
        decayed = self._decayed(key, at_s)
        last_s = self._sums[key][1] if key in self._sums else at_s
        self._sums[key] = (decayed + units, max(at_s, last_s))
        self._sums.move_to_end(key)
        while len(self._sums) > self._keys_max:
            self._sums.popitem(last=False)

    def rate_per_s(self, key: Hashable, now_s: float) -> float:
        return self._decayed(key, now_s) * self._k_per_s

    def _decayed(self, key: Hashable, now_s: float) -> float:
        total, at_s = self._sums.get(key, (0.0, now_s))
        return total * math.exp(-self._k_per_s * max(0.0, now_s - at_s))


def velocity_buffer_units(figure: int, rate_per_s: float, lag_s: float,
                          velocity: Velocity) -> int:
    """Units expected to sell before the channel hears of it (rate × lag, to the nearest
    unit: rounding up would hold one back for ever, since a decayed rate never reaches 0),
    at most `max_units` and `max_percent` of the figure (rounded up, as percent buffers are)."""
    if figure <= 0 or rate_per_s <= 0 or lag_s <= 0:
        return 0
    expected = math.floor(rate_per_s * lag_s + 0.5)
    cap = min(velocity.max_units, math.ceil(figure * velocity.max_percent / 100))
    return max(0, min(expected, cap))


class Ewma:
    """An exponentially weighted mean of samples (the measured publish lag); None until fed."""

    def __init__(self, weight: float = 0.2) -> None:
        if not 0 < weight <= 1:
            raise ValueError("weight must be in (0, 1]")
        self._weight = weight
        self.value: float | None = None

    def add(self, sample: float) -> None:
        self.value = sample if self.value is None else (
            self.value + self._weight * (sample - self.value))
