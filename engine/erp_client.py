"""The ERP as the sync job and reconciliation see it: post adjustments, page through on-hand.

`ErpAdapter` is the whole interface; `RestErp` speaks the generic REST contract of DESIGN
section 5. An adapter to a real ERP is one small class with the same two methods that
translates (README, "ERP adapters").
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple, Protocol

import aiohttp

ADJUSTMENTS_PATH = "/api/v1/inventory/adjustments"
ON_HAND_PATH = "/api/v1/inventory/on-hand"
ON_HAND_PAGE_ITEMS = 1000
# A page read that the ERP does not answer (down, rate limited) is tried this often.
PAGE_ATTEMPTS = 8
# A response body kept for a dead letter or an error message is cut to this length.
BODY_CHARS_MAX = 2000


class AdjustmentLine(NamedTuple):
    sku: str
    location: str
    on_hand_delta: int
    committed_delta: int


class OnHand(NamedTuple):
    sku: str
    location: str
    on_hand: int


class ErpRetryLater(Exception):
    """The ERP did not take the call (down, slow, rate limited); the same call may be retried.

    `retry_after_s` is the ERP's own Retry-After when it gave one.
    """

    def __init__(self, reason: str, retry_after_s: float | None = None,
                 rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retry_after_s, self.rate_limited = retry_after_s, rate_limited


class ErpRejected(Exception):
    """The ERP refused the call itself (a 4xx other than 429): retrying cannot help."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"ERP answered {status}: {body[:200]}")
        self.status, self.body = status, body


class ErpAdapter(Protocol):
    """What the engine needs of an ERP."""

    async def post_adjustments(self, idempotency_key: str, batch_id: str,
                               lines: Sequence[AdjustmentLine]) -> None:
        """Apply the lines once per key; raise ErpRetryLater or ErpRejected if not taken."""

    def on_hand(self) -> AsyncIterator[OnHand]:
        """Every SKU-location the ERP holds, with its on-hand figure."""

    async def close(self) -> None:
        """Release connections."""


class RestErp:
    """The generic REST contract (DESIGN section 5), over one pooled aiohttp session."""

    def __init__(self, base_url: str, timeout_s: float = 10.0,
                 connections_max: int = 8) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            connector=aiohttp.TCPConnector(limit=connections_max))

    async def post_adjustments(self, idempotency_key: str, batch_id: str,
                               lines: Sequence[AdjustmentLine]) -> None:
        body = {"batch_id": batch_id, "lines": [line._asdict() for line in lines]}
        await self._call("POST", ADJUSTMENTS_PATH, json=body,
                         headers={"Idempotency-Key": idempotency_key}, read_json=False)

    async def on_hand(self) -> AsyncIterator[OnHand]:
        cursor = None
        while True:
            params = {"limit": str(ON_HAND_PAGE_ITEMS)}
            if cursor:
                params["cursor"] = cursor
            page = await self._page(params)
            for item in page["items"]:
                yield OnHand(str(item["sku"]), str(item["location"]), int(item["on_hand"]))
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def _page(self, params: dict) -> dict:
        """One page, waiting out a rate limit or a short outage as the ERP asks."""
        for attempt in range(PAGE_ATTEMPTS):
            try:
                return await self._call("GET", ON_HAND_PATH, params=params)
            except ErpRetryLater as error:
                if attempt == PAGE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(error.retry_after_s if error.retry_after_s is not None
                                    else min(0.2 * 2 ** attempt, 10.0))
        raise AssertionError("unreachable")

    async def _call(self, method: str, path: str, read_json: bool = True, **options) -> dict:
        """The answer's JSON (if `read_json`); an answer that is not JSON is retried."""
        try:
            async with self._session.request(method, self._base_url + path,
                                             **options) as response:
                text = await response.text()
                _raise_for(response.status, response.headers.get("Retry-After"), text)
                return json.loads(text) if read_json else {}
        except ValueError as error:
            raise ErpRetryLater(f"{method} {path}: the answer is not JSON: {error}") from error
        except (aiohttp.ClientError, TimeoutError) as error:
            # Sent or not, the same key makes a retry safe.
            raise ErpRetryLater(f"{method} {path}: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        await self._session.close()


def _raise_for(status: int, retry_after: str | None, body: str) -> None:
    if status < 300:
        return
    body = body[:BODY_CHARS_MAX]
    if status == 429:
        raise ErpRetryLater(f"rate limited: {body[:200]}", parse_retry_after_s(retry_after),
                            rate_limited=True)
    if status >= 500 or status == 408:
        raise ErpRetryLater(f"ERP answered {status}: {body[:200]}",
                            parse_retry_after_s(retry_after))
    raise ErpRejected(status, body)


def parse_retry_after_s(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))
