"""Turn a movement in its source's vocabulary into a canonical Movement, or name the bad field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import NamedTuple

from engine.mappings import EACH, Mappings, SourceMapping
from engine.model import Movement, MovementType
from engine.validation import ValidationError

# Like the codec: an unknown type number stays a bare int for validation to name.
_MOVEMENT_TYPES = {member.value: member for member in MovementType}


class NormalizationError(ValidationError):
    """A movement its source's mapping cannot translate; a ValidationError naming the field."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(field, reason)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.reason, self.field))


class RawMovement(NamedTuple):
    """A Movement's fields in the source's words, plus the two that the wire Movement lacks.

    `type` may be 0 (unspecified) when `status` names it; `quantity` may be a decimal
    string or Decimal, counted in `unit_of_measure` ("" or EA means each).
    """

    event_id: str
    source: str
    type: MovementType | int
    sku: str
    location: str
    quantity: int | Decimal | str
    occurred_at_unix_ms: int = 0
    reason: str = ""
    order_ref: str = ""
    reservation_id: str = ""
    source_sequence: int = 0
    correlation_id: str = ""
    destination_location: str = ""
    unit_of_measure: str = ""
    status: str = ""


def normalize(raw: RawMovement | Movement, mappings: Mappings) -> Movement:
    """The canonical Movement of `raw` under its source's mapping; raises NormalizationError."""
    mapping = mappings.for_source(raw.source)
    if isinstance(raw, Movement):
        if mapping.is_pass_through:
            return raw  # the hot path of a source without a mapping file
        raw = RawMovement(*raw)
    strict = mapping.strict
    return Movement(
        event_id=raw.event_id,
        source=raw.source,
        type=_movement_type(raw, mapping),
        sku=_rename("sku", raw.sku, mapping.sku_aliases, mapping.canonical_skus, strict,
                    "SKU alias"),
        location=_rename("location", raw.location, mapping.locations,
                         mapping.canonical_locations, strict, "location code"),
        quantity=_each(raw.quantity, raw.unit_of_measure, mapping.units),
        occurred_at_unix_ms=raw.occurred_at_unix_ms,
        reason=raw.reason,
        order_ref=raw.order_ref,
        reservation_id=raw.reservation_id,
        source_sequence=raw.source_sequence,
        correlation_id=raw.correlation_id,
        # Empty means "not a transfer"; validation decides whether it is required.
        destination_location=raw.destination_location and _rename(
            "destination_location", raw.destination_location, mapping.locations,
            mapping.canonical_locations, strict, "location code"),
    )


def normalize_movements(raws: Iterable[RawMovement | Movement],
                        mappings: Mappings) -> list[Movement]:
    """Normalize a request's movements in order; an error names `movements[i].<field>`."""
    sources = mappings.sources
    movements: list[Movement] = []
    for i, raw in enumerate(raws):
        # The hot path: a core Movement of a source without a file is kept as it is,
        # without building a pass-through mapping for it (ten times cheaper).
        if type(raw) is Movement and raw.source not in sources:
            movements.append(raw)
            continue
        try:
            movements.append(normalize(raw, mappings))
        except NormalizationError as e:
            raise NormalizationError(e.reason, f"movements[{i}].{e.field}") from None
    return movements


def _rename(field: str, value: str, table: Mapping[str, str] | None,
            known: frozenset[str], strict: bool, what: str) -> str:
    """An alias's canonical name; under strict, a name the table knows neither way is refused."""
    if table is None:
        return value
    canonical = table.get(value)
    if canonical is not None:
        return canonical
    # A canonical name that the table maps to is known too, so normalizing twice is harmless.
    if not strict or value in known:
        return value
    raise NormalizationError(f"{value!r} is not a {what} known to this strict source", field)


def _each(quantity: object, unit: str, units: Mapping[str, int]) -> int:
    """The quantity counted in each; a fraction of an each is refused, never rounded."""
    if unit in ("", EACH):
        multiplier = 1
    else:
        multiplier = units.get(unit)
        if multiplier is None:
            # A guess would move the wrong number of units, so even a lenient source is refused.
            raise NormalizationError(f"unit {unit!r} is not in the source's [units] table",
                                     "unit_of_measure")
    if isinstance(quantity, int) and not isinstance(quantity, bool):
        return quantity * multiplier
    exact = _exact(quantity)
    each = exact * multiplier
    if each.denominator != 1:
        raise NormalizationError(
            f"{quantity} {unit or EACH} is {each} each, not a whole number of units",
            "quantity")
    return int(each)


def _exact(quantity: object) -> Fraction:
    # Decimal first: the float 0.1 read as "0.1" is the tenth its sender meant.
    try:
        if isinstance(quantity, float):
            return Fraction(Decimal(repr(quantity)))
        if isinstance(quantity, str):
            return Fraction(Decimal(quantity.strip()))
        if isinstance(quantity, Decimal):
            return Fraction(quantity)
    except (InvalidOperation, ValueError, OverflowError):
        pass
    raise NormalizationError(f"{quantity!r} is not a finite decimal number", "quantity")


def _movement_type(raw: RawMovement, mapping: SourceMapping) -> MovementType | int:
    """The type the status code names, checked against any type the source gave as well."""
    kind = _MOVEMENT_TYPES.get(raw.type, raw.type)
    if not raw.status:
        return kind
    statuses = mapping.statuses
    status = statuses.get(raw.status) if statuses is not None else None
    if status is None:
        if kind and not (mapping.strict and statuses is not None):
            return kind  # lenient: a status nobody mapped adds nothing to a typed movement
        raise NormalizationError(
            f"status {raw.status!r} is not in the source's [statuses] table", "status")
    if kind and kind != status.type:
        name = kind.name if isinstance(kind, MovementType) else kind
        raise NormalizationError(
            f"is {name}, but status {raw.status!r} means {status.type.name}", "type")
    return status.type
