"""The shell backend's logs: capped, written whole or as they grow, never stale, the same
whichever way they are written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from doerunner.backends.base import ExecContext
from doerunner.backends.shell import ShellBackend
from doerunner.inputs.case import Case
from doerunner.process import capture
from doerunner.results import OK


def case(cmd: str, case_id: str = "c1") -> Case:
    return Case(case_id, "shell", cmd, 600.0, 1, 0, {}, {}, {}, ())


def expected_log(data: bytes, cap: int) -> bytes:
    """What a capped log holds for a stream that printed ``data``."""
    if len(data) <= cap:
        return data
    head, tail = data[:cap // 2], data[len(data) - (cap - cap // 2):]
    return (head + f"\n[srd: {len(data) - cap} bytes omitted; log capped at {cap} bytes]\n"
            .encode() + tail)


# -- the shell backend's logs -----------------------------------------------------------------
@pytest.fixture(scope="module")
def backend() -> ShellBackend:
    return ShellBackend()


@pytest.mark.parametrize("live", [False, True])
@pytest.mark.parametrize(("size", "cap"), [
    (0, 1000), (1, 1000), (999, 1000), (1000, 1000), (1001, 1000), (100_000, 1000),
    (300_000, 10 << 20), (700_000, 600_000), (3_000_000, 1 << 20),
])
def test_logs_are_identical_in_every_mode(backend, tmp_path, monkeypatch, live, size, cap):
    if live:  # every log is written as it grows (the path of long or big outputs)
        monkeypatch.setattr(capture, "LIVE_AFTER_S", 0.0)
    data = tmp_path / "data.bin"
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "c1.stdout",
                      stderr_path=tmp_path / "c1.stderr", log_cap_bytes=cap)
    ctx.stderr_path.write_bytes(b"stale\n")
    cmd = f"head -c {size} /dev/urandom > {data}; cat {data}; cat {data} >&2"
    ex = backend.execute(case(cmd), ctx)
    assert ex.status == OK
    expect = expected_log(data.read_bytes(), cap)
    for path in (ctx.stdout_path, ctx.stderr_path):
        if size == 0:
            assert not path.exists()
        else:
            assert path.read_bytes() == expect


def test_logs_of_repeated_executions_hold_the_last_one(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "c1.stdout",
                      stderr_path=tmp_path / "c1.stderr")
    for i in range(20):
        err = "echo e >&2; " if i % 2 == 0 else ""
        big = f"head -c {400_000 + i} /dev/zero; " if i % 3 == 0 else ""
        assert backend.execute(case(f"{err}{big}echo run={i}"), ctx).status == OK
    # The last execution (19): no stderr, small stdout written over a bigger old log.
    assert ctx.stdout_path.read_bytes() == b"run=19\n"
    assert not ctx.stderr_path.exists()
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
    assert backend.execute(case(cmd), ctx).status == OK
    t.join()
    assert seen == [b"first\nsecond\n"]
    assert ctx.stdout_path.read_bytes() == b"first\nsecond\nthird\n"


def test_unwritable_log_raises_from_execute(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=tmp_path / "gone" / "c1.stdout")
    with pytest.raises(FileNotFoundError):
        backend.execute(case("echo x=1"), ctx)


def test_paths_may_be_strings(backend, tmp_path):
    ctx = ExecContext(timeout_s=30, stdout_path=str(tmp_path / "c1.stdout"),
                      stderr_path=str(tmp_path / "c1.stderr"))
    backend.execute(case("echo hi"), ctx)
    assert Path(ctx.stdout_path).read_bytes() == b"hi\n"
