"""The shapes of an export (``srd export``), from a selection (``analysis.export``):

* **rows**: the metrics.csv rows of every selected run with a leading ``run_id`` column; the
  union of the runs' columns in metrics.csv order (FORMAT.md §3). CSV cells are copied
  verbatim from metrics.csv; ``typed_frame`` types them by ``columns.kind_of`` (numbers
  float64, declared integers Int64, booleans bool, text string, ``ts_*`` timezone-aware),
  ``param_*`` columns by their values (``param_kinds``).
* **documents**: one JSON-ready object per run: the history record, run.json's
  environment/options/summary/telemetry, and its cases with every value grouped by family
  (``columns.FAMILIES``) and typed (``param_*`` as ``param_kinds`` decides over the whole
  selection, so a column has one type in every run).
* **time series**: the flat per-sample table of the selected cases (``TIMESERIES_COLUMNS``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
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
    INTEGER_RE,
    NUMBER,
    TEXT,
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
# A number as JSON writes one: 6, -0.5, 1e-3 (not 007, +1, .5, 1., nan, inf, 1_000).
NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)


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


def _param_kind(values: list[str]) -> str:
    """``INT``, ``NUMBER`` or ``TEXT`` for one parameter's non-empty values (see
    ``param_kinds``)."""
    if not values or not all(NUMBER_RE.fullmatch(v) for v in values):
        return TEXT
    if all(INTEGER_RE.fullmatch(v) for v in values):
        # 20 characters at most (sign and 19 digits): int() of a huge cell is not even tried
        fits = all(len(v) <= 20 and _INT64[0] <= int(v) <= _INT64[1]
                   for v in values if len(v) > 18)
        return INT if fits else TEXT
    return NUMBER if all(math.isfinite(float(v)) for v in values) else TEXT


def param_kinds(frames: Iterable[pd.DataFrame]) -> dict[str, str]:
    """The type of each ``param_*`` column over every row of ``frames`` (metrics.csv cells,
    strings), decided once for the whole export: ``INT`` when every non-empty value is an
    integer written as such (``6``, ``-2``) that fits 64 bits; ``NUMBER`` when every one is a
    finite number written as JSON writes one (``0.5``, ``1e-3``) and one is not an integer;
    else ``TEXT`` (any other value: ``fp16``, ``007``, ``+1``, ``nan``). A column with no
    value at all is ``TEXT``. Empty cells are missing values whatever the type (null)."""
    values: dict[str, list[str]] = {}
    for f in frames:
        for c in f.columns:
            if c.startswith("param_"):
                values.setdefault(c, []).extend(v for v in f[c].astype(str).tolist() if v)
    return {c: _param_kind(vs) for c, vs in values.items()}


def _typed_param(s: pd.Series, kind: str) -> pd.Series:
    """A ``param_*`` column as ``kind`` says (``param_kinds``): Int64, float64 or string;
    empty cells missing."""
    text = s.astype(str).tolist()
    if kind == INT:
        return pd.Series(pd.array([int(v) if v else None for v in text], dtype="Int64"),
                         index=s.index)
    if kind == NUMBER:
        return pd.Series([float(v) if v else np.nan for v in text], dtype="float64",
                         index=s.index)
    return s.astype("string").replace("", pd.NA)


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
    bool (empty = false), TIMESTAMP tz-aware datetime, TEXT ``string``; ``param_*`` by
    ``param_kinds`` over ``df``. ``run_id`` and ``case_id`` are strings."""
    params = param_kinds([df])
    out = {}
    for c in df.columns:
        s = df[c]
        kind = "text" if c == "run_id" else kind_of(c)
        if c in params:
            out[c] = _typed_param(s, params[c])
        elif kind in (NUMBER, INT):
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


def _json_value(column: str, text: str, params: Mapping[str, str]) -> Any:
    if text == "":
        return False if kind_of(column) == BOOL else None
    if column in params:
        kind = params[column]
        return int(text) if kind == INT else float(text) if kind == NUMBER else text
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


def run_documents(selected: Selected) -> list[dict[str, Any]]:
    """Every selected run as a JSON-ready dict (``run_document``), ``param_*`` typed over
    the whole selection."""
    params = param_kinds(r.rows for r in selected.runs)
    return [run_document(r, params) for r in selected.runs]


def run_document(run: SelectedRun, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One run as a JSON-ready dict: history record, run.json metadata, grouped cases.
    ``params``: the type of each ``param_*`` column (``param_kinds``; default: over this
    run's rows)."""
    if params is None:
        params = param_kinds([run.rows])
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
            case[groups[c]][c] = _json_value(c, v, params)
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


