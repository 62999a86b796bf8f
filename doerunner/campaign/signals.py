"""Ctrl-C and SIGTERM during a run: the first stops the run gracefully (no new case starts,
the running ones are killed by their backends, finished rows are written); the second kills
every running case's process group at once and exits 130."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

from doerunner.process import tree as proctree


@contextlib.contextmanager
def graceful_stop(cancel: threading.Event, warn: Callable[[str], None],
                  enabled: bool = True) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM set ``cancel`` (and ``warn`` once); a second
    one SIGKILLs the running cases and exits 130. Only in the main thread (signal handlers
    can be set nowhere else) and when ``enabled``."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    count = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        cancel.set()
        if count == 1:
            warn(f"{signal.Signals(signum).name}: stopping; finished cases are kept (press "
                 "Ctrl-C again to kill at once)")
        else:
            proctree.kill_all_now()
            os._exit(130)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
