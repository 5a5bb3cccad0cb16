"""How the gateway reaches partitions: Ray actors, or hosts in this process for tests and tools."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Protocol

from engine import wire
from engine.model import Command, Result
from engine.partition_host import PartitionHost


class PartitionUnavailable(Exception):
    """A partition did not answer (its actor died, restarts or is unreachable)."""


class Partitions(Protocol):
    """Every partition of one engine, addressed by number."""

    count: int

    async def apply(self, partition: int, commands: Sequence[Command]) -> Sequence[Result]:
        """Apply one batch on one partition; one result (or Unavailable) per command."""

    async def ready(self, timeout_s: float) -> bool:
        """Whether every partition answers within `timeout_s`."""


class RayPartitions:
    """Partition actors behind their Ray handles: the one place the gateway calls Ray."""

    def __init__(self, handles: Sequence) -> None:
        import ray.exceptions  # only this adapter needs Ray

        self._handles = list(handles)
        self.count = len(self._handles)
        self._unreachable = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
        # Batches are numbered per partition, so an actor running calls on several threads
        # still applies ours in the order they were sent; each also names the oldest one
        # still unanswered, the only ones the actor may have to wait for.
        self._submitter = uuid.uuid4().hex
        self._sent = [0] * self.count
        self._unanswered: list[set[int]] = [set() for _ in range(self.count)]

    async def apply(self, partition: int, commands: Sequence[Command]) -> Sequence[Result]:
        number = self._sent[partition]
        self._sent[partition] = number + 1
        unanswered = self._unanswered[partition]
        unanswered.add(number)
        batch = wire.dumps_batch((self._submitter, number, min(unanswered)), commands)
        try:
            return wire.loads_batch(await self._handles[partition].apply.remote(batch))[1]
        except self._unreachable as error:
            raise PartitionUnavailable(f"partition {partition} is unavailable: "
                                       f"{type(error).__name__}") from error
        finally:
            unanswered.discard(number)

    async def ready(self, timeout_s: float) -> bool:
        probes = [handle.ready.remote() for handle in self._handles]
        try:
            await asyncio.wait_for(asyncio.gather(*probes), timeout_s)
        except Exception:  # timed out, or an actor is dead or restarting
            return False
        return True

    async def metrics(self, timeout_s: float) -> list[dict | None]:
        """Each partition's operator figures (its actor's `metrics`), None where it did not
        answer within `timeout_s`: one call per partition, all in flight together."""
        async def one(handle) -> dict | None:
            try:
                return await asyncio.wait_for(handle.metrics.remote(), timeout_s)
            except Exception:  # timed out, or the actor is dead or restarting
                return None
        return list(await asyncio.gather(*(one(handle) for handle in self._handles)))


class LocalPartitions:
    """Partition hosts in this process (unit tests, tools); Expire sweeps are the caller's."""

    def __init__(self, hosts: Sequence[PartitionHost]) -> None:
        self.hosts = list(hosts)
        self.count = len(self.hosts)

    async def apply(self, partition: int, commands: Sequence[Command]) -> Sequence[Result]:
        await asyncio.sleep(0)  # a real partition answers later, never within the call
        return self.hosts[partition].apply(commands)

    async def ready(self, timeout_s: float) -> bool:
        return True

    async def metrics(self, timeout_s: float) -> list[dict | None]:
        return [host.status() for host in self.hosts]
