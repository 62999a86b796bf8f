"""A cgroup for each execution of a case, where srd may make one: the kernel then keeps the
list of the execution's processes, which a case can neither leave nor forge — a double
fork, ``setsid``, ``env -i`` or a rewritten ``SRD_EXEC_ID`` all stay inside.
``process.tree`` uses it when there is one, and the process tree and its session otherwise.

Where: the cgroup v1 ``pids`` hierarchy (``/sys/fs/cgroup/pids``), under srd's own cgroup
in it: ``srd-<pid>-<run tag>/<n>`` (the tag is a hash of the run directory, so that the next
srd in that directory finds what a killed one left: ``stale``). v1 moves one thread at a
time: the thread that starts a case writes ``0`` to the case cgroup's ``tasks`` (it moves
itself; moving the writer itself takes no global lock), calls ``posix_spawn`` — the child
is born in the cgroup, before it can fork anything: no race — and moves back (``leave``).
cgroup v2 moves whole processes (srd itself) and is not used. ``pids.current`` counts the
live and unreaped processes of a cgroup and every cgroup below it: one ``pread`` tells
whether an execution left anything; ``pids.max`` = 0 stops a tree from forking while it is
killed.

Cost per execution (measured on a 2-core VM): about 4 us to move in and out (descriptors
kept open) and 2 us to read ``pids.current``; a cgroup is created once per slot and reused
while it is left empty.

It is off, silently, where the hierarchy is absent or not writable (a container, a user
without delegation), and with ``SRD_CGROUP=off`` (tests run both ways); elsewhere than
Linux there is no such hierarchy.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import signal
import threading
import time
from collections.abc import Collection, Iterator

SWITCH = "SRD_CGROUP"  # "off" (or 0, no, false): never use a cgroup
MOUNT = "/sys/fs/cgroup/pids"
PREFIX = "srd-"
_FLAGS = os.O_CLOEXEC


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | _FLAGS)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | _FLAGS)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class CaseGroup:
    """The cgroup of one execution at a time (reused by the next once empty). ``empty``:
    the execution's cleanup saw it empty (``release`` then need not look again)."""

    __slots__ = ("_current", "_tasks", "empty", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.empty = False
        os.mkdir(path)
        try:
            self._tasks = os.open(f"{path}/tasks", os.O_WRONLY | _FLAGS)
            self._current = os.open(f"{path}/pids.current", os.O_RDONLY | _FLAGS)
        except OSError:
            os.rmdir(path)
            raise

    def enter(self) -> None:
        """Move the calling thread into the cgroup (what it starts next is born there).
        Raises ``OSError`` when it cannot: cgroups are then off for the rest of the
        process."""
        try:
            os.write(self._tasks, b"0")
        except OSError:
            _turn_off()
            raise

    def count(self) -> int:
        """Processes (threads, strictly) alive or not reaped yet in the cgroup and below."""
        try:
            return int(os.pread(self._current, 32, 0))
        except (OSError, ValueError):
            return 0

    def members(self) -> list[int]:
        """The live processes of the cgroup and of every cgroup below it (a case may make
        cgroups of its own: a nested srd does)."""
        out: list[int] = []
        for folder, _, _ in os.walk(self.path):
            try:
                out.extend(int(p) for p in _read(f"{folder}/cgroup.procs").split())
            except (OSError, ValueError):
                continue
        return out

    def signal(self, sig: int, skip: Collection[int] = ()) -> int:
        """Send ``sig`` to every live member but ``skip``; how many got it. A pid is
        signalled through a pidfd opened while it was still listed here, so a pid reused by
        another process meanwhile is never hit."""
        pids = [p for p in self.members() if p not in skip]
        if not pids:
            return 0
        fds: dict[int, int] = {}
        for pid in pids:
            try:
                fds[pid] = os.pidfd_open(pid)
            except (AttributeError, OSError):
                continue
        sent = 0
        try:
            still = set(self.members())
            for pid, fd in fds.items():
                if pid in still:
                    try:
                        signal.pidfd_send_signal(fd, sig)
                        sent += 1
                    except OSError:
                        pass
        finally:
            for fd in fds.values():
                os.close(fd)
        if not fds:  # no pidfd (Linux < 5.3): plain kill, pids read a moment ago
            for pid in pids:
                try:
                    os.kill(pid, sig)
                    sent += 1
                except OSError:
                    pass
        return sent

    def block_forks(self, block: bool) -> None:
        """``pids.max`` 0 (no process in the cgroup may fork) or back to ``max``."""
        with contextlib.suppress(OSError):
            _write(f"{self.path}/pids.max", b"0" if block else b"max")

    def remove(self) -> bool:
        """Close the descriptors and remove the cgroup (those below it first); whether it
        is gone (a cgroup with processes cannot be removed)."""
        for fd in (self._tasks, self._current):
            with contextlib.suppress(OSError):
                os.close(fd)
        return _remove_tree(self.path)


def _remove_tree(path: str) -> bool:
    for folder, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
    return not os.path.exists(path)


class _Base:
    """``srd-<pid>-<tag>``: the cgroups of one run in this process."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.mkdir(path)
        except FileExistsError:  # a dead srd's that had this pid, or an earlier run's
            _kill_folder(path)
            _remove_tree(path)
            os.mkdir(path)
        self.lock = threading.Lock()
        self.free: list[CaseGroup] = []
        self.groups: list[CaseGroup] = []  # every one made, for close and kill_all_now
        self.made = 0

    def acquire(self) -> CaseGroup:
        with self.lock:
            if self.free:
                group = self.free.pop()
            else:
                self.made += 1
                group = CaseGroup(f"{self.path}/{self.made}")
                self.groups.append(group)
        group.empty = False
        return group

    def release(self, group: CaseGroup) -> None:
        """Back to the free list when empty; a cgroup something is left in is not reused
        (``close`` deals with it)."""
        if group.empty or group.count() == 0:
            with self.lock:
                self.free.append(group)

    def close(self, grace_s: float) -> list[int]:
        """Kill what is left in its cgroups (SIGTERM, ``grace_s``, SIGKILL) and remove
        them; the pids signalled."""
        with self.lock:
            groups, self.groups, self.free = self.groups, [], []
        killed = _terminate(groups, grace_s)
        for g in groups:
            g.remove()
        _remove_tree(self.path)
        return killed


_state_lock = threading.Lock()
_available: bool | None = None  # decided at the first use in a process
_parent = ""  # srd's own cgroup folder in the hierarchy
_origin_fd: int | None = None  # its tasks file: moving back
_bases: dict[str, _Base] = {}


def _switched_off() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "no", "false")


def own_folder() -> str | None:
    """The folder of this process's cgroup in the pids hierarchy (from
    ``/proc/self/cgroup``); None where there is no such hierarchy."""
    if not os.path.isdir(MOUNT):
        return None
    try:
        text = _read("/proc/self/cgroup").decode()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and "pids" in parts[1].split(","):
            return os.path.normpath(f"{MOUNT}/{parts[2]}")
    return None


def _decide() -> bool:
    """Whether cgroups are used in this process (once): switched on, the hierarchy there,
    and srd allowed to write its own cgroup's ``tasks``."""
    global _parent, _origin_fd
    parent = None if _switched_off() else own_folder()
    if parent is None:
        return False
    try:
        _origin_fd = os.open(f"{parent}/tasks", os.O_WRONLY | _FLAGS)
    except OSError:
        return False
    _parent = parent
    return True


_tags: dict[str | bytes, str] = {}


def run_tag(run_dir: str | bytes | None) -> str:
    """The tag that names the cgroups of a run directory (``x`` when there is none)."""
    if not run_dir:
        return "x"
    tag = _tags.get(run_dir)
    if tag is None:
        data = run_dir if isinstance(run_dir, bytes) else os.fsencode(run_dir)
        if len(_tags) > 64:
            _tags.clear()
        tag = _tags[run_dir] = hashlib.blake2b(data, digest_size=6).hexdigest()
    return tag


def acquire(run_dir: str | bytes | None) -> CaseGroup | None:
    """An empty cgroup for the next execution of the run in ``run_dir``; None when cgroups
    are not used (off, unavailable, or one could not be made: then never again)."""
    global _available
    if _available is False:
        return None
    tag = run_tag(run_dir)
    base = _bases.get(tag)
    if base is None:
        with _state_lock:
            if _available is None:
                _available = _decide()
                if _available:
                    atexit.register(close_all)
            if not _available:
                return None
            base = _bases.get(tag)
            if base is None:
                try:
                    base = _bases[tag] = _Base(f"{_parent}/{PREFIX}{os.getpid()}-{tag}")
                except OSError:
                    _turn_off()
                    return None
    try:
        return base.acquire()
    except OSError:
        _turn_off()
        return None


def _turn_off() -> None:
    global _available
    _available = False


def leave() -> None:
    """Move the calling thread back to srd's own cgroup (after ``CaseGroup.enter``). Where
    that fails, cgroups are turned off for the rest of the process."""
    fd = _origin_fd
    if fd is None:
        return
    try:
        os.write(fd, b"0")
    except OSError:
        _turn_off()


def release(group: CaseGroup, run_dir: str | bytes | None) -> None:
    """The execution that had ``group`` is over."""
    base = _bases.get(run_tag(run_dir))
    if base is not None:
        base.release(group)


def close(run_dir: str | bytes | None, grace_s: float) -> list[int]:
    """At the end of a run: kill what is left in its cgroups and remove them; the pids
    signalled."""
    base = _bases.pop(run_tag(run_dir), None)
    return [] if base is None else base.close(grace_s)


def close_all() -> None:
    """Every run's cgroups of this process (at exit)."""
    for tag in list(_bases):
        base = _bases.pop(tag, None)
        if base is not None:
            base.close(0.0)


def kill_all_now() -> None:
    """SIGKILL every process in every cgroup of this process, forks refused first. Takes
    no lock: a signal handler calls it (``process.tree.kill_all_now``)."""
    me = os.getpid()
    for base in list(_bases.values()):
        for group in list(base.groups):
            group.block_forks(True)
            group.signal(signal.SIGKILL, (me,))


def _terminate(groups: list[CaseGroup], grace_s: float) -> list[int]:
    """SIGTERM every member, up to ``grace_s`` for them to go, then SIGKILL with forks
    refused; the pids signalled."""
    me = os.getpid()
    pids = [p for g in groups for p in g.members() if p != me]
    if not pids:
        return []
    for g in groups:
        g.signal(signal.SIGTERM, (me,))
        g.signal(signal.SIGCONT, (me,))
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(p != me for g in groups for p in g.members()):
        time.sleep(0.01)
    for g in groups:
        g.block_forks(True)
        for _ in range(20):
            if not g.signal(signal.SIGKILL, (me,)):
                break
            time.sleep(0.005)
        g.block_forks(False)
    return pids


def stale(run_dir: str | bytes | None) -> list[int]:
    """What srd processes that are gone left in their cgroups: for ``run_dir``, their
    processes are killed (SIGKILL; the pids returned) and the cgroups removed; other runs'
    cgroups are removed when empty. Call with the run directory's lock held."""
    parent = None if _switched_off() else own_folder()
    if parent is None:
        return []
    tag = run_tag(run_dir)
    killed: list[int] = []
    for name, pid, their_tag in _siblings(parent):
        if os.path.exists(f"/proc/{pid}"):
            continue  # that srd is alive (or its pid was taken: left alone, to be safe)
        path = f"{parent}/{name}"
        if their_tag == tag:
            killed += _kill_folder(path)
        _remove_tree(path)
    return killed


def _siblings(parent: str) -> Iterator[tuple[str, int, str]]:
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid, _, tag = name[len(PREFIX):].partition("-")
        if pid.isdigit() and tag:
            yield name, int(pid), tag


def _kill_folder(path: str) -> list[int]:
    """SIGKILL every process in the cgroup folder ``path`` and below; their pids."""
    killed: list[int] = []
    me = os.getpid()
    for _ in range(20):
        pids = []
        for folder, _, _ in os.walk(path):
            with contextlib.suppress(OSError):
                _write(f"{folder}/pids.max", b"0")
            with contextlib.suppress(OSError, ValueError):
                pids += [int(p) for p in _read(f"{folder}/cgroup.procs").split()]
        pids = [p for p in pids if p != me]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        time.sleep(0.01)
    return sorted(set(killed))


def _forget() -> None:
    """In a forked child: the parent's cgroups and descriptors are not its own."""
    global _available, _origin_fd, _state_lock
    _bases.clear()
    _available = None
    _origin_fd = None
    _state_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
