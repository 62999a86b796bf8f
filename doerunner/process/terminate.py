"""Killing a set of processes the way srd kills a case's (FORMAT.md §5): SIGTERM (and
SIGCONT: a stopped process acts on SIGTERM only once continued), a grace period, SIGKILL,
and a look again for anything forked meanwhile. The processes are psutil handles, which
check that a pid was not reused before signalling it. ``process.tree`` says which
processes; this module only kills them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection
from contextlib import suppress
from typing import TYPE_CHECKING

from doerunner.process.procfs import Proc

if TYPE_CHECKING:
    import psutil
else:
    from doerunner.process.procfs import psutil

Find = Callable[[], "dict[int, psutil.Process]"]


def untouchable(pid: int) -> bool:
    """srd itself, its parent, pid 1 (and the kernel's 0): never signalled."""
    return pid <= 1 or pid == os.getpid() or pid == os.getppid()


def handles(roots: Collection[int], procs: list[Proc],
            exclude: Collection[int] = ()) -> dict[int, psutil.Process]:
    """``roots`` and their descendants in ``procs`` (one look at every process), as psutil
    handles; ``exclude`` and ``untouchable`` pids left out."""
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    found: dict[int, psutil.Process] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found or untouchable(pid) or pid in exclude:
            continue
        try:
            found[pid] = psutil.Process(pid)
        except psutil.Error:
            continue
        todo.extend(children.get(pid, ()))
    return found


def terminate(find: Find, grace_s: float, reap: Callable[[int], None],
              signal_group: Callable[[int], None] | None = None,
              exclude: Collection[int] = (), shell: subprocess.Popen | None = None) -> None:
    """SIGTERM and SIGCONT what ``find`` returns (and ``signal_group``: the case's process
    group), wait up to ``grace_s`` seconds, SIGKILL what is left, then ``find`` again, up to
    three times. Dead processes are passed to ``reap`` (srd's zombies); ``shell``, srd's
    own child, is waited for through its ``poll``."""
    snap = find()
    for sig in (signal.SIGTERM, signal.SIGCONT):
        if signal_group is not None:
            signal_group(sig)
        _signal(snap.values(), sig, exclude)
    alive = _wait(snap, grace_s, reap, shell)
    for _ in range(3):
        if signal_group is not None:
            signal_group(signal.SIGKILL)
        _signal(alive, signal.SIGKILL, exclude)
        _wait({p.pid: p for p in alive}, 1.0, reap, shell)
        alive = list(find().values())
        if not alive:
            return
    _signal(alive, signal.SIGKILL, exclude)


def _signal(procs: Collection[psutil.Process], sig: int, exclude: Collection[int]) -> None:
    for p in procs:
        if untouchable(p.pid) or p.pid in exclude:
            continue
        with suppress(psutil.Error, OSError):
            p.send_signal(sig)  # checks the pid was not reused


def _wait(snap: dict[int, psutil.Process], timeout_s: float, reap: Callable[[int], None],
          shell: subprocess.Popen | None) -> list[psutil.Process]:
    """Wait until every process in ``snap`` is dead (zombies count as dead and are passed
    to ``reap``), at most ``timeout_s``; return the survivors."""
    deadline = time.monotonic() + timeout_s
    pending = dict(snap)
    delay = 0.001
    while True:
        for pid, p in list(pending.items()):
            if shell is not None and pid == shell.pid:
                if shell.poll() is not None:
                    del pending[pid]
                continue
            if not _alive(p):
                reap(pid)
                del pending[pid]
        if not pending or time.monotonic() >= deadline:
            return list(pending.values())
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
