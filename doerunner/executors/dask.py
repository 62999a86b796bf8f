"""The Dask executor: each case is a task on a Dask distributed worker.

The worker side is ``executors.dask_worker``. Here, the client side: ``DaskSession`` holds a
``distributed.Client`` on an existing scheduler or on a LocalCluster that it starts and
closes; ``DaskExecutor`` submits one task per worker thread at a time and turns each task's
payload back into a ``CaseResult`` with its logs and telemetry, which the campaign journals
exactly as the local executor's.

Worker loss: the scheduler runs a task whose worker died again on another worker; with
``distributed.scheduler.allowed-failures`` = 1 (set for the LocalCluster srd starts; set it
on your own scheduler for the same rule) a second loss makes the task fail with
``KilledWorker``, which becomes a FAIL row. Interruption: pending tasks are cancelled and
every worker is told to kill the run's running cases; a LocalCluster is then closed and what
it left running on this machine is killed. ``distributed`` is imported when the executor
opens, so the registry costs nothing where Dask is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Hashable, Iterable
from typing import Any

from doerunner.errors import InputError
from doerunner.executors.base import Executor, Finished, RunContext
from doerunner.inputs.case import Case
from doerunner.process import tree as proctree
from doerunner.results import FAIL, CaseResult
from doerunner.telemetry.gpu import GpuSample

GPU_RESOURCE = "GPU"
# A case whose worker dies is run again once, then FAIL; a worker only holds the task it
# runs (saturation 1.0), so the loss of a worker counts only against its running case.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 1,
                    "distributed.scheduler.worker-saturation": 1.0}


class DaskSession:
    """A ``distributed.Client`` on ``scheduler``, or on a LocalCluster of ``n_workers``
    single-threaded worker processes that this session starts and closes."""

    def __init__(self, scheduler: str | None, n_workers: int, gpu_resources: bool) -> None:
        import logging

        import dask
        from distributed import Client, LocalCluster

        from doerunner.executors.dask_worker import OrphanSweeper

        self.cluster = None
        if scheduler is None:
            # The scheduler of a LocalCluster lives in this process and reads this now.
            with dask.config.set(SCHEDULER_CONFIG):
                self.cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR,
                    resources={GPU_RESOURCE: 1} if gpu_resources else None)
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler, timeout="30s")
        self.client.register_plugin(OrphanSweeper())
        self.address = self.client.scheduler.address
        self._workers: dict[str, Any] = {}
        self._info_t = -1e9

    @property
    def workers(self) -> int:
        """Worker processes now connected."""
        return len(self._info()) or 1

    @property
    def threads(self) -> int:
        """Worker threads now connected: how many tasks srd keeps submitted. No more, so
        that a worker only ever holds the case it runs (the scheduler would assign more to
        busy workers at once, and a worker's loss counts against every task it holds)."""
        return sum(w.get("nthreads", 1) for w in self._info().values()) or 1

    def _info(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._info_t > 1.0:  # a round trip to the scheduler: at most once a second
            self._workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            self._info_t = now
        return self._workers

    def close(self) -> None:
        """Close the client, and the LocalCluster (its worker processes) when it is ours."""
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)


class DaskExecutor(Executor):
    """Cases as tasks on Dask workers (see the module docstring)."""

    NAME = "dask"
    REMOTE = True

    def __init__(self, context: RunContext) -> None:
        super().__init__(context)
        self.session: DaskSession | None = None
        self.submitted: dict[Any, tuple[Case, float]] = {}
        self.interrupted = False

    @classmethod
    def check_available(cls) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise InputError("--executor dask needs Dask distributed: "
                             "pip install 'doerunner[dask]'")

    @classmethod
    def local_workers(cls, parallel: Any) -> int | None:
        """The LocalCluster's workers (``--jobs``, else one per CPU); None with a
        scheduler (the cluster's own workers)."""
        if parallel.scheduler is not None:
            return None
        return parallel.jobs if parallel.jobs > 1 else (os.cpu_count() or 1)

    def open(self) -> None:
        plan = self.context.plan
        try:
            self.session = DaskSession(plan.scheduler, plan.workers or 1, plan.gpu_tasks)
        except OSError as e:  # distributed's connection errors (timeouts too) are OSErrors
            if plan.scheduler is None:
                raise
            raise InputError(f"--scheduler {plan.scheduler}: cannot reach the Dask "
                             f"scheduler: {e}") from None
        where = "a LocalCluster" if self.session.cluster is not None else plan.scheduler
        self.context.reporter.info(f"dask: {self.session.workers} worker(s) on {where} "
                                   f"({self.session.address})")

    def capacity(self) -> int:
        assert self.session is not None
        return self.session.threads

    def submit(self, index: int, case: Case) -> Hashable:
        from doerunner.executors.dask_worker import run_on_worker

        assert self.session is not None
        ctx = self.context
        self.context.reporter.case_start(case)
        fut = self.session.client.submit(
            run_on_worker, case, ctx.policy, ctx.telemetry.with_mode(ctx.plan.telemetry),
            dict(ctx.env), ctx.run_key, key=f"srd-{case.case_id}-{os.urandom(4).hex()}",
            resources={GPU_RESOURCE: 1} if ctx.plan.asks_gpu(case) else None)
        self.submitted[fut] = (case, time.time())
        return fut

    def wait(self, handles: Iterable[Hashable], timeout_s: float) -> list[Hashable]:
        from distributed import wait

        futures = list(handles)
        with contextlib.suppress(TimeoutError):
            wait(futures, timeout=timeout_s, return_when="FIRST_COMPLETED")
        return [f for f in futures if f.done()]  # type: ignore[attr-defined]

    def result(self, handle: Hashable) -> Finished | None:
        """The case's payload, a FAIL when its worker was lost too often or the task
        raised, None when it was interrupted or cancelled."""
        from distributed import KilledWorker

        case, t_submit = self.submitted.pop(handle)
        try:
            data = handle.result()  # type: ignore[attr-defined]
        except KilledWorker as e:
            last = getattr(e.last_worker, "address", e.last_worker)
            times = {2: "twice"}.get(e.allowed_failures + 1, f"{e.allowed_failures + 1} times")
            return _failed(case, t_submit, f"worker lost {times} while running the case "
                                           f"({last})")
        except Exception as e:
            if type(e).__name__ == "CancelledError":
                return None
            first = str(e).splitlines()[0] if str(e) else ""
            return _failed(case, t_submit, f"error on the worker: {type(e).__name__}: {first}")
        if data.get("interrupted"):
            return None
        result = CaseResult.from_json(data["result"])
        if data["series"]:
            result.series = [(row[0], GpuSample(*row[1:])) for row in data["series"]]
        result.definition = {**(result.definition or {}), "worker": data["worker"]}
        telemetry = (data["env"], data["sample_hz"]) if data["env"] is not None else None
        return Finished(result, data["logs"], telemetry)

    def interrupt(self, handles: Iterable[Hashable]) -> bool:
        """Cancel the pending tasks and kill the running cases of the run."""
        from doerunner.executors.dask_worker import cancel_on_worker

        assert self.session is not None
        self.interrupted = True
        with contextlib.suppress(Exception):
            self.session.client.run(cancel_on_worker, self.context.run_key)
        with contextlib.suppress(Exception):
            self.session.client.cancel(list(handles), force=True)
        return True

    def close(self) -> None:
        if self.session is None:
            return
        if self.interrupted:
            self.context.reporter.info("dask: pending cases cancelled, running cases killed")
        self.session.close()
        if self.session.cluster is not None:
            # Belt and braces: what the closed workers (or lost ones) left running here.
            proctree.kill_leftovers(self.context.env[proctree.RUN_DIR_VAR])


def _failed(case: Case, t_submit: float, message: str) -> Finished:
    now = time.time()
    result = CaseResult(case.case_id, FAIL, t_submit, now, None, message,
                        {"run_seconds": now - t_submit, "errors": 1},
                        fingerprint=case.fingerprint(), definition=case.definition())
    return Finished(result, {}, None)
