"""Validate a request, route each command to the partition owning it, coalesce per partition."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable, Sequence

import msgpack

from engine.config import GatewayConfig
from engine.ids import ReservationIdSource, partitions_of_reservation
from engine.mappings import Mappings
from engine.model import (
    AvailabilityResult,
    Command,
    Commit,
    FenceResult,
    FenceShown,
    GetAvailability,
    ItemRef,
    Movement,
    MovementResult,
    Outcome,
    Release,
    ReservationResult,
    Reserve,
    ReserveResult,
    Result,
    SettleFences,
)
from engine.normalize import RawMovement, normalize_movements
from engine.partition_host import wall_clock_ms
from engine.routing import partition_of
from engine.validation import (
    ValidationError,
    validate_commit,
    validate_fence,
    validate_get_availability,
    validate_movement_count,
    validate_movements,
    validate_release,
    validate_reserve,
)
from gateway.carts import combine_parts, reserve_cart
from gateway.lanes import LaneOverloaded, PartitionLane
from gateway.partitions import Partitions


def cart_id(command: Reserve, partitions: Sequence[int]) -> str:
    """The id of a cart's parts, the same from every gateway for the same key and cart.

    Two attempts of one cart (a retry through another gateway) may reach its partitions
    in opposite orders; each partition keeps the part that came first, so the parts must
    share an id whichever attempt placed them. The payload is in the digest too, so a key
    reused for another cart gets another id and a conflict can tell its own holds apart.
    """
    digest = hashlib.blake2b(msgpack.packb((command.idempotency_key, command.payload())),
                             digest_size=16).hexdigest()
    return f"r{'.'.join(map(str, partitions))}-{digest}"


class Router:
    """The gateway's logic without gRPC: core commands in, core results out.

    Refusals arrive as results (their `outcome`) or as exceptions: ValidationError
    (NormalizationError included), LaneOverloaded, DeadlineExpired, PartitionUnavailable
    and CartAborted. A `deadline` is on `time.monotonic()`'s clock; a command still queued
    at it is never sent. Movements are normalized under `mappings` (None: pass-through).
    """

    def __init__(self, partitions: Partitions, config: GatewayConfig | None = None,
                 ids: ReservationIdSource | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 mappings: Mappings | None = None) -> None:
        self.config = config or GatewayConfig()
        # No mapping files: every source passes through unchanged.
        self.mappings = mappings if mappings is not None else Mappings()
        self.partitions = partitions
        self._ids = ids or ReservationIdSource()
        self._clock_ms = clock_ms
        self._carts: set[asyncio.Future[ReserveResult]] = set()
        # One lane per actor, not per virtual partition: a call carries the commands of
        # every partition the actor hosts, each tagged with its partition, so batches stay
        # as large as they were with one partition per actor. Changed in place when the
        # partition map changes.
        self._owners = partitions.owners
        self.lanes: list[PartitionLane] = []
        self._add_lanes(partitions.actors)

    def _add_lanes(self, actors: int) -> None:
        while len(self.lanes) < actors:
            self.lanes.append(PartitionLane(
                functools.partial(self.partitions.apply, len(self.lanes)), self.config.lanes))

    def lane_of(self, partition: int) -> PartitionLane:
        """The lane of the actor that hosts virtual partition `partition` now."""
        actor = self._owners[partition]
        if actor >= len(self.lanes):  # the map names an actor added since (scale-out)
            self._add_lanes(actor + 1)
        return self.lanes[actor]

    def submit(self, partition: int, command: Command,
               deadline: float | None) -> asyncio.Future[Result]:
        """Queue `command` for virtual partition `partition`; the future brings its result."""
        return self.lane_of(partition).enqueue((partition, command), deadline)

    async def _submit_later(self, partition: int, command: Command,
                            deadline: float | None) -> Result:
        # For fan-outs: a refusal to queue one part is that part's answer, raised when
        # awaited, so the parts already queued are still awaited (and a cart rolled back).
        return await self.submit(partition, command, deadline)

    async def _follow_up(self, partition: int, command: Command,
                         deadline: float | None) -> Result:
        return await self.lane_of(partition).enqueue((partition, command), deadline,
                                                     beyond_limit=True)

    def start_reserve(self, command: Reserve,
                      deadline: float | None = None) -> Awaitable[ReserveResult]:
        """Validate and route now, raising any refusal; the awaitable brings the result."""
        validate_reserve(command, self.config.requests)
        self.check_channel(command.channel)
        count = self.partitions.count
        owners = [partition_of(line.sku, count) for line in command.lines]
        first = owners[0]
        if all(owner == first for owner in owners):
            # _make of the fields, as _replace costs several times more on this path.
            command = Reserve._make((command[0], self._ids.mint(first), *command[2:]))
            return self.submit(first, command, deadline)
        config = self.config
        cart = asyncio.ensure_future(reserve_cart(
            self._submit_later, self._follow_up, command, owners,
            cart_id(command, sorted(set(owners))),
            final_ttl_s=command.ttl_seconds or config.hold_ttl_seconds_default,
            tentative_ttl_s=config.cart_tentative_ttl_s, now_ms=self._clock_ms,
            deadline=deadline, confirm_delay_s=config.cart_confirm_delay_s))
        # A caller that goes away must not cut a cart between its phases: the cart runs
        # on (drain waits for it) and the caller's retry with its key finds the answer.
        self._carts.add(cart)
        cart.add_done_callback(self._carts.discard)
        return asyncio.shield(cart)

    def start_commit(self, command: Commit,
                     deadline: float | None = None) -> Awaitable[ReservationResult]:
        validate_commit(command, self.config.requests)
        return self._to_reservation(command, deadline)

    def start_release(self, command: Release,
                      deadline: float | None = None) -> Awaitable[ReservationResult]:
        validate_release(command, self.config.requests)
        return self._to_reservation(command, deadline)

    async def reserve(self, command: Reserve, deadline: float | None = None) -> ReserveResult:
        return await self.start_reserve(command, deadline)

    async def commit(self, command: Commit, deadline: float | None = None) -> ReservationResult:
        return await self.start_commit(command, deadline)

    async def release(self, command: Release, deadline: float | None = None) -> ReservationResult:
        return await self.start_release(command, deadline)

    def _to_reservation(self, command: Commit | Release,
                        deadline: float | None) -> Awaitable[ReservationResult]:
        """Send a Commit or Release to every partition its reservation id names."""
        owners = partitions_of_reservation(command.reservation_id)
        if owners is None or max(owners) >= self.partitions.count:
            answer = asyncio.get_running_loop().create_future()
            answer.set_result(ReservationResult(Outcome.NOT_FOUND, command.reservation_id,
                                                None, "no such reservation"))
            return answer
        if len(owners) == 1:
            return self.submit(owners[0], command, deadline)
        return self._to_parts(command, owners, deadline)

    async def _to_parts(self, command: Commit | Release, owners: Sequence[int],
                        deadline: float | None) -> ReservationResult:
        answers = await asyncio.gather(*(self._submit_later(p, command, deadline)
                                         for p in owners))
        return combine_parts(command.reservation_id, answers)

    async def get_availability(self, query: GetAvailability,
                               deadline: float | None = None) -> AvailabilityResult:
        validate_get_availability(query, self.config.requests)
        self.check_channel(query.channel)
        indexes_of = self._by_partition(item.sku for item in query.items)
        answers = await asyncio.gather(*(
            self._submit_later(p, query._replace(items=tuple(query.items[i] for i in indexes)),
                               deadline)
            for p, indexes in indexes_of.items()))
        for answer in answers:
            if answer.outcome is not Outcome.OK:  # a refusal (an unknown channel): every
                return answer                     # partition refuses alike, with no items
        items = [None] * len(query.items)
        for indexes, answer in zip(indexes_of.values(), answers, strict=True):
            for index, item in zip(indexes, answer.items, strict=True):
                items[index] = item
        return AvailabilityResult(Outcome.OK, tuple(items))

    async def fence_channel(self, command: FenceShown | SettleFences,
                            deadline: float | None = None) -> FenceResult:
        """A FenceShown to the partitions of its items, or a SettleFences to every partition;
        the rows whose fence moved, summed (`skipped` when any partition skipped a settle)."""
        validate_fence(command, self.config.requests)
        self.check_channel(command.channel)
        channel = self.config.channels.get(command.channel)
        if not channel.ring_fence:
            raise ValidationError("channel", f"{channel.name!r} is not ring-fenced "
                                             "(ring_fence = true)")
        if type(command) is SettleFences:
            parts = [(p, command) for p in range(self.partitions.count)]
        else:
            await self._check_known(command.items, deadline)
            parts = [(p, command._replace(items=tuple(command.items[i] for i in indexes)))
                     for p, indexes in self._by_partition(
                         item.sku for item in command.items).items()]
        answers = await asyncio.gather(*(self._submit_later(p, part, deadline)
                                         for p, part in parts))
        for answer in answers:
            if answer.outcome is not Outcome.OK:  # rules in force at a partition differ
                return answer
        return FenceResult(Outcome.OK, sum(answer.rows for answer in answers),
                           any(answer.skipped for answer in answers))

    async def _check_known(self, items, deadline: float | None) -> None:
        """Refuse a fence naming a SKU-location no partition has, before any part applies:
        rows are never removed, so what is known now is known when the parts arrive."""
        refs = tuple(ItemRef(item.sku, item.location) for item in items)
        found = await self.get_availability(GetAvailability(refs), deadline)
        for index, item in enumerate(found.items):
            if not item.known:
                raise ValidationError(f"items[{index}]", f"{item.sku!r} at {item.location!r} "
                                                         "is not a known SKU-location")

    def check_channel(self, name: str) -> None:
        """Refuse a channel the rules do not name ("" is `default`)."""
        if not self.config.channels.knows(name):
            raise ValidationError("channel", f"{name!r} is not a configured channel")

    async def apply_movements(self, movements: Sequence[Movement | RawMovement],
                              deadline: float | None = None) -> list[MovementResult]:
        """Every movement's result in request order; each goes to its SKU's partition.

        Each is first normalized under its source's mapping, so a canonical SKU picks the
        partition; a movement that cannot be normalized or validated refuses the request.
        """
        limits = self.config.requests
        validate_movement_count(movements, limits)  # bound the work before normalizing
        movements = normalize_movements(movements, self.mappings)
        validate_movements(movements, limits)
        answers = await self.apply_checked_movements(movements, deadline)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers

    async def apply_checked_movements(self, movements: Sequence[Movement],
                                      deadline: float | None = None
                                      ) -> list[MovementResult | BaseException]:
        """Each movement's result, or the error that kept it from one, in the given order.

        The movements must be normalized and validated already. Those of one actor go to
        its lane as one lot with one future, so a batch costs per actor, not per
        movement; a lane too full for its lot answers LaneOverloaded for each of them.
        """
        count = self.partitions.count
        # Grouped by the actor hosting each movement's partition: one lot per actor.
        tagged_of: dict[int, list[tuple[int, Movement]]] = {}
        indexes_of: dict[int, list[int]] = {}
        for index, movement in enumerate(movements):
            partition = partition_of(movement.sku, count)
            actor = self._owners[partition]
            tagged_of.setdefault(actor, []).append((partition, movement))
            indexes_of.setdefault(actor, []).append(index)
        lots: list[Awaitable[list] | LaneOverloaded] = []
        for tagged in tagged_of.values():
            try:
                lots.append(self.lane_of(tagged[0][0]).enqueue_many(tagged, deadline))
            except LaneOverloaded as error:
                lots.append(error)
        # gather: a caller cancelled while waiting takes its unsent lots out of the queues.
        answered = await asyncio.gather(*(lot for lot in lots if not isinstance(lot, Exception)),
                                        return_exceptions=True)
        answers: list[MovementResult | BaseException] = [None] * len(movements)
        returned = iter(answered)
        for indexes, lot in zip(indexes_of.values(), lots, strict=True):
            part = lot if isinstance(lot, Exception) else next(returned)
            if isinstance(part, BaseException):
                part = [part] * len(indexes)
            for index, answer in zip(indexes, part, strict=True):
                answers[index] = answer
        return answers

    def _by_partition(self, skus) -> dict[int, list[int]]:
        count = self.partitions.count
        indexes_of: dict[int, list[int]] = {}
        for index, sku in enumerate(skus):
            indexes_of.setdefault(partition_of(sku, count), []).append(index)
        return indexes_of

    async def drain(self) -> None:
        """Wait until no cart is between its phases and no lane has anything queued or in flight."""
        while self._carts:
            await asyncio.wait(set(self._carts))
        await asyncio.gather(*(lane.drain() for lane in self.lanes))

