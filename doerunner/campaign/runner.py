"""One case: warm-up, measured repetitions, aggregation → ``CaseResult`` (SI units)."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doerunner.backends.base import Backend, ExecContext, WarmupSpec
from doerunner.campaign.hooks import Hooks
from doerunner.inputs.case import Case
from doerunner.policy import DEFAULT_POLICY, WARMUP_WINDOW, ExecutionPolicy
from doerunner.results import FAIL, OK, CaseResult, Execution, Metric
from doerunner.telemetry.options import DEFAULT_CARBON_G_PER_KWH, DEFAULT_PRICE_PER_KWH

if TYPE_CHECKING:
    from doerunner.telemetry.host import HostMeter
    from doerunner.telemetry.monitor import Monitor


@dataclass(slots=True)
class RunnerSettings:
    """How the cases of one slot are executed: where their logs go, the ``policy``
    (warm-up, retries, log cap, kill grace), the run's cancel event, the telemetry monitor
    and the GPUs (positions among the monitored ones) a measurement window covers, the extra
    environment of every execution."""

    logs_dir: Path | None = None
    policy: ExecutionPolicy = DEFAULT_POLICY
    cancel: threading.Event = field(default_factory=threading.Event)
    monitor: Monitor | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every execution
    gpus: list[int] | None = None  # positions of the monitored GPUs this case uses (None: all)
    # Shown, never measured: (case, what, done, total) as warm-up, repetitions and a backend's
    # own steps (e.g. hf batches) go by. total is 0 when not known in advance.
    progress: Callable[[Case, str, int, int], None] | None = None
    sample_s: float = 0.1  # how often host resources are sampled (the telemetry rate)
    host: HostMeter | None = None  # host-wide windows (network, RAPL); None: not measured
    record_series: bool = False  # keep the process tree's host series (--timeseries)
    prices: tuple[float, float] = (DEFAULT_CARBON_G_PER_KWH, DEFAULT_PRICE_PER_KWH)


def _mean(values: list[float]) -> float:
    """``statistics.fmean``: the correctly rounded sum over the count; for values whose sum
    overflows (a case printing ``x=1e308`` twice), the sum of each over the count."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        n = len(values)
        return math.fsum(v / n for v in values)


def coefficient_of_variation(values: list[float]) -> float:
    """Population std / mean of ``values``; ``inf`` when the mean is 0 or there are < 2."""
    if len(values) < 2:
        return math.inf
    import statistics

    mean = _mean(values)
    return statistics.pstdev(values, mean) / mean if mean > 0 else math.inf


def run_case(case: Case, backend: Backend, settings: RunnerSettings) -> CaseResult:
    """Run ``case``: its setup command, its warm-up executions, then ``case.repeat``
    measured ones, each after its prepare command, then its cleanup command (FORMAT.md §2;
    ``campaign.hooks``).

    A failing warm-up or repetition ends the case with that execution's status; its
    metrics describe the failed execution and are not averaged with the others. A failed
    setup or prepare command ends the case FAIL without running the command; the cleanup
    command runs whatever happened (best effort when interrupted), and its failure makes
    the case FAIL. Raises ``CaseInterrupted`` (from the backend) when ``settings.cancel``
    is set.
    """
    t_case = time.time()  # the case starts with its setup and warm-up, whoever runs them
    logs = settings.logs_dir
    shown = settings.progress

    def progress(what: str, done: int, total: int) -> None:
        shown(case, what, done, total)  # type: ignore[misc]  # given only when shown is set

    ctx = ExecContext(
        timeout_s=case.timeout_s,
        stdout_path=f"{logs}/{case.case_id}.stdout" if logs else None,
        stderr_path=f"{logs}/{case.case_id}.stderr" if logs else None,
        log_cap_bytes=settings.policy.log_cap_bytes,
        kill_grace_s=settings.policy.kill_grace_s,
        cancel=settings.cancel,
        env=settings.env,
        progress=progress if shown is not None else None,
        sample_s=settings.sample_s,
        record_series=settings.record_series,
        rapl_joules=settings.host.rapl_joules if settings.host is not None else None,
        echo=(1, 2) if settings.policy.show_output else None,  # srd's stdout and stderr
    )
    if not case.has_hooks:
        return _executions(case, backend, settings, ctx, None, t_case)
    hooks = Hooks(case, ctx, logs)
    try:
        failed = hooks.run("setup")
        result = (_failed(case, [], [], failed, "", t_case) if failed is not None
                  else _executions(case, backend, settings, ctx, hooks, t_case))
    except BaseException:
        hooks.cleanup_after_error()
        raise
    failed = hooks.cleanup()
    if failed is not None:
        _cleanup_failed(result, failed.message)
    result.t_end = max(result.t_end, hooks.t_end)
    if result.status != OK:
        _drop_stale_logs(ctx, t_case)
    return result


def _drop_stale_logs(ctx: ExecContext, t_case: float) -> None:
    """Remove the case's own logs when none of its executions wrote them (a hook failed
    first): they are an earlier run's, and would be read as this one's."""
    for path in (ctx.stdout_path, ctx.stderr_path):
        if path is None:
            continue
        try:
            if os.stat(path).st_mtime < t_case:
                os.unlink(path)
        except OSError:
            pass


def _executions(case: Case, backend: Backend, settings: RunnerSettings, ctx: ExecContext,
                hooks: Hooks | None, t_case: float) -> CaseResult:
    """The case's warm-up and measured executions (``run_case`` but the setup and cleanup
    commands); ``hooks`` runs the prepare command before each (None: the case has none)."""

    def progress(what: str, done: int, total: int) -> None:
        if ctx.progress is not None:
            ctx.progress(what, done, total)

    warm: list[Execution] = []
    warnings: list[str] = []
    converged: bool | None = None
    final_cv: float | None = None
    policy = settings.policy
    own = None
    ready = backend.prepare(case, ctx)
    if ready is not None:
        where = f"repetition 1 of {case.repeat}" if case.repeat > 1 else ""
        return _failed(case, warm, [ready], ready, where, t_case)
    if case.warmup == "auto" or case.warmup:
        failed = hooks.prepare_ahead() if hooks is not None else None
        if failed is not None:
            return _failed(case, warm, [], failed, "warm-up 1", t_case)
        own = backend.warmup(case, ctx, WarmupSpec(case.warmup, policy.warmup_cv,
                                                   policy.warmup_max, WARMUP_WINDOW))
        if own is not None and hooks is not None:
            hooks.ahead = False  # the backend's own warm-up was what it prepared
    if own is not None:
        if own.failure is not None:
            # Reported as the case's first measured execution, as it always was.
            where = f"repetition 1 of {case.repeat}" if case.repeat > 1 else ""
            return _failed(case, warm, [own.failure], own.failure, where, t_case)
        converged, final_cv = own.converged, own.final_cv
        warnings.extend(own.warnings)
    elif case.warmup == "auto":
        converged = False
        while len(warm) < policy.warmup_max:
            ex = _unmeasured(case, backend, ctx, hooks)
            warm.append(ex)
            progress("warm-up", len(warm), policy.warmup_max)
            if ex.status != OK:
                return _failed(case, warm, [], ex, f"warm-up {len(warm)}", t_case)
            if len(warm) >= WARMUP_WINDOW:
                final_cv = coefficient_of_variation([w.wall_s for w in warm[-WARMUP_WINDOW:]])
                if final_cv < policy.warmup_cv:
                    converged = True
                    break
        if not converged:
            warnings.append(
                f"warm-up did not converge: CV {final_cv if final_cv is not None else math.inf:.3f}"
                f" after {len(warm)} runs (target {policy.warmup_cv:g})")
    elif case.warmup:
        for i in range(int(case.warmup)):
            ex = _unmeasured(case, backend, ctx, hooks)
            warm.append(ex)
            progress("warm-up", i + 1, int(case.warmup))
            if ex.status != OK:
                return _failed(case, warm, [], ex, f"warm-up {i + 1}", t_case)
    runs: list[Execution] = []
    series: list[Any] = []
    host_series: list[dict[str, Any]] = []
    for i in range(case.repeat):
        failed = hooks.prepare() if hooks is not None else None
        ex = failed if failed is not None else \
            _measured(case, backend, ctx, settings, series, warnings)
        if ex.host_series:
            host_series.extend(ex.host_series)
            ex.host_series = None
        runs.append(ex)
        if case.repeat > 1:
            progress("repetition", i + 1, case.repeat)
        if ex.status != OK:
            where = f"repetition {i + 1} of {case.repeat}" if case.repeat > 1 else ""
            result = _failed(case, warm, runs, ex, where, t_case)
            break
    else:
        result = _ok(case, warm, runs, converged, final_cv, warnings, t_case)
        if own is not None:
            result.metrics["warmup_runs"] = own.runs
    result.warnings = warnings
    result.series = series if series else None
    result.host_series = host_series if host_series else None
    return result


def run_with_retries(case: Case, backend: Backend, settings: RunnerSettings,
                     on_retry: Callable[[CaseResult, int], None] | None = None) -> CaseResult:
    """``run_case`` again while the case ends FAIL or TIMEOUT, at most ``policy.retries``
    more times; the result records ``attempts``. ``CaseInterrupted`` propagates."""
    retries = settings.policy.retries
    attempts = 0
    while True:
        attempts += 1
        t_case = time.time()
        try:
            result = run_case(case, backend, settings)
        except (ArithmeticError, ValueError, TypeError) as e:
            # What a case produced that srd could not add up (a value near the float limit
            # in a statistic, say) fails that case, never the run (FORMAT.md §3).
            ex = Execution(FAIL, 0.0, t_case, time.time(), None,
                           f"srd could not aggregate the results: {type(e).__name__}: {e}")
            result = _failed(case, [], [ex], ex, "", t_case)
        result.attempts = attempts
        if result.status == OK or attempts > retries:
            return result
        if on_retry is not None:
            on_retry(result, attempts)


def _unmeasured(case: Case, backend: Backend, ctx: ExecContext,
                hooks: Hooks | None) -> Execution:
    """A warm-up execution, after the prepare command (a failed one stands for it)."""
    failed = hooks.prepare() if hooks is not None else None
    return failed if failed is not None else backend.execute(case, ctx)


def _cleanup_failed(result: CaseResult, message: str) -> None:
    """A failed cleanup command: an OK case becomes FAIL with its ``message`` (its measured
    values kept); a FAIL or TIMEOUT case keeps its status, the message added to its own."""
    if result.status == OK:
        result.status = FAIL
        result.message = message
        result.metrics["errors"] = max(1, _int(result.metrics.get("errors", 0)))
    else:
        result.message = f"{result.message}; {message}"


def _measured(case: Case, backend: Backend, ctx: ExecContext, settings: RunnerSettings,
              series: list[Any], warnings: list[str]) -> Execution:
    """One measured execution, inside a telemetry window when GPUs are monitored and a
    host window (network, RAPL) when the host is."""
    host = settings.host
    mark = host.begin() if host is not None else None
    monitor = settings.monitor
    window = (monitor.window(case.case_id, settings.gpus)
              if monitor is not None and monitor.active else contextlib.nullcontext())
    with window as m:
        ex = backend.execute(case, ctx)
    own = frozenset(ex.metrics)  # what the backend reported: it wins everywhere below
    _add_tree(ex)
    if m is not None:
        _gpu_window(ex, m, series, warnings)
    if host is not None and mark is not None:
        host.end(mark, ex.metrics, *settings.prices, own=own, gpu_measured=m is not None)
    return ex


def _gpu_window(ex: Execution, m: Any, series: list[Any], warnings: list[str]) -> None:
    """The GPU window's columns, details, samples and warnings, added to ``ex``."""
    # The backend's own readings win (e.g. gpu_mem_peak_mb from torch's allocator).
    ex.metrics = {**m.metrics, **ex.metrics}
    elsewhere = device_elsewhere(ex.metrics.get("ext_device_uuid"), m.details)
    if elsewhere is not None:
        m.warnings.append(elsewhere)
        for k in [k for k in ex.metrics if k.startswith(("energy_", "gpu_power_"))]:
            ex.metrics[k] = None  # measured on a GPU the work did not run on
    tokens = ex.metrics.get("tokens_out")
    energy = ex.metrics.get("energy_adjusted_j")
    if energy is None:
        energy = ex.metrics.get("energy_raw_j")
    if isinstance(tokens, (int, float)) and tokens > 0 and isinstance(energy, (int, float)):
        ex.metrics["energy_per_token_j"] = energy / tokens
    ex.telemetry = m.details
    series.extend(m.series)
    for w in m.warnings:
        if w not in warnings:
            warnings.append(w)


def _add_tree(ex: Execution) -> None:
    """What the backend measured of its process tree, among the execution's metrics (under
    what it reported: a command's own ``mem_peak_mb`` wins)."""
    if ex.host:
        for name, value in ex.host.items():
            ex.metrics.setdefault(name, value)
        ex.host = None


def _hex(uuid: str) -> str:
    return uuid.lower().removeprefix("gpu-").removeprefix("mig-")


def device_elsewhere(device_uuid: Any, details: dict[str, Any]) -> str | None:
    """A warning when the backend reports running on a CUDA device (``GPU-…``/``MIG-…``)
    that the measurement window did not cover (``details``: the window's run.json details);
    None when it did, or nothing is known."""
    gpus = details.get("gpus") or []
    if not isinstance(device_uuid, str) or not device_uuid or not gpus:
        return None
    if any(str(g.get("visible_as", "")).upper().startswith("MIG-GPU-") for g in gpus):
        return None  # a pre-R470 MIG id names no UUID CUDA would report: nothing to compare
    covered = {_hex(g[k]) for g in gpus for k in ("uuid", "visible_as") if g.get(k)}
    if _hex(device_uuid) in covered:
        return None
    return (f"the work ran on {device_uuid}, but the window measured "
            f"{', '.join(g['uuid'] for g in gpus)}: its energy and power are left empty")


def _ok(case: Case, warm: list[Execution], runs: list[Execution], converged: bool | None,
        final_cv: float | None, warnings: list[str], t_case: float) -> CaseResult:
    metrics = aggregate(runs)
    if case.warmup == "auto" or case.warmup:
        metrics["warmup_runs"] = len(warm)
    if converged is not None:
        metrics["warmup_converged"] = converged
        if final_cv is not None and math.isfinite(final_cv):
            metrics["warmup_final_cv"] = final_cv
    last = runs[-1]
    return CaseResult(case.case_id, OK, t_case, last.t_end, last.exit_code, "",
                      metrics, runs, warm, fingerprint=case.fingerprint(), warnings=warnings,
                      definition=case.definition())


def _failed(case: Case, warm: list[Execution], runs: list[Execution], ex: Execution,
            where: str, t_case: float) -> CaseResult:
    metrics: dict[str, Metric] = dict(ex.metrics)
    metrics["run_seconds"] = ex.wall_s
    metrics["errors"] = max(1, _int(metrics.get("errors", 0)))
    if case.repeat > 1:
        metrics["runs"] = len(runs)
    if warm:
        metrics["warmup_runs"] = len(warm)
    message = f"{where}: {ex.message}" if where else ex.message
    return CaseResult(case.case_id, ex.status, t_case, ex.t_end, ex.exit_code, message,
                      metrics, runs, warm, fingerprint=case.fingerprint(),
                      definition=case.definition())


def _union(texts: list[Any]) -> str:
    seen: dict[str, None] = {}
    for t in texts:
        for part in str(t).split(";"):
            if part:
                seen[part] = None
    return ";".join(seen)


def _int(v: Metric) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def aggregate(runs: list[Execution]) -> dict[str, Metric]:
    """Combine the measured runs' metrics into the row's. Numbers are means, except ``errors`` (the
    total count), names holding ``_peak`` or ``_max`` and ``threads_active`` (the maximum),
    and ``_min`` (the minimum). Booleans are true when any run's is;
    ``thermal_throttle_reasons`` is the union; other text keeps the last value.
    ``run_seconds`` is the mean wall time; with several runs ``runs``,
    ``run_seconds_min``/``_max``/``_std`` (sample standard deviation) are added, and the
    robust columns ``<metric>_median`` and ``<metric>_mad`` of ``run_seconds`` and of each
    metric ``columns.gets_robust_columns`` names that two runs or more measured (unless the
    backend reported a metric of that name: its own wins)."""
    if len(runs) == 1:
        m: dict[str, Metric] = dict(runs[0].metrics)
        m["run_seconds"] = runs[0].wall_s
        m.setdefault("errors", 0)
        return m
    values: dict[str, list[Any]] = {}
    for r in runs:
        for k, v in r.metrics.items():
            values.setdefault(k, []).append(v)
    out: dict[str, Any] = {}
    for k, vs in values.items():
        present = [v for v in vs if v is not None]
        nums = [v for v in present if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not present:
            out[k] = None
        elif all(isinstance(v, bool) for v in present):
            out[k] = any(present)
        elif not nums:
            out[k] = _union(present) if k == "thermal_throttle_reasons" else present[-1]
        elif k == "errors":
            out[k] = sum(_int(v) for v in nums)
        elif "_peak" in k or "_max" in k or k == "threads_active":
            out[k] = max(nums)
        elif "_min" in k:
            out[k] = min(nums)
        else:
            mean = _mean(nums)
            all_int = all(isinstance(v, int) for v in nums)
            out[k] = int(mean) if all_int and mean.is_integer() else mean
    out.setdefault("errors", 0)
    walls = [r.wall_s for r in runs]
    out["run_seconds"] = _mean(walls)
    out["runs"] = len(runs)
    out["run_seconds_min"] = min(walls)
    out["run_seconds_max"] = max(walls)
    # here: a one-repetition run never needs them (~3 ms to import)
    import statistics

    from doerunner.columns import gets_robust_columns
    from doerunner.repstats import robust_columns

    out["run_seconds_std"] = statistics.stdev(walls)
    robust = robust_columns("run_seconds", walls)
    for k, vs in values.items():
        if gets_robust_columns(k):
            nums = [v for v in vs if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v)]
            robust.update(robust_columns(k, nums))
    for k, v in robust.items():  # what the backend reported under such a name wins
        out.setdefault(k, v)
    return out
