#!/usr/bin/env python3
"""Wall time and peak memory of the after-the-run commands on a large run: `srd report`
(terminal and --html), `srd effects`, `srd compare` (the run against itself, and a run of 5
repetitions a case against one where every value is 20 % higher, so that every pair is put
through the significance test) and `srd export --format csv/parquet`, each as its own
subprocess, against the targets (< 10 s, < 1 GiB).

The run is made by `srd run --quiet` on N dummy cases (default 100,000) with three
parameters (batch × mode × threads), a tag on every tenth case and a threshold, registered
in a private history ($SRD_HOME in a temporary folder); the repeated run is the same cases
with repeat=5, and its "new" twin is derived from it (metrics.csv and repetitions.csv × 1.2).

Usage: python benchmarks/analysis.py [--cases 100000] [--keep DIR]
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
TARGET_S = 10.0
TARGET_BYTES = 1 << 30


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int]:
    """(wall s, peak RSS bytes, exit code) of ``python -m doerunner ARGS``."""
    t0 = time.perf_counter()
    with open(cwd / "stdout.txt", "wb") as out, open(cwd / "stderr.txt", "wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "doerunner", *args], cwd=cwd, env=env,
                             stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, p.returncode  # ru_maxrss is KiB on Linux


def make_cases(path: Path, n: int, repeat: int = 1) -> None:
    with open(path, "w") as f:
        f.write("case_id,backend,batch,mode,threads,tag_hot,threshold_p95,repeat\n")
        for i in range(n):
            f.write(f"c{i:06d},dummy,{1 << (i % 4)},{('a', 'b', 'c')[i % 3]},{i % 5 + 1},"
                    f"{'1' if i % 10 == 0 else ''},{'0.09' if i % 7 == 0 else ''},{repeat}\n")


def slower_twin(work: Path, factor: float = 1.2) -> None:
    """``rep_new.csv`` and its run directory: ``rep.csv``'s run with p95 and run_seconds
    (and their repetitions) × ``factor``, consistent as a real run's files are."""
    import pandas as pd

    reps = pd.read_csv(work / "rep_run" / "repetitions.csv", dtype={"case_id": str})
    scaled = reps["metric"].isin(["p95", "run_seconds"])
    reps.loc[scaled, "value"] *= factor
    (work / "rep_new_run").mkdir(exist_ok=True)
    reps.to_csv(work / "rep_new_run" / "repetitions.csv", index=False)
    df = pd.read_csv(work / "rep.csv", dtype=str, keep_default_na=False)
    walls = reps[reps["metric"] == "run_seconds"].groupby("case_id", sort=False)["value"]
    df["run_seconds"] = walls.mean().reindex(df["case_id"]).map("{:.6f}".format).to_numpy()
    df["p95"] = (pd.to_numeric(df["p95"]) * factor).map("{:.6f}".format)
    df.to_csv(work / "rep_new.csv", index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO), SRD_HOME=str(work / "home"))
        make_cases(work / "cases.csv", a.cases)
        wall, rss, code = timed(["run", "--cases", "cases.csv", "--out", "metrics.csv",
                                 "--quiet", "--telemetry", "off", "--project", "bench"],
                                env, work)
        print(f"srd run: {a.cases} dummy cases in {wall:.1f} s (exit {code}), "
              f"peak RSS {rss / 2**20:.0f} MiB")
        make_cases(work / "rep_cases.csv", a.cases, repeat=5)
        wall, rss, code = timed(["run", "--cases", "rep_cases.csv", "--out", "rep.csv",
                                 "--quiet", "--telemetry", "off"], env, work)
        print(f"srd run: {a.cases} dummy cases x 5 repetitions in {wall:.1f} s (exit {code}), "
              f"peak RSS {rss / 2**20:.0f} MiB")
        slower_twin(work)
        commands = {
            "report": ["report", "metrics.csv"],
            "report --html": ["report", "metrics.csv", "--html", "report.html"],
            "effects": ["effects", "metrics.csv"],
            "compare (itself)": ["compare", "metrics.csv", "metrics.csv"],
            "compare (x5, all +20%)": ["compare", "rep.csv", "rep_new.csv", "--metric", "p95",
                                       "--metric", "run_seconds"],
            "export --format csv": ["export", "--format", "csv", "--out", "all.csv"],
            "export --format parquet": ["export", "--format", "parquet", "--out",
                                        "all.parquet"],
            "export csv --tag hot": ["export", "--format", "csv", "--tag", "hot", "--out",
                                     "hot.csv"],
        }
        print(f"{'command':<26}{'wall s':>8}{'peak RSS MiB':>14}  exit  verdict")
        failed = False
        expected = {"compare (x5, all +20%)": 2}  # every case regressed
        for name, args in commands.items():
            wall, rss, code = timed(args, env, work)
            ok = wall < TARGET_S and rss < TARGET_BYTES and code == expected.get(name, 0)
            failed |= not ok
            print(f"{name:<26}{wall:>8.2f}{rss / 2**20:>14.0f}  {code:>4}  "
                  f"{'ok' if ok else 'OVER TARGET' if code == expected.get(name, 0) else 'FAILED'}")
            if code != expected.get(name, 0):
                print((work / "stderr.txt").read_text()[-2000:])
        print(f"targets: < {TARGET_S:g} s and < {TARGET_BYTES / 2**30:g} GiB each")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
