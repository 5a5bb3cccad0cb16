"""The ERP's side of the e2e tests: the simulator, the erp-sync process, and a load to sync."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError
from loadtest.erp_sim import SimulatorConfig, start_simulator
from tests.e2e.conftest import AVAILABILITY, _read_until_listening

SKUS = [f"erp-sku-{n}" for n in range(16)]
LOCATIONS = ["dc-1", "store-7"]
SYNC_LISTENING = re.compile(r"availability erp-sync: draining .*metrics on "
                            r"(?P<host>\S+):(?P<port>\d+)")
DEADLINE_S = 90.0


class Simulator:
    """The ERP simulator in this process, and its control endpoints."""

    def __init__(self, runner, port: int) -> None:
        self.runner, self.url = runner, f"http://127.0.0.1:{port}"

    @classmethod
    async def start(cls, tmp_path: Path, **options) -> Simulator:
        config = SimulatorConfig(port=0, db_path=str(tmp_path / "erp.sqlite3"), **options)
        return cls(*await start_simulator(config))

    async def control(self, method: str, path: str, body: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session, session.request(
                method, f"{self.url}/_sim/{path}", json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def ledger(self) -> dict[tuple[str, str], tuple[int, int]]:
        rows = await self.control("GET", "ledger")
        return {(row["sku"], row["location"]): (row["on_hand"], row["committed"])
                for row in rows if row["on_hand"] or row["committed"]}

    async def stop(self) -> None:
        await self.runner.cleanup()


@dataclass
class SyncProcess:
    """`availability erp-sync` against a serve's Redis, with its metrics endpoint."""

    process: subprocess.Popen
    metrics_url: str

    @classmethod
    def start(cls, erp_url: str, data_dir: Path, namespace: str, log_path: Path,
              *args: str) -> SyncProcess:
        argv = [*AVAILABILITY, "erp-sync", "--erp-url", erp_url, "--data-dir", str(data_dir),
                "--ray-namespace", namespace, "--metrics-port", "0", "--window-s", "0.2",
                "--breaker-recovery-s", "1", *args]
        with open(log_path, "a") as stderr:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                       start_new_session=True)
        try:
            match = _read_until_listening(process, "availability erp-sync", log_path,
                                          pattern=SYNC_LISTENING)
        except BaseException:
            process.kill()
            raise
        return cls(process, f"http://{match['host']}:{match['port']}/metrics")

    async def metric(self, name: str, labels: str = "") -> float:
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as answer:
            text = await answer.text()
        match = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
        assert match, f"{name}{labels} is not in /metrics"
        return float(match.group(1))

    async def wait_drained(self, timeout_s: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout_s
        while await self.metric("availability_erp_sync_backlog_commands") > 0:
            assert time.monotonic() < deadline, "the sync job did not drain in time"
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


@dataclass
class MovementLoad:
    """Sources posting movements (some as the ERP itself) and carts committing, until stopped.

    Every call is retried with the same ids until answered, so what was applied is known
    exactly: `erp_on_hand` is what the ERP's own receipts added per SKU-location.
    """

    client: AvailabilityClient
    seed: int = 1
    erp_on_hand: dict[tuple[str, str], int] = field(default_factory=dict)
    applied: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, movements_per_call: int = 20) -> None:
        rng, number = random.Random(self.seed), 0
        while not self._stop.is_set():
            batch = []
            for _ in range(movements_per_call):
                number += 1
                batch.append(self._movement(rng, number))
            results = await _until_answered(self.client.apply_movements, batch)
            for movement, result in zip(batch, results, strict=True):
                if result.code == pb.MOVEMENT_CODE_APPLIED:
                    self.applied += 1
                    if movement.source == "erp":
                        item = (movement.sku, movement.location)
                        self.erp_on_hand[item] = self.erp_on_hand.get(item, 0) + movement.quantity
            await self._cart(rng, number)
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()

    def _movement(self, rng: random.Random, number: int) -> pb.Movement:
        source = rng.choice(["pos", "wms", "erp"])
        kind = (pb.MOVEMENT_TYPE_RECEIPT if source == "erp"
                else rng.choice([pb.MOVEMENT_TYPE_SALE, pb.MOVEMENT_TYPE_RECEIPT]))
        return pb.Movement(event_id=f"load-{self.seed}-{number}", source=source, type=kind,
                           sku=rng.choice(SKUS), location=rng.choice(LOCATIONS),
                           quantity=rng.randint(1, 5))

    async def _cart(self, rng: random.Random, number: int) -> None:
        """Hold one unit and commit it: the ERP hears of it as committed stock."""
        line = (rng.choice(SKUS), rng.choice(LOCATIONS), 1)
        held = await _until_answered(self.client.reserve, [line],
                                     idempotency_key=f"cart-{self.seed}-{number}")
        if held.status == pb.RESERVATION_STATUS_HELD:
            await _until_answered(self.client.commit, held.reservation_id,
                                  idempotency_key=f"commit-{self.seed}-{number}")


async def _until_answered(call, *args, **kwargs):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return await call(*args, timeout=10, **kwargs)
        except AvailabilityError:
            assert time.monotonic() < deadline, "the engine never answered"
            await asyncio.sleep(0.1)


async def engine_figures(client: AvailabilityClient) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await client.get_availability([(sku, loc) for sku in SKUS for loc in LOCATIONS])
    return {(row.sku, row.location): (row.on_hand, row.committed) for row in rows}


async def assert_erp_matches_engine(client: AvailabilityClient, simulator: Simulator,
                                    erp_on_hand: dict) -> None:
    """The ERP's ledger equals the engine's figures less what the ERP itself posted: not one
    delta lost, none posted twice."""
    expected = {}
    for item, (on_hand, committed) in (await engine_figures(client)).items():
        net = (on_hand - erp_on_hand.get(item, 0), committed)
        if any(net):
            expected[item] = net
    assert await simulator.ledger() == expected
