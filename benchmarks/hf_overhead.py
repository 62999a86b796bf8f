#!/usr/bin/env python3
"""backend=hf against a bare ``model.generate`` loop: same model, same settings, one run.

A random-weight Llama (4 layers, hidden size 256) is built offline into a temporary folder;
the sweep is batch sizes x ``--num-prompts`` prompts x ``--max-new-tokens`` new tokens
(min = max, so every request generates exactly that many), float32, greedy. Two parts:

1. **Throughput, interleaved.** srd's hf backend (``HfBackend``: its real worker process,
   protocol and parent-side polling, as ``srd run`` drives it) and a bare generate loop in a
   process of its own take turns, one batch (one ``generate`` call, a fraction of a second)
   at a time, for ``--rounds`` rounds per batch size, alternating who goes first. Both are
   pinned to the same core, so they see the same machine at nearly the same moment: a shared
   CPU's speed drifts by 10-20 % within seconds, far more than the 3 % being measured.
   Reported: srd's ``tokens_per_s`` (its generated tokens over its time inside ``generate``)
   against the bare loop's, per batch size and overall (all rounds' tokens over all rounds'
   time, each side), with the spread of the per-round ratios. Target: within 3 %.
2. **Whole sweep, wall time.** ``srd run`` on a cases file (``warmup=3`` per case) against a
   bare script (import, load once, per point 3 warm-up batches then every batch), each a fresh
   Python process paying the torch import and the model load; ``--sweeps`` paired runs,
   alternating who goes first. Reported: the median of the paired wall-time ratios. Target:
   srd within 1.2x.

Usage: python benchmarks/hf_overhead.py [--rounds 60] [--sweeps 3] [--device cpu]
       [--batch-sizes 1,2,4] [--num-prompts 16] [--max-new-tokens 32] [--threads 1]
Needs the hf extra (torch, transformers).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROMPTS = ["The quick brown fox jumps over the lazy dog",
           "A benchmark runner measures latency, throughput and energy",
           "Once upon a time there was a little benchmark",
           "Translate this sentence into French and then into German"]
WARMUP = 3


def _env(threads: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if threads:
        env["OMP_NUM_THREADS"] = threads  # both sides alike; one thread is steadier when shared
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    return env


# -- the bare loop (child processes) -----------------------------------------------------------
class Bare:
    """A plain transformers generate loop: load, tokenise, time ``generate``."""

    def __init__(self, a: argparse.Namespace) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(a.model)
        self.tok.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
        self.model = model.to(a.device).eval()
        self.a = a
        self.kw = {"max_new_tokens": a.max_new_tokens, "min_new_tokens": a.max_new_tokens,
                   "do_sample": False, "pad_token_id": self.tok.pad_token_id}

    def batches(self, bs: int, n: int) -> list[Any]:
        """``n`` prompts in batches of ``bs``, tokenised on the device."""
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        return [self.tok(prompts[i:i + bs], return_tensors="pt", padding=True)
                .to(self.a.device) for i in range(0, n, bs)]

    def warm(self, batches: list[Any]) -> None:
        with self.torch.inference_mode():
            for i in range(WARMUP):
                self.model.generate(**batches[i % len(batches)], **self.kw)

    def point(self, batches: list[Any]) -> dict[str, float]:
        """Every batch once: generated tokens and seconds inside ``generate``."""
        self.torch.manual_seed(0)
        gen_s, tokens = 0.0, 0
        cuda = self.a.device.startswith("cuda")
        with self.torch.inference_mode():
            for b in batches:
                if cuda:
                    self.torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = self.model.generate(**b, **self.kw)
                if cuda:
                    self.torch.cuda.synchronize()
                gen_s += time.perf_counter() - t0
                tokens += (out.shape[1] - b["input_ids"].shape[1]) * out.shape[0]
        return {"tokens": tokens, "generate_s": gen_s}


def bare_sweep(a: argparse.Namespace) -> None:
    """Part 2's reference: the whole sweep in one process; prints JSON."""
    bare = Bare(a)
    points = []
    for bs in a.batch_sizes:
        batches = bare.batches(bs, a.num_prompts)
        bare.warm(batches)
        points.append({"batch_size": bs, **bare.point(batches)})
    print(json.dumps(points))


def bare_server(a: argparse.Namespace) -> None:
    """Part 1's reference: answers ``{"bs": n}`` lines with one batch of n prompts each (the
    first request of a batch size warms up first, as srd's warm-up does)."""
    bare = Bare(a)
    prepared: dict[int, list[Any]] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        bs = int(json.loads(line)["bs"])
        if bs not in prepared:
            prepared[bs] = bare.batches(bs, bs)
            bare.warm(prepared[bs])
        print(json.dumps(bare.point(prepared[bs])), flush=True)


# -- part 1: interleaved throughput ------------------------------------------------------------
def write_cases(path: Path, model: Path, prompts: Path, a: argparse.Namespace,
                one_batch: bool = False) -> None:
    """A case per batch size: ``--num-prompts`` prompts, or one batch (``one_batch``)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "backend", "model", "prompts_file", "num_prompts", "batch_size",
                    "max_new_tokens", "min_new_tokens", "dtype", "device", "warmup"])
        for bs in a.batch_sizes:
            w.writerow([f"b{bs}", "hf", str(model), str(prompts),
                        bs if one_batch else a.num_prompts, bs,
                        a.max_new_tokens, a.max_new_tokens, "float32", a.device, WARMUP])


def interleaved(model: Path, work: Path, a: argparse.Namespace) -> None:
    from doerunner.backends.base import ExecContext, WarmupSpec
    from doerunner.backends.hf import HfBackend
    from doerunner.inputs.cases import read_cases

    all_cores = os.sched_getaffinity(0)
    # This process (srd's side: the backend polls its worker from here), the worker it starts
    # and the bare process all on one core: they take turns, so they never compete for it.
    os.sched_setaffinity(0, {max(all_cores)})
    os.environ.update(_env(a.threads))
    write_cases(work / "cases.csv", model, work / "prompts.txt", a, one_batch=True)
    cases = read_cases(work / "cases.csv")
    backend = HfBackend()
    ctx = ExecContext(timeout_s=600, stderr_path=work / "logs" / "bench.stderr")
    server = subprocess.Popen(
        [sys.executable, __file__, "--bare-server", "--model", str(model), "--device", a.device,
         "--num-prompts", str(a.num_prompts), "--max-new-tokens", str(a.max_new_tokens)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(a.threads))
    assert server.stdin is not None and server.stdout is not None
    try:
        json.loads(server.stdout.readline())

        def bare_point(bs: int) -> dict[str, float]:
            server.stdin.write(json.dumps({"bs": bs}) + "\n")  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
            return json.loads(server.stdout.readline())  # type: ignore[union-attr]

        def srd_point(case: Any) -> dict[str, float]:
            ex = backend.execute(case, ctx)
            assert ex.status == "OK", ex.message
            return {"tokens": ex.metrics["tokens_out"], "generate_s": ex.metrics["generate_s"],
                    "tokens_per_s": ex.metrics["tokens_per_s"]}

        for case, bs in zip(cases, a.batch_sizes, strict=True):  # load and warm up, untimed
            backend.warmup(case, ctx, WarmupSpec(WARMUP))
            srd_point(case)
            bare_point(bs)
        sums = {bs: {"srd": [0, 0.0], "bare": [0, 0.0]} for bs in a.batch_sizes}
        pair_ratios: dict[int, list[float]] = {bs: [] for bs in a.batch_sizes}
        round_ratios = []
        for r in range(a.rounds):
            tot = {"srd": [0, 0.0], "bare": [0, 0.0]}
            for case, bs in zip(cases, a.batch_sizes, strict=True):
                order = ("srd", "bare") if (r + bs) % 2 == 0 else ("bare", "srd")
                tps = {}
                for side in order:
                    p = srd_point(case) if side == "srd" else bare_point(bs)
                    tps[side] = p["tokens"] / p["generate_s"]
                    if side == "srd":  # srd's own column agrees with tokens / generate_s
                        assert abs(p["tokens_per_s"] * p["generate_s"] - p["tokens"]) < 1e-6
                    for acc in (sums[bs][side], tot[side]):
                        acc[0] += p["tokens"]
                        acc[1] += p["generate_s"]
                pair_ratios[bs].append(tps["srd"] / tps["bare"])
            ratio = (tot["srd"][0] / tot["srd"][1]) / (tot["bare"][0] / tot["bare"][1])
            round_ratios.append(ratio)
            if (r + 1) % max(1, a.rounds // 5) == 0:
                print(f"round {r + 1}: srd {tot['srd'][0] / tot['srd'][1]:7.1f} tok/s | bare "
                      f"{tot['bare'][0] / tot['bare'][1]:7.1f} tok/s | ratio {ratio:.3f}")
    finally:
        backend.close()
        server.kill()
        os.sched_setaffinity(0, all_cores)
    print("\n| batch | srd tok/s | bare tok/s | srd/bare | median of pairs |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for bs in a.batch_sizes:
        s, b = sums[bs]["srd"], sums[bs]["bare"]
        print(f"| {bs} | {s[0] / s[1]:.1f} | {b[0] / b[1]:.1f} | "
              f"{(s[0] / s[1]) / (b[0] / b[1]):.3f} | "
              f"{statistics.median(pair_ratios[bs]):.3f} |")
    s_tok = sum(v["srd"][0] for v in sums.values())
    s_sec = sum(v["srd"][1] for v in sums.values())
    b_tok = sum(v["bare"][0] for v in sums.values())
    b_sec = sum(v["bare"][1] for v in sums.values())
    ratio = (s_tok / s_sec) / (b_tok / b_sec)
    print(f"\nthroughput over {a.rounds} interleaved rounds: srd {s_tok / s_sec:.1f} tok/s vs "
          f"bare {b_tok / b_sec:.1f} tok/s: ratio {ratio:.3f} "
          f"({'within' if abs(1 - ratio) <= 0.03 else 'OUTSIDE'} 3%); per-round ratios: median "
          f"{statistics.median(round_ratios):.3f}, range {min(round_ratios):.3f}-"
          f"{max(round_ratios):.3f}")


# -- part 2: whole sweeps ----------------------------------------------------------------------
def run_bare(model: Path, a: argparse.Namespace) -> tuple[float, float]:
    """Wall seconds of the whole bare sweep, and its tokens/s."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--bare-sweep", "--model", str(model),
                        "--device", a.device, "--batch-sizes", ",".join(map(str, a.batch_sizes)),
                        "--num-prompts", str(a.num_prompts),
                        "--max-new-tokens", str(a.max_new_tokens)],
                       capture_output=True, text=True, env=_env(a.threads), check=True)
    wall = time.perf_counter() - t0
    points = json.loads(p.stdout.strip().splitlines()[-1])
    return wall, sum(q["tokens"] for q in points) / sum(q["generate_s"] for q in points)


def run_srd(model: Path, work: Path, a: argparse.Namespace) -> tuple[float, float]:
    """Wall seconds of the whole ``srd run``, and its tokens/s from metrics.csv."""
    write_cases(work / "cases.csv", model, work / "prompts.txt", a)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "doerunner", "run", "--cases", "cases.csv", "--out",
                    "m.csv", "--quiet"], cwd=work, env=_env(a.threads), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(work / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["status"] == "OK" for r in rows), rows
    return wall, (sum(int(r["tokens_out"]) for r in rows)
                  / sum(float(r["generate_s"]) for r in rows))


def sweeps(model: Path, work: Path, a: argparse.Namespace) -> None:
    pairs = []
    for r in range(a.sweeps):
        if r % 2 == 0:
            b = run_bare(model, a)
            s = run_srd(model, work, a)
        else:
            s = run_srd(model, work, a)
            b = run_bare(model, a)
        pairs.append((s, b))
        print(f"sweep {r + 1}: srd run {s[0]:6.2f} s ({s[1]:.1f} tok/s) | bare {b[0]:6.2f} s "
              f"({b[1]:.1f} tok/s) | wall {s[0] / b[0]:.2f}x")
    wall = statistics.median(s[0] / b[0] for s, b in pairs)
    print(f"\nsweep wall incl. start-up and model loads, srd / bare, median of {a.sweeps} "
          f"pairs: {wall:.2f}x ({'within' if wall <= 1.2 else 'OUTSIDE'} 1.2x); medians "
          f"{statistics.median(s[0] for s, _ in pairs):.2f} s vs "
          f"{statistics.median(b[0] for _, b in pairs):.2f} s")
    tps = statistics.median(s[1] / b[1] for s, b in pairs)
    print(f"tokens/s in these sweeps, srd / bare, median of {a.sweeps} pairs: {tps:.3f} (one "
          "sweep after the other on a drifting CPU: part 1 is the measurement)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bare-sweep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=60, help="interleaved rounds (part 1)")
    ap.add_argument("--sweeps", type=int, default=3, help="paired whole sweeps (part 2)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 2, 4])
    ap.add_argument("--num-prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", default="1", help="OMP_NUM_THREADS for both sides ('' = torch's"
                    " default)")
    a = ap.parse_args()
    if a.bare_sweep:
        bare_sweep(a)
        return
    if a.bare_server:
        bare_server(a)
        return
    with tempfile.TemporaryDirectory(prefix="srd-hf-bench-") as tmp:
        work = Path(tmp)
        (work / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
        spec = importlib.util.spec_from_file_location(
            "make_tiny_model", REPO / "examples" / "make_tiny_model.py")
        assert spec is not None and spec.loader is not None
        maker = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(maker)
        model = maker.build(work / "model", layers=4, hidden=256)
        print(f"## backend=hf vs a bare generate loop: Llama 4 layers x 256, {a.device}, "
              f"batch sizes {a.batch_sizes}, {a.num_prompts} prompts x {a.max_new_tokens} "
              f"new tokens, float32, warm-up {WARMUP} batches per point, {os.cpu_count()} CPUs, "
              f"OMP_NUM_THREADS={a.threads or 'default'}\n")
        print("### 1. throughput, srd's hf backend and a bare loop taking turns")
        interleaved(model, work, a)
        if a.sweeps > 0:
            print("\n### 2. whole sweeps: `srd run` against a bare script, fresh processes")
            sweeps(model, work, a)


if __name__ == "__main__":
    main()
