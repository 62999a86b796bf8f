"""The worker side of the Dask executor: what runs inside a Dask distributed worker.

``run_on_worker`` is a top-level function (workers import it from the installed doerunner)
that runs one case with the local runner — its own backend, its own timeout, its own
telemetry on the worker's GPU(s) — writing the logs to a temporary directory on the worker,
and returns a plain payload: the ``CaseResult`` as JSON, the log files' bytes (capped as
written), the telemetry samples as lists, and which worker ran it. ``cancel_on_worker`` sets
a run's cancel event on a worker (``Client.run``), so the backends kill the running cases as
they do locally. ``OrphanSweeper`` makes every worker that starts kill what lost workers
left running on its host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from doerunner.backends import BACKENDS, Backend
from doerunner.campaign.runner import RunnerSettings, run_with_retries
from doerunner.errors import CaseInterrupted
from doerunner.inputs.case import Case
from doerunner.policy import ExecutionPolicy
from doerunner.telemetry.gpu import GpuSample, discover
from doerunner.telemetry.options import TelemetryOptions
from doerunner.telemetry.visible import CUDA_VISIBLE_DEVICES

# Every case's environment names the worker process that started it, so that a worker
# started after a lost one can kill what the lost one left running on its host.
WORKER_VAR = "SRD_DASK_WORKER_PID"

_lock = threading.Lock()
_monitors: dict[TelemetryOptions, Any] = {}
_backends: dict[tuple[str, int], Backend] = {}
_cancel: dict[str, threading.Event] = {}


def _monitor(topts: TelemetryOptions) -> Any:
    """This worker process's telemetry for these options, started once and kept (the
    sampler runs for the life of the worker): a ``Monitor``, or None where no GPU can be
    read (``TelemetryError`` with mode ``on``: the task fails with it)."""
    with _lock:
        if topts not in _monitors:
            gpus, _ = discover(topts.mode, topts.gpus)
            monitor = None
            if gpus is not None:
                from doerunner.telemetry.monitor import Monitor

                monitor = Monitor(topts, gpus).start()
            _monitors[topts] = monitor
        return _monitors[topts]


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


def run_on_worker(case: Case, policy: ExecutionPolicy, telemetry: TelemetryOptions,
                  env: dict[str, str], run_key: str) -> dict[str, Any]:
    """Run ``case`` on this worker with the run's ``policy`` and ``telemetry`` options,
    ``env`` added to every execution's environment, and return its payload (plain data,
    see the module doc). ``run_key`` names the run's cancel event. Returns
    ``{"interrupted": True}`` when the run was cancelled while the case ran.
    """
    monitor = _monitor(telemetry)
    cancel = _cancel_event(run_key)
    logs = tempfile.mkdtemp(prefix="srd-dask-")
    try:
        own = {WORKER_VAR: str(os.getpid())}
        if monitor is not None and monitor.gpus is not None:
            # The plan's rule on a worker: the case gets the GPUs this worker measures.
            own[CUDA_VISIBLE_DEVICES] = ",".join(
                d.info.token or d.info.uuid for d in monitor.gpus.devices)
        # No host-wide windows on a worker: workers may share a host (FORMAT.md §3).
        settings = RunnerSettings(
            logs, policy, cancel, monitor, {**env, **own}, sample_s=1.0 / telemetry.sample_hz,
            prices=(telemetry.carbon_g_per_kwh, telemetry.price_per_kwh))
        try:
            result = run_with_retries(case, _backend(case.backend), settings)
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
        "env": monitor.env if monitor is not None else None,
        "sample_hz": telemetry.sample_hz,
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


