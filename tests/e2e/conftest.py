"""The real `availability serve` process, joined to the session's Ray, and channels to it.

A module shares one serve (`serve`, `stub`; its partition count is the module's
`SERVE_PARTITIONS`, default 2, and `SERVE_ARGS` adds flags); a test that needs its own, or
an extra `availability gateway`, starts it with `spawn`. Every process is sent SIGTERM and
reaped at teardown.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from engine.journal_store import forget_keys
from gateway.serve import LISTENING
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import stub_of, use_session_loop

# The console script beside this interpreter (the venv's), else `python -m engine.cli`.
AVAILABILITY = ([script] if (script := shutil.which("availability",
                                                    path=Path(sys.executable).parent))
                else [sys.executable, "-m", "engine.cli"])
# Joining a running Ray takes a second or two; a loaded 2-core machine may need much more.
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def pytest_collection_modifyitems(items):
    use_session_loop(items, Path(__file__).parent)


@dataclass
class ServeProcess:
    """One `availability serve` (or `gateway`) process that has printed its LISTENING line."""

    process: subprocess.Popen
    target: str
    namespace: str
    partitions: int
    stderr_path: Path
    # What it printed before the LISTENING line (the metrics address, for one).
    printed: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait; a process that outlives `timeout_s` is killed with its group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own group: serve's gateways
            return self.process.wait(timeout_s)


def start_serve(ray_address: str, log_dir: Path, partitions: int, command: str = "serve",
                namespace: str | None = None, args: tuple[str, ...] = (),
                env: dict[str, str] | None = None) -> ServeProcess:
    """Start `availability <command>` on port 0 in Ray at `ray_address`; return once serving."""
    namespace = namespace or f"e2e-{uuid.uuid4().hex[:12]}"
    stderr_path = log_dir / f"{command}-{namespace}-{uuid.uuid4().hex[:6]}.stderr"
    if command == "serve" and "--data-dir" not in args and "--redis-url" not in args:
        args = ("--redis-url", REDIS_URL, *args)  # keys under the fresh namespace
    argv = [*AVAILABILITY, command, "--ray-address", ray_address, "--ray-namespace", namespace,
            "--partitions", str(partitions), "--port", "0", *args]
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    served = ServeProcess(process, "", namespace, partitions, stderr_path)
    try:
        match = _read_until_listening(process, f"availability {command}", stderr_path,
                                      printed=served.printed)
    except BaseException:
        served.stop()
        raise
    served.target = f"{match['host']}:{match['port']}"
    return served


def _read_until_listening(process: subprocess.Popen, name: str, stderr_path: Path,
                          timeout_s: float = READY_TIMEOUT_S,
                          pattern: re.Pattern = LISTENING,
                          printed: list[str] | None = None) -> re.Match:
    """Read stdout in a thread until the LISTENING line, then keep draining it; fail with the
    process's stderr if it exits first or `timeout_s` passes. Lines before it go to
    `printed`."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while (remaining_s := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(remaining_s, 0.5))
        except queue.Empty:
            continue
        if line is None:
            code = process.wait(STOP_TIMEOUT_S)
            raise AssertionError(f"{name} exited with {code} before serving; "
                                 f"stderr:\n{_tail(stderr_path)}")
        match = pattern.search(line)
        if match:
            return match
        if printed is not None:
            printed.append(line)
    raise AssertionError(f"{name} printed no LISTENING line within {timeout_s}s; "
                         f"stderr:\n{_tail(stderr_path)}")


def _tail(path: Path, chars: int = 5_000) -> str:
    return path.read_text(errors="replace")[-chars:]


@pytest.fixture
def spawn(ray_address, tmp_path_factory):
    """Start serve or gateway processes for one test: `spawn(partitions, command=..., ...)`."""
    started: list[ServeProcess] = []
    log_dir = tmp_path_factory.mktemp("serve")

    def start(partitions: int, **options) -> ServeProcess:
        served = start_serve(ray_address, log_dir, partitions, **options)
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.stop()
        forget_keys(REDIS_URL, served.namespace)


@pytest.fixture(scope="module")
def serve(request, ray_address, tmp_path_factory):
    """One `availability serve` shared by a test module."""
    partitions = getattr(request.module, "SERVE_PARTITIONS", 2)
    served = start_serve(ray_address, tmp_path_factory.mktemp("serve"), partitions,
                         args=getattr(request.module, "SERVE_ARGS", ()))
    yield served
    served.stop()
    forget_keys(REDIS_URL, served.namespace)


@pytest.fixture(scope="module")
async def stub(serve):
    """The AvailabilityService stub on one channel to the module's serve."""
    async with grpc.aio.insecure_channel(serve.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), READY_TIMEOUT_S)
        yield stub_of(channel)
