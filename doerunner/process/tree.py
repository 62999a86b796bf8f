"""Process-tree control: no process of a case outlives its case (FORMAT.md §5).

The rule holds whatever way a case ends (OK, FAIL or TIMEOUT): a ``sleep 100 &`` left
behind by a command that exited 0 is killed when the case ends, just like the tree of a
command that timed out. An execution's cleanup never kills another running execution's
process (``--jobs``).

How the processes of an execution are found. Where srd may make cgroups
(``process.cgroup``), the execution is started in a cgroup of its own, and its processes
are the cgroup's: nothing a case does (``setsid``, double forks, ``env -i``, a rewritten
``SRD_EXEC_ID``) takes a process out of it. Elsewhere (``SRD_CGROUP=off``, no writable
hierarchy) the process tree is followed. The command runs in a session and process group
of its own, so ``pgid == sid == shell pid``; a process that leaves them (``setsid``, a
double-forked daemon) is still found because srd is a *child subreaper*
(``become_subreaper``): when its parent dies, an orphan is re-parented to srd instead of
init. Such an orphan is an execution's when its environment carries that execution's
``SRD_EXEC_ID`` marker (random: it cannot be guessed); an orphan without a marker — or with
one that names no running execution of this srd: forged, or stale — is an execution's only
when that execution is the one running execution it can have come from (started before
the orphan's pid was handed out). Where two could own it, it is left alone: the last of
them to end kills it, and ``sweep`` kills what is left at the end of the run. srd itself,
its parent, pid 1, srd's own helpers (processes in srd's session) and the pids registered
with ``protect`` are never signalled.

The normal end of a case must cost microseconds (srd is benchmarked against hyperfine), so
``CaseTree.leftovers`` first asks the kernel which pids were handed out since the shell
started (``/proc/sys/kernel/ns_last_pid``, ~1 us): when the shell started no process at
all (``true``, ``echo x=1``) nothing can be left. Otherwise one ``pread`` of the cgroup's
``pids.current``, or, without a cgroup, a look at the new pids only. Only when something is
left does ``kill`` signal anything: SIGTERM → grace → SIGKILL. Elsewhere than Linux psutil
does the scanning (slower, but correct).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, NamedTuple

from doerunner.process import cgroup
from doerunner.process.procfs import (
    LINUX,
    RANGE_SCAN_MAX,
    Proc,
    all_procs,
    child_pids,
    descendants,
    environ_value,
    last_pid,
    read_stat,
)
from doerunner.process.terminate import handles, terminate, untouchable

if TYPE_CHECKING:
    import psutil

MARKER_VAR = "SRD_EXEC_ID"
RUN_DIR_VAR = "SRD_RUN_DIR"
_MARKER_BYTES = os.fsencode(MARKER_VAR)
_PR_SET_CHILD_SUBREAPER = 36

_subreaper: bool | None = None
_subreaper_lock = threading.Lock()
_protected: set[int] = set()
_lock = threading.Lock()  # guards _protected and reaping of children we do not own
_exec_ids = itertools.count(1)


def become_subreaper() -> bool:
    """Make srd the child subreaper of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    Orphans of a case (double-forked daemons, ``setsid`` children whose parent exited) are
    then re-parented to srd, where they can still be found and killed. Idempotent; returns
    whether srd is a subreaper (always False elsewhere than Linux).
    """
    global _subreaper
    if _subreaper is not None:
        return _subreaper
    with _subreaper_lock:  # slots start together: none may spawn before the prctl is done
        if _subreaper is None:
            _subreaper = _set_subreaper()
    return _subreaper


def _set_subreaper() -> bool:
    if not LINUX:
        return False
    import ctypes

    try:
        # The running program's own symbols hold libc's prctl; find_library (which may run
        # ldconfig) only when they do not.
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            import ctypes.util

            prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                                use_errno=True).prctl
        return bool(prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def new_exec_id() -> str:
    """A marker value for one execution (``MARKER_VAR``): unique in this srd, and with
    random bits, so that a case cannot name another case's execution."""
    return f"{os.getpid()}-{next(_exec_ids)}-{os.urandom(4).hex()}"


@contextmanager
def spawning() -> Iterator[set[int]]:
    """Hold while starting a child that other cleanups must never reap or kill; add its
    pid to the yielded set before leaving. Remove it later with ``unprotect``."""
    with _lock:
        yield _protected


def protect(pid: int) -> None:
    """Never signal or reap ``pid`` in a cleanup (a long-lived helper child of srd)."""
    with _lock:
        _protected.add(pid)


def unprotect(pid: int) -> None:
    with _lock:
        _protected.discard(pid)


class _Running(NamedTuple):
    marker: str | None
    group: cgroup.CaseGroup | None
    run_dir: bytes | None


# The executions running now (shell pid → marker, cgroup), and the process groups of the
# cases and helpers running now (for an emergency kill from a signal handler). Changed and
# read with single dict/set operations: no lock (a signal handler reads them).
_running: dict[int, _Running] = {}
_by_marker: dict[str, int] = {}
_active_groups: set[int] = set()


def register_execution(pid: int, marker: str | None, group: cgroup.CaseGroup | None,
                       run_dir: bytes | None) -> None:
    """Record a started execution: its shell ``pid``, its marker, its cgroup (None: none)
    and the run directory it belongs to (``process.spawn`` calls it)."""
    _running[pid] = _Running(marker, group, run_dir)
    if marker:
        _by_marker[marker] = pid


def register_group(pgid: int) -> None:
    """Record the process group of a running case or helper (see ``kill_all_now``)."""
    _active_groups.add(pgid)


def unregister_group(pgid: int) -> None:
    """The case or helper whose group is ``pgid`` is over (after its cleanup): forget it,
    and give its cgroup back for the next execution."""
    _active_groups.discard(pgid)
    running = _running.pop(pgid, None)
    if running is None:
        return
    if running.marker:
        _by_marker.pop(running.marker, None)
    if running.group is not None:
        cgroup.release(running.group, running.run_dir)


def kill_all_now() -> None:
    """SIGKILL every process srd started, at once (a second Ctrl-C): the running cases'
    groups, their cgroups, and every descendant of srd (escaped processes included: srd is
    their subreaper). Takes no lock, so it is safe in a signal handler that interrupted a
    cleanup."""
    for pgid in list(_active_groups):
        with suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    cgroup.kill_all_now()
    if not LINUX:
        return
    for _ in range(3):  # a process may fork while the tree is being killed
        pids = [p for p in descendants(os.getpid()) if not untouchable(p)]
        if not pids:
            return
        for pid in pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _created_since(pid: int, first: int, last: int | None) -> bool:
    """Whether ``pid`` was handed out after ``first`` (and up to ``last``, the last pid
    handed out): a process started after the execution whose shell is ``first``."""
    if last is None:
        return True
    if first <= last:
        return first < pid <= last
    return pid > first or pid <= last  # pid numbers wrapped around


def _marker_owner(marker: bytes | None) -> int | None:
    """The running execution whose marker this is (``environ_value`` of a process); None
    for none, or one that names no running execution of this srd (forged, or of one that
    is over), or an environment that cannot be read."""
    return _by_marker.get(marker.decode(errors="replace")) if marker else None


def _may_own(pid: int, extra: int | None = None) -> set[int]:
    """The running executions (and ``extra``) started before ``pid`` was handed out."""
    last = last_pid()
    found = {x for x in list(_running) if _created_since(pid, x, last)}
    if extra is not None and _created_since(pid, extra, last):
        found.add(extra)
    return found


def _reap(pid: int) -> None:
    with _lock:
        if pid in _protected:
            return
        # ChildProcessError: not srd's child; its parent or init reaps it.
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def reap_case_zombies() -> None:
    """Reap srd's dead children that came from a case: orphans re-parented to srd (never
    in srd's own session, where its helpers are), never a protected one (a running case's
    shell: its owner waits for it)."""
    me = os.getpid()
    my_sid = os.getsid(0)
    if LINUX:
        procs: Iterator[Proc | None] = (read_stat(pid) for pid in child_pids(me))
    else:
        procs = iter([p for p in all_procs() if p.ppid == me])
    for p in procs:
        if p is not None and p.zombie and p.sid != my_sid:
            _reap(p.pid)


class CaseTree:
    """The processes of one execution: its shell ``proc`` (a session and group leader),
    everything it started, and the orphans of those that were re-parented to srd.

    ``marker`` is the ``SRD_EXEC_ID`` value placed in the command's environment;
    ``exclude_pids`` are never touched.
    """

    def __init__(self, proc: subprocess.Popen, marker: str | None = None,
                 exclude_pids: Collection[int] = ()) -> None:
        self.proc = proc
        self.pgid = proc.pid
        self.marker = marker
        self.exclude = frozenset(exclude_pids)
        running = _running.get(proc.pid)
        self.group = running.group if running is not None else None
        self._sid: int | None = None

    @property
    def _my_sid(self) -> int:
        """srd's session (asked only when an orphan needs judging)."""
        if self._sid is None:
            self._sid = os.getsid(0)
        return self._sid

    # -- the cheap check -------------------------------------------------------------
    def leftovers(self) -> bool:
        """Whether any process of the case may still exist, once the shell has exited and
        been reaped. Microseconds when the shell started no process."""
        last = last_pid() if LINUX else None
        first = self.pgid
        group = self.group
        if last == first:
            # No pid was handed out since the shell's: it started nothing, so nothing of
            # it can be left (every other member of its group would have a newer pid).
            if group is not None:
                group.empty = True
            return False
        if group is not None:
            group.empty = group.count() == 0  # alive, or dead and not reaped yet
            return not group.empty
        if self._group_alive():
            return True
        if not LINUX:
            return any(self._is_root(p) for p in self._srd_children())
        if last is None:
            return bool(self._snapshot())
        if first < last <= first + RANGE_SCAN_MAX:
            candidates: Iterator[Proc | None] = (read_stat(pid) for pid in
                                                  range(first + 1, last + 1))
        else:  # many new pids, or pid numbers wrapped around
            candidates = iter(all_procs())
        return any(p is not None and self._is_root(p) for p in candidates)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _srd_children(self) -> list[Proc]:
        me = os.getpid()
        return [p for p in all_procs() if p.ppid == me]

    def _is_root(self, p: Proc) -> bool:
        """Whether ``p`` is a member of the case's group/session or an orphan of the case
        re-parented to srd (see the module docstring: ambiguous orphans are not)."""
        if untouchable(p.pid) or p.pid in self.exclude or p.pid in _protected:
            return False
        if p.pgrp == self.pgid or p.sid == self.pgid:
            return True
        if p.ppid != os.getpid() or p.sid == self._my_sid:
            return False  # not an orphan, or one of srd's own helpers
        if p.zombie:
            return True  # a case's dead orphan: it only needs reaping
        marker = environ_value(p.pid, _MARKER_BYTES)
        if marker and self.marker and marker == self.marker.encode():
            return True
        owner = _marker_owner(marker)
        if owner is not None:
            return owner == self.pgid
        return _may_own(p.pid, self.pgid) == {self.pgid}

    def _snapshot(self) -> dict[int, psutil.Process]:
        """Every live process of the case, as psutil handles (they detect pid reuse)."""
        procs = all_procs()
        todo = [p.pid for p in procs if self._is_root(p)]
        if self.proc.returncode is None:
            todo.append(self.proc.pid)
        return handles(todo, procs, self.exclude)

    # -- killing -----------------------------------------------------------------
    def kill(self, grace_s: float) -> None:
        """SIGTERM the whole tree, wait up to ``grace_s`` seconds, SIGKILL what is left,
        then look again for anything forked meanwhile. Reaps srd's own dead children and
        the shell. Never raises for processes that already exited."""
        if self.group is not None:
            self._kill_cgroup(grace_s)
        else:
            terminate(self._snapshot, grace_s, _reap, self._signal_group, self.exclude,
                      self.proc)
        self._reap_shell(1.0)
        reap_case_zombies()

    def _kill_cgroup(self, grace_s: float) -> None:
        """``kill`` where the execution has a cgroup: its members are its processes."""
        group = self.group
        assert group is not None
        skip = self.exclude | {os.getpid(), os.getppid(), 1}
        for sig in (signal.SIGTERM, signal.SIGCONT):
            self._signal_group(sig)
            group.signal(sig, skip)
        deadline = time.monotonic() + grace_s
        delay = 0.001
        while True:
            self.proc.poll()
            reap_case_zombies()
            if not [p for p in group.members() if p not in skip] or \
                    time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        group.block_forks(True)  # nothing can fork while the tree is killed
        try:
            for _ in range(50):
                self._signal_group(signal.SIGKILL)
                if not group.signal(signal.SIGKILL, skip):
                    break
                time.sleep(0.002)
        finally:
            group.block_forks(False)
        self._reap_shell(1.0)
        end = time.monotonic() + 1.0
        while group.count() > 0 and time.monotonic() < end:
            reap_case_zombies()  # the killed orphans are srd's zombies now
            time.sleep(0.002)
        group.empty = group.count() == 0

    def _signal_group(self, sig: int) -> None:
        if self.pgid <= 1 or self.pgid == os.getpgrp():
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def _reap_shell(self, timeout_s: float) -> None:
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout_s)


def sweep(run_dir: str | None, grace_s: float) -> None:
    """At the end of a run: kill what no execution could be found to own and none still
    running can own (orphans whose owner was ambiguous while several cases ran), then
    what is left in the run's cgroups, and remove them."""
    cgroup.close(run_dir, grace_s)
    if not LINUX:
        return
    me, my_sid = os.getpid(), os.getsid(0)
    procs = all_procs()
    roots = [p.pid for p in procs
             if p.ppid == me and p.sid != my_sid and not p.zombie and not untouchable(p.pid)
             and p.pid not in _protected and p.pid not in _running
             and _marker_owner(environ_value(p.pid, _MARKER_BYTES)) is None
             and not _may_own(p.pid)]
    if roots:
        terminate(lambda: handles(roots, all_procs()), grace_s, _reap)
    reap_case_zombies()


def kill_leftovers(run_dir: str) -> list[int]:
    """SIGKILL the processes a dead srd left running for ``run_dir``; returns their pids:
    those in the cgroups it made for that directory (``process.cgroup``), and those with the
    ``SRD_RUN_DIR`` entry every case carries in its environment (a case may change it for
    its children: without cgroups those escape).

    Only call it while holding the run directory's lock: then no live srd owns them. Reading
    every process's environment costs a few milliseconds, once per run.
    """
    killed = set(cgroup.stale(run_dir) if LINUX else [])
    needle = f"{RUN_DIR_VAR}={run_dir}".encode()
    for p in all_procs():
        if untouchable(p.pid) or p.zombie:
            continue
        try:
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        if needle in entries:
            try:
                os.kill(p.pid, signal.SIGKILL)
                killed.add(p.pid)
            except OSError:
                pass
    return sorted(killed)
