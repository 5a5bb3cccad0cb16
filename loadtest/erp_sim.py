"""`availability sim erp`: the generic REST ERP of DESIGN section 5, with its faults, over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from loadtest.erp_config import (
    SimulatorConfig,
    SimulatorConfigError,
    build_parser,
    config_from_args,
)
from loadtest.erp_contract import (
    BODY_BYTES_MAX,
    IDEMPOTENCY_HEADER,
    IDENTIFIER_BYTES_MAX,
    ON_HAND_ABS_MAX,
    ContractError,
    check_idempotency_key,
    check_int,
    check_text,
    decode_cursor,
    encode_cursor,
    parse_adjustments,
    parse_page_limit,
)
from loadtest.erp_faults import FaultDice, OutageSchedule, TokenBucket, retry_after_s
from loadtest.erp_ledger import Ledger, LedgerOverflow

__all__ = ["LISTENING", "SIMULATOR", "ErpSimulator", "SimulatorConfig", "SimulatorConfigError",
           "build_parser", "config_from_args", "main", "start_simulator"]

log = logging.getLogger(__name__)

LISTENING = re.compile(r"availability sim erp: listening on (?P<host>\S+):(?P<port>\d+)")
SIMULATOR = web.AppKey("simulator", "ErpSimulator")
ADJUSTMENTS_PATH = "/api/v1/inventory/adjustments"
ON_HAND_PATH = "/api/v1/inventory/on-hand"
# `GET /_sim/ledger` answers the whole ledger in one body: past this, page `on-hand` instead.
LEDGER_DUMP_ROWS_MAX = 100_000
OUTAGE_SECONDS_MAX = 86_400.0
# Always present in `GET /_sim/stats`, even at 0, so a test can compare them directly.
COUNTED_STATUSES = (200, 202, 400, 409, 429, 503)
BODY_CHUNK_BYTES = 64 * 1024
# After an unexpected failure, the applier of accepted batches retries this much later.
APPLIER_RETRY_S = 1.0


class ErpSimulator:
    """Routes, faults and the ledger of one simulated ERP.

    SQLite is called on the event loop itself: each call touches a few rows of a local WAL
    file (about a millisecond at most for a 1,000-line batch), and one thread keeps every
    check-then-write on a key serial without locks.
    """

    def __init__(self, config: SimulatorConfig, ledger: Ledger,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep) -> None:
        self.config = config
        self.ledger = ledger
        # Rate limits and outages follow the monotonic clock; accepted batches are due at
        # wall-clock times, which mean the same thing to the next run of the simulator.
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._bucket = TokenBucket(config.rate_limit_rps, config.burst, clock())
        self._outages = OutageSchedule(config.outages, clock())
        self._dice = FaultDice(config.seed)
        self.statuses: Counter[int] = Counter()
        self.requests_total = 0
        self._accepted_waiting = asyncio.Event()
        self._applier: asyncio.Task | None = None

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._contract_faults])
        app[SIMULATOR] = self
        app.router.add_post(ADJUSTMENTS_PATH, self._adjust)
        app.router.add_get(ON_HAND_PATH, self._on_hand)
        app.router.add_post("/_sim/outage", self._start_outage)
        app.router.add_post("/_sim/config", self._change_config)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/ledger", self._set_ledger_row)
        app.router.add_get("/_sim/ledger", self._ledger_rows)
        app.on_startup.append(self._start_applier)
        app.on_cleanup.append(self._close)
        return app

    # The contract's endpoints.

    @web.middleware
    async def _contract_faults(self, request: web.Request, handler) -> web.StreamResponse:
        """Count and fault the contract's requests; `/_sim/` ones pass untouched."""
        if not request.path.startswith("/api/"):
            return await handler(request)
        self.requests_total += 1
        try:
            response = await self._faulted(request, handler)
        except web.HTTPException as error:
            self.statuses[error.status] += 1
            raise
        except Exception:
            self.statuses[500] += 1
            raise
        self.statuses[response.status] += 1
        return response

    async def _faulted(self, request: web.Request, handler) -> web.StreamResponse:
        now_s = self._clock()
        if (down_s := self._outages.remaining_s(now_s)) > 0:
            return _error(503, "the ERP is down (outage)",
                          headers={"Retry-After": str(retry_after_s(down_s))})
        if (wait_s := self._bucket.take(now_s)) > 0:
            return _error(429, f"rate limit of {self._bucket.rate_rps:g} requests/s "
                               f"(burst {self._bucket.burst}) exceeded",
                          headers={"Retry-After": str(retry_after_s(wait_s))},
                          limit_rps=self._bucket.rate_rps, burst=self._bucket.burst)
        latency_s = self._dice.latency_s(self.config.latency_ms, self.config.latency_jitter_ms)
        if latency_s > 0:
            await self._sleep(latency_s)
        if self._dice.fails(self.config.error_rate):
            return _error(503, "injected error: the ERP failed this request")
        return await handler(request)

    async def _adjust(self, request: web.Request) -> web.Response:
        try:
            key = check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
            batch = parse_adjustments(await _read_body(request))
        except ContractError as error:
            return web.json_response(error.answer(), status=400)
        apply_at_s = None
        if self._dice.accepts_async(self.config.async_accept_ratio):
            apply_at_s = self._wall_clock() + self.config.async_apply_delay_ms / 1000
        try:
            answer = self.ledger.submit(key, batch, self._wall_clock(), apply_at_s)
        except LedgerOverflow as error:
            return _error(400, str(error), field="lines")
        if answer.status == 202:
            self._accepted_waiting.set()
        return web.json_response(answer.body, status=answer.status)

    async def _on_hand(self, request: web.Request) -> web.Response:
        try:
            limit = parse_page_limit(request.query.get("limit"))
            after = decode_cursor(request.query.get("cursor"))
        except ContractError as error:
            return web.json_response(error.answer(), status=400)
        rows, more = self.ledger.page(after, limit)
        next_cursor = encode_cursor(rows[-1].sku, rows[-1].location) if more else None
        return web.json_response({"items": [row.to_json() for row in rows],
                                  "next_cursor": next_cursor})

    # Accepted batches, applied when due (those a previous run accepted too).

    async def _start_applier(self, app: web.Application) -> None:
        self._applier = asyncio.create_task(self._apply_accepted_forever())

    async def _apply_accepted_forever(self) -> None:
        while True:
            try:
                await self._apply_accepted_once()
            except sqlite3.Error:
                log.exception("applying accepted batches failed; retrying")
                await asyncio.sleep(APPLIER_RETRY_S)

    async def _apply_accepted_once(self) -> None:
        """Apply what is due, then wait for the next due time or a new acceptance."""
        self._accepted_waiting.clear()
        self.ledger.apply_due(self._wall_clock())
        next_at_s = self.ledger.next_pending_at_s()
        if next_at_s is None:
            await self._accepted_waiting.wait()
            return
        delay_s = next_at_s - self._wall_clock()
        if delay_s <= 0:
            await asyncio.sleep(0)  # more are due: let requests in between rounds
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._accepted_waiting.wait(), delay_s)

    async def _close(self, app: web.Application) -> None:
        if self._applier is not None:
            self._applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._applier
        self.ledger.close()

    # Control endpoints for tests and demos: never rate limited or faulted.

    async def _start_outage(self, request: web.Request) -> web.Response:
        try:
            body = await _control_body(request, ("seconds",))
            seconds = _check_number("seconds", body.get("seconds"), OUTAGE_SECONDS_MAX)
        except ContractError as error:
            return web.json_response(error.answer(), status=400)
        self._outages.start_now(self._clock(), seconds)
        return web.json_response({"outage_remaining_s": self._outages.remaining_s(self._clock())})

    async def _change_config(self, request: web.Request) -> web.Response:
        try:
            body = await _control_body(request)
            config = self.config.with_runtime_changes(body)
        except ContractError as error:
            return web.json_response(error.answer(), status=400)
        except SimulatorConfigError as error:
            return _error(400, str(error), field=error.field)
        if (config.rate_limit_rps, config.burst) != (self.config.rate_limit_rps,
                                                     self.config.burst):
            self._bucket = TokenBucket(config.rate_limit_rps, config.burst, self._clock())
        self.config = config
        return web.json_response({**config.runtime_settings(), "burst": config.burst})

    async def _stats(self, request: web.Request) -> web.Response:
        statuses = {**dict.fromkeys(COUNTED_STATUSES, 0), **self.statuses}
        return web.json_response({
            "statuses": {str(status): count for status, count in sorted(statuses.items())},
            "requests_total": self.requests_total,
            **self.ledger.totals(),
            "outage_remaining_s": self._outages.remaining_s(self._clock())})

    async def _set_ledger_row(self, request: web.Request) -> web.Response:
        try:
            body = await _control_body(request, ("sku", "location", "on_hand"), ("committed",))
            row = self.ledger.set_row(
                check_text("sku", body["sku"], IDENTIFIER_BYTES_MAX),
                check_text("location", body["location"], IDENTIFIER_BYTES_MAX),
                check_int("on_hand", body["on_hand"], ON_HAND_ABS_MAX),
                None if body.get("committed") is None
                else check_int("committed", body["committed"], ON_HAND_ABS_MAX))
        except ContractError as error:
            return web.json_response(error.answer(), status=400)
        return web.json_response(row.to_json())

    async def _ledger_rows(self, request: web.Request) -> web.Response:
        rows = self.ledger.rows(LEDGER_DUMP_ROWS_MAX + 1)
        if len(rows) > LEDGER_DUMP_ROWS_MAX:
            return _error(413, f"more than {LEDGER_DUMP_ROWS_MAX} rows: page "
                               f"{ON_HAND_PATH} instead")
        return web.json_response([row.to_json() for row in rows])


def _error(status: int, message: str, headers: dict | None = None, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


async def _read_body(request: web.Request) -> bytes:
    """The request body, refused as soon as it passes BODY_BYTES_MAX (never held whole)."""
    too_large = ContractError("body", f"larger than {BODY_BYTES_MAX} bytes")
    if request.content_length is not None and request.content_length > BODY_BYTES_MAX:
        raise too_large
    chunks, size = [], 0
    while chunk := await request.content.read(BODY_CHUNK_BYTES):
        size += len(chunk)
        if size > BODY_BYTES_MAX:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _control_body(request: web.Request, required: tuple[str, ...] = (),
                        optional: tuple[str, ...] | None = None) -> dict:
    """A control endpoint's JSON object; with `optional` given, other fields are refused."""
    try:
        body = await request.json()
    except ValueError:
        raise ContractError("body", "not JSON") from None
    if not isinstance(body, dict):
        raise ContractError("body", "must be a JSON object")
    for name in required:
        if name not in body:
            raise ContractError(name, "is required")
    for name in body:
        if optional is not None and name not in required + optional:
            raise ContractError(name, "is not a field of this endpoint")
    return body


def _check_number(name: str, value, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise ContractError(name, f"must be a number from 0 to {high:g}")
    return float(value)


async def start_simulator(config: SimulatorConfig) -> tuple[web.AppRunner, int]:
    """Serve the simulator on config.host:config.port (0: a free port); returns the runner
    (`runner.app[SIMULATOR]` is the simulator; `await runner.cleanup()` stops it) and the
    bound port."""
    simulator = ErpSimulator(config, Ledger(config.db_path))
    runner = web.AppRunner(simulator.application(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def main(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM. Raises SimulatorConfigError for a bad option."""
    config = config_from_args(args)
    try:
        asyncio.run(_serve_until_signalled(config))
    except OSError as error:
        print(f"availability sim erp: cannot listen on {config.host}:{config.port}: {error}",
              file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"availability sim erp: ledger {config.db_path}: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve_until_signalled(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner, port = await start_simulator(config)
    try:
        print(f"availability sim erp: listening on {config.host}:{port} "
              f"(ledger {config.db_path})", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
