"""The run's accounts: every finished case's row, counts by status, violations, throttling
and warnings — what metrics.csv and the summary are made of at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from doerunner.backends import BACKENDS
from doerunner.campaign.rows import recordable, unrecordable
from doerunner.campaign.stability import Stability
from doerunner.columns import ColumnStats, family_of
from doerunner.inputs.case import Case
from doerunner.listing import listed
from doerunner.results import FAIL, OK, TIMEOUT, CaseResult
from doerunner.telemetry.throttle import ADVICE, COLUMNS

# Column families srd's telemetry adds to an execution's metrics (columns.family_of): not
# something a case's output said.
_ADDED_BY_SRD = frozenset({"energy", "gpu", "thermal", "env", "host"})


class Ledger:
    """Rows of ``n`` cases, accounted as they finish (in any order), kept in case order."""

    def __init__(self, n: int) -> None:
        # Finished rows, packed as (column names, values): the names tuple is shared by rows
        # of the same layout, so 100k rows cost ~40 MB and metrics.csv needs no second read.
        self.rows: list[tuple[tuple[str, ...], tuple[Any, ...]] | None] = [None] * n
        self._layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.stats = ColumnStats()
        self.counts: dict[str, int] = {OK: 0, FAIL: 0, TIMEOUT: 0}
        self.violated_ids: list[str] = []
        self.throttled: dict[str, list[str]] = {cause: [] for cause in COLUMNS}
        self.warnings: list[str] = []
        self.no_metric_ids: list[str] = []  # OK cases whose output gave no metric
        self.reported_metrics = False  # whether an OK case's output gave one
        self.stability = Stability()
        self.repeated: set[str] = set()  # OK cases measured more than once
        self.output_warnings: dict[str, list[str]] = {}  # an execution warning -> its cases

    def record(self, i: int, case: Case, result: CaseResult,
               journal: Callable[[CaseResult], int]) -> tuple[int, CaseResult, dict[str, Any]]:
        """Journal case ``i``'s finished result (``journal`` writes it, returning its offset)
        and take it into account: ``(offset, result, row)``. A result that cannot be
        recorded — made storable, built into a row, or encoded by the journal — is recorded
        as the FAIL result that says why (``rows.unrecordable``): one case fails, never the
        run. ``OSError`` from ``journal`` (the disk) propagates."""
        result, row = recordable(case, result)
        try:
            offset = journal(result)
        except OSError:
            raise
        except Exception as e:  # a value the journal cannot encode: this case fails
            result = unrecordable(case, result, e)
            result, row = recordable(case, result)
            offset = journal(result)
        self._take(i, case, result, row)
        return offset, result, row

    def account(self, i: int, case: Case, result: CaseResult) -> dict[str, Any]:
        """Take case ``i``'s result (already journaled) into account; its row (typed
        values). A result that cannot be made a row is accounted as the FAIL result that
        says why."""
        result, row = recordable(case, result)
        self._take(i, case, result, row)
        return row

    def _take(self, i: int, case: Case, result: CaseResult, row: dict[str, Any]) -> None:
        self.stats.add(row)
        keys = tuple(row)
        self.rows[i] = (self._layouts.setdefault(keys, keys), tuple(row.values()))
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if row["violations"]:
            self.violated_ids.append(case.case_id)
        for cause, column in COLUMNS.items():
            pct = row.get(column)
            if isinstance(pct, (int, float)) and pct > 0:
                self.throttled[cause].append(f"{case.case_id} ({pct:.0f}% of the window)")
        for w in result.warnings:
            self.warnings.append(f"{case.case_id}: {w}")
        if result.status == OK:
            self._output_warnings(case, result)
        if result.status == OK and len(result.runs) > 1:
            self.repeated.add(case.case_id)
            self.stability.add(case.case_id, [r.wall_s for r in result.runs])

    def _output_warnings(self, case: Case, result: CaseResult) -> None:
        """What the output of an OK case left empty: its executions' warnings (once each,
        with how many repetitions had it) and, for a backend that parses output, no metric
        at all."""
        runs = result.runs
        seen: dict[str, int] = {}
        for run in runs:
            for w in run.warnings:
                seen[w] = seen.get(w, 0) + 1
        for w, k in seen.items():  # grouped by warning: one line for many cases
            self.output_warnings.setdefault(w, []).append(
                case.case_id + (f" ({k} of {len(runs)} repetitions)" if len(runs) > 1 else ""))
        backend = BACKENDS.get(case.backend)
        if backend is not None and backend.PARSES_OUTPUT:
            if any(v is not None and family_of(k) not in _ADDED_BY_SRD
                   for run in runs for k, v in run.metrics.items()):
                self.reported_metrics = True
            else:
                self.no_metric_ids.append(case.case_id)

    def finished_rows(self) -> Iterator[dict[str, Any]]:
        """The rows of the finished cases, in case order (rebuilt one at a time)."""
        return (dict(zip(*packed, strict=True)) for packed in self.rows if packed is not None)

    def end_warnings(self) -> list[str]:
        """The warnings of the run, with one about throttled cases when there were any."""
        out = list(self.warnings)
        for cause, cases in self.throttled.items():
            if cases:
                what, advice = ADVICE[cause]
                out.append(f"{what} in {len(cases)} case(s): {listed(cases)}; {advice}")
        for w, cases in self.output_warnings.items():
            out.append(f"{w}, in {len(cases)} case(s): {listed(cases)}")
        ids = self.no_metric_ids
        # Only beside cases that did report metrics: a run of commands timed for their run
        # time alone (srd run -r 10 -- 'sleep 0.1', as hyperfine) has nothing to warn about.
        if ids and self.reported_metrics:
            out.append(f"no metric parsed from the output of {len(ids)} case(s): "
                       f"{listed(ids)} (only run_seconds); print key=value or JSON lines, or "
                       "extract with metric_<name> columns (FORMAT.md §3)")
        return out + self.stability.warnings()

    def exit_code(self, interrupted: bool) -> int:
        """130 interrupted, 3 a case failed, 2 a threshold violated, else 0 (FORMAT.md §1)."""
        if interrupted:
            return 130
        if self.counts.get(FAIL, 0) + self.counts.get(TIMEOUT, 0):
            return 3
        return 2 if self.violated_ids else 0
