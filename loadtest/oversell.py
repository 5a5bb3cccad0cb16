"""The independent oversell checker: units the harness saw granted, against the stock.

Pure: it reads only what the harness recorded from successful answers (and, for a
read-back, the quantities a target reports), never a target's own verdict. Every interval
is the harness's *narrowest* view of a grant (from its acknowledgement to the earliest
instant it could have ended), so an overlap beyond the stock here was an overlap at the
target too: the checker can miss nothing it reports, and reports nothing that did not happen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# How long past its due time a target may take to sweep an expired hold (the engine sweeps
# every 0.5 s; the baselines every 0.25 s).
SWEEP_LAG_S = 1.5


@dataclass(frozen=True)
class HoldRecord:
    """One held line of a cart as the harness saw it; times on the harness's clock, seconds."""

    sku: str
    units: int
    first_sent_s: float  # the first attempt of the Reserve left: the hold cannot expire earlier
    acked_s: float  # its HELD answer arrived
    ttl_s: float
    committed: bool = False  # a Commit was acknowledged
    commit_unknown: bool = False  # a Commit was tried and never answered
    released_s: float | None = None  # a Release was first sent then (answered or not)
    release_acked: bool = False

    @property
    def earliest_end_s(self) -> float | None:
        """When the hold could first have stopped counting; None while it counts for good."""
        if self.committed:
            return None
        expiry_s = self.first_sent_s + self.ttl_s
        return expiry_s if self.released_s is None else min(expiry_s, self.released_s)


@dataclass(frozen=True)
class Expected:
    """What a read-back of one SKU must show, as ranges the harness can vouch for."""

    reserved_low: int = 0
    reserved_high: int = 0
    committed_low: int = 0
    committed_high: int = 0


def peak_live_units(holds: Iterable[HoldRecord]) -> dict[str, int]:
    """The most units live at once per SKU: a sweep over each hold's narrowest interval."""
    events: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
    for hold in holds:
        end_s = hold.earliest_end_s
        if end_s is not None and end_s <= hold.acked_s:
            continue  # lapsed before it was acknowledged: it proves nothing
        # Ends sort before starts at the same instant (0 < 1), so touching intervals never add.
        events[hold.sku].append((hold.acked_s, 1, hold.units))
        if end_s is not None:
            events[hold.sku].append((end_s, 0, -hold.units))
    peaks = {}
    for sku, sku_events in events.items():
        live = peak = 0
        for _, _, change in sorted(sku_events):
            live += change
            peak = max(peak, live)
        peaks[sku] = peak
    return peaks


def oversold_by_sku(stock_by_sku: Mapping[str, int],
                    holds: Iterable[HoldRecord]) -> dict[str, int]:
    """Units granted beyond the stock at the worst instant, per SKU that oversold."""
    return {sku: peak - stock_by_sku.get(sku, 0)
            for sku, peak in peak_live_units(holds).items() if peak > stock_by_sku.get(sku, 0)}


def readback_oversold(stock_by_sku: Mapping[str, int],
                      read_by_sku: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """Units a target holds or committed (reserved, committed) beyond the stock, per SKU."""
    oversold = {}
    for sku, (reserved, committed) in read_by_sku.items():
        excess = reserved + committed - stock_by_sku.get(sku, 0)
        if excess > 0:
            oversold[sku] = excess
    return oversold


def live_units_at(holds: Sequence[HoldRecord], times_s: Sequence[float],
                  skus: frozenset[str] | None = None) -> list[int]:
    """Units the harness knows were live at each instant (the harness's side of divergence)."""
    counted = [hold for hold in holds if skus is None or hold.sku in skus]
    return [sum(hold.units for hold in counted
                if hold.acked_s <= at_s and (hold.earliest_end_s is None
                                             or at_s < hold.earliest_end_s))
            for at_s in times_s]


def expected_readback(holds: Iterable[HoldRecord], read_from_s: float, read_to_s: float,
                      sweep_lag_s: float = SWEEP_LAG_S) -> dict[str, Expected]:
    """Per SKU, what a read taken between `read_from_s` and `read_to_s` must show.

    Committed units are exact unless a Commit went unanswered. A hold is surely still
    reserved if its expiry cannot have come yet; surely gone once released or well past its
    latest possible expiry (acknowledged + TTL + the sweep); in between it may be either.
    """
    low: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for hold in holds:
        bounds = low[hold.sku]
        if hold.committed:
            bounds[2] += hold.units
            bounds[3] += hold.units
            continue
        if hold.commit_unknown:  # reserved, committed or expired: each is possible
            bounds[1] += hold.units
            bounds[3] += hold.units
            continue
        if hold.release_acked:
            continue
        surely_live = hold.released_s is None and read_to_s < hold.first_sent_s + hold.ttl_s
        surely_gone = read_from_s > hold.acked_s + hold.ttl_s + sweep_lag_s
        if surely_live:
            bounds[0] += hold.units
        if not surely_gone:
            bounds[1] += hold.units
    return {sku: Expected(*values) for sku, values in low.items()}


def readback_problems(expected: Mapping[str, Expected],
                      read_by_sku: Mapping[str, tuple[int, int]]) -> list[str]:
    """Each SKU whose read-back (reserved, committed) lies outside what was acknowledged:
    below it is lost, above it doubled."""
    problems = []
    for sku in sorted(set(expected) | set(read_by_sku)):
        want = expected.get(sku, Expected())
        reserved, committed = read_by_sku.get(sku, (0, 0))
        if reserved < want.reserved_low:
            problems.append(f"{sku}: reserved {reserved} < {want.reserved_low} acknowledged "
                            f"holds still live (lost)")
        if reserved > want.reserved_high:
            problems.append(f"{sku}: reserved {reserved} > {want.reserved_high} that could "
                            f"still be held (doubled)")
        if committed < want.committed_low:
            problems.append(f"{sku}: committed {committed} < {want.committed_low} "
                            f"acknowledged (lost)")
        if committed > want.committed_high:
            problems.append(f"{sku}: committed {committed} > {want.committed_high} "
                            f"acknowledged or unanswered (doubled)")
    return problems
