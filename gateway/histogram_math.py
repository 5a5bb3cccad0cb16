"""Quantiles and differences of cumulative histograms, as Prometheus's histogram_quantile."""

from __future__ import annotations

from collections.abc import Sequence


def quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float],
             interpolate: bool = True) -> float | None:
    """The q-quantile (0..1) of a histogram; None when it holds no observation.

    `bounds` are the finite upper bounds, ascending; `cumulative` the count at or below
    each, plus the total (+Inf) last. The answer is interpolated linearly inside the
    bucket the rank falls in, from 0 for the first; a rank in the +Inf bucket answers the
    highest finite bound, since nothing is known above it. Without `interpolate` the answer
    is the upper bound of that bucket ("at most"), for counts such as batch sizes.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within 0..1, not {q}")
    if len(cumulative) != len(bounds) + 1:
        raise ValueError(f"{len(bounds)} bounds need {len(bounds) + 1} counts, "
                         f"not {len(cumulative)}")
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    below = 0.0
    for index, count in enumerate(cumulative):
        if count >= rank and count > below:
            if index == len(bounds):
                return bounds[-1] if bounds else None
            if not interpolate:
                return bounds[index]
            lower = bounds[index - 1] if index else 0.0
            return lower + (bounds[index] - lower) * (rank - below) / (count - below)
        below = count
    return bounds[-1] if bounds else None


def difference(newer: Sequence[float], older: Sequence[float] | None) -> list[float]:
    """Counts observed between two readings of one histogram; a reset (a restarted process,
    counts gone down) leaves the newer reading as it is."""
    if older is None or len(older) != len(newer) or any(
            new < old for new, old in zip(newer, older, strict=True)):
        return list(newer)
    return [new - old for new, old in zip(newer, older, strict=True)]
