"""What lets `srd export`, `srd report` and `srd validate` run in bounded memory, checked for
the exact output it must keep: exports streamed in pieces as small as one row give the bytes
a whole-table export gives (the union of the columns, types decided over every row),
Parquet in several row groups, the report's capped tables and its ±1e308 values, run.json
read without its cases. The memory figures themselves are `benchmarks/memory.py`'s."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from doerunner.analysis import metrics
from doerunner.analysis.export import Selection, select
from doerunner.cli import cli
from doerunner.columns import order_columns
from doerunner.errors import InputError
from doerunner.history import list_runs
from doerunner.outputs import export_parquet

WIDE_PARAMS = 40
LONG_ROWS = 60


def srd(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A history with a wide run (3 cases, 40 parameters: integers, text, a column numeric
    but for one cell) and a long run (60 cases; ``mixed`` numeric until its last row)."""
    monkeypatch.setenv("SRD_HOME", str(tmp_path / "home"))
    wide = ["case_id,backend," + ",".join(f"w{i:02d}" for i in range(WIDE_PARAMS))]
    for r in range(3):
        wide.append(f"wide{r},dummy," + ",".join(
            (f"t{i}" if i % 4 == 0 else "oops" if (i, r) == (5, 2) else str(i * r))
            for i in range(WIDE_PARAMS)))
    long = ["case_id,backend,batch,lr,mixed,tag_hot,note_who"]
    for r in range(LONG_ROWS):
        long.append(f"long{r:03d},dummy,{r % 4},{r / 8},{r if r < LONG_ROWS - 1 else 'x'},"
                    f"{'1' if r % 7 == 0 else ''},\"a, b\"")
    for name, lines in (("wide", wide), ("long", long)):
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
        r = srd("run", "--cases", tmp_path / f"{name}.csv", "--out", tmp_path / f"m_{name}.csv",
                "--project", name, "-q")
        assert r.exit_code == 0, r.output
    return tmp_path


def expected_rows(history: Path) -> list[list[str]]:
    """The union CSV export, made apart from srd's code: every run's metrics.csv rows (oldest
    run first) in the union of the headers in FORMAT.md §3 order, run_id first."""
    runs = list_runs(path=history / "home" / "history.sqlite")
    tables = []
    for rec in runs:
        with open(rec.metrics_path, newline="") as f:
            tables.append((rec.run_id, list(csv.DictReader(f))))
    header = ["run_id", *order_columns({c for _, rows in tables for c in rows[0]})]
    return [header] + [[rid, *(row.get(c, "") for c in header[1:])]
                       for rid, rows in tables for row in rows]


@pytest.mark.parametrize("cells", [1, 7, 1 << 18])
def test_csv_export_is_the_union_table_whatever_the_piece_size(
        history: Path, monkeypatch: pytest.MonkeyPatch, cells: int) -> None:
    monkeypatch.setattr(metrics, "CHUNK_CELLS", cells)
    r = srd("export", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert list(csv.reader(io.StringIO(r.stdout))) == expected_rows(history)
    assert r.stdout.count("\n") == 1 + 3 + LONG_ROWS  # "a, b" quoted, on its line
    assert r.stderr == f"srd: exported {3 + LONG_ROWS} case(s) of 2 run(s) to stdout\n"
    out = history / "split"
    assert srd("export", "--format", "csv", "--split", out).exit_code == 0
    rows = expected_rows(history)
    with open(out / "params.csv", newline="") as f:
        params = list(csv.reader(f))
    keep = [i for i, c in enumerate(rows[0]) if c in ("run_id", "case_id")
            or c.startswith("param_")]
    assert params == [[row[i] for i in keep] for row in rows]


def test_json_export_types_every_piece_alike(history: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One row a piece: ``param_mixed`` is numeric in every piece but the last, and text
    in every run (decided over every row); ``param_w05`` holds ``oops`` in the last wide
    row only. The layout is json.dump's (indent 2), byte for byte."""
    monkeypatch.setattr(metrics, "CHUNK_CELLS", 1)
    r = srd("export", "--format", "json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.stdout)
    assert r.stdout == json.dumps(docs, indent=2, ensure_ascii=False) + "\n"
    wide, long = docs
    assert [c["case_id"] for c in wide["cases"]] == ["wide0", "wide1", "wide2"]
    assert [c["params"]["param_w05"] for c in wide["cases"]] == ["0", "5", "oops"]
    assert [c["params"]["param_w06"] for c in wide["cases"]] == [0, 6, 12]
    assert [c["params"]["param_w04"] for c in wide["cases"]] == ["t4", "t4", "t4"]
    assert "param_batch" not in wide["cases"][0]["params"]
    assert len(long["cases"]) == LONG_ROWS
    assert [c["params"]["param_mixed"] for c in long["cases"][-2:]] == [str(LONG_ROWS - 2),
                                                                        "x"]
    assert long["cases"][3]["params"] == {"param_batch": 3, "param_lr": 0.375,
                                          "param_mixed": "3"}
    assert long["cases"][7]["tags"] == {"tag_hot": True}
    assert long["cases"][7]["notes"] == {"note_who": "a, b"}
    one = json.loads(srd("export", "--format", "json", "--project", "long",
                         "--case", "long00[0-2]").stdout)
    assert [c["params"]["param_mixed"] for c in one["cases"]] == [0, 1, 2]


def test_parquet_export_in_row_groups_matches_the_csv(history: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of one row, row groups of 100 cells: the columns a run lacks are null (false
    for a tag), each column has one type in every row group."""
    monkeypatch.setattr(metrics, "CHUNK_CELLS", 1)
    monkeypatch.setattr(export_parquet, "GROUP_CELLS", 100)
    out = history / "all.parquet"
    r = srd("export", "--format", "parquet", "--out", out)
    assert r.exit_code == 0, r.output
    assert pq.ParquetFile(out).metadata.num_row_groups > 2
    df = pd.read_parquet(out)
    rows = expected_rows(history)
    assert list(df.columns) == rows[0]
    assert df["case_id"].tolist() == [row[1] for row in rows[1:]]
    assert df["param_w06"].dtype == "Int64" and df["param_w06"].tolist()[:3] == [0, 6, 12]
    assert df["param_w06"].isna().tolist() == [False] * 3 + [True] * LONG_ROWS
    assert pd.api.types.is_string_dtype(df["param_w05"])
    assert pd.api.types.is_string_dtype(df["param_mixed"])
    assert df["param_mixed"].tolist()[-1] == "x" and df["param_mixed"].tolist()[3] == "0"
    assert df["param_lr"].dtype == "float64" and df["param_lr"].tolist()[4] == 0.125
    assert df["tag_hot"].dtype == bool
    assert df["tag_hot"].tolist() == [False] * 3 + [r % 7 == 0 for r in range(LONG_ROWS)]
    assert isinstance(df["ts_start"].dtype, pd.DatetimeTZDtype)
    assert df["errors"].dtype == "Int64" and df["errors"].tolist() == [0] * (3 + LONG_ROWS)


def test_a_metrics_file_changed_after_the_selection_is_refused(history: Path) -> None:
    selected = select(Selection(project="long"))
    run = selected.runs[0]
    path = Path(run.record.metrics_path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(InputError) as e:
        next(run.pieces())
    assert str(e.value) == f"{path}: changed while srd export read it; export again"


HEADER = ("case_id,status,run_seconds,p95,p99,throughput_rps,errors,ts_start,ts_end,backend,"
          "exit_code,message,violations,energy_raw_j,gpu_power_peak_w,cpu_util,runs,"
          "param_batch,param_mode,threshold_gpu_power_peak_w,note_x")
BIG = "1" + "0" * 308


def write_metrics(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def test_report_shows_values_that_overflow_a_sum_or_a_plot(tmp_path: Path) -> None:
    """p95, run_seconds and energy of ±1e308: the sums say they overflow, the tables show
    the cells, the plots leave them out with a note; no warning, no traceback."""
    m = write_metrics(tmp_path / "m.csv", [
        f"a,OK,{BIG}.000000,{BIG}.000000,,900,0,,,shell,0,,,{BIG},,{BIG}.00,3,1,fast,,",
        f"b,OK,{BIG}.000000,-{BIG}.000000,,900,0,,,shell,0,,,{BIG},,-{BIG}.00,3,1,slow,,",
        f"c,OK,2.000000,-{BIG}.000000,,900,0,,,shell,0,,,-{BIG},,3.00,2,2,fast,,",
        "d,OK,1.000000,0.020000,,900,0,,,shell,0,,,7,,4.00,1,2,slow,,"])
    r = srd("report", m, "--html", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    assert r.stderr == f"srd: wrote {tmp_path / 'r.html'}\n"
    lines = r.stdout.splitlines()
    assert lines[2:4] == [
        "measured: too large to add up (beyond ±1.8e308 s) over 9 repetitions; run wall time "
        "unknown (no run.json)",
        "energy: too large to add up (beyond ±1.8e308 J) in total (energy_raw_j)"]
    slow = r.stdout.split("Slowest OK cases (top 5 by run_seconds):\n")[1].split("\n\n")[0]
    assert slow.splitlines()[2:] == [
        f"a        1            fast        {BIG}.000000",
        f"b        1            slow        {BIG}.000000",
        f"c        2            fast        {'2.000000':>{len(BIG) + 7}}",
        f"d        2            slow        {'1.000000':>{len(BIG) + 7}}"]
    page = (tmp_path / "r.html").read_text()
    assert "<p>1 OK cases; 1 on the front: d (3 with values beyond ±1e+300 not plotted)</p>" \
        in page
    assert page.count('<img src="data:image/png;base64,') == 3  # effects, Pareto, host
    assert f"<td class=\"n\">-{BIG}</td>" in page


def test_report_lists_the_first_rows_and_reads_left_out_columns_for_violations(
        tmp_path: Path) -> None:
    """25 failures: the first 20 listed, the title gives 25. A violated bound on a column
    the report does not read (gpu_power_peak_w) still shows its cell."""
    rows = [f"f{i:02d},FAIL,0.100000,,,,1,,,shell,1,exit code {i},,,,,1,1,fast,,"
            for i in range(25)]
    rows.append("ok1,OK,1.000000,0.010000,,9,0,,,shell,0,,gpu_power_peak_w<=250,,300.50,,1,"
                "2,slow,<=250,hello")
    m = write_metrics(tmp_path / "m.csv", rows)
    r = srd("report", m)
    assert r.exit_code == 0, r.output
    failed = r.stdout.split("Failed or timed out (25; the first 20 listed):\n")[1]
    assert failed.split("\n\n")[0].splitlines()[2:] == [
        f"f{i:02d}      1            fast        FAIL    exit code {i}" for i in range(20)]
    assert ("Threshold violations (1 in 1 cases):\n"
            "case_id  param_batch  param_mode  violation               value\n"
            "-------  -----------  ----------  ---------------------  ------\n"
            "ok1      2            slow        gpu_power_peak_w<=250  300.50\n") in r.stdout
    r = srd("report", m, "--html", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<h2>All cases (26)</h2>" in page and "<td>hello</td>" in page  # every column


def test_run_json_cases_are_skipped_unread(tmp_path: Path) -> None:
    """run.json as srd lays it out: its cases are never parsed (here they are not even
    JSON), so a million of them cost nothing."""
    m = write_metrics(tmp_path / "m.csv", ["a,OK,1.000000,0.010000,,9,0,,,shell,0,,,,,,1,1,x,,"])
    (tmp_path / "m_run").mkdir()
    (tmp_path / "m_run" / "run.json").write_text(
        '{\n "run_id": "r-1",\n "summary": {\n  "elapsed_s": 2.5\n },\n "cases": [\n'
        "  {not json at all,\n  [[[\n ]\n}\n")
    r = srd("report", m)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "run r-1, started ?"
    assert "run wall time 2.5 s" in r.stdout
