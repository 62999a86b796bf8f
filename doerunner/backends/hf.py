"""The Hugging Face transformers backend (``backend=hf``): LLM generation latency,
throughput and energy per token.

Parameters (cells of the case's row; an empty cell means the default):

- ``model``: a local directory or a Hub id (offline works from a local directory). Required.
- ``prompt`` or ``prompts_file``: one prompt, or a UTF-8 file with one prompt per line (blank
  lines skipped; a relative path is relative to the current directory). One is required.
- ``num_prompts``: measured requests per execution, prompts cycled (default: the prompts given).
- ``batch_size``: requests per ``generate`` call, left-padded (default 1).
- ``max_new_tokens`` (default 32), ``min_new_tokens`` (default 0): generated tokens per request.
- ``dtype``: ``float32``, ``float16``, ``bfloat16`` or ``auto`` (the checkpoint's; default).
- ``device``: ``cpu``, ``cuda`` or ``cuda:N`` (default: cuda when available, else cpu).
- ``do_sample``: 1/true/yes samples, 0/false/no decodes greedily (default false).
- ``temperature``, ``top_p``, ``top_k``: sampling settings, used with ``do_sample``.
- ``seed``: ``torch.manual_seed`` before each warm-up and each execution (default 0).
- ``attn_implementation``: e.g. ``eager``, ``sdpa``, ``flash_attention_2`` (default:
  transformers' choice).

Other parameters are labels, but a name close to one of these (``max_new_token``,
``batchsize``) is an input error with a suggestion, so a typo never silently runs the default.

How it runs. Generation happens in a worker process (``hf_worker``) started on first use in a
process group of its own and kept for the whole run: it keeps loaded models keyed by (model,
dtype, device, attn_implementation), so a sweep over batch sizes loads its model once
(``model_load_s`` is the load time on the first execution of the case that loaded it, 0.0 when
the model was already loaded; ``ext_model_loads`` is how many loads the current worker has done
and ``ext_worker_pid`` its pid). Starting the worker, loading the model and tokenising the
prompts are the backend's preparation, done before the warm-up and before any measurement
window opens (so the window, ``energy_per_token_j`` and ``tokens_per_s`` cover the same work);
they may take up to ``max(timeout_s, 300)`` seconds and are not part of an execution's
``wall_s``. On CUDA, ``ext_device_uuid`` is the UUID of the device the model is on: srd checks
it is a GPU the window measured (if not, a warning, and energy and power are left empty). An
execution (every measured prompt) or a single warm-up request that takes longer than
``timeout_s`` gets the worker's whole process group SIGKILLed and is TIMEOUT ``timed out after
N s``; a worker that dies is a FAIL; either way the next case starts a new worker. CUDA out of
memory is FAIL ``CUDA out of memory (batch_size=N)`` and the worker stays up; any other CUDA
error leaves CUDA unusable in that process, so the worker exits and the next case starts a new
one. The worker's own output goes to ``logs/hf_worker.log`` in the run directory.

Warm-up is per request (one batch ``generate``): ``warmup=N`` runs N requests; ``auto`` (the
default for hf rows) runs until the coefficient of variation of the last 5 request latencies
is below ``--warmup-cv``, at most ``--warmup-max`` requests.

Metrics (seconds, SI units) over the measured prompts: ``p50``, ``p95``, ``p99``,
``latency_avg`` (per request; the requests of a batch share its latency), ``ttft_p50``,
``ttft_p95`` (time to first token: a forward hook stamps the end of the prefill pass, which
produces the first token's logits, synchronised on CUDA; it also counts the decoding steps),
``tpot_mean`` (time per output token after the first), ``throughput_rps`` and ``tokens_per_s``
(over ``generate_s``, the time spent in ``generate``; tokenising is done before the clock
starts), ``tokens_in``, ``tokens_out`` (padding excluded), ``batch_effective_size``, and
``mem_peak_mb`` (the worker's peak resident MiB, on CPU) or ``gpu_mem_peak_mb`` (torch's
allocator peak, MiB, on CUDA). With GPU telemetry the runner adds ``energy_per_token_j``.

This module never imports torch or transformers (srd starts fast and validates without them);
only the worker does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import IO, Any

from doerunner.backends.base import Backend, ExecContext, WarmupReport, WarmupSpec
from doerunner.backends.hf_job import parse_job
from doerunner.errors import CaseInterrupted
from doerunner.inputs.case import Case
from doerunner.process import tree as proctree
from doerunner.process.accounting import ShareMeter
from doerunner.results import FAIL, OK, TIMEOUT, Execution, Metric

MISSING_EXTRA = ("backend 'hf' needs the hf extra: pip install 'doerunner[hf]' "
                 "(install torch first: pip install torch==2.13.0)")
LOAD_TIMEOUT_MIN_S = 300.0  # starting the worker and loading a model: max(timeout_s, this)
_POLL_S = 0.1  # how often the cancel event is looked at while the worker works
_LOG_NAME = "hf_worker.log"


@cache
def _extra_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


class WorkerGone(Exception):
    """The worker exited or closed its output; the message says how."""


class _Timeout(Exception):
    pass


class _Worker:
    """The worker process seen from srd: start, one-line JSON messages, kill."""

    def __init__(self, env: dict[str, str], log_path: Path | None) -> None:
        pkg_root = str(Path(__file__).resolve().parents[2])
        full = dict(os.environ)
        full.update(env)
        full["PYTHONPATH"] = pkg_root + (os.pathsep + full["PYTHONPATH"]
                                         if full.get("PYTHONPATH") else "")
        full.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.log_path = log_path
        log: IO[bytes] | int | None = None
        if log_path is not None:
            with suppress(OSError):
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            with proctree.spawning() as protected:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "doerunner.backends.hf_worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=full,
                    start_new_session=True)
                protected.add(self.proc.pid)
        finally:
            if log is not None:
                log.close()
        proctree.register_group(self.proc.pid)
        self.pid = self.proc.pid
        self.buf = b""
        self.ready = False
        self.loads = 0
        self.device_uuid: str | None = None  # the CUDA device of the last model loaded

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerGone(self._how_it_ended()) from None

    def recv(self, limit_s: float, cancel: Any, case_id: str,
             tick: Callable[[], None] | None = None) -> dict[str, Any]:
        """The next message, waiting at most ``limit_s`` seconds (``tick`` is called at each
        wake-up, every ``_POLL_S`` at least). Raises ``_Timeout``, ``WorkerGone``, or
        ``CaseInterrupted`` when ``cancel`` is set (worker killed)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + limit_s
        while b"\n" not in self.buf:
            if tick is not None:
                tick()
            if cancel.is_set():
                self.kill()
                raise CaseInterrupted(case_id)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            ready, _, _ = select.select([fd], [], [], min(left, _POLL_S))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise WorkerGone(self._how_it_ended())
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            raise WorkerGone(f"hf worker wrote a garbled message: {line[:80]!r}") from None

    def _how_it_ended(self) -> str:
        try:
            code = self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            return "hf worker closed its output unexpectedly"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"killed by {name}"
        else:
            how = f"exit code {code}"
        where = f"; see {self.log_path}" if self.log_path else ""
        return f"hf worker died ({how}){where}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker's whole process group and reap it."""
        with suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        with suppress(OSError):
            self.proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        self._forget()

    def stop(self) -> None:
        """Ask the worker to exit; kill it when it does not within 5 s."""
        with suppress(Exception):
            self.send({"op": "exit"})
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        with suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)  # anything it started
        self._forget()

    def _forget(self) -> None:
        proctree.unregister_group(self.pid)
        proctree.unprotect(self.pid)
        for f in (self.proc.stdin, self.proc.stdout):
            with suppress(OSError):
                if f is not None:
                    f.close()


class HfBackend(Backend):
    """Runs LLM generation through transformers in a kept worker process (module docstring)."""

    NAME = "hf"
    USES_GPU = True
    DEFAULT_WARMUP = "auto"
    REPORT_RESPONSE = "tokens_per_s"

    def __init__(self) -> None:
        self.worker: _Worker | None = None
        self.env: dict[str, str] = {}
        self.carried_load_s: dict[str, float] = {}  # case id -> load time spent in warm-up
        self.reported_case: str | None = None  # the case whose model_load_s was reported

    # -- validation ----------------------------------------------------------------------------
    def check(self, case: Case) -> list[tuple[str, str]]:
        if not _extra_installed():
            return [("backend", MISSING_EXTRA)]
        return parse_job(case)[1]

    # -- the worker ----------------------------------------------------------------------------
    def _ensure_worker(self, ctx: ExecContext, case_id: str) -> _Worker:
        env = dict(ctx.env)
        if self.worker is not None and (not self.worker.alive() or env != self.env):
            self.worker.kill()
            self.worker = None
        if self.worker is None:
            log = Path(ctx.stderr_path).parent / _LOG_NAME if ctx.stderr_path else None
            self.worker = _Worker(env, log)
            self.env = env
        w = self.worker
        if not w.ready:
            msg = self._recv(w, ctx, _load_limit(ctx), case_id)
            if not msg.get("ready"):
                raise WorkerGone(f"hf worker did not start: {msg}")
            w.ready = True
        return w

    def _recv(self, w: _Worker, ctx: ExecContext, limit_s: float, case_id: str,
              tick: Callable[[], None] | None = None) -> dict[str, Any]:
        return w.recv(limit_s, ctx.cancel, case_id, tick)

    def _discard_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def _load(self, case: Case, ctx: ExecContext, job: dict[str, Any],
              op: str = "load") -> float | Execution:
        """Make sure the case's model is loaded (``prepare``: and its prompts tokenised):
        its load seconds (0.0 when it already was), or the failed ``Execution`` (FAIL, or
        TIMEOUT after ``max(timeout_s, 300)`` s)."""
        t_start, t0 = time.time(), time.perf_counter()
        limit = _load_limit(ctx)
        try:
            w = self._ensure_worker(ctx, case.case_id)
            if op == "prepare":
                w.send({"op": "prepare", "job": job})
            else:
                w.send({"op": "load", **{k: job[k] for k in ("model", "dtype", "device",
                                                             "attn_implementation")}})
            reply = self._recv(w, ctx, limit - (time.perf_counter() - t0), case.case_id)
        except _Timeout:
            self._discard_worker()
            return _failure(TIMEOUT, f"timed out after {limit:g} s loading the model",
                            t_start, limit)
        except WorkerGone as e:
            self._discard_worker()
            return _failure(FAIL, str(e), t_start, time.perf_counter() - t0)
        if not reply.get("ok"):
            return _failure(FAIL, self._error(reply), t_start, time.perf_counter() - t0)
        w.loads = int(reply.get("loads", w.loads))
        w.device_uuid = reply.get("device_uuid")
        return float(reply.get("load_s", 0.0))

    def _error(self, reply: dict[str, Any], prefix: str = "") -> str:
        """A failed reply's message; after a CUDA error the worker has exited: forget it,
        and the next case starts a new one."""
        error = f"{prefix}{reply.get('error')}"
        if reply.get("fatal"):
            self._discard_worker()
            error += " (the hf worker exited: CUDA is unusable after this error)"
        return error

    # -- preparation ---------------------------------------------------------------------------
    def prepare(self, case: Case, ctx: ExecContext) -> Execution | None:
        """Start the worker, load the case's model and tokenise its prompts, before any
        warm-up or measurement window, so that the window and ``tokens_per_s`` cover the
        same work."""
        job, problems = parse_job(case)
        if problems:
            return _failure(FAIL, problems[0][1], time.time(), 0.0)
        loaded = self._load(case, ctx, job, "prepare")
        self.reported_case = None
        if isinstance(loaded, Execution):
            return loaded
        self.carried_load_s[case.case_id] = loaded
        return None

    # -- warm-up -------------------------------------------------------------------------------
    def warmup(self, case: Case, ctx: ExecContext, spec: WarmupSpec) -> WarmupReport | None:
        """Warm-up requests in the worker (one batch ``generate`` each); a failure is the
        report's ``failure``."""
        job, problems = parse_job(case)
        if problems:
            return WarmupReport(0, failure=_failure(FAIL, problems[0][1], time.time(), 0.0))
        loaded = self._load(case, ctx, job)
        if isinstance(loaded, Execution):
            return WarmupReport(0, failure=loaded)
        self.carried_load_s[case.case_id] = self.carried_load_s.get(case.case_id, 0.0) + loaded
        assert self.worker is not None
        w = self.worker
        t_start, t0 = time.time(), time.perf_counter()
        steps = 0
        try:
            w.send({"op": "warmup", "job": job, "count": spec.count, "cv": spec.cv,
                    "window": spec.window, "max_runs": spec.max_runs})
            while True:
                msg = self._recv(w, ctx, ctx.timeout_s, case.case_id)
                if "step" in msg:
                    steps = int(msg["step"])
                    if ctx.progress is not None:
                        ctx.progress("warm-up request", steps, int(msg.get("of", 0)))
                    continue
                break
        except _Timeout:
            self._discard_worker()
            return WarmupReport(steps, failure=_failure(
                TIMEOUT, f"timed out after {ctx.timeout_s:g} s (warm-up request {steps + 1})",
                t_start, ctx.timeout_s))
        except WorkerGone as e:
            self._discard_worker()
            return WarmupReport(steps, failure=_failure(
                FAIL, f"warm-up request {steps + 1}: {e}", t_start, time.perf_counter() - t0))
        if not msg.get("ok"):
            return WarmupReport(steps, failure=_failure(
                FAIL, self._error(msg, f"warm-up request {steps + 1}: "), t_start,
                time.perf_counter() - t0))
        runs, converged, final_cv = int(msg["runs"]), msg.get("converged"), msg.get("final_cv")
        warnings = []
        if converged is False:
            cv_text = f"{final_cv:.3f}" if final_cv is not None else "inf"
            warnings.append(f"warm-up did not converge: CV {cv_text} after {runs} requests "
                            f"(target {spec.cv:g})")
        return WarmupReport(runs, converged, final_cv, warnings)

    # -- one execution -------------------------------------------------------------------------
    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        job, problems = parse_job(case)
        if problems:
            return _failure(FAIL, problems[0][1], time.time(), 0.0)
        loaded = self._load(case, ctx, job)
        if isinstance(loaded, Execution):
            return loaded
        assert self.worker is not None
        w = self.worker
        share = ShareMeter(w.pid)  # the worker's share of the host in this execution
        look = share.ticker(ctx.sample_s)
        t_start, t0 = time.time(), time.perf_counter()
        try:
            w.send({"op": "run", "job": job})
            while True:
                reply = self._recv(w, ctx, ctx.timeout_s - (time.perf_counter() - t0),
                                   case.case_id, look)
                if "batch" not in reply:
                    break
                if ctx.progress is not None:
                    ctx.progress("batch", int(reply["batch"]), int(reply.get("of", 0)))
        except _Timeout:
            self._discard_worker()
            return _failure(TIMEOUT, f"timed out after {ctx.timeout_s:g} s", t_start,
                            ctx.timeout_s)
        except WorkerGone as e:
            self._discard_worker()
            return _failure(FAIL, str(e), t_start, time.perf_counter() - t0)
        wall_s = time.perf_counter() - t0
        if not reply.get("ok"):
            return _failure(FAIL, self._error(reply), t_start, wall_s)
        metrics: dict[str, Metric] = dict(reply["metrics"])
        if self.reported_case != case.case_id:
            # Reported once per case: a mean over repetitions would dilute it.
            self.reported_case = case.case_id
            metrics["model_load_s"] = self.carried_load_s.pop(case.case_id, 0.0) + loaded
        metrics["ext_model_loads"] = str(w.loads)
        metrics["ext_worker_pid"] = str(w.pid)
        if w.device_uuid:
            metrics["ext_device_uuid"] = w.device_uuid  # the runner checks it is measured
        return Execution(OK, wall_s, t_start, t_start + wall_s, None, "", metrics,
                         host=share.finish(wall_s))

    def close(self) -> None:
        """Stop the worker (asked to exit; killed after 5 s)."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


def _load_limit(ctx: ExecContext) -> float:
    return max(ctx.timeout_s, LOAD_TIMEOUT_MIN_S)


def _failure(status: str, message: str, t_start: float, wall_s: float) -> Execution:
    return Execution(status, wall_s, t_start, t_start + wall_s, None, message,
                     {"errors": 1})
