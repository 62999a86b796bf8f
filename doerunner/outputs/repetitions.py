"""``repetitions.csv`` in the run directory (FORMAT.md §4): every measured repetition's
values of the OK cases measured more than once, what ``srd compare`` tests a change with.

One row per (case, repetition, metric) — ``case_id,repetition,metric,value`` — in case
order, repetitions from 1, metrics in the order the repetition reported them with
``run_seconds`` (its wall time) first. Values are written in full precision (the shortest
decimal that reads back as the same float, never in exponent notation), unlike metrics.csv:
they are raw data for statistics, not a table for reading. Only numbers (not booleans, not
text, not NaN) are written.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from typing import IO, Any

from doerunner.outputs.base import OutputFormat

COLUMNS = ("case_id", "repetition", "metric", "value")
FILE_NAME = "repetitions.csv"


def number_text(value: float | int) -> str:
    """A number in full precision without an exponent (``1e-07`` → ``0.0000001``)."""
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" not in text:
        return text
    import numpy as np

    return np.format_float_positional(value, trim="-")


def _rows(case: dict[str, Any]) -> Iterable[tuple[str, int, str, str]]:
    cid = case["case_id"]
    for n, run in enumerate(case.get("runs", ()), start=1):
        yield cid, n, "run_seconds", number_text(run["wall_s"])
        for name, value in (run.get("metrics") or {}).items():
            if (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value)):
                yield cid, n, name, number_text(value)


class RepetitionsCsv(OutputFormat):
    """``repetitions.csv`` from case results as run.json holds them (dicts with
    ``case_id`` and ``runs``), in case order."""

    NAME = "repetitions"

    def write(self, data: Iterable[dict[str, Any]], stream: IO[str]) -> None:
        out = csv.writer(stream, lineterminator="\n")
        out.writerow(COLUMNS)
        for case in data:
            out.writerows(_rows(case))
