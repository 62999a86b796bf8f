"""``srd export``'s selection: runs from the history, filtered down to cases.

Runs by id (or unique prefix), project and start date, or all; then cases by case_id glob,
tag and status. Filters of one kind are alternatives (``--tag a --tag b``: either tag);
different kinds must all hold. Nothing selected raises ``InputError`` naming the filter
that emptied the selection. The shapes the selection is written in are the export formats'
(``outputs.export``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from doerunner.analysis.metrics import read_metrics
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


@dataclass
class SelectedRun:
    """One selected run: its history record and the selected rows of its metrics.csv
    (strings); ``run_json`` (``{}`` when gone) is read when first asked for — it holds
    every repetition of every case, and CSV/Parquet exports do not need it."""

    record: RunRecord
    rows: pd.DataFrame
    _run_json: dict[str, Any] | None = None

    @property
    def run_json(self) -> dict[str, Any]:
        if self._run_json is None:
            self._run_json = run_json_or_empty(Path(self.record.run_dir) / "run.json")
        return self._run_json


@dataclass
class Selected:
    """The selected runs (only those with a selected case) and warnings (runs skipped)."""

    runs: list[SelectedRun]
    warnings: list[str] = field(default_factory=list)

    @property
    def case_count(self) -> int:
        return sum(len(r.rows) for r in self.runs)


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
            m |= ids.map(lambda s, p=pat: fnmatch.fnmatchcase(s, p)) if any(
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


def select(sel: Selection, history: Path | None = None) -> Selected:
    """Runs then cases, per ``sel``. A run whose metrics.csv is gone is skipped with a
    warning. Raises ``InputError`` when nothing is left, naming the filter that left
    nothing (counted over every selected run)."""
    records = select_runs(sel, history)
    loaded: list[tuple[RunRecord, pd.DataFrame]] = []
    warnings = []
    for rec in records:
        try:
            loaded.append((rec, read_metrics(rec.metrics_path)))
        except InputError as e:
            warnings.append(f"run {rec.run_id} skipped: {e}")
    if not loaded:
        raise InputError(f"none of the {len(records)} selected run(s) has a readable "
                         f"metrics.csv: {'; '.join(warnings)}")
    masks = [(rec, df, _case_filters(df, sel)) for rec, df in loaded]
    n_filters = len(masks[0][2])
    keep = [pd.Series(True, index=df.index) for _, df, _ in masks]
    for i in range(n_filters):
        for j, (_, _, filters) in enumerate(masks):
            keep[j] = keep[j] & filters[i][1]
        if not any(k.any() for k in keep):
            desc = masks[0][2][i][0]
            before = " after " + " ".join(masks[0][2][k][0] for k in range(i)) if i else ""
            raise InputError(f"no case matches {desc}{before} in the {len(loaded)} selected "
                             "run(s)")
    if not any(len(df) for _, df in loaded):
        raise InputError("the selected runs have no cases")
    runs = [SelectedRun(rec, df[k])
            for (rec, df, _), k in zip(masks, keep, strict=True) if k.any()]
    return Selected(runs, warnings)


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased statuses; raises ``InputError`` for one that is not OK/FAIL/TIMEOUT."""
    out = tuple(v.upper() for v in values)
    bad = [v for v in out if v not in STATUSES]
    if bad:
        raise InputError(f"--status {bad[0]}: use OK, FAIL or TIMEOUT")
    return out
