"""The ERP simulator over real HTTP on port 0: the REST contract, its faults, and restarts."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from loadtest.erp_faults import OutageWindow
from loadtest.erp_sim import LISTENING, SimulatorConfig, start_simulator
from tests.integration.serving import wait_until

ADJUSTMENTS = "/api/v1/inventory/adjustments"
ON_HAND = "/api/v1/inventory/on-hand"
# The console script beside this interpreter (the venv's), else `python -m engine.cli`.
AVAILABILITY = ([script] if (script := shutil.which("availability",
                                                    path=Path(sys.executable).parent))
                else [sys.executable, "-m", "engine.cli"])
WAIT_S = 20.0


@dataclass
class Erp:
    """One running simulator and an HTTP session to it."""

    base_url: str
    session: aiohttp.ClientSession
    runner: object

    async def adjust(self, key: str | None, body, raw: bytes | None = None):
        """POST adjustments; returns (status, JSON body, headers)."""
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        # A stream, as aiohttp warns that a large bytes body would stall the loop.
        data = io.BytesIO(raw if raw is not None else json.dumps(body).encode())
        async with self.session.post(self.base_url + ADJUSTMENTS, data=data,
                                     headers=headers) as response:
            return response.status, await response.json(), response.headers

    async def get(self, path: str, **params):
        async with self.session.get(self.base_url + path, params=params) as response:
            return response.status, await response.json()

    async def control(self, path: str, body: dict):
        async with self.session.post(self.base_url + path, json=body) as response:
            return response.status, await response.json()

    async def ledger(self) -> list[dict]:
        return (await self.get("/_sim/ledger"))[1]

    async def stats(self) -> dict:
        return (await self.get("/_sim/stats"))[1]


@pytest.fixture
async def erp(tmp_path):
    """`await erp(**settings)` starts a simulator on port 0 with its ledger in tmp_path (the
    same file each time, so a second start is a restart); `await erp.stop(sim)` stops one."""
    started: list[Erp] = []
    db_path = str(tmp_path / "erp.db")

    async def start(**settings) -> Erp:
        runner, port = await start_simulator(SimulatorConfig(port=0, db_path=db_path,
                                                             **settings))
        started.append(Erp(f"http://127.0.0.1:{port}", aiohttp.ClientSession(), runner))
        return started[-1]

    async def stop(sim: Erp) -> None:
        started.remove(sim)
        await sim.session.close()
        await sim.runner.cleanup()

    start.stop = stop
    yield start
    for sim in started:
        await sim.session.close()
        await sim.runner.cleanup()


def key() -> str:
    return f"key-{uuid.uuid4().hex[:10]}"


def body(*deltas: int, sku: str = "SKU-1", batch_id: str = "batch-1") -> dict:
    """A batch of one line per on-hand delta, at locations DC-0, DC-1, ..."""
    return {"batch_id": batch_id, "lines": [
        {"sku": sku, "location": f"DC-{index}", "on_hand_delta": delta, "committed_delta": 0}
        for index, delta in enumerate(deltas or (5,))]}


async def test_adjust_replays_the_first_answer_for_the_same_key(erp):
    """A 200, then the same key and body again: the same answer and the ledger unchanged."""
    sim = await erp()
    idempotency_key = key()
    status, answer, _ = await sim.adjust(idempotency_key, body(5, 7))
    assert (status, answer) == (200, {"batch_id": "batch-1", "applied_lines": 2})
    before = await sim.ledger()
    assert [row["on_hand"] for row in before] == [5, 7]
    assert (await sim.adjust(idempotency_key, body(5, 7)))[:2] == (200, answer)
    assert await sim.ledger() == before
    stats = await sim.stats()
    assert (stats["keys_applied"], stats["lines_applied"]) == (1, 2)


async def test_adjust_refuses_the_same_key_with_another_body(erp):
    """The key reused with another body answers 409 and leaves the ledger as it was."""
    sim = await erp()
    idempotency_key = key()
    await sim.adjust(idempotency_key, body(5))
    before = await sim.ledger()
    status, answer, _ = await sim.adjust(idempotency_key, body(6))
    assert status == 409
    assert answer["field"] == "Idempotency-Key"
    assert await sim.ledger() == before
    assert (await sim.stats())["statuses"]["409"] == 1


async def test_adjust_answers_429_with_retry_after_over_the_rate_limit(erp):
    """Past the burst, requests get 429 with an integer Retry-After and nothing applied."""
    sim = await erp(rate_limit_rps=0.1, rate_limit_burst=2)
    assert [(await sim.adjust(key(), body(1)))[0] for _ in range(2)] == [200, 200]
    status, answer, headers = await sim.adjust(key(), body(1))
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 10
    assert "0.1 requests/s" in answer["error"]
    assert (await sim.get(ON_HAND))[0] == 429
    assert [row["on_hand"] for row in await sim.ledger()] == [2]
    assert (await sim.stats())["statuses"]["429"] == 2


async def test_adjust_answers_503_during_an_outage_without_change(erp):
    """Inside an outage every contract request gets 503 and the ledger is untouched; ending
    it serves again."""
    sim = await erp()
    await sim.adjust(key(), body(5))
    before = await sim.ledger()
    assert (await sim.control("/_sim/outage", {"seconds": 60}))[0] == 200
    status, _, headers = await sim.adjust(key(), body(9))
    assert status == 503
    assert int(headers["Retry-After"]) >= 1
    assert (await sim.get(ON_HAND))[0] == 503
    assert await sim.ledger() == before
    await sim.control("/_sim/outage", {"seconds": 0})
    assert (await sim.adjust(key(), body(9)))[0] == 200


async def test_adjust_answers_503_inside_a_scheduled_outage(erp):
    """A window scheduled from start answers 503 and applies nothing."""
    sim = await erp(outages=(OutageWindow(0, 600),))
    assert (await sim.adjust(key(), body(5)))[0] == 503
    assert await sim.ledger() == []
    assert (await sim.stats())["statuses"]["503"] == 1


async def test_adjust_answers_503_at_the_injected_error_rate(erp):
    """With error_rate 1 every request fails without effect; set back to 0 it is served."""
    sim = await erp()
    assert (await sim.control("/_sim/config", {"error_rate": 1.0}))[0] == 200
    assert (await sim.adjust(key(), body(5)))[0] == 503
    assert await sim.ledger() == []
    await sim.control("/_sim/config", {"error_rate": 0})
    assert (await sim.adjust(key(), body(5)))[0] == 200


async def test_adjust_waits_the_configured_latency(erp):
    """A latency setting delays each answer by about that much."""
    sim = await erp(latency_ms=200)
    started_s = time.monotonic()
    assert (await sim.adjust(key(), body(5)))[0] == 200
    assert time.monotonic() - started_s >= 0.19


async def test_adjust_accepts_then_applies_exactly_once_after_the_delay(erp):
    """A 202 changes nothing until the delay passes, a retry meanwhile answers 202, then the
    batch is applied once and a retry answers the stored 200."""
    sim = await erp(async_accept_ratio=1.0, async_apply_delay_ms=2_000)
    idempotency_key = key()
    status, answer, _ = await sim.adjust(idempotency_key, body(5))
    assert (status, answer) == (202, {"batch_id": "batch-1", "status": "accepted"})
    assert (await sim.adjust(idempotency_key, body(5)))[:2] == (202, answer)
    assert await sim.ledger() == []
    await wait_until(sim.ledger, WAIT_S, "the accepted batch applied")
    status, answer, _ = await sim.adjust(idempotency_key, body(5))
    assert (status, answer) == (200, {"batch_id": "batch-1", "applied_lines": 1})
    assert [row["on_hand"] for row in await sim.ledger()] == [5]
    stats = await sim.stats()
    assert (stats["keys_applied"], stats["pending_acceptances"]) == (1, 0)


async def test_on_hand_pages_through_2500_rows_each_exactly_once(erp):
    """Paging with the cursor returns every row once, in (sku, location) order."""
    sim = await erp()
    for first in range(0, 2_500, 1_000):
        lines = [{"sku": f"SKU-{index:05d}", "location": "DC-1", "on_hand_delta": index,
                  "committed_delta": 0} for index in range(first, min(first + 1_000, 2_500))]
        status, _, _ = await sim.adjust(key(), {"batch_id": f"b{first}", "lines": lines})
        assert status == 200
    seen, cursor, pages = [], None, 0
    while True:
        status, page = await sim.get(ON_HAND, limit="700", **({"cursor": cursor} if cursor
                                                              else {}))
        assert status == 200
        seen.extend((item["sku"], item["on_hand"]) for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(f"SKU-{index:05d}", index) for index in range(2_500)]
    assert pages == 4
    assert len((await sim.get(ON_HAND))[1]["items"]) == 500


@pytest.mark.parametrize("params, field", [({"limit": "1001"}, "limit"),
                                           ({"limit": "x"}, "limit"),
                                           ({"cursor": "garbage!"}, "cursor")])
async def test_on_hand_refuses_a_bad_query_naming_it(erp, params, field):
    """A limit past 1000 or a cursor the server never gave answers 400 naming it."""
    sim = await erp()
    status, answer = await sim.get(ON_HAND, **params)
    assert (status, answer["field"]) == (400, field)


async def test_restart_keeps_the_ledger_and_the_keys(erp):
    """A simulator restarted on the same --db has the same rows and answers its old keys."""
    sim = await erp()
    idempotency_key = key()
    _, answer, _ = await sim.adjust(idempotency_key, body(5))
    before = await sim.ledger()
    await erp.stop(sim)
    restarted = await erp()
    assert await restarted.ledger() == before
    assert (await restarted.adjust(idempotency_key, body(5)))[:2] == (200, answer)
    assert (await restarted.adjust(idempotency_key, body(6)))[0] == 409
    assert await restarted.ledger() == before


async def test_restart_applies_a_batch_accepted_before_it(erp):
    """A batch accepted (202) just before a stop is applied once by the next run."""
    sim = await erp(async_accept_ratio=1.0, async_apply_delay_ms=300)
    idempotency_key = key()
    assert (await sim.adjust(idempotency_key, body(5)))[0] == 202
    await erp.stop(sim)
    restarted = await erp()
    await wait_until(restarted.ledger, WAIT_S, "the accepted batch applied after restart")
    assert (await restarted.adjust(idempotency_key, body(5)))[0] == 200
    assert [row["on_hand"] for row in await restarted.ledger()] == [5]


def line(**changes) -> dict:
    return {"sku": "SKU-1", "location": "DC-1", "on_hand_delta": 1, "committed_delta": 0,
            **changes}


@pytest.mark.parametrize("idempotency_key, payload, field", [
    (None, body(5), "Idempotency-Key"),
    ("k", {"batch_id": "b", "lines": [line(on_hand_delta="1")]}, "lines[0].on_hand_delta"),
    ("k", {"batch_id": "b", "lines": [line(committed_delta=False)]},
     "lines[0].committed_delta"),
    ("k", {"batch_id": "b", "lines": [{"sku": "S", "location": "L", "on_hand_delta": 1}]},
     "lines[0].committed_delta"),
    ("k", {"batch_id": "b", "lines": [line(location="")]}, "lines[0].location"),
    ("k", {"lines": [line()]}, "batch_id"),
    ("k", {"batch_id": "b", "lines": [line()] * 1_001}, "lines"),
    ("k", b"{not json", "body"),
    ("k", b'{"batch_id": "' + b"x" * (1 << 20) + b'", "lines": []}', "body"),
])
async def test_adjust_refuses_a_bad_request_naming_the_field(erp, idempotency_key, payload,
                                                              field):
    """Each kind of bad request answers 400 naming the field, and the ledger is unchanged."""
    sim = await erp()
    raw = payload if isinstance(payload, bytes) else None
    status, answer, _ = await sim.adjust(idempotency_key, payload, raw=raw)
    assert (status, answer["field"]) == (400, field)
    assert field in answer["error"]
    assert await sim.ledger() == []
    assert (await sim.stats())["keys_applied"] == 0


async def test_sim_ledger_plants_drift_seen_by_on_hand(erp):
    """A row set through /_sim/ledger is what the on-hand export reports."""
    sim = await erp()
    await sim.adjust(key(), body(5))
    status, row = await sim.control("/_sim/ledger", {"sku": "SKU-1", "location": "DC-0",
                                                     "on_hand": 3})
    assert (status, row["on_hand"]) == (200, 3)
    _, page = await sim.get(ON_HAND)
    assert page["items"] == [{"sku": "SKU-1", "location": "DC-0", "on_hand": 3,
                              "committed": 0}]
    status, answer = await sim.control("/_sim/ledger", {"sku": "SKU-1", "location": "DC-0",
                                                        "on_hand": True})
    assert (status, answer["field"]) == (400, "on_hand")


async def test_sim_config_refuses_a_bad_setting_naming_it(erp):
    """A runtime change out of range, or of a start-only setting, answers 400 naming it."""
    sim = await erp()
    status, answer = await sim.control("/_sim/config", {"error_rate": 2})
    assert (status, answer["field"]) == (400, "error_rate")
    status, answer = await sim.control("/_sim/config", {"db_path": "/tmp/x"})
    assert (status, answer["field"]) == (400, "db_path")


async def test_sim_erp_command_serves_until_terminated(tmp_path):
    """`availability sim erp --port 0` prints its listening line, applies a POST, and exits 0
    on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        *AVAILABILITY, "sim", "erp", "--port", "0", "--db", str(tmp_path / "erp.db"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        match = LISTENING.search(line)
        assert match, f"no listening line: {line!r}; stderr: {await _stderr(process)}"
        assert str(tmp_path / "erp.db") in line
        url = f"http://{match['host']}:{match['port']}{ADJUSTMENTS}"
        async with aiohttp.ClientSession() as session, session.post(
                url, json=body(5), headers={"Idempotency-Key": key()}) as response:
            assert (response.status, await response.json()) == (
                200, {"batch_id": "batch-1", "applied_lines": 1})
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stderr(process) -> str:
    process.kill()
    return (await process.stderr.read()).decode(errors="replace")[-3_000:]
