#!/usr/bin/env python3
"""srd's own overhead, against references measured in the same run.

1. 500 trivial shell cases: srd against `hyperfine -N --runs 1` on the same commands (and a
   bare Python subprocess loop), in interleaved rounds. Each whole process is timed with
   wait4, so its CPU includes the process tree it reaped (the cases). Targets: srd <= 1.4x
   hyperfine in CPU and in wall, and srd's wall within 10% of its own CPU (a wall above the
   CPU is time srd's threads spent waiting on each other or on the scheduler).
2. Dummy cases at 25k, 50k and 100k: wall time and peak memory of the whole `srd run`
   process. Target: 100k under 10 s and 200 MiB, cost growing linearly.

With ``--load N``, N busy processes share the CPUs during part 1 (what a CI runner or a
shared workstation looks like): srd's wall must then stay near its CPU, as hyperfine's does.

Usage: python benchmarks/overhead.py [--shell-cases 500] [--rounds 5] [--load 0]
                                     [--dummy 25000,50000,100000]
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


def measure(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0, 2)) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system of the child and of every descendant it
    reaped) and peak RSS (MiB) of one child process, from wait4 on that child alone."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode not in ok:
        sys.exit(f"{cmd[:4]} failed ({p.returncode}): {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def peak_rss_mib(cmd: list[str], cwd: Path) -> tuple[float, float]:
    wall, _, rss = measure(cmd, cwd)
    return wall, rss


def bare_loop(cmds: list[str]) -> list[str]:
    """A Python process running the commands one by one through /bin/sh, output captured."""
    code = ("import subprocess,sys\n"
            "for c in sys.argv[1:]:\n"
            "    subprocess.run(['/bin/sh', '-c', c], capture_output=True)\n")
    return [sys.executable, "-c", code, *cmds]


def shell_benchmark(n: int, work: Path, rounds: int, load: int = 0) -> None:
    cmds = [f"echo p95=0.00{i % 10} case={i}" for i in range(n)]
    cases = work / "shell.csv"
    cases.write_text("case_id,cmd\n" + "".join(f"c{i},{c}\n" for i, c in enumerate(cmds)))
    print(f"## {n} trivial shell cases (`echo p95=... case=i`), {rounds} interleaved rounds, "
          f"medians{f', {load} busy process(es) sharing the CPUs' if load else ''}")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        _shell_rounds(n, work, rounds, cmds, cases)
    finally:
        for b in busy:
            b.kill()
            b.wait()


def _shell_rounds(n: int, work: Path, rounds: int, cmds: list[str], cases: Path) -> None:
    hf = shutil.which("hyperfine")
    runs = {"srd": [*SRD, "run", "--cases", str(cases), "--out", str(work / "shell.out.csv"),
                    "--quiet"],
            "bare": bare_loop(cmds)}
    if hf:
        runs["hyperfine"] = [hf, "-N", "--runs", "1", "--style", "none", "--export-json",
                             str(work / "hf.json"), *cmds]
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    order = list(runs)
    for r in range(rounds):  # interleaved, rotating who goes first
        for k in order[r % len(order):] + order[:r % len(order)]:
            wall, cpu, _ = measure(runs[k], work)
            got[k].append((wall, cpu))
    names = {"srd": "srd run --quiet", "bare": "bare Python subprocess loop",
             "hyperfine": "hyperfine -N --runs 1"}
    print(f"  {'':<30} {'wall s':>8} {'CPU s':>8} {'wall/CPU':>9} {'ms/case':>8}")
    med = {}
    for k, v in got.items():
        wall = statistics.median(w for w, _ in v)
        cpu = statistics.median(c for _, c in v)
        med[k] = (wall, cpu)
        print(f"  {names[k]:<30} {wall:8.3f} {cpu:8.3f} {wall / cpu:9.2f} {wall / n * 1e3:8.3f}")
    s_wall, s_cpu = med["srd"]
    print(f"  srd wall / srd CPU: {s_wall / s_cpu:.2f} (target <= 1.10)")
    if hf:
        h_wall, h_cpu = med["hyperfine"]
        pw = statistics.median(a[0] / b[0] for a, b in zip(got["srd"], got["hyperfine"],
                                                            strict=True))
        pc = statistics.median(a[1] / b[1] for a, b in zip(got["srd"], got["hyperfine"],
                                                            strict=True))
        print(f"  srd / hyperfine: wall {s_wall / h_wall:.2f}, CPU {s_cpu / h_cpu:.2f} "
              f"(medians of rounds; paired per round: wall {pw:.2f}, CPU {pc:.2f}; "
              "target <= 1.40)")
    else:
        print("  hyperfine not found: install it (apt-get install hyperfine) for the reference")
    print(f"  srd / bare loop: wall {s_wall / med['bare'][0]:.2f}, "
          f"CPU {s_cpu / med['bare'][1]:.2f}")


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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--load", type=int, default=0)
    a = ap.parse_args()
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    # Measure srd as an installed package runs: with its bytecode cached (some sandboxes set
    # PYTHONDONTWRITEBYTECODE, which would make every start recompile srd's sources).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(__file__).resolve().parents[1] / "doerunner")], check=True)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        shell_benchmark(a.shell_cases, work, a.rounds, a.load)
        dummy_benchmark([int(x) for x in a.dummy.split(",")], work)
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
