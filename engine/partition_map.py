"""Which actor hosts each virtual partition: a map with an epoch, kept in one Redis key.

A virtual partition is the unit of state, journal, epoch and snapshot; SKUs hash onto
P of them (fixed for a journal namespace) and an actor hosts a set of them. The map is
one key, `<prefix>:partition-map`, so it changes atomically and lives in one slot of a
Redis Cluster. Gateways read it at start and follow it; actors read it when they start
(a restarted actor recovers what the map gives it) and converge on it while they run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

DEFAULT_VIRTUAL_PARTITIONS = 64
# Every answer that means "not here: ask the map again": the command was neither applied
# nor journaled here (a fenced write is refused by Redis before it is added), so the
# gateway re-sends it to the owner the refreshed map names.
MOVED = "moved:"


def map_key(prefix: str) -> str:
    return f"{prefix}:partition-map"


def count_key(prefix: str) -> str:
    # The name predates virtual partitions: erp-sync, reconcile and trace read how many
    # journals there are from it.
    return f"{prefix}:partitions"


@dataclass(frozen=True)
class PartitionMap:
    """owners[vp] is the actor hosting virtual partition vp; `actors` actors exist."""

    epoch: int
    actors: int
    owners: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.owners)

    def hosted_by(self, actor: int) -> list[int]:
        return [vp for vp, owner in enumerate(self.owners) if owner == actor]

    def moved(self, vp: int, actor: int) -> PartitionMap:
        """This map with `vp` on `actor`, one epoch on; `actor` may be a new one."""
        if not 0 <= vp < self.count:
            raise ValueError(f"virtual partition {vp} is not one of 0..{self.count - 1}")
        if actor < 0:
            raise ValueError(f"actor {actor} is not a number of an actor")
        owners = list(self.owners)
        owners[vp] = actor
        return PartitionMap(self.epoch + 1, max(self.actors, actor + 1), tuple(owners))

    def to_json(self) -> str:
        return json.dumps({"epoch": self.epoch, "actors": self.actors,
                           "owners": list(self.owners)})

    @classmethod
    def from_json(cls, text: str | bytes) -> PartitionMap:
        fields = json.loads(text)
        return cls(int(fields["epoch"]), int(fields["actors"]),
                   tuple(int(owner) for owner in fields["owners"]))


def spread(virtual: int, actors: int, epoch: int = 1) -> PartitionMap:
    """Virtual partition vp on actor vp mod A: when A divides P a SKU's actor is
    crc32(sku) mod A, as it was before virtual partitions."""
    if virtual < 1 or actors < 1:
        raise ValueError("virtual partitions and actors must be at least 1")
    return PartitionMap(epoch, actors, tuple(vp % actors for vp in range(virtual)))


class PartitionMapStore:
    """The map in Redis: read it, and change it only from the epoch it was read at."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client, self._prefix = client, prefix
        self.key = map_key(prefix)

    def load(self) -> PartitionMap | None:
        text = self._client.get(self.key)
        return PartitionMap.from_json(text) if text else None

    def replace(self, old: PartitionMap | None, new: PartitionMap) -> bool:
        """Store `new` if the stored map is still `old` (None: none stored); else False."""
        with self._client.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                text = pipe.get(self.key)
                stored = PartitionMap.from_json(text) if text else None
                if stored != old:
                    return False
                pipe.multi()
                pipe.set(self.key, new.to_json())
                pipe.execute()
            except redis.WatchError:  # changed between our read and our write
                return False
        return True

    def change(self, edit) -> PartitionMap:
        """Apply `edit(map) -> map` to the stored map, retrying while others change it."""
        while True:
            old = self.load()
            if old is None:
                raise LookupError(f"no partition map under {self.key!r}: is the engine "
                                  "served under this namespace?")
            new = edit(old)
            if self.replace(old, new):
                return new

    def ensure(self, virtual: int, actors: int) -> PartitionMap:
        """At `serve` start: the stored map if it fits `actors`, else virtual partitions
        spread over them anew (one epoch on). Refuses another virtual partition count."""
        refuse_another_count(self._client, self._prefix, virtual)
        while True:
            old = self.load()
            if old is not None and old.actors == actors:
                return old
            new = spread(virtual, actors, epoch=old.epoch + 1 if old else 1)
            if self.replace(old, new):
                return new


def refuse_another_count(client: redis.Redis, prefix: str, virtual: int) -> None:
    """A journal written with P virtual partitions holds each SKU in crc32(SKU) mod P:
    read with another P, SKUs would be recovered into partitions that never see them."""
    if client.exists(f"{prefix}:partition:0:epoch"):
        raise RuntimeError(f"the journal under {prefix!r} was written before virtual "
                           "partitions (keys <prefix>:partition:<n>:...): serve it with a "
                           "release before them, or start another --ray-namespace")
    key = count_key(prefix)
    client.set(key, virtual, nx=True)
    written_by = int(client.get(key))
    if written_by != virtual:
        raise RuntimeError(f"--virtual-partitions {virtual}: the journal under {prefix!r} "
                           f"was written by {written_by} virtual partitions; serve it with "
                           f"--virtual-partitions {written_by} (or another --ray-namespace)")
