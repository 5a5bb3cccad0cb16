"""Reservations whose lines span partitions: tentative holds everywhere, then confirm or roll back.

Phase 1 sends each partition its part of the cart as a Reserve under one shared id
(`r<p>.<q>-<digest of key and cart>`) with a short TTL (`cart_tentative_ttl_s`). Phase 2
confirms every part (ConfirmHold sets the requested expiry) when the cart is held, or
releases every held part when it is not. Nothing coordinates the two phases but the
gateway, so a gateway that dies between them leaves tentative holds that simply lapse:
the partitions' sweep expires them within the tentative TTL plus one sweep interval.
Phase 2 runs to its end even if the caller goes away. A cart rolled back after any part
was held (a part lapsed before its confirmation, or a partition failed) is answered
ABORTED: its parts stay remembered under the caller's key, so only a new key can try
again. A retry with the same key replays the parts (every part keeps the caller's key,
and confirmations and rollbacks carry keys derived from it) instead of holding twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from engine.model import (
    Command,
    ConfirmHold,
    LineCode,
    LineResult,
    Outcome,
    Release,
    ReservationResult,
    ReservationStatus,
    Reserve,
    ReserveResult,
    Result,
)

# Sends one command to one partition through its lane.
Submit = Callable[[int, Command, float | None], Awaitable[Result]]
# The caller's keys are printable; a control character keeps derived keys apart from them.
_CONFIRM_SUFFIX, _ROLLBACK_SUFFIX = "\x1fconfirm", "\x1frollback"
# A part whose rollback could not be sent is tried again after these pauses.
ROLLBACK_RETRY_DELAYS_S = (0.1, 0.5, 2.0)
log = logging.getLogger(__name__)


class CartAborted(Exception):
    """A cart's tentative holds lapsed before they were confirmed; nothing stays held."""


async def reserve_cart(submit: Submit, follow_up: Submit, command: Reserve,
                       owners: Sequence[int], reservation_id: str, final_ttl_s: int,
                       tentative_ttl_s: int, now_ms: Callable[[], int], deadline: float | None,
                       confirm_delay_s: float = 0.0) -> ReserveResult:
    """Hold a cart whose line i lives on partition owners[i], all-or-nothing unless partial.

    `submit` sends the tentative parts; `follow_up` sends confirmations and rollbacks,
    which must not be refused for a full queue once holds exist.
    """
    lines_of: dict[int, list[int]] = {}
    for index, partition in enumerate(owners):
        lines_of.setdefault(partition, []).append(index)
    parts = {partition: command._replace(
        reservation_id=reservation_id, ttl_seconds=min(final_ttl_s, tentative_ttl_s),
        lines=tuple(command.lines[i] for i in indexes))
        for partition, indexes in lines_of.items()}
    answers = await asyncio.gather(*(submit(p, part, deadline) for p, part in parts.items()),
                                   return_exceptions=True)
    results = dict(zip(parts, answers, strict=True))
    held = [p for p, r in results.items()
            if isinstance(r, ReserveResult) and r.outcome is Outcome.OK
            and r.status is not ReservationStatus.REJECTED]
    # Parts answered under another id replay an earlier cart with this key: a conflict,
    # and only this attempt's own holds are rolled back.
    own = [p for p in held if results[p].reservation_id == reservation_id]
    if len(own) < len(held) or any(isinstance(r, ReserveResult) and r.outcome is
                                   Outcome.IDEMPOTENCY_CONFLICT for r in answers):
        await _roll_back(follow_up, command, results, own)
        return ReserveResult(Outcome.IDEMPOTENCY_CONFLICT, "", None, (), 0,
                             "idempotency_key was used with another payload")
    failure = next((r for r in answers if isinstance(r, BaseException)
                    or r.outcome is not Outcome.OK), None)
    if failure is not None:
        await _roll_back(follow_up, command, results, own)
        if not own and isinstance(failure, BaseException):
            raise failure  # nothing was held and nothing remembered: a plain retry is safe
        if not own:
            return failure
        # The parts rolled back are remembered as held under this key, so a retry with it
        # would replay holds that no longer exist: the caller must start again.
        raise CartAborted(f"a part of the cart could not be held ({_reason(failure)}); "
                          "nothing is held, retry with a new idempotency_key")
    complete = all(r.status is ReservationStatus.HELD for r in answers)
    if not (complete or (command.allow_partial and held)):
        await _roll_back(follow_up, command, results, held)
        return _merge(command, lines_of, results, rolled_back=held, expires_at_ms=0)
    if confirm_delay_s:
        await asyncio.sleep(confirm_delay_s)
    expires_at_ms = await _confirm(follow_up, command, results, held,
                                   now_ms() + 1000 * final_ttl_s)
    return _merge(command, lines_of, results, rolled_back=(), expires_at_ms=expires_at_ms)


async def _confirm(submit: Submit, command: Reserve, results: dict, held: list[int],
                   expires_at_ms: int) -> int:
    """Give every held part its final expiry; roll all back if one has lapsed meanwhile."""
    key = command.idempotency_key + _CONFIRM_SUFFIX
    answers = await asyncio.gather(*(
        submit(p, ConfirmHold(results[p].reservation_id, key, expires_at_ms), None)
        for p in held), return_exceptions=True)
    if all(isinstance(a, ReservationResult) and a.outcome is Outcome.OK for a in answers):
        return max(a.expires_at_unix_ms for a in answers)
    await _roll_back(submit, command, results, held)
    failure = next(a for a in answers if isinstance(a, BaseException)
                   or a.outcome is not Outcome.OK)
    raise CartAborted(f"the cart could not be confirmed ({_reason(failure)}); nothing is "
                      "held, retry with a new idempotency_key")


def _reason(failure: BaseException | Result) -> str:
    if isinstance(failure, BaseException):
        return str(failure) or type(failure).__name__
    return failure.message or failure.outcome.name.lower()


async def _roll_back(submit: Submit, command: Reserve, results: dict,
                     held: Sequence[int]) -> None:
    """Release the parts that were held, retrying a part that could not be reached for a
    while (it may hold a confirmed hold); one still unreachable lapses on its own."""
    key = command.idempotency_key + _ROLLBACK_SUFFIX
    pending = list(held)
    for delay_s in (*ROLLBACK_RETRY_DELAYS_S, None):
        answers = await asyncio.gather(*(
            submit(p, Release(results[p].reservation_id, key, "cart rolled back"), None)
            for p in pending), return_exceptions=True)
        pending = [p for p, answer in zip(pending, answers, strict=True)
                   if isinstance(answer, BaseException)]
        if not pending or delay_s is None:
            break
        await asyncio.sleep(delay_s)
    for partition in pending:
        log.warning("rollback of cart part on partition %s failed; its hold lapses on its "
                    "own", partition)


def _merge(command: Reserve, lines_of: dict[int, list[int]], results: dict,
           rolled_back: Sequence[int], expires_at_ms: int) -> ReserveResult:
    """One ReserveResult with lines in request order, as a single partition would answer."""
    lines: list[LineResult | None] = [None] * len(command.lines)
    for partition, indexes in lines_of.items():
        for index, line in zip(indexes, results[partition].lines, strict=True):
            if partition in rolled_back and line.reserved:
                line = line._replace(reserved=0,
                                     available_after=line.available_after + line.reserved)
            lines[index] = line
    granted = [line.reserved for line in lines]
    if not any(granted):
        return ReserveResult(Outcome.OK, "", ReservationStatus.REJECTED, tuple(lines), 0)
    status = (ReservationStatus.HELD if all(line.code is LineCode.OK and line.reserved ==
                                            line.requested for line in lines)
              else ReservationStatus.PARTIALLY_HELD)
    reservation_id = next(results[p].reservation_id for p in lines_of
                          if results[p].status is not ReservationStatus.REJECTED)
    return ReserveResult(Outcome.OK, reservation_id, status, tuple(lines), expires_at_ms)


def combine_parts(reservation_id: str, answers: Sequence[ReservationResult]) -> ReservationResult:
    """One answer to a Commit or Release of a cart from its parts' answers.

    A part that held nothing (a partial cart) has no reservation in its partition, so
    NOT_FOUND parts are ignored unless every part says so; any other refusal wins.
    """
    found = [a for a in answers if a.outcome is not Outcome.NOT_FOUND] or list(answers)
    refused = next((a for a in found if a.outcome is not Outcome.OK), None)
    answer = refused or found[0]
    return answer._replace(reservation_id=reservation_id)
