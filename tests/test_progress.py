"""The run's progress display: plain lines in CI logs (parameters, start lines of long
cases, the stderr tail of a failure), --show-output, the bar's second line inside a long case,
and the summary's worst cases."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from doerunner.campaign.progress import BarReporter
from doerunner.cli import cli
from doerunner.inputs.case import Case
from doerunner.inputs.cases import read_cases
from doerunner.results import OK, CaseResult

from .conftest import REPO, run_srd

_SECONDS = re.compile(r"\b\d+\.\d{3} s\b")


def _timeless(text: str) -> list[str]:
    """The lines of ``text`` with every ``1.234 s`` as ``T s`` and the run's wall time as
    ``W``: what is left must be exact."""
    text = re.sub(r" in \d+\.\d s; exit code", " in W s; exit code", text)
    return _SECONDS.sub("T s", text).splitlines()


def _srd(*args: str | Path) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- plain lines --------------------------------------------------------------------------
def test_a_fast_sweep_prints_one_line_per_case_with_its_parameters_and_no_start_line(
        tmp_path) -> None:
    """100 instant cases in a real process (not a terminal): one line each, the parameters
    shortened, no `running...` line, and the slowest three named in the summary."""
    rows = [f"c{i:03d},dummy,{i},/data/sets/experiment-2024/input.bin" for i in range(1, 101)]
    (tmp_path / "cases.csv").write_text("case_id,backend,n,path\n" + "\n".join(rows) + "\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = _timeless(p.stdout)
    assert lines[:100] == [f"[{i:>3}/100] c{i:03d} (n={i} path=/data/sets/experiment...) OK T s"
                           for i in range(1, 101)]
    assert lines[100:102] == ["srd: 100 of 100 cases finished (100 OK) in W s; exit code 0",
                              "  slowest:"]
    assert [re.sub(r"c\d{3} \(n=\d+ ", "cN (n=N ", line) for line in lines[102:105]] == [
        "    cN (n=N path=/data/sets/experiment...) OK T s"] * 3
    assert lines[105:] == ["  metrics:  m.csv",
                           "  run dir:  m_run (run.json, journal.jsonl, logs/)"]
    assert "running" not in p.stdout + p.stderr


def test_a_case_running_past_the_mark_gets_one_start_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("doerunner.campaign.progress.START_LINE_AFTER_S", 0.3)
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,t\nquick,true,0\nslow,sleep {t},1.2\nquick2,true,0\n")
    r = _srd("run", "--cases", tmp_path / "cases.csv", "--out", tmp_path / "m.csv",
             "--telemetry", "off")
    assert r.exit_code == 0, r.output
    assert _timeless(r.stdout)[:4] == [
        "[1/3] quick (t=0) OK T s",
        "[2/3] slow (t=1.2) running...",
        "[2/3] slow (t=1.2) OK T s",
        "[3/3] quick2 (t=0) OK T s"]


def test_labels_shorten_values_and_count_the_parameters_that_do_not_fit(tmp_path) -> None:
    params = ",".join(f"p{i}" for i in range(8))
    (tmp_path / "cases.csv").write_text(
        f"case_id,backend,{params}\n"
        "wide,dummy,\"two words\",xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,,a\tb,4,5,6,7\n")
    r = _srd("run", "--cases", tmp_path / "cases.csv", "--out", tmp_path / "m.csv",
             "--telemetry", "off")
    assert r.exit_code == 0, r.output
    assert _timeless(r.stdout)[0] == (
        "[1/1] wide (p0='two words' p1=xxxxxxxxxxxxxxxxxxxxx... p2='' +5 more) OK T s")


def test_a_failed_line_carries_the_tail_of_its_stderr(tmp_path) -> None:
    """The last 5 non-empty lines of the stderr log, each indented; a line redrawn with CR
    as a terminal shows it. A TIMEOUT too; a FAIL that printed nothing has no tail."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,timeout_s,k\n"
        "boom,\"for i in 1 2 3 4 5 6; do echo line$i >&2; echo >&2; done; "
        "printf '10%%\\r50%%\\r99%%\\n' >&2; echo out; exit 2\",10,a\n"
        "hang,\"echo starting >&2; sleep 30\",0.5,b\n"
        "mute,exit 1,10,c\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    assert _timeless(p.stdout)[:8] == [
        "[1/3] boom (k=a) FAIL T s (exit code 2)",
        "    line3",
        "    line4",
        "    line5",
        "    line6",
        "    99%",
        "[2/3] hang (k=b) TIMEOUT T s (timed out after 0.5 s)",
        "    starting",
    ]
    assert _timeless(p.stdout)[8:10] == [
        "[3/3] mute (k=c) FAIL T s (exit code 1)",
        "srd: 3 of 3 cases finished (2 FAIL, 1 TIMEOUT) in W s; exit code 3"]


# -- --show-output ------------------------------------------------------------------------
def test_show_output_streams_each_case_under_its_start_line(tmp_path) -> None:
    """Each case's output reaches srd's stdout and stderr as it arrives, between the case's
    start line and its end line; it is still captured, parsed and logged."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,n\n"
        "a,\"echo first; echo warn-a >&2; sleep 0.2; echo score=5\",1\n"
        "b,\"echo second; echo warn-b >&2; exit 1\",2\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                "--show-output", cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    assert _timeless(p.stdout)[:7] == [
        "[1/2] a (n=1) running...",
        "first",
        "score=5",
        "[1/2] a (n=1) OK T s",
        "[2/2] b (n=2) running...",
        "second",
        "[2/2] b (n=2) FAIL T s (exit code 1)",  # no stderr tail: it was streamed
    ]
    assert p.stderr.splitlines()[:2] == ["warn-a", "warn-b"]
    with open(tmp_path / "m.csv", newline="") as f:
        assert [row["score"] for row in csv.DictReader(f)] == ["5", ""]
    assert (tmp_path / "m_run" / "logs" / "a.stdout").read_text() == "first\nscore=5\n"
    assert (tmp_path / "m_run" / "logs" / "b.stderr").read_text() == "warn-b\n"


def test_show_output_goes_on_capturing_when_its_reader_is_gone(tmp_path) -> None:
    """`srd run --quiet --show-output | head -1`: the streamed output stops (nothing else
    writes to stdout here: the tee itself meets the closed pipe), the cases still run, their
    logs and metrics whole."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n" + "".join(f"c{i},seq 20000; echo n={i}\n" for i in range(3)))
    p = subprocess.Popen([sys.executable, "-m", "doerunner", "run", "--cases", "cases.csv",
                          "--out", "m.csv", "--telemetry", "off", "--show-output", "--quiet"],
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before srd writes anything
    err = p.stderr.read()
    assert p.wait(60) == 0, err
    with open(tmp_path / "m.csv", newline="") as f:
        assert [r["n"] for r in csv.DictReader(f)] == ["0", "1", "2"]
    expected = "".join(f"{i}\n" for i in range(1, 20001)) + "n=2\n"
    assert (tmp_path / "m_run" / "logs" / "c2.stdout").read_text() == expected


def test_show_output_refuses_cases_side_by_side(tmp_path) -> None:
    (tmp_path / "cases.csv").write_text("case_id,cmd\na,true\n")
    for extra, message in [
            (["--jobs", "2"], "--show-output streams one case at a time: drop --jobs 2"),
            (["--per-gpu"], "--show-output streams one case at a time: drop --per-gpu"),
            (["--executor", "dask"],
             "--show-output streams cases run by srd itself: not with --executor dask")]:
        r = _srd("run", "--cases", tmp_path / "cases.csv", "--out", tmp_path / "m.csv",
                 "--show-output", *extra)
        assert (r.exit_code, r.output) == (4, f"srd: error: {message}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv"]


# -- the summary --------------------------------------------------------------------------
def test_the_summary_names_the_worst_cases_with_their_parameters(tmp_path) -> None:
    """Failed first (with the message; 5 named, then a count), then the violating ones, then
    the three slowest OK cases; the same after --resume took every case from the journal."""
    rows = [f"f{i},dummy,0,1,,{i}," for i in range(1, 7)]
    rows += ["t1,dummy,5,0,0.1,7,", "v1,dummy,0,0,,8,<=0.000001"]
    rows += [f"s{i},dummy,{i / 20:g},0,,{i}," for i in range(1, 5)]
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,sleep_s,fail,timeout_s,size,threshold_p95\n" + "\n".join(rows) + "\n")
    expected = [
        "srd: 12 of 12 cases finished (5 OK, 6 FAIL, 1 TIMEOUT) in W s; exit code 3",
        "  failed:",
        "    f1 (sleep_s=0 fail=1 size=1) FAIL T s (dummy failure requested (fail=1))",
        "    f2 (sleep_s=0 fail=1 size=2) FAIL T s (dummy failure requested (fail=1))",
        "    f3 (sleep_s=0 fail=1 size=3) FAIL T s (dummy failure requested (fail=1))",
        "    f4 (sleep_s=0 fail=1 size=4) FAIL T s (dummy failure requested (fail=1))",
        "    f5 (sleep_s=0 fail=1 size=5) FAIL T s (dummy failure requested (fail=1))",
        "    ... and 2 more (metrics.csv)",
        "  1 case(s) violated thresholds: v1",
        "    v1 (sleep_s=0 fail=0 size=8) OK T s violations: p95>0.000001",
        "  slowest:",
        "    s4 (sleep_s=0.2 fail=0 size=4) OK T s",
        "    s3 (sleep_s=0.15 fail=0 size=3) OK T s",
        "    s2 (sleep_s=0.1 fail=0 size=2) OK T s",
        "  metrics:  m.csv",
        "  run dir:  m_run (run.json, journal.jsonl, logs/)"]
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    lines = _timeless(p.stdout)
    assert lines[6] == "[ 7/12] t1 (sleep_s=5 fail=0 size=7) TIMEOUT T s (timed out after 0.1 s)"
    assert lines[12:] == expected
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                "--resume", cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    assert _timeless(p.stdout)[1:] == [
        *expected[:1], "  12 taken from the journal (--resume)", *expected[1:]]


# -- the bar ------------------------------------------------------------------------------
def test_case_bar_waits_then_follows_phases_and_retries(tmp_path, monkeypatch, capsys) -> None:
    clock = [100.0]
    monkeypatch.setattr("doerunner.campaign.progress.time.monotonic", lambda: clock[0])
    r = BarReporter(stream=sys.stdout)
    r.start(2, 0)
    (tmp_path / "cases.csv").write_text("case_id,cmd,level\nlong,true,9\n")
    case, = read_cases(tmp_path / "cases.csv")
    r.case_start(case)
    assert r.bar.desc == "long (level=9)"  # the case and its parameters
    r.case_progress(case, "warm-up request", 1, 3)  # 0 s into the case: nothing shown
    assert r.sub is None
    clock[0] += 2.5
    r.case_progress(case, "warm-up request", 2, 3)
    assert (r.sub.n, r.sub.total, r.sub.desc) == (2, 3, "  warm-up request")
    r.case_progress(case, "batch", 1, 4)  # a new phase: a new bar
    r.case_progress(case, "batch", 3, 4)
    assert (r.sub.n, r.sub.total, r.sub.desc) == (3, 4, "  batch")
    r.case_progress(case, "batch", 1, 4)  # a retry starts over
    assert r.sub.n == 1
    r.case_progress(case, "repetition", 5, 0)  # total unknown
    assert (r.sub.n, r.sub.total) == (5, None)
    r.case_end(case, _ok(case), "")
    assert r.sub is None
    err = capsys.readouterr().err
    assert re.search(r"  warm-up request: +67%.*\| 2/3 ", err)  # each bar as it appears
    assert re.search(r"  batch: +25%.*\| 1/4 ", err)
    assert "  repetition: 5repetition" in err


def _ok(case: Case) -> CaseResult:
    return CaseResult(case.case_id, OK, 0.0, 1.0, 0, "", {"run_seconds": 1.0}, [], [])
