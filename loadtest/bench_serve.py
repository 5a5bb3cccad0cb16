"""Serving: Reserve via h2load vs a bare server, client vs Redis+Lua, latency at half load,
the journal's cost, and a big partition's recovery and snapshot stall."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import redis.asyncio as aioredis
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from engine.journal_store import forget_keys
from gateway.client import AvailabilityClient
from loadtest import bare_server, bench_durability
from loadtest.engine_process import EngineProcess, Server, running_bare, running_engine

LOCATION = "LOC-BENCH"
SKUS = 1_000
# Far more than a run can hold, so no reserve is refused for want of stock.
STOCK_PER_SKU = 1_000_000
H2LOAD_SKU = "SKU-H2LOAD"
# Longer than a run, so no hold expires before the totals are checked.
HOLD_TTL_S = 900
MOVEMENTS_PER_REQUEST_MAX = 1_000
ITEMS_PER_QUERY_MAX = 1_000
RESERVE_PATH = "/inventory.v1.AvailabilityService/Reserve"
# h2load clients (connections) x streams per client; the best of them is reported per target.
H2LOAD_SETTINGS_DEFAULT = "1x64,4x16,8x64"
WARMUP_S = 2.0
INSTALL_H2LOAD = "h2load is missing: install it with `apt-get install nghttp2-client` (Debian)"

# Holds one line atomically. KEYS: stock, idempotency key, hold; ARGV: quantity, ttl_s, hold.
# A known key returns its stored answer; as the script runs alone, GET-then-SET is SET NX.
HOLD_LUA = """
local answer = redis.call('GET', KEYS[2])
if answer then return answer end
local quantity = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') >= quantity then
  redis.call('DECRBY', KEYS[1], quantity)
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[2])
  answer = 'HELD'
else
  answer = 'REJECTED'
end
redis.call('SET', KEYS[2], answer, 'EX', ARGV[2])
return answer
"""

ReserveOne = Callable[[str, str], Awaitable[bool]]


@dataclass(frozen=True)
class H2loadRun:
    requests_per_s: float
    started: int
    done: int
    unsuccessful: int
    status_2xx: int
    data_bytes: int
    mean_ms: float
    max_ms: float


@dataclass
class Tally:
    held: int = 0
    refused: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    # Open loop only: from a call's slot to its task's first step (harness and event loop).
    start_lags_ms: list[float] = field(default_factory=list)

    @property
    def held_per_s(self) -> float:
        return self.held / self.elapsed_s if self.elapsed_s else 0.0

    def count(self, outcome: bool | BaseException) -> None:
        """Add one call's outcome: held, refused, or the error it raised."""
        if isinstance(outcome, BaseException):
            self.errors += 1
            self.first_error = self.first_error or f"{type(outcome).__name__}: {outcome}"
        elif outcome:
            self.held += 1
        else:
            self.refused += 1


# ---- machine and processes ---------------------------------------------------------------


def machine_line() -> str:
    """CPU count, CPU model and Python version of this machine."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"machine: {os.cpu_count()} CPUs, {model}, {platform.python_implementation()} "
            f"{platform.python_version()}, {platform.system()} {platform.release()}")


def load_line() -> str:
    """The load averages: work of others on a shared machine skews every figure."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def engine_namespace(journal: bool) -> str:
    return f"bench-serve-{os.getpid()}-{'journal' if journal else 'memory'}"


def running_engine_of(args: argparse.Namespace,
                      journal: bool = True) -> contextlib.AbstractContextManager[EngineProcess]:
    """`availability serve` with a local Ray of its own, journaling to --redis-url under
    keys of its own (or, for the journal's cost, not journaling at all)."""
    # One ingest worker, serve's default, as when the figures of BENCHMARKS.md were taken.
    return running_engine(args.partitions, args.gateways, engine_namespace(journal),
                          redis_url=args.redis_url, ingest_workers=1,
                          extra_args=[] if journal else ["--benchmark-without-journal"])


# ---- engine setup and checks through a plain stub ----------------------------------------


def sku_names(count: int) -> list[str]:
    """The catalogue of step 2 and 3: `count` SKUs, all at LOCATION."""
    return [f"SKU-{n:06d}" for n in range(count)]


async def load_stock(target: str, skus: Sequence[str], quantity: int) -> None:
    """Receive `quantity` of every SKU at LOCATION, at most 1,000 movements a request."""
    now_ms = int(time.time() * 1000)
    movements = [pb.Movement(event_id=f"bench-receipt-{sku}", source="bench",
                             type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku, location=LOCATION,
                             quantity=quantity, occurred_at_unix_ms=now_ms) for sku in skus]
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.AvailabilityServiceStub(channel)
        for start in range(0, len(movements), MOVEMENTS_PER_REQUEST_MAX):
            chunk = movements[start:start + MOVEMENTS_PER_REQUEST_MAX]
            response = await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=chunk))
            refused = [r for r in response.results if r.code != pb.MOVEMENT_CODE_APPLIED]
            if refused:
                raise RuntimeError(f"{len(refused)} receipts not applied, first: {refused[0]}")


async def reserved_units(target: str, skus: Sequence[str]) -> int:
    """Units the engine holds over `skus`, read with GetAvailability."""
    total = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.AvailabilityServiceStub(channel)
        for start in range(0, len(skus), ITEMS_PER_QUERY_MAX):
            items = [pb.ItemRef(sku=sku, location=LOCATION)
                     for sku in skus[start:start + ITEMS_PER_QUERY_MAX]]
            response = await stub.GetAvailability(pb.GetAvailabilityRequest(items=items))
            total += sum(item.reserved for item in response.items)
    return total


async def reserve_once(target: str, request: pb.ReserveRequest) -> pb.ReserveResponse:
    """One Reserve through a plain stub, outside any client or load generator."""
    async with grpc.aio.insecure_channel(target) as channel:
        return await pb_grpc.AvailabilityServiceStub(channel).Reserve(request)


def check(ok: bool, what: str) -> str:
    """`what`, marked as passed; raises when it does not hold, so no figure is printed for it."""
    if not ok:
        raise RuntimeError(f"check failed: {what}")
    return f"ok: {what}"


# ---- step 1: h2load ----------------------------------------------------------------------


def grpc_frame(message) -> bytes:
    """`message` as one gRPC length-prefixed message, uncompressed."""
    body = message.SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def parse_settings(text: str) -> list[tuple[int, int]]:
    """'1x64,4x16' -> [(1, 64), (4, 16)]: h2load clients by streams per client."""
    pairs = [part.split("x") for part in text.split(",") if part]
    return [(int(clients), int(streams)) for clients, streams in pairs]


def h2load(address: str, clients: int, streams: int, duration_s: float,
           body_path: str) -> str:
    """Run h2load for `duration_s` and return its output."""
    command = ["h2load", "-D", f"{round(duration_s * 1000)}ms", "-c", str(clients),
               "-m", str(streams), "-t", "1", "-H", "content-type: application/grpc",
               "-H", "te: trailers", "-d", body_path, f"http://{address}{RESERVE_PATH}"]
    return subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=duration_s + 60).stdout


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    """h2load's duration ('363us', '1.2ms', '2s') in milliseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _TIME_UNITS_MS[unit]


def parse_h2load(output: str) -> H2loadRun:
    """Requests/s, counts, DATA bytes received and request latency from h2load's report."""
    finished = re.search(r"finished in \S+, ([\d.]+) req/s", output)
    requests = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                         r"(\d+) failed, (\d+) errored, (\d+) timeout", output)
    codes = re.search(r"status codes: (\d+) 2xx", output)
    data = re.search(r"\((\d+)\) data", output)
    timing = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", output)
    if not (finished and requests and codes and data and timing):
        raise RuntimeError(f"cannot read h2load's report:\n{output}")
    _, started, done, _, failed, errored, timeouts = map(int, requests.groups())
    return H2loadRun(float(finished[1]), started, done, failed + errored + timeouts,
                     int(codes[1]), int(data[1]), _ms(timing[3]), _ms(timing[2]))


def check_h2load(run: H2loadRun, frame_bytes: int, name: str) -> None:
    """Every request done answered 200 with one response message of the expected size.

    gRPC puts its status in trailers, which h2load does not read; but a refusal is a
    trailers-only response with no DATA, so DATA bytes = done x frame means every answer
    carried a message, i.e. grpc-status 0. Calls cut off at the end may add a partial frame.
    """
    # h2load also counts 2xx replies of streams still open at its cutoff: at least `done`.
    check(run.unsuccessful == 0 and run.status_2xx >= run.done,
          f"{name}: every h2load request answered HTTP 200")
    lowest, highest = run.done * frame_bytes, run.started * frame_bytes
    check(lowest <= run.data_bytes <= highest,
          f"{name}: {run.data_bytes:,} DATA bytes for {run.done:,} answers of {frame_bytes} bytes")


async def measure_h2load(engine: str, bare: str, settings: list[tuple[int, int]],
                         duration_s: float) -> tuple[list[tuple], list[str]]:
    """Each setting on the bare server then the engine; returns rows and the checks passed."""
    request = pb.ReserveRequest(
        idempotency_key=f"bench-h2load-{os.getpid()}", order_ref="h2load",
        lines=[pb.ReserveLine(sku=H2LOAD_SKU, location=LOCATION, quantity=1)],
        ttl_seconds=HOLD_TTL_S)
    first = await reserve_once(engine, request)
    checks = [check(first.status == pb.RESERVATION_STATUS_HELD,
                    "the h2load request, sent once with a stub first, is HELD")]
    frames = {"bare": len(grpc_frame(bare_server.canned_reserve())),
              "engine": len(grpc_frame(first))}
    rows = []
    with tempfile.NamedTemporaryFile(suffix=".grpc") as body:
        body.write(grpc_frame(request))
        body.flush()
        for clients, streams in settings:
            runs = {}
            for name, address in (("bare", bare), ("engine", engine)):
                print(f"  h2load -c {clients} -m {streams} against {name} ...", flush=True)
                await asyncio.to_thread(h2load, address, clients, streams, WARMUP_S,
                                        body.name)
                output = await asyncio.to_thread(h2load, address, clients, streams,
                                                 duration_s, body.name)
                runs[name] = parse_h2load(output)
                check_h2load(runs[name], frames[name], name)
            rows.append((clients, streams, runs["engine"], runs["bare"]))
    checks.append(check(await reserved_units(engine, [H2LOAD_SKU]) == 1,
                        "after h2load exactly 1 unit of its SKU is reserved: the rest replayed"))
    again = await reserve_once(engine, request)
    checks.append(check(again == first, "a replay after h2load answers the first result"))
    return rows, checks


# ---- step 2: closed loop, client against Redis+Lua ---------------------------------------


async def closed_loop(reserve_one: ReserveOne, skus: Sequence[str], concurrency: int,
                      duration_s: float, keys: Iterator[str], seed: int) -> Tally:
    """`concurrency` tasks reserving back to back for `duration_s`; counts holds."""
    tally = Tally()
    stop_at = time.perf_counter() + duration_s

    async def worker(rng: random.Random) -> None:
        while time.perf_counter() < stop_at:
            try:
                tally.count(await reserve_one(rng.choice(skus), next(keys)))
            except Exception as error:  # counted and shown: a failing side must not look fast
                tally.count(error)

    started = time.perf_counter()
    await asyncio.gather(*(worker(random.Random(seed + n)) for n in range(concurrency)))
    tally.elapsed_s = time.perf_counter() - started
    return tally


def engine_reserve(client: AvailabilityClient) -> ReserveOne:
    """One single-unit Reserve through the client; True when HELD."""
    async def reserve_one(sku: str, key: str) -> bool:
        response = await client.reserve([(sku, LOCATION, 1)], idempotency_key=key,
                                        ttl_seconds=HOLD_TTL_S)
        return response.status == pb.RESERVATION_STATUS_HELD
    return reserve_one


def redis_reserve(connection: aioredis.Redis, prefix: str) -> ReserveOne:
    """One single-unit hold through the Lua script (EVALSHA); True when HELD."""
    script = connection.register_script(HOLD_LUA)

    async def reserve_one(sku: str, key: str) -> bool:
        answer = await script(keys=[f"{prefix}stock:{sku}", f"{prefix}key:{key}",
                                    f"{prefix}hold:{key}"],
                              args=[1, HOLD_TTL_S, f"{sku}@{LOCATION}x1"])
        return answer == b"HELD"
    return reserve_one


async def redis_checks(connection: aioredis.Redis, prefix: str, skus: Sequence[str],
                       held: int) -> list[str]:
    """Stock decrements and hold keys in Redis both equal the holds counted."""
    stocks = await connection.mget([f"{prefix}stock:{sku}" for sku in skus])
    decrement = sum(STOCK_PER_SKU - int(stock) for stock in stocks)
    holds = 0
    async for _ in connection.scan_iter(match=f"{prefix}hold:*", count=10_000):
        holds += 1
    return [check(decrement == held, f"Redis stock fell by {decrement:,} = units held {held:,}"),
            check(holds == held, f"Redis has {holds:,} hold keys = units held")]


async def remove_keys(connection: aioredis.Redis, prefix: str) -> None:
    """Delete this run's keys: the Redis may be shared, so nothing else is touched."""
    batch = []
    async for key in connection.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            await connection.unlink(*batch)
            batch.clear()
    if batch:
        await connection.unlink(*batch)


async def measure_redis(url: str, skus: Sequence[str], concurrency: int,
                        duration_s: float) -> tuple[Tally, list[str]]:
    """Holds per second of the Lua script, after a warm-up; and the checks of what it held."""
    prefix = f"bench-serve:{os.getpid()}:{time.time_ns()}:"
    # One connection per task, as a service would pool them: redis-py's default pool
    # refuses beyond 100, which would turn the baseline into errors at high concurrency.
    connection = aioredis.Redis.from_url(url, max_connections=max(concurrency, 10))
    try:
        await connection.mset({f"{prefix}stock:{sku}": STOCK_PER_SKU for sku in skus})
        await connection.script_load(HOLD_LUA)
        reserve_one = redis_reserve(connection, prefix)
        keys = (f"redis-{n}" for n in itertools.count())
        warmup = await closed_loop(reserve_one, skus, concurrency, WARMUP_S, keys, seed=1)
        tally = await closed_loop(reserve_one, skus, concurrency, duration_s, keys, seed=2)
        return tally, await redis_checks(connection, prefix, skus, warmup.held + tally.held)
    finally:
        await remove_keys(connection, prefix)
        await connection.aclose()


# ---- step 3: open loop at half capacity --------------------------------------------------


async def open_loop(reserve_one: ReserveOne, skus: Sequence[str], rate_per_s: float,
                    duration_s: float, keys: Iterator[str], rng: random.Random) -> Tally:
    """Start calls on a fixed schedule, each its own task; latency runs from its slot.

    Measuring from the scheduled start rather than the actual one keeps coordinated
    omission out: a call the harness or the client could not start on time counts late.
    """
    tally = Tally()
    pending: set[asyncio.Task] = set()

    async def call(scheduled_s: float, sku: str, key: str) -> None:
        tally.start_lags_ms.append((time.perf_counter() - scheduled_s) * 1000)
        try:
            tally.count(await reserve_one(sku, key))
        except Exception as error:
            tally.count(error)
        tally.latencies_ms.append((time.perf_counter() - scheduled_s) * 1000)

    if rate_per_s <= 0:
        raise RuntimeError("no rate to run the open loop at: the closed loop held nothing")
    calls = int(rate_per_s * duration_s)
    start_s = time.perf_counter()
    for index in range(calls):
        scheduled_s = start_s + index / rate_per_s
        if (delay_s := scheduled_s - time.perf_counter()) > 0:
            await asyncio.sleep(delay_s)
        task = asyncio.create_task(call(scheduled_s, rng.choice(skus), next(keys)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    tally.elapsed_s = time.perf_counter() - start_s
    return tally


def percentile_ms(latencies_ms: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile; 0 when there is nothing to rank."""
    ordered = sorted(latencies_ms)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def measure_client(target: str, skus: Sequence[str], concurrency: int,
                         duration_s: float) -> tuple[Tally, Tally, list[str]]:
    """Closed-loop holds/s through the client, then the open loop at half that rate."""
    keys = (f"bench-client-{os.getpid()}-{n}" for n in itertools.count())
    async with AvailabilityClient(target) as client:
        reserve_one = engine_reserve(client)
        warmup = await closed_loop(reserve_one, skus, concurrency, WARMUP_S, keys, seed=1)
        tally = await closed_loop(reserve_one, skus, concurrency, duration_s, keys, seed=2)
        held_closed = warmup.held + tally.held
        checks = [check(await reserved_units(target, skus) == held_closed,
                        f"engine reserves {held_closed:,} units = holds the client counted")]
        rate_per_s = tally.held_per_s / 2
        print(f"  open loop at {rate_per_s:,.0f} calls/s through the client ...", flush=True)
        half = await open_loop(reserve_one, skus, rate_per_s, duration_s, keys,
                               random.Random(3))
    held_all = held_closed + half.held
    checks.append(check(await reserved_units(target, skus) == held_all,
                        f"engine reserves {held_all:,} units after the open loop too"))
    return tally, half, checks


# ---- report ------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    """How a target reads in the report."""
    return "met" if met else "MISSED"


def print_h2load(rows: list[tuple], checks: list[str]) -> float:
    """The h2load table, per setting and best of each; returns the best-to-best ratio."""
    print("\n1. Reserve capacity under h2load: the engine against a bare grpc.aio servicer")
    print(f"  {'h2load':<14}{'engine req/s':>13}{'mean ms':>9}{'max ms':>9}  |"
          f"{'bare req/s':>11}{'mean ms':>9}{'max ms':>9}  |{'ratio':>7}")
    for clients, streams, engine, bare in rows:
        print(f"  {f'-c {clients} -m {streams}':<14}{engine.requests_per_s:>13,.0f}"
              f"{engine.mean_ms:>9.1f}{engine.max_ms:>9.1f}  |{bare.requests_per_s:>11,.0f}"
              f"{bare.mean_ms:>9.1f}{bare.max_ms:>9.1f}  |"
              f"{engine.requests_per_s / bare.requests_per_s:>7.2f}")
    best_engine = max(engine.requests_per_s for _, _, engine, _ in rows)
    best_bare = max(bare.requests_per_s for _, _, _, bare in rows)
    ratio = best_engine / best_bare
    print(f"  {'best of each':<14}{best_engine:>13,.0f}{'':>18}  |{best_bare:>11,.0f}{'':>18}  |"
          f"{ratio:>7.2f}   target >= 0.6: {verdict(ratio >= 0.6)}")
    print("  * h2load sends one body, so after the first call every Reserve carries the same\n"
          "    idempotency key and the partition answers it as a replay: this is the serving\n"
          "    path's capacity (HTTP/2 and gRPC, validation, routing, per-partition batching,\n"
          "    the Ray actor call, encoding) on one partition, not the grant path (step 2).\n"
          "    Latencies are h2load's mean and max per request at that many streams in flight.")
    for line in checks:
        print(f"  {line}")
    return ratio


def print_capacity(client: Tally, lua: Tally, checks: list[str], concurrency: int) -> float:
    """The closed-loop comparison; returns client holds/s over Redis+Lua holds/s."""
    print(f"\n2. Single-unit holds/s, closed loop: {concurrency} asyncio tasks, random SKUs "
          f"of {SKUS:,}, a fresh key each")
    for name, tally in (("AvailabilityClient (Batch RPC)", client),
                        ("Redis+Lua (redis.asyncio EVALSHA)", lua)):
        print(f"  {name:<36}{tally.held_per_s:>10,.0f} holds/s   (held {tally.held:,}, "
              f"refused {tally.refused:,}, errors {tally.errors:,} in {tally.elapsed_s:.1f} s)")
        if tally.first_error:
            print(f"    first error: {tally.first_error}")
    ratio = client.held_per_s / lua.held_per_s if lua.held_per_s else 0.0
    if client.errors or lua.errors:  # a side that failed calls is no baseline to compare
        ratio = float("nan")
    print(f"  {'client / Redis+Lua':<36}{ratio:>10.2f}            target >= 1.0: "
          f"{verdict(ratio >= 1.0) if ratio == ratio else 'NOT MEASURED (errors)'}")
    for line in checks:
        print(f"  {line}")
    return ratio


def print_latency(half: Tally, capacity_per_s: float) -> tuple[float, float]:
    """Percentiles of the open loop; returns p50 and p99 in ms."""
    latencies_ms = half.latencies_ms
    p50_ms, p99_ms = percentile_ms(latencies_ms, 0.50), percentile_ms(latencies_ms, 0.99)
    print(f"\n3. Reserve latency through AvailabilityClient at 50% of step 2's capacity "
          f"({capacity_per_s / 2:,.0f} calls/s, open loop)")
    print(f"  p50 {p50_ms:.2f} ms   p90 {percentile_ms(latencies_ms, 0.90):.2f} ms   "
          f"p99 {p99_ms:.2f} ms   p99.9 {percentile_ms(latencies_ms, 0.999):.2f} ms   "
          f"max {max(latencies_ms, default=0.0):.2f} ms   target p99 <= 5 ms: "
          f"{verdict(p99_ms <= 5.0)}")
    print(f"  {len(latencies_ms):,} calls in {half.elapsed_s:.1f} s: held {half.held:,}, "
          f"refused {half.refused:,}, errors {half.errors:,}; latency runs from each call's "
          f"scheduled start")
    print(f"  of which waiting for the event loop to start the call: p50 "
          f"{percentile_ms(half.start_lags_ms, 0.50):.2f} ms, p99 "
          f"{percentile_ms(half.start_lags_ms, 0.99):.2f} ms")
    if half.first_error:
        print(f"    first error: {half.first_error}")
    return p50_ms, p99_ms


# ---- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    """The command line (`--bare-server` and `--port` serve as loadtest/bare_server.py)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--gateways", type=int, default=1,
                        help="gateway processes of the engine, and bare server processes")
    parser.add_argument("--duration-s", type=float, default=10.0,
                        help="length of each measurement (h2load run, closed loop, open loop)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="asyncio tasks of the closed loop, for the client and Redis alike")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--h2load-settings", default=H2LOAD_SETTINGS_DEFAULT,
                        help="h2load clients x streams per client, comma-separated "
                             f"(default {H2LOAD_SETTINGS_DEFAULT})")
    parser.add_argument("--items", type=int, default=1_000_000,
                        help="SKU-locations of the partition recovered in step 5")
    parser.add_argument("--entries", type=int, default=100_000,
                        help="journal entries replayed after its snapshot in step 5")
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


async def measure_all(engine: EngineProcess, bare: Server, args: argparse.Namespace) -> dict:
    """Steps 1 to 3 against servers already serving."""
    skus = sku_names(SKUS)
    await load_stock(engine.address, [*skus, H2LOAD_SKU], STOCK_PER_SKU)
    print("1. h2load", flush=True)
    h2load_rows, h2load_checks = await measure_h2load(
        engine.address, bare.target, parse_settings(args.h2load_settings), args.duration_s)
    print("2. closed loop through AvailabilityClient", flush=True)
    client, half, client_checks = await measure_client(engine.address, skus, args.concurrency,
                                                       args.duration_s)
    print("2. closed loop through Redis+Lua", flush=True)
    lua, lua_checks = await measure_redis(args.redis_url, skus, args.concurrency,
                                          args.duration_s)
    return {"h2load": (h2load_rows, h2load_checks), "client": client, "half": half,
            "lua": lua, "checks": client_checks + lua_checks}


def measure_with_servers(args: argparse.Namespace) -> dict:
    """Start the bare server and the engine, measure, and stop both whatever happens."""
    try:
        with running_bare(args.gateways) as bare, running_engine_of(args) as engine:
            print(f"engine: pid {engine.process.pid}, {args.partitions} partitions, "
                  f"{args.gateways} gateway process(es) on {engine.address}, journaling to "
                  f"{args.redis_url}; bare server: {args.gateways} process(es) on "
                  f"{bare.target}; {args.duration_s:g} s per measurement", flush=True)
            figures = asyncio.run(measure_all(engine, bare, args))
        figures["memory"] = measure_without_journal(args)
        return figures
    finally:
        for journal in (True, False):
            forget_keys(args.redis_url, engine_namespace(journal))


def measure_without_journal(args: argparse.Namespace) -> Tally:
    """Step 4: step 2's client loop against an engine that journals nothing."""
    print("4. closed loop through AvailabilityClient, journal off", flush=True)
    with running_engine_of(args, journal=False) as engine:
        async def measure() -> Tally:
            skus = sku_names(SKUS)
            await load_stock(engine.address, skus, STOCK_PER_SKU)
            keys = (f"bench-memory-{os.getpid()}-{n}" for n in itertools.count())
            async with AvailabilityClient(engine.address) as client:
                reserve_one = engine_reserve(client)
                await closed_loop(reserve_one, skus, args.concurrency, WARMUP_S, keys, seed=1)
                return await closed_loop(reserve_one, skus, args.concurrency, args.duration_s,
                                         keys, seed=2)
        return asyncio.run(measure())


def print_journal_cost(journaled: Tally, memory: Tally) -> float:
    """Step 2's engine figure against step 4's; returns the ratio."""
    ratio = journaled.held_per_s / memory.held_per_s if memory.held_per_s else 0.0
    if journaled.errors or memory.errors:
        ratio = float("nan")
    print("\n4. What the journal costs: step 2's client loop, journal on against off")
    print(f"  journal on (group commit to Redis) {journaled.held_per_s:>10,.0f} holds/s")
    print(f"  journal off (benchmark only)       {memory.held_per_s:>10,.0f} holds/s   "
          f"(errors {memory.errors:,})")
    print(f"  {'on / off':<35}{ratio:>10.2f}            target >= 0.8: "
          f"{verdict(ratio >= 0.8) if ratio == ratio else 'NOT MEASURED (errors)'}")
    return ratio


def main() -> None:
    """Run the three steps and print the report, or serve bare when asked to."""
    args = parse_args()
    if args.bare_server:
        asyncio.run(bare_server.serve(args.port))
        return
    if shutil.which("h2load") is None:
        sys.exit(INSTALL_H2LOAD)
    # SIGTERM as Ctrl-C: the finally blocks then stop the servers this run started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"{machine_line()}; {load_line()}")
    started_s = time.perf_counter()
    try:
        figures = measure_with_servers(args)
    except RuntimeError as error:  # a failed check, or a server that would not start
        sys.exit(f"bench_serve: {error}")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the servers were stopped on the way out
        sys.exit("bench_serve: interrupted")
    h2load_ratio = print_h2load(*figures["h2load"])
    client_ratio = print_capacity(figures["client"], figures["lua"], figures["checks"],
                                  args.concurrency)
    p50_ms, p99_ms = print_latency(figures["half"], figures["client"].held_per_s)
    journal_ratio = print_journal_cost(figures["client"], figures["memory"])
    print("\n5. Durability of one partition (loadtest/bench_durability.py)")
    durability = bench_durability.report(args.redis_url, args.items, args.entries,
                                         out=lambda line: print(f"  {line}"))
    print(f"\nwhole run: {time.perf_counter() - started_s:.0f} s; {load_line()}")
    print(f"h2load_ratio={h2load_ratio:.2f} client_vs_redis_lua={client_ratio:.2f} "
          f"p50_ms_at_half={p50_ms:.2f} p99_ms_at_half={p99_ms:.2f} "
          f"journal_on_vs_off={journal_ratio:.2f} recovery_s={durability['recovery_s']:.2f} "
          f"snapshot_spawn_ms={durability['spawn_ms_max']:.1f}")


if __name__ == "__main__":
    main()
