from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReservationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATUS_UNSPECIFIED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_HELD: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_PARTIALLY_HELD: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_REJECTED: _ClassVar[ReservationStatus]

class ReservationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATE_UNSPECIFIED: _ClassVar[ReservationState]
    RESERVATION_STATE_HELD: _ClassVar[ReservationState]
    RESERVATION_STATE_COMMITTED: _ClassVar[ReservationState]
    RESERVATION_STATE_RELEASED: _ClassVar[ReservationState]
    RESERVATION_STATE_EXPIRED: _ClassVar[ReservationState]
    RESERVATION_STATE_SHIPPED: _ClassVar[ReservationState]

class LineCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINE_CODE_UNSPECIFIED: _ClassVar[LineCode]
    LINE_CODE_OK: _ClassVar[LineCode]
    LINE_CODE_INSUFFICIENT_AVAILABLE: _ClassVar[LineCode]
    LINE_CODE_UNKNOWN_ITEM: _ClassVar[LineCode]
    LINE_CODE_BACKORDERED: _ClassVar[LineCode]

class MovementType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVEMENT_TYPE_UNSPECIFIED: _ClassVar[MovementType]
    MOVEMENT_TYPE_RECEIPT: _ClassVar[MovementType]
    MOVEMENT_TYPE_INBOUND_EXPECTED: _ClassVar[MovementType]
    MOVEMENT_TYPE_ADJUSTMENT: _ClassVar[MovementType]
    MOVEMENT_TYPE_CYCLE_COUNT: _ClassVar[MovementType]
    MOVEMENT_TYPE_SALE: _ClassVar[MovementType]
    MOVEMENT_TYPE_SHIPMENT: _ClassVar[MovementType]
    MOVEMENT_TYPE_RETURN_RECEIVED: _ClassVar[MovementType]
    MOVEMENT_TYPE_RETURN_RESTOCKED: _ClassVar[MovementType]
    MOVEMENT_TYPE_RETURN_SCRAPPED: _ClassVar[MovementType]
    MOVEMENT_TYPE_DAMAGE: _ClassVar[MovementType]
    MOVEMENT_TYPE_TRANSFER_OUT: _ClassVar[MovementType]
    MOVEMENT_TYPE_TRANSFER_IN: _ClassVar[MovementType]
    MOVEMENT_TYPE_SAFETY_STOCK_SET: _ClassVar[MovementType]

class MovementCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVEMENT_CODE_UNSPECIFIED: _ClassVar[MovementCode]
    MOVEMENT_CODE_APPLIED: _ClassVar[MovementCode]
    MOVEMENT_CODE_DUPLICATE: _ClassVar[MovementCode]
    MOVEMENT_CODE_REJECTED: _ClassVar[MovementCode]

class UpdateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPDATE_KIND_UNSPECIFIED: _ClassVar[UpdateKind]
    UPDATE_KIND_SNAPSHOT: _ClassVar[UpdateKind]
    UPDATE_KIND_SNAPSHOT_COMPLETE: _ClassVar[UpdateKind]
    UPDATE_KIND_CHANGE: _ClassVar[UpdateKind]

class FenceAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FENCE_ACTION_UNSPECIFIED: _ClassVar[FenceAction]
    FENCE_ACTION_SHOWN: _ClassVar[FenceAction]
    FENCE_ACTION_SETTLE: _ClassVar[FenceAction]
RESERVATION_STATUS_UNSPECIFIED: ReservationStatus
RESERVATION_STATUS_HELD: ReservationStatus
RESERVATION_STATUS_PARTIALLY_HELD: ReservationStatus
RESERVATION_STATUS_REJECTED: ReservationStatus
RESERVATION_STATE_UNSPECIFIED: ReservationState
RESERVATION_STATE_HELD: ReservationState
RESERVATION_STATE_COMMITTED: ReservationState
RESERVATION_STATE_RELEASED: ReservationState
RESERVATION_STATE_EXPIRED: ReservationState
RESERVATION_STATE_SHIPPED: ReservationState
LINE_CODE_UNSPECIFIED: LineCode
LINE_CODE_OK: LineCode
LINE_CODE_INSUFFICIENT_AVAILABLE: LineCode
LINE_CODE_UNKNOWN_ITEM: LineCode
LINE_CODE_BACKORDERED: LineCode
MOVEMENT_TYPE_UNSPECIFIED: MovementType
MOVEMENT_TYPE_RECEIPT: MovementType
MOVEMENT_TYPE_INBOUND_EXPECTED: MovementType
MOVEMENT_TYPE_ADJUSTMENT: MovementType
MOVEMENT_TYPE_CYCLE_COUNT: MovementType
MOVEMENT_TYPE_SALE: MovementType
MOVEMENT_TYPE_SHIPMENT: MovementType
MOVEMENT_TYPE_RETURN_RECEIVED: MovementType
MOVEMENT_TYPE_RETURN_RESTOCKED: MovementType
MOVEMENT_TYPE_RETURN_SCRAPPED: MovementType
MOVEMENT_TYPE_DAMAGE: MovementType
MOVEMENT_TYPE_TRANSFER_OUT: MovementType
MOVEMENT_TYPE_TRANSFER_IN: MovementType
MOVEMENT_TYPE_SAFETY_STOCK_SET: MovementType
MOVEMENT_CODE_UNSPECIFIED: MovementCode
MOVEMENT_CODE_APPLIED: MovementCode
MOVEMENT_CODE_DUPLICATE: MovementCode
MOVEMENT_CODE_REJECTED: MovementCode
UPDATE_KIND_UNSPECIFIED: UpdateKind
UPDATE_KIND_SNAPSHOT: UpdateKind
UPDATE_KIND_SNAPSHOT_COMPLETE: UpdateKind
UPDATE_KIND_CHANGE: UpdateKind
FENCE_ACTION_UNSPECIFIED: FenceAction
FENCE_ACTION_SHOWN: FenceAction
FENCE_ACTION_SETTLE: FenceAction

class ReserveLine(_message.Message):
    __slots__ = ("sku", "location", "quantity")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: str
    quantity: int
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("idempotency_key", "channel", "order_ref", "lines", "ttl_seconds", "allow_partial", "correlation_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ORDER_REF_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    channel: str
    order_ref: str
    lines: _containers.RepeatedCompositeFieldContainer[ReserveLine]
    ttl_seconds: int
    allow_partial: bool
    correlation_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., channel: _Optional[str] = ..., order_ref: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReserveLine, _Mapping]]] = ..., ttl_seconds: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class LineResult(_message.Message):
    __slots__ = ("sku", "location", "requested", "reserved", "code", "available_after", "backordered")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: str
    requested: int
    reserved: int
    code: LineCode
    available_after: int
    backordered: int
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ..., requested: _Optional[int] = ..., reserved: _Optional[int] = ..., code: _Optional[_Union[LineCode, str]] = ..., available_after: _Optional[int] = ..., backordered: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("reservation_id", "status", "lines", "expires_at_unix_ms")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    status: ReservationStatus
    lines: _containers.RepeatedCompositeFieldContainer[LineResult]
    expires_at_unix_ms: int
    def __init__(self, reservation_id: _Optional[str] = ..., status: _Optional[_Union[ReservationStatus, str]] = ..., lines: _Optional[_Iterable[_Union[LineResult, _Mapping]]] = ..., expires_at_unix_ms: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("reservation_id", "idempotency_key", "order_ref")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ORDER_REF_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    idempotency_key: str
    order_ref: str
    def __init__(self, reservation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., order_ref: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("reservation_id", "state")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    state: ReservationState
    def __init__(self, reservation_id: _Optional[str] = ..., state: _Optional[_Union[ReservationState, str]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("reservation_id", "idempotency_key", "reason")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    idempotency_key: str
    reason: str
    def __init__(self, reservation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("reservation_id", "state")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    state: ReservationState
    def __init__(self, reservation_id: _Optional[str] = ..., state: _Optional[_Union[ReservationState, str]] = ...) -> None: ...

class ItemRef(_message.Message):
    __slots__ = ("sku", "location")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: str
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class GetAvailabilityRequest(_message.Message):
    __slots__ = ("items", "channel", "explain")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ItemRef]
    channel: str
    explain: bool
    def __init__(self, items: _Optional[_Iterable[_Union[ItemRef, _Mapping]]] = ..., channel: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class ItemAvailability(_message.Message):
    __slots__ = ("sku", "location", "on_hand", "reserved", "committed", "safety_stock", "damaged", "quality_control", "incoming", "available_to_sell", "known", "explanation", "backordered")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    SAFETY_STOCK_FIELD_NUMBER: _ClassVar[int]
    DAMAGED_FIELD_NUMBER: _ClassVar[int]
    QUALITY_CONTROL_FIELD_NUMBER: _ClassVar[int]
    INCOMING_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_TO_SELL_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_FIELD_NUMBER: _ClassVar[int]
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
    explanation: Explanation
    backordered: int
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ..., on_hand: _Optional[int] = ..., reserved: _Optional[int] = ..., committed: _Optional[int] = ..., safety_stock: _Optional[int] = ..., damaged: _Optional[int] = ..., quality_control: _Optional[int] = ..., incoming: _Optional[int] = ..., available_to_sell: _Optional[int] = ..., known: _Optional[bool] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., backordered: _Optional[int] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("terms", "recent", "earliest_hold_expires_at_unix_ms")
    TERMS_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    EARLIEST_HOLD_EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[ExplanationTerm]
    recent: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    earliest_hold_expires_at_unix_ms: int
    def __init__(self, terms: _Optional[_Iterable[_Union[ExplanationTerm, _Mapping]]] = ..., recent: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., earliest_hold_expires_at_unix_ms: _Optional[int] = ...) -> None: ...

class ExplanationTerm(_message.Message):
    __slots__ = ("name", "quantity")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    quantity: int
    def __init__(self, name: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("seq", "at_unix_ms", "what", "quantity", "key", "source", "correlation_id")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    WHAT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at_unix_ms: int
    what: str
    quantity: int
    key: str
    source: str
    correlation_id: str
    def __init__(self, seq: _Optional[int] = ..., at_unix_ms: _Optional[int] = ..., what: _Optional[str] = ..., quantity: _Optional[int] = ..., key: _Optional[str] = ..., source: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class GetAvailabilityResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ItemAvailability]
    def __init__(self, items: _Optional[_Iterable[_Union[ItemAvailability, _Mapping]]] = ...) -> None: ...

class Movement(_message.Message):
    __slots__ = ("event_id", "source", "type", "sku", "location", "quantity", "occurred_at_unix_ms", "reason", "order_ref", "reservation_id", "source_sequence", "correlation_id", "destination_location", "unit_of_measure", "status")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORDER_REF_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_LOCATION_FIELD_NUMBER: _ClassVar[int]
    UNIT_OF_MEASURE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    source: str
    type: MovementType
    sku: str
    location: str
    quantity: int
    occurred_at_unix_ms: int
    reason: str
    order_ref: str
    reservation_id: str
    source_sequence: int
    correlation_id: str
    destination_location: str
    unit_of_measure: str
    status: str
    def __init__(self, event_id: _Optional[str] = ..., source: _Optional[str] = ..., type: _Optional[_Union[MovementType, str]] = ..., sku: _Optional[str] = ..., location: _Optional[str] = ..., quantity: _Optional[int] = ..., occurred_at_unix_ms: _Optional[int] = ..., reason: _Optional[str] = ..., order_ref: _Optional[str] = ..., reservation_id: _Optional[str] = ..., source_sequence: _Optional[int] = ..., correlation_id: _Optional[str] = ..., destination_location: _Optional[str] = ..., unit_of_measure: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ApplyMovementsRequest(_message.Message):
    __slots__ = ("movements",)
    MOVEMENTS_FIELD_NUMBER: _ClassVar[int]
    movements: _containers.RepeatedCompositeFieldContainer[Movement]
    def __init__(self, movements: _Optional[_Iterable[_Union[Movement, _Mapping]]] = ...) -> None: ...

class MovementResult(_message.Message):
    __slots__ = ("event_id", "code", "message")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    code: MovementCode
    message: str
    def __init__(self, event_id: _Optional[str] = ..., code: _Optional[_Union[MovementCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class ApplyMovementsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MovementResult]
    def __init__(self, results: _Optional[_Iterable[_Union[MovementResult, _Mapping]]] = ...) -> None: ...

class WatchAvailabilityRequest(_message.Message):
    __slots__ = ("channel", "skus", "resume_after_sequence", "resume_stream_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESUME_STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    channel: str
    skus: _containers.RepeatedScalarFieldContainer[str]
    resume_after_sequence: int
    resume_stream_id: str
    def __init__(self, channel: _Optional[str] = ..., skus: _Optional[_Iterable[str]] = ..., resume_after_sequence: _Optional[int] = ..., resume_stream_id: _Optional[str] = ...) -> None: ...

class AvailabilityUpdate(_message.Message):
    __slots__ = ("channel", "sku", "location", "available_to_sell", "sequence", "updated_at_unix_ms", "kind", "stream_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_TO_SELL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    channel: str
    sku: str
    location: str
    available_to_sell: int
    sequence: int
    updated_at_unix_ms: int
    kind: UpdateKind
    stream_id: str
    def __init__(self, channel: _Optional[str] = ..., sku: _Optional[str] = ..., location: _Optional[str] = ..., available_to_sell: _Optional[int] = ..., sequence: _Optional[int] = ..., updated_at_unix_ms: _Optional[int] = ..., kind: _Optional[_Union[UpdateKind, str]] = ..., stream_id: _Optional[str] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[BatchCommand]
    def __init__(self, commands: _Optional[_Iterable[_Union[BatchCommand, _Mapping]]] = ...) -> None: ...

class BatchCommand(_message.Message):
    __slots__ = ("reserve", "commit", "release")
    RESERVE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    reserve: ReserveRequest
    commit: CommitRequest
    release: ReleaseRequest
    def __init__(self, reserve: _Optional[_Union[ReserveRequest, _Mapping]] = ..., commit: _Optional[_Union[CommitRequest, _Mapping]] = ..., release: _Optional[_Union[ReleaseRequest, _Mapping]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("status_code", "status_message", "reserve", "commit", "release")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESERVE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    status_message: str
    reserve: ReserveResponse
    commit: CommitResponse
    release: ReleaseResponse
    def __init__(self, status_code: _Optional[int] = ..., status_message: _Optional[str] = ..., reserve: _Optional[_Union[ReserveResponse, _Mapping]] = ..., commit: _Optional[_Union[CommitResponse, _Mapping]] = ..., release: _Optional[_Union[ReleaseResponse, _Mapping]] = ...) -> None: ...

class FenceItem(_message.Message):
    __slots__ = ("sku", "location", "units")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: str
    units: int
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ..., units: _Optional[int] = ...) -> None: ...

class FenceChannelRequest(_message.Message):
    __slots__ = ("channel", "action", "publish_seq", "items")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_SEQ_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    action: FenceAction
    publish_seq: int
    items: _containers.RepeatedCompositeFieldContainer[FenceItem]
    def __init__(self, channel: _Optional[str] = ..., action: _Optional[_Union[FenceAction, str]] = ..., publish_seq: _Optional[int] = ..., items: _Optional[_Iterable[_Union[FenceItem, _Mapping]]] = ...) -> None: ...

class FenceChannelResponse(_message.Message):
    __slots__ = ("rows", "skipped")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    rows: int
    skipped: bool
    def __init__(self, rows: _Optional[int] = ..., skipped: _Optional[bool] = ...) -> None: ...
