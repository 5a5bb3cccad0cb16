"""The partition map as a gateway reads it: one GET of one Redis key, on the event loop."""

from __future__ import annotations

import redis.asyncio as aioredis

from engine.partition_map import PartitionMap, map_key

# A map read that takes longer fails; the gateway keeps the map it has and tries again.
READ_TIMEOUT_S = 2.0


class RedisMapSource:
    """Reads `<prefix>:partition-map` from the Redis the partitions journal to."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._client = aioredis.from_url(redis_url, socket_timeout=READ_TIMEOUT_S,
                                         socket_connect_timeout=READ_TIMEOUT_S)
        self._key = map_key(prefix)

    async def load(self) -> PartitionMap | None:
        text = await self._client.get(self._key)
        return PartitionMap.from_json(text) if text else None

    async def close(self) -> None:
        await self._client.aclose()


def followed_partitions(redis_url: str | None, prefix: str, namespace: str, actors: int,
                        virtual_partitions: int, handles: list | None = None):
    """Ray partitions routed by the map stored in Redis, following its changes; without a
    stored map (the journal off), `actors` actors over the default spread. `handles` are
    those of the actors this process just started (their names may not resolve yet)."""
    from engine.journal_store import connect
    from engine.partition_actor import find_partitions
    from engine.partition_map import PartitionMapStore
    from gateway.partitions import RayPartitions

    found = PartitionMapStore(connect(redis_url), prefix).load() if redis_url else None
    handles = list(handles or [])
    wanted = actors if found is None else max(found.actors, max(found.owners) + 1)
    if len(handles) < wanted:
        handles += find_partitions(wanted, namespace)[len(handles):]
    if found is None:
        return RayPartitions(handles, virtual_partitions)
    return RayPartitions(handles, partition_map=found,
                         maps=RedisMapSource(redis_url, prefix), namespace=namespace)
