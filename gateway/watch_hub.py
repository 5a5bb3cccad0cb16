"""WatchAvailability's engine: poll partitions for changed channel figures, number them per
channel, keep recent ones for resumes, and fan them out to watchers coalesced per SKU.

Rounds are serial: a round asks every partition what changed since its cursor, numbers
and fans out the answers, and only then reads snapshots for watchers that just arrived.
A snapshot is therefore never older than a change numbered before it, and every change
read afterwards is numbered after it: a client applying updates in order holds the truth.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from engine.channels import DEFAULT
from engine.model import ChannelFigure, WatchChanges, WatchResult, WatchSnapshot
from engine.partition_host import wall_clock_ms
from engine.routing import partition_of

log = logging.getLogger(__name__)
# Keep polling a channel this long after its last watcher leaves, so a client that
# reconnects in that time resumes from its sequence instead of taking a snapshot.
LINGER_S = 60.0
SNAPSHOT_PAGE_SKUS = 1_000
POLL_TIMEOUT_S = 5.0


class Kind(IntEnum):
    """The UpdateKind values of the wire contract."""

    SNAPSHOT = 1
    SNAPSHOT_COMPLETE = 2
    CHANGE = 3


@dataclass(frozen=True, slots=True)
class Update:
    kind: Kind
    sku: str
    location: str
    available_to_sell: int
    sequence: int
    updated_at_unix_ms: int


class WatchEnded(Exception):
    """The hub stopped (the gateway drains): the client should reconnect elsewhere."""


@dataclass(eq=False)
class Watcher:
    """One WatchAvailability call: its filter, and its updates not yet sent, one per key."""

    channel: str
    skus: frozenset[str] | None
    snapshot: list[Update] = field(default_factory=list)
    pending: dict[tuple[str, str], Update] = field(default_factory=dict)
    live: bool = False
    ended: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, sku: str) -> bool:
        return self.skus is None or sku in self.skus

    def push(self, update: Update) -> None:
        self.pending[(update.sku, update.location)] = update  # the newest figure wins
        self.wake.set()

    async def updates(self) -> AsyncIterator[Update]:
        """The snapshot (if any) then changes in sequence order, as they come."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.ended:
                raise WatchEnded("the gateway is draining; reconnect to resume")
            ready, self.snapshot = self.snapshot, []
            changes = sorted(self.pending.values(), key=lambda update: update.sequence)
            self.pending.clear()
            for update in (*ready, *changes):
                yield update


@dataclass
class _ChannelStream:
    """A channel's sequence space in this hub, its recent updates and its watchers."""

    sequence: int = 0
    # Changes are numbered only while the channel is polled: a resume must not reach
    # back past the start of the current stretch of polling.
    polled_since: int = 0
    history: collections.deque = field(default_factory=collections.deque)
    watchers: set[Watcher] = field(default_factory=set)
    linger_until_s: float = 0.0


class WatchHub:
    """One per gateway; polls only while some channel has (or recently had) a watcher."""

    def __init__(self, submit: Callable, partition_count: int, interval_s: float,
                 history_updates_max: int, clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.stream_id = secrets.token_hex(8)
        self._submit = submit  # (partition, command, deadline) -> awaitable result
        self._count = partition_count
        self._interval_s = interval_s
        self._history_max = history_updates_max
        self._clock_ms = clock_ms
        self._streams: dict[str, _ChannelStream] = {}
        self._cursors: list[tuple[str, int]] = [("", 0)] * partition_count
        self._arrivals: list[Watcher] = []
        self._poller: asyncio.Task | None = None
        self._wake = asyncio.Event()

    # ---- watchers ---------------------------------------------------------------------

    def watch(self, channel: str, skus: frozenset[str] | None, resume_stream_id: str = "",
              resume_after_sequence: int = 0) -> Watcher:
        """A watcher of `channel`: resumed from the history when it can be, else it gets a
        snapshot first."""
        channel = channel or DEFAULT
        stream = self._streams.setdefault(channel, _ChannelStream())
        if not stream.watchers and not self._polled(stream):
            # A new stretch of polling begins. Changes made since the last one were never
            # numbered, so a number is skipped: a resume from before it takes a snapshot.
            stream.sequence += 1
            stream.polled_since = stream.sequence
            stream.history.clear()
        watcher = Watcher(channel, skus)
        stream.watchers.add(watcher)
        if self._resumable(stream, resume_stream_id, resume_after_sequence):
            for update in stream.history:
                if update.sequence > resume_after_sequence and watcher.wants(update.sku):
                    watcher.push(update)
            watcher.live = True
        else:
            self._arrivals.append(watcher)
        self._ensure_polling()
        return watcher

    def leave(self, watcher: Watcher) -> None:
        stream = self._streams[watcher.channel]
        stream.watchers.discard(watcher)
        if watcher in self._arrivals:
            self._arrivals.remove(watcher)
        if not stream.watchers:
            stream.linger_until_s = time.monotonic() + LINGER_S

    def _resumable(self, stream: _ChannelStream, stream_id: str, after: int) -> bool:
        if stream_id != self.stream_id or after > stream.sequence:
            return False
        oldest = stream.history[0].sequence if stream.history else stream.sequence + 1
        # Every change after `after` must still be in the history, and numbered in the
        # current stretch of polling.
        return after >= stream.polled_since and after >= oldest - 1

    async def close(self) -> None:
        """End every watch (clients reconnect to another gateway) and stop polling."""
        for stream in self._streams.values():
            for watcher in stream.watchers:
                watcher.ended = True
                watcher.wake.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    # ---- polling ------------------------------------------------------------------------

    def _polled(self, stream: _ChannelStream) -> bool:
        return bool(stream.watchers) or stream.linger_until_s > time.monotonic()

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())
        self._wake.set()  # a new watcher's snapshot need not wait out the interval

    async def _poll_forever(self) -> None:
        while True:
            channels = tuple(name for name, stream in self._streams.items()
                             if self._polled(stream))
            if not channels:
                self._cursors = [("", 0)] * self._count  # nothing numbered until polled again
                return
            started_s = time.monotonic()
            try:
                await self._round(channels)
            except Exception:  # a partition restarting: the next round retries it
                log.warning("watch poll failed; retrying", exc_info=True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(
                    0.0, self._interval_s - (time.monotonic() - started_s)))

    async def _round(self, channels: tuple[str, ...]) -> None:
        answers = await asyncio.gather(*(self._changes(p, channels) for p in range(self._count)),
                                       return_exceptions=True)
        now_ms = self._clock_ms()
        for partition, answer in enumerate(answers):
            if isinstance(answer, BaseException):
                log.warning("watch poll of partition %s failed: %s", partition, answer)
                continue
            self._cursors[partition], figures = answer
            self._fan_out(channels, figures, now_ms)
        arrivals, self._arrivals = self._arrivals, []
        if arrivals:
            await self._snapshot(arrivals)

    async def _changes(self, partition: int, channels: tuple[str, ...]):
        ring, total = self._cursors[partition]
        answer: WatchResult = await self._ask(partition, WatchChanges(channels, ring, total))
        figures = answer.figures
        if answer.refresh and ring:
            # Changes were lost to this cursor (a restarted partition, or more than the
            # ring keeps): every figure of the partition goes out again as a change.
            figures = await self._pages(partition, channels, ())
        return (answer.ring, answer.total), figures

    async def _pages(self, partition: int, channels: tuple[str, ...],
                     skus: tuple[str, ...]) -> list[ChannelFigure]:
        figures: list[ChannelFigure] = []
        after = 0
        while after >= 0:
            page = await self._ask(partition, WatchSnapshot(channels, skus, after,
                                                            SNAPSHOT_PAGE_SKUS))
            figures += page.figures
            after = page.next_after
        return figures

    async def _ask(self, partition: int, command):
        return await self._submit(partition, command, time.monotonic() + POLL_TIMEOUT_S)

    def _fan_out(self, channels: tuple[str, ...], figures, now_ms: int) -> None:
        for index, name in enumerate(channels):
            stream = self._streams[name]
            for sku, location, values in figures:
                value = values[index]
                if value is None:
                    continue
                stream.sequence += 1
                update = Update(Kind.CHANGE, sku, location, value, stream.sequence, now_ms)
                stream.history.append(update)
                for watcher in stream.watchers:
                    if watcher.live and watcher.wants(sku):
                        watcher.push(update)
            while len(stream.history) > self._history_max:
                stream.history.popleft()

    async def _snapshot(self, arrivals: list[Watcher]) -> None:
        """Read and hand each new watcher its snapshot, then make it live."""
        for watcher in arrivals:
            channels = (watcher.channel,)
            skus = tuple(sorted(watcher.skus)) if watcher.skus is not None else ()
            owners = ({partition_of(sku, self._count) for sku in skus} if skus
                      else range(self._count))
            if not all(self._cursors[p][0] for p in owners):
                # A partition's first poll failed: a cursor taken after this snapshot
                # would skip the changes in between, so wait for a round that takes one.
                self._arrivals.append(watcher)
                continue
            try:
                pages = await asyncio.gather(*(self._pages(p, channels, skus) for p in owners))
            except Exception:
                log.warning("watch snapshot failed; retrying next round", exc_info=True)
                self._arrivals.append(watcher)
                continue
            stream = self._streams[watcher.channel]
            now_ms = self._clock_ms()
            watcher.snapshot = [
                Update(Kind.SNAPSHOT, figure.sku, figure.location, figure.figures[0],
                       stream.sequence, now_ms)
                for page in pages for figure in page if figure.figures[0] is not None]
            watcher.snapshot.append(Update(Kind.SNAPSHOT_COMPLETE, "", "", 0, stream.sequence,
                                           now_ms))
            watcher.live = True
            watcher.wake.set()
