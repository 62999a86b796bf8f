"""Run history: every ``srd run`` registers itself in an embedded SQLite database
(``<srd home>/history.sqlite``) so runs can be listed, shown and exported later.

One table, ``runs``: run id, project, start and end (epoch seconds), cases file, outputs (metrics
path, run directory), counts by status, exit code, the command line. Registering is best-effort
once a run has started (``srd run`` makes sure of srd's home before its first case:
``paths.check_home``): ``register`` returns the error text instead of raising. A run is
named by its id or a prefix of it; a prefix several runs share is an ``InputError`` that
lists them.

A run's status is read from its record (``RUN_STATUSES``): its exit code, or ``unfinished``
while it has none (running, or killed before it could record its end). Removing a run
(``remove_runs``) drops its record; ``run_files`` decides which of its files may go with it
and ``delete_run_files`` deletes them: only what the record names and srd wrote there.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from doerunner.cells import JST, format_timestamp
from doerunner.errors import InputError, OutputError, output_error
from doerunner.outputs.protect import OWN_FILES, OWN_FOLDERS
from doerunner.paths import ensure_dir, srd_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    project TEXT,
    started REAL NOT NULL,
    ended REAL,
    cases_file TEXT,
    metrics_path TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    total INTEGER, ok INTEGER, fail INTEGER, timeout INTEGER, violated INTEGER,
    exit_code INTEGER,
    command_line TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started);
CREATE INDEX IF NOT EXISTS runs_project ON runs(project);
"""


# A finished run's exit code (FORMAT.md section 1) -> its status; no exit code: UNFINISHED.
EXIT_STATUSES = {0: "ok", 2: "violated", 3: "failed", 130: "interrupted"}
UNFINISHED = "unfinished"
RUN_STATUSES = (*EXIT_STATUSES.values(), UNFINISHED)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One registered run. Times are epoch seconds; paths are absolute."""

    run_id: str
    project: str | None
    started: float
    ended: float | None
    cases_file: str | None
    metrics_path: str
    run_dir: str
    total: int
    ok: int
    fail: int
    timeout: int
    violated: int
    exit_code: int | None
    command_line: list[str]

    @property
    def status(self) -> str:
        """``ok``, ``violated``, ``failed``, ``interrupted`` (exit 0, 2, 3, 130), or
        ``unfinished`` (no exit code recorded); ``exit N`` for any other code."""
        if self.exit_code is None:
            return UNFINISHED
        return EXIT_STATUSES.get(self.exit_code, f"exit {self.exit_code}")


def db_path() -> Path:
    return srd_home() / "history.sqlite"


@contextmanager
def _connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """The database, created when missing; ``OutputError`` (exit 4, one line) when its
    folder or the file cannot be used (``SRD_HOME`` a file, read-only, not a database)."""
    p = path or db_path()
    ensure_dir(p.parent)
    try:
        con = sqlite3.connect(p, timeout=10)
        try:
            con.executescript(SCHEMA)
        except BaseException:
            con.close()
            raise
    except sqlite3.Error as e:
        raise OutputError(f"run history {p}: {e}", str(e)) from None
    with closing(con), con:
        yield con


def check(path: Path | None = None) -> None:
    """Open the history (created when missing): ``OutputError`` (exit 4) when it cannot be
    (``srd run`` asks before its first case)."""
    with _connect(path):
        pass


def register(rec: RunRecord, path: Path | None = None) -> str | None:
    """Insert or replace ``rec``; returns None, or the reason it could not be stored."""
    try:
        with _connect(path) as con:
            con.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.run_id, _stored(rec.project), rec.started, rec.ended,
                 _stored(rec.cases_file), _stored(rec.metrics_path), _stored(rec.run_dir),
                 rec.total, rec.ok, rec.fail, rec.timeout,
                 rec.violated, rec.exit_code, json.dumps(rec.command_line)))
    except (OSError, sqlite3.Error, OutputError, ValueError) as e:
        return str(e)
    return None


def _stored(text: str | None) -> str | bytes | None:
    """A path or name as SQLite stores it: text, or its bytes (a BLOB, read back by
    ``_record``) when it is not valid Unicode — a file name of bytes that are not UTF-8,
    which Python holds with lone surrogates that SQLite's UTF-8 text cannot."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def _record(row: tuple[Any, ...]) -> RunRecord:
    *head, cmd = row
    head = [os.fsdecode(v) if isinstance(v, bytes) else v for v in head]
    return RunRecord(*head, command_line=json.loads(cmd) if cmd else [])


def list_runs(project: str | None = None, since: float | None = None,
              until: float | None = None, path: Path | None = None, *,
              statuses: Collection[str] = (), newest_first: bool = False) -> list[RunRecord]:
    """Registered runs, oldest first (``newest_first``: the other way); ``since``/``until``
    bound the start (epoch seconds, ``since <= started < until``); ``statuses``: any of
    these ``RUN_STATUSES`` (empty: all)."""
    where, args = [], []
    if project is not None:
        where.append("project = ?")
        args.append(project)
    if since is not None:
        where.append("started >= ?")
        args.append(since)
    if until is not None:
        where.append("started < ?")
        args.append(until)
    if statuses:
        codes = {c: s for c, s in EXIT_STATUSES.items() if s in statuses}
        alternatives = [f"exit_code IN ({','.join('?' * len(codes))})"] if codes else []
        args.extend(codes)
        if UNFINISHED in statuses:
            alternatives.append("exit_code IS NULL")
        where.append("(" + " OR ".join(alternatives or ["0"]) + ")")
    sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
    order = " ORDER BY started DESC, run_id DESC" if newest_first else " ORDER BY started, run_id"
    with _connect(path) as con:
        return [_record(r) for r in con.execute(sql + order, args)]


def remove_runs(run_ids: Sequence[str], path: Path | None = None) -> int:
    """Delete these runs' records (exact ids); how many there were."""
    with _connect(path) as con:
        return sum(con.execute("DELETE FROM runs WHERE run_id = ?", (rid,)).rowcount
                   for rid in run_ids)


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_S = 100 * 365.25 * 86400
"""The longest duration ``parse_duration`` takes (100 years, in seconds)."""


def parse_duration(text: str) -> float:
    """``45s``, ``90m`` (minutes), ``12h``, ``30d``, ``2w`` -> seconds. Raises
    ``ValueError`` with the message to show."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 12h, 30d or 2w (units: s, m for "
                         "minutes, h, d, w)")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2).lower()]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{text!r} is longer than 100 years, the longest duration srd takes")
    return seconds


AMBIGUOUS_LISTED = 10  # matching runs an ambiguous prefix's message lists


def find_runs(run_id: str, path: Path | None = None) -> list[RunRecord]:
    """The run with this exact id, else every run whose id starts with ``run_id``, oldest
    first (empty: none)."""
    with _connect(path) as con:
        rows = con.execute("SELECT * FROM runs WHERE substr(run_id, 1, length(?1)) = ?1 "
                           "ORDER BY started, run_id", (run_id,)).fetchall()
    exact = [r for r in rows if r[0] == run_id]
    return [_record(r) for r in (exact or rows)]


def get_run(run_id: str, path: Path | None = None, tz: tzinfo = JST) -> RunRecord | None:
    """The run with this id, or with this unique id prefix; None when no run matches.
    Raises ``InputError`` when the prefix matches several runs, listing their ids and start
    times (ISO 8601 in ``tz``, as metrics.csv's ``ts_start``)."""
    runs = find_runs(run_id, path)
    if len(runs) <= 1:
        return runs[0] if runs else None
    lines = [f"run id {run_id!r} is ambiguous: {len(runs)} runs start with it "
             "(give more of the id):"]
    lines += [f"  {r.run_id}  started {format_timestamp(r.started, tz)}"
              for r in runs[:AMBIGUOUS_LISTED]]
    if len(runs) > AMBIGUOUS_LISTED:
        lines.append(f"  ... and {len(runs) - AMBIGUOUS_LISTED} more (srd runs list shows "
                     "them)")
    raise InputError("\n".join(lines))


# --- a run's files (srd runs rm/prune --files) -----------------------------------------

# What srd writes in a run directory (FORMAT.md section 4), with the journals a fresh run
# moved aside (``campaign.resume``) and the temporary files of its atomic writes
# (``.run.json.<pid>.tmp``); in logs/ and timeseries/ only these suffixes.
RUN_DIR_FILES = OWN_FILES
RUN_DIR_FOLDERS = dict(zip(OWN_FOLDERS, ((".stdout", ".stderr"), (".json",)), strict=True))
_ASIDE = re.compile(r"journal\.[0-9]{8}T[0-9]{6}\.[0-9a-f]{4}\.jsonl")
_TEMP = re.compile(r"\..+\.[0-9]+\.tmp")
_RUN_ID = re.compile(rb'"run_id": *"([^"]*)"')
CLOCK_SLACK_S = 2.0  # a file's mtime vs the record's start and end (another clock, coarse)


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file or folder a record names: deleted (or, in a dry run, to be) or kept, and why
    (``kept`` is the reason; for a run directory that is deleted but holds other files,
    ``kept`` says the folder stays and why)."""

    path: str
    delete: bool
    kept: str = ""
    generated: tuple[str, ...] = ()  # in a run directory: the cases.csv srd generated


def run_files(rec: RunRecord, records: Sequence[RunRecord]) -> list[RunFile]:
    """What ``--files`` does with ``rec``'s run directory and metrics file (those that
    exist), given every record of the history (``records``): a path a later run names is
    that run's; a run directory whose run.json is another run's, or that a running srd
    holds, stays; a metrics file modified outside the run's start..end stays (another
    program or run wrote it); symbolic links are never followed."""
    later = [r for r in records if (r.started, r.run_id) > (rec.started, rec.run_id)]
    out = []
    for path, is_dir in ((rec.run_dir, True), (rec.metrics_path, False)):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            out.append(RunFile(path, False, f"cannot be read: {e.strerror or e}"))
            continue
        user = next((r for r in later if path in (r.run_dir, r.metrics_path)), None)
        if stat.S_ISLNK(st.st_mode):
            why = "a symbolic link (not followed)"
        elif not (stat.S_ISDIR if is_dir else stat.S_ISREG)(st.st_mode):
            why = "not a directory" if is_dir else "not a regular file"
        elif user is not None:
            why = f"run {user.run_id} used it later"
        else:
            why = _run_dir_in_use(Path(path), rec) if is_dir else _not_written_by(st, rec)
        generated = _generated(rec) if is_dir else ()
        if is_dir and not why:
            try:
                other = _foreign(Path(path), generated)
            except OSError as e:
                out.append(RunFile(path, False, f"cannot be read: {e.strerror or e}"))
                continue
            if other:
                out.append(RunFile(path, True, "it holds files srd did not write: "
                                   + ", ".join(other[:3]) + (" ..." if len(other) > 3 else ""),
                                   generated))
                continue
        out.append(RunFile(path, not why, why, generated))
    return out


def _generated(rec: RunRecord) -> tuple[str, ...]:
    """The cases.csv srd kept in ``rec``'s run directory, when it ran a design or a sweep
    (``inputs.sources``): the record's cases file is that one, and its command line gave
    no ``.csv`` to ``--cases`` (a cases.csv of the user's that happens to lie there is
    never taken for it)."""
    from itertools import pairwise

    from doerunner.inputs.sources import KEPT_NAME

    if rec.cases_file != str(Path(rec.run_dir) / KEPT_NAME):
        return ()
    argv = rec.command_line
    given = [b for a, b in pairwise(argv) if a == "--cases"]
    given += [a.removeprefix("--cases=") for a in argv if a.startswith("--cases=")]
    return () if any(g.lower().endswith(".csv") for g in given) else (KEPT_NAME,)


def _run_dir_in_use(run_dir: Path, rec: RunRecord) -> str:
    """Why the run directory is not ``rec``'s to delete ("" when it is)."""
    try:
        # never through a link, never waiting on a FIFO planted there
        fd = os.open(run_dir / "run.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return "its run.json is not a regular file"
            m = _RUN_ID.search(f.read(4096))  # run_id is the head's second key
        if m and m.group(1).decode(errors="replace") != rec.run_id:
            return f"its run.json is run {m.group(1).decode(errors='replace')}'s"
    except FileNotFoundError:
        pass
    except OSError as e:
        return f"its run.json cannot be read: {e.strerror or e}"
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""  # no lock file: no srd holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return "in use by a running srd"
    finally:
        os.close(fd)
    return ""


def _not_written_by(st: os.stat_result, rec: RunRecord) -> str:
    """Why a metrics file with this ``lstat`` is not ``rec``'s ("" when it may be)."""
    end = rec.ended if rec.ended is not None else time.time()
    if st.st_mtime > end + CLOCK_SLACK_S:
        return "modified after the run ended"
    if st.st_mtime < rec.started - CLOCK_SLACK_S:
        return "older than the run"
    return ""


def _is_srds(folder: str | None, name: str, generated: tuple[str, ...] = ()) -> bool:
    if _TEMP.fullmatch(name):
        return True
    if folder is None:
        return (name in RUN_DIR_FILES or name in generated
                or _ASIDE.fullmatch(name) is not None)
    return name.endswith(RUN_DIR_FOLDERS[folder])


def _foreign(run_dir: Path, generated: tuple[str, ...]) -> list[str]:
    """Entries of the run directory srd did not write (relative paths, sorted)."""
    other = []
    for e in sorted(os.scandir(run_dir), key=lambda e: e.name):
        if e.name in RUN_DIR_FOLDERS and e.is_dir(follow_symlinks=False):
            other += [f"{e.name}/{s.name}" for s in sorted(os.scandir(e.path),
                                                          key=lambda s: s.name)
                      if s.is_dir(follow_symlinks=False) or not _is_srds(e.name, s.name)]
        elif e.is_dir(follow_symlinks=False) or not _is_srds(None, e.name, generated):
            other.append(e.name)
    return other


def delete_run_files(files: Sequence[RunFile]) -> None:
    """Delete the ``files`` marked ``delete``: a metrics file; srd's files in a run directory
    (``RUN_DIR_FILES``, ``logs/``, ``timeseries/``), then each folder when empty. Raises
    ``OutputError`` naming the path that could not be deleted."""
    for f in files:
        if not f.delete:
            continue
        path = Path(f.path)
        try:
            if not path.is_dir() or path.is_symlink():
                path.unlink()
                continue
            for name in RUN_DIR_FOLDERS:
                sub = path / name
                if sub.is_dir() and not sub.is_symlink():
                    _unlink_srds(sub, name)
                    _rmdir_if_empty(sub)
            _unlink_srds(path, None, f.generated)
            _rmdir_if_empty(path)
        except OSError as e:
            raise output_error(f"cannot delete {e.filename or path}", e) from None


def _unlink_srds(folder: Path, kind: str | None, generated: tuple[str, ...] = ()) -> None:
    with os.scandir(folder) as entries:
        doomed = [e.path for e in entries
                  if not e.is_dir(follow_symlinks=False) and _is_srds(kind, e.name, generated)]
    for path in doomed:
        os.unlink(path)


def _rmdir_if_empty(folder: Path) -> None:
    with os.scandir(folder) as entries:
        empty = next(entries, None) is None
    if empty:
        folder.rmdir()
