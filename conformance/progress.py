"""A one-line progress display for long runs on a terminal: files done, exchanges/s, ETA.

Shown only when the stream is a terminal, only after the first second, at most a few times a second,
and cleared before any other output line, so pipes, files and CI logs never see it.
"""

from __future__ import annotations

import time
from typing import TextIO

SHOW_AFTER_S = 1.0
REFRESH_S = 0.25


class Progress:
    def __init__(self, stream: TextIO, total: int | None = None, *, clock=time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.clock = clock
        self.started = clock()
        self.shown_at = 0.0
        self.visible = False
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, files: int, exchanges: int) -> None:
        now = self.clock()
        elapsed = now - self.started
        if not self.enabled or elapsed < SHOW_AFTER_S or now - self.shown_at < REFRESH_S:
            return
        self.shown_at = now
        line = f"validate: {files}{f'/{self.total}' if self.total else ''} files, {exchanges:,} exchanges " \
               f"({exchanges / elapsed:,.0f}/s), {elapsed:.0f} s"
        if self.total and files:
            line += f", ETA {elapsed / files * (self.total - files):.0f} s"
        self.stream.write("\r\033[K" + line)
        self.stream.flush()
        self.visible = True

    def clear(self) -> None:
        if self.visible:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.visible = False
