"""One webhook channel's publisher: coalesce its watched figures per SKU-location, hold back
velocity buffers, POST batches at the channel's cadence and rate, retry with backoff, and
remember what the channel acknowledged.

A POST's body (JSON, `Content-Type: application/json`, header `Idempotency-Key` equal to
`batch_id`, the same on every retry of the batch):

    {"channel": "marketplace-a", "batch_id": "<run>-<n>",
     "items": [{"sku": "A1", "location": "", "available_to_sell": 7, "sequence": 812}]}

`location` "" is the SKU's network figure; `sequence` is the watch stream's for the change
behind the quantity. Any 2xx acknowledges every item; 408, 429 (honouring `Retry-After`),
5xx, timeouts and refused connections are retried; another 4xx drops the batch (its
figures go again when they next change).

For a ring-fenced channel each flush is a numbered publish: its figures are fenced in the
engine before the first POST (a flush that cannot fence posts nothing), and once every
batch is acknowledged the fences are settled `fence_hold_s` later (engine/fence_feed.py).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from engine.channels import Channel
from engine.config import PublisherConfig
from engine.divergence import LOCATION, NETWORK, DivergenceBook
from engine.fence_feed import Fences, PendingSettles, fence_units
from engine.velocity import Ewma, SellRates, velocity_buffer_units

log = logging.getLogger(__name__)
# The wire's UpdateKind values.
SNAPSHOT, SNAPSHOT_COMPLETE, CHANGE = 1, 2, 3
# With nothing to post but velocity buffers to revisit (they shrink as sales stop), look
# again this often at least, so a cadence of 0 never spins.
REVISIT_S_MIN = 1.0
# Figures per FenceShown: the gateway's limit (RequestLimits.fence_items_per_request_max).
FENCE_ITEMS_MAX = 1_000
# A settle the engine did not take is tried again this much later.
SETTLE_RETRY_S = 1.0
Key = tuple[str, str]


class Change(NamedTuple):
    """One AvailabilityUpdate, as the publisher needs it (no protobuf here)."""

    kind: int
    sku: str
    location: str
    available_to_sell: int
    sequence: int
    updated_at_unix_ms: int


class WebhookUnreachable(OSError):
    """No HTTP answer: refused, reset or timed out. Retried like a 5xx."""


# (url, body, headers, timeout_s) -> (HTTP status, Retry-After in seconds or None).
Post = Callable[[str, bytes, dict[str, str], float], Awaitable[tuple[int, float | None]]]


class AckStore(Protocol):
    async def record(self, channel: str, items: list[tuple[str, str, int]]) -> None: ...


class Pacer:
    """At most `rate_per_s` starts per second, evenly spaced (a bucket of one token)."""

    def __init__(self, rate_per_s: float, clock_s: Callable[[], float],
                 sleep: Callable[[float], Awaitable]) -> None:
        self._interval_s = 1.0 / rate_per_s
        self._clock_s, self._sleep = clock_s, sleep
        self._next_s = -math.inf

    async def wait(self) -> None:
        wait_s = self._next_s - self._clock_s()
        if wait_s > 0:
            await self._sleep(wait_s)
        self._next_s = max(self._clock_s(), self._next_s) + self._interval_s


@dataclass(frozen=True)
class _Item:
    key: Key
    shown: int
    sequence: int
    change: Change | None  # the change behind it; None when only its buffer moved


class ChannelPublisher:
    """Feed it changes with `offer`; `run` flushes them, at most once per cadence."""

    def __init__(self, channel: Channel, post: Post, store: AckStore, *,
                 clock_s: Callable[[], float], wall_ms: Callable[[], int],
                 sleep: Callable[[float], Awaitable], jitter: Callable[[], float],
                 run_id: str, config: PublisherConfig | None = None,
                 acknowledged: dict[Key, int] | None = None,
                 fences: Fences | None = None) -> None:
        if not channel.publish.webhook:
            raise ValueError(f"channel {channel.name!r} does not publish to a webhook")
        if channel.ring_fence and fences is None:
            raise ValueError(f"channel {channel.name!r} is ring-fenced: its publisher needs "
                             "the engine's fences")
        config = config or PublisherConfig()
        self.channel, self.config = channel, config
        self._post, self._store = post, store
        self._clock_s, self._wall_ms, self._sleep, self._jitter = clock_s, wall_ms, sleep, jitter
        self._run_id, self._batches = run_id, 0
        self._pacer = Pacer(channel.publish.rate_limit_per_s, clock_s, sleep)
        self.book = DivergenceBook(config.keys_max)
        for key, quantity in (acknowledged or {}).items():
            self.book.set_published(key, quantity)
        velocity = channel.velocity
        self._rates = SellRates(velocity.half_life_s, config.keys_max) if velocity else None
        self.publish_lag = Ewma()
        self._pending: dict[Key, Change] = {}
        self._buffered: dict[Key, tuple[int, int]] = {}  # key -> (sequence, buffer units)
        self._snapshot_keys: set[Key] | None = None
        self._last_flush_s = -math.inf
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.ready = False  # a snapshot completed: the divergence totals are whole
        self.requests: collections.Counter[str] = collections.Counter()
        self.items_acknowledged = 0
        self.batches_abandoned = 0
        self._fences = fences if channel.ring_fence else None
        self._locations: dict[str, set[str]] = {}  # sku -> locations seen (fenced only)
        self._settles = PendingSettles()
        self._settle_added = asyncio.Event()
        self._publish_seq = 0
        self.fence_failures = 0

    # ---- what the watch brings -----------------------------------------------------------

    def offer(self, change: Change) -> None:
        """Take one update of the watch: newest figure per key wins until it is posted."""
        if change.kind == SNAPSHOT_COMPLETE:
            self._complete_snapshot(change)
            return
        key = (change.sku, change.location)
        if change.kind == SNAPSHOT:
            if self._snapshot_keys is None:
                self._snapshot_keys = set()  # a (re-)snapshot begins
            self._snapshot_keys.add(key)
        previous = self.book.actual(key)
        if not self.book.set_actual(key, change.available_to_sell):
            return  # past keys_max: counted in book.keys_refused
        if self._fences is not None and change.location:
            self._locations.setdefault(change.sku, set()).add(change.location)
        if (self._rates is not None and change.kind == CHANGE and previous is not None
                and change.available_to_sell < previous):
            # A snapshot's figures are not timed steps, so only changes feed the rate.
            self._rates.observe(key, previous - change.available_to_sell,
                                change.updated_at_unix_ms / 1000)
        self._pending[key] = change
        if len(self._pending) >= self.config.pending_keys_max:
            self._room.clear()
        self._wake.set()

    async def wait_for_room(self) -> None:
        """Returns once fewer than pending_keys_max changes wait (the reader's backpressure)."""
        await self._room.wait()

    def _complete_snapshot(self, marker: Change) -> None:
        """What the snapshot did not mention is no longer sold by the channel: 0."""
        seen = self._snapshot_keys or set()
        for key in [key for key in self.book if key not in seen]:
            if self.book.actual(key) or self.book.published(key):
                self.book.set_actual(key, 0)
                self._pending[key] = Change(CHANGE, *key, 0, marker.sequence,
                                            marker.updated_at_unix_ms)
        self._snapshot_keys = None
        self.ready = True
        self._wake.set()

    # ---- posting ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush whenever something waits, never twice within the channel's cadence (and,
        ring-fenced, settle each publish's fences when they fall due)."""
        settler = asyncio.create_task(self._settle_when_due()) if self._fences else None
        try:
            await self._flush_at_cadence()
        finally:
            if settler is not None:
                settler.cancel()

    async def _flush_at_cadence(self) -> None:
        cadence_s = self.channel.publish.cadence_s
        while True:
            if not self._pending:
                if self._buffered:
                    await self._sleep(max(cadence_s, REVISIT_S_MIN))
                else:
                    self._wake.clear()
                    await self._wake.wait()
            wait_s = self._last_flush_s + cadence_s - self._clock_s()
            if wait_s > 0:
                await self._sleep(wait_s)  # the coalescing window: changes keep merging
            self._last_flush_s = self._clock_s()
            await self.flush()

    async def flush(self) -> int:
        """Post every figure whose shown quantity differs from the acknowledged one; returns
        the items acknowledged. A batch that exhausts its attempts puts it and the rest back."""
        items = self._due_items()
        publish_seq = await self._fence(items) if self._fences is not None and items else None
        if publish_seq == -1:  # not fenced: the channel must not be shown it yet
            self._requeue(items)
            return 0
        acknowledged = 0
        size = self.config.batch_items_max
        for start in range(0, len(items), size):
            batch = items[start:start + size]
            posted = await self._post_batch(batch)
            if posted is None:
                self._requeue(items[start:])
                return acknowledged  # unsettled: the next publish fences these again
            acknowledged += posted
        if publish_seq is not None:
            self._settles.add(self._clock_s() + self.channel.fence_hold_seconds, publish_seq)
            self._settle_added.set()
        return acknowledged

    # ---- fences of a ring-fenced channel ---------------------------------------------------

    async def _fence(self, items: list[_Item]) -> int:
        """Fence the rows behind a flush's figures; its publish number, or -1 on failure."""
        # Wall-clock based, so a restarted publisher's numbers still increase.
        self._publish_seq = publish_seq = max(self._publish_seq + 1, self._wall_ms())
        showing = {item.key: item.shown for item in items}

        def shown_of(key: Key) -> int:
            return showing[key] if key in showing else (self.book.published(key) or 0)

        units = fence_units(self.channel, dict.fromkeys(key[0] for key in showing),
                            self._locations, shown_of, lambda key: self.book.actual(key) or 0)
        try:
            for start in range(0, len(units), FENCE_ITEMS_MAX):
                await self._fences.shown(self.channel.name,
                                         units[start:start + FENCE_ITEMS_MAX], publish_seq)
        except Exception as error:  # the engine away: post nothing the fence does not cover
            self.fence_failures += 1
            log.warning("channel %s: could not fence publish %s (%s); not posting it",
                        self.channel.name, publish_seq, error)
            return -1
        return publish_seq

    async def settle_due(self) -> int:
        """Settle every publish whose hold has passed; returns how many were settled."""
        settled = 0
        while (publish_seq := self._settles.pop_due(self._clock_s())) is not None:
            try:
                await self._fences.settle(self.channel.name, publish_seq)
            except Exception as error:
                log.warning("channel %s: could not settle publish %s (%s); retrying",
                            self.channel.name, publish_seq, error)
                self._settles.retry(self._clock_s() + SETTLE_RETRY_S, publish_seq)
                return settled
            settled += 1
        return settled

    async def _settle_when_due(self) -> None:
        while True:
            wait_s = self._settles.due_in_s(self._clock_s())
            if wait_s is None:
                self._settle_added.clear()
                await self._settle_added.wait()
            elif wait_s > 0:
                await self._sleep(wait_s)
            else:
                await self.settle_due()

    def _due_items(self) -> list[_Item]:
        pending, self._pending = self._pending, {}
        self._room.set()
        now_s = self._wall_ms() / 1000
        lag_s = self.velocity_lag_s()
        items = []
        for key in pending.keys() | self._buffered.keys():
            change = pending.get(key)
            sequence = change.sequence if change else self._buffered[key][0]
            figure = self.book.actual(key) or 0
            buffer = (velocity_buffer_units(figure, self._rates.rate_per_s(key, now_s), lag_s,
                                            self.channel.velocity)
                      if self._rates is not None else 0)
            if buffer:
                self._buffered[key] = (sequence, buffer)
            else:
                self._buffered.pop(key, None)
            shown = max(0, figure - buffer)
            if shown != self.book.published(key):
                items.append(_Item(key, shown, sequence, change))
        items.sort(key=lambda item: item.sequence)
        return items

    def _requeue(self, items: list[_Item]) -> None:
        now_ms = self._wall_ms()
        for item in items:
            if item.key not in self._pending:  # a newer change supersedes it anyway
                self._pending[item.key] = item.change or Change(
                    CHANGE, *item.key, self.book.actual(item.key) or 0, item.sequence, now_ms)

    async def _post_batch(self, batch: list[_Item]) -> int | None:
        """Items acknowledged (0 when the webhook refused the batch for good), or None when
        every attempt failed."""
        self._batches += 1
        batch_id = f"{self._run_id}-{self._batches}"
        body = json.dumps({"channel": self.channel.name, "batch_id": batch_id, "items": [
            {"sku": item.key[0], "location": item.key[1], "available_to_sell": item.shown,
             "sequence": item.sequence} for item in batch]}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": batch_id}
        attempts = self.config.attempts_max
        for attempt in range(attempts):
            await self._pacer.wait()
            retry_after_s = None
            try:
                status, retry_after_s = await self._post(
                    self.channel.publish.webhook_url, body, headers,
                    self.config.request_timeout_s)
            except (TimeoutError, OSError) as error:
                outcome = "unreachable"
                log.warning("channel %s: webhook unreachable (%s)", self.channel.name, error)
            else:
                if 200 <= status < 300:
                    self.requests["ok"] += 1
                    await self._acknowledged(batch)
                    return len(batch)
                if status not in (408, 429) and status < 500:
                    self.requests["rejected"] += 1
                    log.error("channel %s: webhook refused batch %s with %s; dropped",
                              self.channel.name, batch_id, status)
                    return 0
                outcome = "rate_limited" if status == 429 else "retry"
            self.requests[outcome] += 1
            if attempt + 1 < attempts:
                await self._sleep(self.backoff_s(attempt, retry_after_s))
        self.batches_abandoned += 1
        return None

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """base · 2^attempt, capped, times a jitter in [0.5, 1): retries of many publishers
        spread out; never sooner than the webhook's Retry-After."""
        config = self.config
        delay_s = min(config.backoff_cap_s, config.backoff_base_s * 2 ** attempt)
        delay_s *= 0.5 + 0.5 * self._jitter()
        return max(delay_s, retry_after_s or 0.0)

    async def _acknowledged(self, batch: list[_Item]) -> None:
        for item in batch:
            self.book.set_published(item.key, item.shown)
        self.items_acknowledged += len(batch)
        changed_at_ms = [item.change.updated_at_unix_ms for item in batch if item.change]
        if changed_at_ms:
            # From the oldest change in the batch to its 2xx: how late the channel hears.
            self.publish_lag.add(max(0, self._wall_ms() - min(changed_at_ms)) / 1000)
        try:
            await self._store.record(self.channel.name,
                                     [(*item.key, item.shown) for item in batch])
        except Exception:  # Redis away: the channel has it; the record catches up next time
            log.warning("channel %s: could not record acknowledged quantities",
                        self.channel.name, exc_info=True)

    # ---- figures ----------------------------------------------------------------------------

    def velocity_lag_s(self) -> float:
        """The configured lag, else the measured publish lag, else one cadence."""
        velocity = self.channel.velocity
        if velocity is not None and velocity.lag_s is not None:
            return velocity.lag_s
        measured = self.publish_lag.value
        return measured if measured is not None else self.channel.publish.cadence_s

    def status(self) -> dict:
        """What `availability status` and the metrics show of this channel."""
        return {"ready": self.ready, "items": len(self.book),
                "pending_items": len(self._pending),
                "publish_lag_s": self.publish_lag.value,
                "velocity_lag_s": self.velocity_lag_s() if self._rates else None,
                "velocity_buffered_items": len(self._buffered),
                "velocity_buffer_units": sum(units for _, units in self._buffered.values()),
                "items_acknowledged": self.items_acknowledged,
                "batches_abandoned": self.batches_abandoned,
                "requests": dict(self.requests),
                "fence_failures": self.fence_failures,
                "settles_pending": len(self._settles),
                NETWORK: self.book.totals(NETWORK)._asdict(),
                LOCATION: self.book.totals(LOCATION)._asdict()}
