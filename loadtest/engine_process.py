"""Server children for a load test: a private `availability serve` (port 0, its own
namespace and Redis), and bare servers (loadtest/bare_server.py) to compare it with."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.embedded_redis import PIDFILE_NAME
from gateway.serve import LISTENING

READY_TIMEOUT_S = 180.0
# The line serve prints before LISTENING when it has a metrics port.
DASHBOARD = re.compile(r"metrics and dashboard on (?P<url>\S+)")
STOP_GRACE_S = 30.0
STDERR_TAIL_CHARS = 3_000


@dataclass(frozen=True)
class Server:
    """A server process that printed its LISTENING line, and the port it printed."""

    process: subprocess.Popen
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def running(command: list[str], name: str) -> Iterator[Server]:
    """Start a server process and yield it once serving; SIGTERM it (then SIGKILL) on exit."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        # Its own process group, so a lingering server is killed with whatever it spawned.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   start_new_session=True)

        def stderr_tail() -> str:
            stderr.seek(0)
            return stderr.read()[-STDERR_TAIL_CHARS:]

        try:
            yield Server(process, int(wait_listening(process, name, stderr_tail)["port"]))
        finally:
            _stop_process(process)


@contextlib.contextmanager
def running_bare(processes: int) -> Iterator[Server]:
    """`processes` bare servers sharing one port, as `serve --gateways` shares its port."""
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "loadtest.bare_server", "--port", str(port)]

    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running(command(0), "bare server"))
        for _ in range(processes - 1):
            stack.enter_context(running(command(first.port), "bare server"))
        yield first


def wait_listening(process: subprocess.Popen, name: str, stderr_tail: Callable[[], str],
                   seen: Callable[[str], None] = lambda line: None) -> re.Match:
    """The process's LISTENING match; lines before it go to `seen`. Raises RuntimeError with
    the end of its stderr if it exits first or READY_TIMEOUT_S passes."""
    lines: queue.Queue[str | None] = queue.Queue()
    # The pump keeps reading after the line, so a full pipe never blocks the server.
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (remaining_s := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining_s)
        except queue.Empty:
            break
        if line is None:
            break
        if match := LISTENING.search(line):
            return match
        seen(line)
    raise RuntimeError(f"{name} did not start serving (exit code {process.poll()}); "
                       f"its stderr ends with:\n{stderr_tail()}")


def _pump(stream: IO[str], lines: queue.Queue) -> None:
    """Copy a process's output lines to `lines`; None once it closes."""
    for line in stream:
        lines.put(line)
    lines.put(None)


@dataclass
class EngineProcess:
    process: subprocess.Popen
    address: str
    namespace: str
    # The embedded Redis's folder, or None when it journals to --redis-url.
    data_dir: Path | None
    stderr_path: Path
    dashboard_url: str | None = None  # with --metrics-port among the extra arguments

    def gateway_pids(self) -> list[int]:
        """The extra `availability gateway` processes serve started (--gateways N > 1)."""
        return [pid for pid in _children(self.process.pid)
                if b"gateway" in _cmdline(pid).split(b"\0")]

    def redis_pid(self) -> int | None:
        """The embedded redis-server's pid, from its pid file; None with --redis-url."""
        if self.data_dir is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((self.data_dir / PIDFILE_NAME).read_text().strip())
        return None

    def stderr_tail(self, chars: int = STDERR_TAIL_CHARS) -> str:
        return self.stderr_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def running_engine(partitions: int, gateways: int, namespace: str,
                   ray_address: str | None = None, redis_url: str | None = None,
                   extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                   ingest_workers: int = 0) -> Iterator[EngineProcess]:
    """Start serve and yield it once it serves; SIGTERM it (then SIGKILL its group) on exit.

    Without `redis_url` it journals to an embedded Redis in a temporary folder, which goes
    with it. Without `ray_address` it starts a Ray of its own (`--ray-address local`).
    """
    # A short folder: the embedded Redis's unix socket path is limited to ~100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="avl-", dir="/tmp"))
    data_dir = None if redis_url else folder / "data"
    command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0",
               "--partitions", str(partitions), "--gateways", str(gateways),
               "--ray-address", ray_address or "local", "--ray-namespace", namespace,
               "--ingest-workers", str(ingest_workers),
               *(["--redis-url", redis_url] if redis_url else ["--data-dir", str(data_dir)]),
               *extra_args]
    stderr_path = folder / "serve.stderr"
    with open(stderr_path, "w") as stderr:
        # Its own process group, so whatever it spawned goes with it if it must be killed.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   start_new_session=True, env=env)
    engine = EngineProcess(process, "", namespace, data_dir, stderr_path)
    try:
        engine.address = _wait_listening(engine)
        yield engine
    finally:
        _stop(engine)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(engine: EngineProcess) -> str:
    def seen(line: str) -> None:
        if match := DASHBOARD.search(line):
            engine.dashboard_url = match["url"]

    match = wait_listening(engine.process, "availability serve", engine.stderr_tail, seen)
    return f"{match['host']}:{match['port']}"


def _stop(engine: EngineProcess) -> None:
    """SIGTERM (serve drains and stops its Redis), then SIGKILL the group if it lingers."""
    redis_pid = engine.redis_pid()
    if redis_pid:  # a Redis left paused by a fault must run again to shut down
        with contextlib.suppress(OSError):
            os.kill(redis_pid, signal.SIGCONT)
    _stop_process(engine.process)
    if redis_pid and _alive(redis_pid):  # its own session: it outlives a killed serve
        with contextlib.suppress(OSError):
            os.kill(redis_pid, signal.SIGTERM)


def _stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL its group if it outlives STOP_GRACE_S."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            # Not yet reaped, so the group id is still this process's own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            # Fields after the command's closing parenthesis: state, ppid, ...
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
