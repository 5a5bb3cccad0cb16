"""`availability erp-sync` and `reconcile` against the real serve and the ERP simulator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from inventory.v1 import availability_pb2 as pb

from engine.embedded_redis import SOCKET_NAME, start_embedded_redis
from engine.journal_store import connect
from gateway.client import AvailabilityClient
from tests.e2e.conftest import AVAILABILITY
from tests.e2e.erp_world import (
    DEADLINE_S,
    MovementLoad,
    Simulator,
    SyncProcess,
    assert_erp_matches_engine,
    engine_figures,
)


@pytest.fixture
async def world(spawn, tmp_path):
    """A serve with its own embedded Redis (its events stream is its own), a simulator, and
    the erp-sync processes a test starts; everything is stopped at teardown."""
    data_dir = tmp_path / "data"
    served = spawn(2, args=("--data-dir", str(data_dir)))
    simulator = await Simulator.start(tmp_path)
    syncs: list[SyncProcess] = []

    def start_sync(*args: str) -> SyncProcess:
        syncs.append(SyncProcess.start(simulator.url, data_dir, served.namespace,
                                       tmp_path / "erp-sync.stderr", *args))
        return syncs[-1]

    client = AvailabilityClient(served.target)
    try:
        yield served, simulator, start_sync, client, data_dir
    finally:
        await client.close()
        for sync in syncs:
            sync.stop()
        await simulator.stop()
        served.stop()
        start_embedded_redis(data_dir).stop()


async def run_load(client, seconds: float, seed: int = 1) -> MovementLoad:
    load = MovementLoad(client, seed)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(seconds)
    load.stop()
    await running
    return load


async def test_erp_outage_under_load_breaker_opens_then_backlog_drains_exactly_once(world):
    """The ERP is down for 20 s under load: the backlog grows and the breaker opens; after
    it, the backlog drains and the ERP's ledger equals the engine's net changes exactly,
    with the ERP's own receipts never echoed."""
    served, simulator, start_sync, client, _ = world
    sync = start_sync()
    load = MovementLoad(client, seed=3)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(2)
    await simulator.control("POST", "outage", {"seconds": 20})
    deadline, backlog_seen, opened_seen = time.monotonic() + 25, 0.0, False
    while time.monotonic() < deadline and not (opened_seen and backlog_seen > 200):
        backlog_seen = max(backlog_seen,
                           await sync.metric("availability_erp_sync_backlog_commands"))
        opened_seen |= await sync.metric("availability_erp_sync_breaker_state") == 2
        await asyncio.sleep(0.2)
    assert opened_seen, "the breaker never opened during the outage"
    assert backlog_seen > 200, "the backlog did not grow during the outage"
    outage_left_s = (await simulator.control("GET", "stats"))["outage_remaining_s"]
    await asyncio.sleep(outage_left_s + 1)
    load.stop()
    await running
    await sync.wait_drained()
    assert await sync.metric("availability_erp_sync_breaker_state") == 0
    assert load.erp_on_hand, "the load posted no ERP receipts to leave out"
    await assert_erp_matches_engine(client, simulator, load.erp_on_hand)


async def test_erp_sync_killed_mid_drain_restarts_without_loss_or_doubles(world):
    """A sync job killed with SIGKILL while batches are in flight to a slow ERP, then started
    again, resumes its saved plan: the ERP ends equal to the engine, nothing lost or doubled."""
    served, simulator, start_sync, client, _ = world
    await simulator.control("POST", "config", {"latency_ms": 300})
    load = await run_load(client, 3, seed=4)
    first = start_sync("--batch-lines-max", "3", "--in-flight-max", "2")
    deadline = time.monotonic() + DEADLINE_S
    while (await simulator.control("GET", "stats"))["keys_applied"] < 2:
        assert time.monotonic() < deadline, "no batch reached the ERP"
        await asyncio.sleep(0.05)
    first.kill()
    assert (await simulator.control("GET", "stats"))["keys_applied"] < 2 * 16, \
        "everything was posted before the kill; the test proves nothing"
    await simulator.control("POST", "config", {"latency_ms": 0})
    second = start_sync()  # waits for the dead job's lease to lapse
    await second.wait_drained()
    await assert_erp_matches_engine(client, simulator, load.erp_on_hand)


async def test_erp_429_storm_waits_retry_after(world):
    """An ERP allowing 1 call/s answers 429s; the job pauses every call for Retry-After, so
    429s stay few, and everything still arrives exactly once."""
    served, simulator, start_sync, client, _ = world
    await simulator.control("POST", "config", {"rate_limit_rps": 1, "rate_limit_burst": 1})
    load = await run_load(client, 3, seed=5)
    started = time.monotonic()
    sync = start_sync("--batch-lines-max", "2", "--in-flight-max", "4")
    await sync.wait_drained()
    elapsed_s = time.monotonic() - started
    stats = await simulator.control("GET", "stats")
    limited = stats["statuses"]["429"] if "429" in stats["statuses"] else stats["statuses"][429]
    assert limited >= 1, "the ERP's limit was never reached; the test proves nothing"
    # Each 429 stops every call for Retry-After (at least 1 s): at most the calls in flight
    # can meet the limit per pause.
    assert limited <= 4 * (elapsed_s + 1)
    assert limited == await sync.metric("availability_erp_sync_requests_total",
                                        '{outcome="rate_limited"}')
    await assert_erp_matches_engine(client, simulator, load.erp_on_hand)


async def reconcile(data_dir, namespace: str, erp_url: str, *args: str) -> dict:
    """Run `availability reconcile --json` (in a thread: the simulator shares this loop)."""
    done = await asyncio.to_thread(
        subprocess.run, [*AVAILABILITY, "reconcile", "--erp-url", erp_url, "--data-dir",
                           str(data_dir), "--ray-namespace", namespace, "--json", *args],
        capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1) and done.stdout, (done.returncode, done.stderr)
    return json.loads(done.stdout)


async def test_reconcile_finds_planted_drift_and_repair_fixes_it(world):
    """Drift planted in the ERP is reported (ERP minus engine); --repair adjusts the engine to
    the ERP's figure, records the exception with an owner, and is not echoed to the ERP."""
    served, simulator, start_sync, client, data_dir = world
    load = await run_load(client, 2, seed=6)
    sync = start_sync()
    await sync.wait_drained()
    ledger = await simulator.ledger()
    for (sku, location), erp_receipts in load.erp_on_hand.items():
        # The ERP's own receipts are in its ledger: it made them.
        on_hand, committed = ledger.get((sku, location), (0, 0))
        await simulator.control("POST", "ledger", {"sku": sku, "location": location,
                                                   "on_hand": on_hand + erp_receipts,
                                                   "committed": committed})
    assert (await reconcile(data_dir, served.namespace, simulator.url))["drift"] == []
    item = sorted(await simulator.ledger())[0]
    erp_before = (await simulator.ledger())[item]
    planted = erp_before[0] + 5
    await simulator.control("POST", "ledger", {"sku": item[0], "location": item[1],
                                               "on_hand": planted})
    report = await reconcile(data_dir, served.namespace, simulator.url)
    engine_on_hand = (await engine_figures(client))[item][0]
    assert report["drift"] == [{"sku": item[0], "location": item[1], "erp_on_hand": planted,
                                "engine_on_hand": engine_on_hand, "difference": 5}]
    assert report["totals"]["difference"] == 5 and report["consistent"]
    repaired = await reconcile(data_dir, served.namespace, simulator.url, "--repair")
    assert repaired["repaired"] == 1
    deadline = time.monotonic() + DEADLINE_S
    while (await engine_figures(client))[item][0] != engine_on_hand + 5:
        assert time.monotonic() < deadline, "the repair was not applied"
        await asyncio.sleep(0.05)
    redis = connect(f"unix://{data_dir.resolve() / SOCKET_NAME}")
    [(_, exception)] = redis.xrange(f"{served.namespace}:exceptions")
    assert exception[b"owner"] == b"inventory-control" and exception[b"difference"] == b"5"
    await sync.wait_drained()
    assert (await reconcile(data_dir, served.namespace, simulator.url))["drift"] == []
    assert (await simulator.ledger())[item][0] == planted  # the repair was not sent back


async def test_serve_with_erp_url_runs_the_sync_job(spawn, tmp_path):
    """`serve --erp-url` drains into the ERP by itself: a POS receipt reaches the ledger."""
    simulator = await Simulator.start(tmp_path)
    data_dir = tmp_path / "data"
    served = spawn(2, args=("--data-dir", str(data_dir), "--erp-url", simulator.url))
    try:
        async with AvailabilityClient(served.target) as client:
            receipt = pb.Movement(event_id="pos-1", source="pos", type=pb.MOVEMENT_TYPE_RECEIPT,
                                  sku="erp-sku-1", location="dc-1", quantity=7)
            await client.apply_movements([receipt])
        deadline = time.monotonic() + DEADLINE_S
        while await simulator.ledger() != {("erp-sku-1", "dc-1"): (7, 0)}:
            assert time.monotonic() < deadline, "the receipt never reached the ERP"
            await asyncio.sleep(0.1)
    finally:
        served.stop()
        await simulator.stop()
        start_embedded_redis(data_dir).stop()


async def test_trace_follows_a_correlation_id_from_hold_to_erp_batch(world):
    """A hold made with an id is found with its commit and shipment, and the ERP batch that
    carried each change, by `availability trace ID`."""
    served, simulator, start_sync, client, data_dir = world
    sync = start_sync()
    await client.apply_movements([pb.Movement(event_id="trace-receipt", source="wms",
                                              type=pb.MOVEMENT_TYPE_RECEIPT, sku="trace-sku",
                                              location="dc-1", quantity=5)])
    held = await client.reserve([("trace-sku", "dc-1", 2)], idempotency_key="trace-cart",
                                correlation_id="order-flow-42")
    await client.commit(held.reservation_id, idempotency_key="trace-commit",
                        order_ref="order-42")
    await client.apply_movements([pb.Movement(
        event_id="trace-ship", source="wms", type=pb.MOVEMENT_TYPE_SHIPMENT, sku="trace-sku",
        location="dc-1", quantity=2, reservation_id=held.reservation_id)])
    await sync.wait_drained()
    done = await asyncio.to_thread(
        subprocess.run, [*AVAILABILITY, "trace", "order-flow-42", "--data-dir", str(data_dir),
                         "--ray-namespace", served.namespace, "--json"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)
    assert [step["what"] for step in steps] == ["RESERVE", "COMMIT", "SHIPMENT"]
    assert steps[0]["correlation_id"] == "order-flow-42" and steps[0]["erp"] == ""
    assert all(step["erp"] for step in steps[1:]), steps  # commit and shipment reached it
