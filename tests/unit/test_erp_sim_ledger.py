"""The ERP simulator's pure parts: contract checks, SQLite ledger, rate limit, outages, config."""

from __future__ import annotations

import json

import pytest

from loadtest.erp_config import SimulatorConfig, SimulatorConfigError
from loadtest.erp_contract import (
    BODY_BYTES_MAX,
    ON_HAND_ABS_MAX,
    PAGE_LIMIT_DEFAULT,
    ContractError,
    check_idempotency_key,
    decode_cursor,
    encode_cursor,
    parse_adjustments,
    parse_page_limit,
)
from loadtest.erp_faults import (
    FaultDice,
    OutageSchedule,
    OutageWindow,
    TokenBucket,
    parse_outage,
    retry_after_s,
)
from loadtest.erp_ledger import Ledger, LedgerOverflow

NOW_S = 1_000_000.0


def line(sku: str = "SKU-1", location: str = "DC-1", on_hand_delta: int = 5,
         committed_delta: int = 0) -> dict:
    return {"sku": sku, "location": location, "on_hand_delta": on_hand_delta,
            "committed_delta": committed_delta}


def batch(*lines: dict, batch_id: str = "batch-1"):
    """A checked batch of `lines` (one default line when none)."""
    body = {"batch_id": batch_id, "lines": list(lines) or [line()]}
    return parse_adjustments(json.dumps(body).encode())


def snapshot(ledger: Ledger) -> list:
    return [row.to_json() for row in ledger.rows(10_000)]


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "erp.db"))
    yield ledger
    ledger.close()


def test_submit_applies_a_new_key(ledger):
    """A new key applies every line and answers 200 with the batch id and line count."""
    answer = ledger.submit("key-1", batch(line(on_hand_delta=5, committed_delta=2),
                                          line(location="DC-2", on_hand_delta=-3)), NOW_S)
    assert (answer.status, answer.body) == (200, {"batch_id": "batch-1", "applied_lines": 2})
    assert snapshot(ledger) == [
        {"sku": "SKU-1", "location": "DC-1", "on_hand": 5, "committed": 2},
        {"sku": "SKU-1", "location": "DC-2", "on_hand": -3, "committed": 0}]
    assert ledger.totals() == {"keys_applied": 1, "lines_applied": 2, "pending_acceptances": 0}


def test_submit_replays_the_first_answer_for_the_same_key_and_body(ledger):
    """The same key with the same body answers the first answer again and changes nothing."""
    first = ledger.submit("key-1", batch(), NOW_S)
    before = snapshot(ledger)
    again = ledger.submit("key-1", batch(), NOW_S + 1)
    assert again == first
    assert snapshot(ledger) == before
    assert ledger.totals()["keys_applied"] == 1


def test_submit_treats_reordered_fields_as_the_same_body(ledger):
    """Body identity is the canonical JSON: the same fields in another order are a replay."""
    ledger.submit("key-1", batch(), NOW_S)
    reordered = json.dumps({"lines": [dict(reversed(list(line().items())))],
                            "batch_id": "batch-1"}).encode()
    assert ledger.submit("key-1", parse_adjustments(reordered), NOW_S).status == 200
    assert snapshot(ledger)[0]["on_hand"] == 5


def test_submit_refuses_the_same_key_with_another_body(ledger):
    """The same key with another body answers 409 naming the header, and changes nothing."""
    ledger.submit("key-1", batch(), NOW_S)
    before = snapshot(ledger)
    answer = ledger.submit("key-1", batch(line(on_hand_delta=6)), NOW_S)
    assert answer.status == 409
    assert answer.body["field"] == "Idempotency-Key"
    assert snapshot(ledger) == before


def test_submit_applies_nothing_and_records_no_key_when_a_line_fails(ledger):
    """Lines and key are one transaction: an int64 overflow on the second line undoes the
    first and leaves the key unused."""
    ledger.set_row("SKU-FULL", "DC-1", ON_HAND_ABS_MAX)
    before = snapshot(ledger)
    with pytest.raises(LedgerOverflow):
        ledger.submit("key-1", batch(line(sku="SKU-1"), line(sku="SKU-FULL")), NOW_S)
    assert snapshot(ledger) == before
    assert ledger.key_status("key-1") is None
    assert ledger.submit("key-1", batch(line(sku="SKU-1")), NOW_S).status == 200


def test_submit_keeps_keys_and_rows_across_a_reopen(tmp_path):
    """A ledger reopened on the same file still has its rows and answers its keys."""
    path = str(tmp_path / "erp.db")
    first = Ledger(path)
    answer = first.submit("key-1", batch(), NOW_S)
    first.close()
    reopened = Ledger(path)
    try:
        assert reopened.submit("key-1", batch(), NOW_S) == answer
        assert reopened.submit("key-1", batch(line(on_hand_delta=1)), NOW_S).status == 409
        assert snapshot(reopened)[0]["on_hand"] == 5
    finally:
        reopened.close()


def test_page_orders_by_sku_then_location_and_continues_after_the_cursor(ledger):
    """Pages follow (sku, location) order and each row appears once across the pages."""
    for sku in ("B", "A", "C"):
        for location in ("L2", "L1"):
            ledger.set_row(sku, location, 1)
    seen, after, more = [], None, True
    while more:
        rows, more = ledger.page(after, 4)
        seen.extend((row.sku, row.location) for row in rows)
        after = decode_cursor(encode_cursor(rows[-1].sku, rows[-1].location))
    assert seen == sorted((sku, location) for sku in "ABC" for location in ("L1", "L2"))


def test_page_says_no_more_on_an_exact_last_page(ledger):
    """A page that ends exactly at the last row says nothing follows."""
    ledger.set_row("A", "L1", 1)
    ledger.set_row("A", "L2", 1)
    assert len(ledger.page(None, 2)[0]) == 2
    assert ledger.page(None, 2)[1] is False
    assert ledger.page(None, 1)[1] is True


def test_set_row_keeps_committed_unless_given(ledger):
    """Planting drift sets on_hand; committed stays unless the call gives it."""
    ledger.submit("key-1", batch(line(on_hand_delta=5, committed_delta=2)), NOW_S)
    assert ledger.set_row("SKU-1", "DC-1", 9).to_json()["committed"] == 2
    assert ledger.set_row("SKU-1", "DC-1", 9, committed=0).to_json()["committed"] == 0


def test_submit_accepts_a_batch_and_apply_due_applies_it_once(ledger):
    """An accepted batch answers 202, changes nothing until due, then applies exactly once."""
    answer = ledger.submit("key-1", batch(), NOW_S, apply_at_s=NOW_S + 2)
    assert (answer.status, answer.body) == (202, {"batch_id": "batch-1", "status": "accepted"})
    assert ledger.apply_due(NOW_S + 1) == 0
    assert snapshot(ledger) == []
    assert ledger.next_pending_at_s() == NOW_S + 2
    assert ledger.apply_due(NOW_S + 2) == 1
    assert ledger.apply_due(NOW_S + 3) == 0
    assert snapshot(ledger)[0]["on_hand"] == 5
    assert ledger.next_pending_at_s() is None
    assert ledger.totals() == {"keys_applied": 1, "lines_applied": 1, "pending_acceptances": 0}


def test_submit_answers_202_while_waiting_and_the_stored_200_once_applied(ledger):
    """A retry before the accepted batch applies answers 202 again; after, the 200 answer."""
    ledger.submit("key-1", batch(), NOW_S, apply_at_s=NOW_S + 2)
    assert ledger.submit("key-1", batch(), NOW_S + 1).status == 202
    assert ledger.submit("key-1", batch(line(on_hand_delta=9)), NOW_S + 1).status == 409
    ledger.apply_due(NOW_S + 2)
    again = ledger.submit("key-1", batch(), NOW_S + 3, apply_at_s=NOW_S + 5)
    assert (again.status, again.body) == (200, {"batch_id": "batch-1", "applied_lines": 1})
    assert snapshot(ledger)[0]["on_hand"] == 5


def test_apply_due_applies_what_a_previous_run_accepted(tmp_path):
    """An acceptance is stored with its key, so a reopened ledger still applies it once."""
    path = str(tmp_path / "erp.db")
    first = Ledger(path)
    first.submit("key-1", batch(), NOW_S, apply_at_s=NOW_S + 2)
    first.close()
    reopened = Ledger(path)
    try:
        assert reopened.key_status("key-1") == "accepted"
        assert reopened.apply_due(NOW_S + 2) == 1
        assert reopened.key_status("key-1") == "applied"
        assert snapshot(reopened)[0]["on_hand"] == 5
    finally:
        reopened.close()


def test_submit_applies_at_once_when_the_pending_table_is_full(tmp_path):
    """Past `pending_max` waiting batches a new one is applied now (200), keeping it bounded."""
    ledger = Ledger(str(tmp_path / "erp.db"), pending_max=1)
    try:
        assert ledger.submit("key-1", batch(), NOW_S, apply_at_s=NOW_S + 2).status == 202
        assert ledger.submit("key-2", batch(), NOW_S, apply_at_s=NOW_S + 2).status == 200
        assert ledger.totals()["pending_acceptances"] == 1
    finally:
        ledger.close()


@pytest.mark.parametrize("body, field", [
    ({"batch_id": "b", "lines": [line(on_hand_delta="5")]}, "lines[0].on_hand_delta"),
    ({"batch_id": "b", "lines": [line(on_hand_delta=1.0)]}, "lines[0].on_hand_delta"),
    ({"batch_id": "b", "lines": [line(), line(committed_delta=True)]},
     "lines[1].committed_delta"),
    ({"batch_id": "b", "lines": [{"sku": "S", "location": "L", "on_hand_delta": 1}]},
     "lines[0].committed_delta"),
    ({"lines": [line()]}, "batch_id"),
    ({"batch_id": "", "lines": [line()]}, "batch_id"),
    ({"batch_id": "b", "lines": [line(sku="")]}, "lines[0].sku"),
    ({"batch_id": "b", "lines": [line(location=7)]}, "lines[0].location"),
    ({"batch_id": "b", "lines": []}, "lines"),
    ({"batch_id": "b", "lines": [line()] * 1_001}, "lines"),
    ({"batch_id": "b", "lines": {"sku": "S"}}, "lines"),
    ({"batch_id": "b", "lines": [line()], "extra": 1}, "extra"),
    ({"batch_id": "b", "lines": [line(on_hand_delta=10 ** 13)]}, "lines[0].on_hand_delta"),
    ([line()], "body"),
])
def test_parse_adjustments_refuses_a_bad_body_naming_the_field(body, field):
    """Each kind of bad body is refused with the offending field named."""
    with pytest.raises(ContractError) as error:
        parse_adjustments(json.dumps(body).encode())
    assert error.value.field == field
    assert error.value.answer()["error"].startswith(field)


@pytest.mark.parametrize("raw", [b"{", b"", b'{"batch_id": NaN}', b"\xff\xfe{}"])
def test_parse_adjustments_refuses_what_is_not_json(raw):
    """Bytes that are not JSON (or use NaN) are refused as the body."""
    with pytest.raises(ContractError) as error:
        parse_adjustments(raw)
    assert error.value.field == "body"


def test_parse_adjustments_refuses_a_body_too_large():
    """A body past BODY_BYTES_MAX is refused before it is parsed."""
    with pytest.raises(ContractError, match="larger than") as error:
        parse_adjustments(b" " * (BODY_BYTES_MAX + 1))
    assert error.value.field == "body"


@pytest.mark.parametrize("key", [None, ""])
def test_check_idempotency_key_refuses_a_missing_key(key):
    """A missing or empty key is refused naming the header."""
    with pytest.raises(ContractError) as error:
        check_idempotency_key(key)
    assert error.value.field == "Idempotency-Key"


@pytest.mark.parametrize("value, expected", [(None, PAGE_LIMIT_DEFAULT), ("1", 1),
                                             ("1000", 1_000)])
def test_parse_page_limit_accepts_one_to_a_thousand(value, expected):
    """No limit means the default; 1 to 1000 are taken as given."""
    assert parse_page_limit(value) == expected


@pytest.mark.parametrize("value", ["0", "1001", "ten", "2.5"])
def test_parse_page_limit_refuses_out_of_range(value):
    """A limit that is not an integer from 1 to 1000 is refused naming `limit`."""
    with pytest.raises(ContractError) as error:
        parse_page_limit(value)
    assert error.value.field == "limit"


@pytest.mark.parametrize("cursor", ["not base64 !", "eyJhIjogMX0=", "WzEsIDJd"])
def test_decode_cursor_refuses_a_cursor_it_never_gave(cursor):
    """Garbage, a JSON object and a list of numbers are all refused naming `cursor`."""
    with pytest.raises(ContractError) as error:
        decode_cursor(cursor)
    assert error.value.field == "cursor"


def test_decode_cursor_reads_back_what_encode_cursor_gave():
    """A cursor round-trips any text, separators and non-ASCII included."""
    assert decode_cursor(encode_cursor("SKU:1/é", "DC,2")) == ("SKU:1/é", "DC,2")
    assert decode_cursor(None) is None


def test_take_grants_the_burst_then_names_the_wait():
    """A full bucket grants `burst` requests at once, then says how long until the next."""
    bucket = TokenBucket(rate_rps=2.0, burst=3, now_s=NOW_S)
    assert [bucket.take(NOW_S) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(NOW_S) == pytest.approx(0.5)
    assert bucket.take(NOW_S + 0.25) == pytest.approx(0.25)


def test_take_refills_at_the_rate_up_to_the_burst():
    """Tokens come back at `rate_rps` and never past `burst`."""
    bucket = TokenBucket(rate_rps=2.0, burst=2, now_s=NOW_S)
    bucket.take(NOW_S)
    bucket.take(NOW_S)
    assert bucket.take(NOW_S + 0.5) == 0.0
    assert [bucket.take(NOW_S + 100) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(NOW_S + 100) > 0


def test_take_never_refuses_without_a_rate():
    """A rate of 0 is no limit."""
    bucket = TokenBucket(rate_rps=0.0, burst=1, now_s=NOW_S)
    assert all(bucket.take(NOW_S) == 0.0 for _ in range(1_000))


@pytest.mark.parametrize("wait_s, header", [(0.01, 1), (1.0, 1), (1.2, 2), (9.5, 10)])
def test_retry_after_s_rounds_up_and_is_at_least_one(wait_s, header):
    """Retry-After is whole seconds, rounded up, never 0."""
    assert retry_after_s(wait_s) == header


def test_remaining_s_follows_the_scheduled_windows():
    """Down only inside a window (seconds after start), saying how long is left."""
    outages = OutageSchedule([OutageWindow(10, 5), OutageWindow(30, 1)], started_at_s=NOW_S)
    assert outages.remaining_s(NOW_S + 9.9) == 0.0
    assert outages.remaining_s(NOW_S + 11) == pytest.approx(4)
    assert outages.remaining_s(NOW_S + 15) == 0.0
    assert outages.remaining_s(NOW_S + 30.5) == pytest.approx(0.5)


def test_start_now_begins_an_outage_and_zero_ends_any_under_way():
    """A manual outage lasts its seconds; 0 ends it and the scheduled window in progress,
    but later windows still come."""
    outages = OutageSchedule([OutageWindow(10, 20), OutageWindow(50, 5)], started_at_s=NOW_S)
    outages.start_now(NOW_S, 3)
    assert outages.remaining_s(NOW_S + 1) == pytest.approx(2)
    outages.start_now(NOW_S + 1, 0)
    assert outages.remaining_s(NOW_S + 1) == 0.0
    outages.start_now(NOW_S + 12, 0)
    assert outages.remaining_s(NOW_S + 13) == 0.0
    assert outages.remaining_s(NOW_S + 51) == pytest.approx(4)


@pytest.mark.parametrize("text", ["5", "a:b", "5:0", "-1:3", "1:2:3", "inf:1"])
def test_parse_outage_refuses_a_bad_window(text):
    """A window that is not START_S:DURATION_S with START_S >= 0, DURATION_S > 0 is refused."""
    with pytest.raises(ValueError, match="--outage"):
        parse_outage(text)


def test_fault_dice_repeat_with_the_same_seed():
    """The same seed gives the same latencies, errors and acceptances; another seed differs."""
    def draws(seed: int) -> list:
        dice = FaultDice(seed)
        return [(dice.latency_s(50, 20), dice.fails(0.5), dice.accepts_async(0.5))
                for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert all(0.03 <= latency_s <= 0.07 for latency_s, _, _ in draws(7))


@pytest.mark.parametrize("settings, option", [
    ({"error_rate": 1.5}, "--error-rate"),
    ({"async_accept_ratio": -0.1}, "--async-accept-ratio"),
    ({"rate_limit_rps": -1}, "--rate-limit-rps"),
    ({"rate_limit_burst": 0}, "--rate-limit-burst"),
    ({"latency_ms": float("nan")}, "--latency-ms"),
    ({"port": 70_000}, "--port"),
    ({"db_path": ""}, "--db"),
    ({"outages": (OutageWindow(1, 0),)}, "--outage"),
])
def test_simulator_config_refuses_a_bad_setting_naming_the_option(settings, option):
    """An out-of-range setting is refused with its command-line option named."""
    with pytest.raises(SimulatorConfigError, match=option):
        SimulatorConfig(**settings)


def test_with_runtime_changes_refuses_settings_fixed_at_start():
    """Only rate limit, latency, errors and acceptance change at runtime; values are numbers."""
    config = SimulatorConfig(rate_limit_rps=2.5)
    assert config.burst == 3
    assert config.with_runtime_changes({"error_rate": 0.5}).error_rate == 0.5
    with pytest.raises(SimulatorConfigError) as error:
        config.with_runtime_changes({"db_path": "/elsewhere"})
    assert error.value.field == "db_path"
    with pytest.raises(SimulatorConfigError, match="must be a number"):
        config.with_runtime_changes({"latency_ms": "10"})
