"""The processes of this machine as srd needs to see them, read from ``/proc`` (psutil
elsewhere than Linux): one process's ids and state, an entry of its environment, its
children, every process and their descendants, and the last pid the kernel handed out (how
``process.tree`` knows in microseconds that a finished command left nothing behind)."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

LINUX = sys.platform.startswith("linux")
RANGE_SCAN_MAX = 4096  # beyond this many new pids, listing /proc is cheaper
_LAST_PID_PATH = "/proc/sys/kernel/ns_last_pid"


class _LazyPsutil:
    """psutil, imported when first used (~12 ms of srd's start-up): the normal end of a
    case on Linux never needs it."""

    def __getattr__(self, name: str) -> object:
        import psutil as module

        globals()["psutil"] = module
        return getattr(module, name)


if TYPE_CHECKING:
    import psutil
else:
    psutil = _LazyPsutil()


@dataclass(frozen=True, slots=True)
class Proc:
    """A process as ``/proc/<pid>/stat`` shows it."""

    pid: int
    ppid: int
    pgrp: int
    sid: int
    zombie: bool


def _read(path: str, size: int = 1024) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _stat_fields(pid: int) -> list[bytes] | None:
    data = _read(f"/proc/{pid}/stat")
    # "pid (comm) state ppid pgrp session ..." — comm may hold spaces and parentheses.
    return None if data is None else data[data.rfind(b")") + 2:].split()


def read_stat(pid: int) -> Proc | None:
    fields = _stat_fields(pid)
    try:
        return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] == b"Z")
    except (TypeError, IndexError, ValueError):
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Usage:
    """What ``/proc/<pid>/stat`` says a process used: CPU seconds (its own, and its reaped
    children's), threads, resident bytes; its session and whether it is a zombie."""

    sid: int
    zombie: bool
    user_s: float
    sys_s: float
    child_user_s: float
    child_sys_s: float
    threads: int
    rss: int


def read_usage(pid: int) -> Usage | None:
    """The ``Usage`` of ``pid``, or None when it is gone (Linux)."""
    f = _stat_fields(pid)
    try:
        return Usage(int(f[3]), f[0] == b"Z", int(f[11]) / _TICK, int(f[12]) / _TICK,
                     int(f[13]) / _TICK, int(f[14]) / _TICK, int(f[17]), int(f[21]) * _PAGE)
    except (TypeError, IndexError, ValueError):
        return None


def read_io(pid: int) -> int | None:
    """Bytes ``pid`` (with the children it reaped) read from and wrote to storage:
    ``read_bytes + write_bytes`` of ``/proc/<pid>/io``; None when unreadable."""
    data = _read(f"/proc/{pid}/io", 4096)
    if data is None:
        return None
    total = 0
    for line in data.splitlines():
        if line.startswith((b"read_bytes:", b"write_bytes:")):
            total += int(line.split()[1])
    return total


def children(pid: int, threads: int = 1) -> list[int]:
    """The children of ``pid`` (of each of its threads when it has several), from
    ``/proc/<pid>/task/<tid>/children``."""
    tids = [pid]
    if threads > 1:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return []
    out: list[int] = []
    for tid in tids:
        data = _read(f"/proc/{pid}/task/{tid}/children", 65536)
        if data:
            out.extend(int(c) for c in data.split())
    return out


# ns_last_pid is read through one descriptor kept open: pread at offset 0 asks the kernel
# for the current value each time (~1 us instead of ~5 us for open/read/close), and
# pread, unlike read, shares no file offset between threads.
_last_pid_fd: int | None = None
_last_pid_fd_lock = threading.Lock()


def last_pid() -> int | None:
    """The pid the kernel handed out last in srd's pid namespace (Linux), else None."""
    fd = _last_pid_fd
    if fd is None:
        fd = _open_last_pid()
        if fd is None:
            return _last_pid_once()
    try:
        return int(os.pread(fd, 32, 0))
    except (OSError, ValueError):
        return _last_pid_once()


def _open_last_pid() -> int | None:
    global _last_pid_fd
    with _last_pid_fd_lock:
        if _last_pid_fd is None:
            try:
                _last_pid_fd = os.open(_LAST_PID_PATH, os.O_RDONLY | os.O_CLOEXEC)
            except (OSError, AttributeError):
                return None
        return _last_pid_fd


def _last_pid_once() -> int | None:
    try:
        fd = os.open(_LAST_PID_PATH, os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(fd, 32))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _forget_last_pid_fd() -> None:
    global _last_pid_fd_lock
    _last_pid_fd_lock = threading.Lock()
    # A forked child shares the parent's pid namespace: the descriptor stays valid. It is
    # kept, only the lock is renewed (it may have been held by another thread at fork).


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_last_pid_fd)


def all_procs() -> list[Proc]:
    if LINUX:
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                p = read_stat(int(name))
                if p is not None:
                    out.append(p)
        return out
    out = []
    for p in psutil.process_iter(["pid", "ppid", "status"]):
        try:
            pid = p.info["pid"]
            out.append(Proc(pid, p.info["ppid"] or 0, os.getpgid(pid), os.getsid(pid),
                             p.info["status"] == psutil.STATUS_ZOMBIE))
        except (OSError, psutil.Error):
            continue
    return out




def child_pids(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a process re-parented to srd may hang from
    any of its threads); from ``/proc`` listings where the kernel has none (Linux)."""
    if os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return children(pid, threads=2)
    return [p.pid for p in all_procs() if p.ppid == pid]


def descendants(pid: int, procs: list[Proc] | None = None) -> list[int]:
    """Every live descendant of ``pid`` (not ``pid`` itself), from one look at every
    process (``procs``, else ``all_procs()``)."""
    kids: dict[int, list[int]] = {}
    dead = set()
    for p in all_procs() if procs is None else procs:
        kids.setdefault(p.ppid, []).append(p.pid)
        if p.zombie:
            dead.add(p.pid)
    out: list[int] = []
    todo = list(kids.get(pid, ()))
    seen = {pid}
    while todo:
        q = todo.pop()
        if q in seen:
            continue
        seen.add(q)
        if q not in dead:
            out.append(q)
        todo.extend(kids.get(q, ()))
    return out


def environ_value(pid: int, name: bytes) -> bytes | None:
    """The value of ``name`` in the environment ``pid`` was started with: ``b""`` when it
    has none, None when it cannot be read (gone, or another user's). Linux reads
    ``/proc/<pid>/environ``; elsewhere psutil."""
    if not LINUX:
        try:
            value = psutil.Process(pid).environ().get(os.fsdecode(name), "")
        except (psutil.Error, OSError):
            return None
        return os.fsencode(value)
    data = _read(f"/proc/{pid}/environ", 1 << 20)
    if data is None:
        return None
    prefix = name + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix):]
    return b""
