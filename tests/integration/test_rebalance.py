"""Virtual partitions moving between actors: gateways follow the map, and a move under
load loses, doubles and fails no command."""

from __future__ import annotations

import json

from engine.config import GatewayConfig
from engine.journal_store import connect
from engine.model import GetAvailability, ItemRef, Movement, MovementCode, MovementType
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS, PartitionMapStore
from engine.routing import partition_of
from gateway import rebalance
from gateway.map_source import RedisMapSource
from gateway.partitions import MAP_POLL_S, REROUTE_WITHIN_S, ActorControl, RayPartitions
from gateway.router import Router
from tests.cluster.workload import LOC, STOCK, audit, running_load, stock, unique
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import sku_on, wait_until

P = DEFAULT_VIRTUAL_PARTITIONS
LOAD_TIMEOUT_S = 90.0


def followed(namespace: str, handles: list) -> tuple[RayPartitions, PartitionMapStore]:
    """Ray partitions that follow the map in Redis, as `serve` builds them, and the map."""
    maps = PartitionMapStore(connect(REDIS_URL), namespace)
    partitions = RayPartitions(handles, partition_map=maps.load(),
                               maps=RedisMapSource(REDIS_URL, namespace), namespace=namespace)
    return partitions, maps


async def test_gateway_follows_a_move_made_elsewhere_by_its_poll(actors):
    """A move made by another process reaches a gateway's routing by its poll alone, and
    the gateway's next command goes straight to the new owner (nothing re-sent)."""
    namespace, handles = actors(2, journal=True)
    partitions, maps = followed(namespace, handles)
    router = Router(partitions, GatewayConfig())
    sku = sku_on(5, P, "followed")
    await stock(router, [sku])  # the first call starts the following
    assert partitions.owners[5] == 1

    moved = await rebalance.move(ActorControl(namespace), maps, 5, 0)

    assert (moved.from_actor, moved.to_actor, moved.seq) == (1, 0, 1)
    await wait_until(lambda: partitions.owners[5] == 0, 3 * MAP_POLL_S,
                     "the gateway routes by the new map")
    receipt = Movement(unique("receipt"), "wms", MovementType.RECEIPT, sku, LOC, 1)
    [applied] = await router.apply_movements([receipt])
    assert applied.code is MovementCode.APPLIED
    assert partitions.rerouted == 0
    hosted = [(await handle.ready.remote())["virtual_partitions"] for handle in handles]
    assert 5 in hosted[0] and 5 not in hosted[1]
    [item] = (await router.get_availability(GetAvailability((ItemRef(sku, LOC),)))).items
    assert item.on_hand == STOCK + 1
    await partitions.close()


async def test_rebalance_under_load_loses_doubles_and_fails_nothing(actors):
    """Moving a loaded virtual partition to the other actor and back, under reserves,
    commits, releases and receipts from eight clients: every command is acknowledged
    without one refusal, within REROUTE_WITHIN_S, and the state read back equals what was
    acknowledged (nothing lost, nothing applied twice)."""
    namespace, handles = actors(2, journal=True)
    partitions, maps = followed(namespace, handles)
    router = Router(partitions, GatewayConfig())
    moving = 3
    skus = [sku_on(moving, P, "moving") for _ in range(3)] + [sku_on(4, P, "still"),
                                                              sku_on(7, P, "still")]
    control, moves = ActorControl(namespace), []
    async with running_load(router, skus, 8, lambda sku: partition_of(sku, P)) as ledger:
        for to_actor in (0, 1):
            target = ledger.acknowledged + 150
            await wait_until(lambda t=target: ledger.acknowledged >= t, LOAD_TIMEOUT_S,
                             "the load runs")
            moves.append(await rebalance.move(control, maps, moving, to_actor))
        target = ledger.acknowledged + 150
        await wait_until(lambda: ledger.acknowledged >= target, LOAD_TIMEOUT_S,
                         "the load runs after the moves")

    print(json.dumps({"moves": [move.as_dict() for move in moves], "rerouted":
                      partitions.rerouted, **ledger.summary()}))
    assert [(move.from_actor, move.to_actor) for move in moves] == [(1, 0), (0, 1)]
    assert (ledger.failed_attempts, ledger.given_up) == (0, [])
    assert ledger.worst_delay_s < REROUTE_WITHIN_S
    assert await audit(router, skus, ledger) == []
    await partitions.close()
