"""Add a node under load, start an actor there and move virtual partitions onto it;
print JSON: where the actor runs, the moves, and the audit.

    python -m tests.cluster.scale_out

A head and one worker node run two partition actors; a second worker node joins, a
third actor starts on it (pinned: SPREAD may pick a busier node) and `rebalance.move` gives it
virtual partitions from both others while eight clients keep working through a router
that follows the map: it finds the new actor by name when the map first names it.
"""

from __future__ import annotations

import asyncio
import json
import time

from engine.partition_actor import start_actor
from engine.routing import partition_of
from gateway import rebalance
from gateway.partitions import ActorControl
from tests.cluster import harness
from tests.cluster.harness import LOAD_TIMEOUT_S
from tests.cluster.workload import audit, running_load, until_acknowledged

CLIENTS = 8


async def scenario(engine: harness.Engine) -> dict:
    owners = engine.partitions.owners
    vps = list(range(6))  # three on each actor
    skus = harness.skus_on(owners, 1, vps)

    def vp_of(sku: str) -> int:
        return partition_of(sku, len(owners))

    moves = []
    async with running_load(engine.router, skus, CLIENTS, vp_of) as ledger:
        await until_acknowledged(ledger, 100, "the load runs")
        node = engine.cluster.add_node(num_cpus=1)
        engine.cluster.wait_for_nodes()
        started_at = time.monotonic()
        new = start_actor(2, engine.namespace, engine.durability, None,
                          harness.VIRTUAL_PARTITIONS, node_id=node.node_id)
        status = await asyncio.wait_for(new.ready.remote(), LOAD_TIMEOUT_S)
        for vp in (0, 1):  # one from each of the actors already there
            moves.append(await rebalance.move(ActorControl(engine.namespace), engine.maps,
                                              vp, 2))
        moved_in_s = harness.since(started_at)
        await until_acknowledged(ledger, ledger.acknowledged + 150, "the load runs on")
    hosted = (await new.ready.remote())["virtual_partitions"]
    return {"new_actor_on_new_node": status["node_id"] == node.node_id,
            "new_actor_hosts": hosted, "gateway_owners": list(owners),
            "gateway_actors": engine.partitions.actors,
            "moves": [move.as_dict() for move in moves], "start_and_moves_s": moved_in_s,
            "rerouted": engine.partitions.rerouted,
            "problems": await audit(engine.router, skus, ledger), **ledger.summary()}


def main() -> None:
    with harness.cluster_of(workers=1) as cluster, harness.engine_on(cluster, 2) as engine:
        figures = asyncio.run(scenario(engine))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
