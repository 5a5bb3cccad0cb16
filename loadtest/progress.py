"""A plain progress bar on stderr: redrawn in place on a terminal, a line every few s elsewhere."""

from __future__ import annotations

import sys
from typing import TextIO

BAR_CHARS = 24
# Off a terminal (CI logs), one line this often instead of a bar redrawn in place.
LINE_EVERY_S = 5.0


class ProgressBar:
    def __init__(self, name: str, duration_s: float, enabled: bool = True,
                 stream: TextIO = sys.stderr) -> None:
        self._name = name
        self._duration_s = duration_s
        self._enabled = enabled
        self._stream = stream
        self._tty = stream.isatty()
        self._last_line_s = -LINE_EVERY_S

    def show(self, elapsed_s: float, arrived: int, buyers: int, ops: int, held: int,
             rejected: int, errors: int) -> None:
        """Draw the bar for `elapsed_s` seconds into the run."""
        if not self._enabled or (not self._tty and elapsed_s - self._last_line_s < LINE_EVERY_S):
            return
        self._last_line_s = elapsed_s
        filled = min(BAR_CHARS, round(BAR_CHARS * arrived / max(1, buyers)))
        line = (f"{self._name:<10} [{'#' * filled}{'.' * (BAR_CHARS - filled)}] "
                f"{elapsed_s:5.1f}/{self._duration_s:g} s  buyers {arrived:,}/{buyers:,}  "
                f"ops {ops:,}  held {held:,}  rejected {rejected:,}  errors {errors:,}")
        self._stream.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
        self._stream.flush()

    def done(self, summary: str) -> None:
        """End the bar with a closing line."""
        if self._enabled:
            self._stream.write(f"{chr(13) if self._tty else ''}{self._name:<10} {summary}"
                               f"{chr(27) + '[K' if self._tty else ''}\n")
            self._stream.flush()
