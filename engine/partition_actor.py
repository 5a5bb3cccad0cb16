"""The Ray actor that hosts one partition, and how partitions are started and found by name."""

from __future__ import annotations

import asyncio
import logging
import pickle

import ray

from engine.config import PartitionConfig
from engine.partition_host import SWEEP_INTERVAL_S, PartitionHost
from engine.process import tune_garbage_collector

# Gateways in other processes find partitions by name in this namespace.
NAMESPACE = "availability"
log = logging.getLogger(__name__)


def actor_name(partition: int) -> str:
    return f"partition-{partition}"


@ray.remote
class PartitionActor:
    """Applies batches one at a time in arrival order and sweeps due holds in between.

    Methods are coroutines that never await while touching state, so on the actor's one
    event loop each batch runs to completion before the next starts: the serial order
    DESIGN section 2 asks for, with the sweep interleaved between batches.
    """

    def __init__(self, partition: int, config: PartitionConfig | None = None) -> None:
        self._host = PartitionHost(partition, config)
        self._sweeper: asyncio.Task | None = None
        tune_garbage_collector()

    async def apply(self, batch: bytes) -> bytes:
        """A pickled list of commands in, the pickled list of their results out.

        Batches travel as bytes pickled by the standard C pickler: Ray would otherwise
        serialize them with cloudpickle, two to three times slower for these tuples.
        """
        self._ensure_sweeper()
        results = self._host.apply(pickle.loads(batch))
        return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)

    async def ready(self) -> dict[str, int]:
        """Answers once the partition can take commands (a restarted one, once recovered)."""
        self._ensure_sweeper()
        return self._host.status()

    def _ensure_sweeper(self) -> None:
        # Started from the first call rather than __init__, which runs outside the loop.
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                self._host.sweep()
            except Exception:  # a failed sweep must not stop later ones
                log.exception("sweep of partition %s failed", self._host.partition)


def start_partitions(count: int, namespace: str = NAMESPACE,
                     config: PartitionConfig | None = None) -> list:
    """Create `count` named partition actors; Ray restarts one that dies (empty, for now)."""
    handles = []
    for partition in range(count):
        name = actor_name(partition)
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            pass
        else:
            raise RuntimeError(f"partition actor {name!r} already exists in Ray namespace "
                               f"{namespace!r}: is another `availability serve` running?")
        handles.append(PartitionActor.options(
            name=name, namespace=namespace,
            # Partitions reserve no CPU in Ray's scheduler, so four fit on a two-core host.
            num_cpus=0,
            max_restarts=-1,
            # A batch is never re-sent by Ray: the gateway answers UNAVAILABLE instead and
            # the caller retries with its idempotency key.
            max_task_retries=0,
        ).remote(partition, config))
    return handles


def find_partitions(count: int, namespace: str = NAMESPACE) -> list:
    """Handles to partitions another process started."""
    return [ray.get_actor(actor_name(partition), namespace=namespace)
            for partition in range(count)]
