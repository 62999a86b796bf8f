"""Capturing a case's stdout and stderr: the capped log file and the metrics parser of each
stream.

A log holds at most ``cap`` bytes of its stream: its first half and its last half, with a
one-line note where bytes were left out. A stream that prints nothing leaves no file, and a
file left by an earlier execution at the same path is removed: a log never shows stale
output. Lines that may be metrics lines (they hold ``=`` or ``{``) go to an
``OutputParser``; stdout is also kept whole while it may be one JSON object (or an array of
one). A case with ``metric_*`` patterns also has every line go to its ``Extractor``; a case
without pays nothing for them. With ``echo`` (``srd run --show-output``) every chunk is
also written, as it arrives, to that file descriptor (a tee; a capture without pays one
test of an attribute per chunk).

A chatty command must not be slowed by srd (issue 17: ``benchmarks/capture.py``, srd at
0.8x or more of a bare ``os.read`` loop). ``read`` asks for ``READ_SIZE`` bytes until a read
fills that: the pipe is then grown to ``PIPE_SIZE`` and read that much at a time (a 1 MiB
buffer for the few bytes most commands print would cost more than their whole capture).
Nothing proportional to the bytes is done in Python: the log's middle is never copied (the
tail is a ring of the chunks read, ``_CappedLog``), and lines go to ``process.lines``,
which skips those whose effect is known with bytes methods (memchr, memcmp, count).

Most streams are short. A stream is kept in memory as it arrives and handled once, when it
ends: one parse, one file write. Only a stream that grows past ``SMALL`` bytes, or still
prints after ``LIVE_AFTER_S`` seconds (so that a long case's log can be watched), is handled
as it arrives (``_Streaming``): parsed line by line, its log written as it grows with the
tail kept in memory until the end. Either way the file and the metrics are the same.

Files are written by the thread that runs the case, once its processes are gone and its
time is taken (a GPU measurement window, around the whole execution, holds the write), and
an existing log is written over in place and cut to length (``write_file``). A writer
thread woken for each case cost more CPU in thread switches than the writes themselves, and
made srd wait on itself when other work shared the CPUs
(``benchmarks/overhead.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import time
from collections import deque
from typing import BinaryIO

from doerunner.backends.outparse import Extractor, OutputParser
from doerunner.inputs.patterns import MetricPattern
from doerunner.outputs.targets import open_own
from doerunner.process.lines import MAX_LINE, LineFeed, parse_lines

SMALL = 64 * 1024  # a stream is handled in one piece while it is no longer than this
READ_SIZE = 64 * 1024  # bytes asked of a pipe by a read, until one read fills that...
PIPE_SIZE = 1 << 20  # ...then the pipe's capacity (F_SETPIPE_SZ) and the read size
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
# A grown pipe read while it held less than a quarter of its capacity: wait this long (or
# until the process exits) before the next read, so that it gathers more (see Capture.read).
GATHER_S = 100e-6
_PIECE = 4096  # smaller chunks are joined in the log's tail ring (up to this): not copied
# A streaming log is kept in memory and written whole when its stream ends unless its head
# grows past MEMORY_LOG_MAX bytes or it still prints after LIVE_AFTER_S: then it is written
# as it grows.
MEMORY_LOG_MAX = 256 * 1024
LIVE_AFTER_S = 2.0

_JSON_START = (b"{", b"[")  # how a whole stdout that may be JSON metrics begins
LogPath = str | os.PathLike[str]


def write_file(path: LogPath, data: bytes) -> None:
    """Create ``path`` (mode 0o666 less the umask, as ``open(path, "wb")``) and write
    ``data``. An existing file is written over in place and cut to length, not truncated
    first: on ext4, truncating frees the old blocks and writing allocates new ones, five
    times the cost (a run over an old run directory rewrites every log)."""
    fd = open_own(path, 0o666)  # never through a link, nor into a FIFO, planted in logs/
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def remove_file(path: LogPath) -> None:
    """Remove a stale log; a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _note(omitted: int, cap: int) -> bytes:
    return f"\n[srd: {omitted} bytes omitted; log capped at {cap} bytes]\n".encode()


def capped(data: bytes, cap: int) -> bytes:
    """``data`` as its log holds it: whole when it fits ``cap``, else its first and last
    halves around a note of what was left out."""
    if len(data) <= cap:
        return data
    tail_cap = cap - cap // 2
    return data[:cap // 2] + _note(len(data) - cap, cap) + data[len(data) - tail_cap:]


def _grow(fd: int) -> int:
    """Grow the pipe ``fd`` to ``PIPE_SIZE``; the bytes a read should ask for: its
    capacity, or ``READ_SIZE`` when it could not be grown (the user's share of pipe memory
    is used up, ``/proc/sys/fs/pipe-user-pages-soft``; not Linux): the next full read tries
    again (a failed ``fcntl`` costs a microsecond)."""
    if _F_SETPIPE_SZ is not None:
        with contextlib.suppress(OSError):
            return max(fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE), READ_SIZE)
    return READ_SIZE


def _write_whole(path: LogPath, data: bytes, cap: int) -> None:
    if data:
        write_file(path, capped(data, cap))
    else:
        remove_file(path)


class Capture:
    """One captured stream: ``feed`` what arrives, ``finish`` when it ends, ``close`` in
    every case (it writes what a stream that never finished had). ``path`` is its log file
    (None: no log); ``keep_json``: keep the whole text while it may be one JSON object;
    ``patterns``: the case's ``metric_*`` patterns, matched by ``extractor``; ``echo``: a
    file descriptor that also gets every chunk as it arrives (None: captured only)."""

    __slots__ = ("_cap", "_chunks", "_done", "_echo", "_keep_json", "_path", "_read_size",
                 "_size", "_streaming", "_t_open", "extractor", "parser")

    def __init__(self, path: LogPath | None, cap: int, keep_json: bool,
                 patterns: tuple[MetricPattern, ...] = (), echo: int | None = None) -> None:
        self._echo = echo
        self._path = path
        self._cap = cap
        self._keep_json = keep_json
        self._chunks: list[bytes] = []
        self._size = 0
        self._t_open = time.monotonic()
        self._streaming: _Streaming | None = None
        self._done = False
        self._read_size = READ_SIZE
        self.parser = OutputParser()
        self.extractor = Extractor(patterns) if patterns else None

    def read(self, fd: int, wake: int | None = None) -> bool:
        """Read the pipe ``fd`` once (call when it is readable: it does not block) and
        ``feed`` what came; False at its end. The first read that fills ``READ_SIZE``
        grows the pipe to ``PIPE_SIZE`` (where the system lets it) and the reads to its
        capacity: fewer, larger reads for a chatty command, small ones for the rest.

        ``wake``: a descriptor readable once the command has exited (its pidfd). A grown
        pipe that held less than a quarter of its capacity is then left to gather for
        ``GATHER_S`` or until ``wake`` is readable, whichever comes first: a chatty command
        writing in small pieces (8 KiB for coreutils) would otherwise have srd wake and
        read for each, a few KiB at ~10 us of CPU a read, CPU a busy machine takes from the
        command itself; its exit is seen at once all the same (its time is not
        stretched)."""
        data = os.read(fd, self._read_size)
        if not data:
            return False
        size = self._read_size
        if len(data) == READ_SIZE == size:
            self._read_size = _grow(fd)
        self.feed(data)
        if wake is not None and size > READ_SIZE and len(data) < size >> 2:
            with contextlib.suppress(ValueError):  # a descriptor past select's FD_SETSIZE
                select.select((wake,), (), (), GATHER_S)
        return True

    def feed(self, data: bytes) -> None:
        if self._echo is not None:
            self._tee(data)
        streaming = self._streaming
        if streaming is not None:
            streaming.feed(data)
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > SMALL or time.monotonic() - self._t_open > LIVE_AFTER_S:
            streaming = self._streaming = _Streaming(self._path, self._cap, self._keep_json,
                                                     self.parser, self._t_open, self.extractor)
            chunks, self._chunks = self._chunks, []
            streaming.feed(b"".join(chunks))

    def _tee(self, data: bytes) -> None:
        """Write ``data`` to the echo descriptor. When its reader has gone away (``srd run
        --show-output | head``) the echo stops and the capture goes on."""
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._echo, view):]  # type: ignore[arg-type]
        except OSError:
            self._echo = None

    def finish(self) -> str | None:
        """The stream ended: parse what is left and write the log; return the whole text
        when it may be a JSON object (``keep_json``, not over the cap), else None."""
        if self._done:
            return None
        self._done = True
        if self._streaming is not None:
            return self._streaming.finish()
        data = b"".join(self._chunks)
        self._chunks = []
        parse_lines(self.parser, data)
        if self.extractor is not None:
            self.extractor.feed(data.decode("utf-8", "replace"))
        if self._path is not None:
            _write_whole(self._path, data, self._cap)
        if self._keep_json and len(data) <= self._cap and data.lstrip().startswith(_JSON_START):
            return data.decode("utf-8", "replace")
        return None

    def close(self) -> None:
        """Write the log of a stream that did not ``finish`` (an error cut it short)."""
        if self._streaming is not None:
            self._streaming.close()
        elif not self._done:
            self._done = True
            if self._path is not None:
                _write_whole(self._path, b"".join(self._chunks), self._cap)
            self._chunks = []


class _Streaming:
    """A stream handled as it arrives: complete lines to ``process.lines`` (the parser and
    the extractor), a ``_CappedLog`` and the whole text while it may be one JSON object."""

    __slots__ = ("_cap", "_closed", "_lines", "_log", "_overlong", "_partial", "_seen_text",
                 "_whole", "extractor", "parser")

    def __init__(self, path: LogPath | None, cap: int, keep_json: bool,
                 parser: OutputParser, t_open: float, extractor: Extractor | None) -> None:
        self.parser = parser
        self.extractor = extractor
        self._lines = LineFeed(parser, extractor)
        self._log = _CappedLog(path, cap, t_open) if path is not None else None
        self._cap = cap
        self._partial = bytearray()
        self._overlong = False
        self._whole: bytearray | None = bytearray() if keep_json else None
        self._seen_text = False
        self._closed = False

    def feed(self, data: bytes) -> None:
        if self._log is not None:
            self._log.write(data)
        if self._whole is not None:
            self._keep_whole(data)
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            self._add_partial(data)
            return
        first_nl = data.find(b"\n")
        if self._overlong:  # the rest of an overlong line: skip it
            self._overlong = False
        elif self._partial:
            self._lines.feed(bytes(self._partial) + data[:first_nl + 1])
        else:
            self._lines.feed(data[:first_nl + 1])
        self._partial.clear()
        if last_nl > first_nl:  # the lines after the first: no copy of them unless needed
            self._lines.block(data, first_nl + 1, last_nl + 1)
        self._add_partial(data[last_nl + 1:])

    def _add_partial(self, data: bytes) -> None:
        if self._overlong or not data:
            return
        self._partial += data
        if len(self._partial) > MAX_LINE:
            cr = self._partial.rfind(b"\r") if self.extractor is not None else -1
            if cr >= 0:  # progress redrawn with CR: those lines are done for the patterns
                self._lines.patterns_only(bytes(self._partial[:cr + 1]))
                del self._partial[:cr + 1]
                self._overlong = len(self._partial) > MAX_LINE
            else:
                self._overlong = True
            if self._overlong:
                self._partial.clear()

    def _keep_whole(self, data: bytes) -> None:
        if self._whole is None:
            return
        if not self._seen_text:
            stripped = data.lstrip()
            if not stripped:
                self._whole += data
                return
            self._seen_text = True
            if not stripped.startswith(_JSON_START):
                self._whole = None
                return
        self._whole += data
        if len(self._whole) > self._cap:
            self._whole = None

    def finish(self) -> str | None:
        """End of the stream: parse the last line if it had no newline, close the log."""
        if self._partial and not self._overlong:
            self._lines.feed(bytes(self._partial))
        self._partial.clear()
        self.close()
        return None if self._whole is None else self._whole.decode("utf-8", "replace")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._log is not None:
                self._log.close()


class _CappedLog:
    """The log file of a streaming stream: at most ``cap`` bytes, its first half and its
    last half with a one-line note where bytes were left out; the tail is kept in memory
    until ``close``, as a ring of the chunks that hold its last ``cap / 2`` bytes (the
    bytes between head and tail are dropped with their chunk, never copied). It is kept
    whole in memory and written by ``close`` unless its head grows past ``MEMORY_LOG_MAX``
    bytes or it still grows ``LIVE_AFTER_S`` seconds after its stream opened: then the
    file is created with what it holds and written to as the head arrives."""

    def __init__(self, path: LogPath, cap: int, t_open: float) -> None:
        self._path = path
        self._file: BinaryIO | None = None  # open once the log is written as it grows
        self._cap = cap
        self._head_left = cap // 2
        self._tail_cap = cap - cap // 2
        self._head = bytearray()  # head bytes not yet in the file
        # The tail: chunks as read (tiny ones joined into bytearrays of _PIECE bytes or
        # so: a stream of one-line writes does not keep an object per line).
        self._tail: deque[bytes | bytearray] = deque()
        self._tail_size = 0  # bytes in _tail
        self._total = 0
        self._t_open = t_open

    def write(self, data: bytes) -> None:
        self._total += len(data)
        if self._head_left:
            head = data[:self._head_left]
            self._head_left -= len(head)
            if self._file is not None:
                self._file.write(head)
            else:
                self._head += head
            data = data[len(head):]
        if data:
            tail = self._tail
            if len(data) >= _PIECE:
                tail.append(data)
            elif tail and isinstance(tail[-1], bytearray) and len(tail[-1]) < _PIECE:
                tail[-1] += data
            else:
                tail.append(bytearray(data))
            self._tail_size += len(data)
            while self._tail_size - len(tail[0]) >= self._tail_cap:
                self._tail_size -= len(tail.popleft())
        if self._file is None and (len(self._head) > MEMORY_LOG_MAX
                                   or time.monotonic() - self._t_open > LIVE_AFTER_S):
            # Unbuffered: what arrives is in the file at once, for whoever watches it.
            fd = open_own(self._path, 0o666, os.O_WRONLY | os.O_TRUNC)
            self._file = open(fd, "wb", buffering=0)  # noqa: SIM115 — closed in close()
            self._file.write(self._head)
            self._head = bytearray()

    def _rest(self) -> bytes:
        """The note (when bytes were left out) and the tail."""
        tail = b"".join(self._tail)
        self._tail.clear()
        omitted = self._total - self._cap
        note = _note(omitted, self._cap) if omitted > 0 else b""
        return note + tail[len(tail) - self._tail_cap:] if len(tail) > self._tail_cap \
            else note + tail

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.write(self._rest())
            finally:
                self._file.close()
        elif self._total:
            write_file(self._path, self._head + self._rest())
        else:
            remove_file(self._path)
