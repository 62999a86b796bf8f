"""The shapes of an export (``srd export``), from a selection (``analysis.export``), each
made a piece at a time, so that memory does not grow with the runs exported:

* **rows**: the metrics.csv rows of every selected run with a leading ``run_id`` column, in
  the union of the runs' columns in metrics.csv order (FORMAT.md §3; ``export_header``),
  cells copied verbatim (``placed_rows``: a run's cells put in place in that header, a
  block of rows at a time, never a frame as wide as the union for every row);
* **documents**: one JSON-ready object per run: the history record, run.json's
  environment/options/summary/telemetry (``run_head``), and its cases with every value
  grouped by family (``columns.FAMILIES``) and typed (``case_documents``; ``param_*`` as
  ``export_types`` decides over the whole selection, so a column has one type in every
  run);
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from doerunner.analysis import metrics
from doerunner.analysis.export import Selected, SelectedRun
from doerunner.columns import FAMILIES, family_of, order_columns
from doerunner.outputs.export_types import ColumnTypes, json_value


def export_header(selected: Selected) -> list[str]:
    """``run_id``, then the union of the selected runs' columns in FORMAT.md §3 order."""
    return ["run_id", *order_columns(selected.columns())]


def placed_rows(run: SelectedRun, header: list[str]) -> Iterator[list[list[str]]]:
    """The selected rows of ``run`` as rows of ``header`` (``run_id``, then columns in
    ``export_header``'s order): its ``run_id``, its cells verbatim in their columns, ``""``
    in the columns it lacks (its columns not in ``header`` are not read); in blocks of
    about ``metrics.CHUNK_CELLS`` cells (at least one row)."""
    where = {c: i for i, c in enumerate(header)}
    step = max(1, metrics.CHUNK_CELLS // len(header))
    read = None if where.keys() >= set(run.columns) else where.__contains__
    for piece in run.pieces(read):
        values = piece.to_numpy(dtype=object)
        at = [where[c] for c in piece.columns]
        for a in range(0, len(values), step):
            part = values[a:a + step]
            block = np.full((len(part), len(header)), "", dtype=object)
            block[:, 0] = run.record.run_id
            block[:, at] = part
            yield block.tolist()


def column_types(selected: Selected, *, params_only: bool = False) -> ColumnTypes:
    """The types of the export's columns over every selected row (``ColumnTypes``): one
    streaming pass that reads only the columns it types (``params_only``: the
    parameters)."""
    types = ColumnTypes()
    for run in selected.runs:
        for piece in run.pieces(lambda c: ColumnTypes.needs(c, params_only=params_only)):
            types.see(piece.drop(columns="case_id"))
    return types


def run_head(run: SelectedRun) -> dict[str, Any]:
    """A run's JSON object but its cases: history record, counts, run.json metadata."""
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
    return doc


def case_documents(run: SelectedRun, types: ColumnTypes) -> Iterator[dict[str, Any]]:
    """The selected cases of ``run`` as JSON-ready objects: ``case_id``, then every
    family (``columns.FAMILIES``) with the case's values of it, typed
    (``export_types.json_value``)."""
    groups = {c: family_of(c) for c in run.columns}
    for piece in run.pieces():
        names = list(piece.columns)
        at = names.index("case_id")
        for row in piece.itertuples(index=False, name=None):
            case: dict[str, Any] = {"case_id": row[at]}
            case.update({g: {} for g in FAMILIES})
            for c, v in zip(names, row, strict=True):
                case[groups[c]][c] = json_value(c, v, types)
            yield case


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
