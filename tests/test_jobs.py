"""`--jobs N`: cases side by side, rows and journal still in order, timeouts per case."""

from __future__ import annotations

import csv
import signal
import time
from pathlib import Path

from click.testing import CliRunner

from doerunner.cli import cli

from .test_resume import journal_ids, marked_processes, srd_popen, wait_for

CASES = "case_id,cmd,timeout_s\n" + "".join(
    f"c{i},sleep 0.{i % 3 + 2}; echo p95=0.0{i + 1} n={i},10\n" for i in range(6)) + \
    "slow,sleep 30,0.5\n"

# Timings, and what srd measured of the host (a serial run also has the host-wide columns).
DROP = {"run_seconds", "ts_start", "ts_end", "cpu_user_s", "cpu_sys_s", "cpu_util",
        "mem_peak_mb", "disk_io_mb", "threads_active", "network_io_mb"}


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in DROP} for r in csv.DictReader(f)]


def test_jobs_gives_the_serial_rows_in_input_order(tmp_path, write_cases, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = write_cases(CASES)
    serial = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", "s.csv"])
    parallel = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", "p.csv",
                                        "--jobs", "3"])
    assert serial.exit_code == parallel.exit_code == 3  # "slow" times out in both
    assert rows(tmp_path / "p.csv") == rows(tmp_path / "s.csv")
    assert [r["case_id"] for r in rows(tmp_path / "p.csv")] == [f"c{i}" for i in range(6)] + [
        "slow"]
    assert sorted(journal_ids(tmp_path / "p_run")) == sorted(journal_ids(tmp_path / "s_run"))
    with open(tmp_path / "p.csv", newline="") as f:
        slow = next(r for r in csv.DictReader(f) if r["case_id"] == "slow")
    assert slow["status"] == "TIMEOUT" and abs(float(slow["run_seconds"]) - 0.5) < 0.2


def test_jobs_refuses_telemetry_on(tmp_path, write_cases) -> None:
    r = CliRunner().invoke(cli, ["run", "--cases", str(write_cases(CASES)), "--out",
                                 str(tmp_path / "m.csv"), "--jobs", "2", "--telemetry", "on"])
    assert r.exit_code == 4
    assert "--jobs 2 with --telemetry on" in r.output


def test_jobs_interrupted_kills_every_running_case(tmp_path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n" + "".join(f"s{i},sleep 64.{i}\n" for i in range(4)))
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--jobs", "3",
                     "--kill-grace", "0.5", cwd=tmp_path)
    wait_for(lambda: all(marked_processes(f"64.{i}") for i in range(3)), proc=proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    time.sleep(0.2)
    assert all(marked_processes(f"64.{i}") == [] for i in range(4))


def test_jobs_is_bounded_and_never_more_slots_than_cases(tmp_path) -> None:
    """Issue 17: `-j 99999999999999999999` built a slot (a thread, a backend) per job and
    grew without bound; now at most 1024, and never more slots than cases."""
    r = CliRunner().invoke(cli, ["run", "-j", "1025", "--", "true"])
    assert r.exit_code == 4
    assert r.output.splitlines()[-1] == ("Error: Invalid value for '-j' / '--jobs': 1025 is "
                                         "not in the range 1<=x<=1024.")
    r = CliRunner().invoke(cli, ["run", "--dry-run", "-j", "1000", "--telemetry", "off",
                                 "-L", "n", "1,2", "--", "echo {n}"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "# executor: local (2 cases at once)"
