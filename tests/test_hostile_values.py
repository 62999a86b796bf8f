"""Hostile input, hostile output (issue 17): what a case prints, the journal, YAML.

A case's output may hold values srd cannot store as they are (integers beyond 64 bits, invalid
Unicode, control characters) or name srd's own columns; a journal may be corrupt anywhere; a
design.yaml may be an alias bomb. None of it may end the sweep, pass `srd validate`, or hang.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from doerunner.backends import BACKENDS
from doerunner.backends.base import Backend, ExecContext
from doerunner.cli import cli
from doerunner.columns import order_columns
from doerunner.inputs.case import Case
from doerunner.outputs.metrics_csv import format_line
from doerunner.results import OK, Execution

from .conftest import run_srd


def _write_cases(tmp_path: Path, rows: list[list[str]], name: str = "cases.csv") -> Path:
    path = tmp_path / name
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def _journal(run_dir: Path) -> list[bytes]:
    return (run_dir / "journal.jsonl").read_bytes().splitlines(keepends=True)


def _not_json(text: bytes) -> str:
    """What srd says of a line that is not JSON: orjson's own message."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return f"not JSON: {e}"
    raise AssertionError(f"{text!r} is JSON")


def _journal_ids(run_dir: Path) -> list[str | None]:
    ids: list[str | None] = []
    for line in _journal(run_dir):
        try:
            ids.append(orjson.loads(line)["case"]["case_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            ids.append(None)
    return ids


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("srd: warning: ")]


# --- values srd cannot store exactly -------------------------------------------------------

HOSTILE = [
    ["case_id", "cmd", "repeat"],
    ["big", "echo checksum=18446744073709551616 tokens_out=1e30 small=9223372036854775807", "2"],
    ["jbig", """echo '{"checksum": 18446744073709551616, "neg": -9223372036854775809}'""", "1"],
    ["sur", """printf '%s\\n' '{"ext_text": "cut \\ud83d"}'""", "1"],
    ["nul", """printf 'ext_a=x\\000y\\n'; printf '%s\\n' '{"ext_c": "a\\u0000b\\u001bc\\td"}'""",
     "1"],
]


def test_values_srd_cannot_store_are_stored_safely_everywhere(tmp_path: Path) -> None:
    _write_cases(tmp_path, HOSTILE)
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "internal error" not in p.stderr
    rows = _rows(tmp_path / "m.csv")
    assert [r["status"] for r in rows.values()] == ["OK", "OK", "OK", "OK"]
    # Beyond 64 bits: the nearest float, written as a float is (2 decimals, no exponent).
    assert rows["big"]["checksum"] == "18446744073709552000.00"
    assert rows["jbig"]["checksum"] == "18446744073709552000.00"
    assert rows["jbig"]["neg"] == "-9223372036854776000.00"
    # 2^63 - 1 fits; the mean of two is the float 2^63, which does not: a float again.
    assert rows["big"]["small"] == "9223372036854776000.00"
    # An integer column (tokens_out) cannot hold 1e30 as an integer: left empty.
    assert rows["big"]["tokens_out"] == ""
    assert rows["sur"]["ext_text"] == "cut \ufffd"
    assert rows["nul"]["ext_a"] == "xy"
    assert rows["nul"]["ext_c"] == "abc\td"
    data = (tmp_path / "m.csv").read_bytes()
    assert b"\x00" not in data and b"\x1b" not in data and b"\\ud83d" not in data

    run_dir = tmp_path / "m_run"
    lines = _journal(run_dir)
    cases = {c["case_id"]: c for c in (orjson.loads(line)["case"] for line in lines)}
    assert cases["big"]["runs"][0]["metrics"]["checksum"] == 1.8446744073709552e19
    assert cases["big"]["metrics"]["tokens_out"] is None
    assert cases["sur"]["metrics"]["ext_text"] == "cut \ufffd"
    assert cases["nul"]["runs"][0]["metrics"]["ext_c"] == "abc\td"
    run_json = json.loads((run_dir / "run.json").read_text())
    assert [c["metrics"].get("ext_a") for c in run_json["cases"]] == [None, None, None, "xy"]
    with open(run_dir / "repetitions.csv", newline="") as f:
        reps = [r for r in csv.reader(f) if r[2] in ("checksum", "small")]
    assert reps == [["big", "1", "checksum", "18446744073709552000"],
                    ["big", "1", "small", "9223372036854775807"],
                    ["big", "2", "checksum", "18446744073709552000"],
                    ["big", "2", "small", "9223372036854775807"]]

    v = run_srd("validate", "m.csv", "--cases", "cases.csv", cwd=tmp_path)
    assert (v.returncode, v.stdout, v.stderr) == (0, "m.csv: valid\n", "")

    before = data
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _journal(run_dir) == lines  # every case taken from the journal, none run again
    assert (tmp_path / "m.csv").read_bytes() == before

    e = run_srd("export", "--format", "json", cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    runs = json.loads(e.stdout)
    doc = runs[-1] if isinstance(runs, list) else runs
    exported = {c["case_id"]: c for c in doc["cases"]}
    assert exported["big"]["metrics"]["checksum"] == 1.8446744073709552e19
    assert exported["nul"]["ext"] == {"ext_a": "xy", "ext_c": "abc\td", "ext_text": None}
    assert exported["sur"]["ext"]["ext_text"] == "cut \ufffd"
    listed = run_srd("runs", "list", cwd=tmp_path)
    assert listed.returncode == 0 and doc["run_id"] in listed.stdout


class _BadValueBackend(Backend):
    """Reports what srd cannot store: a list metric (case `list`), telemetry the journal
    cannot encode (case `set`); any other case is fine."""

    NAME = "badvalue"

    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        t = time.time()
        ex = Execution(OK, 0.25, t, t + 0.25, 0, "", {"lat": 1.5})
        if case.case_id == "list":
            ex.metrics["lat"] = [1, 2]  # type: ignore[assignment]
        elif case.case_id == "set":
            ex.telemetry = {"gpus": {1, 2}}
        return ex


def test_a_result_that_cannot_be_recorded_fails_that_case_only(tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, _BadValueBackend.NAME, _BadValueBackend)
    cases = _write_cases(tmp_path, [["case_id", "backend"], ["ok1", "badvalue"],
                                    ["list", "badvalue"], ["set", "badvalue"],
                                    ["ok2", "badvalue"]])
    out = tmp_path / "m.csv"
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "-q"])
    assert r.exit_code == 3, r.output
    rows = _rows(out)
    assert [(k, v["status"], v["errors"], v["lat"], v["run_seconds"]) for k, v in rows.items()] \
        == [("ok1", "OK", "0", "1.50", "0.250000"),
            ("list", "FAIL", "1", "", "0.250000"),
            ("set", "FAIL", "1", "", "0.250000"),
            ("ok2", "OK", "0", "1.50", "0.250000")]
    assert rows["list"]["message"] == ("srd could not record the result: TypeError: metric "
                                       "'lat' holds a list value, not a number or text")
    assert rows["set"]["message"] == ("srd could not record the result: TypeError: Type is "
                                      "not JSON serializable: set")
    run_dir = tmp_path / "m_run"
    assert _journal_ids(run_dir) == ["ok1", "list", "set", "ok2"]
    assert CliRunner().invoke(cli, ["validate", str(out)]).exit_code == 0
    # The FAIL is journaled: --resume keeps it, --retry-failed runs those two again.
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "-q",
                                 "--resume"])
    assert r.exit_code == 3
    assert _journal_ids(run_dir) == ["ok1", "list", "set", "ok2"]
    r = CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "-q",
                                 "--resume", "--retry-failed"])
    assert r.exit_code == 3
    assert _journal_ids(run_dir) == ["ok1", "list", "set", "ok2", "list", "set"]


# --- srd's own columns ---------------------------------------------------------------------

OWN = ("echo runs=99 energy_adjusted_j=-5 thermal_throttle_detected=7 status=bad p95=0.1 "
       "cpu_util=12.5 energy_co2_g=3; echo '{\"warmup_runs\": 4, \"run_seconds_std\": 1}'")


def test_a_case_cannot_set_srd_columns(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "cmd"], ["a", OWN], ["b", OWN]])
    # Without telemetry: on a GPU machine srd's own thermal_* columns would be there.
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--telemetry", "off",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    header = (tmp_path / "m.csv").read_text().splitlines()[0].split(",")
    for name in ("runs", "energy_adjusted_j", "thermal_throttle_detected", "warmup_runs",
                 "run_seconds_std"):
        assert name not in header
    rows = _rows(tmp_path / "m.csv")
    # What FORMAT.md leaves to a command: p95, a host column, energy_co2_g.
    assert [(r["status"], r["p95"], r["cpu_util"], r["energy_co2_g"]) for r in rows.values()] \
        == [("OK", "0.100000", "12.50", "3.000000"), ("OK", "0.100000", "12.50", "3.000000")]
    assert _warnings(p.stderr) == [
        "srd: warning: output keys naming columns srd sets itself were ignored: "
        "energy_adjusted_j, run_seconds_std, runs, status, thermal_throttle_detected, "
        "warmup_runs (FORMAT.md §3), in 2 case(s): a, b"]
    assert "throttl" not in p.stderr.replace("thermal_throttle_detected", "")
    v = run_srd("validate", "m.csv", "--cases", "cases.csv", cwd=tmp_path)
    assert v.returncode == 0, v.stderr


def test_a_metric_pattern_cannot_name_an_srd_column(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "cmd", "metric_energy_raw_j"],
                            ["a", "echo 5", "([0-9]+)"]])
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    assert p.returncode == 4
    assert p.stderr.splitlines()[0] == (
        "cases.csv:1:3: metric name 'energy_raw_j' is not allowed: srd writes the "
        "energy_raw_j column itself")
    assert not (tmp_path / "m.csv").exists()


# --- srd validate: srd's columns agree -----------------------------------------------------


def _tamper(path: Path, changes: dict[str, dict[str, str]]) -> list[str]:
    """Rewrite metrics.csv with ``changes`` (case_id → column → cell), in srd's own form
    (column order, minimal quoting): only the values are wrong. Its header."""
    rows = list(_rows(path).values())
    for row in rows:
        row.update(changes.get(row["case_id"], {}))
    header = order_columns(name for row in rows for name in row)
    text = format_line(header) + "".join(
        format_line([row.get(name, "") for name in header]) for row in rows)
    path.write_bytes(text.encode())
    return header


def test_validate_checks_srd_columns_agree(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "backend", "repeat", "fail"], ["a", "dummy", "2", ""],
                            ["b", "dummy", "1", ""], ["c", "dummy", "1", "1"]])
    assert run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q",
                   cwd=tmp_path).returncode == 3
    assert run_srd("validate", "m.csv", "--cases", "cases.csv", cwd=tmp_path).returncode == 0
    a = _rows(tmp_path / "m.csv")["a"]
    header = _tamper(tmp_path / "m.csv", {
        "a": {"runs": "99", "energy_raw_j": "1.00", "energy_adjusted_j": "2.00",
              "ext_note": "x\x00y", "message": "oops", "run_seconds": "-1.000000",
              "checksum": "18446744073709551616"},
        "b": {"runs": "3", "exit_code": "3", "thermal_throttle_detected": "7",
              "energy_raw_j": "1.00", "energy_adjusted_j": "-5.00", "checksum": "1"},
        "c": {"violations": "p95>0.1"},
    })

    def col(name: str) -> int:
        return header.index(name) + 1

    p = run_srd("validate", "m.csv", "--cases", "cases.csv", cwd=tmp_path)
    assert p.returncode == 4
    assert p.stdout == ""
    assert p.stderr.splitlines() == [
        f"m.csv:2:{col('run_seconds')}: run_seconds '-1.000000' must not be negative",
        f"m.csv:2:{col('checksum')}: checksum '18446744073709551616' does not fit a 64-bit "
        "integer",
        f"m.csv:2:{col('ext_note')}: ext_note 'x\\x00y' holds a control character (U+0000); "
        "srd removes them from what it writes",
        f"m.csv:2:{col('runs')}: runs '99' must equal the case's repeat (2) on an OK row",
        f"m.csv:2:{col('message')}: message 'oops' must be empty on an OK row",
        f"m.csv:2:{col('energy_adjusted_j')}: energy_adjusted_j '2.00' is more than "
        "energy_raw_j '1.00'",
        f"m.csv:2:{col('run_seconds')}: run_seconds '-1.000000' is not between "
        f"run_seconds_min {a['run_seconds_min']!r} and run_seconds_max "
        f"{a['run_seconds_max']!r}",
        f"m.csv:3:{col('thermal_throttle_detected')}: thermal_throttle_detected '7' must be "
        "1 or empty",
        f"m.csv:3:{col('energy_adjusted_j')}: energy_adjusted_j '-5.00' must not be negative",
        f"m.csv:3:{col('runs')}: runs '3' must be empty: the case's repeat is 1",
        f"m.csv:3:{col('exit_code')}: exit_code '3' must be 0 or empty on an OK row",
        f"m.csv:4:{col('violations')}: violations 'p95>0.1' must be empty on a FAIL row "
        "(thresholds are checked on OK rows)",
        "srd: m.csv: 12 problem(s)",
    ]


# --- the journal is checked, not trusted ---------------------------------------------------


def _three_cases(tmp_path: Path) -> tuple[Path, Path]:
    cases = _write_cases(tmp_path, [["case_id", "backend"], ["a", "dummy"], ["b", "dummy"],
                                    ["c", "dummy"]])
    out = tmp_path / "m.csv"
    assert CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "-q"]
                              ).exit_code == 0
    return cases, out


def _resume(cases: Path, out: Path):
    return CliRunner().invoke(cli, ["run", "--cases", str(cases), "--out", str(out), "-q",
                                    "--resume"])


def test_a_corrupt_middle_line_reruns_that_case_only(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "backend"], ["a", "dummy"], ["b", "dummy"],
                            ["c", "dummy"]])
    assert run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q",
                   cwd=tmp_path).returncode == 0
    keep = ("case_id", "status", "p95", "p99", "throughput_rps", "errors")
    first = [[r[k] for k in keep] for r in _rows(tmp_path / "m.csv").values()]
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = _journal(tmp_path / "m_run")
    journal.write_bytes(lines[0] + b'{"v":1,"run_id":"x","case":{"case_id":"b",\x00}\n' + lines[2])
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    why = _not_json(b'{"case_id":"b",\x00}')
    assert _warnings(p.stderr) == [
        f"srd: warning: m_run/journal.jsonl:2: skipping a corrupt line ({why}); if it held a "
        "case of this run, that case runs again"]
    assert "torn last line" not in p.stderr
    assert _journal_ids(tmp_path / "m_run") == ["a", None, "c", "b"]  # b alone ran again
    # The same rows as the first run (the dummy backend is deterministic).
    assert [[r[k] for k in keep] for r in _rows(tmp_path / "m.csv").values()] == first


def _edit_b(line: bytes, edit) -> bytes:
    entry = orjson.loads(line)
    edit(entry["case"])
    return b"".join((b'{"v":1,"run_id":', orjson.dumps(entry["run_id"]), b',"case":',
                     orjson.dumps(entry["case"]), b"}\n"))


MALFORMED = [
    ("unknown status", lambda c: c.update(status="DONE"),
     "status 'DONE' is not OK, FAIL or TIMEOUT"),
    ("missing key", lambda c: c.pop("runs"), "the case result has no runs"),
    ("wrong type", lambda c: c["runs"][0].update(wall_s="x"),
     "runs[0].wall_s must be a number of seconds >= 0, got 'x'"),
    ("negative time", lambda c: c["runs"][0].update(wall_s=-1.0),
     "runs[0].wall_s must be a number of seconds >= 0, got -1.0"),
    ("times out of order", lambda c: c.update(t_start=2.0, t_end=1.0),
     "t_end 1.0 is before t_start 2.0"),
    ("a metric srd cannot store", lambda c: c["metrics"].update(lat=[1]),
     "metrics.lat must be a number, text, true/false or null, got a list"),
    ("errors on a FAIL", lambda c: c.update(status="FAIL"),
     "metrics.errors must be a count >= 1 on a FAIL case, got 0"),
    ("an unknown id", lambda c: c.update(case_id="a b"), "case_id 'a b' is not a case id"),
]


def _resume_with_second_line(tmp_path: Path, edit):
    """A run of three cases, its journal's second line (case b) edited by ``edit``, then
    ``--resume``: (cases, out, journal, result)."""
    cases, out = _three_cases(tmp_path)
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = _journal(tmp_path / "m_run")
    journal.write_bytes(lines[0] + _edit_b(lines[1], edit) + lines[2])
    return cases, out, journal, _resume(cases, out)


@pytest.mark.parametrize(("edit", "why"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_a_malformed_entry_is_rejected_and_its_case_reruns(tmp_path: Path, edit,
                                                           why: str) -> None:
    _, out, journal, r = _resume_with_second_line(tmp_path, edit)
    assert r.exit_code == 0, r.output
    fate = ("if it held a case of this run, that case runs again" if "a b" in why
            else "case 'b' runs again")
    assert f"srd: warning: {journal}:2: skipping a corrupt line ({why}); {fate}\n" in r.output
    assert [x["status"] for x in _rows(out).values()] == ["OK", "OK", "OK"]
    assert len(_journal(tmp_path / "m_run")) == 4  # b ran again, a and c did not


@pytest.mark.parametrize(("line", "why"), [
    (b'{"v":2,"run_id":"x","case":{"case_id":"b"}}\n', "written by journal version 2, not 1"),
    (b'{"run_id":"x","v":1,"case":{"case_id":"b"}}\n', "not a journal entry as srd writes it"),
    (b'{"v":1,"run_id":"x","case":{"case_id":"b"},"case":{"case_id":"b"}}\n',
     _not_json(b'{"case_id":"b"},"case":{"case_id":"b"}')),  # the case JSON run.json copies
    (b'[1, 2]\n', "not a journal entry as srd writes it"),
])
def test_journal_lines_not_as_srd_writes_them(tmp_path: Path, line: bytes, why: str) -> None:
    cases, out = _three_cases(tmp_path)
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = _journal(tmp_path / "m_run")
    journal.write_bytes(lines[0] + line + lines[2])
    r = _resume(cases, out)
    assert r.exit_code == 0, r.output
    assert f"{journal}:2: skipping a corrupt line ({why})" in r.output
    assert len(_journal(tmp_path / "m_run")) == 4


def test_torn_only_for_the_last_line(tmp_path: Path) -> None:
    cases, out = _three_cases(tmp_path)
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = _journal(tmp_path / "m_run")
    journal.write_bytes(lines[0] + lines[1] + b"garbage\n")  # complete, but corrupt
    r = _resume(cases, out)
    assert r.exit_code == 0
    assert (f"srd: warning: {journal}:3: skipping a corrupt line ({_not_json(b'garbage')}); if "
            "it held a case of this run, that case runs again\n") in r.output
    assert "torn last line" not in r.output
    assert _journal_ids(tmp_path / "m_run") == ["a", "b", None, "c"]
    journal.write_bytes(lines[0] + lines[1][:40])  # a crash in the middle of a write
    r = _resume(cases, out)
    assert r.exit_code == 0
    assert f"srd: warning: {journal}:2: ignoring a torn last line (a crash during a write)\n" \
        in r.output
    assert "corrupt line" not in r.output
    assert _journal_ids(tmp_path / "m_run") == ["a", "b", "c"]  # cut off, then appended


def test_many_corrupt_lines_are_counted(tmp_path: Path) -> None:
    cases, out = _three_cases(tmp_path)
    journal = tmp_path / "m_run" / "journal.jsonl"
    journal.write_bytes(b"x\n" * 12 + journal.read_bytes())
    r = _resume(cases, out)
    assert r.exit_code == 0
    assert [line for line in r.output.splitlines() if "corrupt" in line][10:] == [
        f"srd: warning: {journal}: skipping 2 more corrupt line(s)"]
    assert _journal_ids(tmp_path / "m_run")[12:] == ["a", "b", "c"]  # nothing ran again


# --- YAML ------------------------------------------------------------------------------------

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True))


def test_a_billion_laughs_design_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    p = run_srd("design", "bomb.yaml", "--out", "cases.csv", cwd=tmp_path, timeout=60)
    assert p.returncode == 4
    assert p.stderr == ("bomb.yaml:5:0: YAML alias *d expands the document beyond 10000 values "
                        "(aliases of aliases?); write the values out\n")
    assert not (tmp_path / "cases.csv").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("factors: &a\n  x: [*a]\n",
     "design.yaml:2:0: YAML alias *a is inside the node its anchor names (a recursive "
     "document)"),
    ("factors:\n  x: " + "[" * 200 + "]" * 200 + "\n",
     "design.yaml:2:0: YAML nested deeper than 64 levels"),
])
def test_recursive_and_deep_yaml_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "design.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["design", str(tmp_path / "design.yaml"), "--out",
                                 str(tmp_path / "cases.csv")])
    assert r.exit_code == 4
    assert r.output == f"{tmp_path}/{message}\n"


def test_a_design_may_still_use_aliases(tmp_path: Path) -> None:
    (tmp_path / "design.yaml").write_text(
        "design: full\nrandomize: false\nfactors:\n  bs: &sizes [1, 2]\n  n: *sizes\n"
        "template:\n  cmd: echo {bs} {n}\n")
    out = tmp_path / "cases.csv"
    r = CliRunner().invoke(cli, ["design", str(tmp_path / "design.yaml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert [row[1:] for row in csv.reader(io.StringIO(out.read_text()))][1:] == [
        ["echo {bs} {n}", "1", "1"], ["echo {bs} {n}", "2", "1"], ["echo {bs} {n}", "1", "2"],
        ["echo {bs} {n}", "2", "2"]]


# --- the output parser, line by line ---------------------------------------------------------


@pytest.mark.parametrize(("stdout", "metrics"), [
    ("n=9223372036854775807 m=-9223372036854775808\n",
     {"n": 9223372036854775807, "m": -9223372036854775808}),  # 64 bits: kept exact
    ("n=9223372036854775808\n", {"n": 9.223372036854775808e18}),  # beyond: a float
    ('{"n": -9223372036854775809}', {"n": -9.223372036854775809e18}),
    ("n=" + "9" * 400 + "\n", {}),  # not even a float holds it
    ("errors=1e20\n", {}),  # an integer column: no 64-bit integer holds it
    ('{"ext_t": "a\\ud83db\\udc00"}', {"ext_t": "a\ufffdb\ufffd"}),
    ('{"ext_t": "\\u0000\\u0007\\u001b[0m\\t\\n\\r\\u007f"}', {"ext_t": "[0m\t\n\r\x7f"}),
])
def test_what_the_parser_stores(stdout: str, metrics: dict[str, object]) -> None:
    from doerunner.backends.outparse import parse_output

    got = parse_output(stdout)
    assert got == metrics
    assert [type(v) for v in got.values()] == [type(v) for v in metrics.values()]


def test_the_parser_names_srd_columns_once() -> None:
    from doerunner.backends.outparse import OutputParser, combine, ignored_warnings

    out, err = OutputParser(), OutputParser()
    out.feed_line("runs=2 p95=0.1 param_x=1 gpu_count=3")
    err.feed_line('{"Runs": 3, "env": {"hostname": "x"}}')
    assert combine(out, err, '{"warmup_runs": 1}') == {"p95": 0.1}
    assert ignored_warnings(out, err) == (
        "output keys naming columns srd sets itself were ignored: env_hostname, gpu_count, "
        "runs, warmup_runs (FORMAT.md §3)",)
    assert ignored_warnings(OutputParser(), OutputParser()) == ()


# --- journal values srd could not have written (issue 17, re-test) ------------------------

HOSTILE_JOURNAL = [
    ("a time far in the future", lambda c: c.update(t_start=1e300, t_end=1e300),
     "t_start 1e+300 is not a time srd writes (epoch seconds between 0 and 1e+11)"),
    ("a time before 1970", lambda c: c.update(t_start=-1e14),
     "t_start -100000000000000.0 is not a time srd writes (epoch seconds between 0 and 1e+11)"),
    ("a run's time", lambda c: c["runs"][0].update(t_end=2e11),
     "runs[0].t_end 200000000000.0 is not a time srd writes (epoch seconds between 0 and "
     "1e+11)"),
    ("a huge wall time", lambda c: c["runs"][0].update(wall_s=1e308),
     "runs[0].wall_s 1e+308 is more than 1e+09 s"),
    ("an empty metric name", lambda c: c["metrics"].update({"": 2}),
     "metrics names a metric '': not a metric name (a-z 0-9 _)"),
    ("a metric name with CSV in it", lambda c: c["metrics"].update({"a b,c\nd": 1}),
     "metrics names a metric 'a b,c\\nd': not a metric name (a-z 0-9 _)"),
    ("a run column", lambda c: c["runs"][0]["metrics"].update(status="OK"),
     "runs[0].metrics names a metric 'status': srd writes that column itself"),
    ("an input column", lambda c: c["metrics"].update(param_x=1),
     "metrics names a metric 'param_x': srd writes that column itself"),
    ("a negative run_seconds", lambda c: c["metrics"].update(run_seconds=-1.0),
     "metrics.run_seconds -1.0 is not a number srd stores there"),
    ("a negative energy", lambda c: c["metrics"].update(energy_adjusted_j=-5),
     "metrics.energy_adjusted_j -5 is not a number srd stores there"),
    ("an absurd number", lambda c: c["metrics"].update(lat=-1e301),
     "metrics.lat -1e+301 is not a number srd stores there"),
    ("text in a number column", lambda c: c["metrics"].update(p95="=cmd|' /C calc'!A0"),
     "metrics.p95 holds text, but only a text column (ext_*...) does"),
    ("a huge message", lambda c: c.update(message="x" * 5_000_000),
     "message is 5000000 characters long, more than 4096"),
    ("a message with ESC", lambda c: c["runs"][0].update(message="a\x1b[2Jb"),
     "runs[0].message holds a control character (U+001B); srd removes them"),
    ("a message with NUL", lambda c: c.update(message="a\x00b"),
     "message holds a control character (U+0000); srd removes them"),
]


@pytest.mark.parametrize(("edit", "why"), [m[1:] for m in HOSTILE_JOURNAL],
                         ids=[m[0] for m in HOSTILE_JOURNAL])
def test_a_journal_value_srd_could_not_have_written_reruns_its_case(tmp_path: Path, edit,
                                                                    why: str) -> None:
    cases, out, journal, r = _resume_with_second_line(tmp_path, edit)
    assert r.exit_code == 0, r.output
    assert r.output == (f"srd: warning: {journal}:2: skipping a corrupt line ({why}); case 'b' "
                        "runs again\n")
    assert _journal_ids(tmp_path / "m_run") == ["a", "b", "c", "b"]  # b alone ran again
    assert [x["status"] for x in _rows(out).values()] == ["OK", "OK", "OK"]
    v = CliRunner().invoke(cli, ["validate", str(out), "--cases", str(cases)])
    assert (v.exit_code, v.output) == (0, f"{out}: valid\n")


def test_sound_text_and_srd_columns_in_the_journal_are_kept(tmp_path: Path) -> None:
    _, out, _, r = _resume_with_second_line(tmp_path, lambda c: c["metrics"].update(
        ext_note="=1+1", energy_method="none", run_seconds=0.5, lat=-2.5))
    assert (r.exit_code, r.output) == (0, "")
    assert len(_journal(tmp_path / "m_run")) == 3  # nothing ran again
    b = _rows(out)["b"]
    assert (b["ext_note"], b["energy_method"], b["run_seconds"], b["lat"]) == (
        "=1+1", "none", "0.500000", "-2.50")


def test_a_journal_entry_that_still_cannot_be_recorded_reruns_its_case(
        tmp_path: Path, monkeypatch) -> None:
    import doerunner.campaign.rows as rows

    cases, out = _three_cases(tmp_path)
    journal = tmp_path / "m_run" / "journal.jsonl"
    lines = _journal(tmp_path / "m_run")
    journal.write_bytes(lines[0] + _edit_b(lines[1], lambda c: c["metrics"].update(
        p95=123.25)) + lines[2])
    real = rows.format_value

    def failing(name: str, value: object, stats: object) -> str:
        if value == 123.25:  # a value the cell writer cannot write (as 1e300 times were)
            raise OverflowError("date value out of range")
        return real(name, value, stats)

    monkeypatch.setattr(rows, "format_value", failing)
    r = _resume(cases, out)
    assert r.exit_code == 0, r.output
    assert r.output == (f"srd: warning: {journal}:2: skipping a corrupt line (srd cannot record "
                        "it: OverflowError: date value out of range); case 'b' runs again\n")
    assert _journal_ids(tmp_path / "m_run") == ["a", "b", "c", "b"]
    assert _rows(out)["b"]["p95"] != "123.250000"


# --- time series named by metrics.csv ------------------------------------------------------


def test_report_reads_only_bounded_time_series_inside_the_run(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "backend"], ["a", "dummy"], ["b", "dummy"],
                            ["c", "dummy"], ["d", "dummy"]])
    assert run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q",
                   cwd=tmp_path).returncode == 0
    (tmp_path / "outside.json").write_text("{}")
    big = tmp_path / "m_run" / "timeseries" / "d.json"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: no disk, but over the bound
    _tamper(tmp_path / "m.csv", {"a": {"timeseries_path": "/etc/passwd"},
                                 "b": {"timeseries_path": "m_run/../../outside.json"},
                                 "c": {"timeseries_path": "m_run/timeseries"},
                                 "d": {"timeseries_path": "m_run/timeseries/d.json"}})
    p = run_srd("report", "m.csv", "--html", "r.html", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "r.html").read_text()
    assert ('<p class="note">3 timeseries_path cell(s) skipped: not a regular file under the '
            "run directory or beside the metrics file</p>") in page
    assert ('<p class="note">d.json: cannot be plotted: [Errno 27] larger than 64 MiB, the '
            "most srd reads of such a file</p>") in page
    assert "root:" not in page


def test_validate_refuses_tampered_spread_and_time_series_paths(tmp_path: Path) -> None:
    _write_cases(tmp_path, [["case_id", "backend", "repeat"], ["a", "dummy", "2"],
                            ["b", "dummy", "2"], ["c", "dummy", "2"], ["d", "dummy", "2"]])
    assert run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q",
                   cwd=tmp_path).returncode == 0
    a = _rows(tmp_path / "m.csv")["a"]
    header = _tamper(tmp_path / "m.csv", {
        "a": {"run_seconds": "", "timeseries_path": "/etc/passwd"},
        "b": {"runs": "", "timeseries_path": "m_run/../../x.json"},
        "c": {"run_seconds_median": "99.000000", "timeseries_path": "../rd/timeseries/c.json"},
    })

    def col(name: str) -> int:
        return header.index(name) + 1

    p = run_srd("validate", "m.csv", cwd=tmp_path)
    assert p.returncode == 4
    assert p.stderr.splitlines() == [
        f"m.csv:2:{col('run_seconds')}: run_seconds must not be empty beside run_seconds_min "
        f"{a['run_seconds_min']!r}",
        f"m.csv:2:{col('timeseries_path')}: timeseries_path '/etc/passwd' must be a relative "
        "path without '..' after its start (srd writes it relative to the metrics file)",
        f"m.csv:3:{col('runs')}: runs must not be empty beside run_seconds_min "
        f"{_rows(tmp_path / 'm.csv')['b']['run_seconds_min']!r}",
        f"m.csv:3:{col('timeseries_path')}: timeseries_path 'm_run/../../x.json' must be a "
        "relative path without '..' after its start (srd writes it relative to the metrics "
        "file)",
        f"m.csv:4:{col('run_seconds_median')}: run_seconds_median '99.000000' is not between "
        f"run_seconds_min {_rows(tmp_path / 'm.csv')['c']['run_seconds_min']!r} and "
        f"run_seconds_max {_rows(tmp_path / 'm.csv')['c']['run_seconds_max']!r}",
        "srd: m.csv: 5 problem(s)",
    ]


def test_validate_refuses_column_names_srd_never_writes(tmp_path: Path) -> None:
    """A header name no output key (a-z 0-9 _) nor copied cases.csv column could give:
    `lat-x`, a trailing space (issue 17, second review)."""
    golden = (Path(__file__).parent / "golden" / "metrics.csv").read_text().splitlines()
    for bad in ("lat-x", "lat "):
        f = tmp_path / "m.csv"
        f.write_text("\n".join([f"{golden[0]},{bad}"] + [f"{row}," for row in golden[1:]])
                     + "\n")
        r = CliRunner().invoke(cli, ["validate", str(f)])
        assert r.exit_code == 4
        col = golden[0].count(",") + 2
        assert (f"{f}:1:{col}: column {bad!r} is no name srd writes: output keys are a-z 0-9 _, "
                "copied cases.csv columns param_, threshold_, tag_, note_ and a name of A-Z "
                "a-z 0-9 . _ -") in r.output.splitlines()
    f.write_text("\n".join(golden) + "\n")
    assert CliRunner().invoke(cli, ["validate", str(f)]).exit_code == 0
