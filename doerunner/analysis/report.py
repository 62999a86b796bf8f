"""``srd report``: what a finished run says — counts by status, failures, threshold
violations (which cases, which bounds, the measured value), the slowest OK cases, the most
energy-hungry cases, throttled cases, totals of time (every measured repetition, and the
run's wall time apart) and energy, and the main effects of the parameters on a response.
``build_report`` computes a ``Report`` once; the report formats (``outputs.report_text``,
``outputs.report_html``) render it. Errors are ``InputError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from doerunner.analysis.effects import EffectsTable, default_response, main_effects
from doerunner.analysis.metrics import numeric
from doerunner.analysis.runfiles import RunInput
from doerunner.backends import BACKENDS
from doerunner.columns import STATUSES
from doerunner.errors import InputError
from doerunner.inputs.vocabulary import is_true


def report_response(df: pd.DataFrame) -> str:
    """The default response: the one the OK rows' backend declares (``REPORT_RESPONSE``;
    hf: ``tokens_per_s``) when every OK row is of that backend and the column has a value,
    else ``effects.default_response`` (``p95``, else ``run_seconds``)."""
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    backends = set(ok["backend"]) if "backend" in ok.columns else set()
    if len(backends) == 1:
        cls = BACKENDS.get(backends.pop())
        declared = cls.REPORT_RESPONSE if cls is not None else None
        if declared and declared in ok.columns and numeric(ok, declared).notna().any():
            return declared
    return default_response(df)


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
    failures: pd.DataFrame          # case_id, status, message
    violations: pd.DataFrame        # case_id, violation, value
    slowest: pd.DataFrame           # case_id, run_seconds
    energy_col: str | None
    hungriest: pd.DataFrame         # case_id, <energy_col>
    throttled: pd.DataFrame         # case_id, duration_s, reasons
    total_run_seconds: float        # every measured repetition: sum of run_seconds x runs
    total_energy_j: float
    response: str
    effects: EffectsTable | None
    effects_note: str = ""
    top: int = 5
    notes: list[str] = field(default_factory=list)
    repetitions: int = 0            # the measured repetitions total_run_seconds adds up
    wall_s: float | None = None     # the run's wall time (seconds; ``wall_seconds``)

    @property
    def run_id(self) -> str:
        rj = self.source.run_json or {}
        return str(rj.get("run_id") or "")


_BOUND = re.compile(r"([a-z0-9_]+)(<=|>=|<|>|=)(.*)")


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


def build_report(src: RunInput, response: str | None = None, top: int = 5) -> Report:
    """Compute the summary of a run. ``response`` defaults to ``report_response``; an
    explicit one that is not a column raises ``InputError``. A run with no parameter
    to analyse (or no OK row) gets a note instead of an effects table."""
    df = src.df
    if response is not None and response not in df.columns:
        raise InputError(f"response {response!r} is not a column of {src.metrics_path}")
    status = df["status"] if "status" in df.columns else pd.Series("OK", index=df.index)
    counts = {s: int((status == s).sum()) for s in STATUSES}
    for s in status.unique():
        if s not in counts:
            counts[str(s)] = int((status == s).sum())
    ok = status == "OK"

    bad = df[~ok]
    failures = pd.DataFrame({"case_id": bad["case_id"], "status": status[~ok],
                             "message": bad["message"] if "message" in df else ""})

    vrows = []
    if "violations" in df.columns:
        has = df["violations"] != ""
        for cid, text, idx in zip(df["case_id"][has], df["violations"][has],
                                  df.index[has], strict=True):
            for v in text.split(";"):
                m = _BOUND.fullmatch(v.strip())
                value = ""
                if m and m.group(1) in df.columns:
                    value = df.at[idx, m.group(1)] or "(no value)"
                vrows.append((cid, v.strip(), value))
    violations = pd.DataFrame(vrows, columns=["case_id", "violation", "value"])

    rs = numeric(df, "run_seconds") if "run_seconds" in df.columns else pd.Series(
        np.nan, index=df.index)
    # run_seconds is a mean over repetitions: a case's measured time is run_seconds x runs;
    # a FAIL or TIMEOUT row's is its failing execution's alone: counted once (as JUnit does)
    runs = (numeric(df, "runs").fillna(1) if "runs" in df.columns
            else pd.Series(1.0, index=df.index)).where(ok, 1).where(rs.notna(), 0)
    slow = rs[ok].dropna().sort_values(ascending=False, kind="stable").head(top)
    slowest = pd.DataFrame({"case_id": df["case_id"][slow.index], "run_seconds": slow})

    ecol = energy_column(df)
    if ecol:
        e = numeric(df, ecol)
        hung = e.dropna().sort_values(ascending=False, kind="stable").head(top)
        hungriest = pd.DataFrame({"case_id": df["case_id"][hung.index], ecol: hung})
        total_energy = float(e.sum())
    else:
        hungriest = pd.DataFrame(columns=["case_id"])
        total_energy = math.nan

    if "thermal_throttle_detected" in df.columns:
        th = df[df["thermal_throttle_detected"].map(is_true)]
        throttled = pd.DataFrame({
            "case_id": th["case_id"],
            "duration_s": th.get("thermal_throttle_duration_sec", ""),
            "reasons": th.get("thermal_throttle_reasons", "")})
    else:
        throttled = pd.DataFrame(columns=["case_id", "duration_s", "reasons"])

    resp = response or report_response(df)
    effects, note = None, ""
    try:
        effects = main_effects(df, resp)
    except InputError as e:
        note = f"no main effects on {resp}: {e}"
    return Report(src, counts, failures, violations, slowest, ecol, hungriest, throttled,
                  float((rs * runs).sum()), total_energy, resp, effects, note, top,
                  repetitions=int(runs.sum()), wall_s=wall_seconds(src.run_json))


