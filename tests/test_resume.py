"""Nothing lost: a killed srd resumes, Ctrl-C stops cleanly, old runs are kept aside."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from doerunner.cli import cli

from .conftest import REPO, run_srd

_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_stray_srd():
    """A failing test must not leave its srd (and the cases it runs) behind."""
    yield
    while _started:
        p = _started.pop()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def srd_popen(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "doerunner", *args], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started.append(p)
    return p


def journal_ids(run_dir: Path) -> list[str]:
    p = run_dir / "journal.jsonl"
    if not p.exists():
        return []
    ids = []
    for line in p.read_bytes().splitlines(keepends=True):
        if line.endswith(b"\n"):
            ids.append(json.loads(line)["case"]["case_id"])
    return ids


def side_ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def read_ids(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [r["case_id"] for r in csv.DictReader(f)]


def wait_for(cond, timeout: float = 30.0, proc: subprocess.Popen[str] | None = None) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"srd ended early ({proc.returncode}): "
                                 f"{proc.stdout.read()} {proc.stderr.read()}")
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def marked_processes(tag: str) -> list[psutil.Process]:
    """Live ``sleep <tag>`` processes (``tag`` is a duration unique to one test)."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if (p.info["cmdline"] or [])[-2:] == ["sleep", tag] and p.info["status"] != "zombie":
                out.append(p)
        except psutil.Error:
            pass
    return out


def test_sigkill_then_resume_runs_each_case_exactly_once(tmp_path: Path) -> None:
    n = 30
    ids = [f"c{i:02d}" for i in range(n)]
    rows = "".join(f"{c},echo {c} >> side.txt; sleep 0.15; echo p95=0.0{i % 9 + 1}\n"
                   for i, c in enumerate(ids))
    (tmp_path / "cases.csv").write_text("case_id,cmd\n" + rows)
    run_dir = tmp_path / "m_run"
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--quiet", cwd=tmp_path)
    # Kill while a case is in flight: it has written its id but is not journaled yet.
    wait_for(lambda: len(journal_ids(run_dir)) >= 5
             and len(side_ids(tmp_path / "side.txt")) == len(journal_ids(run_dir)) + 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = journal_ids(run_dir)
    in_flight = [c for c in side_ids(tmp_path / "side.txt") if c not in done_before]
    assert len(in_flight) == 1
    assert not (tmp_path / "m.csv").exists()  # never a half-written metrics.csv

    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"resuming: {len(done_before)} of {n} cases already done" in p.stdout
    side = side_ids(tmp_path / "side.txt")
    for c in done_before:
        assert side.count(c) == 1, c   # finished before the kill: never ran again
    assert side.count(in_flight[0]) == 2  # the case in flight ran again
    assert sorted(set(side)) == ids
    assert read_ids(tmp_path / "m.csv") == ids  # every row exactly once, in input order
    v = run_srd("validate", "m.csv", "--cases", "cases.csv", cwd=tmp_path)
    assert v.returncode == 0, v.stderr


def test_sigint_exits_130_keeps_rows_and_leaves_no_process(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n"
        "first,echo p95=0.01\n"
        "tree,sleep 61.25 & setsid sleep 61.5 & echo started > started; sleep 61.75\n"
        "third,echo p95=0.03\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "1",
                     cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists(), proc=proc)
    wait_for(lambda: len(marked_processes("61.5")) == 1, proc=proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "to continue, run the same command with --resume" in out
    assert read_ids(tmp_path / "m.csv") == ["first"]
    assert journal_ids(tmp_path / "m_run") == ["first"]
    for tag in ("61.25", "61.5", "61.75"):
        assert marked_processes(tag) == [], tag

    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--resume", "--timeout", "1",
                cwd=tmp_path)
    assert p.returncode == 3  # "tree" now times out after 1 s...
    assert read_ids(tmp_path / "m.csv") == ["first", "tree", "third"]
    for tag in ("61.25", "61.5", "61.75"):
        assert marked_processes(tag) == [], tag  # ...and its whole tree is killed


def test_second_ctrl_c_kills_at_once(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nstubborn,trap '' TERM; echo up > started; sleep 62.5; sleep 62.5\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "60",
                     cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    wait_for(lambda: len(marked_processes("62.5")) == 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130
    wait_for(lambda: marked_processes("62.5") == [], timeout=5)


def test_new_run_moves_old_journal_aside(tmp_path: Path, write_cases) -> None:
    cases = write_cases("case_id,backend\na,dummy\n")
    out = tmp_path / "m.csv"
    for _ in range(2):
        r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out)])
        assert r.exit_code == 0
    run_dir = tmp_path / "m_run"
    assert journal_ids(run_dir) == ["a"]
    aside = sorted(run_dir.glob("journal.*.jsonl"))
    assert len(aside) == 1 and "previous journal moved aside" in r.output


def test_resume_reruns_changed_and_failed_cases(tmp_path: Path, write_cases) -> None:
    out = tmp_path / "m.csv"
    cases = write_cases("case_id,backend,fail,note_x\na,dummy,,n1\nb,dummy,1,n1\nc,dummy,,n1\n")

    def go(*extra: str) -> object:
        return CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out),
                                        "--resume", *extra])

    r = go()
    assert r.exit_code == 3
    assert len(journal_ids(tmp_path / "m_run")) == 3
    # A note is not part of the definition; the parameter `fail` of c is.
    write_cases("case_id,backend,fail,note_x\na,dummy,,n2\nb,dummy,1,n2\nc,dummy,0,n2\n")
    r = go()
    assert r.exit_code == 3
    assert "c: its definition changed since it was journaled; running it again" in r.output
    assert journal_ids(tmp_path / "m_run") == ["a", "b", "c", "c"]
    r = go("--retry-failed")
    assert journal_ids(tmp_path / "m_run") == ["a", "b", "c", "c", "b"]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(x["case_id"], x["status"], x["note_x"]) for x in rows] == [
        ("a", "OK", "n2"), ("b", "FAIL", "n2"), ("c", "OK", "n2")]


def test_torn_last_line_is_ignored(tmp_path: Path, write_cases) -> None:
    cases = write_cases("case_id,backend\na,dummy\nb,dummy\n")
    out = tmp_path / "m.csv"
    assert CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out)]
                              ).exit_code == 0
    first = out.read_bytes()
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # crash mid-write of b
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "--resume"])
    assert r.exit_code == 0
    assert "ignoring a torn last line" in r.output
    assert journal_ids(tmp_path / "m_run") == ["a", "b"]
    # Same rows as the uninterrupted run (a's row is byte-identical: it was not re-run).
    assert out.read_bytes().splitlines()[:2] == first.splitlines()[:2]


def test_retries_record_attempts(tmp_path: Path, write_cases, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # commands run in the current directory
    cases = write_cases(
        "case_id,cmd\nflaky,n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; "
        "test $n -ge 2\n")
    out = tmp_path / "m.csv"
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out),
                                 "--retries", "3"])
    assert r.exit_code == 0, r.output
    assert "flaky: FAIL (exit code 1); retry 1 of 3" in r.output
    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["status"], row["attempts"]) == ("OK", "3")


def test_disk_full_while_journaling_keeps_old_outputs(tmp_path, write_cases, monkeypatch):
    from doerunner.campaign import journal

    out = tmp_path / "m.csv"
    out.write_text("old\n")
    cases = write_cases("case_id,backend\na,dummy\nb,dummy\n")
    real = journal.Journal.append
    calls = {"n": 0}

    def full(self, result, run_id):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, result, run_id)

    monkeypatch.setattr(journal.Journal, "append", full)
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out)])
    assert r.exit_code == 4
    assert "cannot write the journal" in r.output and "No space left on device" in r.output
    assert out.read_text() == "old\n"
    assert journal_ids(tmp_path / "m_run") == ["a"]


def test_unwritable_output_detected_before_running(tmp_path, write_cases, monkeypatch):
    from doerunner.campaign import rundir as campaign

    def nope(directory: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(campaign, "check_writable_dir", nope)
    cases = write_cases("case_id,cmd\na,touch ran\n")
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(tmp_path / "m.csv")])
    assert r.exit_code == 4
    assert "No space left on device" in r.output
    assert not (tmp_path / "ran").exists() and not (tmp_path / "m.csv").exists()


def test_output_write_failure_leaves_no_half_file(tmp_path, write_cases, monkeypatch):
    from doerunner.outputs import metrics_csv

    out = tmp_path / "m.csv"
    out.write_text("old\n")
    real = metrics_csv.format_rows

    def failing(*a, **k):
        yield from real(*a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(metrics_csv, "format_rows", failing)
    cases = write_cases("case_id,backend\na,dummy\n")
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out)])
    assert r.exit_code == 4
    assert "the journal" in r.output and "--resume" in r.output
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_run_directory_lock(tmp_path, write_cases) -> None:
    cases = write_cases("case_id,backend,sleep_s\na,dummy,3\n")
    first = srd_popen("run", "--cases", str(cases), "--out", "m.csv", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "m_run" / ".lock").exists()
             and (tmp_path / "m_run" / ".lock").read_text().strip() == str(first.pid))
    second = run_srd("run", "--cases", str(cases), "--out", "m.csv", cwd=tmp_path)
    assert second.returncode == 4
    assert "is in use by another srd run" in second.stderr
    first.send_signal(signal.SIGINT)
    assert first.wait(20) == 130


def test_csv_safe_neutralises_formulas(tmp_path, write_cases) -> None:
    cases = write_cases('case_id,backend,label\na,dummy,"=HYPERLINK(""http://x"",""y"")"\n'
                        'b,dummy,+cmd|calc\n')
    out = tmp_path / "m.csv"
    assert CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out)]
                              ).exit_code == 0
    with open(out, newline="") as f:
        assert [r["param_label"] for r in csv.DictReader(f)] == [
            '=HYPERLINK("http://x","y")', "+cmd|calc"]
    assert CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out),
                                    "--csv-safe"]).exit_code == 0
    with open(out, newline="") as f:
        assert [r["param_label"] for r in csv.DictReader(f)] == [
            "'=HYPERLINK(\"http://x\",\"y\")", "'+cmd|calc"]


@pytest.mark.parametrize("value", ["$(touch pwned)", "`touch pwned`", "; touch pwned",
                                   "' ; touch pwned '", "x\ntouch pwned", "\"; touch pwned #"])
def test_injection_runs_nothing(tmp_path, write_cases, value) -> None:
    cell = '"' + value.replace('"', '""') + '"'
    cases = write_cases(f"case_id,cmd,v\na,printf '%s' {{v}} > got,{cell}\n")
    p = run_srd("run", "--cases", str(cases), "--out", "m.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "pwned").exists()
    assert (tmp_path / "got").read_text() == value


def test_leftovers_of_a_killed_srd_are_killed_by_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nlong,echo up > started; sleep 63.5\nafter,echo p95=0.01\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    wait_for(lambda: len(marked_processes("63.5")) == 1, proc=proc)
    proc.send_signal(signal.SIGKILL)  # srd cannot clean up after a SIGKILL...
    proc.wait()
    assert len(marked_processes("63.5")) == 1
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nlong,echo up > started\nafter,echo p95=0.01\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "killed 2 process(es) left running by an earlier srd in m_run" in p.stderr
    wait_for(lambda: marked_processes("63.5") == [], timeout=5)  # ...the next run does
