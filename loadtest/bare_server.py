"""A bare grpc.aio AvailabilityService answering canned responses: the proto's ceiling.

Run as `python -m loadtest.bare_server --port 0`; it prints a line gateway/serve.py's
LISTENING pattern matches, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc


def canned_reserve() -> pb.ReserveResponse:
    """A HELD answer of one line, the size of the engine's for a one-line cart."""
    return pb.ReserveResponse(
        reservation_id="r0-0123456789abcdef0123", status=pb.RESERVATION_STATUS_HELD,
        lines=[pb.LineResult(sku="CAP-000000000000", location="LOC-CAP", requested=1,
                             reserved=1, code=pb.LINE_CODE_OK, available_after=999_999)],
        expires_at_unix_ms=1_800_000_000_000)


def canned_availability() -> pb.GetAvailabilityResponse:
    """One item's quantities, as the engine answers a one-item read."""
    return pb.GetAvailabilityResponse(items=[pb.ItemAvailability(
        sku="CAP-000000000000", location="LOC-CAP", on_hand=1_000_000, reserved=1,
        available_to_sell=999_999)])


class BareServicer(pb_grpc.AvailabilityServiceServicer):
    """No validation, routing or state: what grpc.aio and the proto alone cost."""

    def __init__(self) -> None:
        self._reserve = canned_reserve()
        self._availability = canned_availability()

    async def Reserve(self, request, context):
        return self._reserve

    async def GetAvailability(self, request, context):
        return self._availability


async def serve(port: int) -> None:
    """Serve until SIGTERM; SO_REUSEPORT as the gateway binds, so processes can share a port."""
    server = grpc.aio.server(options=(("grpc.so_reuseport", 1),))
    pb_grpc.add_AvailabilityServiceServicer_to_server(BareServicer(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    print(f"bare_server: serving inventory.v1.AvailabilityService (bare) on 127.0.0.1:{port}",
          flush=True)
    await stopping.wait()
    await server.stop(1.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))
