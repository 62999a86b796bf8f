#!/usr/bin/env python3
"""Does srd's output capture keep up with a chatty command (issue 17)? A command that writes
N bytes to stdout, run by ``srd run``, against a bare Python ``os.read`` loop on a pipe from
the same command, measured in the same run.

Two producers: binary zeros (``head -c N /dev/zero``: no lines at all) and metric lines
(``yes lat_ms=1.5 | head -c N``: 11-byte ``key=value`` lines, each one parsed by srd).

- reference: a bare loop in this process: ``/bin/sh -c PRODUCER`` started with its stdout on
  a pipe, in a session of its own as srd starts a case, ``os.read`` until EOF, timed from
  just before the start to EOF. Two set-ups, the faster is the reference: srd's (a pipe
  grown to 1 MiB, 1 MiB reads) and Python's default (a 64 KiB pipe, 64 KiB reads). The
  session matters on a busy machine: with Linux's autogroup scheduling
  (``/proc/sys/kernel/sched_autogroup_enabled``) a session is a CPU-scheduling group of its
  own, so a producer in its own session gets less of the CPUs than one sharing the
  reader's. The same loop with the producer in the reader's session is shown as well, for
  information (it is not the reference: srd's cases get their own session for the kill of
  their process tree, whatever the capture).
- srd: ``srd run --quiet --warmup 0 --telemetry off`` of a one-case cases.csv whose cmd is
  the producer; its ``run_seconds`` from metrics.csv (from just before the start to the
  command's exit, srd's capture of every byte included: the command cannot finish writing
  faster than srd reads). Its metrics and its capped stdout log are checked.

Rounds are interleaved (reference, srd); each figure is the median of its rounds. Target: srd
at >= 0.80x the reference for both producers.

Usage: python benchmarks/capture.py [--bytes 2G] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRD = [sys.executable, "-m", "doerunner"]
TARGET = 0.80
LOG_CAP = 10 << 20  # srd's default --log-cap
PRODUCERS = {  # name -> (the command for N bytes, the metrics srd must report)
    "binary zeros": ("head -c {n} /dev/zero", {}),
    "metric lines": ("yes lat_ms=1.5 | head -c {n}", {"lat_ms": 1.5}),
}
# (pipe capacity to set, None: the default; bytes per read; the producer in a new session)
BARE_SETUPS = {"srd's set-up (1 MiB pipe, 1 MiB reads)": (1 << 20, 1 << 20, True),
               "default pipe, 64 KiB reads": (None, 1 << 16, True)}
SAME_SESSION = "default pipe, 64 KiB reads, no new session"


def size(text: str) -> int:
    """``2G`` / ``512M`` / ``64K`` / ``1000``: bytes (binary multiples)."""
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text[:-1] if mult > 1 else text) * mult


def bare(cmd: str, capacity: int | None, read_size: int, session: bool) -> tuple[float, int]:
    """Seconds from just before ``cmd`` starts to EOF on its stdout, and the bytes read."""
    r, w = os.pipe()
    if capacity is not None:
        fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, capacity)
    t0 = time.perf_counter()
    p = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=w,
                         start_new_session=session)
    os.close(w)
    total = 0
    read = os.read
    try:
        while data := read(r, read_size):
            total += len(data)
    finally:
        os.close(r)
    seconds = time.perf_counter() - t0
    p.wait()
    return seconds, total


def srd(cmd: str, work: Path, n: int, metrics: dict[str, float]) -> float:
    """``run_seconds`` of one ``srd run`` of ``cmd``; its metrics and log checked."""
    cases = work / "cases.csv"
    with open(cases, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([["case_id", "cmd"], ["chatty", cmd]])
    out = work / "m.csv"
    p = subprocess.run([*SRD, "run", "--cases", str(cases), "--out", str(out), "--quiet",
                        "--warmup", "0", "--telemetry", "off"], cwd=work,
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        sys.exit(f"srd run failed ({p.returncode}): {p.stderr[-2000:]}")
    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    got = {k: float(row[k]) if row.get(k) else None for k in metrics}
    if got != metrics:
        sys.exit(f"srd reported {got}, expected {metrics}")
    log = work / "m_run" / "logs" / "chatty.stdout"
    note = f"\n[srd: {n - LOG_CAP} bytes omitted; log capped at {LOG_CAP} bytes]\n"
    expected = n if n <= LOG_CAP else LOG_CAP + len(note)
    if log.stat().st_size != expected:
        sys.exit(f"{log}: {log.stat().st_size} bytes, expected {expected}")
    return float(row["run_seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=size, default=2 << 30, help="bytes written (2G, 256M...)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    n, mb = a.bytes, a.bytes / 1e6
    print(f"## a command writing {n} bytes to stdout: {a.rounds} interleaved rounds, medians, "
          "MB/s")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="srd-capture-bench-") as tmp:
        work = Path(tmp)
        for name, (template, metrics) in PRODUCERS.items():
            cmd = template.format(n=n)
            if metrics and n % 11 in (8, 9):  # a last line without newline counts too:
                metrics = {"lat_ms": 1.0}  # "lat_ms=1" or "lat_ms=1." (2G ends "la")
            setups = {**BARE_SETUPS, SAME_SESSION: (None, 1 << 16, False)}
            got: dict[str, list[float]] = {k: [] for k in (*setups, "srd")}
            for _ in range(a.rounds):
                for label, setup in setups.items():
                    seconds, total = bare(cmd, *setup)
                    if total != n:
                        sys.exit(f"{cmd}: {total} bytes read, expected {n}")
                    got[label].append(seconds)
                got["srd"].append(srd(cmd, work, n, metrics))
            rate = {k: mb / statistics.median(v) for k, v in got.items()}
            reference = max(rate[k] for k in BARE_SETUPS)
            ratio = rate["srd"] / reference
            paired = statistics.median(  # each round's srd against that round's faster loop
                min(got[k][i] for k in BARE_SETUPS) / got["srd"][i] for i in range(a.rounds))
            ok = ratio >= TARGET
            verdicts.append(ok)
            print(f"### {name}: `{cmd}`")
            for label in BARE_SETUPS:
                print(f"  bare os.read loop, {label:<38} {rate[label]:8.0f} MB/s")
            print(f"  {'srd run (run_seconds)':<57} {rate['srd']:8.0f} MB/s")
            print(f"  {'(information) bare loop, producer in the reader session':<57} "
                  f"{rate[SAME_SESSION]:8.0f} MB/s")
            print(f"  srd / reference (the faster bare loop): {ratio:.2f}   "
                  f"target >= {TARGET:.2f}: {'ok' if ok else 'FAIL'}   "
                  f"(paired per round: {paired:.2f})")
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
