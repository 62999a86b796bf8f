"""Process-tree control: no process of a case outlives its case (FORMAT.md §5).

The rule holds whatever way a case ends (OK, FAIL or TIMEOUT): a ``sleep 100 &`` left
behind by a command that exited 0 is killed when the case ends, just like the tree of a
command that timed out.

How the processes of a case are found. The command runs in a session and process group of
its own (``start_new_session=True``), so ``pgid == sid == shell pid``. A process that leaves
the group (``setsid``, a double-forked daemon) is still found because srd makes itself a
*child subreaper* (``become_subreaper``): when its parent dies, an orphan is re-parented to
srd instead of init. The processes of a case are therefore the members of its group and
session, the orphans that were re-parented to srd while it ran, and all their descendants.
An orphan is recognised as this case's by the ``SRD_EXEC_ID`` marker in its environment
(``marker_env``); a re-parented orphan without any marker counts as the case's only when it
was created after the shell and left srd's session. srd itself, its parent, pid 1 and the
pids passed in ``exclude_pids`` or registered with ``protect`` are never signalled.

The normal end of a case must cost microseconds (srd is benchmarked against hyperfine), so
``CaseTree.leftovers`` first asks the kernel which pids were handed out since the shell
started (``/proc/sys/kernel/ns_last_pid``, read with ``pread`` through a descriptor kept
open, ~1 us): when the shell started no process at all (``true``, ``echo x=1``) nothing
can be left, and nothing else is asked. Otherwise only the new pids are looked at.
Only when something is left does ``kill`` scan ``/proc`` and run SIGTERM → grace → SIGKILL.
Elsewhere than Linux psutil does the scanning (slower, but correct).
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
from typing import TYPE_CHECKING

from doerunner.process.procfs import LINUX, RANGE_SCAN_MAX, Proc, all_procs, last_pid, read_stat

if TYPE_CHECKING:
    import psutil
else:
    from doerunner.process.procfs import psutil

MARKER_VAR = "SRD_EXEC_ID"
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
    """A marker value unique to one execution in this srd process (for ``MARKER_VAR``)."""
    return f"{os.getpid()}-{next(_exec_ids)}"


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


# Process groups of the cases running now, for an emergency kill from a signal handler.
_active_groups: set[int] = set()


def register_group(pgid: int) -> None:
    """Record the process group of a running case (see ``kill_all_now``)."""
    _active_groups.add(pgid)


def unregister_group(pgid: int) -> None:
    _active_groups.discard(pgid)


def kill_all_now() -> None:
    """SIGKILL the process group of every running case at once (a second Ctrl-C).

    Takes no lock, so it is safe in a signal handler that interrupted a cleanup."""
    for pgid in list(_active_groups):
        with suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


def _environ_marker(pid: int) -> str | None:
    """The process's ``SRD_EXEC_ID``; "" when it has none; None when unreadable."""
    try:
        env = psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
    return env.get(MARKER_VAR, "")


def _never(pid: int) -> bool:
    return pid <= 1 or pid == os.getpid() or pid == os.getppid()


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
        if last == first:
            # No pid was handed out since the shell's: it started nothing, so nothing of
            # it can be left (every other member of its group would have a newer pid).
            return False
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
        re-parented to srd."""
        if _never(p.pid) or p.pid in self.exclude or p.pid in _protected:
            return False
        if p.pgrp == self.pgid or p.sid == self.pgid:
            return True
        if p.ppid != os.getpid() or p.pid == self.proc.pid:
            return False
        if p.zombie:
            return True  # dead: it only needs reaping
        marker = _environ_marker(p.pid)
        if marker is None:
            return True  # exited while we looked
        if marker:
            return marker == self.marker
        return p.sid != self._my_sid and self._is_new(p.pid)

    def _is_new(self, pid: int) -> bool:
        last = last_pid()
        first = self.pgid
        if last is None:
            return True
        if first <= last:
            return first < pid <= last
        return pid > first or pid <= last  # pid numbers wrapped around

    def _snapshot(self) -> dict[int, psutil.Process]:
        """Every live process of the case, as psutil handles (they detect pid reuse)."""
        procs = all_procs()
        children: dict[int, list[int]] = {}
        for p in procs:
            children.setdefault(p.ppid, []).append(p.pid)
        todo = [p.pid for p in procs if self._is_root(p)]
        if self.proc.returncode is None:
            todo.append(self.proc.pid)
        found: dict[int, psutil.Process] = {}
        while todo:
            pid = todo.pop()
            if pid in found or _never(pid) or pid in self.exclude:
                continue
            try:
                found[pid] = psutil.Process(pid)
            except psutil.Error:
                continue
            todo.extend(children.get(pid, ()))
        return found

    # -- killing -----------------------------------------------------------------
    def kill(self, grace_s: float) -> None:
        """SIGTERM the whole tree, wait up to ``grace_s`` seconds, SIGKILL what is left,
        then look again for anything forked meanwhile. Reaps srd's own dead children and
        the shell. Never raises for processes that already exited."""
        snap = self._snapshot()
        self._signal_group(signal.SIGTERM)
        self._signal(snap.values(), signal.SIGTERM)
        # A stopped process only acts on SIGTERM once continued.
        self._signal_group(signal.SIGCONT)
        self._signal(snap.values(), signal.SIGCONT)
        alive = self._wait(snap, grace_s)
        for _ in range(3):  # a process may fork while its tree is being killed
            self._signal_group(signal.SIGKILL)
            self._signal(alive, signal.SIGKILL)
            self._wait({p.pid: p for p in alive}, 1.0)
            alive = list(self._snapshot().values())
            if not alive:
                break
        else:
            self._signal(alive, signal.SIGKILL)
        self._reap_shell(1.0)
        self._reap_orphans()

    def _signal_group(self, sig: int) -> None:
        if self.pgid <= 1 or self.pgid == os.getpgrp():
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def _signal(self, procs: Collection[psutil.Process], sig: int) -> None:
        for p in procs:
            if _never(p.pid) or p.pid in self.exclude:
                continue
            with suppress(psutil.Error, OSError):
                p.send_signal(sig)  # checks the pid was not reused

    def _wait(self, snap: dict[int, psutil.Process], timeout_s: float) -> list[psutil.Process]:
        """Wait until every process in ``snap`` is dead (zombies count as dead and are
        reaped when they are srd's), at most ``timeout_s``; return the survivors."""
        deadline = time.monotonic() + timeout_s
        pending = dict(snap)
        delay = 0.001
        while True:
            for pid, p in list(pending.items()):
                if pid == self.proc.pid:
                    if self.proc.poll() is not None:
                        del pending[pid]
                    continue
                if not self._running(p):
                    self._reap(pid)
                    del pending[pid]
            if not pending or time.monotonic() >= deadline:
                return list(pending.values())
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    @staticmethod
    def _running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _reap(self, pid: int) -> None:
        with _lock:
            if pid in _protected or pid == self.proc.pid:
                return
            # ChildProcessError: not srd's child; its parent or init reaps it.
            with suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

    def _reap_shell(self, timeout_s: float) -> None:
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout_s)

    def _reap_orphans(self) -> None:
        """Reap re-parented dead orphans of the case (they become srd's zombies when the
        process that would have reaped them was killed)."""
        me = os.getpid()
        for p in all_procs() if LINUX else self._srd_children():
            if p.ppid == me and p.zombie and self._is_root(p):
                self._reap(p.pid)


RUN_DIR_VAR = "SRD_RUN_DIR"


def kill_leftovers(run_dir: str) -> list[int]:
    """SIGKILL the processes a dead srd left running for ``run_dir`` (found by the
    ``SRD_RUN_DIR`` entry every case carries in its environment); returns their pids.

    Only call it while holding the run directory's lock: then no live srd owns them. Reading
    every process's environment costs a few milliseconds, once per run.
    """
    needle = f"{RUN_DIR_VAR}={run_dir}".encode()
    killed = []
    for p in all_procs():
        if _never(p.pid) or p.zombie:
            continue
        try:
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        if needle in entries:
            try:
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)
            except OSError:
                pass
    return killed
