"""Convert protobuf requests to the core's command tuples and core results to protobuf responses."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import grpc
from inventory.v1 import availability_pb2 as pb

from engine.model import (
    AvailabilityResult,
    Commit,
    Explanation,
    FenceItem,
    FenceResult,
    FenceShown,
    GetAvailability,
    ItemRef,
    Movement,
    MovementResult,
    MovementType,
    Outcome,
    Release,
    ReservationResult,
    Reserve,
    ReserveLine,
    ReserveResult,
    SettleFences,
)
from engine.normalize import RawMovement
from engine.validation import ValidationError

# The core's enums carry the wire numbers, so results convert without a table; only the
# inbound movement type needs one, to keep an unknown number for validation to name.
# A dict lookup is ten times cheaper than MovementType(value) on the hot path.
_MOVEMENT_TYPES = {member.value: member for member in MovementType}
# Built by tuple.__new__ in C: a NamedTuple's _make goes through Python, on the hot path.
_new_movement = functools.partial(tuple.__new__, Movement)
_new_raw_movement = functools.partial(tuple.__new__, RawMovement)

# Refusals only; not enough stock is a REJECTED answer with gRPC OK (DESIGN section 5).
_STATUS_OF_OUTCOME = {
    Outcome.OK: None,
    Outcome.IDEMPOTENCY_CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    Outcome.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Outcome.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Outcome.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
}

# ---- requests -> commands ---------------------------------------------------------------


def reserve_command(request: pb.ReserveRequest, reservation_id: str) -> Reserve:
    """A Reserve with the id the gateway minted; ttl_seconds 0 stays 0 (partition default)."""
    return Reserve(
        idempotency_key=request.idempotency_key,
        reservation_id=reservation_id,
        lines=tuple([ReserveLine(line.sku, line.location, line.quantity)
                     for line in request.lines]),
        ttl_seconds=request.ttl_seconds,
        allow_partial=request.allow_partial,
        channel=request.channel,
        order_ref=request.order_ref,
        correlation_id=request.correlation_id,
    )


def commit_command(request: pb.CommitRequest) -> Commit:
    """The Commit a CommitRequest asks for."""
    return Commit(
        reservation_id=request.reservation_id,
        idempotency_key=request.idempotency_key,
        order_ref=request.order_ref,
    )


def release_command(request: pb.ReleaseRequest) -> Release:
    """The Release a ReleaseRequest asks for."""
    return Release(
        reservation_id=request.reservation_id,
        idempotency_key=request.idempotency_key,
        reason=request.reason,
    )


def movement_command(message: pb.Movement) -> Movement | RawMovement:
    """A Movement; an unknown wire type (0 included) stays a bare int for validation to refuse.

    A movement in a unit of measure or with a status code is a RawMovement, which the
    source's mapping normalizes; the others skip that work.
    """
    if message.unit_of_measure or message.status:
        return raw_movement(message)
    return _new_movement(_movement_fields(message))


def raw_movement(message: pb.Movement) -> RawMovement:
    """Every field of a wire Movement, unit_of_measure and status included, for normalize."""
    return _new_raw_movement((*_movement_fields(message), message.unit_of_measure,
                              message.status))


def _movement_fields(message: pb.Movement) -> tuple:
    """The fields a core Movement has, in its order."""
    kind = message.type
    return (message.event_id, message.source, _MOVEMENT_TYPES.get(kind, kind), message.sku,
            message.location, message.quantity, message.occurred_at_unix_ms, message.reason,
            message.order_ref, message.reservation_id, message.source_sequence,
            message.correlation_id, message.destination_location)


def movement_commands(request: pb.ApplyMovementsRequest) -> list[Movement | RawMovement]:
    """One Movement (or RawMovement, see movement_command) per wire movement, in order."""
    return [movement_command(message) for message in request.movements]


def availability_query(request: pb.GetAvailabilityRequest) -> GetAvailability:
    """The GetAvailability read a GetAvailabilityRequest asks for."""
    return GetAvailability(
        items=tuple([ItemRef(item.sku, item.location) for item in request.items]),
        channel=request.channel,
        explain=request.explain,
    )


# ---- results -> responses ---------------------------------------------------------------
# A None status or state (only on refused results) becomes the wire's 0, UNSPECIFIED.


def fence_command(request: pb.FenceChannelRequest) -> FenceShown | SettleFences:
    """The FenceShown or SettleFences a FenceChannel request asks for."""
    if request.action == pb.FENCE_ACTION_SHOWN:
        return FenceShown(request.channel, tuple(FenceItem(item.sku, item.location, item.units)
                                                 for item in request.items),
                          request.publish_seq)
    if request.action == pb.FENCE_ACTION_SETTLE:
        if request.items:
            raise ValidationError("items", "must be empty with FENCE_ACTION_SETTLE")
        return SettleFences(request.channel, request.publish_seq)
    raise ValidationError("action", "must be FENCE_ACTION_SHOWN or FENCE_ACTION_SETTLE")


def fence_response(result: FenceResult) -> pb.FenceChannelResponse:
    return pb.FenceChannelResponse(rows=result.rows, skipped=result.skipped)


def reserve_response(result: ReserveResult) -> pb.ReserveResponse:
    """The ReserveResponse of a Reserve's result, lines in request order."""
    response = pb.ReserveResponse(
        reservation_id=result.reservation_id,
        status=result.status or 0,
        expires_at_unix_ms=result.expires_at_unix_ms,
    )
    add = response.lines.add  # filling in place skips building and copying a LineResult
    for line in result.lines:
        add(sku=line.sku, location=line.location, requested=line.requested,
            reserved=line.reserved, code=line.code, available_after=line.available_after,
            backordered=line.backordered)
    return response


def commit_response(result: ReservationResult) -> pb.CommitResponse:
    """The CommitResponse of a Commit's result."""
    return pb.CommitResponse(reservation_id=result.reservation_id, state=result.state or 0)


def release_response(result: ReservationResult) -> pb.ReleaseResponse:
    """The ReleaseResponse of a Release's result."""
    return pb.ReleaseResponse(reservation_id=result.reservation_id, state=result.state or 0)


def movements_response(results: Sequence[MovementResult]) -> pb.ApplyMovementsResponse:
    """Every movement's result, refusals included: a refused movement never fails the RPC."""
    response = pb.ApplyMovementsResponse()
    add = response.results.add
    for result in results:
        add(event_id=result.event_id, code=result.code, message=result.message)
    return response


def availability_response(result: AvailabilityResult) -> pb.GetAvailabilityResponse:
    """Every quantity of every requested SKU-location, in request order."""
    response = pb.GetAvailabilityResponse()
    add = response.items.add
    for item in result.items:
        added = add(sku=item.sku, location=item.location, on_hand=item.on_hand,
                    reserved=item.reserved, committed=item.committed,
                    safety_stock=item.safety_stock, damaged=item.damaged,
                    quality_control=item.quality_control, incoming=item.incoming,
                    available_to_sell=item.available_to_sell, known=item.known,
                    backordered=item.backordered)
        if item.explanation is not None:
            _explain(added.explanation, item.explanation)
    return response


def _explain(message: pb.Explanation, explanation: Explanation) -> None:
    message.earliest_hold_expires_at_unix_ms = explanation.earliest_hold_expires_at_ms
    for name, quantity in explanation.terms:
        message.terms.add(name=name, quantity=quantity)
    for line in explanation.recent:
        message.recent.add(seq=line.seq, at_unix_ms=line.at_unix_ms, what=line.what,
                           quantity=line.quantity, key=line.key, source=line.source,
                           correlation_id=line.correlation_id)


# ---- errors -----------------------------------------------------------------------------


def status_of(outcome: Outcome) -> grpc.StatusCode | None:
    """The gRPC status that refuses a command, or None when the outcome is an answer."""
    return _STATUS_OF_OUTCOME[outcome]
