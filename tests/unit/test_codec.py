"""The gateway codec converts wire requests to core commands and core results to wire responses."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import json_format
from inventory.v1 import availability_pb2 as pb

from engine.item_ledger import LedgerLine
from engine.model import (
    AvailabilityResult,
    Commit,
    Expire,
    Explanation,
    GetAvailability,
    ItemAvailability,
    ItemRef,
    LineCode,
    LineResult,
    Movement,
    MovementCode,
    MovementResult,
    MovementType,
    Outcome,
    Release,
    ReservationResult,
    ReservationState,
    ReservationStatus,
    Reserve,
    ReserveLine,
    ReserveResult,
)
from engine.normalize import RawMovement
from engine.partition_state import PartitionState
from engine.reserve_batch import ReserveRun
from engine.validation import (
    ValidationError,
    validate_commit,
    validate_get_availability,
    validate_movements,
    validate_reserve,
)
from gateway import codec

NOW = 1_700_000_000_000
ENUM_PAIRS = pytest.mark.parametrize(
    ("engine_enum", "wire_enum", "prefix"),
    [
        (MovementType, pb.MovementType, "MOVEMENT_TYPE_"),
        (ReservationStatus, pb.ReservationStatus, "RESERVATION_STATUS_"),
        (ReservationState, pb.ReservationState, "RESERVATION_STATE_"),
        (LineCode, pb.LineCode, "LINE_CODE_"),
        (MovementCode, pb.MovementCode, "MOVEMENT_CODE_"),
    ],
    ids=lambda value: getattr(value, "__name__", None) if isinstance(value, type) else None,
)


# ---- builders -----------------------------------------------------------------------------


def full_reserve_request() -> pb.ReserveRequest:
    return pb.ReserveRequest(
        idempotency_key="key-1",
        channel="web",
        order_ref="cart-9",
        lines=[pb.ReserveLine(sku="SKU-1", location="WH-1", quantity=2),
               pb.ReserveLine(sku="SKU-2", location="WH-2", quantity=7)],
        ttl_seconds=600,
        allow_partial=True,
        correlation_id="trace-1",
    )


def full_movement(**fields) -> pb.Movement:
    base = dict(
        event_id="ev-1",
        source="wms",
        type=pb.MOVEMENT_TYPE_TRANSFER_OUT,
        sku="SKU-1",
        location="WH-1",
        quantity=3,
        occurred_at_unix_ms=NOW - 5,
        reason="rebalance",
        order_ref="order-4",
        reservation_id="r0-abc",
        source_sequence=2**64 - 1,
        correlation_id="trace-2",
        destination_location="WH-2",
    )
    return pb.Movement(**(base | fields))


def assert_fully_populated(message, *unset: str) -> None:
    """Fail when a builder leaves a wire field at its default, so a dropped field would hide."""
    present = {field.name for field, _ in message.ListFields()}
    assert present == set(message.DESCRIPTOR.fields_by_name) - set(unset)


def new_state(**on_hand: int) -> PartitionState:
    """A partition holding the given on-hand stock of (SKU-<n>, WH-1)."""
    state = PartitionState()
    state.load_items(list(on_hand), ["WH-1"] * len(on_hand), list(on_hand.values()))
    return state


def apply_one(state: PartitionState, command, now_ms: int = NOW):
    return state.apply([command], now_ms)[0]


def reserve_request(key: str, *lines: tuple[str, int], **fields) -> pb.ReserveRequest:
    wire_lines = [pb.ReserveLine(sku=sku, location="WH-1", quantity=q) for sku, q in lines]
    return pb.ReserveRequest(idempotency_key=key, lines=wire_lines, **fields)


# ---- enums --------------------------------------------------------------------------------


@ENUM_PAIRS
def test_enums_engine_members_match_wire_numbers_and_names(engine_enum, wire_enum, prefix):
    """Every core enum member has the wire value of the same number and name."""
    for member in engine_enum:
        assert wire_enum.Name(member.value) == prefix + member.name
        assert wire_enum.Value(prefix + member.name) == member


@ENUM_PAIRS
def test_enums_every_wire_value_but_unspecified_has_an_engine_member(
        engine_enum, wire_enum, prefix):
    """Every wire value except UNSPECIFIED (0) has a core member, so no wire value is lost."""
    assert wire_enum.Value(prefix + "UNSPECIFIED") == 0
    wire_numbers = {number for number in wire_enum.values() if number != 0}
    assert wire_numbers == {member.value for member in engine_enum}


# ---- requests -> commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "command"),
    [
        (pb.ReserveRequest, Reserve),
        (pb.ReserveLine, ReserveLine),
        (pb.CommitRequest, Commit),
        (pb.ReleaseRequest, Release),
        (pb.Movement, RawMovement),  # a core Movement has no unit_of_measure or status
        (pb.GetAvailabilityRequest, GetAvailability),
        (pb.ItemRef, ItemRef),
    ],
    ids=lambda value: value.__name__,
)
def test_commands_have_a_field_for_every_wire_field(wire, command):
    """A wire field added to a request without a command field would be silently dropped."""
    assert set(wire.DESCRIPTOR.fields_by_name) <= set(command._fields)


def test_raw_movement_is_a_movement_plus_unit_and_status():
    """RawMovement starts with Movement's fields in order, so either converts positionally."""
    assert RawMovement._fields == (*Movement._fields, "unit_of_measure", "status")


def test_reserve_command_keeps_every_field():
    """A fully populated ReserveRequest becomes a Reserve with every field and the minted id."""
    request = full_reserve_request()
    assert_fully_populated(request)
    assert codec.reserve_command(request, "r3-minted") == Reserve(
        idempotency_key="key-1",
        reservation_id="r3-minted",
        lines=(ReserveLine("SKU-1", "WH-1", 2), ReserveLine("SKU-2", "WH-2", 7)),
        ttl_seconds=600,
        allow_partial=True,
        channel="web",
        order_ref="cart-9",
        correlation_id="trace-1",
    )


def test_reserve_command_lines_are_a_tuple_and_ttl_zero_means_default():
    """Lines come as a tuple of ReserveLine and an unset ttl_seconds stays 0, the default."""
    command = codec.reserve_command(reserve_request("k", ("SKU-1", 1)), "r0-x")
    assert type(command.lines) is tuple
    assert type(command.lines[0]) is ReserveLine
    assert command.ttl_seconds == 0
    assert command.allow_partial is False
    validate_reserve(command)


def test_commit_command_keeps_every_field():
    """A fully populated CommitRequest becomes the same Commit."""
    request = pb.CommitRequest(reservation_id="r0-a", idempotency_key="c-1", order_ref="o-1")
    assert_fully_populated(request)
    assert codec.commit_command(request) == Commit("r0-a", "c-1", "o-1")


def test_release_command_keeps_every_field():
    """A fully populated ReleaseRequest becomes the same Release."""
    request = pb.ReleaseRequest(reservation_id="r0-a", idempotency_key="x-1", reason="abandoned")
    assert_fully_populated(request)
    assert codec.release_command(request) == Release("r0-a", "x-1", "abandoned")


def test_movement_command_keeps_every_field():
    """A wire Movement in each, without a status, becomes the same core Movement."""
    message = full_movement()
    assert_fully_populated(message, "unit_of_measure", "status")
    command = codec.movement_command(message)
    assert command == Movement(
        event_id="ev-1",
        source="wms",
        type=MovementType.TRANSFER_OUT,
        sku="SKU-1",
        location="WH-1",
        quantity=3,
        occurred_at_unix_ms=NOW - 5,
        reason="rebalance",
        order_ref="order-4",
        reservation_id="r0-abc",
        source_sequence=2**64 - 1,
        correlation_id="trace-2",
        destination_location="WH-2",
    )
    assert command.type is MovementType.TRANSFER_OUT
    validate_movements([command])


def test_movement_command_with_unit_and_status_keeps_every_field_as_raw_movement():
    """A fully populated wire Movement becomes a RawMovement carrying its unit and status."""
    message = full_movement(unit_of_measure="CS", status="IN_TRANSIT")
    assert_fully_populated(message)
    command = codec.movement_command(message)
    assert type(command) is RawMovement
    assert command == RawMovement(
        "ev-1", "wms", MovementType.TRANSFER_OUT, "SKU-1", "WH-1", 3, NOW - 5, "rebalance",
        "order-4", "r0-abc", 2**64 - 1, "trace-2", "WH-2", "CS", "IN_TRANSIT")
    assert command.type is MovementType.TRANSFER_OUT


@pytest.mark.parametrize(("unit", "status"), [("CS", ""), ("", "BLOCKED")])
def test_movement_command_with_either_new_field_is_a_raw_movement(unit, status):
    """A unit of measure alone, or a status alone, is enough to need normalizing."""
    command = codec.movement_command(full_movement(unit_of_measure=unit, status=status))
    assert type(command) is RawMovement
    assert (command.unit_of_measure, command.status) == (unit, status)


@pytest.mark.parametrize("encoding", ["binary", "json"])
def test_movement_unit_and_status_survive_serialization_round_trip(encoding):
    """Both new fields cross the binary and the JSON mapping (stream entries) unchanged."""
    message = full_movement(type=pb.MOVEMENT_TYPE_UNSPECIFIED, unit_of_measure="CS",
                            status="UNRESTRICTED")
    if encoding == "binary":
        again = pb.Movement.FromString(message.SerializeToString())
    else:
        text = json_format.MessageToJson(message)
        assert '"unitOfMeasure": "CS"' in text and '"status": "UNRESTRICTED"' in text
        again = json_format.Parse(text, pb.Movement())
    assert again == message
    command = codec.movement_command(again)
    assert (command.type, command.unit_of_measure, command.status) == (0, "CS", "UNRESTRICTED")


def test_movement_command_keeps_a_negative_adjustment():
    """A signed ADJUSTMENT quantity crosses the codec with its sign."""
    message = full_movement(type=pb.MOVEMENT_TYPE_ADJUSTMENT, quantity=-3,
                            destination_location="")
    command = codec.movement_command(message)
    assert (command.type, command.quantity) == (MovementType.ADJUSTMENT, -3)
    validate_movements([command])


def test_movement_commands_keep_request_order():
    """ApplyMovementsRequest becomes a list of Movements in request order."""
    request = pb.ApplyMovementsRequest(movements=[
        full_movement(event_id="ev-1", type=pb.MOVEMENT_TYPE_SALE),
        full_movement(event_id="ev-2", type=pb.MOVEMENT_TYPE_RECEIPT),
    ])
    commands = codec.movement_commands(request)
    assert type(commands) is list
    assert [(m.event_id, m.type) for m in commands] == [
        ("ev-1", MovementType.SALE), ("ev-2", MovementType.RECEIPT)]
    assert commands == [codec.movement_command(m) for m in request.movements]


def test_availability_query_keeps_every_field():
    """A fully populated GetAvailabilityRequest becomes a GetAvailability of ItemRefs."""
    request = pb.GetAvailabilityRequest(
        items=[pb.ItemRef(sku="SKU-1", location="WH-1"), pb.ItemRef(sku="SKU-2", location="")],
        channel="marketplace")
    query = codec.availability_query(request)
    assert query == GetAvailability(
        (ItemRef("SKU-1", "WH-1"), ItemRef("SKU-2", "")), "marketplace")
    assert type(query.items) is tuple
    assert type(query.items[0]) is ItemRef


# ---- conversion then validation names wire fields -------------------------------------------


@pytest.mark.parametrize("number", [0, 14, 99], ids=["unspecified", "next", "far"])
def test_movement_command_unknown_type_is_kept_and_refused_by_validation(number):
    """An unknown wire type stays a bare int, and validation names movements[0].type."""
    command = codec.movement_command(full_movement(type=number))
    assert type(command.type) is int
    assert command.type == number
    with pytest.raises(ValidationError) as refused:
        validate_movements([command])
    assert refused.value.field == "movements[0].type"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (pb.ReserveLine(sku="SKU-1", location="WH-1", quantity=0), "lines[0].quantity"),
        (pb.ReserveLine(sku="", location="WH-1", quantity=1), "lines[0].sku"),
        (pb.ReserveLine(sku="SKU-1", location="WH\t1", quantity=1), "lines[0].location"),
        (pb.ReserveLine(sku="SKU-1", location="WH-1", quantity=-1), "lines[0].quantity"),
    ],
    ids=["zero-quantity", "empty-sku", "tab-in-location", "negative-quantity"],
)
def test_reserve_command_bad_line_is_refused_naming_the_wire_field(line, field):
    """A converted ReserveRequest with a bad line fails validation naming that wire field."""
    request = pb.ReserveRequest(idempotency_key="k", lines=[line])
    with pytest.raises(ValidationError) as refused:
        validate_reserve(codec.reserve_command(request, "r0-x"))
    assert refused.value.field == field


def test_reserve_command_ttl_past_limit_is_refused_naming_ttl_seconds():
    """A uint32 ttl_seconds beyond the limit survives conversion and is refused by name."""
    request = reserve_request("k", ("SKU-1", 1), ttl_seconds=2**32 - 1)
    with pytest.raises(ValidationError) as refused:
        validate_reserve(codec.reserve_command(request, "r0-x"))
    assert refused.value.field == "ttl_seconds"


def test_movement_commands_bad_second_movement_is_refused_naming_its_index():
    """Validation of converted movements names the wire index of the bad one."""
    request = pb.ApplyMovementsRequest(movements=[
        full_movement(event_id="ev-1"), full_movement(event_id="ev-2", sku="")])
    with pytest.raises(ValidationError) as refused:
        validate_movements(codec.movement_commands(request))
    assert refused.value.field == "movements[1].sku"


def test_commit_command_empty_reservation_id_is_refused_naming_it():
    """A CommitRequest without a reservation id is refused naming reservation_id."""
    with pytest.raises(ValidationError) as refused:
        validate_commit(codec.commit_command(pb.CommitRequest(idempotency_key="c")))
    assert refused.value.field == "reservation_id"


def test_availability_query_empty_location_is_refused_naming_it():
    """A GetAvailabilityRequest item without a location is refused naming items[0].location."""
    request = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku="SKU-1")])
    with pytest.raises(ValidationError) as refused:
        validate_get_availability(codec.availability_query(request))
    assert refused.value.field == "items[0].location"


# ---- results -> responses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "result"),
    [
        (pb.ReserveResponse, ReserveResult),
        (pb.LineResult, LineResult),
        (pb.CommitResponse, ReservationResult),
        (pb.ReleaseResponse, ReservationResult),
        (pb.MovementResult, MovementResult),
        (pb.ItemAvailability, ItemAvailability),
    ],
    ids=lambda value: value.__name__,
)
def test_results_have_a_field_for_every_wire_field(wire, result):
    """Every wire response field has a core result field to fill it from."""
    assert set(wire.DESCRIPTOR.fields_by_name) <= set(result._fields)


def test_reserve_response_keeps_every_field():
    """A ReserveResult becomes a ReserveResponse with every line and code."""
    result = ReserveResult(
        Outcome.OK, "r1-abc", ReservationStatus.PARTIALLY_HELD,
        (LineResult("SKU-1", "WH-1", 4, 4, LineCode.OK, 6),
         LineResult("SKU-2", "WH-1", 5, 2, LineCode.INSUFFICIENT_AVAILABLE, 0),
         LineResult("SKU-3", "WH-2", 1, 0, LineCode.UNKNOWN_ITEM, -3),
         LineResult("SKU-4", "WH-2", 6, 0, LineCode.BACKORDERED, 1, 6)),
        NOW + 900_000)
    response = codec.reserve_response(result)
    assert response == pb.ReserveResponse(
        reservation_id="r1-abc",
        status=pb.RESERVATION_STATUS_PARTIALLY_HELD,
        lines=[
            pb.LineResult(sku="SKU-1", location="WH-1", requested=4, reserved=4,
                          code=pb.LINE_CODE_OK, available_after=6),
            pb.LineResult(sku="SKU-2", location="WH-1", requested=5, reserved=2,
                          code=pb.LINE_CODE_INSUFFICIENT_AVAILABLE, available_after=0),
            pb.LineResult(sku="SKU-3", location="WH-2", requested=1, reserved=0,
                          code=pb.LINE_CODE_UNKNOWN_ITEM, available_after=-3),
            pb.LineResult(sku="SKU-4", location="WH-2", requested=6, reserved=0,
                          code=pb.LINE_CODE_BACKORDERED, available_after=1, backordered=6),
        ],
        expires_at_unix_ms=NOW + 900_000,
    )
    assert_fully_populated(response)
    assert_fully_populated(response.lines[0], "backordered")


@pytest.mark.parametrize("status", list(ReservationStatus), ids=lambda s: s.name)
def test_reserve_response_maps_every_status(status):
    """Each ReservationStatus becomes the wire status of the same name."""
    result = ReserveResult(Outcome.OK, "r0-a", status, (), 0)
    response = codec.reserve_response(result)
    assert pb.ReservationStatus.Name(response.status) == "RESERVATION_STATUS_" + status.name


def test_reserve_response_refused_result_has_unspecified_status():
    """A refused result's missing status reads as UNSPECIFIED rather than failing to encode."""
    result = ReserveResult(Outcome.IDEMPOTENCY_CONFLICT, "", None, (), 0, "key reused")
    assert codec.reserve_response(result) == pb.ReserveResponse()


@pytest.mark.parametrize("state", list(ReservationState), ids=lambda s: s.name)
def test_commit_and_release_response_map_every_state(state):
    """Each ReservationState, SHIPPED included, becomes the wire state of the same name."""
    result = ReservationResult(Outcome.OK, "r2-abc", state)
    for response in (codec.commit_response(result), codec.release_response(result)):
        assert response.reservation_id == "r2-abc"
        assert pb.ReservationState.Name(response.state) == "RESERVATION_STATE_" + state.name
    assert codec.commit_response(result) == pb.CommitResponse(reservation_id="r2-abc",
                                                              state=state.value)
    assert codec.release_response(result) == pb.ReleaseResponse(reservation_id="r2-abc",
                                                                state=state.value)


def test_commit_response_shipped_is_the_wire_shipped_state():
    """The core's SHIPPED state is RESERVATION_STATE_SHIPPED on the wire."""
    result = ReservationResult(Outcome.OK, "r0-a", ReservationState.SHIPPED)
    assert codec.commit_response(result).state == pb.RESERVATION_STATE_SHIPPED


def test_movements_response_keeps_every_result_in_order():
    """Applied, duplicate and refused movements all stay in the response with their message."""
    results = [
        MovementResult(Outcome.OK, "ev-1", MovementCode.APPLIED, "incoming floored at 0"),
        MovementResult(Outcome.OK, "ev-2", MovementCode.DUPLICATE, "already applied"),
        MovementResult(Outcome.IDEMPOTENCY_CONFLICT, "ev-3", MovementCode.REJECTED,
                       "event_id was used with another payload"),
    ]
    assert codec.movements_response(results) == pb.ApplyMovementsResponse(results=[
        pb.MovementResult(event_id="ev-1", code=pb.MOVEMENT_CODE_APPLIED,
                          message="incoming floored at 0"),
        pb.MovementResult(event_id="ev-2", code=pb.MOVEMENT_CODE_DUPLICATE,
                          message="already applied"),
        pb.MovementResult(event_id="ev-3", code=pb.MOVEMENT_CODE_REJECTED,
                          message="event_id was used with another payload"),
    ])


def test_availability_response_keeps_every_quantity():
    """Each ItemAvailability's ten quantities and `known` reach the wire unchanged."""
    item = ItemAvailability("SKU-1", "WH-1", 100, 11, 12, 13, 14, 15, 16, 35, True, None, 7)
    unknown = ItemAvailability("SKU-9", "WH-1", 0, 0, 0, 0, 0, 0, 0, 0, False)
    response = codec.availability_response(AvailabilityResult(Outcome.OK, (item, unknown)))
    assert response == pb.GetAvailabilityResponse(items=[
        pb.ItemAvailability(sku="SKU-1", location="WH-1", on_hand=100, reserved=11,
                            committed=12, safety_stock=13, damaged=14, quality_control=15,
                            incoming=16, available_to_sell=35, known=True, backordered=7),
        pb.ItemAvailability(sku="SKU-9", location="WH-1", known=False),
    ])
    assert_fully_populated(response.items[0], "explanation")  # only when asked


def test_availability_explanation_reaches_the_wire_whole():
    """An explained figure carries its terms, its recent changes and the earliest expiry."""
    explanation = Explanation((("on_hand", 10), ("reserved", -10)),
                              (LedgerLine(7, 1_700, "SALE", 2, "pos-1", "pos", "corr-1"),),
                              1_800)
    item = ItemAvailability("SKU-1", "WH-1", 10, 10, 0, 0, 0, 0, 0, 0, True, explanation)
    response = codec.availability_response(AvailabilityResult(Outcome.OK, (item,)))
    message = response.items[0].explanation
    assert [(t.name, t.quantity) for t in message.terms] == [("on_hand", 10), ("reserved", -10)]
    assert_fully_populated(message.recent[0])
    assert message.recent[0].key == "pos-1" and message.earliest_hold_expires_at_unix_ms == 1_800
    query = codec.availability_query(pb.GetAvailabilityRequest(
        items=[pb.ItemRef(sku="SKU-1", location="WH-1")], explain=True))
    assert query.explain


def test_availability_response_negative_available_to_sell_is_kept():
    """Exposure (negative available_to_sell) is reported on the wire, never hidden."""
    item = ItemAvailability("SKU-1", "WH-1", -2, 0, 3, 0, 0, 0, 0, -5, True)
    response = codec.availability_response(AvailabilityResult(Outcome.OK, (item,)))
    assert (response.items[0].on_hand, response.items[0].available_to_sell) == (-2, -5)


# ---- a real partition through the codec ----------------------------------------------------


def test_reserve_response_from_partition_single_line_hold():
    """A one-line hold applied by the partition converts field for field."""
    state = new_state(**{"SKU-1": 10})
    command = codec.reserve_command(reserve_request("k1", ("SKU-1", 4), ttl_seconds=60), "r0-a")
    result = apply_one(state, command)
    assert codec.status_of(result.outcome) is None
    assert codec.reserve_response(result) == pb.ReserveResponse(
        reservation_id="r0-a",
        status=pb.RESERVATION_STATUS_HELD,
        lines=[pb.LineResult(sku="SKU-1", location="WH-1", requested=4, reserved=4,
                             code=pb.LINE_CODE_OK, available_after=6)],
        expires_at_unix_ms=NOW + 60_000,
    )


def test_reserve_response_from_partition_numpy_run():
    """A batch of one-line Reserves, applied as one numpy run, converts result by result."""
    state = new_state(**{"SKU-1": 10})
    requests = [reserve_request(f"k{i}", ("SKU-1", 1 + i % 2), ttl_seconds=30, allow_partial=True)
                for i in range(64)]
    commands = [codec.reserve_command(r, f"r0-run{i}") for i, r in enumerate(requests)]
    results = state.apply(commands, NOW)
    assert any(type(segment) is ReserveRun for segment in results.segments)
    responses = [codec.reserve_response(result) for result in results]
    # 1, 2, 1, 2, 1, 2, 1 fill 10 units; the 2 after that gets what is left, then nothing.
    assert [r.lines[0].reserved for r in responses[:10]] == [1, 2, 1, 2, 1, 2, 1, 0, 0, 0]
    assert responses[0] == pb.ReserveResponse(
        reservation_id="r0-run0",
        status=pb.RESERVATION_STATUS_HELD,
        lines=[pb.LineResult(sku="SKU-1", location="WH-1", requested=1, reserved=1,
                             code=pb.LINE_CODE_OK, available_after=9)],
        expires_at_unix_ms=NOW + 30_000,
    )
    assert responses[9] == pb.ReserveResponse(
        status=pb.RESERVATION_STATUS_REJECTED,
        lines=[pb.LineResult(sku="SKU-1", location="WH-1", requested=2, reserved=0,
                             code=pb.LINE_CODE_INSUFFICIENT_AVAILABLE, available_after=0)],
    )


def test_reserve_response_from_partition_partial_hold():
    """A multi-line partial hold with a short line and an unknown item converts line by line."""
    state = new_state(**{"SKU-1": 10, "SKU-2": 3})
    request = reserve_request("k1", ("SKU-1", 4), ("SKU-2", 5), ("SKU-X", 1),
                              allow_partial=True)
    result = apply_one(state, codec.reserve_command(request, "r0-b"))
    response = codec.reserve_response(result)
    assert response.reservation_id == "r0-b"
    assert response.status == pb.RESERVATION_STATUS_PARTIALLY_HELD
    assert response.expires_at_unix_ms == NOW + 900_000
    assert [(line.sku, line.requested, line.reserved, line.code, line.available_after)
            for line in response.lines] == [
        ("SKU-1", 4, 4, pb.LINE_CODE_OK, 6),
        ("SKU-2", 5, 3, pb.LINE_CODE_INSUFFICIENT_AVAILABLE, 0),
        ("SKU-X", 1, 0, pb.LINE_CODE_UNKNOWN_ITEM, 0),
    ]


def test_reserve_response_from_partition_not_enough_stock_is_an_answer():
    """Not enough stock is REJECTED with line codes and gRPC OK, never an error status."""
    state = new_state(**{"SKU-1": 2})
    request = reserve_request("k1", ("SKU-1", 3), ("SKU-X", 1))
    result = apply_one(state, codec.reserve_command(request, "r0-c"))
    assert codec.status_of(result.outcome) is None
    response = codec.reserve_response(result)
    assert response.status == pb.RESERVATION_STATUS_REJECTED
    assert [line.code for line in response.lines] == [
        pb.LINE_CODE_INSUFFICIENT_AVAILABLE, pb.LINE_CODE_UNKNOWN_ITEM]
    assert [line.reserved for line in response.lines] == [0, 0]


def test_commit_and_release_response_from_partition_lifecycle():
    """Hold, commit and release through the codec read HELD, COMMITTED, RELEASED on the wire."""
    state = new_state(**{"SKU-1": 10})
    apply_one(state, codec.reserve_command(reserve_request("k1", ("SKU-1", 4)), "r0-d"))
    commit = codec.commit_command(pb.CommitRequest(reservation_id="r0-d", idempotency_key="c1",
                                                   order_ref="order-1"))
    committed = apply_one(state, commit)
    assert codec.status_of(committed.outcome) is None
    assert codec.commit_response(committed) == pb.CommitResponse(
        reservation_id="r0-d", state=pb.RESERVATION_STATE_COMMITTED)
    release = codec.release_command(pb.ReleaseRequest(reservation_id="r0-d",
                                                      idempotency_key="x1", reason="cancel"))
    released = apply_one(state, release)
    assert codec.release_response(released) == pb.ReleaseResponse(
        reservation_id="r0-d", state=pb.RESERVATION_STATE_RELEASED)


def test_commit_response_from_partition_shipped_reservation():
    """A commit of a reservation that has shipped answers RESERVATION_STATE_SHIPPED."""
    state = new_state(**{"SKU-1": 10})
    apply_one(state, codec.reserve_command(reserve_request("k1", ("SKU-1", 4)), "r0-e"))
    apply_one(state, Commit("r0-e", "c1", "order-1"))
    shipment = full_movement(event_id="ship-1", type=pb.MOVEMENT_TYPE_SHIPMENT, quantity=4,
                             reservation_id="r0-e", order_ref="order-1",
                             destination_location="", occurred_at_unix_ms=NOW)
    shipped = apply_one(state, codec.movement_command(shipment))
    assert shipped.code is MovementCode.APPLIED
    again = apply_one(state, codec.commit_command(
        pb.CommitRequest(reservation_id="r0-e", idempotency_key="c2", order_ref="order-1")))
    assert codec.status_of(again.outcome) is None
    assert codec.commit_response(again).state == pb.RESERVATION_STATE_SHIPPED


def test_commit_response_from_partition_expired_is_failed_precondition():
    """A commit after the hold expired is refused with FAILED_PRECONDITION."""
    state = new_state(**{"SKU-1": 10})
    request = reserve_request("k1", ("SKU-1", 4), ttl_seconds=1)
    apply_one(state, codec.reserve_command(request, "r0-f"))
    apply_one(state, Expire(), NOW + 2_000)
    result = apply_one(state, Commit("r0-f", "c1"), NOW + 3_000)
    assert codec.status_of(result.outcome) is grpc.StatusCode.FAILED_PRECONDITION
    assert codec.commit_response(result).state == pb.RESERVATION_STATE_EXPIRED


def test_release_response_from_partition_unknown_reservation_is_not_found():
    """A release of an unknown reservation is refused with NOT_FOUND."""
    state = new_state(**{"SKU-1": 10})
    result = apply_one(state, Release("r0-nope", "x1"))
    assert codec.status_of(result.outcome) is grpc.StatusCode.NOT_FOUND


def test_reserve_response_from_partition_reused_key_is_already_exists():
    """A Reserve key reused with another payload is refused with ALREADY_EXISTS."""
    state = new_state(**{"SKU-1": 10})
    apply_one(state, codec.reserve_command(reserve_request("k1", ("SKU-1", 1)), "r0-g"))
    result = apply_one(state, codec.reserve_command(reserve_request("k1", ("SKU-1", 2)), "r0-h"))
    assert codec.status_of(result.outcome) is grpc.StatusCode.ALREADY_EXISTS


def test_movements_response_from_partition_keeps_refusals_in_results():
    """Applied, duplicate and conflicting movements all answer in the response, in order."""
    state = new_state(**{"SKU-1": 10})
    receipt = dict(type=pb.MOVEMENT_TYPE_RECEIPT, quantity=5, destination_location="",
                   occurred_at_unix_ms=NOW)
    request = pb.ApplyMovementsRequest(movements=[
        full_movement(event_id="ev-1", **receipt),
        full_movement(event_id="ev-1", **receipt),
        full_movement(event_id="ev-1", **(receipt | dict(quantity=6))),
    ])
    commands = codec.movement_commands(request)
    validate_movements(commands)
    results = state.apply(commands, NOW)
    response = codec.movements_response(results)
    assert [(r.event_id, r.code) for r in response.results] == [
        ("ev-1", pb.MOVEMENT_CODE_APPLIED),
        ("ev-1", pb.MOVEMENT_CODE_DUPLICATE),
        ("ev-1", pb.MOVEMENT_CODE_REJECTED),
    ]
    assert [r.message for r in response.results] == [r.message for r in results]
    assert response.results[2].message == "event_id was used with another payload"


def test_availability_response_from_partition_reads_every_quantity():
    """A read through the codec reports the partition's quantities and unknown items."""
    state = new_state(**{"SKU-1": 10})
    apply_one(state, codec.reserve_command(reserve_request("k1", ("SKU-1", 4)), "r0-i"))
    for event_id, kind, quantity in [("ev-1", pb.MOVEMENT_TYPE_INBOUND_EXPECTED, 7),
                                     ("ev-2", pb.MOVEMENT_TYPE_DAMAGE, 1),
                                     ("ev-3", pb.MOVEMENT_TYPE_SAFETY_STOCK_SET, 2)]:
        message = full_movement(event_id=event_id, type=kind, quantity=quantity,
                                destination_location="", occurred_at_unix_ms=NOW)
        assert apply_one(state, codec.movement_command(message)).code is MovementCode.APPLIED
    request = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku="SKU-1", location="WH-1"),
                                               pb.ItemRef(sku="SKU-X", location="WH-1")])
    result = apply_one(state, codec.availability_query(request))
    assert codec.availability_response(result) == pb.GetAvailabilityResponse(items=[
        pb.ItemAvailability(sku="SKU-1", location="WH-1", on_hand=10, reserved=4,
                            safety_stock=2, damaged=1, incoming=7, available_to_sell=3,
                            known=True),
        pb.ItemAvailability(sku="SKU-X", location="WH-1", known=False),
    ])


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.OK, None),
        (Outcome.IDEMPOTENCY_CONFLICT, grpc.StatusCode.ALREADY_EXISTS),
        (Outcome.NOT_FOUND, grpc.StatusCode.NOT_FOUND),
        (Outcome.FAILED_PRECONDITION, grpc.StatusCode.FAILED_PRECONDITION),
        (Outcome.INVALID, grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_status_of_maps_each_outcome(outcome, status):
    """Each Outcome maps to its gRPC status; OK is an answer, not an error."""
    assert codec.status_of(outcome) is status


def test_status_of_covers_every_outcome():
    """No Outcome is left without a mapping, so a new one fails here, not on a live call."""
    for outcome in Outcome:
        codec.status_of(outcome)
