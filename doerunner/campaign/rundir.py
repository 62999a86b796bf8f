"""The run directory (FORMAT.md §4) before anything runs: outputs probed, the directory
locked, what an earlier srd killed in it left running cleaned up."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from doerunner.campaign.options import OutputOptions
from doerunner.errors import OutputError, output_error
from doerunner.outputs.atomic import check_writable_dir
from doerunner.process import tree as proctree


def preflight(output: OutputOptions) -> None:
    """Fail before anything runs when an output cannot be written (``OutputError``, exit
    4): metrics.csv's folder, the run directory and its ``logs/`` (created), the JUnit
    report's folder."""
    _probe_file("--out", output.out)
    if output.junit is not None:
        _probe_file("--junit", output.junit)
    run_dir = output.run_directory
    try:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        check_writable_dir(run_dir)
    except OSError as e:
        raise output_error(f"run directory {run_dir}", e) from None


def _probe_file(option: str, path: Path) -> None:
    """``path`` can be written: not a directory, in a folder that exists and takes files."""
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory")
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: directory {str(path.parent)!r} does not exist")
    try:
        check_writable_dir(path.parent)
    except OSError as e:
        raise output_error(f"{option} {path}: cannot write in {str(path.parent)!r}", e) \
            from None


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
