"""metrics.csv: the column rules, the writer's bytes (golden files) and the validator.

The golden files under tests/golden/ pin the exact bytes users' scripts parse. To
regenerate them after an intended change: ``SRD_UPDATE_GOLDEN=1 pytest
tests/test_metrics_csv.py``, then read the diff cell by cell against FORMAT.md §3.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doerunner.cells import (
    JST,
    format_timestamp,
    format_value,
    parse_tz,
    round_half_away,
    timestamp_formatter,
)
from doerunner.columns import ALWAYS, ColumnStats, decimals_for, group_of, order_columns
from doerunner.outputs.metrics_csv import defuse, format_rows, write_metrics_csv
from doerunner.outputs.validate import validate_metrics_csv

GOLDEN = Path(__file__).parent / "golden"
T0 = 1756085400.0  # 2025-08-25T10:30:00+09:00


def rows() -> list[dict[str, object]]:
    """Typed rows as the runner hands them over: every kind of column and awkward value."""
    return [
        {
            "case_id": "smoke-01", "status": "OK", "run_seconds": 0.089, "p95": 0.01,
            "p99": 0.02, "throughput_rps": 1234.565, "errors": 0,
            "ts_start": T0, "ts_end": T0 + 1.999, "backend": "dummy", "exit_code": None,
            "message": "", "violations": "",
            "p50": 0.0050005, "latency_avg": 0.0123455, "energy_co2_g": 0.0001235,
            "cpu_util": 5.5, "mem_peak_mb": 64, "requests_total": 1000,
            "param_load": "light", "param_users": "50", "threshold_p95": "<=0.1",
            "ext_backend_version": "dummy-1.0", "tag_smoke": True, "tag_perf": False,
            "note_comment": "Baseline smoke test",
        },
        {
            "case_id": "unit-01", "status": "FAIL", "run_seconds": 15.234, "p95": None,
            "p99": math.nan, "throughput_rps": math.inf, "errors": 1,
            "ts_start": T0 + 2, "ts_end": T0 + 17.5, "backend": "shell", "exit_code": 1,
            "message": "exit code 1", "violations": "",
            "cpu_util": 25, "mem_peak_mb": 128.25, "requests_total": 20,
            "param_load": "a,b", "param_users": 'say "hi"', "param_cmd": "$(rm -rf /)",
            "param_text": "line1\nline2", "param_name": "日本語 café",
            "threshold_p95": "0.1", "tag_perf": True,
            "note_comment": "crlf\r\ninside; and a lone\rcr",
        },
        {
            "case_id": "load-heavy", "status": "TIMEOUT", "run_seconds": 60, "p95": None,
            "p99": None, "throughput_rps": None, "errors": 1,
            "ts_start": T0 + 18, "ts_end": T0 + 78.2, "backend": "shell", "exit_code": None,
            "message": "timed out after 60 s", "violations": "",
            "cpu_util": -0.001, "mem_peak_mb": None, "requests_total": None,
            "param_load": "heavy", "param_users": "-5", "param_cmd": "=SUM(A1:A2)",
            "ext_formula": "@cmd", "note_comment": "-x starts with a minus",
        },
        {
            "case_id": "gpu-01", "status": "OK", "run_seconds": 2.0000005, "p95": 0.125,
            "p99": 5e-7, "throughput_rps": 2.675, "errors": 0,
            "ts_start": T0 + 80, "ts_end": T0 + 90, "backend": "hf", "exit_code": None,
            "message": "", "violations": "p95>0.1;throughput_rps<500",
            "runs": 3.0, "run_seconds_std": 1e-7, "run_seconds_min": 1.9, "gpu_samples": 120,
            "warmup_converged": True, "thermal_throttle_detected": False,
            "env_in_container": True, "energy_method": "counter",
            "env_gpu_name": "NVIDIA H100 80GB HBM3", "energy_raw_j": 1e20,
            "thermal_throttle_duration_sec": 0, "cpu_util": 0.1 + 0.2, "mem_peak_mb": 2048,
            "param_load": "+1", "param_users": "\tpadded", "threshold_p95": ">=0.2",
            "threshold_throughput_rps": ">500", "ext_backend_version": "hf-4.44",
            "tag_smoke": True,
        },
    ]


@dataclass
class _Case:
    case_id: str


CASES = [_Case(r["case_id"]) for r in rows()]  # type: ignore[arg-type]


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("SRD_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert data == path.read_bytes()


def _write(tmp_path: Path, table: list[dict[str, object]], **kwargs: object) -> bytes:
    out = tmp_path / "metrics.csv"
    tz = kwargs.pop("tz", JST)
    write_metrics_csv(out, iter(table), ColumnStats(table), tz, **kwargs)  # type: ignore[arg-type]
    return out.read_bytes()


# --- the bytes -------------------------------------------------------------------------


def test_golden_default(tmp_path: Path) -> None:
    _golden("metrics.csv", _write(tmp_path, rows()))


def test_golden_csv_safe_utc(tmp_path: Path) -> None:
    _golden("metrics_csv_safe_utc.csv", _write(tmp_path, rows(), csv_safe=True,
                                               tz=parse_tz("UTC")))


def test_golden_no_rows(tmp_path: Path) -> None:
    data = _write(tmp_path, [])
    assert data == (",".join(ALWAYS) + "\n").encode()
    _golden("metrics_no_rows.csv", data)


def test_same_input_same_bytes(tmp_path: Path) -> None:
    first = _write(tmp_path, rows())
    reordered = [dict(reversed(list(r.items()))) for r in rows()]  # key order must not matter
    assert _write(tmp_path, reordered) == first


def test_goldens_validate_clean() -> None:
    for name in ("metrics.csv", "metrics_csv_safe_utc.csv"):
        assert validate_metrics_csv(GOLDEN / name, CASES) == []
    assert validate_metrics_csv(GOLDEN / "metrics_no_rows.csv", []) == []


def test_the_csv_module_reads_back_every_cell() -> None:
    stats = ColumnStats(rows())
    text = (GOLDEN / "metrics.csv").read_bytes().decode("utf-8")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == [stats.columns(), *format_rows(rows(), stats, JST)]


_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_numbers = st.one_of(st.none(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "status": st.sampled_from(["OK", "FAIL", "TIMEOUT"]),
    "run_seconds": _numbers, "throughput_rps": _numbers, "custom": _numbers,
    "p50": _numbers, "exit_code": st.one_of(st.none(), st.integers(-255, 255)),
    "ts_start": st.floats(0, 4e9), "message": _texts, "param_x": _texts,
    "note_y": _texts, "ext_z": _texts, "tag_t": st.booleans(),
}), max_size=6), st.booleans())
def test_any_rows_give_a_valid_file(tmp_path_factory: pytest.TempPathFactory,
                                    table: list[dict[str, object]], csv_safe: bool) -> None:
    for i, row in enumerate(table):
        row["case_id"] = f"c{i}"
        row["errors"] = 0 if row["status"] == "OK" else 2
        row["ts_end"] = row["ts_start"]
        if isinstance(row["run_seconds"], (int, float)):  # a time: never negative
            row["run_seconds"] = abs(row["run_seconds"])
        if row["status"] == "OK":  # an OK row: exit code 0 (or none) and no message
            row["exit_code"] = row["exit_code"] and 0
            row["message"] = ""
    out = tmp_path_factory.mktemp("prop") / "metrics.csv"
    stats = ColumnStats(table)
    write_metrics_csv(out, table, stats, JST, csv_safe=csv_safe)
    assert validate_metrics_csv(out, [_Case(str(r["case_id"])) for r in table]) == []
    parsed = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")))
    assert parsed == [stats.columns(), *format_rows(table, stats, JST, csv_safe=csv_safe)]


def test_format_rows_is_lazy() -> None:
    pulled: list[int] = []

    def gen():
        for i, row in enumerate(rows()):
            pulled.append(i)
            yield row

    it = format_rows(gen(), ColumnStats(rows()), JST)
    first = next(it)
    assert first[0] == "smoke-01"
    assert pulled == [0]


def test_a_row_unseen_by_stats_is_refused() -> None:
    stats = ColumnStats(rows()[:1])
    with pytest.raises(ValueError, match=r"\['param_cmd', 'param_name', 'param_text'\]"):
        list(format_rows(rows()[:2], stats, JST))


# --- atomic writes ---------------------------------------------------------------------


def test_failing_rows_leave_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "metrics.csv"
    out.write_bytes(b"old contents\n")

    def gen():
        yield rows()[0]
        raise RuntimeError("journal broke")

    with pytest.raises(RuntimeError, match="journal broke"):
        write_metrics_csv(out, gen(), ColumnStats(rows()), JST)
    assert out.read_bytes() == b"old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_failing_rows_create_no_file(tmp_path: Path) -> None:
    def gen():
        raise KeyboardInterrupt
        yield {}

    with pytest.raises(KeyboardInterrupt):
        write_metrics_csv(tmp_path / "metrics.csv", gen(), ColumnStats(), JST)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_metrics_csv(tmp_path / "missing" / "metrics.csv", [], ColumnStats(), JST)


def test_lone_surrogates_still_give_utf8(tmp_path: Path) -> None:
    table = [dict(rows()[0], message="bad \udcff byte")]
    data = _write(tmp_path, table)
    assert "bad \\udcff byte" in data.decode("utf-8")


# --- rounding and numbers ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "places", "text"), [
    (0.125, 2, "0.13"),
    (5e-7, 6, "0.000001"),
    (2.675, 2, "2.68"),
    (1.005, 2, "1.01"),
    (0.0000005, 6, "0.000001"),
    (-0.125, 2, "-0.13"),
    (-0.001, 2, "0.00"),
    (-0.0, 2, "0.00"),
    (-4e-7, 6, "0.000000"),
    (123456789.125, 2, "123456789.13"),
    (0.1 + 0.2, 2, "0.30"),
    (1e-7, 6, "0.000000"),
    (1e20, 2, "100000000000000000000.00"),
    (9.995, 2, "10.00"),
    (-9.995, 2, "-10.00"),
    (0.0123455, 6, "0.012346"),
    (1234.565, 2, "1234.57"),
    (2.5, 0, "3"),
    (-2.5, 0, "-3"),
    (0.4, 0, "0"),
    (68719.4765625, 6, "68719.476563"),  # beyond the fast path's range
    (3.0, 2, "3.00"),
])
def test_round_half_away(value: float, places: int, text: str) -> None:
    assert round_half_away(value, places) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_round_half_away_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        round_half_away(value, 2)


def test_round_half_away_matches_decimal_on_many_values() -> None:
    rnd = random.Random(7)
    for _ in range(20000):
        value = float(f"{rnd.randint(-10**9, 10**9)}e{rnd.randint(-12, 3)}")
        for places in (0, 2, 6):
            d = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
            want = format(abs(d) if d.is_zero() else d, "f")
            assert round_half_away(value, places) == want, (value, places)


@pytest.mark.parametrize(("name", "places"), [
    ("run_seconds", 6), ("run_seconds_std", 6), ("p50", 6), ("p999", 6), ("latency_avg", 6),
    ("ttft_mean", 6), ("tpot_p95", 6), ("duration_s", 6), ("thermal_throttle_duration_sec", 6),
    ("wall_seconds", 6), ("energy_co2_g", 6), ("energy_cost_usd", 6),
    ("throughput_rps", 2), ("cpu_util", 2), ("energy_raw_j", 2), ("p95x", 2), ("pp95", 2),
    ("tokens_s_total", 2),
])
def test_decimals_for(name: str, places: int) -> None:
    assert decimals_for(name) == places


def test_integer_rules() -> None:
    table = [
        {"custom_count": 3, "mixed": 4, "wall_s": 2, "errors": 2.5, "runs": 3.0, "ratio": 1},
        {"custom_count": 7, "mixed": 4.5, "wall_s": None, "errors": 1, "runs": 2,
         "ratio": math.nan},
    ]
    stats = ColumnStats(table)
    assert {"custom_count", "ratio", "errors", "runs", "exit_code"} <= stats.int_columns
    assert "mixed" not in stats.int_columns and "wall_s" not in stats.int_columns
    out = [dict(zip(stats.columns(), cells, strict=True))
           for cells in format_rows(table, stats, JST)]
    assert [r["custom_count"] for r in out] == ["3", "7"]
    assert [r["mixed"] for r in out] == ["4.00", "4.50"]
    assert [r["wall_s"] for r in out] == ["2.000000", ""]
    assert [r["errors"] for r in out] == ["3", "1"]  # a float in an integer column is rounded
    assert [r["runs"] for r in out] == ["3", "2"]
    assert [r["ratio"] for r in out] == ["1", ""]  # NaN does not make a column decimal
    assert [r["throughput_rps"] for r in out] == ["", ""]


def test_format_value_kinds() -> None:
    assert format_value("tag_x", True, None) == "1"
    assert format_value("tag_x", False, None) == ""
    assert format_value("env_in_container", True, None) == "1"
    assert format_value("param_x", "  verbatim  ", None) == "  verbatim  "
    assert format_value("p95", None, None) == ""
    assert format_value("p95", math.nan, None) == ""
    assert format_value("cpu_util", -math.inf, None) == ""
    assert format_value("cpu_util", 7, None) == "7.00"
    assert format_value("cpu_util", 7, ColumnStats([{"cpu_util": 7}])) == "7"
    assert format_value("exit_code", -9, None) == "-9"
    assert format_value("ts_start", T0 + 0.999, None) == "2025-08-25T10:30:00+09:00"
    assert format_value("ts_start", "kept as given", None) == "kept as given"


# --- timezones ---------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "epoch", "text"), [
    ("JST", T0, "2025-08-25T10:30:00+09:00"),
    ("jst", T0 + 59.9, "2025-08-25T10:30:59+09:00"),
    ("UTC", T0, "2025-08-25T01:30:00+00:00"),
    ("+05:30", T0, "2025-08-25T07:00:00+05:30"),
    ("-08:00", T0, "2025-08-24T17:30:00-08:00"),
    ("+0900", T0, "2025-08-25T10:30:00+09:00"),
    ("Asia/Tokyo", T0, "2025-08-25T10:30:00+09:00"),
    ("Europe/Berlin", T0, "2025-08-25T03:30:00+02:00"),
    ("Europe/Berlin", T0 - 180 * 86400, "2025-02-26T02:30:00+01:00"),
])
def test_tz(tz: str, epoch: float, text: str) -> None:
    zone = parse_tz(tz)
    assert format_timestamp(epoch, zone) == text
    assert timestamp_formatter(zone)(epoch) == text


def test_tz_default_is_jst() -> None:
    assert parse_tz() is JST
    assert JST.utcoffset(None) == timedelta(hours=9)


def test_tz_local_is_a_fixed_offset() -> None:
    zone = parse_tz("local")
    assert zone.utcoffset(None) is not None


@pytest.mark.parametrize("text", ["", "Mars/Phobos", "+25:00", "+09:60", "9", "../etc/passwd",
                                  "/usr/share/zoneinfo/UTC", "America"])
def test_bad_tz(text: str) -> None:
    with pytest.raises(ValueError, match=r"unknown timezone .*: use JST, UTC, local, an "
                                         r"offset like \+05:30 or an IANA name like Asia/Tokyo"):
        parse_tz(text)


# --- column order --------------------------------------------------------------------------


def test_order_columns_exactly() -> None:
    names = ["note_b", "tag_z", "tag_a", "ext_x", "threshold_p95", "param_b", "param_a",
             "runs", "p50", "cpu_util", "Zeta", "env_hostname", "run_seconds_std",
             "warmup_runs", "violations", "case_id", "energy_raw_j", "note_a", "param_B"]
    assert order_columns(names) == [
        "case_id", "status", "run_seconds", "p95", "p99", "throughput_rps", "errors",
        "ts_start", "ts_end", "backend", "exit_code", "message", "violations",
        "Zeta", "cpu_util", "energy_raw_j", "env_hostname", "p50", "run_seconds_std", "runs",
        "warmup_runs", "param_B", "param_a", "param_b", "threshold_p95", "ext_x", "tag_a",
        "tag_z", "note_a", "note_b",
    ]


@pytest.mark.parametrize(("name", "group"), [
    ("case_id", 1), ("ts_end", 1), ("backend", 2), ("violations", 2), ("p50", 3),
    ("energy_method", 3), ("param_x", 4), ("threshold_p95", 5), ("ext_v", 6), ("tag_a", 7),
    ("note_x", 8),
])
def test_group_of(name: str, group: int) -> None:
    assert group_of(name) == group


# --- csv_safe ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "safe"), [
    ("=SUM(A1)", "'=SUM(A1)"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@A1", "'@A1"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("-5", "-5"), ("+1.5", "+1.5"), ("-2e3", "-2e3"),
    ("-1+2", "'-1+2"), ("-inf", "'-inf"), ("plain", "plain"), ("", ""), (" =x", " =x"),
])
def test_defuse(text: str, safe: str) -> None:
    assert defuse(text) == safe


def test_csv_safe_touches_text_only() -> None:
    table = [{"case_id": "-a", "cpu_util": -0.5, "param_x": "=1", "message": "-boom",
              "ext_y": "-3"}]
    stats = ColumnStats(table)
    cells = dict(zip(stats.columns(), next(format_rows(table, stats, JST, csv_safe=True)),
                     strict=True))
    assert cells["case_id"] == "-a"
    assert cells["cpu_util"] == "-0.50"
    assert cells["param_x"] == "'=1"
    assert cells["message"] == "'-boom"
    assert cells["ext_y"] == "-3"


# --- the validator -------------------------------------------------------------------------

HEADER = ("case_id,status,run_seconds,p95,p99,throughput_rps,errors,ts_start,ts_end,backend,"
          "exit_code,message,violations,cpu_util,p50,runs,warmup_converged,param_x")
ROW = ("a,OK,1.500000,0.010000,,100.00,0,2025-08-25T10:30:00+09:00,2025-08-25T10:30:01+09:00,"
       "shell,0,,,5.00,0.005000,3,1,v")


def _row(**changes: str) -> str:
    cells = dict(zip(HEADER.split(","), ROW.split(","), strict=True))
    cells.update(changes)
    return ",".join(cells.values())


def _problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
              cases: list[_Case] | None = None) -> list[str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics.csv").write_bytes(data)
    return [str(p) for p in validate_metrics_csv("metrics.csv", cases)]


def _file(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_the_base_file_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _problems(tmp_path, monkeypatch, _file(HEADER, ROW, _row(case_id="b"))) == []


BROKEN = [
    (_file(HEADER, _row(run_seconds="1.5")),
     ["metrics.csv:2:3: run_seconds '1.5' must have 6 decimals"]),
    (_file(HEADER, _row(p50="0.0050000")),
     ["metrics.csv:2:15: p50 '0.0050000' must have 6 decimals"]),
    (_file(HEADER, _row(status="PASS")),
     ["metrics.csv:2:2: status 'PASS' must be OK, FAIL or TIMEOUT"]),
    (_file(HEADER, _row(status="FAIL")),
     ["metrics.csv:2:7: errors '0' must be at least 1 on a FAIL row"]),
    (_file(HEADER, _row(status="TIMEOUT", errors="")),
     ["metrics.csv:2:7: errors '' must be an integer"]),
    (_file(HEADER, _row(ts_start="2025-08-25T10:30:00")),
     ["metrics.csv:2:8: ts_start '2025-08-25T10:30:00' must be ISO 8601 at second precision "
      "with an offset, like 2025-08-25T10:30:00+09:00"]),
    (_file(HEADER, _row(ts_end="2025-08-25T10:30:01.5+09:00")),
     ["metrics.csv:2:9: ts_end '2025-08-25T10:30:01.5+09:00' must be ISO 8601 at second "
      "precision with an offset, like 2025-08-25T10:30:00+09:00"]),
    (_file(HEADER, _row(ts_end="2025-08-25T01:29:59+00:00")),
     ["metrics.csv:2:9: ts_end '2025-08-25T01:29:59+00:00' is before ts_start "
      "'2025-08-25T10:30:00+09:00'"]),
    (_file(HEADER, _row(exit_code="x")),
     ["metrics.csv:2:11: exit_code 'x' must be an integer"]),
    (_file(HEADER, _row(runs="3.0")), ["metrics.csv:2:16: runs '3.0' must be an integer"]),
    (_file(HEADER, _row(warmup_converged="true")),
     ["metrics.csv:2:17: warmup_converged 'true' must be 1 or empty"]),
    (_file(HEADER, _row(cpu_util="5.5")),
     ["metrics.csv:2:14: cpu_util '5.5' must be an integer or have 2 decimals"]),
    (_file(HEADER, ROW, _row(case_id="b", cpu_util="5")),
     ["metrics.csv:3:14: cpu_util '5' is written as an integer but line 2 as 2 decimals "
      "(a column is all integers or all 2 decimals)"]),
    (_file(HEADER, _row(case_id="a b")),
     ["metrics.csv:2:1: case_id 'a b' must be 1-128 characters of [A-Za-z0-9._-]"]),
    (_file(HEADER, ROW, ROW),
     ["metrics.csv:3:1: case_id 'a' is a duplicate of line 2"]),
    (_file(HEADER, _row(violations="p95>0.1;")),
     ["metrics.csv:2:13: violations 'p95>0.1;' must be empty or ';'-separated items like "
      "p95>0.1"]),
    (_file(HEADER, _row(backend='"shell"')),
     ["metrics.csv:2:10: backend 'shell' must be written as shell (quotes only where needed)"]),
    (_file(HEADER.replace("case_id", '"case_id"'), ROW),
     ["metrics.csv:1:1: case_id 'case_id' must be written as case_id (quotes only where "
      "needed)"]),
    ((HEADER + "\r\n" + ROW + "\r\n").encode(),
     ["metrics.csv:1:0: line ends with CRLF; metrics.csv uses LF only",
      "metrics.csv:2:0: line ends with CRLF; metrics.csv uses LF only"]),
    ((HEADER + "\n" + ROW).encode(),
     ["metrics.csv:2:0: file does not end with a newline (LF)"]),
    (b"\xef\xbb\xbf" + _file(HEADER, ROW),
     ["metrics.csv:1:0: file starts with a UTF-8 BOM; metrics.csv is UTF-8 without BOM"]),
    (_file(HEADER, _row(param_x="caf\xe9")).replace("\xe9".encode(), b"\xe9"),
     ["metrics.csv:2:0: not valid UTF-8: byte 117 of the line is 0xe9 (unexpected end of "
      "data)"]),
    (_file(HEADER, ROW + ",extra"),
     ["metrics.csv:2:0: row has 19 cells, the header has 18"]),
    (_file(HEADER, ROW, "", _row(case_id="b")), ["metrics.csv:3:0: blank line"]),
    (_file(HEADER, _row(param_x='"two\nlines"'), _row(case_id="b", status="?")),
     ["metrics.csv:4:2: status '?' must be OK, FAIL or TIMEOUT"]),
    (_file(HEADER, _row(param_x='"open')),
     ["metrics.csv:2:0: cannot parse CSV: unexpected end of data"]),
    (b"", ["metrics.csv:1:0: file is empty: no header row"]),
    (_file(HEADER.replace(",errors", "")),
     ["metrics.csv:1:0: missing column 'errors'"]),
    (_file(HEADER.replace("p95,p99", "p99,p95")),
     ["metrics.csv:1:5: column 'p95' is out of order: it must come before 'p99'"]),
    (_file(HEADER.replace("cpu_util,p50", "p50,cpu_util")),
     ["metrics.csv:1:15: column 'cpu_util' is out of order: it must come before 'p50'"]),
    (_file(HEADER + ",cpu_util2"),
     ["metrics.csv:1:19: column 'cpu_util2' is out of order: it must come before 'param_x'"]),
    (_file(HEADER + ",param_x"),
     ["metrics.csv:1:19: duplicate column 'param_x' (also column 18)"]),
]


@pytest.mark.parametrize(("data", "expected"), BROKEN)
def test_broken_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
                      expected: list[str]) -> None:
    assert _problems(tmp_path, monkeypatch, data) == expected


def test_every_problem_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _file(HEADER, _row(status="?", run_seconds="1", runs="x"), _row(case_id="b"),
                 _row(case_id="b"))
    assert _problems(tmp_path, monkeypatch, data) == [
        "metrics.csv:2:2: status '?' must be OK, FAIL or TIMEOUT",
        "metrics.csv:2:3: run_seconds '1' must have 6 decimals",
        "metrics.csv:2:16: runs 'x' must be an integer",
        "metrics.csv:4:1: case_id 'b' is a duplicate of line 3",
    ]


def test_problems_come_in_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _file(HEADER.replace("p95,p99", "p99,p95"), _row(case_id="b"),
                 _row(param_x="\xff")).replace("\xff".encode(), b"\xff")[:-1]
    assert _problems(tmp_path, monkeypatch, data, [_Case("a")]) == [
        "metrics.csv:1:5: column 'p95' is out of order: it must come before 'p99'",
        "metrics.csv:3:0: not valid UTF-8: byte 114 of the line is 0xff (invalid start byte)",
        "metrics.csv:3:0: file does not end with a newline (LF)",
        "metrics.csv:2:1: case_id 'b' is not one of the cases",
    ]


def test_a_lone_cr_in_an_unquoted_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problems = _problems(tmp_path, monkeypatch, _file(HEADER, _row(param_x="a\rb")))
    assert len(problems) == 1
    assert problems[0].startswith("metrics.csv:2:0: cannot parse CSV: ")


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert [str(p) for p in validate_metrics_csv("nope.csv")] == [
        "nope.csv:0:0: cannot read: No such file or directory"]
    assert [str(p) for p in validate_metrics_csv(".")] == [".:0:0: cannot read: Is a directory"]


@pytest.mark.parametrize(("ids", "expected"), [
    (["a", "b", "c"], []),
    (["a", "b", "c", "d"], ["metrics.csv:0:0: case 'd' has no row"]),
    (["a", "b"], ["metrics.csv:4:1: case_id 'c' is not one of the cases"]),
    (["a", "c", "b"],
     ["metrics.csv:4:1: case_id 'c' is out of order: in the cases it comes before 'b'"]),
    (["c", "a", "b"],
     ["metrics.csv:4:1: case_id 'c' is out of order: in the cases it comes before 'b'"]),
    (["b", "a", "x", "c"],
     ["metrics.csv:3:1: case_id 'b' is out of order: in the cases it comes before 'a'",
      "metrics.csv:0:0: case 'x' has no row"]),
])
def test_cases_cross_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: list[str],
                           expected: list[str]) -> None:
    data = _file(HEADER, ROW, _row(case_id="b"), _row(case_id="c"))
    assert _problems(tmp_path, monkeypatch, data, [_Case(i) for i in ids]) == expected
