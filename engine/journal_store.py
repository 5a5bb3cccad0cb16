"""One partition's journal (a Redis Stream) and snapshot in Redis, fenced by an epoch.

Keys under `{prefix}:{p<n>}:` for virtual partition n: `journal` (stream, entry id
`{last_seq}-0`, field `e`), `epoch` (fencing counter), `snapshot` (hash, and its chunks
under `snapshot:...`) and `readers` (downstream checkpoints). Every write that must be
atomic is one Lua script over them; the `{p<n>}` hash tag puts all of a partition's keys
in one slot of a Redis Cluster, so those scripts run there too, each partition's slot
chosen by its number.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SOCKET_TIMEOUT_S = 2.0
# Snapshots are written in pieces of this size, so Redis serves others in between.
SNAPSHOT_CHUNK_BYTES = 1 << 20
# Pieces not yet part of a stored snapshot expire after this long.
SNAPSHOT_CHUNK_TTL_MS = 15 * 60_000
# A snapshot replaced this many times while being read is missing pieces, not replaced.
SNAPSHOT_READ_ATTEMPTS = 5
SOCKET_CONNECT_TIMEOUT_S = 2.0
# An idle pooled connection is PINGed before reuse after this long, so a half-open one is
# found before a journal write is sent into it.
HEALTH_CHECK_INTERVAL_S = 30
_FENCED = "FENCED"
_NO_READER = "NOREADER"

# The newest id ever added, from XINFO STREAM: unlike the top entry it survives trimming.
# Lua numbers are doubles; string.format('%d') keeps big sequence numbers out of 1e+15 form.
_LAST_GENERATED_LUA = """
local function last_generated(stream)
  if redis.call('EXISTS', stream) == 0 then return 0 end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      return tonumber(string.match(info[i + 1], '^(%d+)-'))
    end
  end
  return 0
end
local function check_epoch(epoch_key, epoch)
  local current = redis.call('GET', epoch_key)
  if current ~= epoch then
    return redis.error_reply('FENCED partition epoch is ' .. (current or 'unset')
                             .. ', this writer holds ' .. epoch)
  end
end
"""

# KEYS: epoch, journal. ARGV: epoch, then id, data pairs.
_APPEND_LUA = _LAST_GENERATED_LUA + """
local fenced = check_epoch(KEYS[1], ARGV[1])
if fenced then return fenced end
-- Scripts are not rolled back: refuse a batch out of order before the first XADD, so only
-- that first XADD can fail (id not above the stream's top), and then nothing was written.
for i = 4, #ARGV, 2 do
  if tonumber(string.match(ARGV[i], '^(%d+)-')) <= tonumber(string.match(ARGV[i - 2], '^(%d+)-'))
  then
    return redis.error_reply('ERR journal entries are not in increasing seq order')
  end
end
for i = 2, #ARGV, 2 do
  redis.call('XADD', KEYS[2], ARGV[i], 'e', ARGV[i + 1])
end
return (#ARGV - 1) / 2
"""

# KEYS: epoch, journal, snapshot, readers. ARGV: epoch, seq, chunks key base, chunk count,
# saved_at_ms. The chunks are already written; this only makes them the snapshot.
_SAVE_SNAPSHOT_LUA = _LAST_GENERATED_LUA + """
local fenced = check_epoch(KEYS[1], ARGV[1])
if fenced then return fenced end
local seq = tonumber(ARGV[2])
local stored = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
if last_generated(KEYS[2]) < seq or seq < stored then return 0 end
local old = redis.call('HMGET', KEYS[3], 'chunks_key', 'chunks')
if old[1] and old[1] ~= ARGV[3] then
  for i = 0, tonumber(old[2]) - 1 do
    redis.call('UNLINK', old[1] .. ':' .. i)  -- freed in the background
  end
end
for i = 0, tonumber(ARGV[4]) - 1 do
  redis.call('PERSIST', ARGV[3] .. ':' .. i)
end
redis.call('HSET', KEYS[3], 'seq', ARGV[2], 'epoch', ARGV[1], 'chunks_key', ARGV[3],
           'chunks', ARGV[4], 'saved_at_ms', ARGV[5])
local floor = seq
for _, drained in ipairs(redis.call('HVALS', KEYS[4])) do
  floor = math.min(floor, tonumber(drained))
end
-- Exact MINID (no ~): trimming runs once per snapshot, and what stays is then predictable.
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', floor + 1))
return 1
"""

# KEYS: journal, readers. ARGV: name, from_seq or ''.
_REGISTER_LUA = _LAST_GENERATED_LUA + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local from_seq = ARGV[2]
if from_seq == '' then
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if oldest then
    from_seq = string.format('%d', tonumber(string.match(oldest[1], '^(%d+)-')) - 1)
  else
    from_seq = string.format('%d', last_generated(KEYS[1]))
  end
end
redis.call('HSET', KEYS[2], ARGV[1], from_seq)
return 1
"""

# KEYS: readers. ARGV: name, seq.
_CHECKPOINT_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOREADER ' .. ARGV[1] .. ' is not registered')
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_LAST_SEQ_LUA = _LAST_GENERATED_LUA + "return last_generated(KEYS[1])"

# KEYS: epoch. ARGV: epoch. A new epoch for the holder of the current one, else FENCED.
_RECLAIM_LUA = _LAST_GENERATED_LUA + """
local fenced = check_epoch(KEYS[1], ARGV[1])
if fenced then return fenced end
return redis.call('INCR', KEYS[1])
"""


def partition_keys(prefix: str, partition: int) -> str:
    """Where a virtual partition's keys start; the braces are its Redis Cluster hash tag."""
    return f"{prefix}:{{p{partition}}}"


class Fenced(Exception):
    """Another actor claimed this partition: this one may no longer write."""


def connect(url: str) -> redis.Redis:
    """A client for a `redis://`, `rediss://` or `unix://` URL, tuned for the journal's hot path.

    Replies stay bytes (entries and snapshots are binary). Options in the URL's query string
    win over these defaults. Nothing is retried automatically: explicit ids make a blind
    retry of an append unable to double an entry (Redis refuses an id not above the stream's
    top), but they do not make it safe. If the first try landed and only its reply was lost,
    the retry is refused, or fenced if another actor claimed meanwhile, and a write that
    succeeded would be reported as failed. So a partition takes any failed write as
    unknown: it refuses changes and rebuilds its state from what the journal holds.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(NoBackoff(), 0),
    )


class JournalStore:
    """A partition's journal and snapshot; writes are refused once another store claims it.

    The client must return bytes (decode_responses=False, as `connect` builds it).
    """

    def __init__(self, client: redis.Redis, partition: int,
                 prefix: str = "availability") -> None:
        self._client = client
        self.partition = partition
        base = partition_keys(prefix, partition)
        self._journal, self._epoch_key = f"{base}:journal", f"{base}:epoch"
        self._snapshot, self._readers = f"{base}:snapshot", f"{base}:readers"
        self.epoch = 0
        self._scripts = [client.register_script(source) for source in
                         (_APPEND_LUA, _SAVE_SNAPSHOT_LUA, _REGISTER_LUA, _CHECKPOINT_LUA,
                          _LAST_SEQ_LUA, _RECLAIM_LUA)]
        (self._append, self._save_snapshot, self._register, self._checkpoint,
         self._last_seq, self._reclaim) = self._scripts

    def claim(self) -> int:
        """Take the partition over: bump the epoch, so earlier holders are fenced, and keep it."""
        self.epoch = self._client.incr(self._epoch_key)
        self._load_scripts()
        return self.epoch

    def _load_scripts(self) -> None:
        # Loaded now so the first append is a single EVALSHA; after a Redis restart empties
        # the script cache, redis-py reloads on NOSCRIPT, which is safe: nothing ran.
        # One question for all six first: an actor claims dozens of virtual partitions.
        loaded = self._client.script_exists(*(script.sha for script in self._scripts))
        for script, there in zip(self._scripts, loaded, strict=True):
            if not there:
                self._client.script_load(script.script)

    def reclaim(self) -> int:
        """Move to a new epoch while still holding the current one (else raise Fenced), so
        whatever this holder started under the old one (a snapshot child) is fenced too."""
        self.epoch = int(self._fenced(self._reclaim, [self._epoch_key], [self.epoch]))
        self._load_scripts()  # a restarted Redis lost them; pipelined appends need them
        return self.epoch

    def current_epoch(self) -> int:
        """The partition's epoch in Redis now (0 if never claimed); above `epoch` once fenced."""
        return int(self._client.get(self._epoch_key) or 0)

    def append(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """Add `(last_seq, data)` entries, in increasing last_seq, in one round trip.

        All or nothing: raises Fenced if the partition was claimed by another store (or never
        by this one), redis.ResponseError if an id is not above the journal's newest.
        """
        if not entries:
            return
        args: list[int | str | bytes] = [self.epoch]
        for last_seq, data in entries:
            args += (f"{last_seq}-0", data)
        self._fenced(self._append, [self._epoch_key, self._journal], args)

    def append_to(self, pipe, entries: Sequence[tuple[int, bytes]]) -> None:
        """Queue `append(entries)` on a pipeline of other partitions' appends (the scripts
        are loaded at claim; a pipeline does not reload them)."""
        args: list[int | str | bytes] = [self.epoch]
        for last_seq, data in entries:
            args += (f"{last_seq}-0", data)
        pipe.evalsha(self._append.sha, 2, self._epoch_key, self._journal, *args)

    @staticmethod
    def as_fenced(error: BaseException) -> BaseException:
        """A pipelined append's error as `append` would raise it (Fenced when fenced)."""
        if isinstance(error, redis.ResponseError) and str(error).startswith(_FENCED):
            return Fenced(str(error))
        return error

    def entries_after(self, seq: int, chunk: int = 2000) -> Iterator[bytes]:
        """Every entry with last_seq above `seq`, oldest first, read `chunk` at a time.

        Entries trimmed away are not there: replay sees that as a gap (JournalGap).
        """
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        start = seq + 1
        while True:
            rows = self._client.xrange(self._journal, min=f"{start}-0", count=chunk)
            for _, fields in rows:
                yield fields[b"e"]
            if len(rows) < chunk:
                return
            start = _seq_of(rows[-1][0]) + 1

    def last_seq(self) -> int:
        """last_seq of the newest entry ever appended, trimmed or not; 0 if none."""
        return int(self._last_seq(keys=[self._journal]))

    def save_snapshot(self, seq: int, data: bytes, saved_at_ms: int) -> bool:
        """Store the snapshot taken at `seq` and trim the journal behind it; False if refused.

        Refused, storing nothing, while the journal has not reached `seq` (the snapshot would
        hold state the journal does not) or when `seq` is below the stored snapshot's (the
        journal may already be trimmed past it). Trimming stops at the slowest reader's
        checkpoint. Raises Fenced if another store claimed the partition.

        The bytes go first as chunks under keys nothing reads yet, one command each, so a
        snapshot of hundreds of MB never blocks Redis (and every partition's journal) for
        long; then one script makes them the snapshot, atomically.
        """
        base = f"{self._snapshot}:{seq}:{uuid.uuid4().hex}"
        chunks = range(0, max(len(data), 1), SNAPSHOT_CHUNK_BYTES)
        saved = False
        try:
            with memoryview(data) as view:
                for number, start in enumerate(chunks):
                    # Chunks expire unless the script below keeps them: a writer killed
                    # halfway leaves nothing behind for long.
                    self._client.set(f"{base}:{number}",
                                     view[start:start + SNAPSHOT_CHUNK_BYTES],
                                     px=SNAPSHOT_CHUNK_TTL_MS)
            saved = bool(self._fenced(
                self._save_snapshot,
                [self._epoch_key, self._journal, self._snapshot, self._readers],
                [self.epoch, seq, base, len(chunks), saved_at_ms]))
        finally:
            if not saved:
                with contextlib.suppress(redis.RedisError):  # they expire anyway
                    self._client.unlink(*(f"{base}:{n}" for n in range(len(chunks))))
        return saved

    def load_snapshot(self) -> tuple[int, bytes] | None:
        """(seq, data) of the stored snapshot, or None if there is none."""
        for _ in range(SNAPSHOT_READ_ATTEMPTS):
            seq, base, count = self._client.hmget(self._snapshot, ["seq", "chunks_key", "chunks"])
            if seq is None:
                return None
            keys = [f"{base.decode()}:{n}" for n in range(int(count))]
            # A few at a time: one reply of hundreds of MB would stall Redis for everyone.
            chunks = [chunk for start in range(0, len(keys), 8)
                      for chunk in self._client.mget(keys[start:start + 8])]
            if None not in chunks:
                return int(seq), b"".join(chunks)
            # A newer snapshot replaced this one between the two reads: read that one.
        raise RuntimeError(f"snapshot {self._snapshot} names chunks that are not there")

    def snapshot_seq(self) -> int:
        """The stored snapshot's seq, 0 if there is none."""
        return int(self._client.hget(self._snapshot, "seq") or 0)

    def register_reader(self, name: str, from_seq: int | None = None) -> None:
        """Register a downstream reader; trimming never passes its checkpoint from now on.

        A reader already registered keeps its checkpoint. Without `from_seq` the reader starts
        just before the oldest entry still in the journal, so it loses nothing still there
        (chosen in the same script as the registration, so no trim slips in between). With an
        empty journal that is the newest seq ever written: everything up to it is trimmed and
        only in the snapshot.
        """
        self._register(keys=[self._journal, self._readers],
                       args=[name, "" if from_seq is None else from_seq])

    def checkpoint(self, name: str, seq: int) -> None:
        """Record that reader `name` has drained every entry up to `seq`; the next snapshot
        may trim up to there. KeyError if the reader is not registered (an unregistered
        reader must not come back to life and pin the journal)."""
        try:
            self._checkpoint(keys=[self._readers], args=[name, seq])
        except redis.ResponseError as error:
            if str(error).startswith(_NO_READER):
                raise KeyError(name) from error
            raise

    def unregister_reader(self, name: str) -> None:
        """Forget a reader; the next snapshot trims without waiting for it."""
        self._client.hdel(self._readers, name)

    def readers(self) -> dict[str, int]:
        """Every registered reader and the last seq it has drained."""
        return {name.decode(): int(seq)
                for name, seq in self._client.hgetall(self._readers).items()}

    def journal_length(self) -> int:
        """How many entries the journal holds now (after trimming)."""
        return self._client.xlen(self._journal)

    def _fenced(self, script, keys: list[str], args: list):
        try:
            return script(keys=keys, args=args)
        except redis.ResponseError as error:
            if str(error).startswith(_FENCED):
                raise Fenced(str(error)) from error
            raise


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


def forget_keys(url: str, prefix: str) -> int:
    """Delete every key of the engine whose keys start with `prefix:`; returns how many."""
    client = connect(url)
    deleted = 0
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        deleted += client.delete(key)
    return deleted
