"""Run history: every run registers itself; `srd runs list/show` read it back."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.history import list_runs
from tests.conftest import run_srd


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
    # newest first, as the text listing (issue 16)
    assert [r["run_id"] for r in listed] == [r.run_id for r in reversed(runs)]
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


# --- issue 16: newest first, --limit, --status; rm and prune -----------------------------

def _put(run_id: str, started: float, project: str | None = "p", exit_code: int | None = 0,
         metrics: str | None = None, run_dir: str | None = None) -> None:
    """A history record started at ``started`` (epoch s), ended 90 s later unless
    unfinished (``exit_code`` None)."""
    from doerunner.history import RunRecord, register

    assert register(RunRecord(
        run_id, project, started, None if exit_code is None else started + 90, None,
        metrics or f"/x/{run_id}.csv", run_dir or f"/x/{run_id}_run", 3, 3, 0, 0, 0,
        exit_code, ["srd"])) is None


def _at(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _ids() -> list[str]:
    return [r.run_id for r in list_runs()]


FIVE = [("20261201T100000-aaaaaa", "p", 0), ("20261202T100000-bbbbbb", "q", 2),
        ("20261203T100000-cccccc", "p", 3), ("20261204T100000-dddddd", "p", None),
        ("20261205T100000-eeeeee", None, 130)]


def _five() -> None:
    for i, (rid, project, code) in enumerate(FIVE):
        _put(rid, _at(f"2026-12-0{i + 1}T10:00:00+09:00"), project, code)


def _line(rid: str, project: str, state: str) -> str:
    day = rid[6:8]
    return (f"{rid}  2026-12-{day}T10:00:00+09:00  {project}  3 cases (3 OK, 0 FAIL, "
            f"0 TIMEOUT)  {state}  /x/{rid}.csv")


LINES = [_line("20261205T100000-eeeeee", "-", "exit 130"),
         _line("20261204T100000-dddddd", "p", "unfinished"),
         _line("20261203T100000-cccccc", "p", "exit 3"),
         _line("20261202T100000-bbbbbb", "q", "exit 2"),
         _line("20261201T100000-aaaaaa", "p", "exit 0")]


def _list(*args: str) -> tuple[int, list[str], str]:
    r = CliRunner().invoke(cli, ["runs", "list", *args])
    return r.exit_code, r.stdout.splitlines(), r.stderr


def test_runs_list_is_newest_first_with_limit_and_status_filters() -> None:
    _five()
    assert _list() == (0, LINES, "")  # not a terminal: every run
    assert _list("--limit", "2") == (0, LINES[:2], "")
    assert _list("-n", "0") == (0, LINES, "")
    assert _list("--status", "failed", "--status", "UNFINISHED") == (0, LINES[1:3], "")
    assert _list("--status", "ok", "--project", "p") == (0, LINES[4:], "")
    assert _list("--status", "interrupted", "--status", "violated", "-n", "1") == (
        0, LINES[:1], "")
    assert _list("--status", "ok", "--until", "2026-12-01") == (0, [], "")
    listed = json.loads(CliRunner().invoke(cli, ["runs", "list", "--json"]).stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [
        ("20261205T100000-eeeeee", "interrupted"), ("20261204T100000-dddddd", "unfinished"),
        ("20261203T100000-cccccc", "failed"), ("20261202T100000-bbbbbb", "violated"),
        ("20261201T100000-aaaaaa", "ok")]
    code, out, err = _list("--status", "done")
    assert (code, out) == (4, [])
    assert "Invalid value for '--status': 'done' is not one of 'ok', 'violated', " \
           "'failed', 'interrupted', 'unfinished'." in err
    assert _list("--limit", "-1")[0] == 4
    shown = json.loads(CliRunner().invoke(cli, ["runs", "show", "20261204"]).stdout)
    assert (shown["status"], shown["ended"], shown["exit_code"]) == ("unfinished", None, None)


def test_runs_list_on_a_terminal_shows_the_newest_20(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    for i in range(22):
        _put(f"20261202T1000{i:02d}-abcdef", _at(f"2026-12-02T10:00:{i:02d}+09:00"))
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "doerunner", "runs", "list"], stdout=slave,
                         stderr=subprocess.PIPE, env=env, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=60) == 0
    assert p.stderr is not None
    assert p.stderr.read() == "srd: the newest 20 of 22 runs; --limit 0 shows all\n"
    lines = b"".join(chunks).decode().splitlines()
    assert [line.split()[0] for line in lines] == [
        f"20261202T1000{i:02d}-abcdef" for i in range(21, 1, -1)]
    piped = run_srd("runs", "list")
    assert piped.returncode == 0 and piped.stderr == ""
    assert len(piped.stdout.splitlines()) == 22


def test_runs_rm_removes_the_records_named_by_ids_or_prefixes() -> None:
    _five()
    r = CliRunner().invoke(cli, ["runs", "rm", "20261201", "20261203T1", "20261201T10"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [LINES[4], LINES[2]]  # a run named twice goes once
    assert r.stderr == "srd: removed 2 runs from the history\n"
    assert _ids() == ["20261202T100000-bbbbbb", "20261204T100000-dddddd",
                      "20261205T100000-eeeeee"]
    # an ambiguous prefix or an unknown id: exit 4, nothing removed
    r = CliRunner().invoke(cli, ["runs", "rm", "20261205", "2026120"])
    assert r.exit_code == 4 and r.stdout == ""
    assert r.stderr.splitlines()[0] == ("srd: error: run id '2026120' is ambiguous: 3 runs "
                                        "start with it (give more of the id):")
    r = CliRunner().invoke(cli, ["runs", "rm", "20261205", "nope", "zz"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        4, "", "srd: error: no run 'nope', 'zz' in the history (srd runs list shows them); "
               "nothing removed\n")
    r = CliRunner().invoke(cli, ["runs", "rm", "--dry-run", "20261205"])
    assert (r.exit_code, r.stdout.splitlines(), r.stderr) == (
        0, [LINES[0]], "srd: --dry-run: would remove 1 run from the history; nothing "
                       "removed\n")
    assert len(_ids()) == 3
    assert CliRunner().invoke(cli, ["runs", "rm"]).exit_code == 4
    p = run_srd("runs", "rm", "20261205T100000-eeeeee")
    assert (p.returncode, p.stdout, p.stderr) == (
        0, LINES[0] + "\n", "srd: removed 1 run from the history\n")
    assert _ids() == ["20261202T100000-bbbbbb", "20261204T100000-dddddd"]


def test_runs_prune_older_than() -> None:
    import re
    import time

    from doerunner.cells import JST, format_timestamp

    now = time.time()
    ages = {"old": 40 * 86400, "oldq": 31 * 86400, "mid": 10 * 86400, "new": 3600}
    for name, age in ages.items():
        _put(name, now - age, "q" if name == "oldq" else "p")
    lines = {n: f"{n}  {format_timestamp(now - a, JST)}  {'q' if n == 'oldq' else 'p'}  3 "
                f"cases (3 OK, 0 FAIL, 0 TIMEOUT)  exit 0  /x/{n}.csv"
             for n, a in ages.items()}

    def cutoff(stderr: str, pattern: str, age_s: float) -> None:
        m = re.fullmatch(pattern.replace("(", r"\(").replace(")", r"\)")
                         .replace("CUTOFF", r"(\S+)") + "\n", stderr)
        assert m, stderr
        t = _at(m.group(1))
        assert now - age_s - 1 <= t <= time.time() - age_s  # printed at second precision

    r = CliRunner().invoke(cli, ["runs", "prune", "--older-than", "30d", "--dry-run"])
    assert r.exit_code == 0 and r.stdout.splitlines() == [lines["oldq"], lines["old"]]
    cutoff(r.stderr, "srd: --dry-run: would remove 2 runs started before CUTOFF from the "
                     "history (2 would be left); nothing removed", 30 * 86400)
    assert _ids() == ["old", "oldq", "mid", "new"]
    r = CliRunner().invoke(cli, ["runs", "prune", "--older-than", "30d", "--project", "q"])
    assert r.exit_code == 0 and r.stdout.splitlines() == [lines["oldq"]]
    cutoff(r.stderr, "srd: removed 1 run started before CUTOFF from the history (3 left)",
           30 * 86400)
    assert _ids() == ["old", "mid", "new"]
    p = run_srd("runs", "prune", "--older-than", "2w")
    assert p.returncode == 0 and p.stdout.splitlines() == [lines["old"]]
    cutoff(p.stderr, "srd: removed 1 run started before CUTOFF from the history (2 left)",
           14 * 86400)
    r = CliRunner().invoke(cli, ["runs", "prune", "--older-than", "12h"])
    assert r.exit_code == 0 and r.stdout.splitlines() == [lines["mid"]]
    assert _ids() == ["new"]
    r = CliRunner().invoke(cli, ["runs", "prune", "--older-than", "90m"])
    assert r.exit_code == 0 and r.stdout == ""
    cutoff(r.stderr, "srd: no run started before CUTOFF", 90 * 60)
    r = CliRunner().invoke(cli, ["runs", "prune", "--older-than", "30"])
    assert (r.exit_code, r.stdout) == (4, "")
    assert r.stderr.endswith(
        "Error: Invalid value for --older-than: '30' is not a duration like 12h, 30d or 2w "
        "(units: s, m for minutes, h, d, w)\n")
    assert CliRunner().invoke(cli, ["runs", "prune"]).exit_code == 4
    assert _ids() == ["new"]


def _real_run(tmp_path: Path, cases: Path, out: str) -> str:
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out",
                                 str(tmp_path / out), "-q"])
    assert r.exit_code == 0, r.output
    return list_runs(newest_first=True)[0].run_id


def test_rm_files_deletes_only_what_the_run_wrote(tmp_path: Path, write_cases) -> None:
    cases = write_cases("case_id,backend,repeat\na,dummy,2\nb,dummy,1\n")
    tmp_path = tmp_path.resolve()
    first = _real_run(tmp_path, cases, "a.csv")
    second = _real_run(tmp_path, cases, "a.csv")  # the same outputs: the first's are gone
    a_csv, a_run = tmp_path / "a.csv", tmp_path / "a_run"
    assert any(p.name.startswith("journal.2") for p in a_run.iterdir())  # moved aside

    def rm(*args: str) -> tuple[int, list[str], str]:
        r = CliRunner().invoke(cli, ["runs", "rm", "--files", *args])
        return r.exit_code, r.stdout.splitlines()[1:], r.stderr

    assert rm(first) == (0, [f"  kept {a_run}: run {second} used it later",
                             f"  kept {a_csv}: run {second} used it later"],
                         "srd: removed 1 run from the history\n")
    assert a_csv.is_file() and (a_run / "run.json").is_file() and first not in _ids()
    assert rm("--dry-run", second) == (
        0, [f"  would delete {a_run}", f"  would delete {a_csv}"],
        "srd: --dry-run: would remove 1 run from the history; nothing removed\n")
    assert a_csv.is_file() and second in _ids()
    assert rm(second) == (0, [f"  deleted {a_run}", f"  deleted {a_csv}"],
                          "srd: removed 1 run from the history\n")
    assert not a_run.exists() and not a_csv.exists() and _ids() == []

    # a file of the user's in the run directory stays, with its folder
    third = _real_run(tmp_path, cases, "c.csv")
    (tmp_path / "c_run" / "notes.txt").write_text("mine")
    (tmp_path / "c_run" / "logs" / "keep.txt").write_text("mine")
    assert rm(third) == (0, [
        f"  deleted srd's files in {tmp_path / 'c_run'}; kept the folder: it holds files "
        "srd did not write: logs/keep.txt, notes.txt",
        f"  deleted {tmp_path / 'c.csv'}"], "srd: removed 1 run from the history\n")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "c_run", "c_run/logs", "c_run/logs/keep.txt", "c_run/notes.txt", "cases.csv"]


def test_rm_files_keeps_what_is_not_the_runs(tmp_path: Path, write_cases) -> None:
    import fcntl
    import os
    import time

    cases = write_cases("case_id,backend\na,dummy\n")
    tmp_path = tmp_path.resolve()
    # metrics.csv written after the run ended (another program), run.json of another run
    d = _real_run(tmp_path, cases, "d.csv")
    later = time.time() + 100
    os.utime(tmp_path / "d.csv", (later, later))
    rj = tmp_path / "d_run" / "run.json"
    rj.write_text(rj.read_text().replace(d, "20990101T000000-ffffff"))
    # a run directory that is now a symbolic link to the user's folder
    e = _real_run(tmp_path, cases, "e.csv")
    (tmp_path / "e_run").rename(tmp_path / "mine")
    (tmp_path / "e_run").symlink_to(tmp_path / "mine")
    # a run directory another srd holds
    f = _real_run(tmp_path, cases, "f.csv")
    fd = os.open(tmp_path / "f_run" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        r = CliRunner().invoke(cli, ["runs", "rm", "--files", d, e, f])
    finally:
        os.close(fd)
    assert r.exit_code == 0, r.output
    assert [line.split()[0] for line in r.stdout.splitlines()
            if not line.startswith("  ")] == [d, e, f]
    body = [line for line in r.stdout.splitlines() if line.startswith("  ")]
    assert body == [
        f"  kept {tmp_path / 'd_run'}: its run.json is run 20990101T000000-ffffff's",
        f"  kept {tmp_path / 'd.csv'}: modified after the run ended",
        f"  kept {tmp_path / 'e_run'}: a symbolic link (not followed)",
        f"  deleted {tmp_path / 'e.csv'}",
        f"  kept {tmp_path / 'f_run'}: in use by a running srd",
        f"  deleted {tmp_path / 'f.csv'}"]
    assert (tmp_path / "d.csv").is_file() and rj.is_file()
    assert (tmp_path / "mine" / "run.json").is_file() and (tmp_path / "f_run").is_dir()
    assert _ids() == []


def test_help_says_where_the_history_lives() -> None:
    import os

    r = CliRunner().invoke(cli, ["runs", "--help"])
    assert r.exit_code == 0
    assert r.output.endswith(f"The history here:\n  {os.environ['SRD_HOME']}/history.sqlite\n")
    assert "history.sqlite in $SRD_HOME, by default $XDG_DATA_HOME/doerunner, else " \
           "~/.local/share/doerunner" in " ".join(r.output.split())
    top = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert ("The run history (srd runs) and the baseline cache live in $SRD_HOME, by default "
            "$XDG_DATA_HOME/doerunner, else ~/.local/share/doerunner (srd runs --help shows "
            "the path in use).") in top


def test_rm_files_deletes_the_generated_cases_csv_never_the_users(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    (tmp_path / "d.yaml").write_text("design: full\nfactors:\n  x: [1, 2]\nprefix: pt\n"
                                     "template:\n  backend: dummy\n")
    mine = tmp_path / "r" / "cases.csv"  # the user's cases, inside the run directory
    mine.parent.mkdir()
    mine.write_text("case_id,backend\na,dummy\n")
    p = run_srd("run", "--cases", "d.yaml", "--out", "m.csv", "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m_run" / "cases.csv").is_file()
    p = run_srd("run", "--cases", "r/cases.csv", "--run-dir", "r", "--out", "r.csv", "-q",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    designed, given = _ids()
    p = run_srd("runs", "rm", "--files", designed, given)
    assert p.returncode == 0, p.stderr
    assert [line for line in p.stdout.splitlines() if line.startswith("  ")] == [
        f"  deleted {tmp_path / 'm_run'}", f"  deleted {tmp_path / 'm.csv'}",
        f"  deleted srd's files in {tmp_path / 'r'}; kept the folder: it holds files srd did "
        "not write: cases.csv", f"  deleted {tmp_path / 'r.csv'}"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "d.yaml", "r", "r/cases.csv"]
    assert mine.read_text() == "case_id,backend\na,dummy\n"
