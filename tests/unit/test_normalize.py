"""Normalization applies a source's aliases, locations, units and statuses, or names the field."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.mappings import Mappings, parse
from engine.model import Movement, MovementType
from engine.normalize import NormalizationError, RawMovement, normalize, normalize_movements
from engine.validation import ValidationError, validate_movements

MT = MovementType
EXAMPLES = Path(__file__).resolve().parents[2] / "loadtest" / "mappings"

MAPPINGS = Mappings({
    "pos": parse("pos", {
        "sku_aliases": {"012345678905": "TSHIRT-BLK-M"},
        "locations": {"0101": "store-soho", "0102": "store-flatiron"},
        "units": {"PK": 3},
    }),
    "market": parse("market", {
        "strict": True,
        "sku_aliases": {"B07XJ8C8F5": "TSHIRT-BLK-M"},
        "locations": {"FC-EWR4": "fc-newark", "FC-OAK3": "fc-oakland"},
    }),
    "erp": parse("erp", {
        "strict": True,
        "units": {"CS": 12},
        "statuses": {
            "UNRESTRICTED": {"type": "RECEIPT"},
            "QI": {"state": "quality_control"},
            "BLOCKED": {"type": "DAMAGE", "state": "damaged"},
        },
    }),
})


def raw(source: str = "pos", sku: str = "012345678905", location: str = "0101",
        quantity: object = 1, type: int = MT.SALE, **fields) -> RawMovement:
    return RawMovement("ev-1", source, type, sku, location, quantity, **fields)


def refused(movement, mappings: Mappings = MAPPINGS) -> NormalizationError:
    with pytest.raises(NormalizationError) as caught:
        normalize(movement, mappings)
    return caught.value


def test_normalize_sku_alias_becomes_sku():
    """A POS UPC becomes the canonical SKU."""
    assert normalize(raw(), MAPPINGS).sku == "TSHIRT-BLK-M"


def test_normalize_location_code_becomes_location_id():
    """A store number becomes a location id, for the destination of a transfer as well."""
    movement = normalize(raw(type=MT.TRANSFER_OUT, destination_location="0102"), MAPPINGS)
    assert (movement.location, movement.destination_location) == ("store-soho",
                                                                   "store-flatiron")


def test_normalize_keeps_other_fields():
    """Fields that no mapping touches reach the Movement unchanged."""
    movement = normalize(raw(occurred_at_unix_ms=5, reason="r", order_ref="o",
                             reservation_id="res", source_sequence=9, correlation_id="c"),
                         MAPPINGS)
    assert movement == Movement("ev-1", "pos", MT.SALE, "TSHIRT-BLK-M", "store-soho", 1,
                                5, "r", "o", "res", 9, "c", "")
    assert type(movement) is Movement


@pytest.mark.parametrize("quantity, unit, each", [
    (2, "PK", 6), (2, "", 2), (2, "EA", 2), (-2, "PK", -6), ("4", "PK", 12),
    (Decimal("1.5"), "CS", 18), ("0.25", "CS", 3), (0.5, "CS", 6),
])
def test_normalize_unit_multiplies_quantity(quantity, unit, each):
    """A quantity in a unit is counted in each: 2 packs of 3 are 6 each."""
    source = "erp" if unit == "CS" else "pos"
    movement = normalize(raw(source, "SKU-1", "dc", quantity, MT.ADJUSTMENT,
                             unit_of_measure=unit), MAPPINGS)
    assert movement.quantity == each and type(movement.quantity) is int


@pytest.mark.parametrize("quantity, unit", [("1.5", ""), ("1.55", "CS"), (0.1, "PK")])
def test_normalize_fractional_each_refused(quantity, unit):
    """A conversion that does not land on whole units is refused, never rounded."""
    source = "pos" if unit == "PK" else "erp"
    error = refused(raw(source, "SKU-1", "dc", quantity, unit_of_measure=unit))
    assert error.field == "quantity" and "not a whole number" in str(error)


@pytest.mark.parametrize("quantity", ["NaN", "Infinity", "ten", "", True, None])
def test_normalize_quantity_not_a_number_refused(quantity):
    """A quantity that is not a finite number names the quantity field."""
    assert refused(raw("erp", "SKU-1", "dc", quantity)).field == "quantity"


def test_normalize_unknown_unit_refused_even_when_lenient():
    """A unit with no multiplier cannot be guessed, so a lenient source is refused too."""
    error = refused(raw(quantity=1, unit_of_measure="CS"))
    assert error.field == "unit_of_measure" and "'CS'" in str(error)


@pytest.mark.parametrize("status, kind", [
    ("UNRESTRICTED", MT.RECEIPT), ("QI", MT.RETURN_RECEIVED), ("BLOCKED", MT.DAMAGE)])
def test_normalize_status_code_becomes_movement_type(status, kind):
    """An ERP stock status code without a type becomes the movement type it means."""
    movement = normalize(raw("erp", "SKU-1", "dc", 2, 0, unit_of_measure="CS",
                             status=status), MAPPINGS)
    assert (movement.type, movement.quantity) == (kind, 24)


def test_normalize_status_agreeing_with_type_accepted():
    """A status and a type that say the same thing are accepted."""
    movement = normalize(raw("erp", "SKU-1", "dc", 1, MT.DAMAGE, status="BLOCKED"), MAPPINGS)
    assert movement.type is MT.DAMAGE


def test_normalize_status_contradicting_type_refused():
    """A status that means another type than the one given names the type field."""
    error = refused(raw("erp", "SKU-1", "dc", 1, MT.RECEIPT, status="BLOCKED"))
    assert error.field == "type" and "DAMAGE" in str(error)


def test_normalize_unknown_status_strict_refused():
    """A strict source's unmapped status code is refused, naming the status field."""
    error = refused(raw("erp", "SKU-1", "dc", 1, MT.RECEIPT, status="RESERVED_FOR_PROJECT"))
    assert error.field == "status"


def test_normalize_unknown_status_lenient_keeps_type():
    """A lenient source's unmapped status adds nothing to a typed movement."""
    movement = normalize(raw(type=MT.SALE, status="ANYTHING"), MAPPINGS)
    assert movement.type is MT.SALE


def test_normalize_unknown_status_without_type_refused():
    """An unmapped status with no type leaves nothing to apply, even for a lenient source."""
    assert refused(raw(type=0, status="ANYTHING")).field == "status"


@pytest.mark.parametrize("field, fields", [
    ("sku", {"sku": "B00UNKNOWN"}),
    ("location", {"location": "FC-XYZ1"}),
    ("destination_location", {"type": MT.TRANSFER_OUT, "destination_location": "FC-XYZ1"}),
])
def test_normalize_strict_unknown_alias_or_location_refused(field, fields):
    """A strict marketplace's unmapped listing id or location names the field."""
    error = refused(raw("market", "B07XJ8C8F5", "FC-EWR4")._replace(**fields))
    assert error.field == field and "strict" in str(error)


def test_normalize_strict_accepts_canonical_names():
    """A strict source may name a canonical SKU or location its tables map to."""
    movement = normalize(raw("market", "TSHIRT-BLK-M", "fc-oakland"), MAPPINGS)
    assert (movement.sku, movement.location) == ("TSHIRT-BLK-M", "fc-oakland")


def test_normalize_lenient_unknown_names_pass_through():
    """A lenient source's SKU or store never seen before passes through unchanged."""
    movement = normalize(raw(sku="NEW-SKU", location="store-new"), MAPPINGS)
    assert (movement.sku, movement.location) == ("NEW-SKU", "store-new")


def test_normalize_strict_without_table_does_not_check_it():
    """Strict applies to the tables a file declares; the ERP names canonical SKUs freely."""
    assert normalize(raw("erp", "ANY-SKU", "dc", 1), MAPPINGS).sku == "ANY-SKU"


def test_normalize_core_movement_of_mapped_source():
    """A core Movement (from the wire codec) is normalized by its source's mapping too."""
    movement = Movement("ev-1", "market", MT.SALE, "B07XJ8C8F5", "FC-EWR4", 1)
    assert normalize(movement, MAPPINGS) == movement._replace(sku="TSHIRT-BLK-M",
                                                              location="fc-newark")


def test_normalize_pass_through_returns_same_movement():
    """A source without a mapping file gets its Movement back as is."""
    movement = Movement("ev-1", "wms", MT.RECEIPT, "SKU-1", "dc", 5)
    assert normalize(movement, MAPPINGS) is movement


def test_normalize_unknown_type_number_left_for_validation():
    """An unknown type number stays a bare int, so validation names it as it does for gRPC."""
    movement = normalize(raw(type=99), MAPPINGS)
    assert movement.type == 99
    with pytest.raises(ValidationError, match=r"^movements\[0\]\.type:"):
        validate_movements([movement])


def test_normalize_movements_prefixes_field_with_index():
    """In a request, the error names the movement's index and field, like validation does."""
    movements = [raw(), raw("market", "B00UNKNOWN", "FC-EWR4")]
    with pytest.raises(NormalizationError) as caught:
        normalize_movements(movements, MAPPINGS)
    assert caught.value.field == "movements[1].sku"
    assert str(caught.value).startswith("movements[1].sku: ")


def test_normalization_error_is_validation_error_and_pickles():
    """A NormalizationError is a ValidationError (INVALID_ARGUMENT) and survives pickling."""
    error = pickle.loads(pickle.dumps(NormalizationError("bad unit", "unit_of_measure")))
    assert isinstance(error, ValidationError)
    assert (error.reason, error.field, str(error)) == ("bad unit", "unit_of_measure",
                                                       "unit_of_measure: bad unit")


def test_normalize_example_mappings():
    """The example ERP file turns 2 cases into quality inspection into 24 returned units."""
    mappings = Mappings.load(EXAMPLES)
    movement = normalize(RawMovement("ev-9", "erp", 0, "MUG-WHT-12OZ", "1000-0001", 2,
                                     unit_of_measure="CS", status="QUALITY_INSPECTION"),
                         mappings)
    assert (movement.type, movement.location, movement.quantity) == (
        MT.RETURN_RECEIVED, "dc-east", 24)
    sale = normalize(RawMovement("ev-10", "pos", MT.SALE, "889842640786", "0207", 1,
                                 unit_of_measure="PK"), mappings)
    assert (sale.sku, sale.location, sale.quantity) == ("SOCKS-3PK-GRY",
                                                        "store-sf-union-square", 3)


names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
canonical_movements = st.builds(
    Movement, event_id=names, source=st.sampled_from(["wms", "3pl", "returns"]),
    type=st.sampled_from(list(MT)), sku=names, location=names,
    quantity=st.integers(-10**9, 10**9), occurred_at_unix_ms=st.integers(0, 2**40),
    reason=st.just(""), order_ref=st.just(""), reservation_id=st.just(""),
    source_sequence=st.integers(0, 2**64 - 1), correlation_id=names,
    destination_location=st.just("") | names)


@given(movement=canonical_movements)
def test_normalize_canonical_input_of_pass_through_source_unchanged(movement):
    """Normalizing an already-canonical movement of a source without a mapping changes nothing."""
    assert normalize(movement, MAPPINGS) == movement
    assert normalize(RawMovement(*movement), MAPPINGS) == movement


@given(movement=canonical_movements,
       source=st.sampled_from(["pos", "market"]),
       sku=st.sampled_from(["012345678905", "B07XJ8C8F5", "TSHIRT-BLK-M"]),
       location=st.sampled_from(["0101", "FC-OAK3", "fc-newark", "store-soho"]))
def test_normalize_twice_equals_once(movement, source, sku, location):
    """For a mapped source, normalizing a normalized movement changes nothing more."""
    movement = movement._replace(source=source, sku=sku, location=location,
                                 destination_location="")
    try:
        once = normalize(movement, MAPPINGS)
    except NormalizationError:
        return  # a strict source refusing another source's code is covered above
    assert normalize(once, MAPPINGS) == once
