"""The Ray actor that hosts one partition, and how partitions are started and found by name."""

from __future__ import annotations

import logging
import pickle
import threading
import time

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

    A synchronous actor with one task at a time: Ray runs its calls in the order each
    caller sent them, and a lock keeps the sweeper thread's Expire between batches,
    never inside one. (An async actor would cost more per call and does not keep order.)
    """

    def __init__(self, partition: int, config: PartitionConfig | None = None) -> None:
        self._host = PartitionHost(partition, config)
        self._lock = threading.Lock()
        tune_garbage_collector()
        threading.Thread(target=self._sweep_forever, name=f"sweep-{partition}",
                         daemon=True).start()

    def apply(self, batch: bytes) -> bytes:
        """A pickled list of commands in, the pickled list of their results out.

        Batches travel as bytes pickled by the standard C pickler: Ray would otherwise
        serialize them with cloudpickle, two to three times slower for these tuples.
        """
        commands = pickle.loads(batch)
        with self._lock:
            results = self._host.apply(commands)
        return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)

    def ready(self) -> dict[str, int]:
        """Answers once the partition can take commands (a restarted one, once recovered)."""
        with self._lock:
            return self._host.status()

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_INTERVAL_S)
            try:
                with self._lock:
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
