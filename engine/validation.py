"""Check every request against DESIGN section 5's limits before anything is routed."""

from __future__ import annotations

from collections.abc import Sequence

from engine.config import RequestLimits
from engine.model import (
    Commit,
    FenceShown,
    GetAvailability,
    Movement,
    MovementType,
    Release,
    Reserve,
    ReserveLine,
    SettleFences,
)

DEFAULT_LIMITS = RequestLimits()
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
# A count may find nothing and a safety stock may be lifted, so these two allow a quantity of 0.
_ZERO_ALLOWED = (MovementType.CYCLE_COUNT, MovementType.SAFETY_STOCK_SET)


class ValidationError(ValueError):
    """A request field that breaks a rule; the gateway answers INVALID_ARGUMENT with str(self)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def __reduce__(self):
        # The default would call ValidationError(message) and lose field and rule.
        return (type(self), (self.field, self.rule))


def validate_reserve(cmd: Reserve, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise a Reserve's first broken rule; reservation_id is the server's, so it is unchecked."""
    _identifier("idempotency_key", cmd.idempotency_key, limits)
    _identifier("channel", cmd.channel, limits, required=False)
    _identifier("order_ref", cmd.order_ref, limits, required=False)
    _count("lines", cmd.lines, limits.lines_per_request_max)
    first_line: dict[tuple[str, str], int] = {}
    for i, line in enumerate(cmd.lines):
        _reserve_line(f"lines[{i}]", line, limits)
        earlier = first_line.setdefault((line.sku, line.location), i)
        if earlier != i:
            rule = f"repeats the sku and location of lines[{earlier}]"
            raise ValidationError(f"lines[{i}]", rule)
    _int_in("ttl_seconds", cmd.ttl_seconds, 0, limits.ttl_seconds_max)
    if not isinstance(cmd.allow_partial, bool):
        raise ValidationError("allow_partial", "must be true or false")
    _identifier("correlation_id", cmd.correlation_id, limits, required=False)


def validate_commit(cmd: Commit, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise the first broken rule of a Commit."""
    _identifier("reservation_id", cmd.reservation_id, limits)
    _identifier("idempotency_key", cmd.idempotency_key, limits)
    _identifier("order_ref", cmd.order_ref, limits, required=False)


def validate_release(cmd: Release, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise the first broken rule of a Release."""
    _identifier("reservation_id", cmd.reservation_id, limits)
    _identifier("idempotency_key", cmd.idempotency_key, limits)
    _identifier("reason", cmd.reason, limits, required=False)


def validate_movements(
    movements: Sequence[Movement], limits: RequestLimits = DEFAULT_LIMITS
) -> None:
    """Raise the first broken rule of an ApplyMovements request."""
    validate_movement_count(movements, limits)
    for i, movement in enumerate(movements):
        if not _plainly_valid(movement, limits):
            _movement(f"movements[{i}].", movement, limits)


def validate_movement(movement: Movement, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise the first broken rule of one movement, naming its field without a prefix."""
    if not _plainly_valid(movement, limits):
        _movement("", movement, limits)


def validate_movement_count(
    movements: Sequence[object], limits: RequestLimits = DEFAULT_LIMITS
) -> None:
    """Raise unless a request has 1 to the limit of movements: checked before any is normalized."""
    _count("movements", movements, limits.movements_per_request_max)


def validate_get_availability(
    query: GetAvailability, limits: RequestLimits = DEFAULT_LIMITS
) -> None:
    """Raise the first broken rule of a GetAvailability query."""
    _count("items", query.items, limits.items_per_query_max)
    for i, item in enumerate(query.items):
        _identifier(f"items[{i}].sku", item.sku, limits)
        _identifier(f"items[{i}].location", item.location, limits)
    _identifier("channel", query.channel, limits, required=False)


def validate_fence(cmd: FenceShown | SettleFences,
                   limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise the first broken rule of a FenceShown or SettleFences (ring-fencing is the
    partition's to check, against the rules in force)."""
    _identifier("channel", cmd.channel, limits, required=False)
    _int_in("publish_seq", cmd.publish_seq, 0, UINT64_MAX)
    if type(cmd) is SettleFences:
        return
    _count("items", cmd.items, limits.fence_items_per_request_max)
    first_item: dict[tuple[str, str], int] = {}
    for i, item in enumerate(cmd.items):
        _identifier(f"items[{i}].sku", item.sku, limits)
        _identifier(f"items[{i}].location", item.location, limits)
        _int_in(f"items[{i}].units", item.units, 0, limits.quantity_max)
        earlier = first_item.setdefault((item.sku, item.location), i)
        if earlier != i:
            raise ValidationError(f"items[{i}]", f"repeats the sku and location of "
                                                 f"items[{earlier}]")


def validate_watch(skus: Sequence[str], limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise the first broken rule of a WatchAvailability request's SKUs."""
    if len(skus) > limits.items_per_query_max:
        raise ValidationError("skus", f"at most {limits.items_per_query_max} per watch")
    for i, sku in enumerate(skus):
        _identifier(f"skus[{i}]", sku, limits)


def _reserve_line(field: str, line: ReserveLine, limits: RequestLimits) -> None:
    _identifier(f"{field}.sku", line.sku, limits)
    # Empty: sourced from the channel's location group ("reserve anywhere").
    _identifier(f"{field}.location", line.location, limits, required=False)
    _int_in(f"{field}.quantity", line.quantity, 1, limits.quantity_max)


def _movement(prefix: str, m: Movement, limits: RequestLimits) -> None:
    _identifier(f"{prefix}event_id", m.event_id, limits)
    _identifier(f"{prefix}source", m.source, limits)
    kind = _movement_type(f"{prefix}type", m.type)
    _identifier(f"{prefix}sku", m.sku, limits)
    _identifier(f"{prefix}location", m.location, limits)
    _movement_quantity(f"{prefix}quantity", kind, m.quantity, limits.quantity_max)
    earliest_ms = 1 if kind is MovementType.CYCLE_COUNT else 0
    _int_in(f"{prefix}occurred_at_unix_ms", m.occurred_at_unix_ms, earliest_ms, INT64_MAX)
    for name in ("reason", "order_ref", "reservation_id"):
        _identifier(f"{prefix}{name}", getattr(m, name), limits, required=False)
    _int_in(f"{prefix}source_sequence", m.source_sequence, 0, UINT64_MAX)
    _identifier(f"{prefix}correlation_id", m.correlation_id, limits, required=False)
    field = f"{prefix}destination_location"
    _identifier(field, m.destination_location, limits, required=False)
    if kind is MovementType.TRANSFER_OUT:
        if not m.destination_location:
            raise ValidationError(field, "is required for TRANSFER_OUT")
        if m.destination_location == m.location:
            raise ValidationError(field, "must differ from location")


def _plainly_valid(m: Movement, limits: RequestLimits) -> bool:
    """True when `m` surely keeps every rule of _movement, checked in one cheap pass.

    It covers the common case only: ASCII text, exact ints, a positive quantity. False
    means "not surely": _movement then finds the broken rule, if any, and names it.
    """
    try:
        (event_id, source, kind, sku, location, quantity, occurred_at_unix_ms, reason,
         order_ref, reservation_id, source_sequence, correlation_id, destination) = m
        # Printable and ASCII hold for the whole iff for every part; with ASCII, a length
        # in characters is one in bytes. A part that is not a string raises TypeError.
        text = (event_id + source + sku + location + reason + order_ref + reservation_id
                + correlation_id + destination)
    except (TypeError, ValueError):
        return False
    size_max = limits.identifier_bytes_max
    return (type(kind) is MovementType and text.isascii() and text.isprintable()
            and 0 < len(event_id) <= size_max and 0 < len(source) <= size_max
            and 0 < len(sku) <= size_max and 0 < len(location) <= size_max
            and len(reason) <= size_max and len(order_ref) <= size_max
            and len(reservation_id) <= size_max and len(correlation_id) <= size_max
            and len(destination) <= size_max
            and type(quantity) is int and 1 <= quantity <= limits.quantity_max
            and type(occurred_at_unix_ms) is int and 0 <= occurred_at_unix_ms <= INT64_MAX
            and (occurred_at_unix_ms or kind is not MovementType.CYCLE_COUNT)
            and type(source_sequence) is int and 0 <= source_sequence <= UINT64_MAX
            and (kind is not MovementType.TRANSFER_OUT
                 or (destination and destination != location)))


def _movement_type(field: str, value: object) -> MovementType:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return MovementType(value)
        except ValueError:
            pass
    low, high = min(MovementType), max(MovementType)
    raise ValidationError(field, f"must be a MovementType between {low:d} and {high:d}")


def _movement_quantity(field: str, kind: MovementType, value: object, quantity_max: int) -> None:
    if kind is not MovementType.ADJUSTMENT:
        _int_in(field, value, 0 if kind in _ZERO_ALLOWED else 1, quantity_max)
        return
    # Signed; a zero adjustment changes nothing, so it points at a bug in the source.
    rule = f"must be a nonzero integer between -{quantity_max} and {quantity_max}"
    if value == 0:
        raise ValidationError(field, rule)
    _int_in(field, value, -quantity_max, quantity_max)


def _count(field: str, items: Sequence[object], count_max: int) -> None:
    if not 1 <= len(items) <= count_max:
        raise ValidationError(field, f"must have between 1 and {count_max} entries")


def _int_in(field: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass, and True must not pass for a quantity of 1.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationError(field, f"must be an integer between {low} and {high}")


def _identifier(field: str, value: object, limits: RequestLimits, required: bool = True) -> None:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if not value.isprintable():
        raise ValidationError(field, "must contain only printable characters")
    # Only now encode: a lone surrogate is not printable, so it never reaches encode().
    size_bytes = len(value.encode("utf-8"))
    size_max = limits.identifier_bytes_max
    if required and not 1 <= size_bytes <= size_max:
        raise ValidationError(field, f"must be between 1 and {size_max} bytes of UTF-8")
    if size_bytes > size_max:
        raise ValidationError(field, f"must be empty or at most {size_max} bytes of UTF-8")
