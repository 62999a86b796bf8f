"""Loading models and running ``generate`` for the hf worker (``hf_worker``), with the
measurements of one execution: latency per request, time to first token (a forward hook on
the model stamps the end of the prefill pass), tokens, memory. Imported by the worker
process only: this is where torch and transformers are imported.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_MIB = 1048576.0

# What differs across the versions the package allows:
# - transformers takes ``dtype=`` from 4.56 (``torch_dtype=`` before, deprecated after);
# - torch has ``torch.OutOfMemoryError`` from 2.4, ``torch.cuda.OutOfMemoryError`` from 1.13;
# - torch raises ``torch.AcceleratorError`` for other CUDA errors from 2.8, a RuntimeError
#   "CUDA error: ..." before.
DTYPE_KWARG = "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"
OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {e for e in (getattr(torch, "OutOfMemoryError", None),
                 getattr(torch.cuda, "OutOfMemoryError", None)) if e is not None})
_ACCELERATOR_ERROR = getattr(torch, "AcceleratorError", None)
_STICKY = ("CUDA error", "device-side assert", "illegal memory access", "CUBLAS_STATUS",
           "CUDNN_STATUS", "unspecified launch failure")


def is_fatal_cuda_error(e: BaseException) -> bool:
    """Whether ``e`` is a CUDA error other than out of memory: CUDA's context is then
    unusable ("the process must be terminated and relaunched", CUDA runtime docs), so the
    worker must exit and the next case get a fresh one."""
    if isinstance(e, OOM_ERRORS):
        return False
    if _ACCELERATOR_ERROR is not None and isinstance(e, _ACCELERATOR_ERROR):
        return True
    return isinstance(e, RuntimeError) and any(k in str(e) for k in _STICKY)


def device_uuid(device: torch.device) -> str | None:
    """The UUID of the CUDA device a model is on, as NVML spells it (``GPU-…``, or
    ``MIG-…`` for a MIG instance: CUDA reports the instance's own UUID); None on the CPU."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    raw = getattr(props, "uuid", None)
    if raw is None:
        return None
    text = str(raw)
    if text.upper().startswith(("GPU-", "MIG-")):
        return text
    is_mig = bool(getattr(props, "is_mig", False)) or "MIG" in getattr(props, "name", "")
    return ("MIG-" if is_mig else "GPU-") + text


class LoadError(Exception):
    """A model or tokenizer cannot be loaded; the message is one line for the metrics row."""


class OomError(Exception):
    """CUDA ran out of memory; the message names the batch size."""


class StepTimer:
    """A forward hook on the model for one ``generate`` call: stamps the end of the first
    forward pass (``perf_counter`` seconds) and counts the passes (decoding steps).

    The first pass is the prefill, which produces the first token's logits, so ``first``
    minus the batch's start is its time to first token, whatever the batch size (a streamer
    only works for batch size 1). Each pass yields one token, so ``steps`` is the tokens per
    sequence. On CUDA only the first pass is synchronised (the stamp is when the logits
    exist, not when their kernels were queued); later passes are not, so the GPU's queue
    stays full. A hook is also cheaper than a logits processor, which transformers calls
    after an ``inspect.signature`` of it at every step (~75 more Python calls per step).
    """

    def __init__(self, device: torch.device) -> None:
        self.first: float | None = None
        self.steps = 0
        self.sync = device.type == "cuda"
        self.device = device

    def __call__(self, module: Any, args: Any, output: Any) -> None:
        if self.steps == 0:
            if self.sync:
                torch.cuda.synchronize(self.device)
            self.first = time.perf_counter()
        self.steps += 1


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    device: torch.device
    eos_ids: frozenset[int]


@dataclass
class BatchResult:
    """One ``generate`` call: seconds from its start to its end and to the first step's
    logits, decoding steps, and the prompt and generated token counts (padding excluded)."""

    size: int
    latency_s: float
    ttft_s: float | None
    steps: int
    tokens_in: int
    tokens_out: int


# -- loading -----------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LoadError(f"device {name!r}: CUDA is not available (torch "
                            f"{torch.__version__}, {torch.cuda.device_count()} GPUs)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LoadError(f"device {name!r}: only {torch.cuda.device_count()} CUDA "
                            "device(s) visible")
    return dev


def _looks_like_path(model: str) -> bool:
    """Whether ``model`` cannot be a Hub id ("name" or "org/name")."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.path.exists(model)


def load_model(model: str, dtype: str, device: torch.device, attn: str | None) -> Loaded:
    if not os.path.isdir(os.path.expanduser(model)) and _looks_like_path(model):
        raise LoadError(f"cannot load model {model!r}: no such directory")
    try:
        tok = AutoTokenizer.from_pretrained(model)
        kwargs: dict[str, Any] = {DTYPE_KWARG: _DTYPES.get(dtype, "auto")}
        if attn:
            kwargs["attn_implementation"] = attn
        m = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    except OOM_ERRORS:
        raise
    except Exception as e:  # OSError, ValueError, ...: whatever the Hub/loader raises
        where = "" if os.path.isdir(os.path.expanduser(model)) else \
            "not a local directory, and from the Hub: "
        raise LoadError(f"cannot load model {model!r}: {where}{one_line(e)}") from None
    m = m.to(device).eval()
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise LoadError(f"cannot load model {model!r}: its tokenizer has neither a pad "
                            "nor an eos token")
        tok.pad_token = tok.eos_token
    if not getattr(m.config, "is_encoder_decoder", False):
        tok.padding_side = "left"  # decoder-only: the last prompt tokens line up
    eos = m.generation_config.eos_token_id
    if eos is None:
        eos = tok.eos_token_id
    eos_ids = frozenset(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None
                        else [])
    return Loaded(m, tok, device, eos_ids)


# -- generating --------------------------------------------------------------------------------
def seed_job(job: dict[str, Any]) -> None:
    torch.manual_seed(int(job["seed"]))


def _prompts(job: dict[str, Any]) -> list[str]:
    prompts = job["prompts"]
    n = int(job["num_prompts"])
    return [prompts[i % len(prompts)] for i in range(n)]


def make_batches(lm: Loaded, job: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
    """The measured prompts, tokenised and padded per batch, already on the device
    (tokenising is not part of a request's latency)."""
    prompts = _prompts(job)
    size = int(job["batch_size"])
    out = []
    for i in range(0, len(prompts), size):
        enc = lm.tokenizer(prompts[i:i + size], return_tensors="pt", padding=True)
        out.append({k: v.to(lm.device) for k, v in enc.items() if k in ("input_ids",
                                                                         "attention_mask")})
    return out


def _gen_kwargs(lm: Loaded, job: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"max_new_tokens": int(job["max_new_tokens"]),
                          "min_new_tokens": int(job["min_new_tokens"]),
                          "do_sample": bool(job["do_sample"]),
                          "pad_token_id": lm.tokenizer.pad_token_id}
    if job["do_sample"]:
        for name in ("temperature", "top_p", "top_k"):
            if job.get(name) is not None:
                kw[name] = job[name]
    else:  # greedy: neutralise sampling defaults a model's generation_config may carry
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw


def generate_batch(lm: Loaded, job: dict[str, Any], batch: dict[str, torch.Tensor]) -> BatchResult:
    """One timed ``generate`` call on one batch."""
    timer = StepTimer(lm.device)
    kw = _gen_kwargs(lm, job)
    size = int(batch["input_ids"].shape[0])
    cuda = lm.device.type == "cuda"
    try:
        if cuda:
            torch.cuda.synchronize(lm.device)
        hook = lm.model.register_forward_hook(timer)
        try:
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = lm.model.generate(**batch, **kw)
            if cuda:
                torch.cuda.synchronize(lm.device)
            t1 = time.perf_counter()
        finally:
            hook.remove()
    except OOM_ERRORS:
        raise OomError(f"CUDA out of memory (batch_size={job['batch_size']})") from None
    prompt_len = int(batch["input_ids"].shape[1])
    new = out[:, prompt_len:].tolist()
    tokens_out = sum(_generated(row, lm.eos_ids) for row in new)
    tokens_in = int(batch["attention_mask"].sum().item())
    ttft = timer.first - t0 if timer.first is not None else None
    return BatchResult(size, t1 - t0, ttft, timer.steps, tokens_in, tokens_out)


def _generated(row: list[int], eos_ids: frozenset[int]) -> int:
    """Tokens a sequence really generated: up to and including its first eos; what follows
    is padding added while the rest of its batch went on."""
    for i, t in enumerate(row):
        if t in eos_ids:
            return i + 1
    return len(row)


def measure_job(lm: Loaded, job: dict[str, Any],
                progress: Callable[[int, int], None] | None = None,
                batches: list[dict[str, torch.Tensor]] | None = None) -> dict[str, Any]:
    """Generate for every measured prompt; metrics in seconds, requests/s, tokens/s and MiB.

    Every request of a batch has its batch's latency and time to first token. ``tpot_mean``
    is the mean over requests of (latency - ttft) / (decoding steps - 1). ``generate_s`` is
    the time spent in ``generate``: the throughputs are counted over it. ``progress(i, n)``
    is called after each of the n batches, outside the timed calls. ``batches``: the job's
    prompts already tokenised (``make_batches``), else tokenised here."""
    if batches is None:
        batches = make_batches(lm, job)
    cuda = lm.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(lm.device)
    else:
        _reset_hwm()
    seed_job(job)
    results = []
    for b in batches:
        results.append(generate_batch(lm, job, b))
        if progress is not None:
            progress(len(results), len(batches))
    lat = [r.latency_s for r in results for _ in range(r.size)]
    ttft = [r.ttft_s for r in results if r.ttft_s is not None for _ in range(r.size)]
    tpot = [(r.latency_s - r.ttft_s) / (r.steps - 1) for r in results
            if r.ttft_s is not None and r.steps > 1 for _ in range(r.size)]
    gen_s = sum(r.latency_s for r in results)
    n = len(lat)
    tokens_out = sum(r.tokens_out for r in results)
    m: dict[str, Any] = {
        "p50": _pct(lat, 50), "p95": _pct(lat, 95), "p99": _pct(lat, 99),
        "latency_avg": statistics.fmean(lat),
        "throughput_rps": n / gen_s if gen_s > 0 else None,
        "tokens_per_s": tokens_out / gen_s if gen_s > 0 else None,
        "tokens_in": sum(r.tokens_in for r in results), "tokens_out": tokens_out,
        "batch_effective_size": n / len(results), "generate_s": gen_s, "errors": 0,
    }
    if ttft:
        m["ttft_p50"], m["ttft_p95"] = _pct(ttft, 50), _pct(ttft, 95)
    if tpot:
        m["tpot_mean"] = statistics.fmean(tpot)
    if cuda:
        m["gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated(lm.device) / _MIB
    else:
        hwm = _vm_hwm_mib()
        if hwm is not None:
            m["mem_peak_mb"] = hwm
    return {k: v for k, v in m.items() if v is not None}


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def cv_of(values: list[float]) -> float:
    mean = statistics.fmean(values)
    return statistics.pstdev(values, mean) / mean if mean > 0 else math.inf


def _reset_hwm() -> None:
    """Reset this process's peak resident size (Linux: writing 5 to clear_refs)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _vm_hwm_mib() -> float | None:
    """Peak resident set size since the last reset, MiB (Linux ``VmHWM``); None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0].strip() if text else type(e).__name__
    return first if len(first) <= 300 else first[:297] + "..."


