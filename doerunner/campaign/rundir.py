"""The run directory (FORMAT.md §4) before anything runs: outputs probed, the directory
locked, what an earlier srd killed in it left running cleaned up."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from doerunner.campaign.options import OutputOptions
from doerunner.errors import OutputError
from doerunner.outputs.atomic import check_writable_dir
from doerunner.process import tree as proctree


def preflight(output: OutputOptions) -> None:
    """Fail before anything runs when an output cannot be written (``OutputError``, exit
    4): metrics.csv's folder, the run directory and its ``logs/`` (created), the JUnit
    report's folder."""
    out, run_dir = output.out, output.run_directory
    if out.is_dir():
        raise OutputError(f"--out {out}: is a directory")
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: directory {str(out.parent)!r} does not exist")
    try:
        check_writable_dir(out.parent)
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write in {str(out.parent)!r}: "
                          f"{e.strerror or e}") from None
    try:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        check_writable_dir(run_dir)
    except OSError as e:
        raise OutputError(f"run directory {run_dir}: {e.strerror or e}") from None
    junit = output.junit
    if junit is not None:
        if junit.is_dir():
            raise OutputError(f"--junit {junit}: is a directory")
        try:
            check_writable_dir(junit.parent)
        except OSError as e:
            raise OutputError(f"--junit {junit}: cannot write in {str(junit.parent)!r}: "
                              f"{e.strerror or e}") from None


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory: two srd processes never share a
    journal (``OutputError`` when another run holds it)."""
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"run directory {run_dir} is in use by another srd run; "
                              "give this run its own --out or --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def kill_leftovers(run_dir: Path) -> list[int]:
    """Kill what an earlier srd killed in this run directory left running (its cases carry
    the directory in their environment); the pids killed. Call with the lock held."""
    return proctree.kill_leftovers(str(run_dir.resolve()))
