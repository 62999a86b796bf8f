"""The backend interface: one small ABC with a NAME, looked up through the registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from doerunner.inputs.case import Case
from doerunner.policy import DEFAULT_POLICY, WARMUP_WINDOW
from doerunner.results import Execution


@dataclass(slots=True)
class ExecContext:
    """What one execution may use besides its case.

    ``timeout_s`` is the limit for this execution in seconds. ``stdout_path`` and
    ``stderr_path`` are where captured output goes (None: discard). ``log_cap_bytes`` caps
    each log file. ``cancel`` is set when the run is interrupted: the backend must then kill
    what it started and raise ``CaseInterrupted`` promptly. ``env`` holds extra environment
    variables for the execution (e.g. ``CUDA_VISIBLE_DEVICES``). ``progress``, when set, takes
    a backend's progress inside a long execution as ``(what, done, total)``, e.g.
    ``("batch", 3, 8)``; it only shows, it never measures. ``sample_s``: how often a backend
    samples the host resources its execution uses (seconds; the telemetry rate);
    ``record_series``: keep those samples as the case's host series, with ``rapl_joules``
    (the host's CPU and DRAM energy so far, J) when RAPL is read. ``echo``: the file
    descriptors (stdout, stderr) the execution's output is also written to as it arrives
    (``--show-output``; None: captured only). A backend that cannot stream what it runs
    prints says so in its docstring.
    """

    timeout_s: float
    stdout_path: str | Path | None = None
    stderr_path: str | Path | None = None
    log_cap_bytes: int = DEFAULT_POLICY.log_cap_bytes
    kill_grace_s: float = DEFAULT_POLICY.kill_grace_s
    cancel: threading.Event = field(default_factory=threading.Event)
    env: Mapping[str, str] = field(default_factory=dict)
    progress: Callable[[str, int, int], None] | None = None
    sample_s: float = 0.1
    record_series: bool = False  # keep the host series of the process tree (time series)
    rapl_joules: Callable[[], float | None] | None = None  # the host's RAPL joules so far
    echo: tuple[int, int] | None = None  # (stdout, stderr) descriptors: --show-output


@dataclass(slots=True)
class WarmupSpec:
    """What warm-up a case asks for: ``count`` executions, or ``"auto"``: until the
    coefficient of variation (population std / mean) of the last ``window`` latencies is below
    ``cv``, at most ``max_runs``."""

    count: int | str
    cv: float = DEFAULT_POLICY.warmup_cv
    max_runs: int = DEFAULT_POLICY.warmup_max
    window: int = WARMUP_WINDOW


@dataclass(slots=True)
class WarmupReport:
    """What a backend's own warm-up did: ``runs`` warm-up requests, whether ``auto``
    converged and the final CV (None for a fixed count), warnings, and ``failure``: the
    failed execution (FAIL or TIMEOUT, message saying which request) when the warm-up did
    not complete — the case then ends with it."""

    runs: int
    converged: bool | None = None
    final_cv: float | None = None
    warnings: list[str] = field(default_factory=list)
    failure: Execution | None = None


class Backend(ABC):
    """Runs one execution of a case and reports it as an ``Execution`` in SI units.

    A backend never formats and never raises for a case that fails: failures are an
    ``Execution`` with status FAIL or TIMEOUT. It raises ``CaseInterrupted`` when
    ``ctx.cancel`` was set. Creating one has no side effects (cases files are checked with
    a fresh instance); what it holds (a worker process) is started on first use.

    What a backend is and needs is declared here, never tested by name elsewhere:
    ``USES_GPU`` (its cases need a GPU of their own: they are not run side by side on shared
    GPUs, and ask Dask for a GPU resource), ``DEFAULT_WARMUP`` (a row's warm-up when its
    ``warmup`` cell is empty), ``TEMPLATE_COLUMNS`` (columns whose ``{name}`` placeholders
    it fills in, checked by ``srd design`` too), ``REPORT_RESPONSE`` (the metric ``srd
    report`` explains by default for a run of its cases) and ``PARSES_OUTPUT`` (its metrics
    are parsed from a program's output: its cases may have ``metric_*`` columns, and an OK
    case that printed no metric is warned about at the end of the run).
    """

    NAME: ClassVar[str]
    USES_GPU: ClassVar[bool] = False
    DEFAULT_WARMUP: ClassVar[int | str] = 0
    TEMPLATE_COLUMNS: ClassVar[tuple[str, ...]] = ()
    REPORT_RESPONSE: ClassVar[str | None] = None
    PARSES_OUTPUT: ClassVar[bool] = False

    def check(self, case: Case) -> list[tuple[str, str]]:
        """Static checks of a case before anything runs: ``(column, message)`` pairs. No
        side effects."""
        return []

    def describe(self, case: Case) -> str:
        """What ``srd run --dry-run`` shows of the case: its parameters as ``name=value``."""
        return " ".join(f"{k}={v}" for k, v in case.params.items())

    @abstractmethod
    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        """Run the case once."""

    def prepare(self, case: Case, ctx: ExecContext) -> Execution | None:
        """Get ready to run the case, before any warm-up or measurement window: what must
        not be measured (starting a worker, loading a model, tokenising prompts). Returns
        None when ready, or the failed ``Execution`` (the case then ends with it). The
        default has nothing to prepare."""
        return None

    def warmup(self, case: Case, ctx: ExecContext, spec: WarmupSpec) -> WarmupReport | None:
        """Warm up at a finer grain than whole executions (e.g. single requests of an LLM).

        Return None (the default) to let the runner repeat whole executions instead. May
        raise ``CaseInterrupted``; a failure is the report's ``failure``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most backends
        """Release what the backend holds (worker processes, models)."""
