"""A run: every case of a cases file, in order → journal, metrics.csv, run.json.

``run()`` is the Python API behind ``srd run``. Each finished case is journaled at once;
metrics.csv and run.json are produced from the journal at the end (also when the run is
interrupted), so they never disagree with it and ``--resume`` rebuilds the same file.
Memory stays O(cases): rows are streamed from the journal, never all held at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from doerunner import __version__
from doerunner.backends import BACKENDS, Backend
from doerunner.campaign.journal import Journal, case_json, iter_lines, scan
from doerunner.campaign.progress import Reporter, default_reporter
from doerunner.campaign.rows import build_row
from doerunner.campaign.runner import RunnerSettings, run_with_retries
from doerunner.columns import ColumnStats, parse_tz
from doerunner.errors import CaseInterrupted, InputError, OutputError
from doerunner.inputs.cases import Case, read_cases
from doerunner.outputs.atomic import atomic_open, check_writable_dir
from doerunner.outputs.metrics_csv import write_metrics_csv
from doerunner.process.tree import RUN_DIR_VAR
from doerunner.results import FAIL, OK, TIMEOUT, CaseResult
from doerunner.telemetry.environment import host_environment
from doerunner.telemetry.gpu import THROTTLE_MASK
from doerunner.telemetry.monitor import Monitor, TelemetryOptions


@dataclass
class RunOptions:
    """Options of a run (the ``srd run`` flags). Times in seconds."""

    out: Path = Path("metrics.csv")
    run_dir: Path | None = None
    default_backend: str = "shell"
    default_timeout_s: float = 600.0
    tz: str = "JST"
    fail_fast: bool = False
    warmup_cv: float = 0.05
    warmup_max: int = 50
    log_cap_bytes: int = 10 * 1024 * 1024
    kill_grace_s: float = 2.0
    resume: bool = False
    retry_failed: bool = False
    retries: int = 0
    csv_safe: bool = False
    quiet: bool = False
    handle_signals: bool = True
    command_line: list[str] = field(default_factory=lambda: list(sys.argv))
    telemetry: TelemetryOptions = field(default_factory=TelemetryOptions)
    jobs: int = 1
    per_gpu: bool = False
    share_gpus: bool = False
    project: str | None = None
    executor: str = "local"  # "local" or "dask" (see executors/)
    scheduler: str | None = None  # Dask scheduler address; None: a LocalCluster of --jobs workers


@dataclass
class RunSummary:
    """What a run did. ``exit_code`` follows SPEC §1 (0, 2, 3, 130)."""

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


def default_run_dir(out: Path) -> Path:
    """``<out stem>_run/`` beside the output (SPEC §4)."""
    return out.with_name(f"{out.stem}_run")


def run(cases: str | os.PathLike[str] | Sequence[Case], options: RunOptions | None = None,
        reporter: Reporter | None = None, cases_file: str | None = None,
        **overrides: Any) -> RunSummary:
    """Run every case and write metrics.csv, the journal and run.json.

    ``cases`` is a path to a cases.csv or already-read cases (then ``cases_file`` names
    their file for run.json). Keyword ``overrides`` set
    fields of ``RunOptions`` (``run("cases.csv", out="m.csv", tz="UTC")``). Raises
    ``InputError``/``OutputError`` (exit 4) before anything runs when the input or an output
    location is bad; returns a ``RunSummary`` otherwise, also when interrupted.
    """
    # A copy: the run adjusts its options (telemetry off for --jobs...), never the caller's.
    opts = dataclasses.replace(options) if options else RunOptions()
    opts.telemetry = dataclasses.replace(opts.telemetry)
    for k, v in overrides.items():
        if not hasattr(opts, k):
            raise TypeError(f"unknown run option {k!r}")
        setattr(opts, k, v)
    opts.out = Path(opts.out)
    if isinstance(cases, (str, os.PathLike)):
        cases_file = str(cases)
        cases = read_cases(cases, default_backend=opts.default_backend,
                           default_timeout_s=opts.default_timeout_s)
    cases = list(cases)
    reporter = reporter or default_reporter(opts.quiet)
    client_telemetry = opts.telemetry
    if opts.executor == "local" and opts.scheduler is None:
        _check_jobs(opts, cases, reporter)
    else:
        _check_dask(opts, cases, reporter)
        # GPU telemetry happens on the workers; the client measures nothing.
        client_telemetry = dataclasses.replace(opts.telemetry, mode="off")
    try:
        tz = parse_tz(opts.tz)
    except ValueError as e:
        raise InputError(f"--tz: {e}") from None
    run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(opts.out)
    _preflight(opts.out, run_dir)
    with _locked(run_dir), _monitoring(client_telemetry, run_dir, reporter) as monitor:
        # The cases live for the whole run: keep the cyclic GC from scanning them over and
        # over (it cost ~15% of a 100k-case dummy run).
        gc.collect()
        gc.freeze()
        try:
            return _Campaign(cases, cases_file, opts, tz, run_dir, reporter, monitor).execute()
        finally:
            gc.unfreeze()


def _check_jobs(opts: RunOptions, cases: list[Case], reporter: Reporter) -> None:
    """Cases side by side: ``--per-gpu`` gives each its own GPU; ``--jobs`` > 1 is for
    backends that use no GPU and turns GPU telemetry off (a window would measure its
    neighbours' energy too) unless ``--share-gpus`` accepts that."""
    if opts.per_gpu:
        if opts.telemetry.mode == "off":
            raise InputError("--per-gpu needs GPU telemetry: drop --telemetry off")
        if opts.jobs > 1:
            raise InputError("--per-gpu runs one case per GPU: drop --jobs")
        opts.telemetry.mode = "on"  # no GPU found is then an error, not a silent serial run
        return
    if opts.jobs > 1:
        _side_by_side(opts, cases, reporter, f"--jobs {opts.jobs}", f"{opts.jobs} cases",
                      "use --per-gpu to give each case a GPU of its own, or --jobs 1",
                      "use --per-gpu, --share-gpus or --jobs 1")


def _side_by_side(opts: RunOptions, cases: list[Case], reporter: Reporter, what: str,
                  who: str, hf_hint: str, telemetry_hint: str) -> None:
    """Cases that run side by side share the GPUs: hf cases are refused and GPU telemetry is
    turned off (a window would measure its neighbours' energy too), unless ``--share-gpus``
    accepts that; ``--telemetry on`` is then an input error."""
    gpu_cases = [c for c in cases if c.backend == "hf"]
    if gpu_cases and not opts.share_gpus:
        raise InputError(f"{what}: hf cases (like {gpu_cases[0].case_id!r}) use a GPU; "
                         f"{hf_hint}")
    if opts.share_gpus:
        reporter.warn(f"--share-gpus: {who} share the GPUs; per-case GPU energy and power "
                      "include their neighbours' and are not comparable")
        return
    if opts.telemetry.mode == "on":
        raise InputError(f"{what} with --telemetry on: {who} side by side would share the "
                         f"GPUs' energy; {telemetry_hint}")
    opts.telemetry.mode = "off"


def local_cluster_workers(opts: RunOptions) -> int:
    """Workers of the LocalCluster ``--executor dask`` starts without ``--scheduler``."""
    return opts.jobs if opts.jobs > 1 else (os.cpu_count() or 1)


def _check_dask(opts: RunOptions, cases: list[Case], reporter: Reporter) -> None:
    """``--executor dask``: ``--jobs`` sizes the LocalCluster (no meaning with a remote
    scheduler, whose workers are what was started for it); ``--per-gpu`` is the local
    executor's (on a cluster, one worker per GPU declares ``--resources GPU=1``). On a
    LocalCluster the workers share this machine's GPUs, so the ``--jobs`` rules apply."""
    import importlib.util

    if opts.executor not in ("local", "dask"):
        raise InputError(f"--executor {opts.executor!r}: use local or dask")
    if opts.executor != "dask":
        raise InputError("--scheduler needs --executor dask")
    if importlib.util.find_spec("distributed") is None:
        raise InputError("--executor dask needs Dask distributed: pip install 'doerunner[dask]'")
    if opts.per_gpu:
        raise InputError("--per-gpu is for the local executor; with --executor dask start one "
                  "worker per GPU with --resources GPU=1 (README: Scaling out)")
    if opts.scheduler is not None:
        if opts.jobs > 1:
            raise InputError(f"--jobs {opts.jobs} sizes the LocalCluster of --executor dask; with "
                      "--scheduler the cluster's own workers run the cases: drop --jobs")
        return
    n = local_cluster_workers(opts)
    if n > 1:
        _side_by_side(opts, cases, reporter, "--executor dask",
                      f"the {n} workers of a LocalCluster",
                      "use --per-gpu with the local executor, or a cluster with one worker "
                      "per GPU", "use --per-gpu with the local executor")


@contextlib.contextmanager
def _monitoring(topts: TelemetryOptions, run_dir: Path, reporter: Reporter):  # type: ignore[no-untyped-def]
    """Clean up after an earlier srd killed in this run directory, then open GPU telemetry
    (``TelemetryError``, exit 4, with ``--telemetry on`` and no GPU) for the run."""
    from doerunner.process.tree import kill_leftovers

    stray = kill_leftovers(str(run_dir.resolve()))
    if stray:
        reporter.warn(f"killed {len(stray)} process(es) left running by an earlier srd "
                      f"in {run_dir} (pids {', '.join(map(str, stray))})")
    monitor = Monitor(topts)
    monitor.open()
    try:
        if monitor.unavailable:
            reporter.info(f"GPU telemetry off: {monitor.unavailable}")
        elif monitor.active:
            reporter.info(monitor.baseline_status())
        yield monitor
    finally:
        monitor.close()


@contextlib.contextmanager
def _locked(run_dir: Path):  # type: ignore[no-untyped-def]
    """Hold an exclusive lock on the run directory: two srd processes never share a journal."""
    import fcntl

    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"run directory {run_dir} is in use by another srd run; "
                              "give this run its own --out or --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _preflight(out: Path, run_dir: Path) -> None:
    """Fail before anything runs when an output cannot be written (exit 4)."""
    if out.is_dir():
        raise OutputError(f"--out {out}: is a directory")
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: directory {str(out.parent)!r} does not exist")
    try:
        check_writable_dir(out.parent)
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write in {str(out.parent)!r}: "
                          f"{e.strerror or e}") from None
    try:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        check_writable_dir(run_dir)
    except OSError as e:
        raise OutputError(f"run directory {run_dir}: {e.strerror or e}") from None


class _Campaign:
    def __init__(self, cases: list[Case], cases_file: str | None, opts: RunOptions, tz: Any,
                 run_dir: Path, reporter: Reporter, monitor: Monitor) -> None:
        self.cases, self.cases_file, self.opts, self.tz = cases, cases_file, opts, tz
        self.run_dir, self.reporter, self.monitor = run_dir, reporter, monitor
        self.journal_path = run_dir / "journal.jsonl"
        self.offsets: list[int | None] = [None] * len(cases)
        # Finished rows, packed as (column names, values): the names tuple is shared by rows
        # of the same layout, so 100k rows cost ~40 MB and metrics.csv needs no second read.
        self.rows: list[tuple[tuple[str, ...], tuple[Any, ...]] | None] = [None] * len(cases)
        self._layouts: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.stats = ColumnStats()
        self.counts: dict[str, int] = {OK: 0, FAIL: 0, TIMEOUT: 0}
        self.violated_ids: list[str] = []
        self.throttled: list[str] = []
        self.warnings: list[str] = []
        self.backends: dict[tuple[str, int], Backend] = {}
        self.cancel = threading.Event()
        self.interrupted = False
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()
        self.t0 = time.time()

    # -- the loop ---------------------------------------------------------------------------
    def _register(self, summary: RunSummary | None) -> None:
        """Record the run in the history database (best effort: a warning on failure)."""
        from doerunner.history import RunRecord, register

        c = summary.counts if summary else {}
        err = register(RunRecord(
            self.run_id, self.opts.project, self.t0, time.time() if summary else None,
            str(Path(self.cases_file).resolve()) if self.cases_file else None,
            str(self.opts.out.resolve()), str(self.run_dir.resolve()), len(self.cases),
            c.get(OK, 0), c.get(FAIL, 0), c.get(TIMEOUT, 0),
            summary.violated if summary else 0, summary.exit_code if summary else None,
            self.opts.command_line))
        if err and summary is None:
            self.reporter.warn(f"run history not recorded: {err}")

    def execute(self) -> RunSummary:
        self._register(None)
        truncate_to = self._prepare_journal()
        resumed = sum(o is not None for o in self.offsets)
        settings = RunnerSettings(self.run_dir / "logs", self.opts.warmup_cv,
                                  self.opts.warmup_max, self.opts.log_cap_bytes,
                                  self.opts.kill_grace_s, self.cancel, self.monitor,
                                  {RUN_DIR_VAR: str(self.run_dir.resolve())})
        self.reporter.start(len(self.cases), resumed)
        try:
            self._loop(settings, truncate_to)
        except OSError as e:  # a log the background writer could not write
            raise OutputError(f"cannot write a log: {e.strerror or e}"
                              + (f": {e.filename}" if e.filename else "")) from None
        if self.cancel.is_set():
            self.interrupted = True
        return self._finish(resumed)

    def _loop(self, settings: RunnerSettings, truncate_to: int | None) -> None:
        from doerunner.process import logwriter

        todo = [i for i, o in enumerate(self.offsets) if o is None]
        with self._signals(), Journal(self.journal_path, truncate_to=truncate_to) as journal, \
                logwriter.background():
            try:
                if self.opts.executor == "dask":
                    self._dask(todo, settings, journal)
                elif self.opts.jobs > 1 or (self.opts.per_gpu and self.monitor.active):
                    self._parallel(todo, settings, journal)
                else:  # one case at a time: the bar may show progress inside it
                    self._serial(todo, dataclasses.replace(
                        settings, progress=self.reporter.case_progress), journal)
            finally:
                for b in self.backends.values():
                    with contextlib.suppress(Exception):
                        b.close()

    def _serial(self, todo: list[int], settings: RunnerSettings, journal: Journal) -> None:
        for i in todo:
            if self.cancel.is_set():
                return
            case = self.cases[i]
            if self.monitor.active:
                self.monitor.cooldown(self.cancel)
            self.reporter.case_start(case)
            result = self._run_with_retries(case, settings)
            if result is None:
                return
            if not self._commit(i, result, journal):
                return

    def _parallel(self, todo: list[int], settings: RunnerSettings, journal: Journal) -> None:
        """Several cases at once, each in a thread of its own (the work is in child
        processes) with a slot of its own: backend instances per slot and, with
        ``--per-gpu``, one GPU per slot (``CUDA_VISIBLE_DEVICES`` and the telemetry window
        of that GPU only). Results are journaled here as they finish; rows keep the input
        order."""
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        per_gpu = self.opts.per_gpu and self.monitor.active
        slots = len(self.monitor.gpus.devices) if per_gpu else self.opts.jobs  # type: ignore[union-attr]
        free = list(range(slots))
        pending = iter(todo)
        running: dict[Future[CaseResult | None], tuple[int, int]] = {}
        stop = False
        with ThreadPoolExecutor(slots, thread_name_prefix="srd-case") as pool:
            while True:
                while not stop and not self.cancel.is_set() and free:
                    i = next(pending, None)
                    if i is None:
                        break
                    slot = free.pop(0)
                    case_settings = settings
                    if per_gpu:
                        case_settings = dataclasses.replace(
                            settings, gpus=[slot],
                            env={**settings.env,
                                 "CUDA_VISIBLE_DEVICES": self.monitor.cuda_visible(slot)})
                    self._backend(self.cases[i].backend, slot)  # created here, not in a thread
                    self.reporter.case_start(self.cases[i])
                    fut = pool.submit(self._run_with_retries, self.cases[i], case_settings, slot)
                    running[fut] = (i, slot)
                if not running:
                    return
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f][0]):
                    i, slot = running.pop(fut)
                    free.append(slot)
                    result = fut.result()
                    if result is not None and not self._commit(i, result, journal):
                        stop = True  # --fail-fast: let the running cases finish

    def _dask(self, todo: list[int], settings: RunnerSettings, journal: Journal) -> None:
        """Each case a task on a Dask worker (``executors.dask``). One task per worker
        thread is submitted at a time, the next as a result comes in; each result is journaled here
        with its logs and time series, as the local executor does. Rows keep the input
        order. Interrupted: pending tasks are cancelled and the running cases killed on
        their workers; a LocalCluster is closed and what it left running is killed."""
        from doerunner.executors.dask import DaskSession, needs_gpu, worker_options
        from doerunner.process import logwriter
        from doerunner.process.tree import kill_leftovers

        opts = self.opts
        gpu = {i: needs_gpu(self.cases[i], opts.telemetry.mode) for i in todo}
        run_key = f"{self.run_id}-{os.getpid()}"
        wire = worker_options(opts, settings.env, run_key)
        logs = settings.logs_dir
        assert logs is not None
        session = DaskSession(opts.scheduler, local_cluster_workers(opts), any(gpu.values()))
        interrupted = False
        try:
            where = "a LocalCluster" if session.cluster is not None else opts.scheduler
            self.reporter.info(f"dask: {session.workers} worker(s) on {where} "
                               f"({session.address})")
            pending = iter(todo)
            running: dict[Any, tuple[int, float]] = {}
            stop = False
            while True:
                ahead = session.threads
                while not stop and not self.cancel.is_set() and len(running) < ahead:
                    i = next(pending, None)
                    if i is None:
                        break
                    self.reporter.case_start(self.cases[i])
                    fut = session.submit(self.cases[i], wire, gpu[i])
                    running[fut] = (i, time.time())
                if self.cancel.is_set():
                    interrupted = True
                    session.interrupt(run_key, running)
                    return
                if not running:
                    return
                for fut in sorted(session.wait(running, 0.2), key=lambda f: running[f][0]):
                    i, t_submit = running.pop(fut)
                    case = self.cases[i]
                    got = session.outcome(fut, case, t_submit)
                    if got is None:
                        continue
                    for stream in ("stdout", "stderr"):
                        path = logs / f"{case.case_id}.{stream}"
                        if stream in got.logs:
                            logwriter.write(path, got.logs[stream])
                        else:
                            logwriter.unlink(path)
                    telemetry = (got.env, got.sample_hz) if got.env is not None else None
                    if not self._commit(i, got.result, journal, telemetry):
                        stop = True  # --fail-fast: let the submitted cases finish
        finally:
            if interrupted:
                self.reporter.info("dask: pending cases cancelled, running cases killed")
            session.close()
            if session.cluster is not None:
                # Belt and braces: what the closed workers (or lost ones) left running here.
                kill_leftovers(settings.env[RUN_DIR_VAR])

    def _commit(self, i: int, result: CaseResult, journal: Journal,
                telemetry: tuple[dict[str, Any], float] | None = None) -> bool:
        """Journal a finished case and account for it; False to stop (--fail-fast).
        ``telemetry``: the environment columns and sampling rate of the worker that
        measured the case (Dask), instead of this process's monitor."""
        case = self.cases[i]
        self._telemetry_outputs(case, result, telemetry)
        try:
            self.offsets[i] = journal.append(result, self.run_id)
        except OSError as e:
            raise OutputError(f"cannot write the journal {self.journal_path}: "
                              f"{e.strerror or e}") from None
        row = self._account(i, case, result)
        self.reporter.case_end(case, result, row["violations"])
        if i % 4096 == 4095:
            gc.freeze()  # finished rows stay till the end: stop rescanning them
        return not (self.opts.fail_fast and result.status != OK)

    def _telemetry_outputs(self, case: Case, result: CaseResult,
                           telemetry: tuple[dict[str, Any], float] | None = None) -> None:
        """Environment columns, and the case's time series written before it is journaled
        (the journal line is what commits a case)."""
        if telemetry is None:
            if not self.monitor.active:
                return
            telemetry = (self.monitor.env, self.monitor.opts.sample_hz)
        env, sample_hz = telemetry
        result.metrics.update(env)
        if result.series:
            from doerunner.outputs.timeseries import case_document, write_case

            path = self.run_dir / "timeseries" / f"{case.case_id}.json"
            doc = case_document(case.case_id, result.series, sample_hz, THROTTLE_MASK)
            try:
                write_case(path, doc)
            except OSError as e:
                raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
            result.metrics["timeseries_path"] = os.path.relpath(path, self.opts.out.parent or ".")

    def _run_with_retries(self, case: Case, settings: RunnerSettings,
                          slot: int = 0) -> CaseResult | None:
        def retrying(result: CaseResult, attempt: int) -> None:
            self.reporter.info(f"{case.case_id}: {result.status} ({result.message}); "
                               f"retry {attempt} of {self.opts.retries}")

        try:
            return run_with_retries(case, self._backend(case.backend, slot), settings,
                                    self.opts.retries, retrying)
        except CaseInterrupted:
            return None

    def _backend(self, name: str, slot: int = 0) -> Backend:
        """The backend instance of ``slot``: cases that run side by side never share one
        (an hf worker holds one model on one GPU)."""
        b = self.backends.get((name, slot))
        if b is None:
            b = self.backends[(name, slot)] = BACKENDS[name]()
        return b

    def _account(self, i: int, case: Case, result: CaseResult) -> dict[str, Any]:
        row = build_row(case, result)
        self.stats.add(row)
        keys = tuple(row)
        self.rows[i] = (self._layouts.setdefault(keys, keys), tuple(row.values()))
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if row["violations"]:
            self.violated_ids.append(case.case_id)
        if row.get("thermal_throttle_detected"):
            self.throttled.append(f"{case.case_id} ({row.get('thermal_throttle_reasons')})")
        for w in result.warnings:
            self.warnings.append(f"{case.case_id}: {w}")
        return row

    # -- journal and resume -------------------------------------------------------------------
    def _prepare_journal(self) -> int | None:
        """Take finished cases from the journal (``--resume``) or move an old one aside."""
        path = self.journal_path
        if not self.opts.resume:
            if path.exists() and path.stat().st_size > 0:
                aside = path.with_name(f"journal.{time.strftime('%Y%m%dT%H%M%S')}."
                                       f"{os.urandom(2).hex()}.jsonl")
                os.replace(path, aside)
                self.reporter.info(f"previous journal moved aside to {aside}")
            return 0
        entries, valid = scan(path)
        index = {c.case_id: i for i, c in enumerate(self.cases)}
        found: dict[int, tuple[int, CaseResult]] = {}
        changed: set[str] = set()
        for offset, entry in entries:
            res = CaseResult.from_json(entry["case"])
            i = index.get(res.case_id)
            if i is None:
                continue
            if res.fingerprint != self.cases[i].fingerprint():
                changed.add(res.case_id)
                continue
            if self.opts.retry_failed and res.status != OK:
                found.pop(i, None)
                continue
            found[i] = (offset, res)
            changed.discard(res.case_id)
        for i, (offset, res) in sorted(found.items()):
            self.offsets[i] = offset
            self._account(i, self.cases[i], res)
        for cid in sorted(changed - {self.cases[i].case_id for i in found}):
            self.reporter.info(f"{cid}: its definition changed since it was journaled; "
                               "running it again")
        if path.exists() and valid < path.stat().st_size:
            self.reporter.warn(f"{path}: ignoring a torn last line (a crash during a write)")
        return valid

    # -- signals ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _signals(self):  # type: ignore[no-untyped-def]
        if not self.opts.handle_signals or threading.current_thread() is not \
                threading.main_thread():
            yield
            return
        count = 0

        def handler(signum: int, frame: object) -> None:
            nonlocal count
            count += 1
            self.cancel.set()
            if count == 1:
                self.reporter.warn(f"{signal.Signals(signum).name}: stopping; finished cases "
                                   "are kept (press Ctrl-C again to kill at once)")
            else:
                from doerunner.process.tree import kill_all_now

                kill_all_now()
                os._exit(130)

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # -- outputs ----------------------------------------------------------------------------
    def _finish(self, resumed: int) -> RunSummary:
        if self.throttled:
            self.warnings.append(
                f"GPU clocks were held down (throttled) in {len(self.throttled)} case(s): "
                + ", ".join(self.throttled[:10]) + (" ..." if len(self.throttled) > 10 else "")
                + "; their times and energy are not representative (see --cooldown)")
        finished = sum(o is not None for o in self.offsets)
        failed = self.counts.get(FAIL, 0) + self.counts.get(TIMEOUT, 0)
        if self.interrupted:
            exit_code = 130
        elif failed:
            exit_code = 3
        elif self.violated_ids:
            exit_code = 2
        else:
            exit_code = 0
        summary = RunSummary(
            self.run_id, self.opts.out, self.run_dir, len(self.cases), finished,
            dict(self.counts), len(self.violated_ids), self.violated_ids, resumed,
            len(self.cases) - finished, self.interrupted, time.time() - self.t0, exit_code,
            self.warnings)
        pairs = [(c, o) for c, o in zip(self.cases, self.offsets, strict=True) if o is not None]
        try:
            rows = (dict(zip(*packed, strict=True)) for packed in self.rows if packed is not None)
            write_metrics_csv(self.opts.out, rows, self.stats, self.tz,
                              csv_safe=self.opts.csv_safe)
            self._write_run_json(summary, pairs)
            self._write_timeseries_csv()
        except OSError as e:
            raise OutputError(f"cannot write the outputs: {e.strerror or e}; the journal "
                              f"{self.journal_path} is kept: run again with --resume") from None
        for w in self.warnings:
            self.reporter.warn(w)
        self._register(summary)
        self.reporter.finish(summary)
        return summary

    def _write_timeseries_csv(self) -> None:
        """``timeseries.csv``: every sample of every finished case with a time series, in
        case order (also those taken from the journal on --resume)."""
        folder = self.run_dir / "timeseries"
        if not self.monitor.opts.timeseries or not folder.is_dir():
            return
        from doerunner.outputs.timeseries import read_case, write_csv

        paths = [folder / f"{c.case_id}.json" for c, o in zip(self.cases, self.offsets,
                                                               strict=True) if o is not None]
        paths = [p for p in paths if p.exists()]
        if paths:
            write_csv(self.run_dir / "timeseries.csv", (read_case(p) for p in paths), self.tz)

    def _write_run_json(self, summary: RunSummary, pairs: list[tuple[Case, int]]) -> None:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, self.tz).isoformat(timespec="seconds")

        opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.opts).items()
                if k != "command_line"}
        head = {
            "srd_version": __version__, "run_id": self.run_id, "started": iso(self.t0),
            "ended": iso(time.time()), "command_line": self.opts.command_line,
            "cwd": os.getcwd(), "cases_file": self.cases_file, "out": str(self.opts.out),
            "options": opts, "environment": host_environment(),
            "summary": {"total": summary.total, "finished": summary.finished,
                        "counts": summary.counts, "violated": summary.violated,
                        "resumed": summary.resumed, "not_run": summary.not_run,
                        "interrupted": summary.interrupted, "exit_code": summary.exit_code,
                        "elapsed_s": summary.elapsed_s},
            "warnings": self.warnings,
            "telemetry": self.monitor.info,
        }
        with atomic_open(self.run_dir / "run.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2])
            f.write(',\n "cases": [')
            lines = iter_lines(self.journal_path, [o for _, o in pairs])
            for n, line in enumerate(lines):
                f.write("\n  " if n == 0 else ",\n  ")
                f.write(case_json(line).decode())
            f.write("\n ]\n}\n")
