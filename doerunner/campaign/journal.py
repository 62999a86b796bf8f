"""The append-only journal of finished cases (``journal.jsonl``): what ``--resume`` reads.

One self-contained JSON line per finished case, written with a single ``write`` and
flushed at once (a killed srd loses nothing that was written), and fsynced at least once a
second and at close (a power loss loses at most the last second). A torn last line — a
crash in the middle of a write — is detected on reading and cut off before appending.

Reading checks every line (``journal_check``): a corrupt one anywhere — not JSON, not laid
out as srd writes it, a result of the wrong shape — is skipped, and the lines after it are
read on; its case runs again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from doerunner.campaign.journal_check import read_line
from doerunner.outputs.targets import open_own
from doerunner.results import CaseResult

JOURNAL_VERSION = 1
FSYNC_INTERVAL_S = 1.0


@dataclass(slots=True)
class Scanned:
    """What a journal holds: ``entries`` — ``(offset, line number, case result as JSON)`` of
    each sound line, in file order; ``corrupt`` — ``(line number, why, case_id or None)``
    of each line skipped; ``torn`` — the line number of a torn last line (no LF: a crash during a
    write), else None; ``valid_length`` — the bytes up to the end of the last complete line
    (appending starts there: a torn tail is cut off)."""

    entries: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    corrupt: list[tuple[int, str, str | None]] = field(default_factory=list)
    torn: int | None = None
    valid_length: int = 0


def scan(path: Path) -> Scanned:
    """Read and check the journal at ``path`` (absent: nothing in it)."""
    out = Scanned()
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return out
    with f:
        offset = 0
        for n, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):  # only the last line can lack its LF
                out.torn = n
                break
            case, problem, case_id = read_line(raw, JOURNAL_VERSION)
            if case is None:
                out.corrupt.append((n, problem or "corrupt", case_id))
            else:
                out.entries.append((offset, n, case))
            offset += len(raw)
            out.valid_length = offset
    return out


def case_json(line: bytes) -> bytes:
    """The raw JSON of the case result inside a journal line (no parsing: lines are
    written as ``{"v":..,"run_id":"..","case":<result>}``)."""
    start = line.index(b'"case":') + 7
    return line[start:line.rindex(b"}")]


class Journal:
    """Appends finished cases to ``path``. Use as a context manager or call ``close()``."""

    def __init__(self, path: Path, *, truncate_to: int | None = None) -> None:
        self.path = path
        fd = open_own(path)  # never through a link planted in the run directory
        if truncate_to is not None:
            os.ftruncate(fd, truncate_to)
        os.lseek(fd, 0, os.SEEK_END)
        self._fd = fd
        self._lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._dirty = False
        self._timer: threading.Timer | None = None

    def append(self, result: CaseResult, run_id: str) -> int:
        """Write one finished case; returns the byte offset of its line."""
        # The layout is fixed (case last) so that case_json() can slice it without parsing.
        # orjson: 20x faster than json here, which matters for 100k-case runs; it writes
        # NaN and infinity as null (metrics.csv shows them empty either way).
        data = b"".join((b'{"v":', str(JOURNAL_VERSION).encode(), b',"run_id":',
                         orjson.dumps(run_id), b',"case":', orjson.dumps(result.to_json()),
                         b"}\n"))
        with self._lock:
            offset = os.lseek(self._fd, 0, os.SEEK_END)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self._dirty = True
            if time.monotonic() - self._last_sync >= FSYNC_INTERVAL_S:
                self._sync_locked()
            elif self._timer is None:
                self._timer = threading.Timer(FSYNC_INTERVAL_S, self._sync_from_timer)
                self._timer.daemon = True
                self._timer.start()
        return offset

    def _sync_locked(self) -> None:
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
        self._dirty = False
        self._last_sync = time.monotonic()

    def _sync_from_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._sync_locked()

    def close(self) -> None:
        """fsync what is left and close."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._fd >= 0:
                self._sync_locked()
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(path: Path, offsets: list[int]) -> Iterator[bytes]:
    """The raw journal lines at ``offsets``, in the given order."""
    with open(path, "rb") as f:
        for off in offsets:
            f.seek(off)
            yield f.readline()
