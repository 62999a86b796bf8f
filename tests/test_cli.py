"""`srd run` / `srd validate` end to end: CliRunner and real subprocesses, exact exit codes."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from doerunner.cli import cli

from .conftest import REPO, run_srd

CLEAN = """case_id,backend,repeat,users,tags,note_n,threshold_p95
a,dummy,1,1,smoke,first,<=0.5
b,dummy,2,2,smoke load,second,
"""

VIOLATED = """case_id,backend,threshold_p95,threshold_throughput_rps
a,dummy,<=0.001,
b,dummy,,>=1
"""


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_clean_run_exits_0_and_writes_everything(tmp_path, write_cases, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = write_cases(CLEAN)
    r = invoke("run", "--cases", str(cases), "--out", "m.csv")
    assert r.exit_code == 0, r.output
    rows = read_rows(tmp_path / "m.csv")
    assert [x["case_id"] for x in rows] == ["a", "b"]
    assert [x["status"] for x in rows] == ["OK", "OK"]
    assert rows[0]["param_users"] == "1" and rows[0]["tag_smoke"] == "1"
    assert rows[0]["tag_load"] == "" and rows[1]["tag_load"] == "1"
    assert rows[1]["runs"] == "2" and rows[0]["runs"] == ""
    assert rows[0]["ts_start"].endswith("+09:00")
    run_dir = tmp_path / "m_run"
    journal = (run_dir / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["case"]["case_id"] for line in journal] == ["a", "b"]
    run_json = json.loads((run_dir / "run.json").read_text())
    assert [c["case_id"] for c in run_json["cases"]] == ["a", "b"]
    assert len(run_json["cases"][1]["runs"]) == 2
    assert run_json["cases"][1]["definition"]["params"] == {"users": "2"}
    assert run_json["summary"]["exit_code"] == 0
    assert "srd: 2 of 2 cases finished (2 OK)" in r.output
    v = invoke("validate", "m.csv", "--cases", str(cases))
    assert v.exit_code == 0, v.output


def test_violation_only_exits_2(tmp_path, write_cases) -> None:
    out = tmp_path / "m.csv"
    r = invoke("run", "--cases", str(write_cases(VIOLATED)), "--out", str(out))
    assert r.exit_code == 2, r.output
    rows = read_rows(out)
    assert rows[0]["violations"].startswith("p95>0.001")
    assert rows[1]["violations"] == ""
    assert rows[0]["threshold_p95"] == "<=0.001"


def test_tz_option(tmp_path, write_cases) -> None:
    out = tmp_path / "m.csv"
    r = invoke("run", "--cases", str(write_cases(CLEAN)), "--out", str(out), "--tz", "UTC")
    assert r.exit_code == 0
    assert read_rows(out)[0]["ts_start"].endswith("+00:00")
    r = invoke("run", "--cases", str(write_cases(CLEAN)), "--out", str(out), "--tz", "Mars/Base")
    assert r.exit_code == 4


@pytest.mark.parametrize("args", [
    ["run"],                                   # missing --cases
    ["run", "--cases", "x.csv", "--bogus"],   # unknown option
    ["run", "--cases", "x.csv", "--retries", "-1"],
    ["nosuchcommand"],
])
def test_usage_errors_exit_4_not_2(args: list[str]) -> None:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 4, r.output


def test_usage_error_exit_4_in_subprocess(tmp_path) -> None:
    p = run_srd("run", "--nope", cwd=tmp_path)
    assert p.returncode == 4
    assert "Error: No such option '--nope'." in p.stderr


def test_bad_cases_exit_4_and_touch_nothing(tmp_path, write_cases) -> None:
    out = tmp_path / "m.csv"
    out.write_text("precious\n")
    cases = write_cases("case_id,backend,timeout_s\na,dummy,abc\na,dummy,1\n")
    p = run_srd("run", "--cases", str(cases), "--out", str(out), cwd=tmp_path)
    assert p.returncode == 4
    assert p.stderr.splitlines()[:2] == [
        f"{cases}:2:3: timeout_s must be a positive number of seconds, got 'abc'",
        f"{cases}:3:1: case_id 'a' duplicates line 2",
    ]
    assert "Traceback" not in p.stderr
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "m_run").exists()


def test_out_in_missing_directory_exits_4(tmp_path, write_cases) -> None:
    r = invoke("run", "--cases", str(write_cases(CLEAN)), "--out",
               str(tmp_path / "nope" / "m.csv"))
    assert r.exit_code == 4
    assert "does not exist" in r.output


def test_dry_run_runs_nothing(tmp_path, write_cases) -> None:
    cases = write_cases("case_id,cmd,n\nx,touch {n},made\n")
    r = invoke("run", "--cases", str(cases), "--out", str(tmp_path / "m.csv"), "--dry-run")
    assert r.exit_code == 0
    assert "x\tshell\ttimeout=600s\trepeat=1\twarmup=0\ttouch made" in r.output
    assert not (tmp_path / "m.csv").exists()
    assert not (tmp_path / "made").exists()


def test_mixed_cases_exit_3_validate_and_kill_tree(tmp_path) -> None:
    """The README's mixed example: OK, FAIL, TIMEOUT, all metric formats, hostile values."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    cases = shutil.copy(REPO / "cases" / "mixed.csv", tmp_path / "mixed.csv")
    p = run_srd("run", "--cases", "mixed.csv", "--out", "m.csv", "--kill-grace", "0.5",
                cwd=tmp_path)
    assert p.returncode == 3, p.stdout + p.stderr
    rows = {r["case_id"]: r for r in read_rows(tmp_path / "m.csv")}
    assert list(rows) == ["ok-kv", "ok-json", "ok-nested", "ok-ext", "ok-hostile",
                          "slow-violation", "fail-exit", "timeout-sleep"]
    assert rows["ok-kv"]["p95"] == "0.050000" and rows["ok-kv"]["queue_depth"] == "7"
    assert rows["ok-kv"]["throughput_rps"] == "1000.00"
    assert rows["ok-json"]["cache_hit_ratio"] == "0.93"
    assert rows["ok-json"]["throughput_rps"] == "1500.50"
    assert float(rows["ok-nested"]["latency_p95"]) > 0
    assert rows["ok-nested"]["ext_tool_version"] == "json-demo-1.0"
    assert rows["ok-ext"]["ext_build"] == "abc123" and rows["ok-ext"]["ext_host"] == "runner-1"
    assert rows["ok-ext"]["custom_score"] == "42"
    assert rows["ok-hostile"]["status"] == "OK"
    label = "$(touch pwned) `touch pwned` ; touch pwned ' ; \"quoted\" 日本語"
    assert rows["ok-hostile"]["param_label"] == label
    assert (tmp_path / "m_run" / "logs" / "ok-hostile.stdout").read_text(
        encoding="utf-8").splitlines()[:2] == [f"argument: {label}", f"env: {label}"]
    assert not (tmp_path / "pwned").exists()
    assert rows["slow-violation"]["violations"] == "p95>0.1"
    assert rows["fail-exit"]["status"] == "FAIL"
    assert rows["fail-exit"]["exit_code"] == "7" and rows["fail-exit"]["errors"] == "3"
    assert rows["fail-exit"]["message"] == "exit code 7"
    t = rows["timeout-sleep"]
    assert t["status"] == "TIMEOUT" and t["message"] == "timed out after 1 s"
    assert abs(float(t["run_seconds"]) - 1.0) <= 0.2
    assert int(t["errors"]) >= 1
    sleepers = [q for q in psutil.process_iter(["cmdline"])
                if (q.info["cmdline"] or [])[:2] == ["sleep", "30"]]
    assert sleepers == []
    v = run_srd("validate", "m.csv", "--cases", "mixed.csv", cwd=tmp_path)
    assert v.returncode == 0, v.stderr
    assert cases


def test_python_api(tmp_path, write_cases) -> None:
    import doerunner

    cases = doerunner.read_cases(write_cases(CLEAN))
    s = doerunner.run(cases, out=tmp_path / "api.csv", quiet=True, handle_signals=False)
    assert s.exit_code == 0 and s.counts["OK"] == 2
    assert [r["case_id"] for r in read_rows(tmp_path / "api.csv")] == ["a", "b"]


def test_help_is_fast_and_lists_options() -> None:
    p = run_srd("run", "--help")
    assert p.returncode == 0
    for opt in ("--cases", "--out", "--run-dir", "--backend", "--timeout", "--tz",
                "--fail-fast", "--quiet", "--debug", "--dry-run"):
        assert opt in p.stdout


def test_fail_fast_stops_at_first_failure(tmp_path, write_cases) -> None:
    cases = write_cases("case_id,backend,fail\na,dummy,\nb,dummy,1\nc,dummy,\n")
    out = tmp_path / "m.csv"
    r = invoke("run", "--cases", str(cases), "--out", str(out), "--fail-fast")
    assert r.exit_code == 3
    assert [x["case_id"] for x in read_rows(out)] == ["a", "b"]
    assert "1 case(s) not run (--fail-fast)" in r.output


def test_validate_reports_problems_exit_4(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"case_id,status,run_seconds,p95,p99,throughput_rps,errors,ts_start,ts_end,"
                    b"backend,exit_code,message,violations\n"
                    b"a,MAYBE,1.5,,,,0,2025-01-01T00:00:00+09:00,2025-01-01T00:00:01+09:00,"
                    b"shell,0,,\n")
    r = CliRunner().invoke(cli, ["validate", str(bad)])
    assert r.exit_code == 4
    assert f"{bad}:2:2: status 'MAYBE'" in r.output
    assert f"{bad}:2:3: run_seconds '1.5' must have 6 decimals" in r.output


def test_run_dir_option(tmp_path, write_cases) -> None:
    r = invoke("run", "--cases", str(write_cases(CLEAN)), "--out", str(tmp_path / "m.csv"),
               "--run-dir", str(tmp_path / "runs" / "today"))
    assert r.exit_code == 0
    assert (tmp_path / "runs" / "today" / "journal.jsonl").exists()
    assert not (tmp_path / "m_run").exists()


def test_bar_on_a_terminal_shows_progress_inside_a_long_case(tmp_path) -> None:
    """Under a pseudo-terminal srd draws a tqdm bar; a case that runs longer than 2 s gets a
    second bar with its repetitions (hf cases: warm-up requests and batches)."""
    (tmp_path / "cases.csv").write_text("case_id,cmd,repeat\nquick,true,1\nlong,sleep 0.9,4\n")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "doerunner", "run", "--cases", "cases.csv",
                          "--out", "m.csv"], cwd=tmp_path, env=env, stdin=slave, stdout=slave,
                         stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(30) == 0
    text = out.decode("utf-8", "replace")
    assert re.search(r"long: 100%.*\| 2/2 \[", text)  # the run's bar: cases
    assert re.search(r"repetition: +75%.*\| 3/4 \[", text)  # the case's, shown after 2 s
    assert "srd: 2 of 2 cases finished (2 OK)" in text


def test_a_closed_stdout_neither_stops_a_run_nor_makes_export_fail_loudly(tmp_path) -> None:
    """`srd run ... | head -1`: the lines stop, the run goes on and writes every row;
    `srd export | head -1`: srd stops quietly with 141 (128 + SIGPIPE), as `cat` does."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n" + "".join(f"c{i},echo p50={i}\n" for i in range(50)))
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def closed_reader(*args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.Popen([sys.executable, "-m", "doerunner", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()  # the reader is gone before srd writes its first line
        err = p.stderr.read()
        return subprocess.CompletedProcess(args, p.wait(60), "", err)

    p = closed_reader("run", "--cases", "cases.csv", "--out", "m.csv")
    assert p.returncode == 0, p.stderr
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["p50"] for r in rows] == [f"{i}.000000" for i in range(50)]
    for fmt in ("csv", "json"):
        p = closed_reader("export", "--format", fmt)
        assert (p.returncode, p.stderr) == (141, ""), fmt
