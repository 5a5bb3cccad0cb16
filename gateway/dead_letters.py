"""Dead letters of the events stream: list and show them, replay them onto the stream once
their cause is fixed (a mapping, say), or drop them.

A replay posts the entry as its source sent it, plus `replayed_from` (the letter's id), and
deletes the letter in the same MULTI transaction, under WATCH of the dead-letter stream: a
crash loses no letter and two replayers never post one twice. Posting a movement twice
would be harmless anyway, since movements are applied once per `event_id`.
"""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import redis
from google.protobuf import json_format

from gateway.ingest import ADDED_FIELDS, IngestConfig
from gateway.ingest_entries import EntryRefused, decode_entry

REPLAYED_FROM = b"replayed_from"
# What a worker added to letters written before it listed them in ADDED_FIELDS; their
# `source` stays, as the worker reads the source from the movement, never from the field.
_WORKER_FIELDS_BEFORE_LIST = (b"reason", b"entry_id", b"attempts")
IDS_MAX = 1_000  # letter ids one call may name
LIST_LETTERS_MAX = 10_000
REPLAY_BATCH_LETTERS = 500  # letters `replay --all` moves per transaction
# A worker dead-lettering meanwhile changes the watched stream; try again, a few times.
WATCH_ATTEMPTS_MAX = 20
_WHITESPACE = str.maketrans("\n\r\t", "   ")  # printable enough in a JSON payload
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
T = TypeVar("T")


class Every(enum.Enum):
    """`replay(..., ALL)`: every letter in the stream when the replay starts."""

    ALL = "all"


ALL = Every.ALL


class UnknownLetter(LookupError):
    """Ids that name no dead letter (never did, or were replayed or dropped); nothing changed."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = tuple(ids)
        super().__init__("no dead letter " + ", ".join(self.ids)
                         + " (unknown, or replayed or dropped already); nothing was changed")


class BusyDeadLetters(RuntimeError):
    """The dead-letter stream kept changing under a transaction; nothing was changed."""


class Replayed(NamedTuple):
    """A letter posted back: its id in the DLQ and its new id on the events stream."""

    letter_id: str
    event_id: str


@dataclass(frozen=True)
class Letter:
    """One dead letter: the refused entry's fields plus what the worker added."""

    id: str
    fields: Mapping[bytes, bytes]

    @property
    def reason(self) -> str:
        return _text(self.fields.get(b"reason", b""))

    @property
    def source(self) -> str:
        return _text(self.fields.get(b"source", b""))

    @property
    def entry_id(self) -> str:
        return _text(self.fields.get(b"entry_id", b""))

    @property
    def attempts(self) -> int:
        try:
            return int(self.fields.get(b"attempts", b"0"))
        except ValueError:
            return 0

    def original(self) -> dict[bytes, bytes]:
        """The entry as its source posted it: the fields the worker added taken off."""
        listed = self.fields.get(ADDED_FIELDS)
        added = set(listed.split() if listed is not None else _WORKER_FIELDS_BEFORE_LIST)
        added.add(ADDED_FIELDS)
        return {name: value for name, value in self.fields.items() if name not in added}

    def replay_entry(self) -> dict[bytes, bytes]:
        """What a replay posts: the original entry and the id of the letter it came from."""
        return {**self.original(), REPLAYED_FROM: self.id.encode()}


def parse_ids(ids: Iterable[str]) -> list[str]:
    """Full stream ids (MS-SEQ, as `list` shows them), duplicates dropped; ValueError names
    the first bad one."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValueError("name at least one dead letter id")
    if len(unique) > IDS_MAX:
        raise ValueError(f"at most {IDS_MAX} dead letter ids at a time")
    for letter_id in unique:
        if not _STREAM_ID.fullmatch(letter_id):
            raise ValueError(f"{letter_id!r} is not a stream id (MS-SEQ, as `dlq list` shows)")
    return unique


def list_letters(client: redis.Redis, config: IngestConfig, count: int = 100) -> list[Letter]:
    """The oldest `count` dead letters, oldest first (the order a replay of all takes)."""
    if not 1 <= count <= LIST_LETTERS_MAX:
        raise ValueError(f"count must be between 1 and {LIST_LETTERS_MAX}")
    return [_letter(entry) for entry in client.xrange(config.dead_letters, count=count)]


def show(client: redis.Redis, config: IngestConfig, letter_id: str) -> Letter:
    """One dead letter; UnknownLetter when there is none of that id."""
    [letter] = _fetch(client, config, parse_ids([letter_id]))
    return letter


def replay(client: redis.Redis, config: IngestConfig,
           ids: Iterable[str] | Every) -> list[Replayed]:
    """Post letters back onto the events stream and delete them, each atomically.

    Named ids move in one transaction, or none does if any is unknown (UnknownLetter);
    ALL moves the letters present when it starts, in batches, oldest first.
    """
    if ids is ALL:
        return _replay_all(client, config)
    wanted = parse_ids(ids)

    def move(pipe: redis.client.Pipeline) -> list[Letter]:
        return _queue_moves(pipe, config, _fetch(pipe, config, wanted))

    return _replayed(*_watched(client, config, move))


def drop(client: redis.Redis, config: IngestConfig, ids: Iterable[str]) -> int:
    """Delete letters for good: all of them, or none if any is unknown (UnknownLetter)."""
    wanted = parse_ids(ids)

    def delete(pipe: redis.client.Pipeline) -> list[str]:
        _fetch(pipe, config, wanted)
        pipe.multi()
        pipe.xdel(config.dead_letters, *wanted)
        return wanted

    _, answers = _watched(client, config, delete)
    return answers[-1]


def summary(letter: Letter, reason_chars_max: int = 80) -> str:
    """One line of `dlq list`: id, source, attempts and the reason, cut to fit."""
    reason = " ".join(letter.reason.split())
    if len(reason) > reason_chars_max:
        reason = reason[:reason_chars_max - 1] + "…"
    return f"{letter.id:<22} {letter.source or '-':<16} {letter.attempts:>3}  {reason}"


def headline(letter: Letter) -> dict:
    """What `dlq list --json` gives of a letter: its id, entry id, source, attempts, reason."""
    return {"id": letter.id, "entry_id": letter.entry_id, "source": letter.source,
            "attempts": letter.attempts, "reason": letter.reason}


def describe(letter: Letter) -> dict:
    """Everything about a letter in JSON terms; the movement decoded when it can be."""
    original = letter.original()
    described = {**headline(letter),
                 "fields": {_text(name): _printable(value) for name, value in original.items()}}
    try:
        described["movement"] = json_format.MessageToDict(decode_entry(original))
    except EntryRefused as error:
        described["movement_error"] = str(error)
    return described


def _replay_all(client: redis.Redis, config: IngestConfig) -> list[Replayed]:
    # Only letters older than the replay: one that fails again comes back as a new letter,
    # which must not be replayed in a loop.
    newest = client.xrevrange(config.dead_letters, count=1)
    if not newest:
        return []
    last_id = newest[0][0]
    replayed: list[Replayed] = []

    def move_batch(pipe: redis.client.Pipeline) -> list[Letter]:
        letters = [_letter(entry) for entry in pipe.xrange(
            config.dead_letters, "-", last_id, count=REPLAY_BATCH_LETTERS)]
        return _queue_moves(pipe, config, letters)

    while True:
        letters, answers = _watched(client, config, move_batch)
        if not letters:
            return replayed
        replayed.extend(_replayed(letters, answers))


def _queue_moves(pipe: redis.client.Pipeline, config: IngestConfig,
                 letters: list[Letter]) -> list[Letter]:
    """Queue, in one MULTI, each letter's XADD to the events stream and then their XDEL."""
    pipe.multi()
    if letters:
        for letter in letters:
            pipe.xadd(config.stream, letter.replay_entry())
        pipe.xdel(config.dead_letters, *(letter.id for letter in letters))
    return letters


def _replayed(letters: list[Letter], answers: list) -> list[Replayed]:
    # The transaction answers each XADD with the new id, then the XDEL with its count.
    return [Replayed(letter.id, _text(event_id))
            for letter, event_id in zip(letters, answers, strict=False)]


def _fetch(client: redis.Redis | redis.client.Pipeline, config: IngestConfig,
           ids: list[str]) -> list[Letter]:
    """The letters of `ids`, in that order; UnknownLetter names every missing one."""
    found = {letter_id: client.xrange(config.dead_letters, letter_id, letter_id)
             for letter_id in ids}
    missing = [letter_id for letter_id, entries in found.items() if not entries]
    if missing:
        raise UnknownLetter(missing)
    return [_letter(entries[0]) for entries in found.values()]


def _watched(client: redis.Redis, config: IngestConfig,
             queue: Callable[[redis.client.Pipeline], T]) -> tuple[T, list]:
    """Run `queue` (reads, then MULTI and writes) and EXEC, all under WATCH of the DLQ."""
    for _ in range(WATCH_ATTEMPTS_MAX):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(config.dead_letters)
                queued = queue(pipe)
                return queued, pipe.execute()
            except redis.WatchError:
                continue
    raise BusyDeadLetters(f"{config.dead_letters} changed under {WATCH_ATTEMPTS_MAX} "
                          "attempts in a row; nothing was changed, try again")


def _letter(entry: tuple[bytes, Mapping[bytes, bytes]]) -> Letter:
    entry_id, fields = entry
    return Letter(_text(entry_id), fields)


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode(errors="replace")


def _printable(value: bytes) -> str:
    """A field as text when it is printable UTF-8, else as base64 (a serialized movement is
    binary, though often valid UTF-8)."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and text.translate(_WHITESPACE).isprintable():
        return text
    return "base64:" + base64.b64encode(value).decode()
