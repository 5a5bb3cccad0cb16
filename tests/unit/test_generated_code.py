"""The committed generated code is current and carries every pinned name of the contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inventory.v1 import availability_pb2

GENERATE_PY = Path(__file__).resolve().parents[2] / "protos" / "generate.py"

# RPC -> (request, response); WatchAvailability is the one server-streaming RPC.
PINNED_RPCS = {
    "Reserve": ("ReserveRequest", "ReserveResponse"),
    "Commit": ("CommitRequest", "CommitResponse"),
    "Release": ("ReleaseRequest", "ReleaseResponse"),
    "GetAvailability": ("GetAvailabilityRequest", "GetAvailabilityResponse"),
    "ApplyMovements": ("ApplyMovementsRequest", "ApplyMovementsResponse"),
    "WatchAvailability": ("WatchAvailabilityRequest", "AvailabilityUpdate"),
}
# Message -> its pinned fields, numbered 1..n in this order.
PINNED_FIELDS = {
    "ReserveRequest": "idempotency_key channel order_ref lines ttl_seconds allow_partial "
    "correlation_id",
    "ReserveResponse": "reservation_id status lines expires_at_unix_ms",
    "CommitRequest": "reservation_id idempotency_key order_ref",
    "CommitResponse": "reservation_id state",
    "ReleaseRequest": "reservation_id idempotency_key reason",
    "ReleaseResponse": "reservation_id state",
    "GetAvailabilityRequest": "items channel",
    "GetAvailabilityResponse": "items",
    "ApplyMovementsRequest": "movements",
    "ApplyMovementsResponse": "results",
    "WatchAvailabilityRequest": "channel skus",
    "ReserveLine": "sku location quantity",
    "ItemRef": "sku location",
    "LineResult": "sku location requested reserved code available_after",
    "ItemAvailability": "sku location on_hand reserved committed safety_stock damaged "
    "quality_control incoming available_to_sell",
    "Movement": "event_id source type sku location quantity occurred_at_unix_ms reason "
    "order_ref reservation_id source_sequence correlation_id destination_location",
    "MovementResult": "event_id code message",
    "AvailabilityUpdate": "channel sku location available_to_sell sequence updated_at_unix_ms",
}
# Enum -> (value prefix, its pinned values numbered 1..n in this order).
PINNED_ENUMS = {
    "ReservationStatus": ("RESERVATION_STATUS", "HELD PARTIALLY_HELD REJECTED"),
    "ReservationState": ("RESERVATION_STATE", "HELD COMMITTED RELEASED EXPIRED"),
    "LineCode": ("LINE_CODE", "OK INSUFFICIENT_AVAILABLE UNKNOWN_ITEM"),
    "MovementType": (
        "MOVEMENT_TYPE",
        "RECEIPT INBOUND_EXPECTED ADJUSTMENT CYCLE_COUNT SALE SHIPMENT RETURN_RECEIVED "
        "RETURN_RESTOCKED RETURN_SCRAPPED DAMAGE TRANSFER_OUT TRANSFER_IN SAFETY_STOCK_SET",
    ),
    "MovementCode": ("MOVEMENT_CODE", "APPLIED DUPLICATE REJECTED"),
}


# Fields added after the contract was pinned: message -> {name: number}, never renumbered.
ADDED_FIELDS = {
    "Movement": {"unit_of_measure": 14, "status": 15},
}


def _load_generator():
    """Import protos/generate.py, which is a script rather than part of a package."""
    spec = importlib.util.spec_from_file_location("_protos_generate", GENERATE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_current():
    """Regenerating from the .proto reproduces the committed Python files byte for byte."""
    stale = _load_generator().stale_files()
    assert stale == [], f"stale generated code, run `python protos/generate.py`: {stale}"


def test_service_has_pinned_rpcs():
    """The service and every pinned RPC exist with their pinned request and response types."""
    file = availability_pb2.DESCRIPTOR
    assert file.package == "inventory.v1"
    service = file.services_by_name["AvailabilityService"]
    for rpc, (request, response) in PINNED_RPCS.items():
        method = service.methods_by_name[rpc]
        assert (method.input_type.name, method.output_type.name) == (request, response)
        assert method.server_streaming == (rpc == "WatchAvailability")
        assert not method.client_streaming


def test_messages_have_pinned_fields_in_order():
    """Every pinned message carries its pinned fields, numbered 1..n in the pinned order."""
    messages = availability_pb2.DESCRIPTOR.message_types_by_name
    for message, names in PINNED_FIELDS.items():
        fields = names.split()
        by_number = {f.number: f.name for f in messages[message].fields}
        assert [by_number.get(n) for n in range(1, len(fields) + 1)] == fields, message


def test_enums_have_pinned_values():
    """Every pinned enum has a zero UNSPECIFIED value, then its prefixed values in order."""
    enums = availability_pb2.DESCRIPTOR.enum_types_by_name
    for enum, (prefix, names) in PINNED_ENUMS.items():
        expected = [f"{prefix}_UNSPECIFIED"] + [f"{prefix}_{v}" for v in names.split()]
        by_number = {v.number: v.name for v in enums[enum].values}
        assert [by_number.get(n) for n in range(len(expected))] == expected, enum


def test_added_fields_keep_their_numbers():
    """Fields added to pinned messages keep the numbers clients were given."""
    messages = availability_pb2.DESCRIPTOR.message_types_by_name
    for message, numbers in ADDED_FIELDS.items():
        fields = messages[message].fields_by_name
        assert {name: fields[name].number for name in numbers} == numbers, message
