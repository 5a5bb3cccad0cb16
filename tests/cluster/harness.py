"""A Ray cluster of several nodes on this machine (ray.cluster_utils.Cluster), the engine's
partition actors spread over it, and an in-process router that follows their map."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from engine.config import DurabilityConfig, GatewayConfig
from engine.journal_store import connect, forget_keys
from engine.partition_map import PartitionMapStore
from gateway.map_source import RedisMapSource
from gateway.partitions import RayPartitions
from gateway.router import Router

REDIS_URL = os.environ.get("AVAILABILITY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
VIRTUAL_PARTITIONS = 12
# How long a scenario waits for the load, an actor or a node to reach its next state.
LOAD_TIMEOUT_S = 120.0
# Ray notices a dead node after about period x threshold; its defaults take ~30 s.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_failure_threshold": 4}


@dataclass
class Engine:
    cluster: object
    namespace: str
    durability: DurabilityConfig
    handles: list
    partitions: RayPartitions
    router: Router
    maps: PartitionMapStore


@contextlib.contextmanager
def cluster_of(workers: int) -> Iterator[object]:
    """A head node plus `workers` worker nodes, one CPU each, torn down after."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "_system_config": FAST_HEALTH_CHECKS})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@contextlib.contextmanager
def engine_on(cluster, actors: int) -> Iterator[Engine]:
    """`actors` partition actors journaling to the test Redis, and a router over them."""
    import ray

    from engine.partition_actor import start_partitions

    namespace = f"cluster-{uuid.uuid4().hex[:12]}"
    ray.init(address=cluster.address, namespace=namespace, log_to_driver=False,
             configure_logging=False)
    durability = DurabilityConfig(redis_url=REDIS_URL, key_prefix=namespace)
    try:
        # One actor per node, so losing a worker node loses an actor whatever SPREAD
        # would have chosen (it may put every zero-CPU actor on one node).
        nodes = [cluster.head_node, *cluster.worker_nodes]
        node_ids = [node.node_id for node in nodes]
        handles = start_partitions(actors, namespace, durability,
                                   virtual_partitions=VIRTUAL_PARTITIONS, node_ids=node_ids)
        asyncio.run(until(lambda: _placed(handles, node_ids), LOAD_TIMEOUT_S,
                          "every actor on its own node"))
        maps = PartitionMapStore(connect(REDIS_URL), namespace)
        partitions = RayPartitions(handles, partition_map=maps.load(),
                                   maps=RedisMapSource(REDIS_URL, namespace),
                                   namespace=namespace)
        yield Engine(cluster, namespace, durability, handles, partitions,
                     Router(partitions, GatewayConfig()), maps)
    finally:
        forget_keys(REDIS_URL, namespace)


async def _placed(handles: list, node_ids: list[str]) -> bool:
    """Whether actor i runs on node_ids[i]; restarts those that do not. The preference is
    soft (so Ray may restart an actor elsewhere when its node dies), and a node the
    scheduler has not heard of yet is passed over; a restart places the actor again."""
    import ray

    try:
        found = await statuses(handles)
    except ray.exceptions.RayActorError:  # one we restarted is not back yet
        return False
    misplaced = [handle for actor, (handle, status) in enumerate(zip(handles, found, strict=True))
                 if status["node_id"] != node_ids[actor % len(node_ids)]]
    for handle in misplaced:
        ray.kill(handle, no_restart=False)
    return not misplaced


async def statuses(handles: list, timeout_s: float = 60.0) -> list[dict]:
    """Every actor's ready() answer (waiting for actors that are still starting)."""
    return list(await asyncio.wait_for(asyncio.gather(*(h.ready.remote() for h in handles)),
                                       timeout_s))


def skus_on(actor_of_vp: list[int], per_vp: int, vps: list[int]) -> list[str]:
    """`per_vp` fresh SKUs in each of `vps`."""
    from engine.routing import partition_of

    skus = []
    for vp in vps:
        found = 0
        while found < per_vp:
            sku = f"sku-{uuid.uuid4().hex[:10]}"
            if partition_of(sku, len(actor_of_vp)) == vp:
                skus.append(sku)
                found += 1
    return skus


async def until(predicate, timeout_s: float, what: str):
    """Poll `predicate` (async) until truthy, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s}s: {what}")
        await asyncio.sleep(0.05)


def since(start: float) -> float:
    return round(time.monotonic() - start, 3)
