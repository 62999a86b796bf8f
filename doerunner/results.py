"""What a run produced, in SI units (seconds, epoch timestamps). Nothing here formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK = "OK"
FAIL = "FAIL"
TIMEOUT = "TIMEOUT"
STATUSES = (OK, FAIL, TIMEOUT)

Metric = float | int | str  # numbers; str only for ext_* keys


@dataclass(slots=True)
class Execution:
    """One execution of a case by a backend (a warm-up or a measured repetition).

    ``wall_s`` is the wall time of the execution in seconds (for TIMEOUT: the time until the
    timeout fired). ``t_start``/``t_end`` are epoch seconds. ``metrics`` holds what the
    backend measured or parsed: numbers in SI units, strings only for ``ext_*`` keys.
    ``warnings``: what the backend found wrong in an execution that still counts (a
    ``metric_*`` pattern that matched nothing).
    """

    status: str
    wall_s: float
    t_start: float
    t_end: float
    exit_code: int | None = None
    message: str = ""
    metrics: dict[str, Metric] = field(default_factory=dict)
    telemetry: dict[str, Any] | None = None  # run.json only: the measurement windows
    warnings: tuple[str, ...] = ()
    # What the backend measured of its process tree (FORMAT.md §3, host columns): the runner
    # adds it to ``metrics`` under what the backend reported; never serialised itself.
    host: dict[str, float] | None = None
    host_series: list[dict[str, Any]] | None = None  # the time-series files only

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"status": self.status, "wall_s": self.wall_s,
                             "t_start": self.t_start, "t_end": self.t_end}
        if self.exit_code is not None:
            d["exit_code"] = self.exit_code
        if self.message:
            d["message"] = self.message
        if self.metrics:
            d["metrics"] = self.metrics
        if self.telemetry:
            d["telemetry"] = self.telemetry
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Execution:
        return cls(d["status"], d["wall_s"], d["t_start"], d["t_end"], d.get("exit_code"),
                   d.get("message", ""), d.get("metrics", {}), d.get("telemetry"),
                   tuple(d.get("warnings", ())))


@dataclass(slots=True)
class CaseResult:
    """The outcome of one case: its measured executions and their aggregate.

    ``metrics`` is the aggregate that becomes the row's measured columns (means over the
    measured runs, ``run_seconds`` and its spread, warm-up figures). ``runs`` keeps every
    measured execution for run.json. ``t_start``/``t_end`` are epoch seconds of the
    whole case (warm-up included).
    """

    case_id: str
    status: str
    t_start: float
    t_end: float
    exit_code: int | None = None
    message: str = ""
    metrics: dict[str, Metric] = field(default_factory=dict)
    runs: list[Execution] = field(default_factory=list)
    warmup_runs: list[Execution] = field(default_factory=list)
    attempts: int = 1
    fingerprint: str = ""
    warnings: list[str] = field(default_factory=list)
    definition: dict[str, Any] | None = None  # the case as it ran (backend, cmd, params...)
    series: list[Any] | None = None  # telemetry samples, for the time-series files only
    host_series: list[dict[str, Any]] | None = None  # the process tree's, the same

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "case_id": self.case_id, "fingerprint": self.fingerprint, "status": self.status,
            "t_start": self.t_start, "t_end": self.t_end,
        }
        if self.definition is not None:
            d["definition"] = self.definition
        if self.exit_code is not None:
            d["exit_code"] = self.exit_code
        if self.message:
            d["message"] = self.message
        if self.attempts != 1:
            d["attempts"] = self.attempts
        d["metrics"] = self.metrics
        d["runs"] = [r.to_json() for r in self.runs]
        if self.warmup_runs:
            d["warmup"] = [r.to_json() for r in self.warmup_runs]
        if self.warnings:
            d["warnings"] = self.warnings
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CaseResult:
        return cls(
            d["case_id"], d["status"], d["t_start"], d["t_end"], d.get("exit_code"),
            d.get("message", ""), d.get("metrics", {}),
            [Execution.from_json(r) for r in d.get("runs", ())],
            [Execution.from_json(r) for r in d.get("warmup", ())],
            d.get("attempts", 1), d.get("fingerprint", ""), d.get("warnings", []),
            d.get("definition"),
        )


@dataclass
class RunSummary:
    """What a run did. ``exit_code`` follows FORMAT.md §1 (0, 2, 3, 130); ``elapsed_s`` is
    the run's wall time in seconds."""

    run_id: str
    out: Path
    run_dir: Path
    total: int
    finished: int
    counts: dict[str, int]
    violated: int
    violated_ids: list[str]
    resumed: int
    not_run: int
    interrupted: bool
    elapsed_s: float
    exit_code: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        """The ``summary`` of run.json."""
        return {"total": self.total, "finished": self.finished, "counts": self.counts,
                "violated": self.violated, "resumed": self.resumed, "not_run": self.not_run,
                "interrupted": self.interrupted, "exit_code": self.exit_code,
                "elapsed_s": self.elapsed_s}
