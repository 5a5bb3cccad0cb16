"""An ingest worker's batch: acknowledged once applied, dead-lettered when hopeless, left
pending when a partition is away (Redis faked, partitions in process)."""

from __future__ import annotations

from inventory.v1 import availability_pb2 as pb

from engine.partition_host import PartitionHost
from gateway.ingest import ADDED_FIELDS, IngestConfig, IngestWorker
from gateway.partitions import LocalPartitions, PartitionUnavailable
from gateway.router import Router

NOW_MS = 1_700_000_000_000
CONFIG = IngestConfig(stream="events", dead_letters="events:dlq")


class FakePipeline:
    """Records the commands of one MULTI transaction into its client's log."""

    def __init__(self, log: list) -> None:
        self._log = log
        self._commands: list = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def xadd(self, stream: str, fields: dict) -> None:
        self._commands.append(("XADD", stream, fields))

    def xack(self, stream: str, group: str, *ids: bytes) -> None:
        self._commands.append(("XACK", stream, group, ids))

    async def execute(self) -> None:
        self._log.append(self._commands)


class FakeRedis:
    """Just what IngestWorker.process asks of Redis: transactions and the pending list."""

    def __init__(self, times_delivered: int = 1) -> None:
        self.transactions: list[list] = []
        self._times_delivered = times_delivered

    def pipeline(self, transaction: bool) -> FakePipeline:
        assert transaction, "dead letters and acknowledgements go in one transaction"
        return FakePipeline(self.transactions)

    async def xpending_range(self, stream, group, min, max, count) -> list[dict]:
        return [{"message_id": entry_id, "times_delivered": self._times_delivered}
                for entry_id in (min, max)]


class FailingPartitions(LocalPartitions):
    """Local partitions whose every call fails, as while an actor restarts."""

    async def apply(self, partition, commands):
        raise PartitionUnavailable(f"partition {partition} is restarting")


def receipt(event_id: str, quantity: int = 1) -> dict[bytes, bytes]:
    return {b"movement": pb.Movement(event_id=event_id, source="wms",
                                     type=pb.MOVEMENT_TYPE_RECEIPT, sku=f"sku-{event_id}",
                                     location="dc-1", quantity=quantity).SerializeToString()}


def new_worker(client: FakeRedis, partitions_type=LocalPartitions) -> IngestWorker:
    hosts = [PartitionHost(p, clock_ms=lambda: NOW_MS) for p in range(2)]
    return IngestWorker(client, Router(partitions_type(hosts)), config=CONFIG)


async def test_process_acknowledges_applied_and_duplicates_and_dead_letters_the_rest():
    """Applied and duplicate entries are acknowledged; an undecodable one and a reused
    event_id are dead-lettered with their reasons, in the same transaction."""
    client = FakeRedis()
    worker = new_worker(client)
    entries = [(b"1-0", receipt("a")), (b"2-0", receipt("b")), (b"3-0", receipt("a")),
               (b"4-0", {b"movement": b"\xff\xff"}), (b"5-0", receipt("b", quantity=9)),
               (b"6-0", {})]
    await worker.process(entries)
    [transaction] = client.transactions
    letters = {fields[b"entry_id"]: fields for command, _, fields in transaction[:-1]
               if command == "XADD"}
    assert letters.keys() == {b"4-0", b"5-0"}
    assert letters[b"4-0"][b"reason"].startswith(b"undecodable payload")
    assert letters[b"5-0"][b"reason"].startswith(b"IDEMPOTENCY_CONFLICT")
    assert letters[b"5-0"][ADDED_FIELDS] == b"reason entry_id attempts source"
    assert transaction[-1][:3] == ("XACK", "events", "availability-ingest")
    assert sorted(transaction[-1][3]) == [b"1-0", b"2-0", b"3-0", b"4-0", b"5-0", b"6-0"]
    assert (worker.stats.applied, worker.stats.duplicates, worker.stats.dead_lettered) == (
        2, 1, 2)
    assert (worker.stats.reads, worker.stats.entries_read) == (1, 6)


async def test_process_partition_away_leaves_entries_pending_for_a_later_delivery():
    """Entries whose partition call fails are neither acknowledged nor dead-lettered."""
    client = FakeRedis()
    worker = new_worker(client, FailingPartitions)
    await worker.process([(b"1-0", receipt("a")), (b"2-0", {b"json": b"{not json"})])
    [transaction] = client.transactions
    assert [command[0] for command in transaction] == ["XADD", "XACK"]
    assert transaction[-1][3] == (b"2-0",)  # only the dead letter's entry
    assert (worker.stats.applied, worker.stats.retried) == (0, 1)


async def test_process_claimed_entry_delivered_too_often_is_dead_lettered():
    """A claimed entry that has failed deliveries_max times goes to the DLQ with why."""
    client = FakeRedis(times_delivered=CONFIG.deliveries_max)
    worker = new_worker(client, FailingPartitions)
    await worker.process([(b"1-0", receipt("a"))], claimed=True)
    [transaction] = client.transactions
    letter = transaction[0][2]
    assert letter[b"reason"].startswith(b"not applied after 10 deliveries: "
                                        b"PartitionUnavailable")
    assert letter[b"attempts"] == b"10"
    assert transaction[-1][3] == (b"1-0",)
