"""Every report file chatconf writes goes through here: atomic, checked, and one run per report dir.

A report file is written to a temporary file in its own directory and renamed over the target only
once complete (`os.replace`), so a full disk, a read-only file system or a crash leaves the previous
good file in place (never a 0-byte or half-written one) and no temporary behind. A failed write
raises `OutputError`, whose text is the one line the command prints (the file and the OS error) before
exiting with `EXIT_OUTPUT`; a command never names a report it did not write.

`report_dir_lock` is an advisory lock (flock on `DIR/.chatconf.lock`, released when the process ends
in any way): a second chatconf writing to the same report dir stops before it sends a request.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import UsageError

EXIT_OUTPUT = 4
"""Exit code of a command whose report could not be written (full disk, permissions, read-only)."""

LOCK_NAME = ".chatconf.lock"


def _file_mode() -> int:
    """What open() would give a new file under the current umask (mkstemp's files are 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


class OutputError(Exception):
    """A report file could not be written; str() is the one line to print."""

    def __init__(self, path: str | Path, exc: OSError):
        self.path = Path(path)
        self.os_error = exc
        reason = exc.strerror or str(exc) or type(exc).__name__
        super().__init__(f"cannot write {self.path}: {reason}")


class _CheckedFile:
    """A report file being written: every write checked, a failure dropped and raised as OutputError."""

    path: Path
    _fh: IO

    def write(self, data: str | bytes, *, flush: bool = False) -> None:
        try:
            self._fh.write(data)
            if flush:
                self._fh.flush()
        except OSError as exc:
            self.abort()
            raise OutputError(self.path, exc) from None

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed


class AtomicFile(_CheckedFile):
    """A file written in pieces that appears at `path` only on `commit()` (a recording, written as the
    run goes). `abort()` drops it; a failed write raises OutputError and drops it too."""

    def __init__(self, path: str | Path, *, binary: bool = False):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            import tempfile  # here: `validate` and the proxy import this module and never write a report

            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            os.fchmod(fd, _MODE)
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        self.tmp = Path(tmp)
        mode = "wb" if binary else "w"
        self._fh = os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8", "newline": "\n"}))

    def commit(self) -> Path:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(self.path, exc) from None
        return self.path

    def abort(self) -> None:
        super().abort()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class LiveFile(_CheckedFile):
    """A file written in place, line by line, readable while it grows (a proxy's recording); `commit()`
    only closes it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise OutputError(self.path, exc) from None

    def commit(self) -> Path:
        try:
            self._fh.close()
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        return self.path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a whole file atomically; raises OutputError (the old file, if any, stays as it was)."""
    out = AtomicFile(path, binary=isinstance(data, bytes))
    out.write(data)
    return out.commit()


@contextlib.contextmanager
def report_dir_lock(report_dir: str | Path, flag: str = "--report-dir") -> Iterator[None]:
    """Hold the report dir for this process; another chatconf holding it is a usage error (exit 2)."""
    path = Path(report_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UsageError(f"{flag} {report_dir}: cannot use it: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{flag} {report_dir}: in use by another running chatconf; "
                             "use another directory or wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # releases the lock
