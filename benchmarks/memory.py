#!/usr/bin/env python3
"""Peak memory (RSS) of the commands that read results back, each a real `srd` subprocess
(its own peak, from `wait4`), on inputs far larger than its bound, against the targets:

* `srd export` (--format json, csv, parquet, and csv --split) of a history holding a
  5,000-column run and a 100,000-row run: <= 300 MiB each — the union of the columns
  times the rows is half a billion cells, which a frame of the union would hold;
* `srd report` (terminal and --html) of a run of 1,000,000 rows: <= 1 GiB;
* `srd validate` of that metrics.csv: <= 300 MiB;
* `srd design` of a YAML alias bomb (aliases of aliases: 10^9 values expanded): refused
  (exit 4) in under a second.

The runs are made by `srd run --quiet` on dummy cases, registered in a private history
($SRD_HOME in a temporary folder): the long run has the 21 columns of a dummy sweep (three
parameters, a tag, a threshold), the wide run 10 cases of 5,000 parameters (numbers and
text). The million-row run directory is the long run's metrics.csv and run.json with their
rows repeated (case ids suffixed `-1`, `-2`, ...), as srd would have written them.

Usage: python benchmarks/memory.py [--rows 100000] [--report-rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
EXPORT_BYTES = 300 * MiB
REPORT_BYTES = 1024 * MiB
VALIDATE_BYTES = 300 * MiB
DESIGN_S = 1.0
WIDE_COLUMNS = 5000


def measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int]:
    """(wall s, peak RSS bytes, exit code) of ``python -m doerunner ARGS``."""
    t0 = time.perf_counter()
    with open(cwd / "stdout.txt", "wb") as out, open(cwd / "stderr.txt", "wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "doerunner", *args], cwd=cwd, env=env,
                             stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def make_long(path: Path, n: int) -> None:
    with open(path, "w") as f:
        f.write("case_id,backend,batch,mode,threads,tag_hot,threshold_p95\n")
        for i in range(n):
            f.write(f"c{i:06d},dummy,{1 << (i % 4)},{('a', 'b', 'c')[i % 3]},{i % 5 + 1},"
                    f"{'1' if i % 10 == 0 else ''},{'0.09' if i % 7 == 0 else ''}\n")


def make_wide(path: Path, rows: int = 10) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["case_id", "backend", *(f"p{i:04d}" for i in range(WIDE_COLUMNS))])
        for r in range(rows):
            w.writerow([f"w{r}", "dummy", *(str(i * r % 97) if i % 3 else f"v{i}"
                                             for i in range(WIDE_COLUMNS))])


def repeated(metrics: Path, run_dir: Path, out: Path, rows: int) -> None:
    """``out`` (a metrics.csv) and ``<out stem>_run/run.json``: the rows of ``metrics``
    and the cases of ``run_dir``/run.json repeated up to ``rows``, case ids suffixed with
    the repetition. Both streamed: a process's peak RSS counts its parent's at the fork, so
    this one stays small."""
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        k = rep = 0
        while k < rows:
            with open(metrics, newline="") as src:
                reader = csv.reader(src)
                header = next(reader)
                if rep == 0:
                    w.writerow(header)
                for row in itertools.islice(reader, rows - k):
                    w.writerow([f"{row[0]}-{rep}", *row[1:]])
                    k += 1
            rep += 1
    # run.json as srd writes it: the head, ` "cases": [`, one case a line, ` ]`, `}`
    folder = out.parent / f"{out.stem}_run"
    folder.mkdir(exist_ok=True)
    with open(folder / "run.json", "wb") as f:
        k = rep = 0
        while k < rows:
            with open(run_dir / "run.json", "rb") as src:
                for line in src:  # the head
                    if rep == 0:
                        f.write(line.replace(metrics.name.encode(), out.name.encode()))
                    if line == b' "cases": [\n':
                        break
                for line in src:  # the cases
                    if line.startswith(b" ]") or k == rows:
                        break
                    f.write((b",\n" if k else b"") + line.rstrip(b",\n"))
                    k += 1
            rep += 1
        f.write(b"\n ]\n}\n")


def _size(path: Path) -> int:
    """Bytes of the file (or the files in the folder) at ``path``, which is then removed."""
    if path.is_dir():
        n = sum(_size(p) for p in path.iterdir())
        path.rmdir()
        return n
    if not path.is_file():
        return 0
    n = path.stat().st_size
    path.unlink()
    return n


# aliases of aliases: i stands for 10^9 values once expanded
BOMB = "design: full\nfactors:\n  a: &a [" + ", ".join(['"x"'] * 10) + "]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the long run")
    ap.add_argument("--report-rows", type=int, default=1_000_000,
                    help="rows of the run report and validate read")
    ap.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO), SRD_HOME=str(work / "home"))
        make_long(work / "long.csv", a.rows)
        make_wide(work / "wide.csv")
        for name in ("long", "wide"):
            wall, rss, code = measured(["run", "--cases", f"{name}.csv", "--out",
                                        f"m_{name}.csv", "--quiet", "--telemetry", "off",
                                        "--project", name], env, work)
            size = (work / f"m_{name}.csv").stat().st_size
            print(f"srd run ({name}): {wall:.1f} s, exit {code}, metrics.csv "
                  f"{size / MiB:.1f} MiB")
            if code not in (0, 2):
                sys.exit((work / "stderr.txt").read_text()[-2000:])
        repeated(work / "m_long.csv", work / "m_long_run", work / "big.csv", a.report_rows)
        big, big_json = work / "big.csv", work / "big_run" / "run.json"
        print(f"a run of {a.report_rows} rows: big.csv {big.stat().st_size / MiB:.0f} MiB, "
              f"big_run/run.json {big_json.stat().st_size / MiB:.0f} MiB")
        (work / "bomb.yaml").write_text(BOMB)
        checks = [  # (name, args, peak RSS target, wall target, expected exit, output)
            ("export --format json", ["export", "--format", "json", "--out", "x.json"],
             EXPORT_BYTES, None, 0, "x.json"),
            ("export --format csv", ["export", "--format", "csv", "--out", "x.csv"],
             EXPORT_BYTES, None, 0, "x.csv"),
            ("export --format parquet", ["export", "--format", "parquet", "--out",
                                         "x.parquet"], EXPORT_BYTES, None, 0, "x.parquet"),
            ("export --split", ["export", "--format", "csv", "--split", "split"],
             EXPORT_BYTES, None, 0, "split"),
            (f"report ({a.report_rows} rows)", ["report", "big.csv"], REPORT_BYTES, None, 0,
             None),
            ("report run dir --html", ["report", "big_run", "--html", "r.html"],
             REPORT_BYTES, None, 0, "r.html"),
            (f"validate ({a.report_rows} rows)", ["validate", "big.csv"], VALIDATE_BYTES,
             None, 0, None),
            ("design (alias bomb)", ["design", "bomb.yaml", "--out", "bomb.csv"], None,
             DESIGN_S, 4, None),
        ]
        print(f"\n{'command':<28}{'target':>18}{'wall s':>9}{'peak RSS MiB':>14}"
              f"{'output MiB':>12}  exit  verdict")
        failed = False
        for name, args, max_rss, max_wall, expected, output in checks:
            wall, rss, code = measured(args, env, work)
            ok = (code == expected and (max_rss is None or rss <= max_rss)
                  and (max_wall is None or wall < max_wall))
            target = (f"<= {max_rss // MiB} MiB" if max_rss is not None
                      else f"< {max_wall:g} s, exit {expected}")
            written = _size(work / output) if output else 0
            failed |= not ok
            size = f"{written / MiB:.0f}" if output else "-"
            print(f"{name:<28}{target:>18}{wall:>9.2f}{rss / MiB:>14.0f}{size:>12}  {code:>4}  "
                  f"{'ok' if ok else 'FAIL'}")
            if code != expected:
                print((work / "stderr.txt").read_text()[-2000:])
        harness = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(this script's own peak RSS: {harness:.0f} MiB; a child's peak counts it "
              "when larger)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
