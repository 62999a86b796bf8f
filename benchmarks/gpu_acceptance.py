#!/usr/bin/env python3
"""GPU acceptance: what srd measures, checked on a real NVIDIA GPU.

Prints, for the first visible GPU (or ``--gpu N``):
1. ``srd env``: the environment srd records.
2. The energy counter's update period, measured (polling every 0.5 ms for 3 s).
3. Counter vs integrated instantaneous power on a constant load and on a stepped load (torch
   matmuls on the GPU, 0.3 s on / 0.3 s off), over srd's measurement windows of 0.5, 1, 2 and
   5 s: the window's energy (edges pinned to the counter's updates) against the power
   integrated from 1 ms reads.
4. Idle power without and with a resident CUDA context (this process holding one).
5. The sampler's achieved rate at 10 and 100 Hz (samples per second over 5 s).
6. An hf sweep (``--model DIR``, a local model directory; skipped without one): `srd run` on
   cuda with batch sizes 1, 2, 4, and the worker's ``ext_device_uuid`` checked against the GPU
   the window measured.

Needs the hf extra (torch with CUDA). Exits 2 when no NVIDIA GPU can be used.

Usage: python benchmarks/gpu_acceptance.py [--gpu 0] [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def section(title: str) -> None:
    print(f"\n## {title}", flush=True)


def srd(*args: str, env: dict[str, str] | None = None, cwd: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doerunner", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


def counter_period(dev, seconds: float = 3.0) -> tuple[float | None, int]:
    """Median gap between counter changes while polling every 0.5 ms."""
    last, changes = dev.energy_mj(), []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        c = dev.energy_mj()
        if c != last:
            changes.append(time.monotonic())
            last = c
        time.sleep(0.0005)
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    return (statistics.median(gaps) if gaps else None), len(changes)


class Load:
    """Matmuls on the GPU in a thread: constant, or 0.3 s on / 0.3 s off."""

    def __init__(self, device: str, stepped: bool) -> None:
        import torch

        self.torch = torch
        self.a = torch.randn(4096, 4096, device=device)
        self.stepped = stepped
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        torch = self.torch
        t0 = time.monotonic()
        while not self.stop.is_set():
            if self.stepped and int((time.monotonic() - t0) / 0.3) % 2:
                torch.cuda.synchronize()
                time.sleep(0.01)
                continue
            for _ in range(8):
                self.a @ self.a
            torch.cuda.synchronize()

    def __enter__(self) -> Load:
        self.thread.start()
        time.sleep(1.0)  # let power settle
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def integrate_while(dev, seconds: float) -> tuple[float, float, float]:
    """Instantaneous power integrated from ~1 ms reads over ``seconds``: (t0, t1, J)."""
    t0 = time.time()
    last_t, last_p, e = t0, dev.power_w(), 0.0
    while time.time() - t0 < seconds:
        time.sleep(0.001)
        t, p = time.time(), dev.power_w()
        if p is not None and last_p is not None:
            e += 0.5 * (p + last_p) * (t - last_t)
        last_t, last_p = t, p
    return t0, last_t, e


def windows_vs_integral(sampler, dev, label: str) -> None:
    print(f"| {label} | window s | counter J | integrated J | difference |")
    print("| --- | --- | --- | --- | --- |")
    for length in (0.5, 1.0, 2.0, 5.0):
        sampler.begin_window("w", [0])
        _, _, integral = integrate_while(dev, length)
        (w,) = sampler.end_window("w")
        diff = (w.energy_j - integral) / integral if integral else float("nan")
        print(f"| {w.energy_method} | {w.duration_s:.3f} | {w.energy_j:.2f} | {integral:.2f} "
              f"| {100 * diff:+.2f}% |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", type=int, default=0, help="position among the visible GPUs")
    ap.add_argument("--model", help="a local model directory for the hf sweep")
    a = ap.parse_args()
    from doerunner.telemetry.gpu import TelemetryError, open_gpus

    try:
        gpus = open_gpus(str(a.gpu))
    except TelemetryError as e:
        print(f"gpu_acceptance: no usable NVIDIA GPU: {e}", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("gpu_acceptance: torch has no CUDA (install a CUDA build of torch)",
              file=sys.stderr)
        return 2
    dev = gpus.devices[0]
    section("srd env")
    print(srd("env").stdout)
    print(f"GPU under test: {dev.info.index} {dev.info.name} {dev.info.uuid}; instant power "
          f"field: {dev.has_instant_power}; energy counter: {dev.has_energy_counter}; "
          f"power scope: {dev.power_scope}")

    section("energy counter update period")
    period, n = counter_period(dev)
    print(f"median gap between {n} updates in 3 s: "
          + (f"{period * 1000:.1f} ms" if period else "no update seen"))

    # CUDA_VISIBLE_DEVICES names the GPU under test for this process's torch, by UUID.
    os.environ["CUDA_VISIBLE_DEVICES"] = dev.info.token or dev.info.uuid
    from doerunner.telemetry.sampler import Sampler

    section("idle power, without and with a CUDA context in this process")
    _, _, e = integrate_while(dev, 3.0)
    print(f"without a context: {e / 3.0:.1f} W")
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    time.sleep(1.0)
    _, _, e = integrate_while(dev, 3.0)
    print(f"with a resident context: {e / 3.0:.1f} W")

    with Sampler([dev], 10.0) as sampler:
        sampler.measure_periods()
        print(f"\nsampler's measured counter period: {sampler.counter_period_s[0]}")
        for stepped, label in ((False, "constant load"), (True, "0.3 s on / 0.3 s off")):
            section(f"counter vs integrated instant power: {label}")
            with Load("cuda", stepped):
                windows_vs_integral(sampler, dev, "method")

    section("sampler rate achieved")
    for hz in (10.0, 100.0):
        with Sampler([dev], hz) as s:
            n0 = s.samples_taken
            time.sleep(5.0)
            rate = (s.samples_taken - n0) / 5.0
        print(f"asked {hz:g} Hz: {rate:.1f} samples/s")

    section("hf sweep on cuda, device UUID checked")
    if not a.model:
        print("skipped: pass --model DIR (a local model directory)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows = "".join(f"b{b},hf,{a.model},Hello there,8,{b},32,32,cuda,2\n" for b in (1, 2, 4))
        Path(tmp, "cases.csv").write_text(
            "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,"
            "min_new_tokens,device,warmup\n" + rows)
        p = srd("run", "--cases", "cases.csv", "--out", "m.csv", "--baseline", "off",
                "--gpus", str(a.gpu), cwd=tmp)
        print(f"srd exited {p.returncode}")
        print(p.stderr[-2000:])
        with open(Path(tmp, "m.csv"), newline="") as f:
            for r in csv.DictReader(f):
                print(f"{r['case_id']}: {r['status']} tokens/s {r.get('tokens_per_s')} "
                      f"J/token {r.get('energy_per_token_j')} device {r.get('ext_device_uuid')}"
                      f" (window GPU {dev.info.uuid}: "
                      f"{'same' if r.get('ext_device_uuid') == dev.info.uuid else 'DIFFERENT'})")
        run = json.loads(Path(tmp, "m_run", "run.json").read_text())
        print("warnings:", run.get("warnings"))
    gpus.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
