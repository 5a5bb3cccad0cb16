"""The Ray actor that hosts virtual partitions, and how actors are started and found by name."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Sequence

import ray
import redis

from engine import compactor, logs, wire
from engine.config import DurabilityConfig, PartitionConfig
from engine.durable_partition import RETRY_INTERVAL_S, DurablePartition
from engine.journal_group import JournalGroup
from engine.journal_store import JournalStore, connect
from engine.model import Unavailable
from engine.partition_host import SWEEP_INTERVAL_S
from engine.partition_map import (
    DEFAULT_VIRTUAL_PARTITIONS,
    MOVED,
    PartitionMap,
    PartitionMapStore,
    spread,
)
from engine.process import tune_garbage_collector
from engine.routing import partitions_named
from engine.snapshot_writer import SnapshotWriter
from engine.submitter_order import SubmitterOrder

# Gateways in other processes find partitions by name in this namespace.
NAMESPACE = "availability"
# Calls an actor runs at once: enough that batch k+1 is applied while batch k is being
# journaled, for every gateway lane that sends to it.
CONCURRENT_CALLS = 16
# How long `start_partitions` waits for the actors of a driver that just died to go.
OLD_ACTORS_WAIT_S = 15.0
# How often an actor reads the partition map to converge on it.
MAP_FOLLOW_S = 1.0
# A partition the map gives an actor is adopted by the actor itself only once the map has
# stood this long: `availability rebalance` drops it from its old host first, then adopts.
ADOPT_GRACE_S = 5.0
log = logging.getLogger(__name__)


def actor_name(partition: int) -> str:
    return f"partition-{partition}"


@ray.remote(max_concurrency=CONCURRENT_CALLS)
class PartitionActor:
    """Hosts a set of virtual partitions: applies batches one at a time in each
    submitter's order, journals them, sweeps holds, and adopts or drops partitions.

    Calls run on a thread pool so that a batch's journal write overlaps the next batch;
    each partition's lock keeps batches (and the timer thread's sweeps and snapshots)
    whole and serial, and SubmitterOrder keeps each gateway lane's batches in its order.
    A (re)started actor recovers the partitions the map in Redis gives it in its
    constructor, so Ray sends it nothing and `ready` answers nothing before it holds them.
    """

    def __init__(self, actor: int, config: PartitionConfig | None,
                 durability: DurabilityConfig,
                 virtual_partitions: int = DEFAULT_VIRTUAL_PARTITIONS,
                 hosted: Sequence[int] | None = None) -> None:
        # Its own process: log lines in the engine's format (JSON unless told otherwise).
        logs.configure()
        self._actor, self._virtual = actor, virtual_partitions
        self._config, self._durability = config, durability
        self._client = connect(durability.redis_url) if durability.journal else None
        self._journal = self._client and JournalGroup(self._client)
        self._maps = self._client and PartitionMapStore(self._client, durability.key_prefix)
        self._map_seen: tuple[int, float] = (0, 0.0)  # (epoch, when first seen)
        self._hosting = threading.Lock()  # adopt and drop, one at a time
        self._partitions: dict[int, DurablePartition] = {}
        if self._maps is not None:
            hosted = self._map_until_redis_answers().hosted_by(actor)
        elif hosted is None:  # made by hand, without a map: every partition
            hosted = range(virtual_partitions)
        for vp in hosted:
            self._partitions[vp] = self._recovered(vp)
        self._order = SubmitterOrder()
        tune_garbage_collector()
        threading.Thread(target=self._tick_forever, name=f"tick-{actor}", daemon=True).start()

    def apply(self, batch: bytes) -> bytes:
        """A batch of (submitter, number, oldest unanswered, virtual partition of each
        command or None) and commands in, its results out, as engine/wire.py's dumps_batch;
        the results' header counts those answered MOVED (hosted elsewhere now).

        Batches travel as bytes pickled by the standard C pickler: Ray would otherwise
        serialize them with cloudpickle, two to three times slower for these tuples.
        """
        (submitter, number, oldest, vps), commands = wire.loads_batch(batch)
        if vps is None:
            vps = [self._named(command) for command in commands]
        groups: dict[int, list[int]] = {}
        for index, vp in enumerate(vps):
            groups.setdefault(vp, []).append(index)
        with self._order.turn(submitter, number, oldest):
            started = [(indexes, self._start(vp, [commands[i] for i in indexes]))
                       for vp, indexes in groups.items()]
        if len(started) == 1:
            results = started[0][1].results()
        else:
            results = [None] * len(commands)
            for indexes, pending in started:
                for index, result in zip(indexes, pending.results(), strict=True):
                    results[index] = result
        moved = sum(1 for result in results
                    if type(result) is Unavailable and result.reason.startswith(MOVED))
        return wire.dumps_batch((moved,), results)

    def _start(self, vp: int, commands: list):
        partition = self._partitions.get(vp)
        if partition is None:
            return _Answered([Unavailable(f"{MOVED} virtual partition {vp} is not hosted by "
                                          f"actor {self._actor}")] * len(commands))
        return partition.start(commands)

    def _named(self, command) -> int:
        """An untagged command's partition: the first it names that is hosted here, else
        the lowest hosted (commands that name none, like a sweep, go there)."""
        named = partitions_named(command, self._virtual)
        hosted = [vp for vp in named if vp in self._partitions]
        return (hosted or list(named) or sorted(self._partitions) or [0])[0]

    def adopt(self, vp: int) -> dict:
        """Host virtual partition `vp`: claim its epoch (fencing its old host), recover it
        from snapshot and journal. Hosted already and not fenced: nothing to do."""
        with self._hosting:
            partition = self._partitions.get(vp)
            if partition is None or partition.fenced:
                partition = self._partitions[vp] = self._recovered(vp)
        return partition.status()

    def drop(self, vp: int) -> bool:
        """Stop hosting `vp` once its journaled batches are answered; False if not hosted."""
        with self._hosting:
            partition = self._partitions.pop(vp, None)
        if partition is None:
            return False
        partition.close()
        log.info("actor %s dropped virtual partition %s", self._actor, vp)
        return True

    def ready(self) -> dict:
        """Answers once the partitions can take commands (a restarted actor, once recovered)."""
        return self._figures([partition.status() for partition in self._hosted()])

    def metrics(self) -> dict:
        """ready()'s figures plus holds, journal write latency and snapshot age, summed over
        the partitions hosted (it scans the holds, so gateways poll it every few seconds)."""
        return self._figures([partition.metrics() for partition in self._hosted()])

    def _hosted(self) -> list[DurablePartition]:
        return [self._partitions[vp] for vp in sorted(self._partitions)]

    def _figures(self, statuses: list[dict]) -> dict:
        return {**combined_status(statuses), "partition": self._actor, "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id(),
                "virtual_partitions": [status["partition"] for status in statuses]}

    def _recovered(self, vp: int) -> DurablePartition:
        durability, store, snapshots = self._durability, None, None
        if durability.journal:
            store = JournalStore(self._client, vp, durability.key_prefix)
            snapshots = SnapshotWriter(store, functools.partial(
                compactor.command, durability.redis_url, durability.key_prefix, vp,
                self._config))
        partition = DurablePartition(vp, store, self._config, durability, snapshots=snapshots,
                                     journal_group=self._journal)
        partition.recover_until_redis_answers()
        return partition

    def _map_until_redis_answers(self) -> PartitionMap:
        while True:
            try:
                found = self._maps.load()
                if found is not None:
                    return found
                log.warning("actor %s: no partition map in Redis yet; waiting", self._actor)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("actor %s: Redis unreachable (%s); retrying", self._actor, error)
            time.sleep(RETRY_INTERVAL_S)

    def _tick_forever(self) -> None:
        followed_at = 0.0
        while True:
            time.sleep(SWEEP_INTERVAL_S)
            # One compactor at a time per actor: dozens of partitions must not spawn
            # dozens of processes in the same second.
            compacting = any(partition.compacting for partition in self._hosted())
            for partition in self._hosted():
                try:
                    partition.tick(may_snapshot=not compacting)
                    compacting = compacting or partition.compacting
                except Exception:  # a failed sweep must not stop later ones
                    log.exception("tick of partition %s failed", partition.partition)
            if self._maps is not None and time.monotonic() - followed_at >= MAP_FOLLOW_S:
                followed_at = time.monotonic()
                try:
                    self._follow_map()
                except Exception:  # Redis away: the partitions refuse meanwhile too
                    log.warning("actor %s could not read the partition map", self._actor,
                                exc_info=True)

    def _follow_map(self) -> None:
        """Converge on the map: drop what it gives to others, and adopt what it gives to
        this actor once it has been stable for ADOPT_GRACE_S (`availability rebalance`
        drops and adopts itself; this finishes a move whose command died halfway)."""
        found = self._maps.load()
        if found is None:
            return
        if found.epoch != self._map_seen[0]:
            self._map_seen = (found.epoch, time.monotonic())
        mine = set(found.hosted_by(self._actor))
        for vp in set(self._partitions) - mine:
            self.drop(vp)
        if time.monotonic() - self._map_seen[1] >= ADOPT_GRACE_S:
            for vp in mine - set(self._partitions):
                log.warning("actor %s adopts virtual partition %s, which the map gave it "
                            "%.0f s ago", self._actor, vp, time.monotonic() - self._map_seen[1])
                self.adopt(vp)


class _Answered:
    """Results known at once (a partition not hosted here), read like DurablePartition's."""

    __slots__ = ("_results",)

    def __init__(self, results: list) -> None:
        self._results = results

    def results(self) -> list:
        return self._results


def combined_status(statuses: list[dict]) -> dict:
    """One actor's figures from its partitions': counts summed, ages and epochs at their
    worst, journal write histograms merged, the journal "ok" only if every one is."""
    figures: dict = {}
    for status in statuses:
        for name, value in status.items():
            if name in _WORST and name in figures:
                figures[name] = max(figures[name], value)
            elif name == "journal_write_latency" and name in figures:
                merged = figures[name]
                figures[name] = {**merged, "sum_ms": merged["sum_ms"] + value["sum_ms"],
                                 "counts": [a + b for a, b in zip(merged["counts"],
                                                                  value["counts"],
                                                                  strict=True)]}
            elif isinstance(value, int | float) and name in figures and name not in _SAME:
                figures[name] += value
            elif name not in figures:
                figures[name] = value
    troubles = [f"p{status['partition']}: {status['journal']}" for status in statuses
                if status.get("journal") not in ("ok", "off", None)]
    if troubles:
        figures["journal"] = "; ".join(troubles)
    return figures


# Figures where the worst partition speaks for the actor; and those every one shares.
_WORST = frozenset({"epoch", "recovered_in_s", "snapshot_age_s", "snapshot_stall_ms_last",
                    "snapshot_stall_ms_max", "snapshot_at_ms"})
_SAME = frozenset({"holds_expiring_within_s"})


def start_partitions(count: int, namespace: str, durability: DurabilityConfig,
                     config: PartitionConfig | None = None,
                     virtual_partitions: int = DEFAULT_VIRTUAL_PARTITIONS,
                     node_ids: Sequence[str] = ()) -> list:
    """Create `count` named partition actors over `virtual_partitions` virtual partitions,
    spread over Ray's nodes; Ray restarts one that dies, and it recovers from Redis.

    With a journal the map in Redis says which actor hosts what: kept if it was made for
    `count` actors (moves made by `availability rebalance` survive a restart), else the
    partitions are spread over them anew. `node_ids` places actor i on node_ids[i % n]
    (preferred, not required) instead of leaving it to SPREAD."""
    if durability.journal:
        PartitionMapStore(connect(durability.redis_url), durability.key_prefix).ensure(
            virtual_partitions, count)
    _wait_for_old_actors(count, namespace)
    layout = spread(virtual_partitions, count)
    return [start_actor(actor, namespace, durability, config, virtual_partitions,
                        layout.hosted_by(actor),
                        node_ids[actor % len(node_ids)] if node_ids else None, pinned=False)
            for actor in range(count)]


def start_actor(actor: int, namespace: str, durability: DurabilityConfig,
                config: PartitionConfig | None, virtual_partitions: int,
                hosted: Sequence[int] = (), node_id: str | None = None,
                pinned: bool = True):
    """One partition actor (a new one, for scale-out, hosts what the map gives it: at
    first nothing, until `availability rebalance` moves partitions onto it). `node_id`
    places it on a node (a node just added); otherwise SPREAD does. Pinned, it lives only
    there; unpinned, the node is a preference and Ray restarts the actor elsewhere if
    that node dies."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    placement = (NodeAffinitySchedulingStrategy(node_id, soft=not pinned) if node_id
                 else "SPREAD")
    return PartitionActor.options(
        name=actor_name(actor), namespace=namespace,
        # Partitions reserve no CPU in Ray's scheduler, so four fit on a two-core host.
        num_cpus=0,
        # Over the cluster's nodes, so losing one node loses few partitions.
        scheduling_strategy=placement,
        max_restarts=-1,
        # A batch is never re-sent by Ray: the gateway answers UNAVAILABLE instead and
        # the caller retries with its idempotency key.
        max_task_retries=0,
    ).remote(actor, config, durability, virtual_partitions, list(hosted))


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
