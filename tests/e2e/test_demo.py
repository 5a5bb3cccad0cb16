"""`availability demo`, the README's first command: a real serve with its dashboard, the
retail-day simulators moving its figures, and Ctrl-C leaving no process behind."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import AVAILABILITY

START_TIMEOUT_S = 120.0
MOVE_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0
SMALL = ("--speed", "240", "--stores", "10", "--skus", "10", "--partitions", "2")
RESERVATIONS = re.compile(r"^availability_reservations_total\{[^}]*\} (\S+)$", re.M)


def _start(ray_address: str, *args: str) -> tuple[subprocess.Popen, queue.Queue]:
    demo = subprocess.Popen([*AVAILABILITY, "demo", *SMALL, "--ray-address", ray_address, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return demo, lines


def _read_until(lines: queue.Queue, pattern: str, timeout_s: float) -> tuple[re.Match, list]:
    seen, deadline = [], time.monotonic() + timeout_s
    while (left_s := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left_s)
        except queue.Empty:
            break
        assert line is not None, "".join(seen)[-3_000:]
        seen.append(line)
        if match := re.search(pattern, line):
            return match, seen
    raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n{''.join(seen)[-3_000:]}")


def _reservations(dashboard_url: str) -> float:
    with urllib.request.urlopen(f"{dashboard_url}metrics", timeout=5) as answer:
        return sum(map(float, RESERVATIONS.findall(answer.read().decode())))


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def test_demo_serves_a_dashboard_whose_figures_move_and_ctrl_c_leaves_no_children(
        ray_address):
    """The dashboard URL it prints answers, Reserve counts climb as the simulators shop,
    and SIGINT drains serve, the sync job, the publisher and Redis: nothing is left."""
    demo, lines = _start(ray_address)
    try:
        match, _ = _read_until(lines, r"Open the ops dashboard:\s+(\S+)", START_TIMEOUT_S)
        dashboard_url = match[1]
        _, welcome = _read_until(lines, r"Ctrl-C stops everything", 10)
        assert "export AVAILABILITY_TOKEN=avl_" in "".join(welcome)  # auth is on
        first = _reservations(dashboard_url)
        deadline = time.monotonic() + MOVE_TIMEOUT_S
        while _reservations(dashboard_url) <= first:
            assert time.monotonic() < deadline, "no Reserve reached the engine"
            time.sleep(0.5)
        _read_until(lines, r"simulated\s+orders: web [1-9]", MOVE_TIMEOUT_S)
        children = _descendants(demo.pid)
        assert len(children) >= 3, children  # serve, and below it erp-sync, publish, Redis
        demo.send_signal(signal.SIGINT)
        _read_until(lines, r"^Summary", STOP_TIMEOUT_S)
        assert demo.wait(STOP_TIMEOUT_S) == 0
        left = {pid for pid in children if _alive(pid)}
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:120] for pid in left]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def test_demo_with_duration_stops_by_itself_with_a_summary(ray_address):
    """--duration ends the demo on its own: a summary judged by the simulated shelves, no
    oversell through the engine, exit status 0."""
    demo, lines = _start(ray_address, "--duration", "12")
    try:
        assert demo.wait(START_TIMEOUT_S + 60) == 0
        output = []
        while (line := lines.get(timeout=5)) is not None:
            output.append(line)
        text = "".join(output)
        web = re.search(r"^  web\s+(\d+) orders\s+\d+ units  oversold (\d+)", text, re.M)
        assert web and int(web[1]) > 0 and web[2] == "0", text[-3_000:]
        assert "Stopped." in text
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
