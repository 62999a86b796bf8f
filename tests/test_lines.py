"""The capture's fast paths (``process.lines``, ``process.capture``): whatever a stream holds
and however the reads cut it, the parser and the extractor end exactly as when every line
is fed in order, and the log is the same; and a chatty pipe is read in large reads."""

from __future__ import annotations

import fcntl
import os
import random
import time

import pytest

from doerunner.backends.outparse import Extractor, OutputParser
from doerunner.inputs.patterns import compile_pattern
from doerunner.process import capture, lines
from doerunner.process.capture import Capture

PATTERNS = (compile_pattern("lat", r"lat_ms=(\S*)"),
            compile_pattern("pct", r"(\d+)%"))
# Keys that normalise to one column (lat_ms), a suffix of another key (ms), srd's own column
# (runs), an input prefix (param_x), text (ext_note), the integer rule (errors), bad keys.
KEYS = [b"lat_ms", b"Lat_ms", b"LAT-MS", b"ms", b"p95", b"runs", b"param_x", b"ext_note",
        b"errors", b"_x", b"x.y", b"9bad", b"--threads"]
VALUES = [b"1", b"1.5", b"-2", b"1e3", b"007", b"ok", b"nan", b"1e999", b"", b"0.25", b"x=y",
          b"18446744073709551616", b"\xc3\xbc", b"3.0"]
ODD = [b"progress 5%", b"\tlat_ms=3", b"lat_ms=4\r", b"  lat_ms=5", b"lat_ms=6  ",
       b"lat_ms=7 junk", b'{"lat_ms": 8}', b"", b"lat_ms=9  ms=10", b"a=b=c", b"lat_ms=\xff",
       b"lat_ms=11\x0b", b"lat_ms=12\x1c", b"ms=13\r\nlat_ms=14", b"12%\r13%\r", b"p95=\xc2\xa0",
       b"x lat_ms=15", b"lat_ms=16 p95=17 ms=18", b"{", b"runs=3 lat_ms=19", b"errors=-1"]


def metrics_line(rng: random.Random, keys: list[bytes]) -> bytes:
    return b" ".join(k + b"=" + rng.choice(VALUES) for k in keys) + b"\n"


def stream(rng: random.Random, size: int) -> bytes:
    """Runs of one repeated line, of a repeated unit of lines, of metrics lines with the same
    keys and changing values, and odd lines, in a random order."""
    parts: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.randrange(5)
        keys = rng.sample(KEYS, rng.randint(1, 4))
        if kind == 0:
            part = metrics_line(rng, keys) * rng.randint(1, 30000)
        elif kind == 1:
            unit = b"".join(metrics_line(rng, keys) if rng.random() < 0.7
                            else rng.choice(ODD) + b"\n" for _ in range(rng.randint(2, 4)))
            part = unit * rng.randint(1, 10000)
        elif kind == 2:
            part = b"".join(metrics_line(rng, keys) for _ in range(rng.randint(1, 20000)))
        elif kind == 3:
            part = b"".join(b"lat_ms=%d p95=%d.5\n" % (i, i % 7)
                            for i in range(rng.randint(1, 30000)))
        else:
            part = b"".join(rng.choice(ODD) + b"\n" for _ in range(rng.randint(1, 50)))
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def reference(data: bytes) -> tuple[dict, set, dict]:
    """Every line fed in order: the parser's metrics and ignored keys, the extractor's finds."""
    parser = OutputParser()
    for line in data.split(b"\n"):
        if len(line) <= lines.MAX_LINE and (b"=" in line or b"{" in line):
            parser.feed_line(line.decode("utf-8", "replace"))
    extractor = Extractor(PATTERNS)
    extractor.feed(data.decode("utf-8", "replace"))
    return parser.result(), parser.ignored, extractor.found


def cuts(rng: random.Random, n: int) -> list[int]:
    """Read sizes as a pipe gives them: tiny, odd, 64 KiB, 1 MiB."""
    out = []
    while n > 0:
        size = min(n, rng.choice([1, 7, 100, 4096, 65536, 1 << 20, rng.randint(1, 300_000)]))
        out.append(size)
        n -= size
    return out


def check_stream(seed: int, patterns: tuple, sizes: tuple[int, ...]) -> None:
    rng = random.Random(seed)
    data = stream(rng, rng.choice(sizes))
    cap = Capture(None, 1 << 20, keep_json=False, patterns=patterns)
    pos = 0
    for size in cuts(rng, len(data)):
        cap.feed(data[pos:pos + size])
        pos += size
    cap.finish()
    metrics, ignored, found = reference(data)
    assert cap.parser.result() == metrics
    assert cap.parser.ignored == ignored
    if patterns:
        assert cap.extractor is not None and cap.extractor.found == found


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("patterns", [(), PATTERNS], ids=["no-patterns", "patterns"])
def test_fast_paths_end_as_every_line_fed(seed, patterns):
    check_stream(seed, patterns, (70_000, 250_000))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16, 216))
@pytest.mark.parametrize("patterns", [(), PATTERNS], ids=["no-patterns", "patterns"])
def test_fast_paths_end_as_every_line_fed_in_long_streams(seed, patterns):
    check_stream(seed, patterns, (70_000, 400_000, 3_000_000))


@pytest.mark.parametrize(("block", "path"), [
    (b"lat_ms=1.5\n" * 1000, 2),  # one repeated line
    (b"a=1\nb=2\nprogress\n" * 1000, 2),  # a repeated unit of lines
    (b"".join(b"lat_ms=%d p95=%d\n" % (i, i) for i in range(1000)), 3),  # known keys
    (b"".join(b"lat_ms=%d p95=%d\n" % (i, i) for i in range(999)) + b"new=1\n", 4),
    (b"".join(b"lat_ms=%d\tp95=%d\n" % (i, i) for i in range(1000)), 4),  # a tab
    (b"".join(b"lat_ms=%d  p95=%d\n" % (i, i) for i in range(1000)), 4),  # two spaces
    (b"".join(b"lat_ms=%d p95=%d x\n" % (i, i) for i in range(1000)), 4),  # not all k=v
    (b"".join(b"run %d done\n" % i for i in range(1000)), 1),  # no metrics line
])
def test_each_block_takes_its_path(monkeypatch, block, path):
    taken = []
    monkeypatch.setattr(lines.LineFeed, "_keyed",
                        lambda self, *a, f=lines.LineFeed._keyed: taken.append(3) or f(self, *a))
    parser = OutputParser()
    feed = lines.LineFeed(parser, None)
    feed.feed(b"lat_ms=0 p95=0\n")  # the keys the stream already printed
    parsed = []
    monkeypatch.setattr(lines, "parse_lines",
                        lambda p, buf, keys=None, f=lines.parse_lines: parsed.append(buf)
                        or f(p, buf, keys))
    data = b"\n" + block
    feed.block(data, 1, len(data))
    expect = OutputParser()
    for line in (b"lat_ms=0 p95=0\n" + block).split(b"\n"):
        expect.feed_line(line.decode())
    assert parser.result() == expect.result()
    if path == 1:
        assert (taken, parsed) == ([], [])
    elif path == 2:
        assert taken == [] and len(parsed) == 1 and len(parsed[0]) < 30
    elif path == 3:
        assert taken == [3] and parsed == []
    else:
        assert parsed == [block]


def test_a_value_that_is_no_number_is_looked_past():
    # the last lines hold the key with text: the column keeps the last number
    parser = OutputParser()
    feed = lines.LineFeed(parser, None)
    feed.feed(b"lat_ms=0\n")
    data = b"\n" + b"".join(b"lat_ms=%d\n" % i for i in range(100)) + b"lat_ms=ok\n" * 5
    feed.block(data, 1, len(data))
    assert parser.result() == {"lat_ms": 99}


def test_the_log_of_a_chatty_stream_is_head_and_tail(tmp_path):
    rng = random.Random(7)
    data = rng.randbytes(5_000_000)
    for cap_bytes in (1000, 1 << 20, 4 << 20, 10 << 20):
        path = tmp_path / "log"
        c = Capture(path, cap_bytes, keep_json=False)
        pos = 0
        for size in cuts(rng, len(data)):
            c.feed(data[pos:pos + size])
            pos += size
        c.finish()
        assert path.read_bytes() == capture.capped(data, cap_bytes), cap_bytes


class Counting(Capture):
    """A capture that remembers the size of each chunk fed."""

    __slots__ = ("sizes",)

    def feed(self, data: bytes) -> None:
        self.sizes.append(len(data))
        super().feed(data)


def test_a_chatty_pipe_is_grown_and_read_in_large_reads():
    r, w = os.pipe()
    try:
        c = Counting(None, 1 << 20, keep_json=False)
        c.sizes = []
        os.write(w, b"lat_ms=1.5\n" * (capture.READ_SIZE // 11) + b"x" * (capture.READ_SIZE % 11))
        assert c.read(r)  # a full READ_SIZE read: the pipe is grown
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == capture.PIPE_SIZE
        os.write(w, b"\n" + b"p95=2\n" * ((capture.PIPE_SIZE - 1) // 6))  # fits now
        assert c.read(r)  # all of it in one read
        assert c.sizes == [capture.READ_SIZE, 1 + (capture.PIPE_SIZE - 1) // 6 * 6]
        os.close(w)
        w = -1
        assert not c.read(r)  # the end
        c.finish()
        assert c.parser.result() == {"lat_ms": 1.5, "p95": 2}
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_quiet_pipe_is_not_grown():
    r, w = os.pipe()
    try:
        before = fcntl.fcntl(r, fcntl.F_GETPIPE_SZ)
        c = Capture(None, 1 << 20, keep_json=False)
        os.write(w, b"x=1\n" * 1000)
        os.close(w)
        while c.read(r):
            pass
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == before
        c.finish()
        assert c.parser.result() == {"x": 1}
    finally:
        os.close(r)


def test_a_line_after_a_long_cr_progress_is_matched_again():
    # "7%" is the last line; between its copies, 1.2 MB of progress redrawn with CR and no
    # newline (an overlong line: its CR-ended pieces go to the patterns only).
    progress = b"".join(b"%d%%\r" % (i % 100) for i in range(300_000))
    cap = Capture(None, 1 << 20, keep_json=False, patterns=PATTERNS)
    for piece in (b"7%\n" * 30_000, progress, b"7%\n"):
        cap.feed(piece)
    cap.finish()
    assert cap.extractor is not None and cap.extractor.found == {"pct": "7"}


def test_a_grown_pipe_gathers_until_the_command_exits(monkeypatch):
    """After a small read of a grown pipe the capture waits GATHER_S for more, unless the
    wake descriptor (the command's pidfd) is readable: an exit is never waited on."""
    r, w = os.pipe()
    wake_r, wake_w = os.pipe()
    try:
        c = Capture(None, 1 << 20, keep_json=False)
        os.write(w, b"x" * capture.READ_SIZE)
        c.read(r, wake_r)  # full: the pipe grows
        monkeypatch.setattr(capture, "GATHER_S", 0.3)
        os.write(w, b"y=1\n")
        t0 = time.monotonic()
        c.read(r, wake_r)  # a small read: waits
        assert time.monotonic() - t0 >= 0.3
        os.write(wake_w, b"!")  # "the command exited"
        monkeypatch.setattr(capture, "GATHER_S", 30.0)
        os.write(w, b"y=2\n")
        t0 = time.monotonic()
        c.read(r, wake_r)
        os.write(w, b"y=3\n")
        c.read(r)  # no wake descriptor (draining after the exit): no wait either
        assert time.monotonic() - t0 < 5.0
    finally:
        for fd in (r, w, wake_r, wake_w):
            os.close(fd)


def test_a_quiet_pipe_is_never_left_to_gather(monkeypatch):
    monkeypatch.setattr(capture, "GATHER_S", 30.0)
    r, w = os.pipe()
    wake_r, wake_w = os.pipe()
    try:
        c = Capture(None, 1 << 20, keep_json=False)
        os.write(w, b"x=1\n")
        t0 = time.monotonic()
        assert c.read(r, wake_r)
        assert time.monotonic() - t0 < 5.0
    finally:
        for fd in (r, w, wake_r, wake_w):
            os.close(fd)
