"""`srd export` on real runs registered in a test history: run and case filters select
exactly the right rows; CSV, split CSV, JSON, Parquet and time series shapes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.columns import order_columns
from doerunner.history import list_runs, register

from . import report_runs


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = report_runs.build(tmp_path_factory.mktemp("export"))
    # Back-date alpha (2026-01-15) and beta (2026-02-15) so date filters can be tested.
    db = out["home"] / "history.sqlite"
    for rec in list_runs(path=db):
        day = {"alpha": "2026-01-15T12:00", "beta": "2026-02-15T12:00"}.get(rec.project or "")
        if day:
            t = datetime.fromisoformat(day).timestamp()
            register(dataclasses.replace(rec, started=t, ended=t + 2), path=db)
    return out


@pytest.fixture
def runs(built, monkeypatch) -> dict[str, Path]:
    monkeypatch.setenv("SRD_HOME", str(built["home"]))
    return built


def ids(runs) -> dict[str, str]:
    return {r.project: r.run_id for r in list_runs(path=runs["home"] / "history.sqlite")}


def srd(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def export_csv(*args: str) -> list[dict[str, str]]:
    r = srd("export", "--format", "csv", *args)
    assert r.exit_code == 0, r.output
    body = r.stdout
    return list(csv.DictReader(io.StringIO(body)))


def keys(rows) -> list[tuple[str, str]]:
    return [(r["run_id"], r["case_id"]) for r in rows]


def test_all_runs_as_csv_with_run_id_and_union_of_columns(runs) -> None:
    r = srd("export", "--format", "csv")
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0].split(",")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    i = ids(runs)
    assert keys(rows) == (
        [(i["alpha"], c) for c in ("fast_b1", "fast_b2", "slow_b1", "slow_b2", "broken",
                                   "hang")]
        + [(i["beta"], "d1"), (i["beta"], "d2")] + [(i["gpu"], "hot"), (i["gpu"], "cool")])
    union = set()
    for name in ("alpha", "beta", "gpu"):
        with open(runs[name], newline="") as f:
            union.update(next(csv.reader(f)))
    assert header == ["run_id", *order_columns(union)]
    # cells are copied verbatim from metrics.csv
    with open(runs["alpha"], newline="") as f:
        first = next(csv.DictReader(f))
    assert {k: rows[0][k] for k in first} == first
    assert rows[6]["tag_nightly"] == "" and rows[8]["tag_smoke"] == ""
    assert "srd: exported 10 case(s) of 3 run(s) to stdout" in r.stderr


def test_run_filters(runs) -> None:
    i = ids(runs)
    assert {r for r, _ in keys(export_csv("--run-id", i["beta"]))} == {i["beta"]}
    both = export_csv("--run-id", i["beta"], "--run-id", i["gpu"][:-2])
    assert {r for r, _ in keys(both)} == {i["beta"], i["gpu"]}
    assert {r for r, _ in keys(export_csv("--project", "alpha"))} == {i["alpha"]}
    since = export_csv("--since", "2026-02-01")
    assert [c for _, c in keys(since)] == ["d1", "d2", "hot", "cool"]
    window = export_csv("--since", "2026-01-01", "--until", "2026-02-01")
    assert {r for r, _ in keys(window)} == {i["alpha"]}


def test_case_filters(runs) -> None:
    assert [c for _, c in keys(export_csv("--case", "fast_*"))] == ["fast_b1", "fast_b2"]
    assert [c for _, c in keys(export_csv("--case", "slow_b2", "--case", "d?"))] == [
        "slow_b2", "d1", "d2"]
    assert [c for _, c in keys(export_csv("--tag", "smoke"))] == ["fast_b1", "fast_b2", "d1"]
    assert [c for _, c in keys(export_csv("--tag", "smoke", "--project", "alpha"))] == [
        "fast_b1", "fast_b2"]
    assert [c for _, c in keys(export_csv("--tag", "nightly", "--tag", "smoke",
                                          "--project", "alpha"))] == [
        "fast_b1", "fast_b2", "slow_b1", "hang"]
    assert [c for _, c in keys(export_csv("--status", "FAIL", "--status", "timeout"))] == [
        "broken", "hang"]
    assert [c for _, c in keys(export_csv("--tag", "nightly", "--status", "OK",
                                          "--case", "*_b?"))] == ["fast_b2", "slow_b1"]


def test_nothing_matches_names_the_filter(runs, tmp_path, monkeypatch) -> None:
    r = srd("export", "--project", "nope")
    assert r.exit_code == 4
    assert r.output.startswith("srd: error: no run matches --project nope (3 runs in the")
    r = srd("export", "--tag", "smoke", "--status", "TIMEOUT")
    assert r.exit_code == 4 and r.output == (
        "srd: error: no case matches --status TIMEOUT after --tag smoke in the 3 selected "
        "run(s)\n")
    r = srd("export", "--run-id", "nope")
    assert r.exit_code == 4 and "no run 'nope' in the history" in r.output
    r = srd("export", "--status", "BROKEN")
    assert r.exit_code == 4 and "--status BROKEN: use OK, FAIL or TIMEOUT" in r.output
    monkeypatch.setenv("SRD_HOME", str(tmp_path / "empty"))
    r = srd("export")
    assert r.exit_code == 4 and r.output.startswith("srd: error: the run history is empty")


def test_split_files_per_metric_group(runs, tmp_path) -> None:
    out = tmp_path / "split"
    r = srd("export", "--format", "csv", "--split", out, "--project", "gpu")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["runs.csv", "core.csv", "run_info.csv", "custom.csv",
                            "params.csv", "energy.csv", "gpu.csv", "thermal.csv", "env.csv",
                            "host.csv"])
    for p in out.iterdir():
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
        if p.name == "runs.csv":
            assert [r["run_id"] for r in rows] == [ids(runs)["gpu"]]
            assert rows[0]["project"] == "gpu" and rows[0]["cases_selected"] == "2"
            continue
        assert list(rows[0])[:2] == ["run_id", "case_id"], p.name
        assert [r["case_id"] for r in rows] == ["hot", "cool"]
    energy = pd.read_csv(out / "energy.csv")
    assert all(c.startswith("energy_") for c in energy.columns[2:])
    assert (out / "custom.csv").read_text().splitlines()[0] == "run_id,case_id,timeseries_path"


def test_json_structure(runs, tmp_path) -> None:
    out = tmp_path / "one.json"
    r = srd("export", "--project", "alpha", "--out", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert isinstance(doc, dict) and doc["run_id"] == ids(runs)["alpha"]
    assert doc["project"] == "alpha" and doc["exit_code"] == 3
    assert doc["counts"] == {"total": 6, "ok": 4, "fail": 1, "timeout": 1, "violated": 1}
    assert doc["started"].startswith("2026-01-15T")
    assert doc["options"]["project"] == "alpha" and "hostname" in doc["environment"]
    assert doc["summary"]["counts"] == {"OK": 4, "FAIL": 1, "TIMEOUT": 1}
    assert [c["case_id"] for c in doc["cases"]] == ["fast_b1", "fast_b2", "slow_b1",
                                                    "slow_b2", "broken", "hang"]
    c = doc["cases"][2]
    assert set(c) == {"case_id", "core", "run_info", "metrics", "params", "thresholds",
                      "ext", "tags", "notes", "energy", "gpu", "thermal", "env", "host"}
    assert c["core"]["p95"] == 0.03 and c["core"]["throughput_rps"] == 300
    assert c["core"]["errors"] == 0 and c["core"]["status"] == "OK"
    assert c["run_info"] == {"backend": "shell", "exit_code": 0, "message": None,
                             "violations": "p95>0.025"}
    assert c["params"] == {"param_batch": 1, "param_mode": "slow"}
    assert c["thresholds"] == {"threshold_p95": "0.025"}
    assert c["tags"] == {"tag_nightly": True, "tag_smoke": False}
    assert doc["cases"][5]["run_info"]["exit_code"] is None
    r = srd("export", "--format", "json", "--project", "gpu", "--case", "hot")
    gpu = json.loads(r.stdout)
    hot = gpu["cases"][0]
    assert hot["energy"]["energy_method"] == "counter" and hot["energy"]["energy_raw_j"] > 0
    assert hot["thermal"]["thermal_throttle_detected"] is True
    assert hot["gpu"]["gpu_samples"] > 10 and hot["env"]["env_gpu_vram_mb"] == 81559
    many = json.loads(srd("export", "--since", "2026-02-01").stdout)
    assert isinstance(many, list) and [d["project"] for d in many] == ["beta", "gpu"]


def test_parquet_round_trip_with_dtypes(runs, tmp_path) -> None:
    out = tmp_path / "all.parquet"
    r = srd("export", "--format", "parquet", "--out", out)
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert len(df) == 10 and list(df.columns[:3]) == ["run_id", "case_id", "status"]
    assert df["run_seconds"].dtype == "float64" and df["p95"].dtype == "float64"
    assert df["energy_raw_j"].dtype == "float64" and df["errors"].dtype == "Int64"
    assert df["exit_code"].dtype == "Int64" and df["gpu_samples"].dtype == "Int64"
    assert df["tag_smoke"].dtype == bool and df["thermal_throttle_detected"].dtype == bool
    assert df["tag_smoke"].tolist()[:4] == [True, True, False, False]
    for c in ("case_id", "status", "param_mode", "violations", "env_gpu_name"):
        assert pd.api.types.is_string_dtype(df[c]), c
    assert df["param_batch"].dtype == "Int64" and df["param_batch"].tolist() == [
        1, 2, 1, 2, 1, 2, 1, 2, 1, 2]
    assert isinstance(df["ts_start"].dtype, pd.DatetimeTZDtype)
    assert df["ts_start"].iloc[0].utcoffset().total_seconds() == 9 * 3600
    assert df.loc[df.case_id == "slow_b1", "p95"].item() == pytest.approx(0.03)
    assert pd.isna(df.loc[df.case_id == "hang", "exit_code"].item())
    assert df.loc[df.case_id == "hang", "message"].item() == "timed out after 1 s"


def test_parquet_needs_out_and_split_needs_csv(runs) -> None:
    assert srd("export", "--format", "parquet").exit_code == 4
    r = srd("export", "--format", "json", "--split", "x")
    assert r.exit_code == 4 and "--split needs --format csv" in r.output


def test_timeseries_flat_table_in_each_format(runs, tmp_path) -> None:
    i = ids(runs)
    rows = export_csv("--timeseries", "--case", "hot")
    assert list(rows[0]) == ["run_id", "case_id", "gpu", "timestamp", "t_s", "power_w",
                             "mem_used_mb", "util_pct", "temp_c", "sm_clock_mhz", "throttle"]
    assert {(r["run_id"], r["case_id"], r["gpu"]) for r in rows} == {(i["gpu"], "hot", "0")}
    assert len(rows) > 20 and rows[0]["timestamp"].endswith("+09:00")
    doc = json.loads((runs["gpu"].parent / "metrics_run" / "timeseries" / "hot.json")
                     .read_text())
    assert len(rows) == len(doc["samples"])
    assert any(r["throttle"] == "40" for r in rows)
    out = tmp_path / "ts.parquet"
    assert srd("export", "--timeseries", "--format", "parquet", "--out", out).exit_code == 0
    df = pd.read_parquet(out)
    assert sorted(df.case_id.unique()) == ["cool", "hot"]
    assert isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)
    assert df["power_w"].dtype == "float64" and df["gpu"].dtype == "Int64"
    assert df["timestamp"].is_monotonic_increasing
    js = json.loads(srd("export", "--timeseries", "--case", "cool").stdout)
    assert isinstance(js, list) and js[0]["case_id"] == "cool" and "power_w" in js[0]
    r = srd("export", "--timeseries", "--project", "alpha")
    assert r.exit_code == 4 and "has a time series" in r.output


PARAMS_A = """case_id,backend,batch,lr,dtype,seed,code,mixed,opt,blank
a1,dummy,1,0.5,fp16,7,007,1,,
a2,dummy,8,1e-3,8,,010,2,x,
"""
PARAMS_B = """case_id,backend,batch,lr,dtype,seed,mixed,blank
b1,dummy,16,2,bf16,,big,
"""


@pytest.fixture
def param_runs(tmp_path) -> Path:
    """Two dummy runs (projects a and b) in this test's own history, with parameters of
    every shape: integers, numbers, text, empty cells, a column numeric in one run only."""
    for name, text in (("a", PARAMS_A), ("b", PARAMS_B)):
        (tmp_path / f"{name}.csv").write_text(text)
        r = srd("run", "--cases", tmp_path / f"{name}.csv", "--out", tmp_path / f"m_{name}.csv",
                "--project", name, "-q")
        assert r.exit_code == 0, r.output
    return tmp_path


def test_numeric_parameters_are_numbers_in_json_and_parquet(param_runs) -> None:
    r = srd("export", "--format", "json")
    assert r.exit_code == 0, r.output
    a, b = json.loads(r.stdout)
    assert [c["params"] for c in a["cases"]] == [
        {"param_batch": 1, "param_blank": None, "param_code": "007", "param_dtype": "fp16",
         "param_lr": 0.5, "param_mixed": "1", "param_opt": None, "param_seed": 7},
        {"param_batch": 8, "param_blank": None, "param_code": "010", "param_dtype": "8",
         "param_lr": 0.001, "param_mixed": "2", "param_opt": "x", "param_seed": None}]
    assert b["cases"][0]["params"] == {
        "param_batch": 16, "param_blank": None, "param_dtype": "bf16", "param_lr": 2.0,
        "param_mixed": "big", "param_seed": None}
    assert '"param_lr": 2.0,' in r.stdout and '"param_batch": 16,' in r.stdout
    # typed over the rows exported: run a alone has a numeric param_mixed
    alone = json.loads(srd("export", "--format", "json", "--project", "a").stdout)
    assert [c["params"]["param_mixed"] for c in alone["cases"]] == [1, 2]

    out = param_runs / "all.parquet"
    assert srd("export", "--format", "parquet", "--output", out).exit_code == 0
    df = pd.read_parquet(out)
    assert df["param_batch"].dtype == "Int64" and df["param_batch"].tolist() == [1, 8, 16]
    assert df["param_lr"].dtype == "float64" and df["param_lr"].tolist() == [0.5, 0.001, 2.0]
    assert df["param_seed"].dtype == "Int64"
    assert df["param_seed"].tolist()[0] == 7 and df["param_seed"].isna().tolist() == [
        False, True, True]
    for c, values in (("param_dtype", ["fp16", "8", "bf16"]), ("param_code", ["007", "010", None]),
                      ("param_mixed", ["1", "2", "big"]), ("param_opt", [None, "x", None]),
                      ("param_blank", [None, None, None])):
        assert pd.api.types.is_string_dtype(df[c]), c
        assert [None if pd.isna(v) else v for v in df[c]] == values, c
    assert srd("export", "--format", "parquet", "--project", "a", "--out", out).exit_code == 0
    assert pd.read_parquet(out)["param_mixed"].dtype == "Int64"


def test_csv_export_keeps_parameter_cells_verbatim(param_runs) -> None:
    rows = export_csv()
    assert [(r["param_batch"], r["param_lr"], r["param_code"], r["param_seed"]) for r in rows] \
        == [("1", "0.5", "007", "7"), ("8", "1e-3", "010", ""), ("16", "2", "", "")]


def test_output_is_an_alias_of_out(param_runs) -> None:
    out = param_runs / "a.json"
    r = srd("export", "--project", "a", "--output", out)
    assert r.exit_code == 0, r.output
    assert r.stderr == f"srd: exported 2 case(s) of 1 run(s) to {out}\n"
    assert json.loads(out.read_text())["project"] == "a"
    help_text = " ".join(srd("export", "--help").output.split())
    assert "--out, --output PATH Output file (atomically); --out and --output are the same " \
           "option." in help_text
