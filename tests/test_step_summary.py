"""$GITHUB_STEP_SUMMARY (issue 16): `srd run` and `srd compare` append their Markdown summary
to the file it names, never truncating it, without changing their exit codes; a summary that
cannot be written is a warning; `--dry-run` writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from doerunner.analysis.report import build_report
from doerunner.analysis.runfiles import load_run
from doerunner.cli import cli
from doerunner.outputs.report_text import render_markdown
from tests.conftest import run_srd

CASES = "case_id,backend,fail,threshold_p95\nfine,dummy,,\nbad,dummy,1,\nslow,dummy,,<=0.0001\n"
STATUS_3 = ("**exit code 3: a case failed or timed out**; 3 of 3 cases finished (2 OK, "
            "1 FAIL, 0 TIMEOUT); 1 case(s) violated thresholds: slow")


def _report(run_dir: Path) -> str:
    """What `srd report RUN_DIR --markdown` prints: the summary's body."""
    return render_markdown(build_report(load_run(run_dir)))


def test_srd_run_appends_its_summary_and_a_second_run_keeps_the_first(
        tmp_path: Path, write_cases, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = write_cases(CASES)
    summary = tmp_path / "summary.md"
    summary.write_text("### an earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r1 = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                  str(tmp_path / "one.csv"), "-q"])
    assert r1.exit_code == 3, r1.output
    first = summary.read_text(encoding="utf-8")
    body1 = _report(tmp_path / "one_run")
    assert body1.startswith("## srd report: ")
    assert first == ("### an earlier step\n## srd run: `cases.csv`\n\n" + STATUS_3 + "\n\n"
                     + body1 + "\n")
    r2 = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                  str(tmp_path / "two.csv"), "-q"])
    assert r2.exit_code == 3, r2.output
    body2 = _report(tmp_path / "two_run")
    assert body2 != body1  # another run id
    assert summary.read_text(encoding="utf-8") == (
        first + "## srd run: `cases.csv`\n\n" + STATUS_3 + "\n\n" + body2 + "\n")


def test_status_line_of_a_clean_run(tmp_path: Path, write_cases,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cases = write_cases("case_id,backend\na,dummy\nb,dummy\n", name="clean.csv")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                 str(tmp_path / "m.csv"), "-q"])
    assert r.exit_code == 0, r.output
    assert summary.read_text(encoding="utf-8").splitlines()[:4] == [
        "## srd run: `clean.csv`", "",
        "**exit code 0: every case OK, no threshold violated**; 2 of 2 cases finished "
        "(2 OK, 0 FAIL, 0 TIMEOUT); no threshold violated", ""]


def test_unwritable_summary_is_a_warning_and_the_exit_code_stays(tmp_path: Path,
                                                                 write_cases) -> None:
    cases = write_cases(CASES)
    plain = run_srd("run", "--cases", str(cases), "--out", str(tmp_path / "a.csv"), "-q")
    assert plain.returncode == 3 and "GITHUB_STEP_SUMMARY" not in plain.stderr
    folder = tmp_path / "a_folder"  # a directory cannot be appended to, not even by root
    folder.mkdir()
    p = run_srd("run", "--cases", str(cases), "--out", str(tmp_path / "b.csv"), "-q",
                env={"GITHUB_STEP_SUMMARY": str(folder)})
    assert p.returncode == 3
    assert p.stderr.splitlines()[-1] == (
        f"srd: warning: GITHUB_STEP_SUMMARY {folder}: cannot append the summary: Is a "
        "directory")
    assert list(folder.iterdir()) == []
    assert (tmp_path / "b.csv").read_text().splitlines()[0] == (
        (tmp_path / "a.csv").read_text().splitlines()[0])
    missing = tmp_path / "no" / "such" / "dir" / "summary.md"
    p = run_srd("run", "--cases", str(cases), "--out", str(tmp_path / "c.csv"), "-q",
                env={"GITHUB_STEP_SUMMARY": str(missing)})
    assert p.returncode == 3
    assert p.stderr.splitlines()[-1] == (
        f"srd: warning: GITHUB_STEP_SUMMARY {missing}: cannot append the summary: No such "
        "file or directory")


def test_dry_run_and_an_empty_variable_write_nothing(tmp_path: Path, write_cases) -> None:
    cases = write_cases(CASES)
    summary = tmp_path / "summary.md"
    p = run_srd("run", "--cases", str(cases), "--out", str(tmp_path / "m.csv"), "--dry-run",
                env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert p.returncode == 0, p.stderr
    assert not summary.exists() and not (tmp_path / "m.csv").exists()
    p = run_srd("run", "--cases", str(cases), "--out", str(tmp_path / "m.csv"), "-q",
                env={"GITHUB_STEP_SUMMARY": ""}, cwd=tmp_path)
    assert p.returncode == 3 and p.stderr == ""
    assert sorted(f.name for f in tmp_path.iterdir()) == ["cases.csv", "m.csv", "m_run"]


BASE = "case_id,status,run_seconds,p95\na,OK,1.000000,0.100000\nb,OK,2.000000,0.200000\n"
NEW = "case_id,status,run_seconds,p95\na,OK,1.000000,0.150000\nb,OK,2.000000,0.200000\n"


def test_srd_compare_appends_its_verdict_and_table(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base.csv").write_text(BASE)
    (tmp_path / "new.csv").write_text(NEW)
    monkeypatch.chdir(tmp_path)
    markdown = CliRunner().invoke(cli, ["compare", "base.csv", "new.csv", "--markdown"])
    assert markdown.exit_code == 2
    text = CliRunner().invoke(cli, ["compare", "base.csv", "new.csv"])
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = CliRunner().invoke(cli, ["compare", "base.csv", "new.csv"])
    assert (r.exit_code, r.output) == (2, text.output)  # the terminal output is unchanged
    entry = ("## srd compare: `base.csv` → `new.csv`\n\n**REGRESSION** (exit code 2): a "
             "metric got worse beyond the tolerance, significantly\n\n" + markdown.output
             + "\n")
    assert summary.read_text(encoding="utf-8") == "earlier\n" + entry
    assert markdown.output.splitlines()[:3] == [
        "| case_id | metric | base | new | change | verdict | note |",
        "|---|---|---:|---:|---:|---|---|",
        "| a | p95 | 0.100000 | 0.150000 | +50.00% | REGRESSION | untested: no repetitions "
        "to test |"]
    ok = CliRunner().invoke(cli, ["compare", "base.csv", "base.csv"])
    assert ok.exit_code == 0
    assert summary.read_text(encoding="utf-8").split(entry)[1].splitlines()[:3] == [
        "## srd compare: `base.csv` → `base.csv`", "",
        "**OK** (exit code 0): no significant regression, no broken or missing case"]


def test_srd_compare_unwritable_summary_keeps_exit_2(tmp_path: Path) -> None:
    (tmp_path / "base.csv").write_text(BASE)
    (tmp_path / "new.csv").write_text(NEW)
    p = run_srd("compare", "base.csv", "new.csv", cwd=tmp_path,
                env={"GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert p.returncode == 2
    assert p.stderr == (f"srd: warning: GITHUB_STEP_SUMMARY {tmp_path}: cannot append the "
                        "summary: Is a directory\n")


def test_srd_compare_show_params_goes_into_the_summary(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base.csv").write_text("case_id,status,p95,param_x\na,OK,0.100000,1\n")
    (tmp_path / "new.csv").write_text("case_id,status,p95,param_x\na,OK,0.100000,1\n")
    monkeypatch.chdir(tmp_path)
    markdown = CliRunner().invoke(cli, ["compare", "base.csv", "new.csv", "--markdown",
                                        "--params"])
    assert markdown.exit_code == 0, markdown.output
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "s.md"))
    r = CliRunner().invoke(cli, ["compare", "base.csv", "new.csv", "--params"])
    assert r.exit_code == 0
    assert (tmp_path / "s.md").read_text(encoding="utf-8") == (
        "## srd compare: `base.csv` → `new.csv`\n\n**OK** (exit code 0): no significant "
        "regression, no broken or missing case\n\n" + markdown.output + "\n")
    assert "| x=1 |" in markdown.output


def test_sweeps_and_designs_are_named_by_their_commands_and_files(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """The job summary's heading and the JUnit suite name a sweep by its commands and a
    design by its file, never by the cases.csv srd generated for them."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["run", "-q", "--telemetry", "off", "--junit", "j.xml", "-L",
                                 "n", "1,2", "--", "echo n={n}", "true"])
    assert r.exit_code == 0, r.output
    assert summary.read_text().splitlines()[0] == "## srd run: `'echo n={n}' true`"
    assert '<testsuite name="srd \'echo n={n}\' true"' in (tmp_path / "j.xml").read_text()
    (tmp_path / "d.yaml").write_text("factors:\n  n: [1, 2]\ntemplate:\n  cmd: echo {n}\n")
    r = CliRunner().invoke(cli, ["run", "-q", "--telemetry", "off", "--junit", "j2.xml",
                                 "--out", "d.csv", "--cases", "d.yaml"])
    assert r.exit_code == 0, r.output
    assert [line for line in summary.read_text().splitlines()
            if line.startswith("## srd run")] == ["## srd run: `'echo n={n}' true`",
                                                  "## srd run: `d.yaml`"]
    assert '<testsuite name="srd d.yaml"' in (tmp_path / "j2.xml").read_text()
