"""Starting a case's command: in a session and process group of its own (and a cgroup of
its own, where ``process.cgroup`` can make one), stdin from /dev/null, stdout and stderr to
the caller's pipes, registered with ``process.tree``.

On Linux ``os.posix_spawn`` (public API; glibc clones with ``CLONE_VFORK``: about half the
time of ``Popen``, and the environment is a bytes dict encoded in C) does exactly what
``Popen(stdin=DEVNULL, start_new_session=True, close_fds=True, restore_signals=True)``
does: ``setsid``, stdin from /dev/null, the pipes on 1 and 2, every other inheritable
descriptor closed (listed from /proc/self/fd at each start), SIGPIPE and SIGXFSZ back to
their default action. Elsewhere, or when srd runs without descriptors 0-2, ``Popen`` does
it. ``Child`` is what the rest of srd uses of a started process (the ``Popen`` interface:
``pid``, ``returncode``, ``poll``, ``wait``).

The cgroup: the starting thread moves itself into the execution's cgroup, starts the
child (born there, before it can fork: nothing escapes), and moves back; a few
microseconds. Where that fails, the execution goes without one (``process.tree`` then
follows the process tree).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress

from doerunner.process import cgroup, tree

# Whether posix_spawn is used (it is turned off for good when the C library lacks setsid).
USE_SPAWN = (sys.platform.startswith("linux") and hasattr(os, "posix_spawn")
             and hasattr(os, "POSIX_SPAWN_DUP2") and os.path.isdir("/proc/self/fd"))
_SIGDEF = tuple(sig for sig in (getattr(signal, n, None) for n in ("SIGPIPE", "SIGXFSZ"))
                if sig is not None)
_MARKER = os.fsencode(tree.MARKER_VAR)
_RUN_DIR = os.fsencode(tree.RUN_DIR_VAR)


def close_fds(*fds: int) -> None:
    """Close descriptors, ignoring those already closed."""
    for fd in fds:
        with suppress(OSError):
            os.close(fd)


def file_actions(w_out: int, w_err: int) -> list[tuple] | None:
    """``posix_spawn``'s file actions: stdin from /dev/null, the pipes on 1 and 2, every
    other inheritable descriptor closed. None where ``posix_spawn`` is not used (not
    Linux, or srd runs without a descriptor 0, 1 or 2, so a pipe landed below 3)."""
    if not USE_SPAWN or w_out <= 2 or w_err <= 2:
        return None
    fds = inheritable_fds()
    if fds is None:
        return None
    close = os.POSIX_SPAWN_CLOSE
    return [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w_out, 1),
            (os.POSIX_SPAWN_DUP2, w_err, 2),
            *((close, fd) for fd in fds)]


def start(argv: list[str], env: dict[bytes, bytes], w_out: int, w_err: int,
          actions: list[tuple] | None) -> Child | subprocess.Popen:
    """Start ``argv`` in a session (and a cgroup) of its own, stdout and stderr to the
    pipes, and register it with ``process.tree`` as an execution (protected from other
    cleanups, its marker and cgroup known, its group known to an emergency kill): its
    cleanup ends with ``tree.unregister_group``. ``posix_spawn`` with ``actions``
    (``file_actions``) when given, else ``Popen`` (which does the same, slower)."""
    run_dir = env.get(_RUN_DIR)
    group = cgroup.acquire(run_dir)
    with tree.spawning() as protected:
        try:
            proc, used = _start_in(group, argv, env, w_out, w_err, actions)
        except BaseException:
            if group is not None:
                cgroup.release(group, run_dir)
            raise
        if group is not None and used is None:
            cgroup.release(group, run_dir)
        protected.add(proc.pid)
        marker = env.get(_MARKER)
        tree.register_execution(proc.pid, os.fsdecode(marker) if marker else None, used,
                                run_dir)
        tree.register_group(proc.pid)
    return proc


def _start_in(group: cgroup.CaseGroup | None, argv: list[str], env: dict[bytes, bytes],
              w_out: int, w_err: int, actions: list[tuple] | None
              ) -> tuple[Child | subprocess.Popen, cgroup.CaseGroup | None]:
    """Start the child from this thread, moved into ``group`` meanwhile; the child and the
    cgroup it was started in (None: none, also when the thread could not enter it)."""
    global USE_SPAWN
    if group is not None:
        try:
            group.enter()
        except OSError:
            group = None
    try:
        if actions is not None and USE_SPAWN:
            try:
                return Child(os.posix_spawn(argv[0], argv, env, file_actions=actions,
                                            setsid=True, setsigdef=_SIGDEF), argv), group
            except NotImplementedError:  # no POSIX_SPAWN_SETSID (glibc < 2.26)
                USE_SPAWN = False
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w_out, stderr=w_err,
                                env=env, start_new_session=True), group
    finally:
        if group is not None:
            cgroup.leave()


# /proc/self/fd, opened once: listing it through a descriptor costs half of listing the
# path. The listing shares the descriptor's offset, so it is done under a lock.
_fd_dir: int | None = None
_fd_dir_lock = threading.Lock()


def inheritable_fds() -> list[int] | None:
    """srd's descriptors above 2 that a child would inherit (Python opens its own
    non-inheritable, but srd may have inherited some, and C libraries open others);
    None when /proc/self/fd cannot be listed."""
    global _fd_dir
    try:
        with _fd_dir_lock:
            if _fd_dir is None:
                _fd_dir = os.open("/proc/self/fd",
                                  os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            names = os.listdir(_fd_dir)
    except OSError:
        return None
    fds = []
    get = os.get_inheritable
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if get(fd):
                    fds.append(fd)
            except OSError:  # the descriptor listdir used, closed by now
                pass
    return fds


def _forget_fd_dir() -> None:
    """In a forked child: /proc/self/fd opened by the parent lists the parent's."""
    global _fd_dir, _fd_dir_lock
    if _fd_dir is not None:
        with suppress(OSError):
            os.close(_fd_dir)
    _fd_dir = None
    _fd_dir_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fd_dir)


class Child:
    """A process started with ``posix_spawn``: what ``process.tree`` and the backend use of the
    ``Popen`` interface (``pid``, ``returncode``, ``poll``, ``wait``)."""

    __slots__ = ("_lock", "args", "pid", "returncode", "rusage")

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.rusage: os.struct_rusage | None = None  # from wait4: it and its reaped children
        self._lock = threading.Lock()

    def _try_wait(self, flags: int) -> None:
        """Call with ``_lock`` held."""
        try:
            pid, status, usage = os.wait4(self.pid, flags)
        except ChildProcessError:  # SIGCHLD ignored: the status is lost (as Popen does)
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)
            self.rusage = usage

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(False):
            try:
                if self.returncode is None:
                    self._try_wait(os.WNOHANG)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                with self._lock:
                    if self.returncode is None:
                        self._try_wait(0)
            return self.returncode
        end = time.monotonic() + timeout
        delay = 0.0005
        while True:
            rc = self.poll()
            if rc is not None:
                return rc
            left = end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            delay = min(delay * 2, left, 0.05)
            time.sleep(delay)


def pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


