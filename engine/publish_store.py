"""What the publisher keeps in Redis: each channel's acknowledged quantities and its status.

Keys (`prefix` is the engine's namespace, `availability` by default):
- `{prefix}:channel:{name}:published`: a hash, field `SKU<TAB>LOCATION` (a tab cannot
  occur in an identifier; LOCATION empty for the network figure), value the quantity the
  channel last acknowledged with a 2xx.
- `{prefix}:channels:status`: a hash, field the channel name, value a JSON object (see
  ChannelPublisher.status), rewritten every second by a running publisher and lapsing
  ten seconds after the last write, so a stopped publisher's figures disappear.
"""

from __future__ import annotations

import json

import redis
import redis.asyncio as aioredis

SEPARATOR = "\t"
SCAN_COUNT = 5_000


def published_key(prefix: str, channel: str) -> str:
    return f"{prefix}:channel:{channel}:published"


def status_key(prefix: str) -> str:
    return f"{prefix}:channels:status"


class PublishStore:
    """The publisher's side: record acknowledgements, load them on start, write status."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    async def record(self, channel: str, items: list[tuple[str, str, int]]) -> None:
        await self._client.hset(published_key(self._prefix, channel), mapping={
            f"{sku}{SEPARATOR}{location}": quantity for sku, location, quantity in items})

    async def acknowledged(self, channel: str, keys_max: int) -> dict[tuple[str, str], int]:
        """What the channel acknowledged before (a restarted publisher re-posts only what
        changed since), at most keys_max of it."""
        found: dict[tuple[str, str], int] = {}
        async for field, value in self._client.hscan_iter(
                published_key(self._prefix, channel), count=SCAN_COUNT):
            sku, _, location = _text(field).partition(SEPARATOR)
            found[(sku, location)] = int(value)
            if len(found) >= keys_max:
                break
        return found

    async def write_status(self, statuses: dict[str, dict], ttl_s: float) -> None:
        key = status_key(self._prefix)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={name: json.dumps(status) for name, status in
                                    statuses.items()})
            pipe.pexpire(key, int(ttl_s * 1000))
            await pipe.execute()


def read_status(client: redis.Redis, prefix: str) -> dict[str, dict]:
    """Each channel's last status as a running publisher wrote it; {} when none runs."""
    return {_text(name): json.loads(value)
            for name, value in client.hgetall(status_key(prefix)).items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
