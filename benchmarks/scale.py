#!/usr/bin/env python3
"""Cases per second for the local serial, the local parallel (--jobs) and the Dask
(--executor dask, a LocalCluster of 2 workers) executors, on trivial cases and on 0.2 s
sleep-bound cases, in one run. The Dask times include starting and closing the LocalCluster
(about 2 s), as a user's `srd run --executor dask` does.

Usage: python benchmarks/scale.py [--trivial 300] [--sleepy 20] [--jobs 2,4] [--dask 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def srd(cases: Path, work: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "doerunner", "run", "--cases", str(cases),
                        "--out", str(work / "m.csv"), "--quiet", *extra],
                       env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trivial", type=int, default=300)
    ap.add_argument("--sleepy", type=int, default=20)
    ap.add_argument("--jobs", default="2,4")
    ap.add_argument("--dask", type=int, default=2, help="LocalCluster workers (0: skip)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        sets = {
            f"{a.trivial} trivial cases (true)": "".join(f"t{i},true\n" for i in range(a.trivial)),
            f"{a.sleepy} cases of 0.2 s (sleep 0.2)": "".join(f"s{i},sleep 0.2\n"
                                                              for i in range(a.sleepy)),
        }
        for name, rows in sets.items():
            cases = work / "cases.csv"
            cases.write_text("case_id,cmd\n" + rows)
            n = rows.count("\n")
            serial = srd(cases, work)
            print(f"## {name}")
            print(f"  serial          {serial:7.2f} s  {n / serial:8.1f} cases/s")
            for j in a.jobs.split(","):
                t = srd(cases, work, "--jobs", j)
                print(f"  --jobs {j:<8} {t:7.2f} s  {n / t:8.1f} cases/s  "
                      f"({serial / t:.2f}x serial)")
            if a.dask:
                t = srd(cases, work, "--executor", "dask", "--jobs", str(a.dask))
                print(f"  dask {a.dask} workers {t:7.2f} s  {n / t:8.1f} cases/s  "
                      f"({serial / t:.2f}x serial)")


if __name__ == "__main__":
    main()
