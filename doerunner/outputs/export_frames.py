"""The shapes of an export (``srd export``), from a selection (``analysis.export``):

* **rows**: the metrics.csv rows of every selected run with a leading ``run_id`` column; the
  union of the runs' columns in metrics.csv order (FORMAT.md §3). CSV cells are copied
  verbatim from metrics.csv; ``typed_frame`` types them by ``columns.kind_of`` (numbers
  float64, declared integers Int64, booleans bool, text string, ``ts_*`` timezone-aware).
* **documents**: one JSON-ready object per run: the history record, run.json's
  environment/options/summary/telemetry, and its cases with every value grouped by family
  (``columns.FAMILIES``) and typed.
* **time series**: the flat per-sample table of the selected cases (``TIMESERIES_COLUMNS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from doerunner.analysis.export import Selected, SelectedRun
from doerunner.cells import DEFAULT_TZ, parse_tz
from doerunner.columns import (
    BOOL,
    FAMILIES,
    INT,
    NUMBER,
    TIMESTAMP,
    family_of,
    kind_of,
    order_columns,
)
from doerunner.errors import InputError
from doerunner.inputs.vocabulary import is_true
from doerunner.outputs.timeseries import SAMPLE_KEYS

TIMESERIES_COLUMNS = ("run_id", "case_id", "gpu", "timestamp", "t_s", "power_w", "mem_used_mb",
                      "util_pct", "temp_c", "sm_clock_mhz", "throttle")


def rows_frame(selected: Selected) -> pd.DataFrame:
    """The rows of every selected run with a leading ``run_id``, columns in FORMAT.md §3 order
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
            out[c] = s.map(is_true).astype(bool)
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
        return is_true(text)
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
    for k in ("srd_version", "environment", "telemetry", "options", "plan", "summary",
              "warnings"):
        if k in rj:
            doc[k] = rj[k]
    groups = {c: family_of(c) for c in run.rows.columns}
    cases = []
    for rec_row in run.rows.to_dict("records"):
        case: dict[str, Any] = {"case_id": rec_row["case_id"]}
        case.update({g: {} for g in FAMILIES})
        for c, v in rec_row.items():
            case[groups[c]][c] = _json_value(c, v)
        cases.append(case)
    doc["cases"] = cases
    return doc


def timeseries_frame(selected: Selected) -> pd.DataFrame:
    """The flat per-sample table of the selected cases (``TIMESERIES_COLUMNS``), typed:
    ``timestamp`` tz-aware (the run's ``--tz``), numbers float64, ``gpu``/``throttle``
    Int64. Raises ``InputError`` when no selected case has a time series."""
    parts = []
    for run in selected.runs:
        tz_name = ((run.run_json.get("options") or {}).get("tz")) or DEFAULT_TZ
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
                              **{name: [s.get(k) for s in samples] for k, name in SAMPLE_KEYS}})
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


def csv_cells(df: pd.DataFrame) -> Iterable[list[str]]:
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


