"""The run's progress display: the bar's second line inside a long case."""

from __future__ import annotations

import re
import sys

from doerunner.campaign.progress import BarReporter
from doerunner.inputs.case import Case
from doerunner.inputs.cases import read_cases
from doerunner.results import OK, CaseResult


def test_case_bar_waits_then_follows_phases_and_retries(tmp_path, monkeypatch, capsys) -> None:
    clock = [100.0]
    monkeypatch.setattr("doerunner.campaign.progress.time.monotonic", lambda: clock[0])
    r = BarReporter(stream=sys.stdout)
    r.start(2, 0)
    (tmp_path / "cases.csv").write_text("case_id,cmd\nlong,true\n")
    case, = read_cases(tmp_path / "cases.csv")
    r.case_start(case)
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
