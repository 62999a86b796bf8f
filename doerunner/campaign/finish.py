"""A run's outputs (FORMAT.md §3, §4): the per-case time series as cases finish; at the end
metrics.csv, run.json, repetitions.csv and timeseries.csv (atomically, from the accounts and
the journal), and the JUnit report. Every file goes through the output writer (``outputs.base``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from doerunner import __version__
from doerunner.campaign.journal import case_json, iter_lines
from doerunner.campaign.ledger import Ledger
from doerunner.campaign.options import RunOptions
from doerunner.campaign.plan import ExecutionPlan
from doerunner.errors import OutputError, output_error
from doerunner.inputs.case import Case
from doerunner.outputs.base import write_output, write_to
from doerunner.outputs.metrics_csv import ENCODING_ERRORS, MetricsCsv, MetricsTable, format_rows
from doerunner.outputs.repetitions import FILE_NAME as REPETITIONS_FILE
from doerunner.outputs.repetitions import RepetitionsCsv
from doerunner.outputs.run_json import RunDocument, RunJson
from doerunner.results import RunSummary
from doerunner.telemetry.environment import host_environment


def write_case_timeseries(run_dir: Path, case_id: str, series: list[Any],
                          sample_hz: float, host: list[dict[str, Any]] | None = None) -> Path:
    """Write ``timeseries/<case_id>.json`` (the GPU ``series`` and the process tree's
    ``host`` samples); its path. ``OutputError`` when it cannot be written."""
    from doerunner.outputs.timeseries import CaseTimeseries, case_document
    from doerunner.telemetry.throttle import THROTTLE_MASK

    path = run_dir / "timeseries" / f"{case_id}.json"
    doc = case_document(case_id, series, sample_hz, THROTTLE_MASK, host)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(f"cannot write {path}", e) from None
    write_output(CaseTimeseries(), doc, path, f"cannot write {path}", own=True)
    return path


def telemetry_info(plan: ExecutionPlan) -> dict[str, Any]:
    """run.json's ``telemetry`` when this process measured nothing: its mode (``off`` for a
    remote executor, whose workers measure: ``workers_mode`` says in which mode)."""
    if plan.mode == "remote":
        return {"mode": "off", "active": False, "workers_mode": plan.telemetry}
    info: dict[str, Any] = {"mode": plan.telemetry, "active": False}
    if plan.unavailable:
        info["unavailable"] = plan.unavailable
    return info


def write_outputs(opts: RunOptions, plan: ExecutionPlan, ledger: Ledger, summary: RunSummary,
                  done: Sequence[tuple[Case, int]], journal_path: Path, cases_file: str | None,
                  t0: float, telemetry: dict[str, Any]) -> None:
    """metrics.csv, run.json, repetitions.csv and timeseries.csv. ``done``: the finished
    cases with their journal offsets, in case order. Raises ``OutputError`` (the journal
    is kept: ``--resume`` writes them again)."""
    out = opts.output
    try:
        # repetitions.csv first: metrics.csv beside an older one would be compared with
        # another run's repetitions (srd compare checks that they agree, too)
        repeated = [o for c, o in done if c.case_id in ledger.repeated]
        write_to(RepetitionsCsv(), (orjson.loads(case_json(line))
                                    for line in iter_lines(journal_path, repeated)),
                 summary.run_dir / REPETITIONS_FILE, own=True)
        write_to(MetricsCsv(), MetricsTable(ledger.finished_rows(), ledger.stats, out.zone,
                                            out.csv_safe), out.out, errors=ENCODING_ERRORS)
        write_to(RunJson(), _run_document(opts, plan, summary, done, journal_path,
                                          cases_file, t0, telemetry),
                 summary.run_dir / "run.json", own=True)
        _write_timeseries_csv(opts, summary.run_dir, [c for c, _ in done])
    except OSError as e:
        raise output_error("cannot write the outputs", e, f"; the journal {journal_path} is "
                           "kept: run again with --resume") from None


def write_junit(opts: RunOptions, ledger: Ledger, title: str,
                wall_s: float | None = None) -> OutputError | None:
    """The JUnit report (``--junit``) of the finished rows, as their metrics.csv cells, with
    the run's wall time ``wall_s`` (seconds; run.json's ``summary.elapsed_s``); the error
    when it cannot be written (raised once the run is recorded)."""
    out = opts.output
    if out.junit is None:
        return None
    from doerunner.outputs.junit import Junit, JunitSuite

    header = ledger.stats.columns()
    rows = (dict(zip(header, cells, strict=True))
            for cells in format_rows(ledger.finished_rows(), ledger.stats, out.zone,
                                     csv_safe=out.csv_safe))
    name = f"srd {title}" if title else "srd"
    try:
        write_output(Junit(), JunitSuite(rows, name, out.run_directory / "logs",
                                         wall_s=wall_s,
                                         params_in_name=out.junit_names == "params"),
                     out.junit, f"--junit {out.junit}")
    except OutputError as e:
        return e
    return None


def _run_document(opts: RunOptions, plan: ExecutionPlan, summary: RunSummary,
                  done: Sequence[tuple[Case, int]], journal_path: Path,
                  cases_file: str | None, t0: float,
                  telemetry: dict[str, Any]) -> RunDocument:
    tz = opts.output.zone

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")

    head = {
        "srd_version": __version__, "run_id": summary.run_id, "started": iso(t0),
        "ended": iso(time.time()), "command_line": list(opts.command_line),
        "cwd": os.getcwd(), "cases_file": cases_file, "out": str(opts.output.out),
        # The telemetry mode the plan put in force (off for cases side by side, on for
        # --per-gpu), as run.json has always recorded it; the plan says why.
        "options": opts.replace(telemetry=opts.telemetry.with_mode(plan.telemetry)).to_json(),
        "plan": plan.to_json(), "environment": host_environment(),
        "summary": summary.to_json(), "warnings": summary.warnings, "telemetry": telemetry,
        "host": _host_info(plan),
    }
    lines = iter_lines(journal_path, [o for _, o in done])
    return RunDocument(head, (case_json(line) for line in lines))


def _host_info(plan: ExecutionPlan) -> dict[str, Any]:
    """run.json's ``host``: the RAPL zones read (or why none), when this process measured the
    host."""
    from doerunner.telemetry.host import host_meter, measures_host

    if not measures_host(plan.mode, plan.telemetry, len(plan.slots)):
        return {"measured": False}
    return host_meter().info()


def _write_timeseries_csv(opts: RunOptions, run_dir: Path, cases: Sequence[Case]) -> None:
    """``timeseries.csv``: every sample of every finished case with a time series, in case
    order (also those taken from the journal on --resume)."""
    folder = run_dir / "timeseries"
    if not opts.telemetry.timeseries or not folder.is_dir():
        return
    from doerunner.outputs.timeseries import SampleTable, TimeseriesCsv, read_case

    paths = [folder / f"{c.case_id}.json" for c in cases]
    paths = [p for p in paths if p.exists()]
    if paths:
        write_to(TimeseriesCsv(), SampleTable((read_case(p) for p in paths), opts.output.zone),
                 run_dir / "timeseries.csv", own=True)
