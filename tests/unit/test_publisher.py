"""The webhook publisher on a fake clock: cadence, rate limit, retries, acknowledgements,
velocity buffers, snapshots and divergence."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.channel_publishing import WEBHOOK, Publish, Velocity
from engine.channels import Channel
from engine.config import PublisherConfig
from engine.publisher import CHANGE, SNAPSHOT, SNAPSHOT_COMPLETE, Change, ChannelPublisher
from engine.velocity import SellRates, velocity_buffer_units

URL = "http://marketplace.test/feed"
DEADLINE_S = 5.0


class FakeTime:
    """A clock that moves only when the publisher sleeps."""

    def __init__(self) -> None:
        self.now_s = 1_000.0
        self.sleeps: list[float] = []

    def clock_s(self) -> float:
        return self.now_s

    def wall_ms(self) -> int:
        return int(self.now_s * 1000)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)


class FakeWebhook:
    """Answers from a script (a status, (status, retry_after) or an exception), then 200."""

    def __init__(self, time: FakeTime, script=()) -> None:
        self.time, self.script = time, list(script)
        self.posts: list[tuple[float, dict, dict]] = []

    async def __call__(self, url, body, headers, timeout_s):
        assert url == URL
        self.posts.append((self.time.now_s, json.loads(body), dict(headers)))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, tuple) else (answer, None)

    def items(self, post: int) -> dict[tuple[str, str], int]:
        return {(i["sku"], i["location"]): i["available_to_sell"]
                for i in self.posts[post][1]["items"]}


class FakeStore:
    def __init__(self) -> None:
        self.acknowledged: dict[str, dict[tuple[str, str], int]] = {}

    async def record(self, channel, items):
        self.acknowledged.setdefault(channel, {}).update(
            {(sku, location): quantity for sku, location, quantity in items})


def channel(cadence_s: float = 5.0, rate_per_s: float = 1_000.0,
            velocity: Velocity | None = None) -> Channel:
    return Channel("market", publish=Publish(WEBHOOK, URL, cadence_s, rate_per_s),
                   velocity=velocity)


def publisher(time: FakeTime, webhook: FakeWebhook, store: FakeStore | None = None,
              acknowledged=None, **options) -> ChannelPublisher:
    config = PublisherConfig(**{key: options.pop(key) for key in list(options)
                                if key in PublisherConfig.__dataclass_fields__})
    return ChannelPublisher(channel(**options), webhook, store or FakeStore(),
                            clock_s=time.clock_s, wall_ms=time.wall_ms, sleep=time.sleep,
                            jitter=lambda: 0.5, run_id="run", config=config,
                            acknowledged=acknowledged)


def change(time: FakeTime, sku: str, quantity: int, sequence: int, location: str = "",
           kind: int = CHANGE) -> Change:
    return Change(kind, sku, location, quantity, sequence, time.wall_ms())


async def until(condition) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0)


async def test_publisher_coalesces_changes_within_its_cadence():
    """The first change goes at once; the next ones wait out the cadence and go as one
    item per SKU-location with the newest figure."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook, cadence_s=5.0)
    runner = asyncio.create_task(pub.run())
    pub.offer(change(time, "a", 10, 1))
    await until(lambda: len(webhook.posts) == 1)
    for sequence, quantity in enumerate((9, 8, 7), start=2):
        pub.offer(change(time, "a", quantity, sequence))
    pub.offer(change(time, "b", 3, 5, location="dc-1"))
    await until(lambda: len(webhook.posts) == 2)
    runner.cancel()
    assert webhook.items(0) == {("a", ""): 10}
    assert webhook.items(1) == {("a", ""): 7, ("b", "dc-1"): 3}
    assert webhook.posts[1][0] - webhook.posts[0][0] >= 5.0
    body = webhook.posts[1][1]
    assert body["channel"] == "market" and [i["sequence"] for i in body["items"]] == [4, 5]
    assert webhook.posts[1][2]["Idempotency-Key"] == body["batch_id"]


async def test_publisher_respects_the_rate_limit_across_batches():
    """Five one-item batches at 2 requests/s start at least half a second apart."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook, rate_per_s=2.0, batch_items_max=1)
    for n in range(5):
        pub.offer(change(time, f"s{n}", n + 1, n + 1))
    assert await pub.flush() == 5
    starts = [at for at, _, _ in webhook.posts]
    assert len(starts) == 5
    assert all(later - earlier >= 0.5 - 1e-9 for earlier, later in zip(starts, starts[1:]))


async def test_publisher_retries_5xx_and_timeouts_with_backoff_and_one_key():
    """503, a timeout, 500 then 200: four POSTs of one body and key, backing off 2× each
    time (jittered), and the quantities recorded once acknowledged."""
    time = FakeTime()
    webhook = FakeWebhook(time, [503, TimeoutError("slow"), 500, 200])
    store = FakeStore()
    pub = publisher(time, webhook, store, rate_per_s=10_000.0)
    pub.offer(change(time, "a", 4, 1))
    assert await pub.flush() == 1
    assert len(webhook.posts) == 4
    assert len({json.dumps(body) for _, body, _ in webhook.posts}) == 1
    assert len({headers["Idempotency-Key"] for _, _, headers in webhook.posts}) == 1
    backoffs = [s for s in time.sleeps if s > 0.01]
    assert backoffs == pytest.approx([0.15, 0.3, 0.6])  # 0.2·2^n × (0.5 + 0.5·0.5)
    assert store.acknowledged == {"market": {("a", ""): 4}}
    assert pub.requests == {"retry": 2, "unreachable": 1, "ok": 1}


async def test_publisher_honours_retry_after_of_a_429():
    """A 429 with Retry-After waits at least that long before the next attempt."""
    time = FakeTime()
    webhook = FakeWebhook(time, [(429, 7.0), 200])
    pub = publisher(time, webhook, rate_per_s=10_000.0)
    pub.offer(change(time, "a", 4, 1))
    await pub.flush()
    assert webhook.posts[1][0] - webhook.posts[0][0] >= 7.0


async def test_publisher_puts_a_batch_back_after_its_last_attempt():
    """A webhook down for every attempt loses nothing: the next flush posts the newest
    figure under a new batch id, and nothing is recorded until then."""
    time = FakeTime()
    webhook = FakeWebhook(time, [503] * 3)
    store = FakeStore()
    pub = publisher(time, webhook, store, rate_per_s=10_000.0, attempts_max=3)
    pub.offer(change(time, "a", 4, 1))
    assert await pub.flush() == 0
    assert store.acknowledged == {} and pub.batches_abandoned == 1
    pub.offer(change(time, "b", 2, 2))
    assert await pub.flush() == 2
    assert webhook.items(3) == {("a", ""): 4, ("b", ""): 2}
    assert webhook.posts[3][1]["batch_id"] != webhook.posts[0][1]["batch_id"]


async def test_publisher_drops_a_batch_the_webhook_refuses():
    """A 400 is not retried (the same body would be refused again) and is not recorded."""
    time = FakeTime()
    webhook = FakeWebhook(time, [400])
    store = FakeStore()
    pub = publisher(time, webhook, store)
    pub.offer(change(time, "a", 4, 1))
    assert await pub.flush() == 0
    assert len(webhook.posts) == 1 and store.acknowledged == {}
    assert pub.requests == {"rejected": 1}


async def test_publisher_restarted_posts_only_what_changed_since_acknowledged():
    """Quantities acknowledged before a restart are not posted again after the snapshot;
    keys the snapshot no longer mentions are posted as 0."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook, acknowledged={("a", ""): 5, ("b", ""): 2, ("gone", ""): 4})
    for sku, quantity in (("a", 5), ("b", 3)):
        pub.offer(change(time, sku, quantity, 10, kind=SNAPSHOT))
    assert not pub.ready
    pub.offer(change(time, "", 0, 10, kind=SNAPSHOT_COMPLETE))
    await pub.flush()
    assert len(webhook.posts) == 1 and webhook.items(0) == {("b", ""): 3, ("gone", ""): 0}
    assert pub.ready and pub.status()["network"] == {
        "diverged_units": 0, "exposed_items": 0, "units_at_risk": 0}


async def test_publisher_divergence_tracks_published_against_actual():
    """After an acknowledgement the figure drops: divergence and exposure show it until the
    next acknowledgement."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook)
    pub.offer(change(time, "a", 10, 1, location="dc-1"))
    await pub.flush()
    pub.offer(change(time, "a", 6, 2, location="dc-1"))
    assert pub.status()["location"] == {"diverged_units": 4, "exposed_items": 1,
                                        "units_at_risk": 4}
    await pub.flush()
    assert pub.status()["location"]["diverged_units"] == 0


async def test_publisher_shows_a_fast_seller_less_by_its_velocity_buffer():
    """A SKU losing 2 units a second is shown its figure less rate × lag; one that is only
    restocked is shown all of it; once sales stop the buffer decays away."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    velocity = Velocity(half_life_s=10.0, lag_s=20.0, max_units=50, max_percent=50.0)
    pub = publisher(time, webhook, velocity=velocity)
    pub.offer(change(time, "fast", 100, 1, kind=SNAPSHOT))
    pub.offer(change(time, "slow", 100, 1, kind=SNAPSHOT))
    pub.offer(change(time, "", 0, 1, kind=SNAPSHOT_COMPLETE))
    reference = SellRates(10.0)
    figure = 100
    for sequence in range(2, 12):
        time.now_s += 1.0
        figure -= 2
        reference.observe(("fast", ""), 2, time.now_s)
        pub.offer(change(time, "fast", figure, sequence))
    pub.offer(change(time, "slow", 140, 12))  # a receipt: not a sale
    await pub.flush()
    expected = figure - velocity_buffer_units(
        figure, reference.rate_per_s(("fast", ""), time.now_s), 20.0, velocity)
    assert expected < figure - 10
    assert webhook.items(0) == {("fast", ""): expected, ("slow", ""): 140}
    assert pub.status()["velocity_buffer_units"] == figure - expected
    # Sales stop: as the rate decays the buffer shrinks, and the figure is posted again.
    time.now_s += 300.0
    await pub.flush()
    assert webhook.items(1) == {("fast", ""): figure}
    assert pub.status()["velocity_buffered_items"] == 0


async def test_publisher_velocity_lag_defaults_to_measured_then_cadence():
    """Without lag_s the velocity lag is the measured publish lag, one cadence before any."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook, cadence_s=3.0, velocity=Velocity())
    assert pub.velocity_lag_s() == 3.0
    pub.offer(change(time, "a", 5, 1))
    time.now_s += 2.0
    await pub.flush()
    assert pub.velocity_lag_s() == pytest.approx(2.0)


async def test_publisher_stops_reading_when_too_many_changes_wait():
    """Past pending_keys_max the reader's wait_for_room blocks until a flush empties it."""
    time = FakeTime()
    webhook = FakeWebhook(time)
    pub = publisher(time, webhook, pending_keys_max=2)
    pub.offer(change(time, "a", 1, 1))
    pub.offer(change(time, "b", 1, 2))
    waiting = asyncio.create_task(pub.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()
    await pub.flush()
    await asyncio.wait_for(waiting, DEADLINE_S)
