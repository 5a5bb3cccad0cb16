"""Moving a virtual partition to another actor: switch the map, drop, adopt.

The order makes a move safe without stopping anyone. The map switches first (one
atomic write with a new epoch), so from then on gateways that read it send the
partition's commands to the new owner, which answers MOVED ("not hosted here") until it
has adopted it; the gateway re-sends those after a short pause. The old owner then
drops the partition once every batch it applied is journaled or failed: what it
acknowledged is in the journal, what it answers from then on is MOVED and re-sent. The
new owner adopts last: it claims the partition's epoch, which fences the old owner in
Redis even if the drop never reached it, and recovers from snapshot plus journal. A
command is thus applied by exactly one owner, and a command answered MOVED was neither
applied nor journaled, so re-sending it applies it once. A move interrupted after the
switch is finished by the new owner itself (engine/partition_actor.py's map following).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from engine.partition_map import PartitionMap, PartitionMapStore

# Drop waits for the old owner's journal writes; adopt for a whole recovery.
DROP_TIMEOUT_S = 30.0
ADOPT_TIMEOUT_S = 600.0


class Control(Protocol):
    """The actors' side of a move (gateway/partitions.py's ActorControl over Ray)."""

    async def adopt(self, actor: int, vp: int, timeout_s: float) -> dict: ...

    async def drop(self, actor: int, vp: int, timeout_s: float) -> bool: ...

    async def status(self, actor: int, timeout_s: float) -> dict: ...


@dataclass(frozen=True)
class Move:
    """What a move did and how long each step took."""

    vp: int
    from_actor: int
    to_actor: int
    epoch: int  # the map's epoch after the switch
    dropped: bool  # False: the old owner could not be reached (it is fenced anyway)
    seq: int  # the partition's sequence number as the new owner recovered it
    switch_ms: float
    drop_ms: float
    adopt_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


async def move(control: Control, maps: PartitionMapStore, vp: int, to_actor: int,
               in_thread: Callable[..., Awaitable] = asyncio.to_thread) -> Move:
    """Move virtual partition `vp` to actor `to_actor` (which must be running)."""
    await control.status(to_actor, DROP_TIMEOUT_S)  # refuse an actor that is not there
    started = time.perf_counter()
    before: list[PartitionMap] = []

    def edit(current: PartitionMap) -> PartitionMap:
        before[:] = [current]
        return current.moved(vp, to_actor)

    switched = await in_thread(maps.change, edit)
    from_actor = before[0].owners[vp]
    switched_at = time.perf_counter()
    dropped = from_actor != to_actor and await control.drop(from_actor, vp, DROP_TIMEOUT_S)
    dropped_at = time.perf_counter()
    status = await control.adopt(to_actor, vp, ADOPT_TIMEOUT_S)
    adopted_at = time.perf_counter()
    return Move(vp, from_actor, to_actor, switched.epoch, dropped, int(status.get("seq", 0)),
                round(1000 * (switched_at - started), 3),
                round(1000 * (dropped_at - switched_at), 3),
                round(1000 * (adopted_at - dropped_at), 3))


def describe(found: PartitionMap) -> list[str]:
    """The map as lines for a terminal: its epoch, then each actor's partitions."""
    lines = [f"partition map epoch {found.epoch}: {found.count} virtual partitions on "
             f"{found.actors} actors"]
    for actor in range(found.actors):
        hosted = found.hosted_by(actor)
        lines.append(f"  actor {actor}: {len(hosted)} partitions "
                     f"{' '.join(map(str, hosted)) or '-'}")
    return lines
