"""The canonical inventory model: quantity states, commands and their results."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

# Column order of a partition's quantities; `available_to_sell` is derived, never stored.
QUANTITIES = (
    "on_hand",
    "reserved",
    "committed",
    "safety_stock",
    "damaged",
    "quality_control",
    "incoming",
)
# Quantities that `available_to_sell` subtracts from `on_hand`.
NOT_SELLABLE = ("reserved", "committed", "safety_stock", "damaged", "quality_control")


class MovementType(IntEnum):
    """A stock movement; values match the wire enum `inventory.v1.MovementType`."""

    RECEIPT = 1
    INBOUND_EXPECTED = 2
    ADJUSTMENT = 3
    CYCLE_COUNT = 4
    SALE = 5
    SHIPMENT = 6
    RETURN_RECEIVED = 7
    RETURN_RESTOCKED = 8
    RETURN_SCRAPPED = 9
    DAMAGE = 10
    TRANSFER_OUT = 11
    TRANSFER_IN = 12
    SAFETY_STOCK_SET = 13


class ReservationStatus(IntEnum):
    """How much of a Reserve was granted."""

    HELD = 1
    PARTIALLY_HELD = 2
    REJECTED = 3


class ReservationState(IntEnum):
    """Where a reservation is in its life."""

    HELD = 1
    COMMITTED = 2
    RELEASED = 3
    EXPIRED = 4
    SHIPPED = 5


class LineCode(IntEnum):
    """The outcome of one reservation line."""

    OK = 1
    INSUFFICIENT_AVAILABLE = 2
    UNKNOWN_ITEM = 3
    BACKORDERED = 4


class MovementCode(IntEnum):
    """The outcome of one movement."""

    APPLIED = 1
    DUPLICATE = 2
    REJECTED = 3


class Outcome(IntEnum):
    """Whether a command was answered, or refused and why (the edge maps it to a status)."""

    OK = 0
    IDEMPOTENCY_CONFLICT = 1  # the key was used before with another payload
    NOT_FOUND = 2  # no such reservation
    FAILED_PRECONDITION = 3  # the reservation is in a state that refuses the command
    INVALID = 4  # well-formed but inconsistent with partition state


# ---- commands -------------------------------------------------------------------------
# Commands mirror the wire requests field for field, so validation errors name wire fields.


class ReserveLine(NamedTuple):
    sku: str
    location: str
    quantity: int


class Reserve(NamedTuple):
    """Hold stock for a cart; `reservation_id` is minted by the caller's id source."""

    idempotency_key: str
    reservation_id: str
    lines: tuple[ReserveLine, ...]
    ttl_seconds: int = 0  # 0 means the partition's default
    allow_partial: bool = False
    channel: str = ""
    order_ref: str = ""
    correlation_id: str = ""

    def payload(self) -> tuple:
        return ("reserve", tuple(self.lines), self.ttl_seconds, self.allow_partial,
                self.channel, self.order_ref)


class Commit(NamedTuple):
    """Turn a held reservation into committed stock of a placed order."""

    reservation_id: str
    idempotency_key: str
    order_ref: str = ""

    def payload(self) -> tuple:
        return ("commit", self.reservation_id, self.order_ref)


class Release(NamedTuple):
    """Give a held or committed reservation's stock back."""

    reservation_id: str
    idempotency_key: str
    reason: str = ""

    def payload(self) -> tuple:
        return ("release", self.reservation_id, self.reason)


class ConfirmHold(NamedTuple):
    """Give a tentative hold (one part of a cart that spans partitions) its final expiry."""

    reservation_id: str
    idempotency_key: str
    expires_at_unix_ms: int

    def payload(self) -> tuple:
        return ("confirm", self.reservation_id)


class Expire(NamedTuple):
    """Sweep the holds that are due at the batch's `now_ms`."""


class Movement(NamedTuple):
    """A stock movement from a source system; `event_id` is its idempotency key."""

    event_id: str
    source: str
    type: MovementType
    sku: str
    location: str
    quantity: int
    occurred_at_unix_ms: int = 0  # 0 means "when applied"
    reason: str = ""
    order_ref: str = ""
    reservation_id: str = ""
    source_sequence: int = 0
    correlation_id: str = ""
    destination_location: str = ""

    @property
    def idempotency_key(self) -> str:
        return self.event_id

    def payload(self) -> tuple:
        # correlation_id identifies an attempt, not the movement, so it is left out.
        return ("movement",) + self[1:11] + (self.destination_location,)


class ItemRef(NamedTuple):
    sku: str
    location: str


class GetAvailability(NamedTuple):
    """Read the quantities of some SKU-locations; consumes no sequence number."""

    items: tuple[ItemRef, ...]
    channel: str = ""
    explain: bool = False


class SetChannelRules(NamedTuple):
    """Put channel rules in force from this point of the partition's history.

    The rules decide what a channel's Reserve is granted, so they are state: a journal
    replays each Reserve under the rules it met, whatever file the engine restarts with.
    """

    rules_json: str


class FenceItem(NamedTuple):
    """A figure published to a ring-fenced channel at one SKU-location."""

    sku: str
    location: str
    units: int


class FenceShown(NamedTuple):
    """A ring-fenced channel is about to be shown these figures: per row, `shown = units`
    and `fence = max(fence, units)`, so the old promise stays covered while the channel may
    still act on the old figure. Publish numbers increase per channel."""

    channel: str
    items: tuple[FenceItem, ...]
    publish_seq: int


class SettleFences(NamedTuple):
    """The channel has had time to apply publish `publish_seq`: `fence = min(fence, shown)`
    at its rows, unless a later FenceShown for it arrived here (that one settles later)."""

    channel: str
    publish_seq: int


class WatchChanges(NamedTuple):
    """Read the channel figures of every SKU-location changed since `cursor`."""

    channels: tuple[str, ...]
    # The cursor of the previous answer: its ring instance ("" at first) and total.
    ring: str = ""
    total: int = 0


class WatchSnapshot(NamedTuple):
    """Read a page of channel figures: the named SKUs, or every SKU from `after` on."""

    channels: tuple[str, ...]
    skus: tuple[str, ...] = ()
    after: int = 0  # SKUs of the partition already paged through
    limit: int = 1_000


Command = (Reserve | Commit | Release | ConfirmHold | Expire | Movement | GetAvailability
           | SetChannelRules | WatchChanges | WatchSnapshot | FenceShown | SettleFences)
# Commands that change nothing, take no sequence number and are never journaled.
READS = (GetAvailability, WatchChanges, WatchSnapshot)

# ---- results --------------------------------------------------------------------------


class ChannelFigure(NamedTuple):
    """Channel figures of one SKU-location (location "" for the SKU's network figure),
    one per channel asked about, in that order."""

    sku: str
    location: str
    figures: tuple[int | None, ...]  # None where the channel does not sell


class WatchResult(NamedTuple):
    """Figures read for watchers; `refresh` says changes since the cursor were lost (a
    restarted partition, or more changes than the ring keeps): re-read everything."""

    outcome: Outcome
    ring: str  # the cursor to read changes from next: ring instance and total
    total: int
    refresh: bool
    figures: tuple[ChannelFigure, ...]
    next_after: int = -1  # for a snapshot page: where the next page starts; -1 when done


class Unavailable(NamedTuple):
    """A command the partition could not confirm durable, so it is not acknowledged.

    Usually it was refused unapplied; a write whose reply was lost or late may still
    have taken effect, so callers retry with the same idempotency key to learn which.
    """

    reason: str


class LedgerChange(NamedTuple):
    """What one batch did to a SKU-location's ledger quantities, per source of the change.

    The ERP keeps on_hand and committed; reservations change them with an empty source.
    """

    sku: str
    location: str
    on_hand_delta: int
    committed_delta: int
    source: str


class Explanation(NamedTuple):
    """How a SKU-location's available-to-sell comes about, and the changes behind it."""

    # (name, signed quantity): on_hand, then each deduction; they sum to available_to_sell.
    terms: tuple[tuple[str, int], ...]
    recent: tuple  # LedgerLine, newest first
    # When the earliest live hold lapses, for an item with nothing left to sell; else 0.
    earliest_hold_expires_at_ms: int


class LineResult(NamedTuple):
    sku: str
    location: str
    requested: int
    reserved: int
    code: LineCode
    available_after: int
    backordered: int = 0


class ReserveResult(NamedTuple):
    outcome: Outcome
    reservation_id: str
    status: ReservationStatus | None
    lines: tuple[LineResult, ...]
    expires_at_unix_ms: int
    message: str = ""


class ReservationResult(NamedTuple):
    """The answer to Commit, Release and ConfirmHold."""

    outcome: Outcome
    reservation_id: str
    state: ReservationState | None
    message: str = ""
    expires_at_unix_ms: int = 0  # set by ConfirmHold: when the hold now falls due


class ExpireResult(NamedTuple):
    outcome: Outcome
    expired: int


class MovementResult(NamedTuple):
    outcome: Outcome
    event_id: str
    code: MovementCode
    message: str = ""


class ItemAvailability(NamedTuple):
    sku: str
    location: str
    on_hand: int
    reserved: int
    committed: int
    safety_stock: int
    damaged: int
    quality_control: int
    incoming: int
    available_to_sell: int
    known: bool
    explanation: Explanation | None = None
    backordered: int = 0


class AvailabilityResult(NamedTuple):
    outcome: Outcome
    items: tuple[ItemAvailability, ...]
    message: str = ""


class RulesResult(NamedTuple):
    """Channel rules put in force: how many channels they name."""

    outcome: Outcome
    channels: int


class FenceResult(NamedTuple):
    """FenceShown or SettleFences applied: rows whose fence moved; `skipped`, a settle that
    a later publish overtook here."""

    outcome: Outcome
    rows: int
    skipped: bool = False
    message: str = ""


Result = (ReserveResult | ReservationResult | ExpireResult | MovementResult
          | AvailabilityResult | RulesResult | WatchResult | FenceResult)
