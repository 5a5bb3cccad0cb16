"""The ERP REST contract's request checks (DESIGN section 5): bodies, keys, cursors, limits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Big enough for 1,000 lines of 128-byte identifiers, small enough to hold in memory.
BODY_BYTES_MAX = 1 << 20
LINES_PER_BATCH_MAX = 1_000
IDENTIFIER_BYTES_MAX = 128
IDEMPOTENCY_KEY_BYTES_MAX = 255
# A net change far past any real stock movement, so a running total stays within int64.
DELTA_ABS_MAX = 1_000_000_000_000
ON_HAND_ABS_MAX = (1 << 63) - 1
PAGE_LIMIT_DEFAULT = 500
PAGE_LIMIT_MAX = 1_000
_BATCH_FIELDS = ("batch_id", "lines")
_LINE_FIELDS = ("sku", "location", "on_hand_delta", "committed_delta")


class ContractError(ValueError):
    """A request the contract refuses; `field` names what is wrong (400)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field

    def answer(self) -> dict:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class AdjustmentLine:
    sku: str
    location: str
    on_hand_delta: int
    committed_delta: int


@dataclass(frozen=True)
class AdjustmentBatch:
    """A checked adjustments body and the hash that identifies it for idempotency."""

    batch_id: str
    lines: tuple[AdjustmentLine, ...]
    body_hash: str

    def to_json(self) -> str:
        return canonical_json({"batch_id": self.batch_id,
                               "lines": [line.__dict__ for line in self.lines]})

    @classmethod
    def from_json(cls, text: str) -> AdjustmentBatch:
        """A batch stored by `to_json` (already checked once)."""
        body = json.loads(text)
        lines = tuple(AdjustmentLine(**line) for line in body["lines"])
        return cls(body["batch_id"], lines, body_hash(body))


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: dict) -> str:
    """Two bodies are the same request when their canonical JSON (sorted keys) is the same."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str:
    if value is None:
        raise ContractError(IDEMPOTENCY_HEADER, "header is required")
    check_text(IDEMPOTENCY_HEADER, value, IDEMPOTENCY_KEY_BYTES_MAX)
    return value


def parse_adjustments(raw: bytes) -> AdjustmentBatch:
    """The checked batch of a raw request body; ContractError names the first bad field."""
    if len(raw) > BODY_BYTES_MAX:
        raise ContractError("body", f"larger than {BODY_BYTES_MAX} bytes")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ContractError("body", f"not JSON ({error})") from None
    _check_fields("body", body, _BATCH_FIELDS)
    batch_id = check_text("batch_id", body["batch_id"], IDENTIFIER_BYTES_MAX)
    lines = body["lines"]
    if not isinstance(lines, list):
        raise ContractError("lines", "must be a list")
    if not 1 <= len(lines) <= LINES_PER_BATCH_MAX:
        raise ContractError("lines", f"must hold 1 to {LINES_PER_BATCH_MAX} lines, "
                                     f"not {len(lines)}")
    checked = tuple(_check_line(f"lines[{index}]", line) for index, line in enumerate(lines))
    return AdjustmentBatch(batch_id, checked, body_hash(body))


def _check_line(name: str, line) -> AdjustmentLine:
    _check_fields(name, line, _LINE_FIELDS)
    return AdjustmentLine(
        sku=check_text(f"{name}.sku", line["sku"], IDENTIFIER_BYTES_MAX),
        location=check_text(f"{name}.location", line["location"], IDENTIFIER_BYTES_MAX),
        on_hand_delta=check_int(f"{name}.on_hand_delta", line["on_hand_delta"], DELTA_ABS_MAX),
        committed_delta=check_int(f"{name}.committed_delta", line["committed_delta"],
                                  DELTA_ABS_MAX))


def _check_fields(name: str, value, expected: tuple[str, ...]) -> None:
    """An object with exactly the contract's fields: a typo is refused, not ignored."""
    if not isinstance(value, dict):
        raise ContractError(name, "must be a JSON object")
    prefix = "" if name == "body" else f"{name}."
    for field in expected:
        if field not in value:
            raise ContractError(f"{prefix}{field}", "is required")
    for field in value:
        if field not in expected:
            raise ContractError(f"{prefix}{field}", "is not a field of the contract")


def check_text(name: str, value, bytes_max: int) -> str:
    if not isinstance(value, str):
        raise ContractError(name, "must be a string")
    if not value:
        raise ContractError(name, "must not be empty")
    if len(value.encode()) > bytes_max:
        raise ContractError(name, f"longer than {bytes_max} bytes")
    if not value.isprintable():
        raise ContractError(name, "must be printable text")
    return value


def check_int(name: str, value, abs_max: int) -> int:
    """An integer (JSON true/false and 1.0 are not) within +-abs_max."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(name, "must be an integer")
    if abs(value) > abs_max:
        raise ContractError(name, f"must be within +-{abs_max}")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def parse_page_limit(value: str | None) -> int:
    if value is None:
        return PAGE_LIMIT_DEFAULT
    try:
        limit = int(value)
    except ValueError:
        raise ContractError("limit", "must be an integer") from None
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ContractError("limit", f"must be 1 to {PAGE_LIMIT_MAX}")
    return limit


def encode_cursor(sku: str, location: str) -> str:
    """Opaque to clients: the last (sku, location) a page gave, url-safe."""
    return base64.urlsafe_b64encode(canonical_json([sku, location]).encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, RecursionError):  # UnicodeError is a ValueError
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(part, str)
                                                              for part in key)):
        raise ContractError("cursor", "not a cursor this server gave")
    return key[0], key[1]
