"""The background log writer, and the shell backend's logs written through it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from doerunner.backends.base import ExecContext
from doerunner.backends.shell import ShellBackend
from doerunner.inputs.case import Case
from doerunner.process import capture, logwriter
from doerunner.results import OK


@pytest.fixture(autouse=True)
def no_writer_left():
    assert logwriter.active() is None
    yield
    logwriter.close()


def case(cmd: str, case_id: str = "c1") -> Case:
    return Case(case_id, "shell", cmd, 600.0, 1, 0, {}, {}, {}, ())


def expected_log(data: bytes, cap: int) -> bytes:
    """What a capped log holds for a stream that printed ``data``."""
    if len(data) <= cap:
        return data
    head, tail = data[:cap // 2], data[len(data) - (cap - cap // 2):]
    return (head + f"\n[srd: {len(data) - cap} bytes omitted; log capped at {cap} bytes]\n"
            .encode() + tail)


# -- the writer ---------------------------------------------------------------------------
def test_without_a_writer_everything_happens_at_once(tmp_path):
    p = tmp_path / "a.log"
    logwriter.write(p, b"one")
    assert p.read_bytes() == b"one"
    logwriter.append(p, b"+two")
    assert p.read_bytes() == b"one+two"
    logwriter.unlink(p)
    assert not p.exists()
    logwriter.unlink(p)  # missing: fine
    with pytest.raises(FileNotFoundError):
        logwriter.write(tmp_path / "no-such-dir" / "x", b"x")
    logwriter.flush()  # no writer: no-op


def test_operations_land_in_order(tmp_path):
    with logwriter.background() as w:
        for i in range(200):
            p = tmp_path / f"f{i % 7}"
            logwriter.write(p, f"{i}".encode())
            if i % 3 == 0:
                logwriter.append(p, b"+")
            if i % 5 == 0:
                logwriter.unlink(p)
        assert logwriter.active() is w
    assert logwriter.active() is None
    expect: dict[int, bytes | None] = {}
    for i in range(200):
        text = f"{i}".encode() + (b"+" if i % 3 == 0 else b"")
        expect[i % 7] = None if i % 5 == 0 else text
    for k, v in expect.items():
        p = tmp_path / f"f{k}"
        assert (p.read_bytes() if p.exists() else None) == v


def test_flush_waits_and_later_writes_are_synchronous(tmp_path):
    logwriter.start()
    for i in range(50):
        logwriter.write(tmp_path / f"f{i}", b"x" * i)
    logwriter.flush()
    assert all((tmp_path / f"f{i}").read_bytes() == b"x" * i for i in range(50))
    logwriter.close()
    logwriter.close()  # idempotent
    logwriter.write(tmp_path / "after", b"now")
    assert (tmp_path / "after").read_bytes() == b"now"


def test_first_error_is_raised_once_with_a_count_of_the_others(tmp_path):
    seen: list[BaseException] = []
    w = logwriter.start(on_error=seen.append)
    missing = tmp_path / "missing-dir"
    logwriter.write(missing / "a", b"1")
    logwriter.write(tmp_path / "ok", b"fine")
    logwriter.write(missing / "b", b"2")
    logwriter.append(missing / "c", b"3")
    with pytest.raises(FileNotFoundError) as info:
        logwriter.flush()
    assert info.value.filename == str(missing / "a")
    assert "2 more log operations failed" in " ".join(getattr(info.value, "__notes__", []))
    assert len(seen) == 1 and seen[0] is info.value
    assert (tmp_path / "ok").read_bytes() == b"fine"
    logwriter.flush()  # reported once
    w.write(missing / "d", b"4")
    with pytest.raises(FileNotFoundError):
        logwriter.close()


def test_background_raises_at_exit_or_notes_on_an_exception(tmp_path):
    with pytest.raises(FileNotFoundError), logwriter.background():
        logwriter.write(tmp_path / "nope" / "x", b"x")
    assert logwriter.active() is None
    with pytest.raises(KeyError) as info, logwriter.background():
        logwriter.write(tmp_path / "written", b"kept")
        logwriter.write(tmp_path / "nope" / "x", b"x")
        raise KeyError("boom")
    assert any("a log could not be written" in n for n in info.value.__notes__)
    assert (tmp_path / "written").read_bytes() == b"kept"


def test_nested_background_leaves_the_writer_to_the_outer_one(tmp_path):
    with logwriter.background() as outer:
        with logwriter.background() as inner:
            assert inner is outer
        assert logwriter.active() is outer
    assert logwriter.active() is None


def test_back_pressure_bounds_the_queue_without_deadlock(tmp_path):
    w = logwriter.LogWriter(max_pending_bytes=1000, max_pending_ops=3)
    try:
        for i in range(100):
            w.write(tmp_path / f"f{i}", b"y" * 600)
            assert w.pending <= 4
        w.write(tmp_path / "big", b"z" * 5000)  # larger than the limit: still accepted
        w.flush()
    finally:
        w.close()
    assert (tmp_path / "big").stat().st_size == 5000
    assert all((tmp_path / f"f{i}").stat().st_size == 600 for i in range(100))


def test_a_write_racing_with_close_is_not_lost(tmp_path):
    w = logwriter.LogWriter()
    for i in range(100):
        w.write(tmp_path / f"f{i}", b"q")
    t = threading.Thread(target=w.close)
    t.start()
    for i in range(100, 200):
        w.write(tmp_path / f"f{i}", b"q")
    t.join()
    assert sorted(os.listdir(tmp_path)) == sorted(f"f{i}" for i in range(200))


# -- the shell backend's logs through the writer -------------------------------------------
@pytest.fixture(scope="module")
def backend() -> ShellBackend:
    return ShellBackend()


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("live", [False, True])
@pytest.mark.parametrize(("size", "cap"), [
    (0, 1000), (1, 1000), (999, 1000), (1000, 1000), (1001, 1000), (100_000, 1000),
    (300_000, 10 << 20), (700_000, 600_000), (3_000_000, 1 << 20),
])
def test_logs_are_identical_in_every_mode(backend, tmp_path, monkeypatch, background, live,
                                          size, cap):
    if live:  # every log is written as it grows (the path of long or big outputs)
        monkeypatch.setattr(capture, "LIVE_AFTER_S", 0.0)
        monkeypatch.setattr(capture, "APPEND_MIN", 1000)
    data = tmp_path / "data.bin"
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "c1.stdout",
                      stderr_path=tmp_path / "c1.stderr", log_cap_bytes=cap)
    ctx.stderr_path.write_bytes(b"stale\n")
    cmd = f"head -c {size} /dev/urandom > {data}; cat {data}; cat {data} >&2"
    if background:
        logwriter.start()
    ex = backend.execute(case(cmd), ctx)
    logwriter.close()
    assert ex.status == OK
    expect = expected_log(data.read_bytes(), cap)
    for path in (ctx.stdout_path, ctx.stderr_path):
        if size == 0:
            assert not path.exists()
        else:
            assert path.read_bytes() == expect


def test_background_logs_of_repeated_executions_keep_their_order(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "c1.stdout",
                      stderr_path=tmp_path / "c1.stderr")
    with logwriter.background():
        for i in range(20):
            err = "echo e >&2; " if i % 2 == 0 else ""
            big = f"head -c {400_000 + i} /dev/zero; " if i % 3 == 0 else ""
            assert backend.execute(case(f"{err}{big}echo run={i}"), ctx).status == OK
    # The last execution (19): no stderr, small stdout.
    assert ctx.stdout_path.read_bytes() == b"run=19\n"
    assert not ctx.stderr_path.exists()
    with logwriter.background():
        backend.execute(case("head -c 400018 /dev/zero; echo e >&2"), ctx)
        backend.execute(case("echo small"), ctx)
    assert ctx.stdout_path.read_bytes() == b"small\n"
    assert not ctx.stderr_path.exists()


def test_a_long_running_case_log_can_be_watched(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(capture, "LIVE_AFTER_S", 0.2)
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "c1.stdout")
    seen = []

    def watch():
        for _ in range(500):  # until the log shows what was printed so far, at most 5 s
            if ctx.stdout_path.exists() and ctx.stdout_path.read_bytes() == b"first\nsecond\n":
                break
            threading.Event().wait(0.01)
        seen.append(ctx.stdout_path.read_bytes() if ctx.stdout_path.exists() else None)
        (tmp_path / "go").touch()

    t = threading.Thread(target=watch)
    t.start()
    cmd = (f"echo first; sleep 0.3; echo second; "
           f"while [ ! -e {tmp_path}/go ]; do sleep 0.01; done; echo third")
    with logwriter.background():
        assert backend.execute(case(cmd), ctx).status == OK
    t.join()
    assert seen == [b"first\nsecond\n"]
    assert ctx.stdout_path.read_bytes() == b"first\nsecond\nthird\n"


def test_log_write_error_in_background_surfaces_at_close(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "gone" / "c1.stdout")
    with pytest.raises(FileNotFoundError), logwriter.background():
        assert backend.execute(case("echo x=1"), ctx).metrics == {"x": 1}


def test_unwritable_log_without_a_writer_raises_from_execute(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "gone" / "c1.stdout")
    with pytest.raises(FileNotFoundError):
        backend.execute(case("echo x=1"), ctx)


def test_paths_may_be_strings(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=str(tmp_path / "c1.stdout"),
                      stderr_path=str(tmp_path / "c1.stderr"))
    with logwriter.background():
        backend.execute(case("echo hi"), ctx)
    assert Path(ctx.stdout_path).read_bytes() == b"hi\n"
