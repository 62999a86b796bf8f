"""The local executor: cases run in this process, one per slot of the plan.

One slot (the default): each case runs in the calling thread, after the ``--cooldown`` wait,
and the progress bar may show what happens inside it. Several slots (``--jobs``,
``--per-gpu``): each case runs in a thread of its own (the work is in child processes), with
its slot's environment and measured GPUs, and a backend instance per slot (an hf worker
holds one model on one GPU: cases side by side never share one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

from doerunner.backends import BACKENDS, Backend
from doerunner.campaign.runner import RunnerSettings, run_with_retries
from doerunner.errors import CaseInterrupted
from doerunner.executors.base import Executor, Finished, RunContext
from doerunner.inputs.case import Case
from doerunner.results import CaseResult

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor


class _Ran:
    """The handle of a case run in the calling thread: already done."""

    __slots__ = ("result",)

    def __init__(self, result: CaseResult | None) -> None:
        self.result = result


class LocalExecutor(Executor):
    """Cases in this process: in the calling thread with one slot, else a thread per slot."""

    NAME = "local"

    def __init__(self, context: RunContext) -> None:
        super().__init__(context)
        slots = context.plan.slots
        # One case at a time, in this thread (the --cooldown wait and the in-case progress
        # are for this mode): a per-GPU run on one GPU still runs its case in a slot thread.
        self.serial = context.plan.mode == "serial"
        reporter = context.reporter
        tel = context.telemetry
        host = None
        from doerunner.telemetry.host import host_meter, measures_host

        if measures_host(context.plan.mode, context.plan.telemetry, len(context.plan.slots)):
            host = host_meter()
        # The host series go beside the GPU ones, in the same files: with GPU time series.
        monitor = context.monitor
        series = tel.timeseries and monitor is not None and monitor.active
        self.settings = [RunnerSettings(
            context.logs_dir, context.policy, context.cancel, context.monitor,
            {**context.env, **slot.environment}, slot.measured,
            reporter.case_progress if self.serial else None,
            1.0 / tel.sample_hz, host, series, (tel.carbon_g_per_kwh, tel.price_per_kwh))
            for slot in slots]
        self.free = list(range(len(slots)))
        self.backends: dict[tuple[str, int], Backend] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.slot_of: dict[Future[Any], int] = {}

    def open(self) -> None:
        if not self.serial:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(len(self.settings), thread_name_prefix="srd-case")

    def capacity(self) -> int:
        return len(self.settings)

    def submit(self, index: int, case: Case) -> Hashable:
        slot = self.free.pop(0)
        self._backend(case.backend, slot)  # created here, in this thread, not in the pool's
        if self.serial:
            monitor = self.context.monitor
            if monitor is not None:
                monitor.cooldown(self.context.cancel)
            self.context.reporter.case_start(case)
            ran = _Ran(self._run(case, slot))
            self.free.append(slot)
            return ran
        self.context.reporter.case_start(case)
        assert self.pool is not None
        fut = self.pool.submit(self._run, case, slot)
        self.slot_of[fut] = slot
        return fut

    def wait(self, handles: Iterable[Hashable], timeout_s: float) -> list[Hashable]:
        if self.serial:
            return list(handles)
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(handles), timeout=timeout_s,  # type: ignore[arg-type]
                       return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Hashable) -> Finished | None:
        if isinstance(handle, _Ran):
            result = handle.result
        else:
            self.free.append(self.slot_of.pop(handle))  # type: ignore[arg-type]
            result = handle.result()  # type: ignore[attr-defined]
        return None if result is None else Finished(result)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for b in self.backends.values():
            with contextlib.suppress(Exception):
                b.close()

    # -- one case ----------------------------------------------------------------------------
    def _run(self, case: Case, slot: int) -> CaseResult | None:
        """The case's result (retried per the policy); None when the run was interrupted."""
        retries = self.context.policy.retries
        reporter = self.context.reporter

        def retrying(result: CaseResult, attempt: int) -> None:
            reporter.info(f"{case.case_id}: {result.status} ({result.message}); "
                          f"retry {attempt} of {retries}")

        try:
            return run_with_retries(case, self._backend(case.backend, slot),
                                    self.settings[slot], retrying)
        except CaseInterrupted:
            return None

    def _backend(self, name: str, slot: int) -> Backend:
        """The backend instance of ``slot``."""
        b = self.backends.get((name, slot))
        if b is None:
            b = self.backends[(name, slot)] = BACKENDS[name]()
        return b
