"""The parameters of an hf case (``backend=hf``), checked and turned into the generation job
the worker reads (``parse_job``). A parameter name close to a known one (``max_new_token``,
``batchsize``) is a problem with a suggestion, so a typo never silently runs the default."""

from __future__ import annotations

import math
import os
import re
from functools import cache
from typing import Any

from doerunner.inputs.case import Case
from doerunner.inputs.vocabulary import parse_flag

PARAMS = ("model", "prompt", "prompts_file", "num_prompts", "batch_size", "max_new_tokens",
          "min_new_tokens", "dtype", "device", "do_sample", "temperature", "top_p", "top_k",
          "seed", "attn_implementation")
DTYPES = ("auto", "float32", "float16", "bfloat16")
_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")
_ATTN_RE = re.compile(r"[A-Za-z0-9_./-]+")


@cache
def _read_prompts(path: str) -> tuple[str, ...] | str:
    """The non-blank lines of ``path`` (trailing newline and CR removed), or an error text."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = tuple(s for s in (line.rstrip("\r\n") for line in f) if s.strip())
    except FileNotFoundError:
        return f"prompts_file {path!r}: no such file"
    except (OSError, ValueError) as e:  # ValueError: undecodable bytes, a NUL in the path
        return f"prompts_file {path!r}: cannot read ({getattr(e, 'strerror', None) or e})"
    return lines or f"prompts_file {path!r} holds no prompt (one prompt per line)"


def _int(params: dict[str, str], name: str, default: int, minimum: int,
         problems: list[tuple[str, str]]) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        problems.append((name, f"{name} must be an integer >= {minimum}, got {text!r}"))
        return default
    return value


def _float(params: dict[str, str], name: str, lo: float, hi: float, lo_open: bool,
           problems: list[tuple[str, str]]) -> float | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    ok = (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        rng = f"> {lo:g}" if hi == math.inf else f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        problems.append((name, f"{name} must be a number {rng}, got {text!r}"))
        return None
    return value


def parse_job(case: Case) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The case's generation settings as the worker reads them, and the problems found as
    ``(column, message)`` pairs (the job is only usable when there are none)."""
    import difflib  # here, not at import time: srd's start-up stays short

    p = {k: v for k, v in case.params.items()}
    problems: list[tuple[str, str]] = []
    for name in p:
        if name in PARAMS:
            continue
        close = (difflib.get_close_matches(name.lower(), PARAMS, n=1, cutoff=0.8)
                 or ([name.lower()] if name.lower() in PARAMS else []))
        if close:
            problems.append((name, f"unknown hf parameter {name!r}: did you mean {close[0]!r}?"))
    model = p.get("model", "").strip()
    if not model:
        problems.append(("model", "model: missing value (a local directory or a Hub id)"))
    elif os.path.isdir(os.path.expanduser(model)):
        model = os.path.abspath(os.path.expanduser(model))
    prompt, pfile = p.get("prompt", ""), p.get("prompts_file", "").strip()
    prompts: tuple[str, ...] = ()
    if prompt.strip() and pfile:
        problems.append(("prompts_file", "give prompt or prompts_file, not both"))
    elif pfile:
        got = _read_prompts(os.path.abspath(pfile))
        if isinstance(got, str):
            problems.append(("prompts_file", got))
        else:
            prompts = got
    elif prompt.strip():
        prompts = (prompt,)
    else:
        problems.append(("prompt", "prompt: missing value (give prompt or prompts_file)"))
    num_prompts = _int(p, "num_prompts", len(prompts) or 1, 1, problems)
    batch_size = _int(p, "batch_size", 1, 1, problems)
    max_new = _int(p, "max_new_tokens", 32, 1, problems)
    min_new = _int(p, "min_new_tokens", 0, 0, problems)
    if min_new > max_new:
        problems.append(("min_new_tokens", f"min_new_tokens ({min_new}) must not exceed "
                                           f"max_new_tokens ({max_new})"))
    dtype = p.get("dtype", "").strip().lower() or "auto"
    if dtype not in DTYPES:
        problems.append(("dtype", f"dtype must be one of {', '.join(DTYPES)}, "
                                  f"got {p['dtype']!r}"))
    device = p.get("device", "").strip().lower() or "auto"
    if device != "auto" and not _DEVICE_RE.fullmatch(device):
        problems.append(("device", f"device must be cpu, cuda or cuda:N, got {p['device']!r}"))
    do_sample = parse_flag(p.get("do_sample", ""))
    if do_sample is None:
        problems.append(("do_sample", "do_sample must be 1/true/yes or empty/0/false/no, "
                                      f"got {p['do_sample']!r}"))
    temperature = _float(p, "temperature", 0.0, math.inf, True, problems)
    top_p = _float(p, "top_p", 0.0, 1.0, True, problems)
    top_k_text = p.get("top_k", "").strip()
    top_k = _int(p, "top_k", 0, 0, problems) if top_k_text else None
    seed = _int(p, "seed", 0, 0, problems)
    attn = p.get("attn_implementation", "").strip()
    if attn and not _ATTN_RE.fullmatch(attn):
        problems.append(("attn_implementation", "attn_implementation must be a name like "
                                                f"sdpa or eager, got {attn!r}"))
    job = {"model": model, "dtype": dtype, "device": device, "attn_implementation": attn,
           "prompts": list(prompts), "num_prompts": num_prompts, "batch_size": batch_size,
           "max_new_tokens": max_new, "min_new_tokens": min_new,
           "do_sample": bool(do_sample), "temperature": temperature, "top_p": top_p,
           "top_k": top_k, "seed": seed}
    return job, problems


