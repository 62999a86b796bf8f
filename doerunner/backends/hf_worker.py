"""The worker process of ``backend=hf``: loads models and runs ``generate``, on request.

Run by ``HfBackend`` as ``python -m doerunner.backends.hf_worker`` in a process group of its
own, so srd can SIGKILL it at a case's timeout (a hung CUDA call cannot be interrupted from a
thread). Only this module imports torch and transformers.

Protocol: one JSON object per line. srd writes requests to the worker's stdin; the worker
answers on its original stdout (descriptor 1 is pointed at stderr at start-up, so whatever a
library prints can never corrupt the protocol). The first line the worker writes is
``{"ready": true, "pid": N}``. Requests, each answered by one final object holding ``"ok"``:

- ``{"op": "load", "model", "dtype", "device", "attn_implementation"}`` →
  ``{"ok": true, "load_s": s, "loads": n, "device": "cpu", "device_uuid": null | "GPU-…"}``.
  Loaded models are kept, keyed by
  (model, dtype, device, attn_implementation): a sweep over batch sizes loads the model once.
  ``load_s`` is 0.0 when the model was already loaded; ``loads`` counts this worker's loads.
- ``{"op": "prepare", "job": {...}}`` → the same answer as ``load``, after loading the job's
  model and tokenising its prompts (kept for its warm-up and runs): srd sends it before the
  measurement window opens.
- ``{"op": "warmup", "job": {...}, "count": N | "auto", "cv", "window", "max_runs"}`` → one
  ``{"step": i, "of": N, "latency_s": s}`` line per warm-up request (one batch ``generate``), then
  ``{"ok": true, "runs", "converged", "final_cv"}``.
- ``{"op": "run", "job": {...}}`` → one ``{"batch": i, "of": n}`` line per finished batch,
  then ``{"ok": true, "metrics": {...}}`` (see ``_measure``).

A failure is ``{"ok": false, "error": "one line"}``; CUDA out of memory is
``CUDA out of memory (batch_size=N)`` and the memory is released before answering. Any other
CUDA error leaves CUDA unusable in this process: the answer has ``"fatal": true`` and the
worker exits right after it.
The worker exits (at once, without the interpreter's teardown) on ``{"op": "exit"}``, when
its stdin closes or when its parent dies.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

import torch

from doerunner.backends.hf_generate import (
    OOM_ERRORS,
    Loaded,
    LoadError,
    OomError,
    cv_of,
    device_uuid,
    free_memory,
    generate_batch,
    is_fatal_cuda_error,
    load_model,
    make_batches,
    measure_job,
    one_line,
    resolve_device,
    seed_job,
)

MAX_MODELS = 2  # loaded models kept at once (least recently used evicted first)


class Worker:
    def __init__(self) -> None:
        self.models: OrderedDict[tuple[str, ...], Loaded] = OrderedDict()
        self.loads = 0
        # The current job's tokenised batches, made by "prepare" (before the measurement
        # window) and reused by its warm-up and runs; dropped with their model.
        self.batches: dict[str, tuple[tuple[str, ...], list[Any]]] = {}

    def _answer(self, key: tuple[str, ...], load_s: float) -> dict[str, Any]:
        lm = self.models[key]
        return {"ok": True, "load_s": load_s, "loads": self.loads, "device": str(lm.device),
                "device_uuid": device_uuid(lm.device)}

    # -- models ------------------------------------------------------------------------------
    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        key = (req["model"], req["dtype"], req["device"], req.get("attn_implementation") or "")
        if key in self.models:
            self.models.move_to_end(key)
            return self._answer(key, 0.0)
        device = resolve_device(req["device"])
        while len(self.models) >= MAX_MODELS:
            self._drop(next(iter(self.models)))
            free_memory(device)
        t0 = time.perf_counter()
        try:
            loaded = load_model(req["model"], req["dtype"], device, req.get("attn_implementation"))
        except OOM_ERRORS:
            # Other models may hold the memory this one needs: drop them and try once more.
            for other in list(self.models):
                self._drop(other)
            free_memory(device)
            loaded = load_model(req["model"], req["dtype"], device, req.get("attn_implementation"))
        load_s = time.perf_counter() - t0
        self.models[key] = loaded
        self.loads += 1
        print(f"hf worker {os.getpid()}: loaded {req['model']!r} ({req['dtype']}, {device}) "
              f"in {load_s:.3f} s; {self.loads} load(s) so far", file=sys.stderr, flush=True)
        return self._answer(key, load_s)

    def _drop(self, key: tuple[str, ...]) -> None:
        self.models.pop(key, None)
        for job_key in [k for k, (model, _) in self.batches.items() if model == key]:
            del self.batches[job_key]

    def _loaded(self, job: dict[str, Any]) -> Loaded:
        key = (job["model"], job["dtype"], job["device"], job.get("attn_implementation") or "")
        if key not in self.models:
            self.load(job)
        return self.models[key]

    def _batches(self, lm: Loaded, job: dict[str, Any]) -> list[Any]:
        """The job's prompts tokenised in batches on the device (cached per job)."""
        key = (job["model"], job["dtype"], job["device"], job.get("attn_implementation") or "")
        job_key = json.dumps(job, sort_keys=True)
        if job_key not in self.batches:
            # Only the current job's: tensors kept on the GPU would count in the next
            # cases' gpu_mem_peak_mb and take memory from their batches.
            self.batches = {job_key: (key, make_batches(lm, job))}
        return self.batches[job_key][1]

    def prepare(self, req: dict[str, Any]) -> dict[str, Any]:
        """Load the job's model and tokenise its prompts: what must not be measured."""
        job = req["job"]
        reply = self.load(job)
        self._batches(self._loaded(job), job)
        return reply

    # -- requests ----------------------------------------------------------------------------
    def warmup(self, req: dict[str, Any], send: Any) -> dict[str, Any]:
        """Warm-up requests (one batch each) until ``count`` ran, or for ``"auto"`` until the
        CV of the last ``window`` latencies is below ``cv`` (at most ``max_runs``)."""
        job = req["job"]
        lm = self._loaded(job)
        batches = self._batches(lm, job)
        count, window = req["count"], int(req["window"])
        auto = count == "auto"
        limit = int(req["max_runs"]) if auto else int(count)
        seed_job(job)
        latencies: list[float] = []
        final_cv: float | None = None
        converged = False if auto else None
        for i in range(limit):
            res = generate_batch(lm, job, batches[i % len(batches)])
            latencies.append(res.latency_s)
            send({"step": i + 1, "of": limit, "latency_s": res.latency_s})
            if auto and len(latencies) >= window:
                final_cv = cv_of(latencies[-window:])
                if final_cv < float(req["cv"]):
                    converged = True
                    break
        return {"ok": True, "runs": len(latencies), "converged": converged,
                "final_cv": final_cv if final_cv is None or math.isfinite(final_cv) else None}

    def run(self, req: dict[str, Any], send: Any) -> dict[str, Any]:
        job = req["job"]
        lm = self._loaded(job)
        return {"ok": True,
                "metrics": measure_job(lm, job, lambda i, n: send({"batch": i, "of": n}),
                                       self._batches(lm, job))}


# -- the loop ----------------------------------------------------------------------------------
def _watch_parent(ppid: int) -> None:
    """Exit when srd dies without closing our stdin (e.g. SIGKILLed mid-generation)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != ppid:
            os._exit(0)


def main() -> None:
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything printed by a library lands in the log, never in the protocol
    lock = threading.Lock()

    def send(obj: dict[str, Any]) -> None:
        with lock:
            proto.write(json.dumps(obj).encode() + b"\n")

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    worker = Worker()
    send({"ready": True, "pid": os.getpid()})
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "exit":
            break
        try:
            if op == "load":
                reply = worker.load(req)
            elif op == "prepare":
                reply = worker.prepare(req)
            elif op == "warmup":
                reply = worker.warmup(req, send)
            elif op == "run":
                reply = worker.run(req, send)
            else:
                reply = {"ok": False, "error": f"unknown request {op!r}"}
        except (LoadError, OomError) as e:
            reply = {"ok": False, "error": str(e)}
        except OOM_ERRORS:
            job = req.get("job", req)
            reply = {"ok": False, "error": "CUDA out of memory"
                     + (f" (batch_size={job['batch_size']})" if "batch_size" in job else "")}
        except Exception as e:
            reply = {"ok": False, "error": f"{type(e).__name__}: {one_line(e)}"}
            if is_fatal_cuda_error(e):
                # CUDA's context is now unusable: say so, and exit; srd starts a new worker.
                reply["fatal"] = True
                print(f"hf worker {os.getpid()}: exiting after a CUDA error: {one_line(e)}",
                      file=sys.stderr, flush=True)
                send(reply)
                sys.stderr.flush()
                os._exit(3)
        if not reply.get("ok"):
            free_memory(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        send(reply)
    # Nothing is left to save: skip the interpreter's teardown of torch and the loaded models
    # (over a second on a CPU), which srd would otherwise wait for at the end of every run.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
