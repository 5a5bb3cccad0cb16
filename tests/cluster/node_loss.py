"""Kill a worker node under load and print JSON: nothing acknowledged lost or doubled,
and how long until the lost actor's partitions answer again from a surviving node.

    python -m tests.cluster.node_loss

A head and two worker nodes on this machine, three partition actors spread over them
(one per node), eight clients reserving, committing, releasing and receiving through a
router that follows the partition map. The worker node of one actor is removed without
grace; Ray restarts the actor on a surviving node, it recovers its virtual partitions
from Redis, and the clients' retries (same idempotency keys) are acknowledged again.
"""

from __future__ import annotations

import asyncio
import json
import time

from engine.routing import partition_of
from tests.cluster import harness
from tests.cluster.harness import LOAD_TIMEOUT_S, until
from tests.cluster.workload import audit, running_load, until_acknowledged

ACTORS = 3
CLIENTS = 8


async def scenario(engine: harness.Engine) -> dict:
    before = await harness.statuses(engine.handles)
    worker_nodes = {node.node_id: node for node in engine.cluster.worker_nodes}
    victim = next(a for a, status in enumerate(before) if status["node_id"] in worker_nodes)
    owners = engine.partitions.owners
    vps = [vp for actor in range(ACTORS) for vp in range(len(owners))
           if owners[vp] == actor][::2]
    skus = harness.skus_on(owners, 1, vps)

    def vp_of(sku: str) -> int:
        return partition_of(sku, len(owners))

    async with running_load(engine.router, skus, CLIENTS, vp_of) as ledger:
        await until_acknowledged(ledger, 150, "the load runs")
        lost = set(before[victim]["virtual_partitions"])
        killed_at = time.monotonic()
        engine.cluster.remove_node(worker_nodes[before[victim]["node_id"]],
                                   allow_graceful=False)

        async def restarted():
            try:
                status = await asyncio.wait_for(engine.handles[victim].ready.remote(), 5)
            except Exception:  # still dead or restarting
                return None
            return status if status["pid"] != before[victim]["pid"] else None
        after = await until(restarted, LOAD_TIMEOUT_S, "the actor is back")
        ready_s = harness.since(killed_at)
        await until_acknowledged(ledger, ledger.acknowledged + 150, "the load runs on")
    problems = await audit(engine.router, skus, ledger)
    errors_after_kill = [at - killed_at for at in ledger.failed_at if at >= killed_at]
    return {"victim_actor": victim, "lost_virtual_partitions": sorted(lost),
            "restarted_on_surviving_node": after["node_id"] != before[victim]["node_id"],
            "actor_ready_after_kill_s": ready_s,
            "last_failed_attempt_after_kill_s": round(max(errors_after_kill, default=0), 3),
            "problems": problems, **ledger.summary()}


def main() -> None:
    with harness.cluster_of(workers=2) as cluster, harness.engine_on(cluster, ACTORS) as engine:
        figures = asyncio.run(scenario(engine))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
