"""The executor family: where the cases of a plan run. A small base class with a ``NAME``
(registered in ``executors.EXECUTORS``) and the one loop every executor is driven by.

An executor runs cases and hands back ``Finished`` results; it never journals, accounts or
writes outputs (the campaign does, whatever the executor, so ``--resume`` works across
executors). ``drive`` keeps at most ``capacity()`` cases submitted — a bounded window, so a
100,000-case run never floods a pool or a scheduler — and commits each result as it comes
in, in input order among those that finish together.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from doerunner.inputs.case import Case
from doerunner.policy import ExecutionPolicy
from doerunner.results import CaseResult
from doerunner.telemetry.options import TelemetryOptions

if TYPE_CHECKING:
    from doerunner.campaign.plan import ExecutionPlan
    from doerunner.campaign.progress import Reporter
    from doerunner.telemetry.monitor import Monitor


@dataclass(frozen=True, slots=True)
class RunContext:
    """What an executor needs of the run: the plan, the execution policy and telemetry
    options (which travel to remote workers), where logs go, the environment every execution
    gets (``SRD_RUN_DIR``), the cancel event, this process's telemetry monitor (None when it
    measures nothing), the reporter, and ``run_key`` (names the run on remote workers)."""

    plan: ExecutionPlan
    policy: ExecutionPolicy
    telemetry: TelemetryOptions
    logs_dir: Path
    env: Mapping[str, str]
    cancel: threading.Event
    monitor: Monitor | None
    reporter: Reporter
    run_key: str


@dataclass(slots=True)
class Finished:
    """A case's result as an executor hands it back. ``logs``: the captured logs' bytes by
    stream when they were captured elsewhere (a remote worker), to be written here; None when
    they are already in the run directory. ``telemetry``: the environment columns and
    sampling rate of the process that measured the case when it was not this one."""

    result: CaseResult
    logs: dict[str, bytes] | None = None
    telemetry: tuple[dict[str, Any], float] | None = None


class Executor(ABC):
    """Runs cases. ``open`` before the first ``submit``, ``close`` at the end (always).

    ``REMOTE``: cases run in worker processes that measure their own GPUs (this process
    measures nothing); else they run here, one per slot of the plan, measured by this
    process's monitor."""

    NAME: ClassVar[str]
    REMOTE: ClassVar[bool] = False

    def __init__(self, context: RunContext) -> None:
        self.context = context

    @classmethod
    def check_available(cls) -> None:
        """Raise ``InputError`` when this executor cannot run here (a missing package)."""
        return None

    @classmethod
    def local_workers(cls, parallel: Any) -> int | None:
        """A remote executor's workers that run on this machine, side by side on its GPUs
        (``Parallelism`` decides: a local cluster's size), or None when they run elsewhere."""
        return None

    def open(self) -> None:  # noqa: B027 - optional hook
        """Start what the executor needs (a thread pool, a cluster)."""

    @abstractmethod
    def capacity(self) -> int:
        """How many cases may be submitted at once now."""

    @abstractmethod
    def submit(self, index: int, case: Case) -> Hashable:
        """Start ``case`` (``index`` in the run's cases); a handle for ``wait``/``result``.
        Calls the reporter's ``case_start`` when the case starts."""

    @abstractmethod
    def wait(self, handles: Iterable[Hashable], timeout_s: float) -> list[Hashable]:
        """The handles among ``handles`` that are done, waiting at most ``timeout_s``."""

    @abstractmethod
    def result(self, handle: Hashable) -> Finished | None:
        """The finished case of a done handle; None when it was interrupted or cancelled."""

    def interrupt(self, handles: Iterable[Hashable]) -> bool:
        """The run was interrupted with ``handles`` running. True: they are abandoned (the
        loop ends now); False (default): they end by themselves, seeing the cancel event."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` started and what the backends hold."""


Commit = Callable[[int, Finished], bool]


def drive(executor: Executor, todo: Sequence[int], cases: Sequence[Case], commit: Commit,
          cancel: threading.Event) -> None:
    """Run the cases at ``todo`` (indices into ``cases``) on ``executor``, at most
    ``capacity()`` at once; ``commit(index, finished)`` each result as it comes in, in input
    order among those done together. ``commit`` returning False stops submitting (the
    running cases still finish and are committed: ``--fail-fast``). The cancel event stops
    submitting too; the running cases end as ``interrupt`` says."""
    pending = iter(todo)
    running: dict[Hashable, int] = {}
    stop = False
    while True:
        while not stop and not cancel.is_set() and len(running) < executor.capacity():
            i = next(pending, None)
            if i is None:
                break
            running[executor.submit(i, cases[i])] = i
        if cancel.is_set() and executor.interrupt(running):
            return
        if not running:
            return
        for handle in sorted(executor.wait(running, 0.2), key=running.__getitem__):
            i = running.pop(handle)
            finished = executor.result(handle)
            if finished is not None and not commit(i, finished):
                stop = True
