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

