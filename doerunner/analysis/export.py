"""``srd export``'s selection: runs from the history, filtered down to cases.

Runs by id (or unique prefix), project and start date, or all; then cases by case_id glob,
tag and status. Filters of one kind are alternatives (``--tag a --tag b``: either tag);
different kinds must all hold. Nothing selected raises ``InputError`` naming the filter
that emptied the selection. The shapes the selection is written in are the export formats'
(``outputs.export``).

Memory does not grow with the runs: the selection reads each metrics.csv once, piece by
piece (``analysis.metrics.iter_metrics``), and keeps of it only its header and which rows
are selected (a bit a row); a writer reads the selected rows again, piece by piece
(``SelectedRun.pieces``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import iter_metrics, metrics_header
from doerunner.analysis.runfiles import run_json_or_empty
from doerunner.errors import InputError
from doerunner.history import RunRecord, get_run, list_runs
from doerunner.inputs.vocabulary import is_true

STATUSES = ("OK", "FAIL", "TIMEOUT")


@dataclass(frozen=True)
class Selection:
    """What to export. Times are epoch seconds bounding a run's start: ``since`` <=
    started < ``until``. Empty tuples select everything."""

    run_ids: tuple[str, ...] = ()
    project: str | None = None
    since: float | None = None
    until: float | None = None
    cases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


@dataclass
class SelectedRun:
    """One selected run: its history record, its metrics.csv's ``columns`` (as
    ``read_metrics`` names them) and which of its rows are selected (``keep``, a bool per
    row; ``count`` of them). The rows themselves are read when written (``pieces``);
    ``run_json`` (``{}`` when gone) is read when first asked for, without its cases."""

    record: RunRecord
    columns: list[str]
    keep: np.ndarray
    stamp: tuple[int, int] = (0, 0)
    _run_json: dict[str, Any] | None = None

    @property
    def count(self) -> int:
        """How many of the run's rows are selected."""
        return int(self.keep.sum())

    @property
    def run_json(self) -> dict[str, Any]:
        if self._run_json is None:
            self._run_json = run_json_or_empty(Path(self.record.run_dir) / "run.json")
        return self._run_json

    def pieces(self, columns: Callable[[str], bool] | None = None) -> Iterator[pd.DataFrame]:
        """The selected rows (strings, metrics.csv's columns, or those ``columns`` keeps
        besides ``case_id``), in pieces (``analysis.metrics.iter_metrics``). Raises
        ``InputError`` when metrics.csv changed since it was selected."""
        path = self.record.metrics_path
        try:
            changed = _stamp(path) != self.stamp
        except OSError:
            changed = True
        if changed:
            raise InputError(f"{path}: changed while srd export read it; export again")
        start = 0
        for piece in iter_metrics(path, columns):
            mask = self.keep[start:start + len(piece)]
            start += len(piece)
            if mask.all():
                yield piece
            elif mask.any():
                yield piece[mask]


@dataclass
class Selected:
    """The selected runs (only those with a selected case) and warnings (runs skipped)."""

    runs: list[SelectedRun]
    warnings: list[str] = field(default_factory=list)

    @property
    def case_count(self) -> int:
        return sum(r.count for r in self.runs)

    def columns(self) -> set[str]:
        """The union of the selected runs' columns."""
        names: set[str] = set()
        for r in self.runs:
            names.update(r.columns)
        return names


def _run_filters(sel: Selection) -> str:
    parts = [f"--run-id {r}" for r in sel.run_ids]
    if sel.project is not None:
        parts.append(f"--project {sel.project}")
    for name, t in (("--since", sel.since), ("--until", sel.until)):
        if t is not None:
            parts.append(f"{name} {datetime.fromtimestamp(t).isoformat(timespec='seconds')}")
    return " ".join(parts)


def select_runs(sel: Selection, history: Path | None = None) -> list[RunRecord]:
    """The history records ``sel`` picks, oldest first. Raises ``InputError`` when the
    history is empty, a ``--run-id`` is unknown, or no run matches."""
    every = list_runs(path=history)
    if not every:
        raise InputError("the run history is empty: no srd run has been registered "
                         "(srd runs list)")
    runs = list_runs(sel.project, sel.since, sel.until, path=history)
    if sel.run_ids:
        wanted = []
        for rid in sel.run_ids:
            rec = get_run(rid, path=history)
            if rec is None:
                raise InputError(f"no run {rid!r} in the history (srd runs list shows them)")
            wanted.append(rec.run_id)
        runs = [r for r in runs if r.run_id in set(wanted)]
    if not runs:
        raise InputError(f"no run matches {_run_filters(sel)} ({len(every)} runs in the "
                         "history; srd runs list shows them)")
    return runs


def _case_filters(df: pd.DataFrame, sel: Selection) -> list[tuple[str, pd.Series]]:
    """(description, mask) of each case filter of ``sel`` applied to ``df``."""
    out = []
    if sel.cases:
        ids = df["case_id"].astype(str)
        m = pd.Series(False, index=df.index)
        for pat in sel.cases:
            m |= ids.map(lambda s, p=pat: fnmatch.fnmatchcase(s, p)).astype(bool) if any(
                ch in pat for ch in "*?[") else ids == pat
        out.append((" ".join(f"--case {p}" for p in sel.cases), m))
    if sel.tags:
        m = pd.Series(False, index=df.index)
        for tag in sel.tags:
            col = tag if tag.startswith("tag_") else f"tag_{tag}"
            if col in df.columns:
                m |= df[col].map(is_true)
        out.append((" ".join(f"--tag {t}" for t in sel.tags), m))
    if sel.statuses:
        wanted = {s.upper() for s in sel.statuses}
        m = df["status"].isin(wanted) if "status" in df.columns else pd.Series(
            False, index=df.index)
        out.append((" ".join(f"--status {s}" for s in sel.statuses), m))
    return out


def _filtered(rec: RunRecord, sel: Selection) -> tuple[SelectedRun, list[bool]]:
    """``rec``'s run with its rows filtered, its whole metrics.csv read (so that a fault in
    it skips the run here, as a whole read would), a piece at a time; and for each case
    filter, whether a row passes it and the filters before it."""
    columns = metrics_header(rec.metrics_path)
    stamp = _stamp(rec.metrics_path)
    keeps, alive = [], []
    for piece in iter_metrics(rec.metrics_path):
        keep = np.ones(len(piece), dtype=bool)
        for i, (_, mask) in enumerate(_case_filters(piece, sel)):
            keep &= mask.to_numpy(dtype=bool)
            if len(alive) <= i:
                alive.append(False)
            alive[i] = alive[i] or bool(keep.any())
        keeps.append(keep)
    return SelectedRun(rec, columns, np.concatenate(keeps), stamp), alive


def select(sel: Selection, history: Path | None = None) -> Selected:
    """Runs then cases, per ``sel``. A run whose metrics.csv is gone or unreadable is
    skipped with a warning. Raises ``InputError`` when nothing is left, naming the filter
    that left nothing (counted over every selected run)."""
    records = select_runs(sel, history)
    loaded: list[SelectedRun] = []
    warnings = []
    descs = [d for d, _ in _case_filters(pd.DataFrame({"case_id": []}), sel)]
    alive = [False] * len(descs)
    for rec in records:
        try:
            run, passed = _filtered(rec, sel)
            loaded.append(run)
            alive = [a or b for a, b in zip(alive, passed, strict=True)]
        except InputError as e:
            warnings.append(f"run {rec.run_id} skipped: {e}")
        except OSError as e:
            warnings.append(f"run {rec.run_id} skipped: {rec.metrics_path}: {e.strerror}")
    if not loaded:
        raise InputError(f"none of the {len(records)} selected run(s) has a readable "
                         f"metrics.csv: {'; '.join(warnings)}")
    for i, desc in enumerate(descs):
        if not alive[i]:
            before = " after " + " ".join(descs[:i]) if i else ""
            raise InputError(f"no case matches {desc}{before} in the {len(loaded)} "
                             "selected run(s)")
    if not any(len(r.keep) for r in loaded):
        raise InputError("the selected runs have no cases")
    return Selected([r for r in loaded if r.keep.any()], warnings)


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased statuses; raises ``InputError`` for one that is not OK/FAIL/TIMEOUT."""
    out = tuple(v.upper() for v in values)
    bad = [v for v in out if v not in STATUSES]
    if bad:
        raise InputError(f"--status {bad[0]}: use OK, FAIL or TIMEOUT")
    return out
