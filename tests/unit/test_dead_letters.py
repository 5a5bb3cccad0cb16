"""A dead letter gives back the entry its source posted, and the dlq command checks what it
is told before it touches Redis."""

from __future__ import annotations

import pytest
from inventory.v1 import availability_pb2 as pb

from engine.cli import main
from gateway.dead_letters import (
    IDS_MAX,
    REPLAYED_FROM,
    Letter,
    describe,
    headline,
    parse_ids,
    summary,
)
from gateway.ingest import ADDED_FIELDS, dead_letter

MOVEMENT = pb.Movement(event_id="e-1", source="marketplace", type=pb.MOVEMENT_TYPE_SALE,
                       sku="B07XJ8C8F5", location="fc-newark", quantity=1)


def test_dead_letter_adds_reason_entry_id_attempts_and_the_source_named_by_the_movement():
    """The worker's letter keeps the entry's fields and adds the reason, id, attempts, source."""
    fields = {b"movement": MOVEMENT.SerializeToString()}
    letter = dead_letter(fields, b"5-0", "sku: unknown SKU alias", 3)
    assert letter[b"reason"] == b"sku: unknown SKU alias"
    assert (letter[b"entry_id"], letter[b"attempts"]) == (b"5-0", b"3")
    assert letter[b"source"] == b"marketplace"
    assert letter[b"movement"] == fields[b"movement"]


def test_letter_original_is_the_entry_without_the_worker_fields():
    """A source the worker added is taken off; the letter's original equals the entry."""
    fields = {b"movement": MOVEMENT.SerializeToString(), b"schema_version": b"1"}
    letter = Letter("9-1", dead_letter(fields, b"5-0", "refused", 1))
    assert letter.original() == fields


def test_letter_original_keeps_a_source_field_the_entry_carried_itself():
    """An entry that carried its own `source` field gets it back on replay, unchanged."""
    fields = {b"json": b"{not json", b"source": b"pos-17"}
    letter = Letter("9-1", dead_letter(fields, b"5-0", "undecodable payload", 1))
    assert letter.source == "pos-17"
    assert letter.original() == fields


def test_letter_written_before_the_added_fields_list_loses_only_the_worker_fields():
    """An older letter, without the list, drops reason, entry_id and attempts; source stays."""
    letter = Letter("9-1", {b"movement": b"x", b"reason": b"r", b"entry_id": b"5-0",
                            b"attempts": b"2", b"source": b"pos"})
    assert letter.original() == {b"movement": b"x", b"source": b"pos"}


def test_replay_entry_is_the_original_plus_the_letter_id():
    """A replayed entry says which letter it came from in `replayed_from`."""
    fields = {b"movement": MOVEMENT.SerializeToString()}
    letter = Letter("9-1", dead_letter(fields, b"5-0", "refused", 1))
    assert letter.replay_entry() == {**fields, REPLAYED_FROM: b"9-1"}
    assert ADDED_FIELDS not in letter.replay_entry()


def test_parse_ids_keeps_full_stream_ids_once_each_in_order():
    """Duplicates are dropped and the order kept."""
    assert parse_ids(["2-0", "1-5", "2-0"]) == ["2-0", "1-5"]


@pytest.mark.parametrize("ids, message", [
    ([], "at least one"),
    (["1700000000000"], "not a stream id"),
    (["abc-1"], "not a stream id"),
    (["1-0", "1-0 "], "not a stream id"),
    ([f"1-{n}" for n in range(IDS_MAX + 1)], f"at most {IDS_MAX}"),
])
def test_parse_ids_refuses_a_bad_id_naming_it(ids, message):
    """An id that is not MS-SEQ, no id at all, or too many ids are refused."""
    with pytest.raises(ValueError, match=message):
        parse_ids(ids)


def test_summary_is_one_line_with_the_reason_cut_to_fit():
    """`dlq list` prints id, source, attempts and a reason on one line, shortened."""
    letter = Letter("9-1", {b"reason": b"first line\nsecond " + b"x" * 200, b"source": b"pos",
                            b"attempts": b"4"})
    line = summary(letter, reason_chars_max=30)
    assert "\n" not in line
    assert line.split()[:4] == ["9-1", "pos", "4", "first"]
    assert line.endswith("…") and len(line.split("  ")[-1]) == 30


def test_describe_decodes_the_movement_and_shows_binary_fields_as_base64():
    """`dlq show` gives the worker's fields, the original fields and the decoded movement."""
    letter = Letter("9-1", dead_letter({b"movement": MOVEMENT.SerializeToString()}, b"5-0",
                                       "refused", 2))
    described = describe(letter)
    assert described["movement"]["sku"] == "B07XJ8C8F5"
    assert described["fields"]["movement"].startswith("base64:")
    assert {key: described[key] for key in headline(letter)} == {
        "id": "9-1", "entry_id": "5-0", "source": "marketplace", "attempts": 2,
        "reason": "refused"}


def test_describe_names_why_a_movement_cannot_be_decoded():
    """A garbage letter shows the decoding error instead of a movement."""
    described = describe(Letter("9-1", dead_letter({b"json": b"{no"}, b"5-0", "bad", 1)))
    assert "undecodable payload" in described["movement_error"]
    assert described["fields"] == {"json": "{no"}


@pytest.mark.parametrize("argv, message", [
    (["dlq", "replay"], "not both"),
    (["dlq", "replay", "1-0", "--all"], "not both"),
    (["dlq", "show", "nope"], "not a stream id"),
    (["dlq", "drop", "1-0", "x"], "not a stream id"),
    (["dlq", "list", "--count", "0"], "count"),
])
def test_dlq_refuses_bad_arguments_before_reaching_redis(argv, message, capsys):
    """Bad ids or options exit with status 2 and say why; no Redis is needed to find out."""
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--redis-url", "redis://127.0.0.1:1"])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
