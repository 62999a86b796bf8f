"""The JUnit XML exporter: valid against the Jenkins xUnit plugin's junit-10.xsd
(tests/data/junit-10.xsd), exact counts, escaping, log tails."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from doerunner.outputs.junit import LOG_TAIL_LINES, write_junit

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
NASTY = 'a<b & "c" \'d\'\x00\x01\x1b[31m\x7f\ud800\ufffe end'
NASTY_CLEAN = 'a<b & "c" \'d\'[31m\x7f end'

HEADER = ["case_id", "status", "run_seconds", "p95", "p99", "throughput_rps", "errors",
          "ts_start", "ts_end", "backend", "exit_code", "message", "violations",
          "energy_raw_j", "env_hostname", "param_model", "param_x", "threshold_p95", "tag_gpu",
          "tag_smoke", "note_why"]
ROWS = [
    ["ok1", "OK", "0.500000", "0.050000", "0.080000", "120.50", "0",
     "2026-01-02T03:04:05+09:00", "2026-01-02T03:04:06+09:00", "shell", "0", "", "", "12.50",
     "box1", "tiny", "1", "", "", "", ""],
    ["fail1", "FAIL", "0.250000", "", "", "", "1", "2026-01-02T03:04:06+09:00",
     "2026-01-02T03:04:07+09:00", "shell", "7", "exit code 7", "", "", "box1", "tiny", "2",
     "", "", "1", "broken on purpose"],
    ["slow1", "TIMEOUT", "1.000000", "", "", "", "1", "2026-01-02T03:04:07+09:00",
     "2026-01-02T03:04:08+09:00", "dummy", "", "timed out after 1 s", "", "", "box1", "big",
     "3", "", "1", "1", ""],
    ["viol1", "OK", "0.125000", "0.200000", "0.300000", "", "0", "2026-01-02T03:04:08+09:00",
     "2026-01-02T03:04:09+09:00", "dummy", "", "", "p95>0.1", "", "box1", NASTY, "4", "<=0.1",
     "", "", NASTY],
]


def _metrics_rows(tmp_path: Path) -> list[dict[str, str]]:
    """The rows as `srd run` reads metrics.csv back: through the csv module."""
    p = tmp_path / "metrics.csv"
    with open(p, "w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(ROWS)
    with open(p, newline="", encoding="utf-8", errors="surrogatepass") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def junit(tmp_path: Path) -> tuple[Path, ET.Element]:
    logs = tmp_path / "metrics_run" / "logs"
    logs.mkdir(parents=True)
    (logs / "fail1.stderr").write_text(
        "".join(f"err line {i}\n" for i in range(1, 81)) + "Traceback: boom <&>\x1b[0m\n",
        encoding="utf-8")
    (logs / "fail1.stdout").write_text("partial output\n", encoding="utf-8")
    out = tmp_path / "junit.xml"
    write_junit(out, _metrics_rows(tmp_path), "srd cases.csv", logs)
    return out, ET.parse(out).getroot()


def test_valid_against_junit_xsd(junit: tuple[Path, ET.Element]) -> None:
    path, _ = junit
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(str(path))  # raises with the reason when invalid
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    assert not list(path.parent.glob(".junit.xml.*"))  # atomic: no temporary left


def test_suite_counts_and_attributes(junit: tuple[Path, ET.Element]) -> None:
    _, suite = junit
    assert suite.tag == "testsuite"
    assert suite.attrib == {"name": "srd cases.csv", "tests": "4", "failures": "1",
                            "errors": "2", "skipped": "0", "time": "1.875000",
                            "timestamp": "2026-01-02T03:04:05+09:00", "hostname": "box1"}
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname"), c.get("time")) for c in cases] == [
        ("ok1", "srd.shell", "0.500000"),
        ("fail1", "srd.smoke", "0.250000"),
        ("slow1", "srd.gpu", "1.000000"),  # gpu and smoke set: alphabetical first
        ("viol1", "srd.dummy", "0.125000"),
    ]
    assert [[ch.tag for ch in c] for c in cases] == [
        ["system-out"], ["error", "system-out"], ["error", "system-out"],
        ["failure", "system-out"]]


def test_ok_case_system_out(junit: tuple[Path, ET.Element]) -> None:
    _, suite = junit
    ok = suite.find("testcase[@name='ok1']")
    assert ok.find("system-out").text == (
        "param_model=tiny\nparam_x=1\np95=0.050000\np99=0.080000\nthroughput_rps=120.50\n"
        "energy_raw_j=12.50")


def test_fail_case_error_with_log_tail(junit: tuple[Path, ET.Element]) -> None:
    _, suite = junit
    err = suite.find("testcase[@name='fail1']/error")
    assert err.attrib == {"message": "exit code 7", "type": "FAIL"}
    lines = err.text.splitlines()
    assert lines[0] == f"--- stderr (fail1.stderr, last {LOG_TAIL_LINES} lines) ---"
    # 81 lines written: the last 50 are "err line 32" .. "err line 80" and the traceback
    assert lines[1] == "err line 32"
    assert lines[LOG_TAIL_LINES] == "Traceback: boom <&>[0m"  # ESC removed
    assert lines[LOG_TAIL_LINES + 1:] == ["--- stdout (fail1.stdout, last 1 lines) ---",
                                          "partial output"]
    out = suite.find("testcase[@name='fail1']/system-out").text
    assert out == "param_model=tiny\nparam_x=2\nnote_why=broken on purpose"


def test_timeout_and_violation(junit: tuple[Path, ET.Element]) -> None:
    _, suite = junit
    err = suite.find("testcase[@name='slow1']/error")
    assert err.attrib == {"message": "timed out after 1 s", "type": "TIMEOUT"}
    assert err.text is None  # no logs for that case
    fail = suite.find("testcase[@name='viol1']/failure")
    assert fail.attrib == {"message": "p95>0.1", "type": "threshold"}
    assert fail.text == "violated: p95>0.1\np95: bound <=0.1, measured 0.200000"


def test_escaping_and_forbidden_characters(junit: tuple[Path, ET.Element]) -> None:
    path, suite = junit
    out = suite.find("testcase[@name='viol1']/system-out").text
    assert out.splitlines()[0] == f"param_model={NASTY_CLEAN}"
    assert f"note_why={NASTY_CLEAN}" in out.splitlines()
    raw = path.read_bytes()
    assert b"a&lt;b &amp; \"c\"" in raw
    assert b"\x00" not in raw and b"\x1b" not in raw


def test_testcase_properties_option_and_no_logs(tmp_path: Path) -> None:
    rows = _metrics_rows(tmp_path)
    out = tmp_path / "j.xml"
    write_junit(out, rows, "s", None, testcase_properties=True)
    suite = ET.parse(out).getroot()
    props = suite.findall("testcase[@name='fail1']/properties/property")
    assert [(p.get("name"), p.get("value")) for p in props] == [
        ("param_model", "tiny"), ("param_x", "2"), ("note_why", "broken on purpose")]
    assert suite.find("testcase[@name='fail1']/error").text is None  # log_dir None


def test_empty_run(tmp_path: Path) -> None:
    out = tmp_path / "j.xml"
    write_junit(out, [], "empty", None)
    xmlschema.XMLSchema(XSD).validate(str(out))
    assert ET.parse(out).getroot().attrib == {"name": "empty", "tests": "0", "failures": "0",
                                              "errors": "0", "skipped": "0",
                                              "time": "0.000000"}


def test_real_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made by srd (dummy and shell backends): its metrics.csv and logs/ give a valid
    report, and `srd effects` / `srd compare` read the same file."""
    from click.testing import CliRunner

    from doerunner.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,cmd,batch,sleep_s,timeout_s,tags,threshold_p95\n"
        "d1,dummy,,1,,,,\nd2,dummy,,2,,,smoke,<=0.000001\nd3,dummy,,1,,,,\n"
        "d4,dummy,,2,,,,\n"
        "s1,shell,echo oops >&2; exit 7,1,,,,\n"
        "t1,dummy,,2,5,0.2,,\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["run", "--cases", "cases.csv", "--out", "metrics.csv", "-q",
                                 "--telemetry", "off"])
    assert r.exit_code == 3, r.output
    with open("metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    write_junit("junit.xml", rows, "srd cases.csv", tmp_path / "metrics_run" / "logs")
    xmlschema.XMLSchema(XSD).validate("junit.xml")
    suite = ET.parse("junit.xml").getroot()
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("6", "2", "1")
    err = suite.find("testcase[@name='s1']/error")
    assert err.get("message") == "exit code 7" and "oops" in err.text.splitlines()
    assert suite.find("testcase[@name='t1']/error").get("type") == "TIMEOUT"
    assert suite.find("testcase[@name='d2']").get("classname") == "srd.smoke"

    r = CliRunner().invoke(cli, ["effects", "metrics.csv"])
    assert r.exit_code == 0, r.output
    assert "Main effects on p95: 4 OK rows with a value, of 6" in r.output
    r = CliRunner().invoke(cli, ["compare", "metrics.csv", "metrics.csv"])
    assert r.exit_code == 0, r.output


def test_srd_run_junit_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from doerunner.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,tags,threshold_p95\nok,echo p95=0.01,smoke,<=0.1\n"
        "bad,echo boom >&2; exit 3,,\nslow,echo p95=0.5,,<=0.1\n")
    r = CliRunner().invoke(cli, ["run", "--cases", "cases.csv", "--out", "m.csv",
                                 "--junit", "junit.xml"])
    assert r.exit_code == 3, r.output
    xmlschema.validate(str(tmp_path / "junit.xml"), str(XSD))
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["ok", "bad", "slow"]
    assert cases["ok"].get("classname") == "srd.smoke"
    assert cases["bad"].find("error").get("message") == "exit code 3"
    assert "boom" in cases["bad"].find("error").text
    assert cases["slow"].find("failure").get("message") == "p95>0.1"


def test_times_count_every_repetition_and_the_wall_time_is_apart(tmp_path: Path) -> None:
    """run_seconds is a mean over repetitions: a test case's time is run_seconds x runs (1
    when the column is absent or empty; a FAIL row's run_seconds is its failing execution's,
    counted once) and the suite's time their sum; the run's wall time is a suite
    property."""
    header = ["case_id", "status", "run_seconds", "errors", "backend", "runs"]
    rows = [dict(zip(header, cells, strict=True)) for cells in (
        ["three", "OK", "0.500000", "0", "dummy", "3"],
        ["once", "OK", "0.250000", "0", "dummy", ""],
        ["failed", "FAIL", "0.125000", "1", "shell", "2"],
        ["nothing", "FAIL", "", "1", "shell", ""],
    )]
    out = tmp_path / "j.xml"
    write_junit(out, rows, "s", None, wall_s=12.3456789)
    xmlschema.XMLSchema(XSD).validate(str(out))
    suite = ET.parse(out).getroot()
    assert suite.get("time") == "1.875000"  # 0.5 x 3 + 0.25 + 0.125
    assert [(c.get("name"), c.get("time")) for c in suite.findall("testcase")] == [
        ("three", "1.500000"), ("once", "0.250000"), ("failed", "0.125000"),
        ("nothing", None)]
    assert suite[0].tag == "properties"
    assert [(p.get("name"), p.get("value")) for p in suite.findall("properties/property")] == [
        ("wall_time_s", "12.345679"), ("repetitions", "5")]
    write_junit(out, rows[:1], "s", None)  # wall time unknown: no suite properties
    assert ET.parse(out).getroot().find("properties") is None


def test_srd_run_junit_times_with_repetitions(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from doerunner.cells import round_half_away
    from doerunner.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,backend,repeat\nr3,dummy,3\nr1,dummy,\n")
    r = CliRunner().invoke(cli, ["run", "--cases", "cases.csv", "--out", "m.csv", "-q",
                                 "--junit", "junit.xml"])
    assert r.exit_code == 0, r.output
    xmlschema.validate(str(tmp_path / "junit.xml"), str(XSD))
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    with open("m.csv", newline="", encoding="utf-8") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    assert rows["r3"]["runs"] == "3" and rows["r1"]["runs"] == ""
    want = {"r3": float(rows["r3"]["run_seconds"]) * 3, "r1": float(rows["r1"]["run_seconds"])}
    assert {c.get("name"): c.get("time") for c in suite.iter("testcase")} == {
        k: round_half_away(v, 6) for k, v in want.items()}
    assert suite.get("time") == round_half_away(want["r3"] + want["r1"], 6)
    elapsed = json.loads((tmp_path / "m_run" / "run.json").read_text())["summary"]["elapsed_s"]
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"wall_time_s": round_half_away(elapsed, 6), "repetitions": "4"}


def test_parameters_in_the_test_name_opt_in(tmp_path: Path) -> None:
    """params_in_name: <case_id>[level=9 size=4], the parameters with a value in column
    order, cut at 40 characters, forbidden characters removed; valid against the schema."""
    out = tmp_path / "j.xml"
    write_junit(out, _metrics_rows(tmp_path), "s", None, params_in_name=True)
    xmlschema.XMLSchema(XSD).validate(str(out))
    suite = ET.parse(out).getroot()
    assert [c.get("name") for c in suite.findall("testcase")] == [
        "ok1[model=tiny x=1]", "fail1[model=tiny x=2]", "slow1[model=big x=3]",
        'viol1[model="a<b & \\"c\\" \'d\'[31m\x7f end" x…]']
    # the rest of the test case is as without the option
    ok = suite.find("testcase[@name='ok1[model=tiny x=1]']")
    assert (ok.get("classname"), ok.find("system-out").text.splitlines()[:2]) == (
        "srd.shell", ["param_model=tiny", "param_x=1"])


def test_test_names_are_stable_across_runs(tmp_path: Path) -> None:
    """A case's name depends on its id and parameters alone: another run of the same cases
    (other times, statuses, column order of the metrics) gives the same names; a case
    without parameter values keeps its bare id."""
    header = ["case_id", "status", "run_seconds", "param_size", "param_level", "note_why"]
    first = [dict(zip(header, cells, strict=True)) for cells in (
        ["a", "OK", "0.5", "4", "9", "x"], ["b", "OK", "0.25", "", "", ""])]
    second = [{"note_why": "", "param_level": "9", "run_seconds": "7.0", "case_id": "a",
               "status": "FAIL", "param_size": "4"},
              {"status": "TIMEOUT", "case_id": "b", "param_size": "", "param_level": ""}]
    names = []
    for i, rows in enumerate((first, second)):
        out = tmp_path / f"j{i}.xml"
        write_junit(out, rows, "s", None, params_in_name=True)
        names.append({c.get("name") for c in ET.parse(out).getroot().iter("testcase")})
    assert names == [{"a[size=4 level=9]", "b"}, {"a[level=9 size=4]", "b"}]


def test_srd_run_junit_names_are_case_ids_with_parameters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`srd run --junit`, in a real process: the names are the case ids with their
    parameters (pytest's shape; --junit-names id: the bare case ids, the CI history key of
    older runs), the parameters also in <system-out>, the file valid against the schema."""
    from tests.conftest import run_srd

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,backend,level,size\nk9,dummy,9,4\n"
                                        "k1,dummy,1,\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", "--telemetry", "off",
                "--junit", "junit.xml", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    xmlschema.validate(str(tmp_path / "junit.xml"), str(XSD))
    names = [c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot()]
    assert [n for n in names if n is not None] == ["k9[level=9 size=4]", "k1[level=1]"]
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", "--telemetry", "off",
                "--junit", "junit.xml", "--junit-names", "id", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    xmlschema.validate(str(tmp_path / "junit.xml"), str(XSD))
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["k9", "k1"]
    assert [[line for line in c.find("system-out").text.splitlines()
             if line.startswith("param_")] for c in cases] == [
        ["param_level=9", "param_size=4"], ["param_level=1"]]
