"""The watch hub: a snapshot, then ordered changes coalesced per SKU; resuming after a reconnect."""

from __future__ import annotations

import asyncio

import pytest

from engine.channels import DEFAULT, Buffer, Channel, ChannelRules
from engine.config import GatewayConfig, PartitionConfig
from engine.model import Movement, Reserve, ReserveLine
from engine.model import MovementType as MT
from engine.partition_host import PartitionHost
from gateway.partitions import LocalPartitions
from gateway.router import Router
from gateway.watch_hub import Kind, WatchEnded, WatchHub

NOW_MS = 1_700_000_000_000
RULES = ChannelRules((Channel(DEFAULT), Channel("web", buffer=Buffer(units=1))))
DEADLINE_S = 5.0


def world(interval_s: float = 0.01) -> tuple[Router, WatchHub]:
    config = PartitionConfig(channels=RULES)
    hosts = [PartitionHost(p, config, clock_ms=lambda: NOW_MS) for p in range(2)]
    router = Router(LocalPartitions(hosts), GatewayConfig(channels=RULES))
    return router, WatchHub(router.submit, 2, interval_s, history_updates_max=1_000)


async def receive(router: Router, count: int) -> None:
    await router.apply_movements([Movement(f"in-{n}", "erp", MT.RECEIPT, f"sku-{n}", "dc-1", 10)
                                  for n in range(count)])


async def take(updates, count: int) -> list:
    """The next `count` updates, or fail after the deadline."""
    async def collect():
        return [await anext(updates) for _ in range(count)]
    return await asyncio.wait_for(collect(), DEADLINE_S)


async def test_watch_starts_with_a_snapshot_then_sends_changes_in_order():
    """A new watcher gets every figure, a completion marker, then changes numbered after it."""
    router, hub = world()
    await receive(router, 3)
    watcher = hub.watch("web", None)
    updates = watcher.updates()
    snapshot = await take(updates, 7)  # three SKUs at one location, three networks, marker
    assert [u.kind for u in snapshot] == [Kind.SNAPSHOT] * 6 + [Kind.SNAPSHOT_COMPLETE]
    assert {(u.sku, u.location, u.available_to_sell) for u in snapshot[:-1]} == {
        (f"sku-{n}", location, 9) for n in range(3) for location in ("dc-1", "")}
    await router.reserve(Reserve("k1", "", (ReserveLine("sku-1", "dc-1", 4),), channel="web"))
    changes = await take(updates, 2)
    assert [(u.kind, u.sku, u.location, u.available_to_sell) for u in changes] == [
        (Kind.CHANGE, "sku-1", "dc-1", 5), (Kind.CHANGE, "sku-1", "", 5)]
    sequences = [u.sequence for u in changes]
    assert sequences == sorted(sequences) and sequences[0] > snapshot[-1].sequence
    await hub.close()


async def test_watch_coalesces_changes_per_sku_between_reads():
    """Changes made while the watcher is not reading reach it once per key, newest value."""
    router, hub = world()
    await receive(router, 1)
    watcher = hub.watch("", frozenset({"sku-0"}))
    updates = watcher.updates()
    await take(updates, 3)
    for n in range(5):
        await router.reserve(Reserve(f"k{n}", "", (ReserveLine("sku-0", "dc-1", 1),)))
        await asyncio.sleep(0.02)  # let rounds pass: each number goes into the pending map
    await _until(lambda: watcher.pending.get(("sku-0", "dc-1")) is not None
                 and watcher.pending[("sku-0", "dc-1")].available_to_sell == 5)
    changes = await take(updates, 2)
    assert [(u.location, u.available_to_sell) for u in changes] == [("dc-1", 5), ("", 5)]
    await hub.close()


async def test_watch_resumes_after_a_reconnect_without_a_snapshot():
    """A client that comes back with its stream id and sequence gets only what it missed."""
    router, hub = world()
    await receive(router, 2)
    first = hub.watch("web", None)
    updates = first.updates()
    snapshot = await take(updates, 5)
    last = snapshot[-1].sequence
    hub.leave(first)
    await router.reserve(Reserve("k1", "", (ReserveLine("sku-0", "dc-1", 2),), channel="web"))
    await _until(lambda: hub._streams["web"].sequence > last)
    again = hub.watch("web", None, hub.stream_id, last).updates()
    missed = await take(again, 2)
    assert [(u.kind, u.sku, u.location, u.available_to_sell) for u in missed] == [
        (Kind.CHANGE, "sku-0", "dc-1", 7), (Kind.CHANGE, "sku-0", "", 7)]
    await hub.close()


async def test_watch_with_an_unknown_stream_id_starts_over_with_a_snapshot():
    """A resume this hub cannot honour (another gateway's stream) gets a fresh snapshot."""
    router, hub = world()
    await receive(router, 1)
    updates = hub.watch("web", None, "another-gateway", 41).updates()
    assert [u.kind for u in await take(updates, 3)] == [
        Kind.SNAPSHOT, Kind.SNAPSHOT, Kind.SNAPSHOT_COMPLETE]
    await hub.close()


async def test_watch_ends_when_the_hub_closes():
    """A draining gateway ends its watches so clients reconnect elsewhere."""
    router, hub = world()
    updates = hub.watch("", None).updates()
    await take(updates, 1)
    await hub.close()
    with pytest.raises(WatchEnded):
        await asyncio.wait_for(anext(updates), DEADLINE_S)


async def _until(condition, deadline_s: float = DEADLINE_S) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_watch_resume_after_polling_stopped_does_not_skip_what_changed_meanwhile(
        monkeypatch):
    """Changes made while nobody polled the channel were never numbered: a client resuming
    from the last number it got must be given a snapshot, not a silent live stream."""
    monkeypatch.setattr("gateway.watch_hub.LINGER_S", 0.0)
    router, hub = world()
    await receive(router, 1)
    first = hub.watch("web", None)
    last = (await take(first.updates(), 3))[-1].sequence
    hub.leave(first)
    await _until(lambda: hub._poller.done())  # nobody watches: polling stopped
    await router.reserve(Reserve("k1", "", (ReserveLine("sku-0", "dc-1", 2),), channel="web"))
    again = hub.watch("web", None, hub.stream_id, last).updates()
    update = await take(again, 1)
    assert (update[0].kind, update[0].sku, update[0].location,
            update[0].available_to_sell) == (Kind.SNAPSHOT, "sku-0", "dc-1", 7)
    await hub.close()


async def test_watch_snapshot_waits_for_a_cursor_on_every_partition_it_reads():
    """A partition whose first poll failed has no cursor yet: a snapshot read from it then,
    followed by a cursor taken later, would lose the changes made in between."""
    router, hub = world(interval_s=10.0)  # rounds run only when the test wakes the hub
    await receive(router, 2)
    failed = set()

    async def flaky(partition, command, deadline):
        if type(command).__name__ == "WatchChanges" and partition not in failed:
            failed.add(partition)
            raise ConnectionError("partition restarting")
        return await router.submit(partition, command, deadline)

    hub._submit = flaky
    watcher = hub.watch("web", None)
    updates = watcher.updates()
    await _until(lambda: len(failed) == 2)
    await asyncio.sleep(0.05)
    if not watcher.live:  # no snapshot without cursors: the next round takes both
        hub._wake.set()
    await _until(lambda: watcher.live)
    snapshot = await take(updates, 5)
    assert snapshot[-1].kind is Kind.SNAPSHOT_COMPLETE
    await router.reserve(Reserve("k1", "", (ReserveLine("sku-0", "dc-1", 2),), channel="web"))
    hub._wake.set()
    changes = await take(updates, 2)
    assert [(u.kind, u.sku, u.location, u.available_to_sell) for u in changes] == [
        (Kind.CHANGE, "sku-0", "dc-1", 7), (Kind.CHANGE, "sku-0", "", 7)]
    await hub.close()
