"""``srd export``: runs from the history, filtered down to cases, as JSON, CSV or Parquet.

Selection (``Selection``): runs by id (or unique prefix), project and start date, or all;
then cases by case_id glob, tag and status. Filters of one kind are alternatives (``--tag a
--tag b``: either tag); different kinds must all hold. Nothing selected raises
``InputError`` naming the filter that emptied the selection.

Shapes:

* **rows** (``csv`` / ``parquet``): the metrics.csv rows of every selected run with a leading
  ``run_id`` column; the union of the runs' columns in SPEC §3 order. CSV cells are copied
  verbatim from metrics.csv; Parquet columns are typed by ``columns.kind_of``: numbers
  float64 (declared integers Int64), booleans bool, text string, ``ts_*`` timezone-aware.
* **split** (CSV only): one file per metric group, each keyed by ``run_id,case_id``, plus
  ``runs.csv`` (one row per run). The group of "other measured" columns goes to
  ``custom.csv`` (a file named ``metrics.csv`` would pass for a whole metrics.csv).
* **json**: one run object (exactly one run selected) or an array of them: the history
  record, run.json's environment/options/summary/telemetry, and its cases with every value
  grouped (``GROUPS``) and typed.
* **timeseries**: the flat per-sample table of the selected cases (``run_id,case_id,gpu,
  timestamp,t_s,power_w,mem_used_mb,util_pct,temp_c,sm_clock_mhz,throttle``) in any format.

The library writes files atomically and never imports click.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson
import pandas as pd

from doerunner.analysis.effects import read_metrics
from doerunner.cells import parse_tz
from doerunner.columns import BOOL, CORE, INT, NUMBER, RUN_INFO, TIMESTAMP, kind_of, order_columns
from doerunner.errors import InputError
from doerunner.history import RunRecord, get_run, list_runs
from doerunner.outputs.atomic import atomic_open

FORMATS = ("json", "csv", "parquet")
GROUPS = ("core", "run_info", "metrics", "params", "thresholds", "ext", "tags", "notes",
          "energy", "gpu", "thermal", "env")
_PREFIXES = (("param_", "params"), ("threshold_", "thresholds"), ("ext_", "ext"),
             ("tag_", "tags"), ("note_", "notes"), ("energy_", "energy"), ("gpu_", "gpu"),
             ("thermal_", "thermal"), ("env_", "env"))
SPLIT_FILE = {g: g for g in GROUPS} | {"metrics": "custom"}
TIMESERIES_COLUMNS = ("run_id", "case_id", "gpu", "timestamp", "t_s", "power_w", "mem_used_mb",
                      "util_pct", "temp_c", "sm_clock_mhz", "throttle")
_SHORT = (("p", "power_w"), ("mem_mb", "mem_used_mb"), ("sm_pct", "util_pct"),
          ("temp_c", "temp_c"), ("clk_mhz", "sm_clock_mhz"), ("throttle", "throttle"))
_TRUE = frozenset({"1", "true", "True", "yes", "x"})


def group_of(column: str) -> str:
    """The metric group of a metrics.csv column (SPEC §3 prefixes): ``core``,
    ``run_info``, ``params``, ``thresholds``, ``ext``, ``tags``, ``notes``, ``energy``,
    ``gpu``, ``thermal``, ``env``, else ``metrics`` (other measured columns)."""
    if column in CORE:
        return "core"
    if column in RUN_INFO:
        return "run_info"
    for prefix, group in _PREFIXES:
        if column.startswith(prefix):
            return group
    return "metrics"


# --- selection ------------------------------------------------------------------------------


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
            self._run_json = _load_run_json(self.record)
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
                m |= df[col].isin(_TRUE)
        out.append((" ".join(f"--tag {t}" for t in sel.tags), m))
    if sel.statuses:
        wanted = {s.upper() for s in sel.statuses}
        m = df["status"].isin(wanted) if "status" in df.columns else pd.Series(
            False, index=df.index)
        out.append((" ".join(f"--status {s}" for s in sel.statuses), m))
    return out


def _load_run_json(rec: RunRecord) -> dict[str, Any]:
    p = Path(rec.run_dir) / "run.json"
    try:
        doc = orjson.loads(p.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    doc.pop("cases", None)  # every case's full result: the export reads metrics.csv
    return doc


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


# --- rows (csv / parquet) -------------------------------------------------------------------


def rows_frame(selected: Selected) -> pd.DataFrame:
    """The rows of every selected run with a leading ``run_id``, columns in SPEC §3 order
    (union over the runs); missing cells are ``""``."""
    names: set[str] = set()
    for r in selected.runs:
        names.update(r.rows.columns)
    header = ["run_id", *order_columns(names)]
    frames = []
    for r in selected.runs:
        f = r.rows.reindex(columns=header[1:], fill_value="")
        f.insert(0, "run_id", r.record.run_id)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)[header]


def _timestamps(s: pd.Series) -> pd.Series:
    """ISO 8601 strings → tz-aware datetimes: in their own offset when every value shares
    one, else in UTC."""
    text = s.astype(str)
    have = text[text != ""]
    ts = pd.to_datetime(text.where(text != "", None), utc=True, format="ISO8601")
    offsets = have.str.extract(r"([+-]\d\d:\d\d|Z)$")[0].dropna().unique()
    if len(offsets) == 1 and offsets[0] != "Z":
        o = offsets[0]
        sign = 1 if o[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(o[1:3]), minutes=int(o[4:6])))
        ts = ts.dt.tz_convert(tz)
    return ts


def typed_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (strings) with proper dtypes, by ``columns.kind_of``: NUMBER float64 (a
    custom metric column with a non-numeric value stays text), INT nullable Int64, BOOL
    bool (empty = false), TIMESTAMP tz-aware datetime, TEXT ``string``. ``run_id`` and
    ``case_id`` are strings."""
    out = {}
    for c in df.columns:
        s = df[c]
        kind = "text" if c == "run_id" else kind_of(c)
        if kind in (NUMBER, INT):
            v = pd.to_numeric(s.replace("", np.nan), errors="coerce")
            if v.isna().sum() > (s == "").sum():  # text where a number was expected
                out[c] = s.astype("string").replace("", pd.NA)
            elif kind == INT:
                out[c] = v.round().astype("Int64")
            else:
                out[c] = v.astype("float64")
        elif kind == BOOL:
            out[c] = s.isin(_TRUE).astype(bool)
        elif kind == TIMESTAMP:
            out[c] = _timestamps(s)
        else:
            out[c] = s.astype("string").replace("", pd.NA) if c not in ("run_id",
                                                                         "case_id") else \
                s.astype("string")
    return pd.DataFrame(out, index=df.index)


def _json_value(column: str, text: str) -> Any:
    if text == "":
        return False if kind_of(column) == BOOL else None
    kind = kind_of(column)
    if kind == BOOL:
        return text in _TRUE
    if kind in (NUMBER, INT):
        try:
            v = float(text)
        except ValueError:
            return text
        if not math.isfinite(v):
            return None
        return int(v) if kind == INT or (v.is_integer() and "." not in text and "e" not in
                                         text.lower()) else v
    return text


def run_document(run: SelectedRun) -> dict[str, Any]:
    """One run as a JSON-ready dict: history record, run.json metadata, grouped cases."""
    rec = asdict(run.record)
    for k in ("started", "ended"):
        if rec[k] is not None:
            rec[k] = datetime.fromtimestamp(rec[k]).astimezone().isoformat(timespec="seconds")
    rj = run.run_json
    doc: dict[str, Any] = {"run_id": rec.pop("run_id"), **rec}
    doc["counts"] = {k: doc.pop(k) for k in ("total", "ok", "fail", "timeout", "violated")}
    for k in ("srd_version", "environment", "telemetry", "options", "summary", "warnings"):
        if k in rj:
            doc[k] = rj[k]
    groups = {c: group_of(c) for c in run.rows.columns}
    cases = []
    for rec_row in run.rows.to_dict("records"):
        case: dict[str, Any] = {"case_id": rec_row["case_id"]}
        case.update({g: {} for g in GROUPS})
        for c, v in rec_row.items():
            case[groups[c]][c] = _json_value(c, v)
        cases.append(case)
    doc["cases"] = cases
    return doc


# --- time series ----------------------------------------------------------------------------


def timeseries_frame(selected: Selected) -> pd.DataFrame:
    """The flat per-sample table of the selected cases (``TIMESERIES_COLUMNS``), typed:
    ``timestamp`` tz-aware (the run's ``--tz``), numbers float64, ``gpu``/``throttle``
    Int64. Raises ``InputError`` when no selected case has a time series."""
    parts = []
    for run in selected.runs:
        tz_name = ((run.run_json.get("options") or {}).get("tz")) or "JST"
        try:
            tz = parse_tz(tz_name)
        except Exception:  # an unknown name in an old run.json: UTC is still honest
            tz = timezone.utc
        metrics_dir = Path(run.record.metrics_path).parent
        rels = (run.rows["timeseries_path"].tolist() if "timeseries_path" in run.rows.columns
                else [""] * len(run.rows))
        for cid, rel in zip(run.rows["case_id"].tolist(), rels, strict=True):
            p = metrics_dir / rel if rel else Path(run.record.run_dir) / "timeseries" / (
                f"{cid}.json")
            if not p.is_file():
                continue
            try:
                doc = orjson.loads(p.read_bytes())
            except (OSError, ValueError):
                continue
            samples = doc.get("samples") or []
            if not samples:
                continue
            t0 = float(doc.get("t0", 0.0))
            f = pd.DataFrame({"t_s": [s.get("t") for s in samples],
                              "gpu": [s.get("g") for s in samples],
                              **{name: [s.get(k) for s in samples] for k, name in _SHORT}})
            f.insert(0, "case_id", cid)
            f.insert(0, "run_id", run.record.run_id)
            f["timestamp"] = pd.to_datetime((t0 + f["t_s"].astype(float)) * 1e9,
                                            utc=True).dt.tz_convert(tz)
            parts.append(f)
    if not parts:
        raise InputError(f"none of the {selected.case_count} selected case(s) has a time "
                         "series (timeseries/<case_id>.json: runs with GPU telemetry)")
    df = pd.concat(parts, ignore_index=True)
    for c in ("gpu", "throttle"):
        df[c] = pd.to_numeric(df[c]).round().astype("Int64")
    for c in ("t_s", "power_w", "mem_used_mb", "util_pct", "temp_c", "sm_clock_mhz"):
        df[c] = pd.to_numeric(df[c]).astype("float64")
    for c in ("run_id", "case_id"):
        df[c] = df[c].astype("string")
    return df[list(TIMESERIES_COLUMNS)]


# --- writing --------------------------------------------------------------------------------


def _csv_cells(df: pd.DataFrame) -> Iterable[list[str]]:
    """Cells as text: timestamps ISO 8601 with ms, missing empty, floats via repr."""
    cols = []
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            cols.append([x.isoformat(timespec="milliseconds") for x in s])
        else:
            cols.append(["" if (v is None or v is pd.NA or (isinstance(v, float) and
                                                            math.isnan(v))) else str(v)
                         for v in s.tolist()])
    return (list(r) for r in zip(*cols, strict=True))


def _write_csv(df: pd.DataFrame, out: TextIO, *, verbatim: bool = True) -> None:
    """``df`` as CSV with metrics.csv's settings; ``verbatim``: every cell is already the
    text to write (the metrics.csv cells)."""
    from doerunner.outputs.metrics_csv import csv_writer

    w = csv_writer(out.write)
    w.writerow(list(df.columns))
    if verbatim:
        w.writerows(df.to_numpy(dtype=object).tolist())  # fast on arrow-backed str
    else:
        w.writerows(_csv_cells(df))


def _to_text_target(path: str | None, write: Any) -> None:
    if path is None or path == "-":
        write(sys.stdout)
        return
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        write(f)


def _json_default(o: Any) -> Any:
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if math.isnan(o) else float(o)
    if o is pd.NA:
        return None
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def write_json(docs: list[dict[str, Any]] | dict[str, Any], out: str | None) -> None:
    """Pretty JSON (indent 2, UTF-8) to ``out`` (atomically) or stdout."""
    def w(f: TextIO) -> None:
        json.dump(docs, f, indent=2, ensure_ascii=False, default=_json_default)
        f.write("\n")

    _to_text_target(out, w)


def write_parquet(df: pd.DataFrame, out: str) -> None:
    """``df`` as Parquet (pyarrow), written atomically."""
    with atomic_open(out, "wb") as f:
        df.to_parquet(f, engine="pyarrow", index=False)


def write_split(selected: Selected, directory: str | Path) -> list[Path]:
    """One CSV per metric group (each keyed by run_id, case_id) plus ``runs.csv``; returns
    the files written. Only groups that have a column are written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rows = rows_frame(selected)
    written = []
    runs = pd.DataFrame([{**{k: v for k, v in asdict(r.record).items()
                             if k != "command_line"},
                          "command_line": " ".join(r.record.command_line),
                          "cases_selected": len(r.rows)} for r in selected.runs])
    runs = runs.astype(object).where(runs.notna(), "").astype(str)
    for name, frame in [("runs", runs)] + [
            (SPLIT_FILE[g], rows[["run_id", "case_id",
                                  *[c for c in rows.columns[1:]
                                    if group_of(c) == g and c != "case_id"]]])
            for g in GROUPS]:
        if name != "runs" and frame.shape[1] == 2 and name != "core":
            continue
        p = d / f"{name}.csv"
        with atomic_open(p, "w", encoding="utf-8", newline="") as f:
            _write_csv(frame, f)
        written.append(p)
    return written


@dataclass
class ExportResult:
    """What was written: a message for the user and the warnings of the selection."""

    message: str
    warnings: list[str]


def export(sel: Selection, fmt: str, out: str | None = None, *, split: str | None = None,
           timeseries: bool = False, history: Path | None = None) -> ExportResult:
    """Select and write. ``out`` None (or ``-``) writes JSON/CSV to stdout; Parquet needs a
    file. ``split`` (CSV only, not with ``timeseries``) is a directory. Raises
    ``InputError`` for bad combinations and empty selections, ``OSError`` when a file
    cannot be written."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use {', '.join(FORMATS)}")
    if split is not None and (fmt != "csv" or timeseries):
        raise InputError("--split needs --format csv and no --timeseries")
    if fmt == "parquet" and out in (None, "-"):
        raise InputError("--format parquet needs --out FILE")
    selected = select(sel, history)
    n_runs, n_cases = len(selected.runs), selected.case_count
    what = f"{n_cases} case(s) of {n_runs} run(s)"
    where = out if out not in (None, "-") else "stdout"
    if timeseries:
        df = timeseries_frame(selected)
        what = f"{len(df)} samples of " + what
        if fmt == "json":
            recs = df.astype(object).where(df.notna(), None).to_dict("records")
            write_json(recs, out)
        elif fmt == "csv":
            _to_text_target(out, lambda f: _write_csv(df, f, verbatim=False))
        else:
            write_parquet(df, out)  # type: ignore[arg-type]
    elif split is not None:
        files = write_split(selected, split)
        return ExportResult(f"exported {what} to {len(files)} files in {split}: "
                            + ", ".join(p.name for p in files), selected.warnings)
    elif fmt == "json":
        docs = [run_document(r) for r in selected.runs]
        write_json(docs[0] if len(docs) == 1 else docs, out)
    elif fmt == "csv":
        rows = rows_frame(selected)
        _to_text_target(out, lambda f: _write_csv(rows, f))
    else:
        write_parquet(typed_frame(rows_frame(selected)), out)  # type: ignore[arg-type]
    return ExportResult(f"exported {what} to {where}", selected.warnings)


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased statuses; raises ``InputError`` for one that is not OK/FAIL/TIMEOUT."""
    out = tuple(v.upper() for v in values)
    bad = [v for v in out if v not in ("OK", "FAIL", "TIMEOUT")]
    if bad:
        raise InputError(f"--status {bad[0]}: use OK, FAIL or TIMEOUT")
    return out
