"""A case and its result → one typed metrics.csv row (values unformatted, SI units)."""

from __future__ import annotations

from typing import Any

from doerunner.cells import round_half_away
from doerunner.columns import INT_COLUMNS, decimals_for
from doerunner.inputs.case import Case
from doerunner.inputs.thresholds import violations
from doerunner.results import OK, CaseResult

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
