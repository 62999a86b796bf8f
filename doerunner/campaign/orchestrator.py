"""A run: every case of a cases file → journal, metrics.csv, run.json (``doerunner.run``).

The orchestrator only sequences the parts: options (``campaign.options``), the execution
plan (``campaign.plan``), the run directory (``campaign.rundir``), resume
(``campaign.resume``), the executor (``executors``), the accounts (``campaign.ledger``), the
outputs (``campaign.finish``) and the run history. Each finished case is journaled at once;
metrics.csv and run.json are produced at the end from the accounts and the journal (also
when the run is interrupted), so they never disagree with it and ``--resume`` rebuilds the
same file. Memory stays O(cases).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from doerunner.campaign import finish, rundir
from doerunner.campaign.journal import Journal
from doerunner.campaign.ledger import Ledger
from doerunner.campaign.options import RunOptions
from doerunner.campaign.plan import Draft, ExecutionPlan, GpuRef, draft_plan, make_plan
from doerunner.campaign.progress import Reporter, default_reporter
from doerunner.campaign.resume import prepare_journal
from doerunner.campaign.signals import EXIT_STOPPED, graceful_stop
from doerunner.campaign.worst import worst_cases
from doerunner.errors import output_error
from doerunner.executors import EXECUTORS
from doerunner.executors.base import Finished, RunContext, drive
from doerunner.inputs.case import Case
from doerunner.inputs.sources import KEPT_NAME
from doerunner.inputs.sources import load as load_cases
from doerunner.process import tree as proctree
from doerunner.process.capture import remove_file, write_file
from doerunner.results import FAIL, OK, TIMEOUT, CaseResult, RunSummary
from doerunner.telemetry.gpu import Gpus, discover

__all__ = ["RunOptions", "RunSummary", "run"]


def run(cases: str | os.PathLike[str] | Sequence[Case], options: RunOptions | None = None,
        reporter: Reporter | None = None, cases_file: str | None = None,
        kept_cases: str | None = None, title: str | None = None,
        **overrides: Any) -> RunSummary:
    """Run every case and write metrics.csv, the journal and run.json.

    ``cases`` is a path to a cases.csv or a design .yaml, or already-read cases (then
    ``cases_file`` names their file for run.json; ``kept_cases``, the text of the cases.csv
    they were generated as, is kept as ``<run dir>/cases.csv`` and names it; ``title``:
    what the JUnit suite and the CI job summary call the run, by default the file's name).
    Keyword
    ``overrides`` set options by their flat names (``run("cases.csv", out="m.csv",
    tz="UTC")``, see ``RunOptions.build``). Raises
    ``InputError``/``OutputError`` (exit 4) before anything runs when the input or an output
    location is bad; returns a ``RunSummary`` otherwise, also when interrupted.
    """
    opts = (options or RunOptions()).replace(**overrides)
    reporter = reporter or default_reporter(opts.quiet, opts.policy.show_output)
    if isinstance(cases, (str, os.PathLike)):
        notices: list[str] = []
        try:
            loaded = load_cases(os.fspath(cases), (), (), (), opts.defaults, notices)
        finally:
            for note in notices:
                reporter.warn(note)
        cases, cases_file, kept_cases = loaded.cases, loaded.file, loaded.kept
        title = title or loaded.title
    cases = list(cases)
    draft = _draft(opts, cases)
    for note in draft.notes:
        reporter.warn(note)
    run_dir = opts.output.run_directory
    if kept_cases is not None:
        rundir.check_kept_cases(run_dir)
        cases_file = str(run_dir / KEPT_NAME)
    rundir.preflight(opts.output, cases_file)
    with rundir.locked(run_dir), _planned(draft, opts) as (plan, gpus), \
            _monitoring(opts, plan, gpus, run_dir, reporter) as monitor:
        if kept_cases is not None:
            rundir.keep_cases(run_dir, kept_cases)
        for note in plan.notes:
            if note not in draft.notes:
                reporter.warn(note)
        # The cases live for the whole run: keep the cyclic GC from scanning them over
        # and over (it cost ~15% of a 100k-case dummy run).
        gc.freeze()
        try:
            return _Campaign(cases, cases_file, opts, plan, reporter, monitor,
                             title or (Path(cases_file).name if cases_file else "")).execute()
        finally:
            gc.unfreeze()


def plan_for(opts: RunOptions, cases: Sequence[Case]) -> ExecutionPlan:
    """The execution plan of a run (``--dry-run``): GPUs opened and closed again."""
    with _planned(_draft(opts, cases), opts) as (plan, _):
        return plan


def _draft(opts: RunOptions, cases: Sequence[Case]) -> Draft:
    """The plan's draft: every combination that cannot run refused before anything is
    touched (also an executor that cannot run here)."""
    executor = EXECUTORS[opts.parallel.executor]
    draft = draft_plan(opts, cases, executor)
    executor.check_available()
    return draft


@contextlib.contextmanager
def _planned(draft: Draft, opts: RunOptions) -> Iterator[tuple[ExecutionPlan, Gpus | None]]:
    """The plan, and the GPUs it opened (closed on the way out unless a monitor took
    them)."""
    opened: list[Gpus] = []

    def find_gpus(mode: str) -> tuple[list[GpuRef], str | None]:
        gpus, why = discover(mode, opts.telemetry.gpus)
        if gpus is None:
            return [], why
        opened.append(gpus)
        return [GpuRef(p, d.info.index, d.info.uuid, d.info.name, d.info.token,
                       d.info.mig_instance) for p, d in enumerate(gpus.devices)], None

    try:
        plan = make_plan(draft, find_gpus)
        found = [n for g in opened for n in g.notes]
        if found:
            plan = dataclasses.replace(plan, notes=(*plan.notes, *found))
        yield plan, (opened[0] if opened and plan.active else None)
    finally:
        for g in opened:
            g.close()  # idempotent: a monitor that took them closed them already


@contextlib.contextmanager
def _monitoring(opts: RunOptions, plan: ExecutionPlan, gpus: Gpus | None, run_dir: Path,
                reporter: Reporter) -> Iterator[Any]:
    """Clean up after an earlier srd killed in this run directory, then start GPU
    telemetry (the baseline may be measured now) when this process measures."""
    stray = rundir.kill_leftovers(run_dir)
    if stray:
        reporter.warn(f"killed {len(stray)} process(es) left running by an earlier srd "
                      f"in {run_dir} (pids {', '.join(map(str, stray))})")
    if plan.unavailable:
        reporter.info(f"GPU telemetry off: {plan.unavailable}")
    from doerunner.telemetry.host import host_meter, measures_host

    if measures_host(plan.mode, plan.telemetry, len(plan.slots)) and host_meter().rapl_refused:
        reporter.info(f"CPU and DRAM energy off: {host_meter().rapl_note}")
    if gpus is None:
        yield None
        return
    from doerunner.telemetry.monitor import Monitor

    monitor = Monitor(opts.telemetry.with_mode(plan.telemetry), gpus)
    try:
        monitor.start()
        reporter.info(monitor.baseline_status())
        yield monitor
    finally:
        monitor.close()


class _Campaign:
    def __init__(self, cases: list[Case], cases_file: str | None, opts: RunOptions,
                 plan: ExecutionPlan, reporter: Reporter, monitor: Any, title: str) -> None:
        self.cases, self.cases_file, self.opts, self.plan = cases, cases_file, opts, plan
        self.title = title
        self.reporter, self.monitor = reporter, monitor
        self.run_dir = opts.output.run_directory
        self.journal_path = self.run_dir / "journal.jsonl"
        self.offsets: list[int | None] = [None] * len(cases)
        self.ledger = Ledger(len(cases))
        self.cancel = threading.Event()
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()
        self.t0 = time.time()
        self.journal: Journal | None = None

    def execute(self) -> RunSummary:
        self._register(None)
        resumed = prepare_journal(self.journal_path, self.cases, self.opts.resume,
                                  self.opts.retry_failed)
        for i, offset, result in resumed.finished:
            self.offsets[i] = offset
            self.ledger.account(i, self.cases[i], result)
        for note in resumed.notes:
            self.reporter.info(note)
        for warning in resumed.warnings:
            self.reporter.warn(warning)
        rundir.clear_logs(self.run_dir, self.cases)
        self.reporter.start(len(self.cases), len(resumed.finished), self.run_dir / "logs")
        executor = EXECUTORS[self.plan.executor](RunContext(
            self.plan, self.opts.policy, self.opts.telemetry, self.run_dir / "logs",
            {proctree.RUN_DIR_VAR: str(self.run_dir.resolve())}, self.cancel, self.monitor,
            self.reporter, f"{self.run_id}-{os.getpid()}"))
        todo = [i for i, o in enumerate(self.offsets) if o is None]
        try:
            journal = Journal(self.journal_path, truncate_to=resumed.truncate_to)
        except OSError as e:
            raise output_error(f"cannot write the journal {self.journal_path}", e) from None
        run_dir = str(self.run_dir.resolve())
        # A stop signal is handled until srd's outputs are written (campaign.signals).
        with graceful_stop(self.cancel, self.reporter.warn, self.opts.handle_signals) as stop:
            with journal:
                self.journal = journal
                executor.open()
                try:
                    drive(executor, todo, self.cases, self._commit, self.cancel)
                except OSError as e:
                    # A log that could not be written: the backends write each case's logs
                    # in the thread that ran it, once its processes are gone (no writer
                    # thread: one woken per case cost more CPU in thread switches than the
                    # writes, and made srd wait on itself when other work shared the CPUs).
                    raise output_error("cannot write a log", e,
                                       f": {e.filename}" if e.filename else "") from None
                finally:
                    executor.close()
                    proctree.sweep(run_dir, self.opts.policy.kill_grace_s)
            stop.finishing = True
            summary = self._finish(len(resumed.finished))
        if stop.signum is not None and not summary.interrupted:
            # Stopped while the outputs were written: they are whole; the exit code says
            # that srd was stopped (FORMAT.md §1).
            summary = dataclasses.replace(summary, interrupted=True, exit_code=EXIT_STOPPED)
            self._register(summary)
            self.reporter.warn(f"{stop.name}: the outputs are written; exit code "
                               f"{EXIT_STOPPED}")
        return summary

    def _commit(self, i: int, finished: Finished) -> bool:
        """Journal a finished case and account for it; False to stop (--fail-fast)."""
        case, result = self.cases[i], finished.result
        if finished.logs is not None:  # captured elsewhere (a remote worker)
            logs = self.run_dir / "logs"
            for stream in ("stdout", "stderr"):
                path = logs / f"{case.case_id}.{stream}"
                if stream in finished.logs:
                    write_file(path, finished.logs[stream])
                else:
                    remove_file(path)
        self._telemetry_outputs(case, result, finished.telemetry)
        journal = self.journal
        assert journal is not None
        try:  # a result that cannot be recorded is recorded as a FAIL saying why
            self.offsets[i], result, row = self.ledger.record(
                i, case, result, lambda r: journal.append(r, self.run_id))
        except OSError as e:
            raise output_error(f"cannot write the journal {self.journal_path}", e) from None
        self.reporter.case_end(case, result, row["violations"])
        if i % 4096 == 4095:
            gc.freeze()  # finished rows stay till the end: stop rescanning them
        return not (self.opts.fail_fast and result.status != OK)

    def _telemetry_outputs(self, case: Case, result: CaseResult,
                           telemetry: tuple[dict[str, Any], float] | None) -> None:
        """Environment columns, and the case's time series written before it is journaled
        (the journal line is what commits a case). ``telemetry``: the environment columns
        and sampling rate of the process that measured the case, when not this one."""
        if telemetry is None:
            if self.monitor is None:
                return
            telemetry = (self.monitor.env, self.monitor.opts.sample_hz)
        env, sample_hz = telemetry
        result.metrics.update(env)
        if result.series:
            path = finish.write_case_timeseries(self.run_dir, case.case_id, result.series,
                                                sample_hz, result.host_series)
            result.metrics["timeseries_path"] = os.path.relpath(
                path, self.opts.output.out.parent or ".")

    def _register(self, summary: RunSummary | None) -> None:
        """Record the run in the history database (best effort: a warning on failure)."""
        from doerunner.history import RunRecord, register

        c = summary.counts if summary else {}
        out = self.opts.output
        err = register(RunRecord(
            self.run_id, out.project, self.t0, time.time() if summary else None,
            str(Path(self.cases_file).resolve()) if self.cases_file else None,
            str(out.out.resolve()), str(self.run_dir.resolve()), len(self.cases),
            c.get(OK, 0), c.get(FAIL, 0), c.get(TIMEOUT, 0),
            summary.violated if summary else 0, summary.exit_code if summary else None,
            list(self.opts.command_line)))
        if err and summary is None:
            self.reporter.warn(f"run history not recorded: {err}")

    def _finish(self, resumed: int) -> RunSummary:
        ledger = self.ledger
        interrupted = self.cancel.is_set()
        finished = sum(o is not None for o in self.offsets)
        warnings = ledger.end_warnings()
        summary = RunSummary(
            self.run_id, self.opts.output.out, self.run_dir, len(self.cases), finished,
            dict(ledger.counts), len(ledger.violated_ids), ledger.violated_ids, resumed,
            len(self.cases) - finished, interrupted, time.time() - self.t0,
            ledger.exit_code(interrupted), warnings)
        done = [(c, o) for c, o in zip(self.cases, self.offsets, strict=True) if o is not None]
        telemetry = (self.monitor.info if self.monitor is not None
                     else finish.telemetry_info(self.plan))
        finish.write_outputs(self.opts, self.plan, ledger, summary, done, self.journal_path,
                             self.cases_file, self.t0, telemetry)
        junit_error = finish.write_junit(self.opts, ledger, self.title, summary.elapsed_s)
        for w in warnings:
            self.reporter.warn(w)
        self._register(summary)
        self.reporter.finish(summary, worst_cases(ledger.finished_rows()))
        from doerunner.outputs.step_summary import append_run

        append_run(summary, self.title, self.reporter.warn,
                   junit_error.exit_code if junit_error is not None else None)
        if junit_error is not None:
            raise junit_error
        return summary
