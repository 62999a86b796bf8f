"""The processes of this machine as srd needs to see them, read from ``/proc`` (psutil
elsewhere than Linux): one process's ids and state, every process, and the last pid the
kernel handed out (how ``process.tree`` knows in microseconds that a finished command left
nothing behind)."""

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


def read_stat(pid: int) -> Proc | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    # "pid (comm) state ppid pgrp session ..." — comm may hold spaces and parentheses.
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] == b"Z")
    except (IndexError, ValueError):
        return None


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


