"""How the gateway reaches partitions: Ray actors, or hosts in this process for tests and tools."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

from engine import wire
from engine.model import Command, Result, Unavailable
from engine.partition_host import PartitionHost
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS, MOVED, PartitionMap, spread

# How often a gateway reads the partition map when nothing tells it to.
MAP_POLL_S = 1.0
# How long a command answered MOVED is re-sent to the owner the map names before it is
# answered UNAVAILABLE: a move's drop, adoption (recovery) and map switch fit well within.
REROUTE_WITHIN_S = 10.0
REROUTE_PAUSE_S = 0.01
REROUTE_PAUSE_MAX_S = 0.2
log = logging.getLogger(__name__)


class PartitionUnavailable(Exception):
    """A partition did not answer (its actor died, restarts or is unreachable)."""


# A batch is a list of commands, each routed by what it names (tools, tests), or of
# (virtual partition, command) pairs (the router): commands are NamedTuples, never bare
# tuples, so the first item tells which.
Batch = Sequence[Command] | Sequence[tuple[int, Command]]


class Partitions(Protocol):
    """Every virtual partition of one engine and the actors hosting them.

    `count` virtual partitions (SKUs hash onto them, reservation ids name them) live on
    `actors` actors; `owners[vp]` is the actor hosting vp now, a list that is changed in
    place when the map changes, so a router may keep it.
    """

    count: int
    owners: list[int]

    @property
    def actors(self) -> int:
        """How many actors host partitions (it grows when the map names a new one)."""

    async def apply(self, actor: int, commands: Batch) -> Sequence[Result]:
        """Apply one batch on one actor; one result (or Unavailable) per command."""

    async def ready(self, timeout_s: float) -> bool:
        """Whether every actor answers within `timeout_s`."""


class MapSource(Protocol):
    """Where the current partition map is read (Redis, in gateway/map_source.py)."""

    async def load(self) -> PartitionMap | None: ...


class RayPartitions:
    """Partition actors behind their Ray handles: the one place the gateway calls Ray.

    With a map source it follows the partition map (read every MAP_POLL_S, and at once
    when an actor answers MOVED), and re-sends what an actor answered MOVED to the
    owner the new map names, for up to REROUTE_WITHIN_S: such a command was neither
    applied nor journaled where it went, so it is applied once, where it now belongs.
    """

    def __init__(self, handles: Sequence, virtual_partitions: int = DEFAULT_VIRTUAL_PARTITIONS,
                 partition_map: PartitionMap | None = None, maps: MapSource | None = None,
                 namespace: str | None = None) -> None:
        import ray.exceptions  # only this adapter needs Ray

        self._handles = list(handles)
        self.map = partition_map or spread(virtual_partitions, len(self._handles))
        self.count = self.map.count
        self.owners = list(self.map.owners)
        self._maps, self._namespace = maps, namespace
        self._following: asyncio.Task | None = None
        self._refreshing: asyncio.Future | None = None
        self._unreachable = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
        # Batches are numbered per actor, so an actor running calls on several threads
        # still applies ours in the order they were sent; each also names the oldest one
        # still unanswered, the only ones the actor may have to wait for.
        self._submitter = uuid.uuid4().hex
        self._sent: list[int] = []
        self._unanswered: list[set[int]] = []
        self._grow(len(self._handles))
        self.rerouted = 0  # commands re-sent after a MOVED answer, for tests and metrics

    @property
    def actors(self) -> int:
        return len(self._handles)

    async def apply(self, actor: int, commands: Batch) -> Sequence[Result]:
        if self._maps is not None and self._following is None:
            # Started by the first call, so every user of a router follows the map
            # without being told to (closed by `close`).
            self._following = asyncio.ensure_future(self._follow())
        if commands and type(commands[0]) is tuple:
            moved, results = await self._call(actor, [command for _, command in commands],
                                              [vp for vp, _ in commands])
            if moved and self._maps is not None:
                return await self._reroute(commands, list(results))
            return results
        return (await self._call(actor, commands, None))[1]

    async def _call(self, actor: int, commands: Sequence[Command],
                    vps: list[int] | None) -> tuple[int, Sequence[Result]]:
        number = self._sent[actor]
        self._sent[actor] = number + 1
        unanswered = self._unanswered[actor]
        unanswered.add(number)
        batch = wire.dumps_batch((self._submitter, number, min(unanswered), vps), commands)
        try:
            (moved,), results = wire.loads_batch(await self._handles[actor].apply.remote(batch))
            return moved, results
        except self._unreachable as error:
            raise PartitionUnavailable(f"partition actor {actor} is unavailable: "
                                       f"{type(error).__name__}") from error
        finally:
            unanswered.discard(number)

    async def _reroute(self, batch: Sequence[tuple[int, Command]],
                       results: list) -> list:
        """Re-send what was answered MOVED to its owner in the refreshed map, until
        answered otherwise or REROUTE_WITHIN_S has passed (then it stays unacknowledged)."""
        deadline = time.monotonic() + REROUTE_WITHIN_S
        pause_s = REROUTE_PAUSE_S
        pending = [index for index, result in enumerate(results) if _moved(result)]
        while pending and time.monotonic() < deadline:
            await self.refresh()
            by_owner: dict[int, list[int]] = {}
            for index in pending:
                by_owner.setdefault(self.owners[batch[index][0]], []).append(index)
            answers = await asyncio.gather(*(
                self._call(owner, [batch[i][1] for i in indexes], [batch[i][0] for i in indexes])
                for owner, indexes in by_owner.items()), return_exceptions=True)
            self.rerouted += len(pending)
            pending = []
            for indexes, answer in zip(by_owner.values(), answers, strict=True):
                if isinstance(answer, BaseException):  # the new owner is unreachable
                    for index in indexes:
                        results[index] = Unavailable(f"re-sent after a move: {answer}")
                    continue
                for index, result in zip(indexes, answer[1], strict=True):
                    results[index] = result
                    if _moved(result):
                        pending.append(index)
            if pending:  # the new owner is still recovering the partition
                await asyncio.sleep(min(pause_s, max(0.0, deadline - time.monotonic())))
                pause_s = min(2 * pause_s, REROUTE_PAUSE_MAX_S)
        return results

    async def refresh(self) -> PartitionMap:
        """Read the map now (callers at the same moment share one read) and follow it."""
        if self._maps is None:
            return self.map
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh_once())
            self._refreshing.add_done_callback(self._refreshed)
        await asyncio.shield(self._refreshing)
        return self.map

    def _refreshed(self, _: asyncio.Future) -> None:
        self._refreshing = None

    async def _refresh_once(self) -> None:
        found = await self._maps.load()
        if found is None or found.epoch <= self.map.epoch:
            return
        if found.count != self.count:
            log.error("partition map has %s virtual partitions, this gateway routes over "
                      "%s: ignored", found.count, self.count)
            return
        if max(found.owners) >= len(self._handles):
            # A new actor (scale-out): found by name, off the event loop.
            from engine.partition_actor import find_partitions

            handles = await asyncio.to_thread(find_partitions, max(found.owners) + 1,
                                              self._namespace)
            self._handles += handles[len(self._handles):]
            self._grow(len(self._handles))
        self.owners[:] = found.owners
        self.map = found
        log.info("following partition map epoch %s", found.epoch)

    async def _follow(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # Redis or Ray away: keep the map we have, try again
                log.warning("could not read the partition map", exc_info=True)
            await asyncio.sleep(MAP_POLL_S)

    def _grow(self, actors: int) -> None:
        while len(self._sent) < actors:
            self._sent.append(0)
            self._unanswered.append(set())

    async def close(self) -> None:
        """Stop following the map."""
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following

    async def ready(self, timeout_s: float) -> bool:
        probes = [handle.ready.remote() for handle in self._handles]
        try:
            await asyncio.wait_for(asyncio.gather(*probes), timeout_s)
        except Exception:  # timed out, or an actor is dead or restarting
            return False
        return True

    async def metrics(self, timeout_s: float) -> list[dict | None]:
        """Each actor's operator figures (its `metrics`, summed over the partitions it
        hosts), None where it did not answer within `timeout_s`: all calls in flight together."""
        async def one(handle) -> dict | None:
            try:
                return await asyncio.wait_for(handle.metrics.remote(), timeout_s)
            except Exception:  # timed out, or the actor is dead or restarting
                return None
        return list(await asyncio.gather(*(one(handle) for handle in self._handles)))


def _moved(result) -> bool:
    return type(result) is Unavailable and result.reason.startswith(MOVED)


class ActorControl:
    """What `availability rebalance` asks of actors: adopt or drop a virtual partition."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    def _handle(self, actor: int):
        import ray

        from engine.partition_actor import actor_name

        return ray.get_actor(actor_name(actor), namespace=self._namespace)

    async def adopt(self, actor: int, vp: int, timeout_s: float) -> dict:
        handle = await asyncio.to_thread(self._handle, actor)
        return await asyncio.wait_for(handle.adopt.remote(vp), timeout_s)

    async def drop(self, actor: int, vp: int, timeout_s: float) -> bool:
        """Whether the actor dropped it; False too when the actor cannot be reached (its
        copy is fenced by the adoption that follows)."""
        import ray.exceptions

        try:
            handle = await asyncio.to_thread(self._handle, actor)
            return await asyncio.wait_for(handle.drop.remote(vp), timeout_s)
        except (TimeoutError, ValueError, ray.exceptions.RayError) as error:
            log.warning("actor %s did not drop virtual partition %s (%s); the adoption "
                        "fences it", actor, vp, error)
            return False

    async def status(self, actor: int, timeout_s: float) -> dict:
        handle = await asyncio.to_thread(self._handle, actor)
        return await asyncio.wait_for(handle.ready.remote(), timeout_s)


class LocalPartitions:
    """Partition hosts in this process (unit tests, tools), one per virtual partition and
    each its own "actor"; Expire sweeps are the caller's."""

    def __init__(self, hosts: Sequence[PartitionHost]) -> None:
        self.hosts = list(hosts)
        self.count = len(self.hosts)
        self.owners = list(range(self.count))

    @property
    def actors(self) -> int:
        return self.count

    async def apply(self, actor: int, commands: Batch) -> Sequence[Result]:
        await asyncio.sleep(0)  # a real partition answers later, never within the call
        if commands and type(commands[0]) is tuple:
            commands = [command for _, command in commands]
        return self.hosts[actor].apply(commands)

    async def ready(self, timeout_s: float) -> bool:
        return True

    async def metrics(self, timeout_s: float) -> list[dict | None]:
        return [host.status() for host in self.hosts]
