"""Run history: every run registers itself; `srd runs list/show` read it back."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.history import list_runs


def test_runs_are_registered_and_listed(tmp_path: Path, write_cases) -> None:
    cases = write_cases("case_id,backend,fail\na,dummy,\nb,dummy,1\n")
    r1 = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                  str(tmp_path / "one.csv"), "--project", "alpha"])
    r2 = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                  str(tmp_path / "two.csv"), "--project", "beta"])
    assert (r1.exit_code, r2.exit_code) == (3, 3)
    runs = list_runs()
    assert [r.project for r in runs] == ["alpha", "beta"]
    first = runs[0]
    assert (first.total, first.ok, first.fail, first.timeout, first.exit_code) == (2, 1, 1, 0, 3)
    assert first.metrics_path == str((tmp_path / "one.csv").resolve())
    assert first.cases_file == str(cases.resolve())
    assert first.ended is not None and first.ended >= first.started
    assert [r.project for r in list_runs(project="beta")] == ["beta"]
    out = CliRunner().invoke(cli, ["runs", "list", "--project", "alpha"])
    assert out.exit_code == 0
    assert out.output.startswith(first.run_id)
    assert "2 cases (1 OK, 1 FAIL, 0 TIMEOUT)  exit 3" in out.output
    listed = json.loads(CliRunner().invoke(cli, ["runs", "list", "--json"]).output)
    assert [r["run_id"] for r in listed] == [r.run_id for r in runs]
    assert CliRunner().invoke(cli, ["runs", "list", "--since", "2999-01-01"]).output == ""
    shown = CliRunner().invoke(cli, ["runs", "show", first.run_id[:-2]])
    assert shown.exit_code == 0 and json.loads(shown.output)["project"] == "alpha"
    missing = CliRunner().invoke(cli, ["runs", "show", "nope"])
    assert missing.exit_code == 4 and "no run 'nope' in the history" in missing.output
    bad = CliRunner().invoke(cli, ["runs", "list", "--since", "yesterday"])
    assert bad.exit_code == 4



def _register_runs(*ids_and_times: tuple[str, str]) -> None:
    """History records (real SQLite) with these ids, started at these ISO times (ended 90 s
    later), without running anything: the ids and times are chosen, not drawn."""
    from datetime import datetime

    from doerunner.history import RunRecord, register

    for run_id, iso in ids_and_times:
        t = datetime.fromisoformat(iso).timestamp()
        assert register(RunRecord(run_id, "p", t, t + 90.5, None, f"/x/{run_id}.csv",
                                  f"/x/{run_id}_run", 2, 2, 0, 0, 0, 0, ["srd"])) is None


def test_runs_show_ambiguous_prefix_lists_the_runs_and_exits_4() -> None:
    _register_runs(("20261202T101559-bbbbbb", "2026-12-02T10:15:59+09:00"),
                   ("20261202T101503-aaaaaa", "2026-12-02T10:15:03+09:00"),
                   ("20261203T080000-cccccc", "2026-12-03T08:00:00+09:00"))
    r = CliRunner().invoke(cli, ["runs", "show", "20261202T1015"])
    assert r.exit_code == 4
    assert r.output == (
        "srd: error: run id '20261202T1015' is ambiguous: 2 runs start with it (give more of "
        "the id):\n"
        "  20261202T101503-aaaaaa  started 2026-12-02T10:15:03+09:00\n"
        "  20261202T101559-bbbbbb  started 2026-12-02T10:15:59+09:00\n")
    r = CliRunner().invoke(cli, ["runs", "show", "20261202T1015", "--tz", "UTC"])
    assert r.exit_code == 4 and r.output.splitlines()[1:] == [
        "  20261202T101503-aaaaaa  started 2026-12-02T01:15:03+00:00",
        "  20261202T101559-bbbbbb  started 2026-12-02T01:15:59+00:00"]
    # the same prefix given to srd export: the same message, no traceback
    r = CliRunner().invoke(cli, ["export", "--run-id", "20261202T1015"])
    assert r.exit_code == 4 and r.output.startswith(
        "srd: error: run id '20261202T1015' is ambiguous: 2 runs start with it")
    # a unique prefix still shows its run, times ISO 8601 as metrics.csv's ts_start
    r = CliRunner().invoke(cli, ["runs", "show", "20261202T10155"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["run_id"] == "20261202T101559-bbbbbb"
    assert (shown["started"], shown["ended"]) == ("2026-12-02T10:15:59+09:00",
                                                  "2026-12-02T10:17:29+09:00")
    r = CliRunner().invoke(cli, ["runs", "show", "2026120", "--tz", "+05:30"])
    assert r.exit_code == 4 and "3 runs start with it" in r.output.splitlines()[0]


def test_ambiguous_prefix_lists_at_most_ten_runs() -> None:
    _register_runs(*[(f"20261202T1015{i:02d}-abcdef", f"2026-12-02T10:15:{i:02d}+09:00")
                     for i in range(12)])
    r = CliRunner().invoke(cli, ["runs", "show", "2026"])
    assert r.exit_code == 4
    lines = r.output.splitlines()
    assert lines[0] == ("srd: error: run id '2026' is ambiguous: 12 runs start with it (give "
                        "more of the id):")
    assert lines[1] == "  20261202T101500-abcdef  started 2026-12-02T10:15:00+09:00"
    assert lines[10] == "  20261202T101509-abcdef  started 2026-12-02T10:15:09+09:00"
    assert lines[11:] == ["  ... and 2 more (srd runs list shows them)"]


def test_an_exact_id_wins_over_longer_ids_it_prefixes() -> None:
    _register_runs(("run1", "2026-12-02T10:00:00+09:00"),
                   ("run10", "2026-12-02T11:00:00+09:00"))
    r = CliRunner().invoke(cli, ["runs", "show", "run1"])
    assert r.exit_code == 0 and json.loads(r.output)["run_id"] == "run1"


def test_runs_list_times_are_iso_8601_in_tz() -> None:
    _register_runs(("20261202T101503-aaaaaa", "2026-12-02T10:15:03+09:00"))
    r = CliRunner().invoke(cli, ["runs", "list"])
    assert r.exit_code == 0, r.output
    assert r.output == ("20261202T101503-aaaaaa  2026-12-02T10:15:03+09:00  p  2 cases (2 OK, "
                        "0 FAIL, 0 TIMEOUT)  exit 0  /x/20261202T101503-aaaaaa.csv\n")
    r = CliRunner().invoke(cli, ["runs", "list", "--tz", "UTC"])
    assert "  2026-12-02T01:15:03+00:00  p  " in r.output
    listed = json.loads(CliRunner().invoke(cli, ["runs", "list", "--json", "--tz",
                                                 "Asia/Kolkata"]).output)
    assert (listed[0]["started"], listed[0]["ended"]) == ("2026-12-02T06:45:03+05:30",
                                                          "2026-12-02T06:46:33+05:30")
    r = CliRunner().invoke(cli, ["runs", "list", "--tz", "Mars/Base"])
    assert r.exit_code == 4 and r.output == (
        "srd: error: --tz: unknown timezone 'Mars/Base': use JST, UTC, local, an offset like "
        "+05:30 or an IANA name like Asia/Tokyo\n")
