"""A ring-fenced channel's side of its feeds: the per-row units a feed shows it, and the
settles that follow each feed once the channel has had time to apply it."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Protocol

from engine.channels import Channel

Key = tuple[str, str]
# Settles waiting per channel; past it the oldest is forgotten, which only keeps its
# fences up until a later settle (never lets a promise go uncovered).
SETTLES_MAX = 1_000


class Fences(Protocol):
    """Where a publisher raises and settles its channel's fences: the engine's router in
    process, or the FenceChannel RPC."""

    async def shown(self, channel: str, items: list[tuple[str, str, int]],
                    publish_seq: int) -> None: ...

    async def settle(self, channel: str, publish_seq: int) -> None: ...


def fence_units(channel: Channel, skus: Iterable[str], locations_of: dict[str, set[str]],
                shown_of: Callable[[Key], int], actual_of: Callable[[Key], int]
                ) -> list[tuple[str, str, int]]:
    """(sku, location, units) for every known row of `skus`.

    The channel may act on a row's own figure or on the SKU's network figure (a
    marketplace sells the network figure anywhere), so a row's units cover both: its own
    shown figure, and its part of the network figure, spread over the rows in the
    channel's reserve-anywhere order, each up to what the channel may sell there.
    """
    units = []
    for sku in skus:
        left = shown_of((sku, ""))
        for location in channel.in_priority(sorted(locations_of.get(sku, ()))):
            key = (sku, location)
            part = min(left, max(actual_of(key), 0))
            left -= part
            units.append((sku, location, max(shown_of(key), part)))
    return units


class PendingSettles:
    """(due_s, publish_seq) in due order: feeds are fenced in order and held alike."""

    def __init__(self, settles_max: int = SETTLES_MAX) -> None:
        self._due: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=settles_max)

    def __len__(self) -> int:
        return len(self._due)

    def add(self, due_s: float, publish_seq: int) -> None:
        self._due.append((due_s, publish_seq))

    def retry(self, due_s: float, publish_seq: int) -> None:
        """A settle that failed goes first again, at `due_s` (forgotten when the queue is
        full: the later settles behind it cover its fences)."""
        if len(self._due) < self._due.maxlen:
            self._due.appendleft((due_s, publish_seq))

    def due_in_s(self, now_s: float) -> float | None:
        """Seconds until the next settle is due (0 when one is), None when none waits."""
        return max(0.0, self._due[0][0] - now_s) if self._due else None

    def pop_due(self, now_s: float) -> int | None:
        if self._due and self._due[0][0] <= now_s:
            return self._due.popleft()[1]
        return None
