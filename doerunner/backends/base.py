"""The backend interface: one small ABC with a NAME, looked up through the registry."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from doerunner.inputs.cases import Case
from doerunner.results import Execution

DEFAULT_LOG_CAP_BYTES = 10 * 1024 * 1024
DEFAULT_KILL_GRACE_S = 2.0


@dataclass(slots=True)
class ExecContext:
    """What one execution may use besides its case.

    ``timeout_s`` is the limit for this execution in seconds. ``stdout_path`` and
    ``stderr_path`` are where captured output goes (None: discard). ``log_cap_bytes`` caps
    each log file. ``cancel`` is set when the run is interrupted: the backend must then kill
    what it started and raise ``CaseInterrupted`` promptly. ``env`` holds extra environment
    variables for the execution (e.g. ``CUDA_VISIBLE_DEVICES``). ``progress``, when set, takes
    a backend's progress inside a long execution as ``(what, done, total)``, e.g.
    ``("batch", 3, 8)``; it only shows, it never measures.
    """

    timeout_s: float
    stdout_path: str | Path | None = None
    stderr_path: str | Path | None = None
    log_cap_bytes: int = DEFAULT_LOG_CAP_BYTES
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    cancel: threading.Event = field(default_factory=threading.Event)
    env: Mapping[str, str] = field(default_factory=dict)
    progress: Callable[[str, int, int], None] | None = None


@dataclass(slots=True)
class WarmupSpec:
    """What warm-up a case asks for: ``count`` executions, or ``"auto"``: until the
    coefficient of variation (population std / mean) of the last ``window`` latencies is below
    ``cv``, at most ``max_runs``."""

    count: int | str
    cv: float = 0.05
    max_runs: int = 50
    window: int = 5


@dataclass(slots=True)
class WarmupReport:
    """What a backend's own warm-up did: ``runs`` warm-up requests, whether ``auto``
    converged and the final CV (None for a fixed count), and warnings."""

    runs: int
    converged: bool | None = None
    final_cv: float | None = None
    warnings: list[str] = field(default_factory=list)


class Backend(ABC):
    """Runs one execution of a case and reports it as an ``Execution`` in SI units.

    A backend never formats and never raises for a case that fails: failures are an
    ``Execution`` with status FAIL or TIMEOUT. It raises ``CaseInterrupted`` when
    ``ctx.cancel`` was set.
    """

    NAME: ClassVar[str]

    def check(self, case: Case) -> list[tuple[str, str]]:
        """Static checks of a case before anything runs: ``(column, message)`` pairs."""
        return []

    @abstractmethod
    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        """Run the case once."""

    def warmup(self, case: Case, ctx: ExecContext, spec: WarmupSpec) -> WarmupReport | None:
        """Warm up at a finer grain than whole executions (e.g. single requests of an LLM).

        Return None (the default) to let the runner repeat whole executions instead. May
        raise ``CaseInterrupted``; a failure is reported by the following ``execute``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most backends
        """Release what the backend holds (worker processes, models)."""
