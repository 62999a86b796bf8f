"""Stop signals during a run: SIGINT (Ctrl-C), SIGTERM and SIGHUP, all alike (FORMAT.md §1).

The first stops the run gracefully: no new case starts, the running ones are killed by their
backends (each its whole tree), the finished rows are written, and srd exits 130. One that
arrives while the outputs are written, after the cases, does not cut the writing short: the
outputs are completed, then srd exits 130 all the same (a pipeline that was told to stop must
not go on as if the run had ended by itself).

The second kills at once: every process srd started, the escaped ones too
(``process.tree.kill_all_now``, which takes no lock: a handler may interrupt a cleanup), then
exit 130 — while the outputs are written, through ``KeyboardInterrupt``, so that the file
being written is left as it was, with no temporary file beside it.

A signal srd was started ignoring (``nohup``, a background job of a script) stays ignored.
SIGHUP mostly means that the terminal is gone, and writing to it would fail: a standard
output or error that is a terminal that hung up goes to /dev/null from then on, as with
``nohup``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import termios
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from doerunner.process import tree as proctree

EXIT_STOPPED = 130  # FORMAT.md §1: interrupted
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@dataclass
class Stop:
    """What ``graceful_stop`` saw: ``signum``, the first stop signal (None: none came);
    ``count``, how many; ``finishing``, set by the run once it writes its outputs."""

    signum: int | None = None
    count: int = 0
    finishing: bool = False

    @property
    def name(self) -> str:
        """The first signal's name (``SIGTERM``), "" when none came."""
        return "" if self.signum is None else signal.Signals(self.signum).name


@contextlib.contextmanager
def graceful_stop(cancel: threading.Event, warn: Callable[[str], None],
                  enabled: bool = True) -> Iterator[Stop]:
    """Inside the block, a stop signal sets ``cancel`` (and ``warn``s once); a second one
    kills every process srd started and exits 130 (see the module docstring). Only in the
    main thread (signal handlers can be set nowhere else) and when ``enabled``."""
    stop = Stop()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        stop.count += 1
        if stop.signum is None:
            stop.signum = signum
        cancel.set()
        if signum == getattr(signal, "SIGHUP", None):
            _leave_terminal()
        if stop.count == 1:
            name = stop.name
            _say(warn, f"{name}: writing the outputs, then stopping" if stop.finishing else
                 f"{name}: stopping; finished cases are kept (press Ctrl-C again to kill "
                 "at once)")
            return
        proctree.kill_all_now()
        if stop.finishing:
            raise KeyboardInterrupt  # unwinds the write in progress: its file is kept whole
        os._exit(EXIT_STOPPED)

    old = {}
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            old[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _say(warn: Callable[[str], None], text: str) -> None:
    """``warn`` from a signal handler: the main thread may have been interrupted in the
    middle of a write to stderr, which Python refuses to re-enter."""
    try:
        warn(text)
    except (RuntimeError, OSError):
        with contextlib.suppress(OSError):
            os.write(2, f"srd: warning: {text}\n".encode())


def _leave_terminal() -> None:
    """Point standard output and error at /dev/null where they are a terminal that hung up
    (a SIGHUP sent by hand leaves a live terminal as it is)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if _hung_up(fd):
                    os.dup2(null, fd)
    finally:
        os.close(null)


def _hung_up(fd: int) -> bool:
    """Whether ``fd`` is a terminal that hung up: it answers EIO (the kernel makes it so
    before it sends the SIGHUP), not "not a terminal"."""
    try:
        termios.tcgetattr(fd)
    except termios.error as e:
        return bool(e.args) and e.args[0] == errno.EIO
    return False
