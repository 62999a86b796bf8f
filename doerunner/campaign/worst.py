"""The cases the end-of-run summary points at: those that ended FAIL or TIMEOUT, then those
that violated a threshold, then the slowest OK cases — each with its parameters. Picked
from the accounts' rows (cases taken from the journal by ``--resume`` included); nothing
here formats."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from doerunner.results import OK

SHOWN = 5  # at most this many failed, and this many violating, cases are named
SLOWEST = 3  # the slowest OK cases named, when the run has more OK cases than this


@dataclass(frozen=True, slots=True)
class Notable:
    """One case the summary names: ``run_seconds`` in seconds (None when unknown)."""

    case_id: str
    params: Mapping[str, str]
    status: str
    run_seconds: float | None
    message: str
    violations: str


@dataclass(frozen=True, slots=True)
class WorstCases:
    """``failed`` (FAIL and TIMEOUT, in case order, at most ``SHOWN`` of ``failed_total``),
    ``violated`` (OK cases with a violated threshold, the same), ``slowest`` (the ``SLOWEST``
    longest OK cases by ``run_seconds``, slowest first; none when every OK case would be
    named)."""

    failed: tuple[Notable, ...] = ()
    failed_total: int = 0
    violated: tuple[Notable, ...] = ()
    violated_total: int = 0
    slowest: tuple[Notable, ...] = ()


def worst_cases(rows: Iterable[Mapping[str, Any]]) -> WorstCases:
    """The worst of the finished ``rows`` (typed metrics.csv rows, in case order)."""
    failed: list[Notable] = []
    violated: list[Notable] = []
    n_failed = n_violated = n_ok = 0
    timed: list[tuple[float, int, Mapping[str, Any]]] = []  # a heap of the slowest OK rows
    for i, row in enumerate(rows):
        status = row["status"]
        if status != OK:
            n_failed += 1
            if len(failed) < SHOWN:
                failed.append(_notable(row))
            continue
        n_ok += 1
        if row.get("violations"):
            n_violated += 1
            if len(violated) < SHOWN:
                violated.append(_notable(row))
        secs = _seconds(row)
        if secs is None:
            continue
        if len(timed) < SLOWEST:
            heapq.heappush(timed, (secs, -i, row))  # ties: the earlier case first
        elif secs > timed[0][0]:
            heapq.heapreplace(timed, (secs, -i, row))
    slowest: tuple[Notable, ...] = ()
    if n_ok > SLOWEST:
        slowest = tuple(_notable(r) for *_, r in sorted(timed, key=lambda t: t[:2],
                                                        reverse=True))
    return WorstCases(tuple(failed), n_failed, tuple(violated), n_violated, slowest)


def _seconds(row: Mapping[str, Any]) -> float | None:
    secs = row.get("run_seconds")
    if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not math.isfinite(secs):
        return None
    return float(secs)


def _notable(row: Mapping[str, Any]) -> Notable:
    params = {k[6:]: str(v) for k, v in row.items() if k.startswith("param_")}
    return Notable(str(row["case_id"]), params, str(row["status"]), _seconds(row),
                   str(row.get("message") or ""), str(row.get("violations") or ""))
