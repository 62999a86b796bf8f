"""Captured logs written off the critical path: one background writer thread.

Creating a file costs from tens of microseconds to more than a millisecond of kernel time
(ext4 without a journal scans the recently deleted inodes of the directory's group on
every creation), as much as running a trivial command. So while a writer is active
(``start``, or the ``background`` context manager around a run), a backend hands each
finished log to it as ``(path, bytes)`` — or asks it to remove a stale log, or to append to
a log that is written as it grows — and goes on with the next case. Queuing does not wake
the writer: the backend calls ``kick`` once it has started the next command, so the file
work overlaps that command rather than srd's own work or the start of a process (a file
creation can keep a CPU busy in the kernel for a millisecond). The writer also starts by
itself when the queue is half full or its oldest operation has waited ``LAZY_S``.

Guarantees:

* Order: one thread performs the operations in the order they were queued (FIFO), so a
  later execution's log for a path always lands after an earlier one, an append lands
  after the write that created the file, and the removal of a stale log can neither
  overtake nor be overtaken by a write. Nothing on the critical path waits for the queue.
* Nothing is lost but what is still queued: ``flush`` waits until every queued operation
  is on disk; ``close`` flushes and stops the thread; the ``background`` context manager
  closes on the way out, whatever ends the block (an exception, Ctrl-C); an ``atexit``
  hook drains a writer nobody closed. Only a hard kill of srd loses the queued logs.
* Errors are never swallowed: the first one (the ``OSError`` of the failed ``open`` /
  ``write`` / ``unlink``, naming the file) is kept and raised by the next ``flush`` or
  ``close`` (once; a note on it counts the further failures), and ``on_error`` (if given)
  is called with it as soon as it happens, from the writer thread. A writer nobody
  closed reports its error on stderr at exit.
* Memory is bounded: queuing blocks while more than ``MAX_PENDING_BYTES`` bytes or
  ``MAX_PENDING_OPS`` operations wait (the writer is then far behind the runs anyway).

Without an active writer, ``write``, ``append`` and ``unlink`` act at once in the caller's
thread and raise their errors there, so code that runs a backend by itself (tests, the
Python API) finds the logs on disk as soon as ``execute`` returns.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

MAX_PENDING_BYTES = 64 << 20
MAX_PENDING_OPS = 4096
# The writer starts on queued operations when kicked (``kick``: the shell backend does so
# once it has started the next case's command, so the file work overlaps the command and
# not srd's own work), when the queue is half full, on flush/close, or at the latest this
# many seconds after the oldest was queued.
LAZY_S = 0.05

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | _CLOEXEC
_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | _CLOEXEC

# Operations: (kind, path, data). Kinds:
_WRITE, _APPEND, _UNLINK = 0, 1, 2

ErrorCallback = Callable[[BaseException], None]
PathLike = str | os.PathLike[str]


def write_file(path: PathLike, data: bytes, append: bool = False) -> None:
    """Create ``path`` (or append to it) and write ``data`` (mode 0o666 less the umask, as
    ``open(path, "wb")``). An existing file is written over in place and cut to length, not
    truncated first: on ext4, truncating frees the old blocks and writing allocates new ones,
    five times the cost (a run over an old run directory rewrites every log)."""
    fd = os.open(path, _APPEND_FLAGS if append else _WRITE_FLAGS, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if not append:
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def remove_file(path: PathLike) -> None:
    """Remove ``path``; a missing file is fine."""
    with suppress(FileNotFoundError):
        os.unlink(path)


def _add_note(e: BaseException, note: str) -> None:
    """``e.add_note(note)`` (Python 3.11+; on 3.10 the note is only kept)."""
    if hasattr(e, "add_note"):
        e.add_note(note)
    else:  # pragma: no cover - Python 3.10
        with suppress(AttributeError, TypeError):
            e.__notes__ = [*getattr(e, "__notes__", []), note]  # type: ignore[attr-defined]


def _perform(kind: int, path: PathLike, data: bytes) -> None:
    if kind == _UNLINK:
        remove_file(path)
    else:
        write_file(path, data, append=kind == _APPEND)


class LogWriter:
    """A FIFO of file writes, appends and removals performed by one daemon thread."""

    def __init__(self, on_error: ErrorCallback | None = None,
                 max_pending_bytes: int = MAX_PENDING_BYTES,
                 max_pending_ops: int = MAX_PENDING_OPS) -> None:
        self._on_error = on_error
        self._max_bytes = max_pending_bytes
        self._max_ops = max_pending_ops
        self._cv = threading.Condition(threading.Lock())
        self._queue: deque[tuple[int, PathLike, bytes]] = deque()
        self._pending_bytes = 0  # queued or being written
        self._busy = False  # a batch was taken from the queue and is not done yet
        self._kicked = False  # the writer is asked to start on the queue now
        self._since = 0.0  # when the oldest queued operation was queued
        self._closing = False
        self._error: BaseException | None = None
        self._more_errors = 0
        self._thread = threading.Thread(target=self._run, name="srd-logwriter", daemon=True)
        self._thread.start()

    # -- the producer side ---------------------------------------------------------------
    def write(self, path: PathLike, data: bytes) -> None:
        """Queue: create or truncate ``path`` and write ``data``."""
        self._put(_WRITE, path, bytes(data))

    def append(self, path: PathLike, data: bytes) -> None:
        """Queue: append ``data`` to ``path`` (created if missing)."""
        self._put(_APPEND, path, bytes(data))

    def unlink(self, path: PathLike) -> None:
        """Queue: remove ``path`` if it exists."""
        self._put(_UNLINK, path, b"")

    def _put(self, kind: int, path: PathLike, data: bytes) -> None:
        size = len(data)
        with self._cv:
            while not self._closing:
                # Back-pressure; an oversized single write is still accepted once the queue
                # is empty, so nothing can wait forever.
                if not self._queue or (self._pending_bytes + size <= self._max_bytes
                                       and len(self._queue) < self._max_ops):
                    if not self._queue:
                        self._since = time.monotonic()
                    self._queue.append((kind, path, data))
                    self._pending_bytes += size
                    # The writer is not woken: kick() does it at a good moment (or it
                    # finds the operation within LAZY_S), unless the queue fills up.
                    if (2 * self._pending_bytes > self._max_bytes
                            or 2 * len(self._queue) > self._max_ops):
                        self._kicked = True
                        self._cv.notify_all()
                    return
                self._kicked = True
                self._cv.notify_all()
                self._cv.wait()
            # Raced with close(): act in this thread, once what was queued before is done.
            self._wait_idle()
        _perform(kind, path, data)

    def kick(self) -> None:
        """Start on what is queued now (the caller is about to wait for something else,
        e.g. a child it just started, so the writer competes with nothing)."""
        if self._queue and not self._kicked:
            with self._cv:
                self._kicked = True
                self._cv.notify_all()

    def _wait_idle(self) -> None:
        """Call with ``_cv`` held."""
        self._kicked = True
        self._cv.notify_all()
        while (self._queue or self._busy) and self._thread.is_alive():
            self._cv.wait()

    def flush(self) -> None:
        """Wait until every queued operation is done; raise the first error since the last
        ``flush`` (with a note counting later ones)."""
        with self._cv:
            self._wait_idle()
        self._raise_error()

    def close(self) -> None:
        """Flush, stop the thread and raise the first error, if any. Idempotent."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._raise_error()

    @property
    def pending(self) -> int:
        """Operations queued, plus one while a batch is being written."""
        with self._cv:
            return len(self._queue) + self._busy

    def _raise_error(self) -> None:
        with self._cv:
            error, more = self._error, self._more_errors
            self._error, self._more_errors = None, 0
        if error is not None:
            if more:
                _add_note(error, f"({more} more log operation{'s' if more > 1 else ''} "
                                 "failed)")
            raise error

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        cv, queue = self._cv, self._queue
        while True:
            with cv:
                while not self._closing:
                    if queue and (self._kicked
                                  or time.monotonic() - self._since >= LAZY_S):
                        break
                    # A timed wait even when idle: queuing does not wake the writer.
                    cv.wait(LAZY_S)
                if not queue:  # closing and drained
                    cv.notify_all()
                    return
                batch = list(queue)  # everything queued, in order
                queue.clear()
                self._busy = True
                self._kicked = False
            errors: list[BaseException] = []
            for kind, path, data in batch:
                try:
                    _perform(kind, path, data)
                except BaseException as e:  # kept and raised by flush()
                    errors.append(e)
            first: BaseException | None = None
            with cv:
                self._busy = False
                self._pending_bytes -= sum(len(data) for _, _, data in batch)
                for e in errors:
                    if self._error is None:
                        self._error = first = e
                    else:
                        self._more_errors += 1
                cv.notify_all()
            if first is not None and self._on_error is not None:
                with suppress(Exception):
                    self._on_error(first)


# -- the process-wide writer the backends use ------------------------------------------------
_active: LogWriter | None = None
_active_lock = threading.Lock()


def start(on_error: ErrorCallback | None = None) -> LogWriter:
    """Start the process-wide background writer (idempotent: returns the active one)."""
    global _active
    with _active_lock:
        if _active is None:
            _active = LogWriter(on_error)
        return _active


def active() -> LogWriter | None:
    """The active background writer, or None (logs are then written synchronously)."""
    return _active


def flush() -> None:
    """Wait until every queued log operation is done; raise the first error, if any.
    A no-op without an active writer."""
    w = _active
    if w is not None:
        w.flush()


def close() -> None:
    """Flush, stop the background writer and raise the first error, if any. Logs written
    afterwards are written synchronously again. A no-op without an active writer."""
    global _active
    with _active_lock:
        w, _active = _active, None
    if w is not None:
        w.close()


@contextmanager
def background(on_error: ErrorCallback | None = None) -> Iterator[LogWriter]:
    """Write logs in the background inside the block; on the way out wait until every log
    is on disk and raise the first error. When the block itself raised, that exception
    propagates, with a note about a log error if there was one. A nested use (a writer
    already active) leaves the writer to the outer one."""
    if _active is not None:
        yield _active
        return
    writer = start(on_error)
    try:
        yield writer
    except BaseException as e:
        try:
            close()
        except Exception as log_error:
            _add_note(e, f"also, a log could not be written: {log_error}")
        raise
    close()


def write(path: PathLike, data: bytes) -> None:
    """Write a whole log: queued when a writer is active, else at once."""
    w = _active
    if w is None:
        write_file(path, data)
    else:
        w.write(path, data)


def append(path: PathLike, data: bytes) -> None:
    """Append to a log: queued when a writer is active, else at once."""
    w = _active
    if w is None:
        write_file(path, data, append=True)
    else:
        w.append(path, data)


def kick() -> None:
    """Let the active writer start on what is queued (see ``LogWriter.kick``)."""
    w = _active
    if w is not None:
        w.kick()


def unlink(path: PathLike) -> None:
    """Remove a stale log: queued when a writer is active, else at once."""
    w = _active
    if w is None:
        remove_file(path)
    else:
        w.unlink(path)


def _close_at_exit() -> None:
    try:
        close()
    except Exception as e:  # exiting: report, never raise
        with suppress(Exception):
            sys.stderr.write(f"srd: warning: a log could not be written: {e}\n")


def _forget_in_child() -> None:
    global _active, _active_lock
    _active = None  # the writer thread does not exist in a forked child
    _active_lock = threading.Lock()


atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)

__all__ = [
    "LogWriter",
    "active",
    "append",
    "background",
    "close",
    "flush",
    "kick",
    "remove_file",
    "start",
    "unlink",
    "write",
    "write_file",
]
