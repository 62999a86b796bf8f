"""Run history: every ``srd run`` registers itself in an embedded SQLite database
(``<srd home>/history.sqlite``) so runs can be listed, shown and exported later.

One table, ``runs``: run id, project, start and end (epoch seconds), cases file, outputs (metrics
path, run directory), counts by status, exit code, the command line. Registering is best-effort
for the run (a read-only home must not fail a benchmark): ``register`` returns the error text
instead of raising. A run is named by its id or a prefix of it; a prefix several runs share
is an ``InputError`` that lists them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from doerunner.cells import JST, format_timestamp
from doerunner.errors import InputError
from doerunner.paths import srd_home

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


def db_path() -> Path:
    return srd_home() / "history.sqlite"


@contextmanager
def _connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    p = path or db_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(p, timeout=10)) as con:
        con.executescript(SCHEMA)
        with con:
            yield con


def register(rec: RunRecord, path: Path | None = None) -> str | None:
    """Insert or replace ``rec``; returns None, or the reason it could not be stored."""
    try:
        with _connect(path) as con:
            con.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.run_id, rec.project, rec.started, rec.ended, rec.cases_file,
                 rec.metrics_path, rec.run_dir, rec.total, rec.ok, rec.fail, rec.timeout,
                 rec.violated, rec.exit_code, json.dumps(rec.command_line)))
    except (OSError, sqlite3.Error) as e:
        return str(e)
    return None


def _record(row: tuple[Any, ...]) -> RunRecord:
    *head, cmd = row
    return RunRecord(*head, command_line=json.loads(cmd) if cmd else [])


def list_runs(project: str | None = None, since: float | None = None,
              until: float | None = None, path: Path | None = None) -> list[RunRecord]:
    """Registered runs, oldest first; ``since``/``until`` bound the start (epoch seconds)."""
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
    sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
    with _connect(path) as con:
        return [_record(r) for r in con.execute(sql + " ORDER BY started, run_id", args)]


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
