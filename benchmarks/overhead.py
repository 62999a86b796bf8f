#!/usr/bin/env python3
"""srd's own overhead, against references measured in the same run.

1. 500 trivial shell cases: srd vs hyperfine (one run per command) vs a bare Python
   subprocess loop over the same 500 commands. Target: srd within 1.5x of hyperfine.
2. Dummy cases at 25k, 50k and 100k: wall time and peak memory of the whole `srd run`
   process. Target: 100k under 10 s and 200 MiB, cost growing linearly.

Usage: python benchmarks/overhead.py [--shell-cases 500] [--dummy 25000,50000,100000]
Needs hyperfine on PATH (apt-get install hyperfine) for the reference; skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRD = [sys.executable, "-m", "doerunner"]




def peak_rss_mib(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child, measured with wait4 on that child alone."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode not in (0, 2):
        sys.exit(f"{cmd[:4]} failed ({p.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def shell_benchmark(n: int, work: Path, rounds: int) -> None:
    cmds = [f"echo p95=0.00{i % 10} case={i}" for i in range(n)]
    cases = work / "shell.csv"
    cases.write_text("case_id,cmd\n" + "".join(f"c{i},{c}\n" for i, c in enumerate(cmds)))
    print(f"## {n} trivial shell cases (`echo p95=... case=i`), median of {rounds} rounds")
    hf = shutil.which("hyperfine")
    times: dict[str, list[float]] = {"srd": [], "bare": [], "hyperfine": []}
    for _ in range(rounds):  # interleaved, so a slow moment of the machine hits all three
        times["srd"].append(peak_rss_mib([*SRD, "run", "--cases", str(cases), "--out",
                                          str(work / "shell.csv.out"), "--quiet"], work)[0])
        t0 = time.perf_counter()
        for c in cmds:
            subprocess.run(["/bin/sh", "-c", c], capture_output=True)
        times["bare"].append(time.perf_counter() - t0)
        if hf:
            t0 = time.perf_counter()
            subprocess.run([hf, "--runs", "1", "--style", "none", "--export-json",
                            str(work / "hf.json"), *cmds], cwd=work, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times["hyperfine"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    names = {"srd": "srd run (whole process)", "bare": "bare Python subprocess loop",
             "hyperfine": "hyperfine --runs 1 (whole process)"}
    for k, wall in med.items():
        print(f"  {names[k]:<38} {wall:8.3f} s  {wall / n * 1000:7.3f} ms/case")
    if hf:
        print(f"  ratio srd / hyperfine: {med['srd'] / med['hyperfine']:.2f}  (target <= 1.5)")
    else:
        print("  hyperfine not found: install it (apt-get install hyperfine) for the reference")
    print(f"  ratio srd / bare loop: {med['srd'] / med['bare']:.2f}")


def dummy_benchmark(sizes: list[int], work: Path) -> None:
    print("## dummy cases (whole `srd run` process, --quiet)")
    per_case = []
    for n in sizes:
        cases = work / f"dummy{n}.csv"
        with open(cases, "w") as f:
            f.write("case_id,backend,users\n")
            for i in range(n):
                f.write(f"d{i},dummy,{i % 7}\n")
        wall, rss = peak_rss_mib([*SRD, "run", "--cases", str(cases), "--out",
                                  str(work / f"dummy{n}.out.csv"), "--quiet"], work)
        per_case.append(wall / n)
        print(f"  {n:>7} cases  {wall:7.2f} s  {wall / n * 1e6:6.1f} us/case  "
              f"peak RSS {rss:6.1f} MiB")
    if len(per_case) > 1:
        print(f"  per-case cost, largest / smallest size: {per_case[-1] / per_case[0]:.2f} "
              "(1.0 = linear)")
    print(f"  target: {sizes[-1]} cases under 10 s and 200 MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shell-cases", type=int, default=500)
    ap.add_argument("--dummy", default="25000,50000,100000")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    # Measure srd as an installed package runs: with its bytecode cached (some sandboxes set
    # PYTHONDONTWRITEBYTECODE, which would make every start recompile srd's sources).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(__file__).resolve().parents[1] / "doerunner")], check=True)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        shell_benchmark(a.shell_cases, work, a.rounds)
        dummy_benchmark([int(x) for x in a.dummy.split(",")], work)
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
