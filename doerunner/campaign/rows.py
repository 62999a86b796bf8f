"""A case and its result → one typed metrics.csv row (values unformatted, SI units).

``recordable`` is where a finished case's result becomes what srd records: every value made
storable (``cells.storable``: no integer beyond 64 bits, no invalid Unicode, no control
characters), then its row. A result that still cannot be recorded — a value of a type srd
cannot store, a row that cannot be built — becomes a FAIL result that says why
(``unrecordable``): one case fails, never the sweep.
"""

from __future__ import annotations

import math
from typing import Any

from doerunner.cells import (
    INT64_MAX,
    INT64_MIN,
    format_value,
    round_half_away,
    storable,
    storable_text,
)
from doerunner.columns import INT_COLUMNS, decimals_for
from doerunner.inputs.case import Case
from doerunner.inputs.thresholds import violations
from doerunner.results import FAIL, OK, CaseResult, Execution, Metric

# Reserved names a backend's metrics may never overwrite.
_RUN_OWNED = frozenset({"case_id", "status", "ts_start", "ts_end", "backend", "exit_code",
                        "message", "violations"})


def as_written(name: str, value: object) -> object:
    """``value`` rounded the way metrics.csv will show it (numbers only)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    places = 0 if name in INT_COLUMNS else decimals_for(name)
    try:
        return float(round_half_away(float(value), places))
    except (ValueError, OverflowError):
        return value


def build_row(case: Case, result: CaseResult) -> dict[str, Any]:
    """The row of ``case``: core and run-info columns, measured metrics, parameters,
    thresholds, tags and notes. ``violations`` is evaluated on OK cases only, against the
    values as written (so the file agrees with itself)."""
    row: dict[str, Any] = {"case_id": case.case_id, "status": result.status}
    for k, v in result.metrics.items():
        if k not in _RUN_OWNED:
            row[k] = v
    row["ts_start"] = result.t_start
    row["ts_end"] = result.t_end
    row["backend"] = case.backend
    row["exit_code"] = result.exit_code
    row["message"] = result.message
    if result.attempts != 1:
        row["attempts"] = result.attempts
    for name, text in case.params.items():
        row["param_" + name] = text
    for t in case.thresholds:
        row["threshold_" + t.metric] = t.text
    for name, on in case.tags.items():
        row["tag_" + name] = on
    for name, text in case.notes.items():
        row["note_" + name] = text
    if result.status == OK and case.thresholds:
        written = {t.metric: as_written(t.metric, row.get(t.metric)) for t in case.thresholds}
        row["violations"] = ";".join(violations(case.thresholds, written))
    else:
        row["violations"] = ""
    return row


def recordable(case: Case, result: CaseResult) -> tuple[CaseResult, dict[str, Any]]:
    """``result`` made storable (in place, ``clean_result``) and its row; when either fails,
    the ``unrecordable`` FAIL result that says why, and its row. Never raises."""
    try:
        clean_result(result)
        return result, build_row(case, result)
    except Exception as e:  # any failure fails this one case, never the run
        failed = unrecordable(case, result, e)
        return failed, build_row(case, failed)


def check_readable(case: Case, result: CaseResult) -> None:
    """Raise what recording a journaled ``result`` again would (cleaning it, its row, each
    cell's text): ``--resume`` runs such a case again rather than fail it or the run."""
    clean_result(result)
    for name, value in build_row(case, result).items():
        format_value(name, value, None)


def unrecordable(case: Case, result: CaseResult, error: BaseException) -> CaseResult:
    """The FAIL result that replaces ``result`` when it cannot be recorded (``error``): its
    times, exit code, attempts and wall time kept, its executions and metrics dropped, the
    message naming the error."""
    wall = result.metrics.get("run_seconds") if isinstance(result.metrics, dict) else None
    metrics: dict[str, Metric] = {"errors": 1}
    if type(wall) is float and math.isfinite(wall):
        metrics["run_seconds"] = wall
    exit_code = result.exit_code
    if type(exit_code) is not int or not INT64_MIN <= exit_code <= INT64_MAX:
        exit_code = None
    what = storable_text(" ".join(str(error).split()))[:300]
    return CaseResult(
        case.case_id, FAIL, _time(result.t_start), _time(result.t_end), exit_code,
        f"srd could not record the result: {type(error).__name__}: {what}", metrics,
        attempts=result.attempts if type(result.attempts) is int else 1,
        fingerprint=case.fingerprint(), definition=case.definition())


def _time(t: object) -> float:
    return t if type(t) is float and math.isfinite(t) else 0.0  # type: ignore[return-value]


def clean_result(result: CaseResult) -> None:
    """Make every value of ``result`` storable, in place: its metrics, its executions' (and
    warm-ups') metrics, messages and warnings. Raises ``TypeError`` naming a value srd cannot
    store (a list, a dict...)."""
    result.metrics = clean_metrics(result.metrics)
    result.message = storable_text(result.message)
    if result.warnings:
        result.warnings = [storable_text(w) for w in result.warnings]
    for ex in (*result.runs, *result.warmup_runs):
        _clean_execution(ex)


def _clean_execution(ex: Execution) -> None:
    ex.metrics = clean_metrics(ex.metrics)
    ex.message = storable_text(ex.message)
    if ex.warnings:
        ex.warnings = tuple(storable_text(w) for w in ex.warnings)


def clean_metrics(metrics: dict[str, Metric]) -> dict[str, Metric]:
    """``metrics`` with every value storable (``cells.storable``); a number in an integer
    column (``tokens_out``...) that no 64-bit integer holds is dropped (None), but
    ``errors``, a count every row has, is held at the largest one. The same dict when
    nothing needed cleaning (the common case: no copy)."""
    out: dict[str, Any] | None = None
    for name, value in metrics.items():
        t = type(value)  # the fast tests first: this runs for every value of every case
        if t is float:
            if name not in INT_COLUMNS or not _beyond_int64(value):
                continue
            clean: object = _too_big(name)
        elif ((t is int and INT64_MIN <= value <= INT64_MAX)  # type: ignore[operator]
              or (t is str and storable_text(value) is value)  # type: ignore[arg-type]
              or value is None or t is bool):
            continue
        else:
            try:
                clean = storable(value)
            except TypeError as e:
                raise TypeError(f"metric {storable_text(str(name))!r} holds {e}") from None
            if name in INT_COLUMNS and type(clean) is float and _beyond_int64(clean):
                clean = _too_big(name)
        if out is None:
            out = dict(metrics)
        out[name] = clean
    return metrics if out is None else out


def _beyond_int64(value: float) -> bool:
    """True for a finite float no 64-bit integer holds (NaN and ±inf: written empty)."""
    return math.isfinite(value) and not INT64_MIN <= value <= INT64_MAX


def _too_big(name: str) -> int | None:
    """What an integer column keeps of a number beyond 64 bits: nothing, but ``errors``
    (never empty, never negative) the largest count."""
    return INT64_MAX if name == "errors" else None
