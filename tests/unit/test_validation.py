"""Request validation passes requests within limits and names the first field that breaks one."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import validation
from engine.config import RequestLimits
from engine.model import (
    Commit,
    GetAvailability,
    ItemRef,
    Movement,
    MovementType,
    Release,
    Reserve,
    ReserveLine,
)
from engine.validation import (
    ValidationError,
    validate_commit,
    validate_get_availability,
    validate_movement,
    validate_movements,
    validate_release,
    validate_reserve,
)

QTY_MAX = RequestLimits().quantity_max
ID_MAX = "a" * 128
ID_MAX_MULTIBYTE = "é" * 64  # 64 characters, 128 bytes
ID_LONG = "a" * 129
ID_LONG_MULTIBYTE = "a" * 127 + "é"  # 128 characters but 129 bytes
MT = MovementType


def line(sku: str = "SKU-1", location: str = "WH-1", quantity: object = 1) -> ReserveLine:
    return ReserveLine(sku, location, quantity)


def lines(n: int) -> tuple[ReserveLine, ...]:
    return tuple(line(sku=f"SKU-{i}") for i in range(n))


def reserve(**fields: object) -> Reserve:
    base = dict(idempotency_key="key-1", reservation_id="r-1", lines=(line(),))
    return Reserve(**(base | fields))


def movement(type: object = MT.RECEIPT, **fields: object) -> Movement:
    base = dict(event_id="ev-1", source="pos", type=type, sku="SKU-1", location="WH-1",
                quantity=5)
    return Movement(**(base | fields))


def movements(n: int) -> list[Movement]:
    return [movement(event_id=f"ev-{i}") for i in range(n)]


def query(*items: ItemRef, **fields: object) -> GetAvailability:
    return GetAvailability(items=items or (ItemRef("SKU-1", "WH-1"),), **fields)


def items(n: int) -> tuple[ItemRef, ...]:
    return tuple(ItemRef(f"SKU-{i}", "WH-1") for i in range(n))


def refusal(validate, request, limits: RequestLimits | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        if limits is None:
            validate(request)
        else:
            validate(request, limits)
    return info.value


# ---- the error ------------------------------------------------------------------------


def test_validation_error_names_field_and_rule() -> None:
    """The error is a ValueError whose text is "field: rule" and survives pickling."""
    err = ValidationError("lines[2].quantity", "must be an integer between 1 and 9")
    assert isinstance(err, ValueError)
    assert (err.field, err.rule) == ("lines[2].quantity", "must be an integer between 1 and 9")
    assert str(err) == "lines[2].quantity: must be an integer between 1 and 9"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.field, copy.rule, str(copy)) == (err.field, err.rule, str(err))


def test_import_pulls_in_no_transport() -> None:
    """Importing the module loads none of protobuf, grpc, ray or redis."""
    code = ("import sys, engine.validation; "
            "print(sorted(m for m in ('google.protobuf', 'grpc', 'ray', 'redis') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- Reserve --------------------------------------------------------------------------

RESERVE_VALID = {
    "minimal": reserve(),
    "all_optional_fields": reserve(channel="web", order_ref="o-1", correlation_id="c-1",
                                   ttl_seconds=60, allow_partial=True),
    "ttl_zero_means_default": reserve(ttl_seconds=0),
    "ttl_at_max": reserve(ttl_seconds=86_400),
    "quantity_at_max": reserve(lines=(line(quantity=QTY_MAX),)),
    "lines_at_max": reserve(lines=lines(500)),
    "same_sku_other_location": reserve(lines=(line(location="A"), line(location="B"))),
    "identifier_at_max_bytes": reserve(idempotency_key=ID_MAX),
    "identifier_at_max_bytes_multibyte": reserve(idempotency_key=ID_MAX_MULTIBYTE),
    "identifier_with_space_and_unicode": reserve(idempotency_key="clé 1 — ✓"),
    "optional_at_max_bytes": reserve(channel=ID_MAX_MULTIBYTE, order_ref=ID_MAX),
    "reservation_id_not_checked": reserve(reservation_id=""),
    "reservation_id_not_checked_even_garbage": reserve(reservation_id="\x00" * 300),
}


@pytest.mark.parametrize("cmd", RESERVE_VALID.values(), ids=RESERVE_VALID.keys())
def test_reserve_valid_passes(cmd: Reserve) -> None:
    """A Reserve within every limit, including exactly at each limit, is accepted."""
    assert validate_reserve(cmd) is None


RESERVE_INVALID = {
    "key_empty": (reserve(idempotency_key=""), "idempotency_key", "between 1 and 128 bytes"),
    "key_one_byte_long": (reserve(idempotency_key=ID_LONG), "idempotency_key", "128 bytes"),
    "key_multibyte_long": (reserve(idempotency_key=ID_LONG_MULTIBYTE), "idempotency_key",
                           "128 bytes"),
    "key_newline": (reserve(idempotency_key="key\n"), "idempotency_key", "printable"),
    "key_nul": (reserve(idempotency_key="k\x00y"), "idempotency_key", "printable"),
    "key_lone_surrogate": (reserve(idempotency_key="k\ud800"), "idempotency_key", "printable"),
    "key_not_str": (reserve(idempotency_key=b"key"), "idempotency_key", "string"),
    "key_none": (reserve(idempotency_key=None), "idempotency_key", "string"),
    "channel_long": (reserve(channel=ID_LONG_MULTIBYTE), "channel", "128 bytes"),
    "channel_tab": (reserve(channel="web\t"), "channel", "printable"),
    "order_ref_nul": (reserve(order_ref="\x00"), "order_ref", "printable"),
    "correlation_id_long": (reserve(correlation_id=ID_LONG), "correlation_id", "128 bytes"),
    "lines_empty": (reserve(lines=()), "lines", "between 1 and 500"),
    "lines_one_past_max": (reserve(lines=lines(501)), "lines", "between 1 and 500"),
    "line_sku_empty": (reserve(lines=(line(), line(sku=""))), "lines[1].sku", "128 bytes"),
    "line_sku_long": (reserve(lines=(line(sku=ID_LONG_MULTIBYTE),)), "lines[0].sku",
                      "128 bytes"),
    "line_location_newline": (reserve(lines=(line(location="WH\n1"),)), "lines[0].location",
                              "printable"),
    "quantity_zero": (reserve(lines=(line(quantity=0),)), "lines[0].quantity",
                      "between 1 and 1000000000"),
    "quantity_negative": (reserve(lines=(line(quantity=-1),)), "lines[0].quantity",
                          "between 1 and 1000000000"),
    "quantity_one_past_max": (reserve(lines=(line(quantity=QTY_MAX + 1),)), "lines[0].quantity",
                              "between 1 and 1000000000"),
    "quantity_str": (reserve(lines=(line(quantity="5"),)), "lines[0].quantity", "integer"),
    "quantity_bool": (reserve(lines=(line(quantity=True),)), "lines[0].quantity", "integer"),
    "quantity_float": (reserve(lines=(line(quantity=1.0),)), "lines[0].quantity", "integer"),
    "duplicate_line": (reserve(lines=(line("A"), line("B"), line("C"), line("B"))), "lines[3]",
                       "repeats the sku and location of lines[1]"),
    "ttl_negative": (reserve(ttl_seconds=-1), "ttl_seconds", "between 0 and 86400"),
    "ttl_one_past_max": (reserve(ttl_seconds=86_401), "ttl_seconds", "between 0 and 86400"),
    "ttl_str": (reserve(ttl_seconds="900"), "ttl_seconds", "integer"),
    "allow_partial_int": (reserve(allow_partial=1), "allow_partial", "true or false"),
}


@pytest.mark.parametrize(("cmd", "field", "rule"), RESERVE_INVALID.values(),
                         ids=RESERVE_INVALID.keys())
def test_reserve_invalid_refused(cmd: Reserve, field: str, rule: str) -> None:
    """Each broken Reserve rule is refused naming the wire field and the limit."""
    err = refusal(validate_reserve, cmd)
    assert err.field == field
    assert rule in err.rule
    assert str(err) == f"{field}: {err.rule}"


RESERVE_SEVERAL_ERRORS = {
    "key_before_lines": (reserve(idempotency_key="", lines=()), "idempotency_key"),
    # The model puts lines before channel; the wire, and so the check, puts channel first.
    "channel_before_lines": (reserve(channel="\n", lines=()), "channel"),
    "earlier_line_first": (reserve(lines=(line(quantity=0), line(sku=""))), "lines[0].quantity"),
    "line_fields_before_duplicate": (reserve(lines=(line(), line(quantity=0))),
                                     "lines[1].quantity"),
    "lines_before_ttl": (reserve(lines=(line(quantity=0),), ttl_seconds=-1), "lines[0].quantity"),
    "ttl_before_correlation_id": (reserve(ttl_seconds=-1, correlation_id="\n"), "ttl_seconds"),
}


@pytest.mark.parametrize(("cmd", "field"), RESERVE_SEVERAL_ERRORS.values(),
                         ids=RESERVE_SEVERAL_ERRORS.keys())
def test_reserve_first_error_in_wire_order(cmd: Reserve, field: str) -> None:
    """With several broken fields, the first in wire order (lines in order) is the one named."""
    assert refusal(validate_reserve, cmd).field == field


RESERVE_CUSTOM_LIMITS = {
    "lines_max_2": (RequestLimits(lines_per_request_max=2), reserve(lines=lines(3)), "lines",
                    "between 1 and 2 entries"),
    "quantity_max_10": (RequestLimits(quantity_max=10), reserve(lines=(line(quantity=11),)),
                        "lines[0].quantity", "between 1 and 10"),
    "ttl_max_60": (RequestLimits(ttl_seconds_max=60), reserve(ttl_seconds=61), "ttl_seconds",
                   "between 0 and 60"),
    "identifier_max_4": (RequestLimits(identifier_bytes_max=4), reserve(idempotency_key="abcé"),
                         "idempotency_key", "between 1 and 4 bytes"),
}


@pytest.mark.parametrize(("limits", "cmd", "field", "rule"), RESERVE_CUSTOM_LIMITS.values(),
                         ids=RESERVE_CUSTOM_LIMITS.keys())
def test_reserve_custom_limits_change_outcome(limits: RequestLimits, cmd: Reserve, field: str,
                                              rule: str) -> None:
    """A Reserve valid under the defaults is refused under tighter limits, quoting them."""
    assert validate_reserve(cmd) is None
    err = refusal(validate_reserve, cmd, limits)
    assert (err.field, rule in err.rule) == (field, True)


def test_reserve_custom_limits_at_limit_passes() -> None:
    """Exactly lines_per_request_max lines pass under a custom limit."""
    assert validate_reserve(reserve(lines=lines(2)), RequestLimits(lines_per_request_max=2)) is None


# ---- Commit and Release ---------------------------------------------------------------

COMMIT_VALID = {
    "minimal": Commit("r-1", "key-1"),
    "with_order_ref": Commit("r-1", "key-1", order_ref="o-1"),
    "at_max_bytes": Commit(ID_MAX_MULTIBYTE, ID_MAX, order_ref=ID_MAX),
}


@pytest.mark.parametrize("cmd", COMMIT_VALID.values(), ids=COMMIT_VALID.keys())
def test_commit_valid_passes(cmd: Commit) -> None:
    """A Commit within every limit is accepted."""
    assert validate_commit(cmd) is None


COMMIT_INVALID = {
    "reservation_id_empty": (Commit("", "key-1"), "reservation_id", "between 1 and 128 bytes"),
    "reservation_id_int": (Commit(7, "key-1"), "reservation_id", "string"),
    "reservation_id_before_key": (Commit("", ""), "reservation_id", "128 bytes"),
    "key_empty": (Commit("r-1", ""), "idempotency_key", "between 1 and 128 bytes"),
    "key_multibyte_long": (Commit("r-1", ID_LONG_MULTIBYTE), "idempotency_key", "128 bytes"),
    "key_nul": (Commit("r-1", "\x00"), "idempotency_key", "printable"),
    "order_ref_long": (Commit("r-1", "key-1", ID_LONG), "order_ref", "128 bytes"),
    "order_ref_newline": (Commit("r-1", "key-1", "o\n"), "order_ref", "printable"),
}


@pytest.mark.parametrize(("cmd", "field", "rule"), COMMIT_INVALID.values(),
                         ids=COMMIT_INVALID.keys())
def test_commit_invalid_refused(cmd: Commit, field: str, rule: str) -> None:
    """Each broken Commit rule is refused naming the wire field and the limit."""
    err = refusal(validate_commit, cmd)
    assert err.field == field
    assert rule in err.rule


RELEASE_VALID = {
    "minimal": Release("r-1", "key-1"),
    "with_reason": Release("r-1", "key-1", reason="cart abandoned"),
    "at_max_bytes": Release(ID_MAX, ID_MAX_MULTIBYTE, reason=ID_MAX_MULTIBYTE),
}


@pytest.mark.parametrize("cmd", RELEASE_VALID.values(), ids=RELEASE_VALID.keys())
def test_release_valid_passes(cmd: Release) -> None:
    """A Release within every limit is accepted."""
    assert validate_release(cmd) is None


RELEASE_INVALID = {
    "reservation_id_long": (Release(ID_LONG, "key-1"), "reservation_id", "128 bytes"),
    "reservation_id_newline": (Release("r\n", "key-1"), "reservation_id", "printable"),
    "key_empty": (Release("r-1", ""), "idempotency_key", "between 1 and 128 bytes"),
    "key_none": (Release("r-1", None), "idempotency_key", "string"),
    "reason_long": (Release("r-1", "key-1", ID_LONG_MULTIBYTE), "reason", "128 bytes"),
    "reason_nul": (Release("r-1", "key-1", "\x00"), "reason", "printable"),
}


@pytest.mark.parametrize(("cmd", "field", "rule"), RELEASE_INVALID.values(),
                         ids=RELEASE_INVALID.keys())
def test_release_invalid_refused(cmd: Release, field: str, rule: str) -> None:
    """Each broken Release rule is refused naming the wire field and the limit."""
    err = refusal(validate_release, cmd)
    assert err.field == field
    assert rule in err.rule


def test_commit_custom_limits_change_outcome() -> None:
    """A custom identifier_bytes_max refuses a Commit the defaults accept, quoting the limit."""
    cmd = Commit("r-12345", "key-1")
    assert validate_commit(cmd) is None
    err = refusal(validate_commit, cmd, RequestLimits(identifier_bytes_max=5))
    assert (err.field, err.rule) == ("reservation_id", "must be between 1 and 5 bytes of UTF-8")


# ---- ApplyMovements -------------------------------------------------------------------

MOVEMENTS_VALID = {
    **{t.name.lower(): [movement(t, destination_location="WH-2", occurred_at_unix_ms=1)]
       for t in MT},
    "type_as_plain_int": [movement(5)],
    "adjustment_negative_at_max": [movement(MT.ADJUSTMENT, quantity=-QTY_MAX)],
    "adjustment_positive_at_max": [movement(MT.ADJUSTMENT, quantity=QTY_MAX)],
    "cycle_count_zero": [movement(MT.CYCLE_COUNT, quantity=0, occurred_at_unix_ms=1)],
    "cycle_count_at_max": [movement(MT.CYCLE_COUNT, quantity=QTY_MAX, occurred_at_unix_ms=1)],
    "safety_stock_zero": [movement(MT.SAFETY_STOCK_SET, quantity=0)],
    "sale_at_max": [movement(MT.SALE, quantity=QTY_MAX)],
    "occurred_at_zero_means_when_applied": [movement(occurred_at_unix_ms=0)],
    "source_sequence_at_uint64_max": [movement(source_sequence=2**64 - 1)],
    "all_optional_fields": [movement(reason="shrink", order_ref="o-1", reservation_id="r-1",
                                     correlation_id="c-1", occurred_at_unix_ms=1_700_000_000_000,
                                     source_sequence=42)],
    "optional_at_max_bytes": [movement(reason=ID_MAX_MULTIBYTE, correlation_id=ID_MAX)],
    "movements_at_max": movements(1_000),
}


@pytest.mark.parametrize("request_", MOVEMENTS_VALID.values(), ids=MOVEMENTS_VALID.keys())
def test_movements_valid_passes(request_: list[Movement]) -> None:
    """Movements of every type within every limit, including exactly at each limit, pass."""
    assert validate_movements(request_) is None


MOVEMENT_INVALID = {
    "event_id_empty": (movement(event_id=""), "event_id", "between 1 and 128 bytes"),
    "event_id_multibyte_long": (movement(event_id=ID_LONG_MULTIBYTE), "event_id", "128 bytes"),
    "source_newline": (movement(source="pos\n"), "source", "printable"),
    "source_none": (movement(source=None), "source", "string"),
    "type_zero": (movement(0), "type", "MovementType between 1 and 13"),
    "type_unknown_int": (movement(14), "type", "MovementType between 1 and 13"),
    "type_bool": (movement(True), "type", "MovementType"),
    "type_name_str": (movement("RECEIPT"), "type", "MovementType"),
    "sku_empty": (movement(sku=""), "sku", "between 1 and 128 bytes"),
    "location_nul": (movement(location="\x00"), "location", "printable"),
    "receipt_quantity_zero": (movement(quantity=0), "quantity", "between 1 and 1000000000"),
    "receipt_quantity_negative": (movement(quantity=-5), "quantity", "between 1 and 1000000000"),
    "sale_quantity_one_past_max": (movement(MT.SALE, quantity=QTY_MAX + 1), "quantity",
                                   "between 1 and 1000000000"),
    "quantity_str": (movement(quantity="5"), "quantity", "integer"),
    "quantity_bool": (movement(quantity=True), "quantity", "integer"),
    "adjustment_zero": (movement(MT.ADJUSTMENT, quantity=0), "quantity",
                        "nonzero integer between -1000000000 and 1000000000"),
    "adjustment_one_past_max": (movement(MT.ADJUSTMENT, quantity=QTY_MAX + 1), "quantity",
                                "between -1000000000 and 1000000000"),
    "adjustment_one_past_min": (movement(MT.ADJUSTMENT, quantity=-QTY_MAX - 1), "quantity",
                                "between -1000000000 and 1000000000"),
    "adjustment_bool": (movement(MT.ADJUSTMENT, quantity=False), "quantity", "integer"),
    "cycle_count_negative": (movement(MT.CYCLE_COUNT, quantity=-1, occurred_at_unix_ms=1),
                             "quantity", "between 0 and 1000000000"),
    "safety_stock_one_past_max": (movement(MT.SAFETY_STOCK_SET, quantity=QTY_MAX + 1),
                                  "quantity", "between 0 and 1000000000"),
    "occurred_at_negative": (movement(occurred_at_unix_ms=-1), "occurred_at_unix_ms",
                             "between 0 and"),
    "occurred_at_float": (movement(occurred_at_unix_ms=1.5), "occurred_at_unix_ms", "integer"),
    "cycle_count_without_instant": (movement(MT.CYCLE_COUNT, quantity=3), "occurred_at_unix_ms",
                                    "between 1 and"),
    "reason_nul": (movement(reason="\x00"), "reason", "printable"),
    "order_ref_long": (movement(order_ref=ID_LONG), "order_ref", "128 bytes"),
    "reservation_id_int": (movement(reservation_id=1), "reservation_id", "string"),
    "source_sequence_negative": (movement(source_sequence=-1), "source_sequence",
                                 "between 0 and 18446744073709551615"),
    "source_sequence_one_past_max": (movement(source_sequence=2**64), "source_sequence",
                                     "between 0 and 18446744073709551615"),
    "correlation_id_long": (movement(correlation_id=ID_LONG_MULTIBYTE), "correlation_id",
                            "128 bytes"),
    "destination_long": (movement(destination_location=ID_LONG), "destination_location",
                         "128 bytes"),
    "transfer_out_without_destination": (movement(MT.TRANSFER_OUT), "destination_location",
                                         "required for TRANSFER_OUT"),
    "transfer_out_to_itself": (movement(MT.TRANSFER_OUT, destination_location="WH-1"),
                               "destination_location", "differ from location"),
    "event_id_before_type": (movement(0, event_id=""), "event_id", "128 bytes"),
    "type_before_quantity": (movement(0, quantity=0), "type", "MovementType"),
}


@pytest.mark.parametrize(("bad", "field", "rule"), MOVEMENT_INVALID.values(),
                         ids=MOVEMENT_INVALID.keys())
def test_movements_invalid_refused(bad: Movement, field: str, rule: str) -> None:
    """Each broken Movement rule is refused naming `movements[i].field` and the limit."""
    err = refusal(validate_movements, [movement(), bad, movement(quantity=0)])
    assert err.field == f"movements[1].{field}"
    assert rule in err.rule


@pytest.mark.parametrize(("bad", "field", "rule"), MOVEMENT_INVALID.values(),
                         ids=MOVEMENT_INVALID.keys())
def test_movement_invalid_refused_naming_the_bare_field(bad: Movement, field: str,
                                                        rule: str) -> None:
    """validate_movement (one movement, as ingest checks each) names the field alone."""
    err = refusal(validate_movement, bad)
    assert (err.field, rule in err.rule) == (field, True)


@pytest.mark.parametrize("request_", MOVEMENTS_VALID.values(), ids=MOVEMENTS_VALID.keys())
def test_movement_valid_passes_one_at_a_time(request_: list[Movement]) -> None:
    """Every movement that passes in a request passes alone."""
    for one in request_:
        assert validate_movement(one) is None


# Values at and around every bound and type rule, for the property below.
_TEXT = st.sampled_from(["", "a", "WH-1", "é", "a\n", "\x00", "\ud800", ID_MAX, ID_LONG,
                         ID_MAX_MULTIBYTE, ID_LONG_MULTIBYTE, None, 7, b"sku"])
_INT = st.sampled_from([0, 1, -1, 2, QTY_MAX, QTY_MAX + 1, -QTY_MAX, -QTY_MAX - 1, 2**63 - 1,
                        2**63, 2**64 - 1, 2**64, True, False, 1.0, "1", None])
_TYPE = st.one_of(st.sampled_from(list(MT)), st.sampled_from([0, 5, 14, True, "RECEIPT"]))
_FIELD_VALUES = {name: _INT if name in ("quantity", "occurred_at_unix_ms", "source_sequence")
                 else _TYPE if name == "type" else _TEXT for name in Movement._fields}
# A valid movement of any type with up to three of its fields set to edge values.
_CANDIDATES = st.builds(
    lambda kind, changes: movement(**(
        {"type": kind, "destination_location": "WH-2", "occurred_at_unix_ms": 1} | changes)),
    st.sampled_from(list(MT)),
    st.lists(st.sampled_from(Movement._fields), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: _FIELD_VALUES[name] for name in names})))


@settings(max_examples=1_000)
@given(_CANDIDATES)
def test_validate_movement_quick_pass_agrees_with_every_rule(candidate: Movement) -> None:
    """Whatever the fields, the one-pass check for plain movements never lets through a
    movement that a rule refuses, and refuses with that rule's field and words."""
    try:
        validation._movement("", candidate, RequestLimits())
    except ValidationError as expected:
        err = refusal(validate_movement, candidate)
        assert (err.field, err.rule) == (expected.field, expected.rule)
    else:
        assert validate_movement(candidate) is None


POSITIVE_ONLY_TYPES = [t for t in MT
                       if t not in (MT.ADJUSTMENT, MT.CYCLE_COUNT, MT.SAFETY_STOCK_SET)]


@pytest.mark.parametrize("kind", POSITIVE_ONLY_TYPES, ids=lambda t: t.name.lower())
def test_movements_zero_quantity_refused_for_positive_types(kind: MovementType) -> None:
    """Every type other than ADJUSTMENT, CYCLE_COUNT and SAFETY_STOCK_SET needs a quantity >= 1."""
    err = refusal(validate_movements, [movement(kind, quantity=0, destination_location="WH-2")])
    assert (err.field, err.rule) == ("movements[0].quantity",
                                     "must be an integer between 1 and 1000000000")


MOVEMENTS_COUNT_INVALID = {
    "empty": ([], RequestLimits(), "between 1 and 1000 entries"),
    "one_past_max": (movements(1_001), RequestLimits(), "between 1 and 1000 entries"),
    "custom_max_2": (movements(3), RequestLimits(movements_per_request_max=2),
                     "between 1 and 2 entries"),
}


@pytest.mark.parametrize(("request_", "limits", "rule"), MOVEMENTS_COUNT_INVALID.values(),
                         ids=MOVEMENTS_COUNT_INVALID.keys())
def test_movements_count_out_of_range_refused(request_: list[Movement], limits: RequestLimits,
                                              rule: str) -> None:
    """An ApplyMovements with no movements, or more than the limit, is refused on `movements`."""
    err = refusal(validate_movements, request_, limits)
    assert (err.field, rule in err.rule) == ("movements", True)


def test_movements_custom_quantity_max_changes_outcome() -> None:
    """A custom quantity_max bounds an ADJUSTMENT both ways and is quoted in the rule."""
    request_ = [movement(MT.ADJUSTMENT, quantity=-11)]
    assert validate_movements(request_) is None
    err = refusal(validate_movements, request_, RequestLimits(quantity_max=10))
    assert (err.field, err.rule) == ("movements[0].quantity",
                                     "must be an integer between -10 and 10")


# ---- GetAvailability ------------------------------------------------------------------

GET_AVAILABILITY_VALID = {
    "one_item": query(),
    "with_channel": query(channel="marketplace"),
    "items_at_max": query(*items(1_000)),
    "identifiers_at_max_bytes": query(ItemRef(ID_MAX_MULTIBYTE, ID_MAX), channel=ID_MAX),
    "repeated_item_allowed": query(ItemRef("A", "B"), ItemRef("A", "B")),
}


@pytest.mark.parametrize("q", GET_AVAILABILITY_VALID.values(), ids=GET_AVAILABILITY_VALID.keys())
def test_get_availability_valid_passes(q: GetAvailability) -> None:
    """A query within every limit, including exactly at each limit, is accepted."""
    assert validate_get_availability(q) is None


GET_AVAILABILITY_INVALID = {
    "items_empty": (GetAvailability(items=()), "items", "between 1 and 1000 entries"),
    "items_one_past_max": (query(*items(1_001)), "items", "between 1 and 1000 entries"),
    "sku_empty": (query(*items(3), ItemRef("", "WH-1")), "items[3].sku", "between 1 and 128"),
    "sku_multibyte_long": (query(ItemRef(ID_LONG_MULTIBYTE, "WH-1")), "items[0].sku",
                           "128 bytes"),
    "location_nul": (query(ItemRef("SKU-1", "WH\x00")), "items[0].location", "printable"),
    "location_not_str": (query(ItemRef("SKU-1", None)), "items[0].location", "string"),
    "channel_newline": (query(channel="web\n"), "channel", "printable"),
    "items_before_channel": (query(ItemRef("", "WH-1"), channel="\n"), "items[0].sku",
                             "128 bytes"),
}


@pytest.mark.parametrize(("q", "field", "rule"), GET_AVAILABILITY_INVALID.values(),
                         ids=GET_AVAILABILITY_INVALID.keys())
def test_get_availability_invalid_refused(q: GetAvailability, field: str, rule: str) -> None:
    """Each broken GetAvailability rule is refused naming the wire field and the limit."""
    err = refusal(validate_get_availability, q)
    assert err.field == field
    assert rule in err.rule


def test_get_availability_custom_limits_change_outcome() -> None:
    """A custom items_per_query_max refuses a query the defaults accept, quoting the limit."""
    q = query(*items(3))
    assert validate_get_availability(q) is None
    err = refusal(validate_get_availability, q, RequestLimits(items_per_query_max=2))
    assert (err.field, err.rule) == ("items", "must have between 1 and 2 entries")
