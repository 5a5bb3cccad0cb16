"""The Ray actor that hosts one partition, and how partitions are started and found by name."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time

import ray

from engine import compactor, logs, wire
from engine.config import DurabilityConfig, PartitionConfig
from engine.durable_partition import DurablePartition
from engine.journal_store import JournalStore, connect
from engine.partition_host import SWEEP_INTERVAL_S
from engine.process import tune_garbage_collector
from engine.snapshot_writer import SnapshotWriter
from engine.submitter_order import SubmitterOrder

# Gateways in other processes find partitions by name in this namespace.
NAMESPACE = "availability"
# Calls an actor runs at once: enough that batch k+1 is applied while batch k is being
# journaled, for every gateway lane that sends to it.
CONCURRENT_CALLS = 16
# How long `start_partitions` waits for the actors of a driver that just died to go.
OLD_ACTORS_WAIT_S = 15.0
log = logging.getLogger(__name__)


def actor_name(partition: int) -> str:
    return f"partition-{partition}"


@ray.remote(max_concurrency=CONCURRENT_CALLS)
class PartitionActor:
    """Applies batches one at a time in each submitter's order, journals them, sweeps holds.

    Calls run on a thread pool so that a batch's journal write overlaps the next batch;
    the partition's lock keeps batches (and the timer thread's sweeps and snapshots)
    whole and serial, and SubmitterOrder keeps each gateway lane's batches in its order.
    A (re)started actor recovers from Redis in its constructor, so Ray sends it nothing
    and `ready` answers nothing before it holds its whole state.
    """

    def __init__(self, partition: int, config: PartitionConfig | None,
                 durability: DurabilityConfig) -> None:
        # Its own process: log lines in the engine's format (JSON unless told otherwise).
        logs.configure()
        store = snapshots = None
        if durability.journal:
            store = JournalStore(connect(durability.redis_url), partition, durability.key_prefix)
            snapshots = SnapshotWriter(store, functools.partial(
                compactor.command, durability.redis_url, durability.key_prefix, partition,
                config))
        self._partition = DurablePartition(partition, store, config, durability,
                                           snapshots=snapshots)
        self._partition.recover_until_redis_answers()
        self._order = SubmitterOrder()
        tune_garbage_collector()
        threading.Thread(target=self._tick_forever, name=f"tick-{partition}",
                         daemon=True).start()

    def apply(self, batch: bytes) -> bytes:
        """A batch of (submitter, number, oldest unanswered) and commands in, its results
        out, both as bytes of engine/wire.py's dumps_batch.

        Batches travel as bytes pickled by the standard C pickler: Ray would otherwise
        serialize them with cloudpickle, two to three times slower for these tuples.
        """
        (submitter, number, oldest), commands = wire.loads_batch(batch)
        with self._order.turn(submitter, number, oldest):
            pending = self._partition.start(commands)
        return wire.dumps_batch((), pending.results())

    def ready(self) -> dict:
        """Answers once the partition can take commands (a restarted one, once recovered)."""
        return {**self._partition.status(), "pid": os.getpid()}

    def metrics(self) -> dict:
        """ready()'s figures plus holds, journal write latency and snapshot age (it scans
        the holds, so gateways poll it every few seconds rather than per health probe)."""
        return {**self._partition.metrics(), "pid": os.getpid()}

    def _tick_forever(self) -> None:
        while True:
            time.sleep(SWEEP_INTERVAL_S)
            try:
                self._partition.tick()
            except Exception:  # a failed sweep must not stop later ones
                log.exception("tick of partition %s failed", self._partition.partition)


def start_partitions(count: int, namespace: str, durability: DurabilityConfig,
                     config: PartitionConfig | None = None) -> list:
    """Create `count` named partition actors; Ray restarts one that dies, and it recovers."""
    if durability.journal:
        _refuse_another_partition_count(count, durability)
    _wait_for_old_actors(count, namespace)
    return [PartitionActor.options(
        name=actor_name(partition), namespace=namespace,
        # Partitions reserve no CPU in Ray's scheduler, so four fit on a two-core host.
        num_cpus=0,
        max_restarts=-1,
        # A batch is never re-sent by Ray: the gateway answers UNAVAILABLE instead and
        # the caller retries with its idempotency key.
        max_task_retries=0,
    ).remote(partition, config, durability) for partition in range(count)]


def _refuse_another_partition_count(count: int, durability: DurabilityConfig) -> None:
    """A journal written by N partitions holds each SKU in partition hash(SKU) mod N: read
    by another count, SKUs would be recovered into partitions that never see them."""
    key = f"{durability.key_prefix}:partitions"
    client = connect(durability.redis_url)
    client.set(key, count, nx=True)
    written_by = int(client.get(key))
    if written_by != count:
        raise RuntimeError(f"--partitions {count}: the journal under {durability.key_prefix!r} "
                           f"was written by {written_by} partitions; serve it with "
                           f"--partitions {written_by} (or another --ray-namespace)")


def _wait_for_old_actors(count: int, namespace: str) -> None:
    """Refuse to start while actors have our names, after waiting out those of a dead driver.

    Actors belong to the driver that created them and Ray removes them soon after it dies
    (a `serve` killed with -9), so a restart a moment later waits for the names to free.
    """
    deadline = time.monotonic() + OLD_ACTORS_WAIT_S
    for partition in range(count):
        name = actor_name(partition)
        while _exists(name, namespace):
            if time.monotonic() > deadline:
                raise RuntimeError(f"partition actor {name!r} already exists in Ray namespace "
                                   f"{namespace!r}: is another `availability serve` running?")
            time.sleep(0.2)


def _exists(name: str, namespace: str) -> bool:
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True


def find_partitions(count: int, namespace: str = NAMESPACE) -> list:
    """Handles to partitions another process started."""
    return [ray.get_actor(actor_name(partition), namespace=namespace)
            for partition in range(count)]
