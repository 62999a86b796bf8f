"""Capturing a case's stdout and stderr: the capped log file and the metrics parser of each
stream.

A log holds at most ``cap`` bytes of its stream: its first half and its last half, with a
one-line note where bytes were left out. A stream that prints nothing leaves no file, and a
file left by an earlier execution at the same path is removed: a log never shows stale
output. Lines that may be metrics lines (they hold ``=`` or ``{``) go to an
``OutputParser``; stdout is also kept whole while it may be one JSON object (or an array of
one). A case with ``metric_*`` patterns also has every line go to its ``Extractor``; a case
without pays nothing for them.

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
import os
import re
import time
from typing import BinaryIO

from doerunner.backends.outparse import Extractor, OutputParser
from doerunner.inputs.patterns import MetricPattern

SMALL = 64 * 1024  # a stream is handled in one piece while it is no longer than this
MAX_LINE = 1 << 20  # longer lines are not metrics lines: not kept for the parser
# A streaming log is kept in memory and written whole when its stream ends unless its head
# grows past MEMORY_LOG_MAX bytes or it still prints after LIVE_AFTER_S: then it is written
# as it grows.
MEMORY_LOG_MAX = 256 * 1024
LIVE_AFTER_S = 2.0

_CANDIDATE = re.compile(rb"[={]")  # a metrics line holds one of these
_JSON_START = (b"{", b"[")  # how a whole stdout that may be JSON metrics begins
LogPath = str | os.PathLike[str]
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | _CLOEXEC


def write_file(path: LogPath, data: bytes) -> None:
    """Create ``path`` (mode 0o666 less the umask, as ``open(path, "wb")``) and write
    ``data``. An existing file is written over in place and cut to length, not truncated
    first: on ext4, truncating frees the old blocks and writing allocates new ones, five
    times the cost (a run over an old run directory rewrites every log)."""
    fd = os.open(path, _WRITE_FLAGS, 0o666)
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


def parse_lines(parser: OutputParser, buf: bytes) -> None:
    """Feed the lines of ``buf`` (complete lines; the end of ``buf`` ends the last one) that
    may be metrics lines. Only lines holding ``=`` or ``{`` are decoded, so a huge plain
    output costs little."""
    pos = 0
    search = _CANDIDATE.search
    while True:
        m = search(buf, pos)
        if m is None:
            return
        start = buf.rfind(b"\n", 0, m.start()) + 1
        end = buf.find(b"\n", m.start())
        if end < 0:
            end = len(buf)
        if end - start <= MAX_LINE:
            parser.feed_line(buf[start:end].decode("utf-8", "replace"))
        pos = end + 1


def _write_whole(path: LogPath, data: bytes, cap: int) -> None:
    if data:
        write_file(path, capped(data, cap))
    else:
        remove_file(path)


class Capture:
    """One captured stream: ``feed`` what arrives, ``finish`` when it ends, ``close`` in
    every case (it writes what a stream that never finished had). ``path`` is its log file
    (None: no log); ``keep_json``: keep the whole text while it may be one JSON object;
    ``patterns``: the case's ``metric_*`` patterns, matched by ``extractor``."""

    __slots__ = ("_cap", "_chunks", "_done", "_keep_json", "_path", "_size", "_streaming",
                 "_t_open", "extractor", "parser")

    def __init__(self, path: LogPath | None, cap: int, keep_json: bool,
                 patterns: tuple[MetricPattern, ...] = ()) -> None:
        self._path = path
        self._cap = cap
        self._keep_json = keep_json
        self._chunks: list[bytes] = []
        self._size = 0
        self._t_open = time.monotonic()
        self._streaming: _Streaming | None = None
        self._done = False
        self.parser = OutputParser()
        self.extractor = Extractor(patterns) if patterns else None

    def feed(self, data: bytes) -> None:
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
    """A stream handled as it arrives: the line parser (and extractor) on complete lines, a
    ``_CappedLog`` and the whole text while it may be one JSON object."""

    __slots__ = ("_cap", "_closed", "_log", "_overlong", "_partial", "_seen_text", "_whole",
                 "extractor", "parser")

    def __init__(self, path: LogPath | None, cap: int, keep_json: bool,
                 parser: OutputParser, t_open: float, extractor: Extractor | None) -> None:
        self.parser = parser
        self.extractor = extractor
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
        if self._overlong:  # the rest of an overlong line: skip it
            self._overlong = False
            self._lines(data[data.find(b"\n") + 1:last_nl + 1])
        elif self._partial:
            self._lines(bytes(self._partial) + data[:last_nl + 1])
        else:
            self._lines(data[:last_nl + 1])
        self._partial.clear()
        self._add_partial(data[last_nl + 1:])

    def _lines(self, buf: bytes) -> None:
        """Complete lines: to the parser, and to the extractor when there is one."""
        parse_lines(self.parser, buf)
        if self.extractor is not None:
            self.extractor.feed(buf.decode("utf-8", "replace"))

    def _add_partial(self, data: bytes) -> None:
        if self._overlong or not data:
            return
        self._partial += data
        if len(self._partial) > MAX_LINE:
            cr = self._partial.rfind(b"\r") if self.extractor is not None else -1
            if cr >= 0:  # progress redrawn with CR: those lines are done for the patterns
                self.extractor.feed(bytes(self._partial[:cr + 1]).decode("utf-8", "replace"))
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
            self._lines(bytes(self._partial))
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
    until ``close``. It is kept whole in memory and written by ``close`` unless its head
    grows past ``MEMORY_LOG_MAX`` bytes or it still grows ``LIVE_AFTER_S`` seconds after
    its stream opened: then the file is created with what it holds and written to as the
    head arrives."""

    def __init__(self, path: LogPath, cap: int, t_open: float) -> None:
        self._path = path
        self._file: BinaryIO | None = None  # open once the log is written as it grows
        self._cap = cap
        self._head_left = cap // 2
        self._tail_cap = cap - cap // 2
        self._head = bytearray()  # head bytes not yet in the file
        self._tail = bytearray()
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
            self._tail += data
            if len(self._tail) > 2 * self._tail_cap:
                del self._tail[:len(self._tail) - self._tail_cap]
        if self._file is None and (len(self._head) > MEMORY_LOG_MAX
                                   or time.monotonic() - self._t_open > LIVE_AFTER_S):
            # Unbuffered: what arrives is in the file at once, for whoever watches it.
            self._file = open(self._path, "wb", buffering=0)  # noqa: SIM115 — closed in close()
            self._file.write(self._head)
            self._head = bytearray()

    def _rest(self) -> bytes:
        """The note (when bytes were left out) and the tail."""
        if len(self._tail) > self._tail_cap:
            del self._tail[:len(self._tail) - self._tail_cap]
        omitted = self._total - self._cap
        return (_note(omitted, self._cap) if omitted > 0 else b"") + self._tail

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
