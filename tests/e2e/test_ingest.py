"""`availability serve` ingests the events stream of its Redis, normalized by source mappings."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from inventory.v1 import availability_pb2 as pb

from engine.embedded_redis import SOCKET_NAME, start_embedded_redis
from engine.journal_store import connect
from tests.integration.serving import availability, stub_of

MAPPINGS = Path(__file__).parents[2] / "loadtest" / "mappings"
DEADLINE_S = 60.0


async def test_serve_ingests_pos_events_in_source_terms_and_dead_letters_garbage(
        spawn, tmp_path):
    """A POS receipt posted by UPC and store number on availability:events shows up under
    the canonical SKU and location; an undecodable entry lands in the DLQ with a reason."""
    data_dir = tmp_path / "data"
    served = spawn(2, args=("--data-dir", str(data_dir), "--mappings", str(MAPPINGS)))
    try:
        events = connect(f"unix://{data_dir.resolve() / SOCKET_NAME}")
        receipt = pb.Movement(event_id="pos-0101-1", source="pos",
                              type=pb.MOVEMENT_TYPE_RECEIPT, sku="889842640786",
                              location="0101", quantity=4, unit_of_measure="PK")
        events.xadd("availability:events", {"movement": receipt.SerializeToString()})
        events.xadd("availability:events", {"movement": b"\x08\xff\xff"})
        async with grpc.aio.insecure_channel(served.target) as channel:
            stub = stub_of(channel)
            deadline = time.monotonic() + DEADLINE_S
            while (await availability(stub, "SOCKS-3PK-GRY", location="store-nyc-soho")
                   )[0].on_hand != 12:
                assert time.monotonic() < deadline, "the receipt was not ingested"
                time.sleep(0.05)
        deadline = time.monotonic() + DEADLINE_S
        while not events.xlen("availability:events:dlq"):
            assert time.monotonic() < deadline, "the garbage entry was not dead-lettered"
            time.sleep(0.05)
        [(_, letter)] = events.xrange("availability:events:dlq")
        assert b"undecodable" in letter[b"reason"]
        assert events.xpending("availability:events", "availability-ingest")["pending"] == 0
    finally:
        served.stop()
        start_embedded_redis(data_dir).stop()
