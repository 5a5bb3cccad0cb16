"""`availability loadtest capacity`: h2load stepped up to the engine's saturation point,
against a bare grpc.aio server of the same proto measured the same way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from loadtest import bare_server, report
from loadtest.bench_serve import (
    INSTALL_H2LOAD,
    H2loadRun,
    grpc_frame,
    load_line,
    machine_line,
    parse_h2load,
)
from loadtest.engine_process import running_bare, running_engine

LOCATION = "LOC-CAP"
STOCK = 1_000_000
HOLD_TTL_S = 3_600
SERVICE = "/inventory.v1.AvailabilityService"
# A step within this share of the peak counts as saturated: more streams buy nothing.
SATURATED_SHARE = 0.9
WARMUP_S = 1.0
CONNECTIONS_MAX = 4
BODIES = {
    "reserve_replay": (
        "Reserve with one pre-encoded body: its idempotency key never changes, so after the "
        "first call every request is an idempotent replay answered by the partition from its "
        "key table (serving path: HTTP/2, gRPC, validation, routing, lane batching, the Ray "
        "actor call, encoding) - not the grant path. Checked: exactly 1 unit reserved after."),
    "get_availability": (
        "GetAvailability of one SKU-location: a realistic read, the same request each time "
        "(routing, the Ray actor call, encoding)."),
}


@dataclass(frozen=True)
class CapacityOptions:
    steps: tuple[int, ...] = (1, 4, 16, 64, 256)
    duration_s: float = 5.0
    bodies: tuple[str, ...] = tuple(BODIES)
    address: str | None = None
    partitions: int = 4
    gateways: int = 1
    ray_address: str | None = None
    redis_url: str | None = None
    json_path: str | None = None
    report_path: str | None = None


def missing_tool() -> str | None:
    """Why the command cannot run here, or None."""
    return None if shutil.which("h2load") else INSTALL_H2LOAD


def run(options: CapacityOptions) -> dict:
    """Measure each body at each step on the engine and on the bare server."""
    run_id = f"{os.getpid():x}{time.time_ns() % 16**6:06x}"
    document = {"machine": f"{machine_line()}; {load_line()} at the start"}
    with contextlib.ExitStack() as stack:
        if options.address:
            address = options.address
        else:
            engine = stack.enter_context(running_engine(
                options.partitions, options.gateways, f"capacity-{run_id}",
                options.ray_address, options.redis_url))
            address = engine.address
        bare = stack.enter_context(running_bare(options.gateways))
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="avl-cap-"))
        prepared = asyncio.run(_prepare(address, f"CAP-{run_id}", run_id))
        bodies = {}
        for body in options.bodies:
            request, engine_answer, bare_answer = prepared[body]
            path = os.path.join(folder, f"{body}.grpc")
            with open(path, "wb") as out:
                out.write(grpc_frame(request))
            bodies[body] = _measure_body(body, path, address, bare.target,
                                         len(grpc_frame(engine_answer)),
                                         len(grpc_frame(bare_answer)), options)
        if "reserve_replay" in bodies:
            reserved = asyncio.run(_reserved(address, f"CAP-{run_id}"))
            bodies["reserve_replay"]["reserved_after"] = reserved
            if reserved != 1:
                raise RuntimeError(f"after h2load {reserved} units are reserved, not 1: the "
                                   f"replays were not all replays")
    document["capacity"] = {"steps": list(options.steps), "duration_s": options.duration_s,
                            "gateways": options.gateways, "bodies": bodies}
    if options.json_path:
        with open(options.json_path, "w") as out:
            json.dump(document, out, indent=1)
    if options.report_path:
        report.write(options.report_path, report.capacity_page(document))
    return document


async def _prepare(address: str, sku: str, run_id: str) -> dict:
    """Stock the SKU, hold it once, and read it: each body's request and both answers."""
    reserve = pb.ReserveRequest(
        idempotency_key=f"capacity-{run_id}", order_ref="capacity",
        lines=[pb.ReserveLine(sku=sku, location=LOCATION, quantity=1)], ttl_seconds=HOLD_TTL_S)
    read = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location=LOCATION)])
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.AvailabilityServiceStub(channel)
        applied = await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=[pb.Movement(
            event_id=f"capacity-{run_id}-receipt", source="loadtest",
            type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku, location=LOCATION, quantity=STOCK,
            occurred_at_unix_ms=int(time.time() * 1000))]), timeout=60)
        if applied.results[0].code != pb.MOVEMENT_CODE_APPLIED:
            raise RuntimeError(f"the capacity SKU's receipt was refused: {applied.results[0]}")
        held = await stub.Reserve(reserve, timeout=30)
        if held.status != pb.RESERVATION_STATUS_HELD:
            raise RuntimeError(f"the capacity Reserve was not held: {held}")
        availability = await stub.GetAvailability(read, timeout=30)
    return {"reserve_replay": (reserve, held, bare_server.canned_reserve()),
            "get_availability": (read, availability, bare_server.canned_availability())}


async def _reserved(address: str, sku: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await pb_grpc.AvailabilityServiceStub(channel).GetAvailability(
            pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location=LOCATION)]),
            timeout=30)
    return answer.items[0].reserved


def _measure_body(body: str, path: str, address: str, bare_address: str, engine_frame: int,
                  bare_frame: int, options: CapacityOptions) -> dict:
    """Every step on the bare server then the engine; the peaks, ratio and saturation."""
    method = "Reserve" if body.startswith("reserve") else "GetAvailability"
    measured = {"engine": [], "bare": []}
    for streams in options.steps:
        for server, target, frame in (("bare", bare_address, bare_frame),
                                      ("engine", address, engine_frame)):
            print(f"capacity: {body} at {streams} streams against {server} ...",
                  file=sys.stderr, flush=True)
            h2load(target, method, streams, WARMUP_S, path)
            result = parse_h2load(h2load(target, method, streams, options.duration_s, path))
            check_answers(result, frame, f"{body} on {server}")
            measured[server].append({"concurrency": streams,
                                     "requests_per_s": round(result.requests_per_s, 1),
                                     "mean_ms": round(result.mean_ms, 3),
                                     "max_ms": round(result.max_ms, 3), "done": result.done})
    engine_peak = max(step["requests_per_s"] for step in measured["engine"])
    bare_peak = max(step["requests_per_s"] for step in measured["bare"])
    return {"what": BODIES[body], **measured, "engine_peak_per_s": engine_peak,
            "bare_peak_per_s": bare_peak,
            "ratio": round(engine_peak / bare_peak, 3) if bare_peak else 0.0,
            "engine_saturation_concurrency": saturation_point(measured["engine"]),
            "bare_saturation_concurrency": saturation_point(measured["bare"])}


def check_answers(run: H2loadRun, frame_bytes: int, name: str) -> None:
    """Every request done was answered with one message of the expected size.

    gRPC's status is in trailers, which h2load does not read; a refusal is trailers-only,
    with no DATA, so DATA bytes of at least done x frame mean every answer carried a
    message (grpc-status 0). Streams cut off at the end may add headers and part of a frame.
    """
    if run.unsuccessful or run.status_2xx < run.done:
        raise RuntimeError(f"{name}: {run.unsuccessful} h2load requests failed, "
                           f"{run.status_2xx} of {run.done} answered HTTP 2xx")
    if not run.done * frame_bytes <= run.data_bytes <= run.started * frame_bytes:
        raise RuntimeError(f"{name}: {run.data_bytes:,} DATA bytes for {run.done:,} answers "
                           f"of {frame_bytes} bytes: some calls were refused")


def saturation_point(steps: Sequence[dict]) -> int:
    """The fewest streams that reach SATURATED_SHARE of the peak: past it, more wait longer."""
    peak = max(step["requests_per_s"] for step in steps)
    return min(step["concurrency"] for step in steps
               if step["requests_per_s"] >= SATURATED_SHARE * peak)


def h2load(address: str, method: str, streams: int, duration_s: float, body_path: str) -> str:
    """h2load for `duration_s` at `streams` in flight over up to CONNECTIONS_MAX connections."""
    clients = min(streams, CONNECTIONS_MAX)
    command = ["h2load", "-D", f"{round(duration_s * 1000)}ms", "-c", str(clients),
               "-m", str(max(1, streams // clients)), "-t", "1",
               "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body_path,
               f"http://{address}{SERVICE}/{method}"]
    return subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=duration_s + 60).stdout


def summary_lines(document: dict) -> list[str]:
    lines = []
    for body, measured in document["capacity"]["bodies"].items():
        lines.append(f"{body}: " + "  ".join(
            f"{e['concurrency']}: {e['requests_per_s']:,.0f}/{b['requests_per_s']:,.0f}"
            for e, b in zip(measured["engine"], measured["bare"]))
            + "  (streams: engine/bare req/s)")
        lines.append(f"  engine peak {measured['engine_peak_per_s']:,.0f} req/s, saturated at "
                     f"{measured['engine_saturation_concurrency']} streams; bare peak "
                     f"{measured['bare_peak_per_s']:,.0f}; engine/bare {measured['ratio']:.2f}")
    return lines
