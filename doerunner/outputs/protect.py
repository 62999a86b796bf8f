"""What srd never writes over, decided once for every writer (FORMAT.md §5).

No output of any command (``srd run --out/--junit``, ``report --html``, ``export --out``,
``design --out``) may be:

- srd's state in ``$SRD_HOME``: the run history database and the baseline cache;
- a run directory's own files: ``OWN_FILES`` of a folder that is a run directory (one
  holding a ``journal.jsonl`` or a ``run.json``), and anything under its ``logs/`` or
  ``timeseries/``;
- an input of the command (``refuse``'s ``inputs``), or a file inside an input folder.

Paths are compared as given and with links and ``..`` resolved, and the same file where
both exist (hard links).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from doerunner.errors import InputError, OutputError
from doerunner.outputs import targets
from doerunner.paths import srd_home

OWN_FILES = (".lock", "journal.jsonl", "run.json", "repetitions.csv", "timeseries.csv")
"""The files srd writes in a run directory (FORMAT.md §4)."""
OWN_FOLDERS = ("logs", "timeseries")
"""The folders it fills there."""
MARKS = ("journal.jsonl", "run.json")
"""What makes a folder a run directory."""


def state_files() -> list[tuple[str, Path]]:
    """srd's own state in ``$SRD_HOME`` (``history.db_path``, ``baseline.cache_path``)."""
    home = srd_home()
    return [("the run history", home / "history.sqlite"),
            ("the baseline cache", home / "baseline.json")]


def is_run_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a run directory's journal or run.json."""
    return any(os.path.lexists(folder / mark) for mark in MARKS)


def owner(path: targets.PathLike) -> str | None:
    """What of srd's own ``path`` is, in words (``the run history (/h/history.sqlite)``,
    ``journal.jsonl of the run directory r, which srd writes``), else None."""
    for what, state in state_files():
        if targets.same_file(path, state):
            return f"{what} ({state})"
    given = Path(os.path.normpath(path))
    for p in dict.fromkeys((given, Path(os.path.realpath(path)))):
        if p.name in OWN_FILES and is_run_dir(p.parent):
            return f"{p.name} of the run directory {p.parent}, which srd writes"
        for folder in p.parents:
            if folder.name in OWN_FOLDERS and is_run_dir(folder.parent):
                rel = p.relative_to(folder.parent).as_posix()
                return f"{rel} of the run directory {folder.parent}, which srd writes"
    return None


def refuse(name: str, output: targets.PathLike, inputs: Iterable[targets.PathLike] = (),
           folders: Iterable[targets.PathLike] = ()) -> None:
    """``OutputError`` (exit 4) when the output ``name`` (``--html r.html``) would overwrite
    one of ``inputs``, lie in one of the input ``folders``, or is one of srd's own files
    (``owner``). An empty path is an ``InputError``."""
    check_given(name.split(" ")[0], output)
    if os.fspath(output) == "-":
        return
    hit = targets.clash(output, inputs)
    if hit is not None:
        raise OutputError(f"{name} is the input {hit}: give the output its own path")
    for folder in folders:
        if targets.same_file(output, folder) or targets.inside(output, folder) is not None:
            raise OutputError(f"{name} is in the input folder {folder}: give the output "
                              "its own path")
    what = owner(output)
    if what is not None:
        raise OutputError(f"{name} is {what}: choose another path")


def check_given(option: str, path: targets.PathLike | None) -> None:
    """``InputError`` ``"<option>: empty path"`` for an empty path (which ``Path`` would
    take for ``.``)."""
    if path is not None and os.fspath(path) == "":
        raise InputError(f"{option}: empty path")
