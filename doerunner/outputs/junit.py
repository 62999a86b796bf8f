"""JUnit XML: the rows of a metrics.csv → one ``<testsuite>`` that CI test reporters read
(Jenkins, GitLab, GitHub actions that read JUnit).

The shape follows the Jenkins xUnit plugin's ``junit-10.xsd`` (the tests validate against
it, ``tests/data/junit-10.xsd``):

* one ``<testsuite>``: ``name``, ``tests``, ``failures``, ``errors``, ``skipped`` (always
  0: srd skips nothing), ``time`` (the sum of the test cases' times: every measured
  repetition of every case, in seconds), ``timestamp`` (the first ``ts_start``, ISO 8601
  with its offset) and ``hostname`` when ``env_hostname`` is known; with the run's wall time
  known, a suite ``<properties>`` with ``wall_time_s`` (the run's wall time, seconds) and
  ``repetitions`` (how many measured repetitions ``time`` adds up);
* one ``<testcase>`` per row, in row order: ``name`` = case_id, ``classname`` =
  ``srd.<tag>`` for the alphabetically first tag set on the row, else ``srd.<backend>``,
  ``time`` = the case's total measured time, ``run_seconds`` (a mean over repetitions) ×
  ``runs`` (1 when absent; a FAIL or TIMEOUT row's ``run_seconds`` is the failing
  execution's alone, counted once: a lower bound);
* FAIL → ``<error type="FAIL" message="exit code 7">``, TIMEOUT → ``<error type="TIMEOUT"
  message="timed out after 1 s">``, the body holding the violations and the last
  ``LOG_TAIL_LINES`` lines of the case's ``logs/<case_id>.stderr`` and ``.stdout``;
* an OK row with violated thresholds → ``<failure type="threshold" message="p95>0.1">``;
* ``<system-out>``: the row's ``param_*`` and ``note_*`` values, then its key metrics
  (p95, p99, throughput_rps, energy_raw_j when present), one ``name=value`` a line.

Times: a JUnit reader takes a test case's ``time`` as what the test cost and the suite's
``time`` as the suite's duration (Jenkins reads the suite's attribute and sums the cases'
only when it is absent), so both count every repetition, never a mean; the suite's equals
the sum of its cases', as Jenkins would compute it. The run's wall time (cases side by side
with ``--jobs``, warm-ups, start-up) is a different figure and goes to ``wall_time_s``.

Parameters. A test case's ``name`` is its case_id, nothing more: CI reporters key a test's
history on (suite, classname, name) — GitLab's "failed N times", Jenkins' age, the GitHub
reporters' comparisons — and the case_id is the identity the user chose, the same run after
run. The parameters go to ``<system-out>`` (what Jenkins shows). Two opt-ins, for the
reporters that show neither (GitLab and the GitHub test reporters show a test's name and its
failure's text, not ``<system-out>`` or properties):

* ``params_in_name=True``: the name is ``<case_id>[level=9 size=4]`` (pytest's shape for a
  parametrized test; ``outputs.points.point_text``: the ``param_*`` cells with a value, in
  column order, cut at ``POINT_WIDTH`` characters). It is stable while the case's parameters
  are — a changed value starts a new history, as ``srd compare`` refuses to pair the same
  case_id over different parameters — and a case without parameters keeps its bare id;
* ``testcase_properties=True``: a ``<properties>`` element on each test case as well, one
  ``<property name="param_level" value="9"/>`` per ``param_*`` and ``note_*`` cell with a
  value (the metrics.csv column names), for reporters that read it there (pytest's xunit1
  flavour does the same), at the cost of schema validity: the schema allows
  ``<properties>`` only on the suite.

Every text is escaped by ``xml.etree.ElementTree``; characters XML 1.0 cannot hold (NUL,
other C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF) are removed first.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from doerunner.cells import round_half_away
from doerunner.inputs.vocabulary import CASE_ID_RE, is_true, log_stem
from doerunner.outputs.base import OutputFormat, write_to
from doerunner.outputs.points import point_text

LOG_TAIL_LINES = 50
# Enough bytes for LOG_TAIL_LINES ordinary lines; the tail of a huge log is all we read.
_LOG_TAIL_BYTES = 64 * 1024
KEY_METRICS = ("p95", "p99", "throughput_rps", "energy_raw_j")
_XML_FORBIDDEN = re.compile(
    "[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """``text`` as a string XML 1.0 can hold: forbidden characters are removed."""
    return _XML_FORBIDDEN.sub("", str(text))


@dataclass(frozen=True, slots=True)
class JunitSuite:
    """What a JUnit report is written from: metrics.csv rows as cells (every value a
    string, missing = ``""``), the suite's name, the run directory's ``logs/`` (None: no
    log tails), whether test cases carry ``<properties>`` too, the run's wall time in
    seconds (None: unknown, no suite ``<properties>``), and whether test names carry the
    parameters (see the module docstring)."""

    rows: Iterable[Mapping[str, str]]
    suite_name: str
    log_dir: Path | None = None
    testcase_properties: bool = False
    wall_s: float | None = None
    params_in_name: bool = False


class Junit(OutputFormat):
    """JUnit XML (UTF-8, XML declaration): one ``<testsuite>`` of the rows."""

    NAME = "junit"
    BINARY = True

    def write(self, data: JunitSuite, stream: IO[bytes]) -> None:
        root = junit_element(data.rows, data.suite_name, data.log_dir,
                             testcase_properties=data.testcase_properties, wall_s=data.wall_s,
                             params_in_name=data.params_in_name)
        ET.indent(root)
        ET.ElementTree(root).write(stream, encoding="utf-8", xml_declaration=True)
        stream.write(b"\n")


def write_junit(path: str | os.PathLike[str], rows: Iterable[Mapping[str, str]],
                suite_name: str, log_dir: Path | None = None, *,
                testcase_properties: bool = False, wall_s: float | None = None,
                params_in_name: bool = False) -> None:
    """Write the JUnit XML of ``rows`` to ``path``, atomically (``Junit`` through
    ``outputs.base.write_to``). ``log_dir`` is the run directory's ``logs/``; ``None`` or a
    missing file means no log tail; ``wall_s`` the run's wall time (seconds) or None.
    Raises ``OSError`` when ``path`` cannot be written.
    """
    write_to(Junit(), JunitSuite(rows, suite_name, log_dir, testcase_properties, wall_s,
                                 params_in_name), path)


def junit_element(rows: Iterable[Mapping[str, str]], suite_name: str,
                  log_dir: Path | None = None, *,
                  testcase_properties: bool = False,
                  wall_s: float | None = None, params_in_name: bool = False) -> ET.Element:
    """The ``<testsuite>`` element of ``rows`` (see the module docstring); ``wall_s``: the
    run's wall time in seconds, or None."""
    suite = ET.Element("testsuite", {"name": xml_text(suite_name)})
    tests = failures = errors = repetitions = 0
    total_s = 0.0
    timestamp = hostname = ""
    for row in rows:
        tests += 1
        seconds, runs = measured_seconds(row)
        if seconds is not None:
            total_s += seconds
            repetitions += runs
        timestamp = timestamp or row.get("ts_start", "")
        hostname = hostname or row.get("env_hostname", "")
        case, kind = _testcase(row, seconds, log_dir, testcase_properties, params_in_name)
        errors += kind == "error"
        failures += kind == "failure"
        suite.append(case)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", round_half_away(total_s, 6))
    if timestamp:
        suite.set("timestamp", xml_text(timestamp))
    if hostname:
        suite.set("hostname", xml_text(hostname))
    if wall_s is not None and math.isfinite(wall_s):
        props = ET.Element("properties")
        for name, value in (("wall_time_s", round_half_away(wall_s, 6)),
                            ("repetitions", str(repetitions))):
            ET.SubElement(props, "property", {"name": name, "value": value})
        suite.insert(0, props)
    return suite


def measured_seconds(row: Mapping[str, str]) -> tuple[float | None, int]:
    """A row's total measured time in seconds, ``run_seconds`` (the mean over repetitions) ×
    ``runs`` (1 when absent or empty), and that number of repetitions; ``(None, 0)`` when the
    row has no ``run_seconds``. A FAIL or TIMEOUT row's ``run_seconds`` is its failing
    execution's alone: counted once."""
    seconds = _number(row.get("run_seconds", ""))
    if seconds is None:
        return None, 0
    runs = _number(row.get("runs", ""))
    ok = row.get("status", "OK") == "OK"
    n = 1 if runs is None or not ok else max(0, int(runs))
    return seconds * n, n


def _testcase(row: Mapping[str, str], seconds: float | None, log_dir: Path | None,
              testcase_properties: bool,
              params_in_name: bool = False) -> tuple[ET.Element, str]:
    """The ``<testcase>`` of one row and what it reports: ``error``, ``failure`` or ``""``."""
    case_id = row.get("case_id", "")
    attrs = {"name": xml_text(parametrized_name(row) if params_in_name else case_id),
             "classname": xml_text(_classname(row))}
    if seconds is not None:
        attrs["time"] = round_half_away(seconds, 6)
    case = ET.Element("testcase", attrs)
    status = row.get("status", "")
    kind = ""
    violations = [v for v in row.get("violations", "").split(";") if v]
    if status != "OK":
        message = row.get("message", "") or _default_message(row, status)
        body = [*(f"violated: {v}" for v in violations),
                *_log_tail(log_dir, case_id, log_stem(case_id, message))]
        err = ET.SubElement(case, "error", {"message": xml_text(message),
                                            "type": xml_text(status or "UNKNOWN")})
        err.text = xml_text("\n".join(body)) if body else None
        kind = "error"
    elif violations:
        fail = ET.SubElement(case, "failure", {"message": xml_text(";".join(violations)),
                                               "type": "threshold"})
        fail.text = xml_text("\n".join(_threshold_lines(row, violations)))
        kind = "failure"
    described = [(k, v) for k, v in row.items()
                 if k.startswith(("param_", "note_")) and v != ""]
    if testcase_properties and described:
        props = ET.SubElement(case, "properties")
        for k, v in described:
            ET.SubElement(props, "property", {"name": xml_text(k), "value": xml_text(v)})
    out = [f"{k}={v}" for k, v in described]
    out += [f"{k}={row[k]}" for k in KEY_METRICS if row.get(k, "") != ""]
    if out:
        ET.SubElement(case, "system-out").text = xml_text("\n".join(out))
    return case, kind


def parametrized_name(row: Mapping[str, str]) -> str:
    """The test name that carries the parameters: ``<case_id>[level=9 size=4]``
    (``points.point_text`` of the row's ``param_*`` cells), the bare case_id when the row
    has no parameter value."""
    point = point_text((k, v) for k, v in row.items() if k.startswith("param_"))
    case_id = row.get("case_id", "")
    return f"{case_id}[{point}]" if point else case_id


def _classname(row: Mapping[str, str]) -> str:
    tags = sorted(k for k, v in row.items() if k.startswith("tag_") and is_true(v))
    if tags:
        return "srd." + tags[0].removeprefix("tag_")
    return "srd." + (row.get("backend", "") or "unknown")


def _default_message(row: Mapping[str, str], status: str) -> str:
    if status == "FAIL" and row.get("exit_code", ""):
        return f"exit code {row['exit_code']}"
    if status == "TIMEOUT":
        return "timed out"
    return status or "no status"


def _threshold_lines(row: Mapping[str, str], violations: list[str]) -> list[str]:
    lines = [f"violated: {v}" for v in violations]
    for k, v in row.items():
        if k.startswith("threshold_") and v != "":
            metric = k.removeprefix("threshold_")
            lines.append(f"{metric}: bound {v}, measured {row.get(metric, '') or 'nothing'}")
    return lines


def _log_tail(log_dir: Path | None, case_id: str, stem: str) -> list[str]:
    """The last ``LOG_TAIL_LINES`` lines of the log ``stem``'s stderr, then stdout (the
    case's, or a failed hook's: ``vocabulary.log_stem``), each under a header line; nothing
    for a log that is missing or empty."""
    if log_dir is None or not CASE_ID_RE.fullmatch(case_id):
        return []
    out: list[str] = []
    for stream in ("stderr", "stdout"):
        p = Path(log_dir) / f"{stem}.{stream}"
        try:
            with open(p, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _LOG_TAIL_BYTES))
                data = f.read()
        except OSError:
            continue
        lines = data.decode("utf-8", errors="replace").splitlines()
        if size > _LOG_TAIL_BYTES and lines:
            lines = lines[1:]  # the first line read is probably cut
        lines = lines[-LOG_TAIL_LINES:]
        if lines:
            out.append(f"--- {stream} ({p.name}, last {len(lines)} lines) ---")
            out.extend(lines)
    return out


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
