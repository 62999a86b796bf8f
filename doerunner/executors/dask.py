"""The Dask executor: each case is a task on a Dask distributed worker.

The worker side is ``run_on_worker``: a top-level function (workers import it from the
installed doerunner) that runs the case with the local runner — its own backend, its own
timeout, its own telemetry on the worker's GPU(s) — writing the logs to a temporary
directory on the worker, and returns a plain payload: the ``CaseResult`` as JSON, the log
files' bytes (capped as written), the telemetry samples as lists, and which worker ran it.
The client (``DaskSession`` and ``campaign._Campaign._dask``) turns the payload back into a
``CaseResult`` and journals it exactly as the local executor does.

Worker loss: the scheduler runs a task whose worker died again on another worker; with
``distributed.scheduler.allowed-failures`` = 1 (set for the LocalCluster srd starts; set it
on your own scheduler for the same rule) a second loss makes the task fail with
``KilledWorker``, which becomes a FAIL row. Interruption: ``interrupt`` sets a per-run
cancel event on every worker (``Client.run``), so the backends kill the running cases as
they do locally; pending tasks are cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from doerunner.backends import BACKENDS, Backend
from doerunner.campaign.runner import RunnerSettings, _definition, run_with_retries
from doerunner.errors import CaseInterrupted
from doerunner.inputs.cases import Case
from doerunner.results import FAIL, CaseResult
from doerunner.telemetry.gpu import GpuSample
from doerunner.telemetry.monitor import Monitor, TelemetryOptions

# Every case's environment names the worker process that started it, so that a worker
# started after a lost one can kill what the lost one left running on its host.
WORKER_VAR = "SRD_DASK_WORKER_PID"
GPU_RESOURCE = "GPU"
# A case whose worker dies is run again once, then FAIL; a worker only holds the task it
# runs (saturation 1.0), so the loss of a worker counts only against its running case.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 1,
                    "distributed.scheduler.worker-saturation": 1.0}

# -- the worker side ---------------------------------------------------------------------------
_lock = threading.Lock()
_monitors: dict[tuple[Any, ...], Monitor] = {}
_backends: dict[tuple[str, int], Backend] = {}
_cancel: dict[str, threading.Event] = {}


def _monitor(topts: dict[str, Any]) -> Monitor:
    """This worker process's telemetry for these options: opened once, kept open (the
    sampler runs for the life of the worker). Inactive where NVML cannot be read."""
    key = tuple(sorted(topts.items()))
    with _lock:
        m = _monitors.get(key)
        if m is None:
            m = Monitor(TelemetryOptions(**topts))
            m.open()  # TelemetryError with mode "on" and no GPU: the task fails with it
            _monitors[key] = m
        return m


def _backend(name: str) -> Backend:
    """A backend instance per worker thread (an hf backend holds one model)."""
    key = (name, threading.get_ident())
    with _lock:
        b = _backends.get(key)
        if b is None:
            b = _backends[key] = BACKENDS[name]()
        return b


def _cancel_event(run_key: str) -> threading.Event:
    with _lock:
        return _cancel.setdefault(run_key, threading.Event())


def cancel_on_worker(run_key: str) -> None:
    """Run on every worker (``Client.run``) when the client is interrupted: the running
    cases of that run are killed by their backends and report themselves interrupted."""
    _cancel_event(run_key).set()


def run_on_worker(case: Case, options: dict[str, Any]) -> dict[str, Any]:
    """Run ``case`` on this worker and return its payload (plain data, see the module doc).

    ``options``: ``warmup_cv``, ``warmup_max``, ``log_cap_bytes``, ``kill_grace_s``,
    ``retries``, ``telemetry`` (``TelemetryOptions`` as a dict), ``env`` (extra environment
    of every execution) and ``run_key`` (names the run's cancel event).
    Returns ``{"interrupted": True}`` when the run was cancelled while the case ran.
    """
    monitor = _monitor(options["telemetry"])
    cancel = _cancel_event(options["run_key"])
    logs = tempfile.mkdtemp(prefix="srd-dask-")
    try:
        settings = RunnerSettings(
            logs, options["warmup_cv"], options["warmup_max"], options["log_cap_bytes"],
            options["kill_grace_s"], cancel, monitor,
            {**options["env"], WORKER_VAR: str(os.getpid())})
        try:
            result = run_with_retries(case, _backend(case.backend), settings,
                                      options["retries"])
        except CaseInterrupted:
            return {"interrupted": True}
        files = {}
        for stream in ("stdout", "stderr"):
            path = os.path.join(logs, f"{case.case_id}.{stream}")
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                files[stream] = f.read()
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return {
        "result": result.to_json(),
        "logs": files,
        "series": [[g, *_sample_row(s)] for g, s in result.series or ()],
        "env": monitor.env if monitor.active else None,
        "sample_hz": monitor.opts.sample_hz,
        "worker": _worker_info(),
    }


def _sample_row(s: GpuSample) -> list[Any]:
    return [s.t, s.power_w, s.energy_mj, s.mem_used_mb, s.util_pct, s.temp_c,
            s.sm_clock_mhz, s.throttle]


def _worker_info() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    with contextlib.suppress(Exception):
        from distributed import get_worker

        info["address"] = get_worker().address
    return info


def kill_orphans_of_dead_workers() -> list[int]:
    """SIGKILL the case processes on this host whose worker process is gone (a lost worker
    leaves its running case behind: the case runs in a session of its own). Linux only."""
    killed = []
    with contextlib.suppress(OSError):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        prefix = f"{WORKER_VAR}=".encode()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    entries = f.read().split(b"\0")
            except OSError:
                continue
            owner = next((e[len(prefix):] for e in entries if e.startswith(prefix)), None)
            if owner is None or not owner.isdigit() or _alive(int(owner)):
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OrphanSweeper(WorkerPlugin):
    """A worker plugin: every worker that starts (also one the nanny restarts after a loss)
    first kills what lost workers left running on its host."""

    name = "srd-orphan-sweeper"

    def setup(self, worker: Any) -> None:
        kill_orphans_of_dead_workers()


# -- the client side ---------------------------------------------------------------------------
@dataclass
class Payload:
    """What a worker sent back for one case, rebuilt on the client."""

    result: CaseResult
    logs: dict[str, bytes]
    env: dict[str, Any] | None
    sample_hz: float


def worker_options(opts: Any, env: dict[str, str], run_key: str) -> dict[str, Any]:
    """The plain options ``run_on_worker`` needs, from the run's ``RunOptions``."""
    return {"warmup_cv": opts.warmup_cv, "warmup_max": opts.warmup_max,
            "log_cap_bytes": opts.log_cap_bytes, "kill_grace_s": opts.kill_grace_s,
            "retries": opts.retries, "telemetry": asdict(opts.telemetry), "env": env,
            "run_key": run_key}


def needs_gpu(case: Case, telemetry_mode: str) -> bool:
    """Whether the case's task asks for the ``GPU`` resource: hf cases, and every case
    when telemetry is on (its energy must be measured on a GPU of its own)."""
    return case.backend == "hf" or telemetry_mode == "on"


class DaskSession:
    """A ``distributed.Client`` on ``scheduler``, or on a LocalCluster of ``n_workers``
    single-threaded worker processes that this session starts and closes."""

    def __init__(self, scheduler: str | None, n_workers: int, gpu_resources: bool) -> None:
        import dask
        from distributed import Client, LocalCluster

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

    def submit(self, case: Case, options: dict[str, Any], gpu: bool) -> Any:
        return self.client.submit(run_on_worker, case, options,
                                  key=f"srd-{case.case_id}-{os.urandom(4).hex()}",
                                  resources={GPU_RESOURCE: 1} if gpu else None)

    def wait(self, futures: Any, timeout_s: float) -> set[Any]:
        """The futures among ``futures`` that are done, waiting at most ``timeout_s``."""
        from distributed import wait

        with contextlib.suppress(TimeoutError):
            wait(list(futures), timeout=timeout_s, return_when="FIRST_COMPLETED")
        return {f for f in futures if f.done()}

    def outcome(self, fut: Any, case: Case, t_submit: float) -> Payload | None:
        """The case's payload, a FAIL payload when its worker was lost too often or the
        task raised, None when it was interrupted or cancelled."""
        from distributed import KilledWorker

        try:
            data = fut.result()
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
        return Payload(result, data["logs"], data["env"], data["sample_hz"])

    def interrupt(self, run_key: str, futures: Any) -> None:
        """Cancel the pending tasks and kill the running cases of the run."""
        with contextlib.suppress(Exception):
            self.client.run(cancel_on_worker, run_key)
        with contextlib.suppress(Exception):
            self.client.cancel(list(futures), force=True)

    def close(self) -> None:
        """Close the client, and the LocalCluster (its worker processes) when it is ours."""
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)

    def __enter__(self) -> DaskSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _failed(case: Case, t_submit: float, message: str) -> Payload:
    now = time.time()
    result = CaseResult(case.case_id, FAIL, t_submit, now, None, message,
                        {"run_seconds": now - t_submit, "errors": 1},
                        fingerprint=case.fingerprint(), definition=_definition(case))
    return Payload(result, {}, None, 0.0)


__all__ = ["DaskSession", "Payload", "cancel_on_worker", "kill_orphans_of_dead_workers",
           "needs_gpu", "run_on_worker", "worker_options"]
