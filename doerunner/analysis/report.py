"""``srd report``: what a finished run says — counts by status, failures, threshold
violations (which cases, which bounds, the measured value), the slowest OK cases, the most
energy-hungry cases, throttled cases, totals of time (every measured repetition, and the
run's wall time apart) and energy, and the main effects of the parameters on a response.
``build_report`` computes a ``Report`` once; the report formats (``outputs.report_text``,
``outputs.report_html``) render it. Errors are ``InputError``.

Every table that names cases has ``case_id`` first and the run's parameters (``param_*``, in
metrics.csv's order) right after it: a case id alone rarely says which configuration it was.
A value copied from metrics.csv stays its cell text (rounded as the file rounds it); only
what the report computes (totals, means) is a number, which the formats round with the
column's decimals (``outputs.tables.cell_text``).

Memory stays small on a large run (a million rows: some hundred MB): ``load_report`` reads
only the columns the report shows (``report_columns``), as Arrow-backed strings; the tables
of failures, violations and throttled cases list the first ``LISTED`` (their titles give
the whole count); slowest and most energy-hungry cases are the top ``top``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from doerunner.analysis.effects import EffectsTable, default_response, main_effects
from doerunner.analysis.metrics import iter_metrics, metrics_header, numeric, spread_column
from doerunner.analysis.runfiles import RunInput, load_run
from doerunner.backends import BACKENDS
from doerunner.columns import HOST_COLUMNS, STATUSES
from doerunner.errors import InputError
from doerunner.inputs.vocabulary import is_true

LISTED = 20
"""The most rows the failures, violations and throttled tables list (the first in file
order); their titles give the whole count."""

# What the report shows of a run besides case_id and the parameters: the case tables, the
# totals, the default responses and their spreads, the Pareto axes, the host plot.
_REPORTED = frozenset({
    "status", "message", "violations", "backend", "run_seconds", "runs", "run_seconds_std",
    "p95", "p95_std", "throughput_rps", "energy_adjusted_j", "energy_raw_j",
    "energy_total_j", "thermal_throttle_detected", "thermal_throttle_duration_sec",
    "thermal_throttle_reasons", "timeseries_path"}) | HOST_COLUMNS


def report_columns(response: str | None = None) -> Callable[[str], bool]:
    """Which metrics.csv columns the report reads besides ``case_id``: the parameters,
    what it shows (``_REPORTED``), each backend's ``REPORT_RESPONSE`` and ``response``
    with their spread columns. A bounded column a violation names that is not among them
    is read for the listed violations alone."""
    wanted = set(_REPORTED)
    for name in [cls.REPORT_RESPONSE for cls in BACKENDS.values()] + [response]:
        if name:
            wanted.update((name, spread_column(name)))
    return lambda c: c in wanted or c.startswith("param_")


def load_report(source: str | Path, response: str | None = None) -> RunInput:
    """A run directory or metrics.csv read for ``srd report`` (``runfiles.load_run``):
    the columns ``report_columns`` names, as Arrow-backed strings. Raises
    ``InputError``."""
    return load_run(source, report_columns(response), compact=True)


def report_response(df: pd.DataFrame) -> str:
    """The default response: the one the OK rows' backend declares (``REPORT_RESPONSE``;
    hf: ``tokens_per_s``) when every OK row is of that backend and the column has a value,
    else ``effects.default_response`` (``p95``, else ``run_seconds``)."""
    ok = df["status"] == "OK" if "status" in df.columns else pd.Series(True, index=df.index)
    backends = set(df.loc[ok, "backend"].unique()) if "backend" in df.columns else set()
    if len(backends) == 1:
        cls = BACKENDS.get(backends.pop())
        declared = cls.REPORT_RESPONSE if cls is not None else None
        if declared and declared in df.columns and numeric(df, declared)[ok].notna().any():
            return declared
    return default_response(df[[c for c in ("case_id", "status", "p95") if c in df.columns]])


def energy_column(df: pd.DataFrame) -> str | None:
    """``energy_adjusted_j`` when it has values, else ``energy_raw_j`` when it has (the
    GPUs), else ``energy_total_j`` (GPU + CPU + DRAM: a host with RAPL and no GPU), else
    None."""
    for c in ("energy_adjusted_j", "energy_raw_j", "energy_total_j"):
        if c in df.columns and numeric(df, c).notna().any():
            return c
    return None


@dataclass
class Report:
    """Everything the summary shows, computed once from a ``RunInput``."""

    source: RunInput
    counts: dict[str, int]
    # the case tables: case_id, the parameters (``params``), then these columns
    failures: pd.DataFrame          # status, message
    violations: pd.DataFrame        # violation, value (the cell text)
    slowest: pd.DataFrame           # run_seconds (the cell text)
    energy_col: str | None
    hungriest: pd.DataFrame         # <energy_col> (the cell text)
    throttled: pd.DataFrame         # duration_s, reasons
    total_run_seconds: float        # every measured repetition: sum of run_seconds x runs
    total_energy_j: float
    response: str
    effects: EffectsTable | None
    effects_note: str = ""
    top: int = 5
    notes: list[str] = field(default_factory=list)
    repetitions: int = 0            # the measured repetitions total_run_seconds adds up
    wall_s: float | None = None     # the run's wall time (seconds; ``wall_seconds``)
    params: list[str] = field(default_factory=list)  # the param_* columns, metrics.csv order
    # the whole counts of the tables that list the first ``LISTED`` rows
    failures_total: int = 0
    violations_total: int = 0
    violated: int = 0               # cases with a violation
    throttled_total: int = 0

    @property
    def run_id(self) -> str:
        rj = self.source.run_json or {}
        return str(rj.get("run_id") or "")


_BOUND = re.compile(r"([a-z0-9_]+)(<=|>=|<|>|=)(.*)")


def param_columns(df: pd.DataFrame) -> list[str]:
    """The run's parameters: the ``param_*`` columns, in the file's order."""
    return [c for c in df.columns if str(c).startswith("param_")]


def case_table(df: pd.DataFrame, rows: pd.Index, columns: dict[str, Any]) -> pd.DataFrame:
    """The rows ``rows`` of ``df`` as a case table: ``case_id``, the parameters, then
    ``columns`` (name → values in the order of ``rows``, or one value for all)."""
    out = {"case_id": df["case_id"].loc[rows].tolist()}
    out.update({p: df[p].loc[rows].tolist() for p in param_columns(df)})
    for name, values in columns.items():
        out[name] = (values.tolist() if isinstance(values, pd.Series)
                     else list(values) if isinstance(values, list) else [values] * len(rows))
    return pd.DataFrame(out, columns=list(out))


def wall_seconds(run_json: dict[str, Any] | None) -> float | None:
    """The run's wall time in seconds: run.json's ``summary.elapsed_s``, else ``ended`` −
    ``started`` (ISO 8601, second precision), else None (no run.json, or neither there)."""
    rj = run_json or {}
    elapsed = (rj.get("summary") or {}).get("elapsed_s")
    if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) and math.isfinite(
            elapsed):
        return float(elapsed)
    try:
        return (datetime.fromisoformat(rj["ended"])
                - datetime.fromisoformat(rj["started"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _violations(src: RunInput, df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """The first ``LISTED`` violations (a case table: violation, value: the bounded
    column's cell), how many there are, and in how many cases."""
    if "violations" not in df.columns:
        return case_table(df, df.index[:0], {"violation": [], "value": []}), 0, 0
    has = df["violations"] != ""
    total = int((df["violations"][has].str.count(";") + 1).sum())
    listed: list[tuple[Any, str, str | None]] = []  # (row, violation, bounded column)
    for text, idx in zip(df["violations"][has], df.index[has], strict=True):
        for v in text.split(";"):
            m = _BOUND.fullmatch(v.strip())
            listed.append((idx, v.strip(), m.group(1) if m else None))
        if len(listed) >= LISTED:
            break
    listed = listed[:LISTED]
    cells = _cells(src, df, {(idx, c) for idx, _, c in listed if c is not None})
    values = [(cells[idx, c] or "(no value)") if (idx, c) in cells else ""
              for idx, _, c in listed]
    table = case_table(df, pd.Index([idx for idx, _, _ in listed], dtype=df.index.dtype),
                       {"violation": [v for _, v, _ in listed], "value": values})
    return table, total, int(df["case_id"][has].nunique())


def _cells(src: RunInput, df: pd.DataFrame, wanted: set[tuple[Any, str]]
           ) -> dict[tuple[Any, str], str]:
    """The cells (row, column) of metrics.csv in ``wanted`` that it has: from ``df``, or
    read from the file for a column ``df`` left out (rows are positions in the file)."""
    out = {(idx, c): df.at[idx, c] for idx, c in wanted if c in df.columns}
    missing = {c for _, c in wanted if c not in df.columns}
    if missing and (missing := missing & set(metrics_header(src.metrics_path))):
        for piece in iter_metrics(src.metrics_path, missing.__contains__):
            out.update({(idx, c): piece.at[idx, c] for idx, c in wanted
                        if c in missing and idx in piece.index})
    return out


def build_report(src: RunInput, response: str | None = None, top: int = 5) -> Report:
    """Compute the summary of a run. ``response`` defaults to ``report_response``; an
    explicit one that is not a column raises ``InputError``. A run with no parameter
    to analyse (or no OK row) gets a note instead of an effects table. Values near the
    float limit (±1e308) make sums and means infinite, silently: the report says so."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _build(src, response, top)


def _build(src: RunInput, response: str | None, top: int) -> Report:
    df = src.df
    if response is not None and response not in df.columns:
        raise InputError(f"response {response!r} is not a column of {src.metrics_path}")
    status = df["status"] if "status" in df.columns else pd.Series("OK", index=df.index)
    counts = {s: int((status == s).sum()) for s in STATUSES}
    for s in status.unique():
        if s not in counts:
            counts[str(s)] = int((status == s).sum())
    ok = status == "OK"

    bad = df.index[~ok]
    failures = case_table(df, bad[:LISTED], {
        "status": status.loc[bad[:LISTED]],
        "message": df["message"].loc[bad[:LISTED]] if "message" in df else ""})
    violations, n_violations, violated = _violations(src, df)

    rs = numeric(df, "run_seconds") if "run_seconds" in df.columns else pd.Series(
        np.nan, index=df.index)
    # run_seconds is a mean over repetitions: a case's measured time is run_seconds x runs;
    # a FAIL or TIMEOUT row's is its failing execution's alone: counted once (as JUnit does)
    runs = (numeric(df, "runs").fillna(1) if "runs" in df.columns
            else pd.Series(1.0, index=df.index)).where(ok, 1).where(rs.notna(), 0)
    slow = rs[ok].dropna().sort_values(ascending=False, kind="stable").head(top).index
    slowest = case_table(df, slow, {"run_seconds": df["run_seconds"].loc[slow]
                                    if "run_seconds" in df.columns else []})

    ecol = energy_column(df)
    if ecol:
        e = numeric(df, ecol)
        hung = e.dropna().sort_values(ascending=False, kind="stable").head(top).index
        hungriest = case_table(df, hung, {ecol: df[ecol].loc[hung]})
        total_energy = float(e.sum())
    else:
        hungriest = case_table(df, df.index[:0], {})
        total_energy = math.nan

    th = (df.index[df["thermal_throttle_detected"].map(is_true).astype(bool)]
          if "thermal_throttle_detected" in df.columns else df.index[:0])
    throttled = case_table(df, th[:LISTED], {
        "duration_s": df["thermal_throttle_duration_sec"].loc[th[:LISTED]]
        if "thermal_throttle_duration_sec" in df.columns else "",
        "reasons": df["thermal_throttle_reasons"].loc[th[:LISTED]]
        if "thermal_throttle_reasons" in df.columns else ""})

    resp = response or report_response(df)
    effects, note = None, ""
    try:
        # only what the effects read: a copy of the rows it keeps is of these columns
        used = ["case_id", "status", "runs", resp, spread_column(resp), *param_columns(df)]
        effects = main_effects(df[list(dict.fromkeys(c for c in used if c in df.columns))],
                               resp)
    except InputError as e:
        note = f"no main effects on {resp}: {e}"
    return Report(src, counts, failures, violations, slowest, ecol, hungriest, throttled,
                  float((rs * runs).sum()), total_energy, resp, effects, note, top,
                  repetitions=int(runs.sum()), wall_s=wall_seconds(src.run_json),
                  params=param_columns(df), failures_total=len(bad),
                  violations_total=n_violations, violated=violated,
                  throttled_total=len(th))
