"""A deliberately simple ledger in plain dicts: the model the partition state is checked against."""

from __future__ import annotations

from engine.model import (
    Commit,
    LineCode,
    Movement,
    MovementCode,
    MovementType,
    Outcome,
    Release,
    ReservationState,
    ReservationStatus,
    Reserve,
)

QUANTITIES = ("on_hand", "reserved", "committed", "safety_stock", "damaged", "quality_control",
              "incoming")
FINISHED = ("RELEASED", "EXPIRED", "SHIPPED")


def _ats(item: dict) -> int:
    return item["on_hand"] - sum(item[name] for name in QUANTITIES[1:6])


class ReferenceLedger:
    """Same rules as DESIGN section 4, one command at a time, no numpy, no shortcuts.

    Results are summarised as plain tuples so the test can compare them with the engine's.
    """

    def __init__(self, ttl_default_s: int, skew_ms: int) -> None:
        self.items: dict[tuple[str, str], dict[str, int]] = {}
        self.reservations: dict[str, dict] = {}
        self.keys: dict[str, tuple] = {}  # key -> (kind, payload, summary)
        self.on_hand_log: dict[tuple[str, str], list[tuple]] = {}  # (occurred, delta, count)
        self.ttl_default_s = ttl_default_s
        self.skew_ms = skew_ms
        self.commits = 0  # shipments naming an order ship its reservations in commit order

    def item(self, sku: str, location: str) -> dict[str, int]:
        return self.items.setdefault((sku, location), dict.fromkeys(QUANTITIES, 0))

    def apply(self, command, now_ms: int) -> tuple:
        if command is None:
            return ("expire", self.expire(now_ms))
        key = command.idempotency_key
        payload = (type(command).__name__, command.payload())
        if key in self.keys:
            first_payload, summary = self.keys[key]
            if first_payload != payload:
                return ("conflict",)
            if type(command) is Movement and summary[1] == "APPLIED":
                return ("movement", "DUPLICATE")
            return summary
        handler = {Reserve: self.reserve, Commit: self.commit, Release: self.release,
                   Movement: self.movement}[type(command)]
        summary = handler(command, now_ms)
        if summary not in (("invalid",), ("movement", "REJECTED")):  # judged afresh on retry
            self.keys[key] = (payload, summary)
        return summary

    # ---- reservations --------------------------------------------------------------------

    def reserve(self, command: Reserve, now_ms: int) -> tuple:
        if command.reservation_id in self.reservations:
            return ("invalid",)
        available = []
        for line in command.lines:
            known = (line.sku, line.location) in self.items
            available.append(_ats(self.items[(line.sku, line.location)]) if known else None)
        if command.allow_partial:
            granted = [0 if ats is None else max(0, min(line.quantity, ats))
                       for line, ats in zip(command.lines, available)]
        elif all(ats is not None and ats >= line.quantity
                 for line, ats in zip(command.lines, available)):
            granted = [line.quantity for line in command.lines]
        else:
            granted = [0] * len(command.lines)
        codes = tuple("UNKNOWN_ITEM" if ats is None else
                      "OK" if ats >= line.quantity else "INSUFFICIENT_AVAILABLE"
                      for line, ats in zip(command.lines, available))
        if not any(granted):
            return ("reserve", "REJECTED", tuple(granted), codes)
        held = [(line.sku, line.location, units)
                for line, units in zip(command.lines, granted) if units]
        for sku, location, units in held:
            assert _ats(self.items[(sku, location)]) >= units, "the model grants past ATS"
            self.items[(sku, location)]["reserved"] += units
        self.reservations[command.reservation_id] = {
            "lines": held, "shipped": [0] * len(held), "state": "HELD",
            "expires_at_ms": now_ms + 1000 * (command.ttl_seconds or self.ttl_default_s),
            "order_ref": command.order_ref}
        full = all(units == line.quantity for line, units in zip(command.lines, granted))
        return ("reserve", "HELD" if full else "PARTIALLY_HELD", tuple(granted), codes)

    def _live(self, reservation_id: str, now_ms: int) -> dict | None:
        reservation = self.reservations.get(reservation_id)
        if reservation and reservation["state"] == "HELD" \
                and reservation["expires_at_ms"] <= now_ms:
            self._finish(reservation, "reserved", "EXPIRED")
        return reservation

    def _finish(self, reservation: dict, quantity: str, state: str) -> None:
        for (sku, location, units), shipped in zip(reservation["lines"],
                                                   reservation["shipped"]):
            self.items[(sku, location)][quantity] -= units - shipped
        reservation["state"] = state

    def commit(self, command: Commit, now_ms: int) -> tuple:
        reservation = self._live(command.reservation_id, now_ms)
        if reservation is None:
            return ("not_found",)
        if reservation["state"] == "HELD":
            for sku, location, units in reservation["lines"]:
                self.items[(sku, location)]["reserved"] -= units
                self.items[(sku, location)]["committed"] += units
            reservation["state"] = "COMMITTED"
            reservation["order_ref"] = command.order_ref or reservation["order_ref"]
            self.commits += 1
            reservation["committed_seq"] = self.commits
        elif reservation["state"] in ("RELEASED", "EXPIRED"):
            return ("precondition", reservation["state"])
        return ("state", reservation["state"])

    def release(self, command: Release, now_ms: int) -> tuple:
        reservation = self._live(command.reservation_id, now_ms)
        if reservation is None:
            return ("not_found",)
        state = reservation["state"]
        if state == "SHIPPED":
            return ("precondition", state)
        if state in ("HELD", "COMMITTED"):
            self._finish(reservation, "reserved" if state == "HELD" else "committed",
                         "RELEASED")
        return ("state", reservation["state"])

    def expire(self, now_ms: int) -> int:
        due = [r for r in self.reservations.values()
               if r["state"] == "HELD" and r["expires_at_ms"] <= now_ms]
        for reservation in due:
            self._finish(reservation, "reserved", "EXPIRED")
        return len(due)

    # ---- movements -----------------------------------------------------------------------

    def movement(self, m: Movement, now_ms: int) -> tuple:
        occurred_at_ms = m.occurred_at_unix_ms or now_ms
        if occurred_at_ms > now_ms + self.skew_ms:
            return ("movement", "REJECTED")
        kind, q = m.type, m.quantity
        if kind is MovementType.CYCLE_COUNT:
            return self.cycle_count(m, min(occurred_at_ms, now_ms))
        item = self.item(m.sku, m.location)
        if kind in (MovementType.RECEIPT, MovementType.TRANSFER_IN):
            self._on_hand(m, q, occurred_at_ms)
            item["incoming"] -= min(q, item["incoming"])
        elif kind is MovementType.INBOUND_EXPECTED:
            item["incoming"] += q
        elif kind is MovementType.ADJUSTMENT:
            self._on_hand(m, q, occurred_at_ms)
        elif kind is MovementType.SALE:
            self._on_hand(m, -q, occurred_at_ms)
        elif kind is MovementType.SHIPMENT:
            self._on_hand(m, -q, occurred_at_ms)
            self._ship(m)
        elif kind is MovementType.RETURN_RECEIVED:
            self._on_hand(m, q, occurred_at_ms)
            item["quality_control"] += q
        elif kind is MovementType.RETURN_RESTOCKED:
            item["quality_control"] -= min(q, item["quality_control"])
        elif kind is MovementType.RETURN_SCRAPPED:
            item["quality_control"] -= min(q, item["quality_control"])
            self._on_hand(m, -q, occurred_at_ms)
        elif kind is MovementType.DAMAGE:
            item["damaged"] += q
        elif kind is MovementType.TRANSFER_OUT:
            self._on_hand(m, -q, occurred_at_ms)
            self.item(m.sku, m.destination_location)["incoming"] += q
        elif kind is MovementType.SAFETY_STOCK_SET:
            item["safety_stock"] = q
        return ("movement", "APPLIED")

    def _on_hand(self, m: Movement, delta: int, occurred_at_ms: int) -> None:
        log = self.on_hand_log.setdefault((m.sku, m.location), [])
        if any(is_count and occurred > occurred_at_ms for occurred, _, is_count in log):
            return  # a count as of a later instant already saw this change
        self.item(m.sku, m.location)["on_hand"] += delta
        log.append((occurred_at_ms, delta, False))

    def cycle_count(self, m: Movement, as_of_ms: int) -> tuple:
        log = self.on_hand_log.setdefault((m.sku, m.location), [])
        if any(is_count and occurred > as_of_ms for occurred, _, is_count in log):
            return ("movement", "APPLIED")  # superseded: no change
        after = sum(delta for occurred, delta, is_count in log
                    if occurred > as_of_ms and not is_count)
        item = self.item(m.sku, m.location)
        delta = m.quantity + after - item["on_hand"]
        item["on_hand"] += delta
        log.append((as_of_ms, delta, True))
        return ("movement", "APPLIED")

    def _ship(self, m: Movement) -> None:
        if m.reservation_id:
            candidates = [m.reservation_id]
        else:
            candidates = sorted((rid for rid, r in self.reservations.items()
                                 if r["state"] == "COMMITTED" and m.order_ref
                                 and r["order_ref"] == m.order_ref),
                                key=lambda rid: self.reservations[rid]["committed_seq"])
        remaining = m.quantity
        for reservation_id in candidates:
            reservation = self.reservations.get(reservation_id)
            if reservation is None or reservation["state"] != "COMMITTED":
                continue
            for line, (sku, location, units) in enumerate(reservation["lines"]):
                if (sku, location) != (m.sku, m.location) or not remaining:
                    continue
                take = min(remaining, units - reservation["shipped"][line])
                reservation["shipped"][line] += take
                self.items[(sku, location)]["committed"] -= take
                remaining -= take
            if all(shipped == units for (_, _, units), shipped
                   in zip(reservation["lines"], reservation["shipped"])):
                reservation["state"] = "SHIPPED"
            if not remaining:
                break


def summarize(result) -> tuple:
    """The engine's result in the reference's terms."""
    outcome = result.outcome
    if outcome is Outcome.IDEMPOTENCY_CONFLICT:
        return ("conflict",)
    if outcome is Outcome.INVALID:
        return ("invalid",)
    if outcome is Outcome.NOT_FOUND:
        return ("not_found",)
    if outcome is Outcome.FAILED_PRECONDITION:
        return ("precondition", result.state.name)
    kind = type(result).__name__
    if kind == "ReserveResult":
        codes = tuple(LineCode(line.code).name for line in result.lines)
        return ("reserve", ReservationStatus(result.status).name,
                tuple(line.reserved for line in result.lines), codes)
    if kind == "ReservationResult":
        return ("state", ReservationState(result.state).name)
    if kind == "ExpireResult":
        return ("expire", result.expired)
    return ("movement", MovementCode(result.code).name)
