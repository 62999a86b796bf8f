"""`srd effects` and `srd compare`: exact numbers on small hand-made metrics.csv files, and
the exit codes CI gates on (0 no regression, 2 regression, 4 bad input)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from doerunner.analysis.compare import compare, metric_direction, parse_ratio
from doerunner.analysis.effects import interaction, main_effects
from doerunner.analysis.metrics import read_metrics
from doerunner.cli import cli
from doerunner.errors import InputError
from doerunner.outputs.compare_table import render_compare
from doerunner.outputs.effects_table import render_effects
from tests.conftest import run_srd

# 2 factors x 2 levels x 2 rows. First seen: batch 16 before 8, mode slow before fast.
# batch 8: 0.10 0.12 0.20 0.22 -> mean 0.16; batch 16: 0.30 0.34 0.40 0.46 -> 0.375
# mode fast: 0.10 0.12 0.30 0.34 -> 0.215; mode slow: 0.20 0.22 0.40 0.46 -> 0.32
# The FAIL row and the OK row without p95 must not count.
EFFECTS_CSV = """\
case_id,status,run_seconds,p95,p99,throughput_rps,errors,ts_start,ts_end,backend,exit_code,\
message,violations,param_batch,param_mode,param_seed
c1,OK,1.000000,0.400000,,,0,,,dummy,,,,16,slow,1
c2,OK,1.000000,0.340000,,,0,,,dummy,,,,16,fast,1
c3,OK,1.000000,0.300000,,,0,,,dummy,,,,16,fast,1
c4,OK,1.000000,0.460000,,,0,,,dummy,,,,16,slow,1
c5,OK,1.000000,0.200000,,,0,,,dummy,,,,8,slow,1
c6,OK,1.000000,0.220000,,,0,,,dummy,,,,8,slow,1
c7,OK,1.000000,0.100000,,,0,,,dummy,,,,8,fast,1
c8,OK,1.000000,0.120000,,,0,,,dummy,,,,8,fast,1
c9,FAIL,1.000000,9.900000,,,1,,,dummy,1,exit code 1,,8,fast,1
c10,OK,1.000000,,,,0,,,dummy,,,,8,fast,1
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def effects_csv(tmp_path: Path) -> Path:
    return _write(tmp_path, "metrics.csv", EFFECTS_CSV)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- main effects -----------------------------------------------------------------------------


def test_main_effects_exact_numbers(effects_csv: Path) -> None:
    t = main_effects(read_metrics(effects_csv), "p95")
    assert (t.response, t.rows_used, t.rows_total) == ("p95", 8, 10)
    # param_seed has one level only: not a factor by default.
    assert [f.factor for f in t.factors] == ["param_batch", "param_mode"]
    batch, mode = t.factors
    assert batch.effect == pytest.approx(0.215)
    assert mode.effect == pytest.approx(0.105)
    # numeric levels ascending; text levels as first seen (slow in c3, the first row)
    assert [lv.level for lv in batch.levels] == ["8", "16"]
    assert [lv.level for lv in mode.levels] == ["slow", "fast"]
    assert [lv.n for lv in batch.levels] == [4, 4]
    assert [lv.mean for lv in batch.levels] == pytest.approx([0.16, 0.375])
    assert [lv.mean for lv in mode.levels] == pytest.approx([0.32, 0.215])
    # sample std (ddof=1): batch 8 deviations ±0.06, ±0.04 -> sqrt(0.0104 / 3)
    assert batch.levels[0].std == pytest.approx(math.sqrt(0.0104 / 3))  # 0.058878
    # batch 16: ±0.025, 0.035, 0.075, 0.085 -> sqrt(0.0147 / 3) = 0.07
    assert batch.levels[1].std == pytest.approx(0.07)
    # slow: 0.08, 0.14, -0.12, -0.10 -> sqrt(0.0504 / 3); fast: sqrt(0.0451 / 3)
    assert [lv.std for lv in mode.levels] == pytest.approx([math.sqrt(0.0504 / 3),
                                                            math.sqrt(0.0451 / 3)])
    assert all(math.isnan(lv.pooled_std) for lv in batch.levels)
    assert t.has_spread and not t.has_pooled


def test_effects_table_text(effects_csv: Path) -> None:
    out = render_effects(main_effects(read_metrics(effects_csv), "p95"))
    assert out == (
        "Main effects on p95: 8 OK rows with a value, of 10; effect = max - min of the "
        "level means\n"
        "rank  factor       level  n      mean       std    effect\n"
        "----  -----------  -----  -  --------  --------  --------\n"
        "   1  param_batch  8      4  0.160000  0.058878  0.215000\n"
        "                   16     4  0.375000  0.070000\n"
        "   2  param_mode   slow   4  0.320000  0.129615  0.105000\n"
        "                   fast   4  0.215000  0.122610\n")


def test_effects_cli_default_response_markdown_and_factor(effects_csv: Path) -> None:
    r = invoke("effects", str(effects_csv), "--factor", "mode", "--markdown")
    assert r.exit_code == 0, r.output
    assert r.output == (
        "Main effects on p95: 8 OK rows with a value, of 10; effect = max - min of the "
        "level means\n\n"
        "| rank | factor | level | n | mean | std | effect |\n"
        "|---:|---|---|---:|---:|---:|---:|\n"
        "| 1 | param_mode | slow | 4 | 0.320000 | 0.129615 | 0.105000 |\n"
        "|  |  | fast | 4 | 0.215000 | 0.122610 |  |\n")


def test_effects_pooled_repetition_spread(tmp_path: Path) -> None:
    # Level a: stds 0.1 (runs 3, weight 2) and 0.2 (runs 2, weight 1):
    # sqrt((2 * 0.01 + 1 * 0.04) / 3) = sqrt(0.02). Level b: one row, std 0.3.
    p = _write(tmp_path, "m.csv", "case_id,status,run_seconds,runs,run_seconds_std,param_x\n"
                                  "r1,OK,1.0,3,0.1,a\nr2,OK,2.0,2,0.2,a\nr3,OK,4.0,2,0.3,b\n")
    t = main_effects(read_metrics(p))  # p95 has no column here: run_seconds
    assert t.response == "run_seconds"
    (x,) = t.factors
    assert [lv.pooled_std for lv in x.levels] == pytest.approx([math.sqrt(0.02), 0.3])
    assert [lv.mean for lv in x.levels] == pytest.approx([1.5, 4.0])
    assert x.effect == pytest.approx(2.5)
    assert math.isnan(x.levels[1].std)
    out = render_effects(t)
    assert "pooled_std" in out and "0.141421" in out and "2.500000" in out
    frame = t.to_frame()
    assert list(frame.columns) == ["rank", "factor", "level", "n", "mean", "std",
                                   "pooled_std", "effect"]
    assert frame["n"].tolist() == [2, 1]


@pytest.mark.parametrize(("args", "message"), [
    (["--response", "nope"], "srd: error: response 'nope' is not a column of the metrics "
                             "file\n"),
    (["--factor", "colour"], "srd: error: unknown factor colour (parameters: param_batch, "
                             "param_mode, param_seed)\n"),
])
def test_effects_bad_input_exits_4(effects_csv: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, ["effects", str(effects_csv), *args])
    assert r.exit_code == 4
    assert r.output == message


def test_effects_no_ok_rows_and_missing_file_exit_4(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", "case_id,status,p95,param_x\na,FAIL,,1\nb,TIMEOUT,,2\n")
    r = CliRunner().invoke(cli, ["effects", str(p)])
    assert (r.exit_code, r.output) == (4, "srd: error: no OK rows: nothing to analyse\n")
    r = CliRunner().invoke(cli, ["effects", str(tmp_path / "none.csv")])
    assert r.exit_code == 4
    assert r.output == f"srd: error: {tmp_path / 'none.csv'}: no such file\n"


# --- --where and the two-factor table ---------------------------------------------------------

# batch x mode with an empty cell (4, b: its only row FAILed), a row without mode (not in the
# table: its batch 10 is no level), and 10 rows in all (counts padded in text).
# (1,b) 0.5; (1,a) 0.1 0.2 0.15x4 -> 0.15 (6); (2,b) 0.3; (2,a) 0.4; (4,a) 0.9.
# batch 1: 1.4/7 = 0.2; 2: 0.35; 4: 0.9. mode b (first seen): 0.8/2 = 0.4; a: 2.2/8 = 0.275.
INTERACTION_CSV = """\
case_id,status,p95,param_batch,param_mode
r1,OK,0.3,2,b
r2,OK,0.1,1,a
r3,OK,0.2,1,a
r4,OK,0.4,2,a
r5,OK,0.5,1,b
r6,OK,0.9,4,a
r7,OK,0.15,1,a
r8,OK,0.15,1,a
r9,OK,0.15,1,a
r10,OK,0.15,1,a
r11,OK,0.7,10,
r12,FAIL,9.9,4,b
"""
INTERACTION_TITLE = ("Interaction of {a} and {b} on p95{where}: {used} OK rows with a value "
                     "of all three, of {total}; each cell: mean (n rows); all = every level "
                     "of the other factor")


def test_effects_where_selects_rows_before_the_effects(effects_csv: Path) -> None:
    # mode=fast: c2 c3 c7 c8 (OK), c9 (FAIL), c10 (no p95); mode has one level left.
    r = invoke("effects", str(effects_csv), "--where", "mode=fast")
    assert r.exit_code == 0, r.output
    assert r.output == (
        "Main effects on p95 where param_mode=fast: 4 OK rows with a value, of 6; effect = "
        "max - min of the level means\n"
        "rank  factor       level  n      mean       std    effect\n"
        "----  -----------  -----  -  --------  --------  --------\n"
        "   1  param_batch  8      2  0.110000  0.014142  0.210000\n"
        "                   16     2  0.320000  0.028284\n")
    # Values of one factor are alternatives; factors must all hold; spaces aside.
    r = invoke("effects", str(effects_csv), "--where", "param_batch= 16", "--where",
               "batch=8", "--where", "mode=slow", "--factor", "batch", "--markdown")
    assert r.exit_code == 0, r.output
    assert r.output == (
        "Main effects on p95 where param_batch=16|8 and param_mode=slow: 4 OK rows with a "
        "value, of 4; effect = max - min of the level means\n\n"
        "| rank | factor | level | n | mean | std | effect |\n"
        "|---:|---|---|---:|---:|---:|---:|\n"
        "| 1 | param_batch | 8 | 2 | 0.210000 | 0.014142 | 0.220000 |\n"
        "|  |  | 16 | 2 | 0.430000 | 0.042426 |  |\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--where", "colour=red"], "srd: error: --where colour=red: unknown factor colour "
                                "(parameters: param_batch, param_mode, param_seed)\n"),
    (["--where", "batch=32"], "srd: error: --where batch=32: no row has param_batch=32 "
                              "(values: 8, 16)\n"),
    (["--where", "batch=8.0"], "srd: error: --where batch=8.0: no row has param_batch=8.0 "
                               "(values: 8, 16)\n"),
    (["--where", "mode=fast", "--where", "mode=medium"],
     "srd: error: --where mode=medium: no row has param_mode=medium (values: slow, fast)\n"),
    (["--where", "mode"], "srd: error: --where takes FACTOR=VALUE, got 'mode'\n"),
    (["--where", "=8"], "srd: error: --where takes FACTOR=VALUE, got '=8'\n"),
    (["--interaction", "batch", "param_batch"],
     "srd: error: the interaction needs two different factors, got param_batch twice\n"),
    (["--interaction", "batch", "colour"],
     "srd: error: unknown factor colour (parameters: param_batch, param_mode, param_seed)\n"),
])
def test_effects_where_and_interaction_bad_input_exit_4(effects_csv: Path, args: list[str],
                                                        message: str) -> None:
    r = CliRunner().invoke(cli, ["effects", str(effects_csv), *args])
    assert (r.exit_code, r.output) == (4, message)


def test_effects_where_bad_value_in_a_subprocess(effects_csv: Path) -> None:
    p = run_srd("effects", str(effects_csv), "--where", "seed=2")
    assert (p.returncode, p.stdout, p.stderr) == (
        4, "", "srd: error: --where seed=2: no row has param_seed=2 (values: 1)\n")


def test_effects_interaction_text_with_an_empty_cell(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", INTERACTION_CSV)
    r = invoke("effects", str(p), "--interaction", "batch", "mode")
    assert r.exit_code == 0, r.output
    assert r.output == INTERACTION_TITLE.format(
        a="param_batch", b="param_mode", where="", used=10, total=12) + "\n" + (
        "param_batch \\ param_mode              b              a            all\n"
        "------------------------  -------------  -------------  -------------\n"
        "1                         0.500000  (1)  0.150000  (6)  0.200000  (7)\n"
        "2                         0.300000  (1)  0.400000  (1)  0.350000  (2)\n"
        "4                                     -  0.900000  (1)  0.900000  (1)\n"
        "all                       0.400000  (2)  0.275000  (8)  0.300000 (10)\n")


def test_effects_interaction_markdown_transposed(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", INTERACTION_CSV)
    r = invoke("effects", str(p), "--interaction", "param_mode", "batch", "--markdown")
    assert r.exit_code == 0, r.output
    assert r.output == INTERACTION_TITLE.format(
        a="param_mode", b="param_batch", where="", used=10, total=12) + "\n\n" + (
        "| param_mode \\\\ param_batch | 1 | 2 | 4 | all |\n"
        "|---|---:|---:|---:|---:|\n"
        "| b | 0.500000 (1) | 0.300000 (1) | - | 0.400000 (2) |\n"
        "| a | 0.150000 (6) | 0.400000 (1) | 0.900000 (1) | 0.275000 (8) |\n"
        "| all | 0.200000 (7) | 0.350000 (2) | 0.900000 (1) | 0.300000 (10) |\n")


def test_effects_interaction_margins_are_the_main_effects(effects_csv: Path) -> None:
    """Where every row has both factors, the margins are main_effects' level means."""
    df = read_metrics(effects_csv)
    t = interaction(df, "batch", "mode", "p95")
    by = {f.factor: f for f in main_effects(df, "p95").factors}
    assert t.levels_a == tuple(lv.level for lv in by["param_batch"].levels) == ("8", "16")
    assert t.levels_b == tuple(lv.level for lv in by["param_mode"].levels) == ("slow", "fast")
    assert [c.mean for c in t.by_a] == pytest.approx([lv.mean for lv in by["param_batch"].levels])
    assert [c.mean for c in t.by_b] == pytest.approx([lv.mean for lv in by["param_mode"].levels])
    assert [[(c.n, c.mean) for c in row] for row in t.cells] == [
        [(2, pytest.approx(0.21)), (2, pytest.approx(0.11))],
        [(2, pytest.approx(0.43)), (2, pytest.approx(0.32))]]
    assert (t.total.n, t.total.mean, t.rows_used, t.rows_total) == (
        8, pytest.approx(0.2675), 8, 10)


def test_effects_interaction_with_where_in_a_subprocess(effects_csv: Path) -> None:
    p = run_srd("effects", str(effects_csv), "--interaction", "batch", "mode", "--where",
                "batch=16")
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == INTERACTION_TITLE.format(
        a="param_batch", b="param_mode", where=" where param_batch=16", used=4,
        total=4) + "\n" + (
        "param_batch \\ param_mode          slow          fast           all\n"
        "------------------------  ------------  ------------  ------------\n"
        "16                        0.430000 (2)  0.320000 (2)  0.375000 (4)\n"
        "all                       0.430000 (2)  0.320000 (2)  0.375000 (4)\n")


def test_effects_interaction_refuses_factor_option(effects_csv: Path) -> None:
    r = CliRunner().invoke(cli, ["effects", str(effects_csv), "--interaction", "batch",
                                 "mode", "--factor", "seed"])
    assert r.exit_code == 4
    assert r.output.splitlines()[-1] == ("Error: --interaction names its two factors: drop "
                                         "--factor")


# --- compare ------------------------------------------------------------------------------------

# a: p95 +20 % (REGRESSION), throughput -10 % (REGRESSION, higher is better)
# b: p95 -25 % (improved);  c: p95 +10 % but |0.03| <= 2*sqrt(0.02^2+0.02^2) (noisy)
# f: p95 exactly +5 % (ok: not more than 5 %);  d only in base (missing), e only in new (new);
# g: OK in base, FAIL in new (BROKEN).
BASE = """\
case_id,status,p95,p95_std,throughput_rps,energy_adjusted_j
a,OK,0.100000,,100,50.00
b,OK,0.200000,,100,50.00
c,OK,0.300000,0.020000,100,50.00
d,OK,0.300000,,100,50.00
f,OK,0.400000,,100,50.00
g,OK,0.100000,,100,50.00
"""
NEW = """\
case_id,status,p95,p95_std,throughput_rps,energy_adjusted_j
a,OK,0.120000,,90,51.00
b,OK,0.150000,,100,40.00
c,OK,0.330000,0.020000,100,50.00
e,OK,0.300000,,100,50.00
f,OK,0.420000,,100,50.00
g,FAIL,,,,
"""


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path, "base.csv", BASE), _write(tmp_path, "new.csv", NEW)


def test_compare_verdicts_and_changes(pair: tuple[Path, Path]) -> None:
    base, new = (read_metrics(p) for p in pair)
    r = compare(base, new, ["p95", "throughput_rps"])
    t = r.table.set_index(["case_id", "metric"])
    assert r.common == 5 and r.only_base == ("d",) and r.only_new == ("e",)
    verdicts = {k: v for k, v in t["verdict"].items()}
    assert verdicts == {
        ("a", "p95"): "REGRESSION", ("a", "throughput_rps"): "REGRESSION",
        ("b", "p95"): "improved", ("b", "throughput_rps"): "ok",
        ("c", "p95"): "noisy: cannot tell", ("c", "throughput_rps"): "ok",
        ("d", "p95"): "missing", ("d", "throughput_rps"): "missing",
        ("f", "p95"): "ok", ("f", "throughput_rps"): "ok",
        ("g", "p95"): "BROKEN", ("g", "throughput_rps"): "BROKEN",
        ("e", "p95"): "new", ("e", "throughput_rps"): "new",
    }
    assert r.broken == ("g",) and r.gone == ("d",)
    assert list(t.index.get_level_values(0)) == ["a", "a", "b", "b", "c", "c", "d", "d",
                                                 "f", "f", "g", "g", "e", "e"]
    assert t.loc[("a", "p95"), "change"] == pytest.approx(0.2)
    assert t.loc[("a", "throughput_rps"), "change"] == pytest.approx(-0.1)
    assert t.loc[("b", "p95"), "change"] == pytest.approx(-0.25)
    assert t.loc[("c", "p95"), "noise"] == pytest.approx(2 * math.sqrt(0.0008))
    assert r.count("REGRESSION") == 2 and r.has_regression
    assert r.exit_code() == 3  # g is BROKEN
    allowed = compare(base, new, ["p95", "throughput_rps"], allow_missing=True)
    assert allowed.exit_code() == 3  # --allow-missing accepts d's absence, not g's failure
    # A wider tolerance: the +20 % p95 and -10 % throughput are no longer regressions.
    assert not compare(base, new, ["p95", "throughput_rps"], 0.25).has_regression


def test_compare_table_text(pair: tuple[Path, Path]) -> None:
    base, new = (read_metrics(p) for p in pair)
    assert render_compare(compare(base, new, ["p95"])) == (
        "case_id  metric      base       new   change  verdict             note\n"
        "-------  ------  --------  --------  -------  ------------------  "
        "--------------------------------\n"
        "a        p95     0.100000  0.120000  +20.00%  REGRESSION          "
        "untested: no repetitions to test\n"
        "b        p95     0.200000  0.150000  -25.00%  improved            "
        "untested: no repetitions to test\n"
        "c        p95     0.300000  0.330000  +10.00%  noisy: cannot tell  "
        "diff 0.030000 <= noise 0.056569\n"
        "d        p95     0.300000                     missing             only in base\n"
        "f        p95     0.400000  0.420000   +5.00%  ok\n"
        "g        p95     0.100000                     BROKEN              new: FAIL\n"
        "e        p95               0.300000           new                 only in new\n"
        "5 cases in both files; 1 regression(s), 1 improved, 1 noisy (cannot tell); cases: "
        "1 broken, 1 missing, 1 new; max regression 5%\n"
        "broken (FAIL or TIMEOUT in new, OK in base or new): g\n"
        "missing from new (OK in base): d; --allow-missing accepts that\n"
        "new cases (only in new): e\n"
        "untested: without repetitions (repetitions.csv of a run with repeat >= 2) or a "
        "spread column, a change is judged on the tolerance alone\n")


def test_compare_cli_exit_codes_markdown(pair: tuple[Path, Path], tmp_path: Path) -> None:
    base, new = map(str, pair)
    r = invoke("compare", base, new, "--metric", "energy_adjusted_j", "--markdown")
    assert r.exit_code == 3, r.output  # g: OK in base, FAIL in new
    assert r.output.splitlines()[:4] == [
        "| case_id | metric | base | new | change | verdict | note |",
        "|---|---|---:|---:|---:|---|---|",
        "| a | energy_adjusted_j | 50.00 | 51.00 | +2.00% | ok |  |",
        "| b | energy_adjusted_j | 50.00 | 40.00 | -20.00% | improved | untested: no "
        "repetitions to test |",
    ]
    # Without g's failure and d's absence, the p95 regression of a decides: exit 2.
    fixed = _write(tmp_path, "fixed.csv", NEW.replace("g,FAIL,,,,", "g,OK,0.1,,100,50")
                   + "d,OK,0.3,,100,50\n")
    r = invoke("compare", base, str(fixed))  # default metrics: p95 (no run_seconds column)
    assert r.exit_code == 2
    assert "a        p95     0.100000  0.120000  +20.00%  REGRESSION" in r.output
    r = invoke("compare", base, str(fixed), "--metric", "p95", "--max-regression", "25%")
    assert r.exit_code == 0, r.output
    r = invoke("compare", base, str(fixed), "--metric", "p95", "--max-regression", "0.25")
    assert r.exit_code == 0, r.output
    # d missing from new: 3, unless --allow-missing.
    gone = _write(tmp_path, "gone.csv", NEW.replace("g,FAIL,,,,", "g,OK,0.1,,100,50"))
    r = invoke("compare", base, str(gone), "--max-regression", "25%")
    assert r.exit_code == 3, r.output
    assert "missing from new (OK in base): d; --allow-missing accepts that" in r.output
    r = invoke("compare", base, str(gone), "--max-regression", "25%", "--allow-missing")
    assert r.exit_code == 0, r.output
    r = invoke("compare", base, base)
    assert r.exit_code == 0
    assert "6 cases in both files; 0 regression(s)" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "nope"], "srd: error: metric 'nope' is in neither file\n"),
    (["--metric", "p95", "--max-regression", "lots"],
     "srd: error: 'lots' is not a ratio like 5% or 0.05\n"),
    (["--metric", "p95", "--max-regression", "5"],
     "srd: error: '5' would be 500%; write 5% or 0.05\n"),
])
def test_compare_bad_input_exits_4(pair: tuple[Path, Path], args: list[str],
                                   message: str) -> None:
    r = CliRunner().invoke(cli, ["compare", *map(str, pair), *args])
    assert (r.exit_code, r.output) == (4, message)


def test_compare_missing_file_and_no_common_cases_exit_4(tmp_path: Path,
                                                        pair: tuple[Path, Path]) -> None:
    base, _ = pair
    r = CliRunner().invoke(cli, ["compare", str(base), str(tmp_path / "gone.csv")])
    assert (r.exit_code, r.output) == (4, f"srd: error: {tmp_path / 'gone.csv'}: no such "
                                          "file\n")
    other = _write(tmp_path, "other.csv", "case_id,status,p95\nzz,OK,0.1\n")
    r = CliRunner().invoke(cli, ["compare", str(base), str(other)])
    assert (r.exit_code, r.output) == (4, "srd: error: base and new have no case_id in "
                                          "common\n")


def test_compare_run_seconds_noise_and_unknown_direction() -> None:
    base = pd.DataFrame({"case_id": ["x", "y"], "status": ["OK", "OK"],
                         "run_seconds": ["1.0", "1.0"], "run_seconds_std": ["0.1", ""],
                         "accuracy": ["0.9", "0.9"]})
    new = pd.DataFrame({"case_id": ["x", "y"], "status": ["OK", "OK"],
                        "run_seconds": ["1.25", "1.25"], "run_seconds_std": ["0.1", ""],
                        "accuracy": ["0.8", "0.9"]})
    r = compare(base, new)  # default: run_seconds (p95 absent)
    # x: noise 2*sqrt(0.02) = 0.283 > 0.25 -> noisy; y: no spread -> REGRESSION
    assert r.table["verdict"].tolist() == ["noisy: cannot tell", "REGRESSION"]
    with pytest.raises(InputError, match="write accuracy:lower or accuracy:higher"):
        compare(base, new, ["accuracy"])
    r = compare(base, new, ["accuracy:higher"])
    assert r.table["verdict"].tolist() == ["REGRESSION", "ok"]


@pytest.mark.parametrize(("name", "direction"), [
    ("p95", "lower"), ("p50", "lower"), ("latency_mean", "lower"), ("ttft_p50", "lower"),
    ("tpot_mean", "lower"), ("run_seconds_max", "lower"), ("warmup_s", "lower"),
    ("load_sec", "lower"), ("total_seconds", "lower"), ("energy_adjusted_j", "lower"),
    ("cpu_j", "lower"), ("mem_peak_mb", "lower"), ("errors", "lower"),
    ("gpu_power_mean_w", "lower"), ("throughput_rps", "higher"), ("tokens_per_s", "higher"),
    ("req_rps", "higher"), ("images_per_s", "higher"), ("accuracy", None),
])
def test_metric_direction(name: str, direction: str | None) -> None:
    assert metric_direction(name) == direction


def test_parse_ratio() -> None:
    assert parse_ratio("5%") == pytest.approx(0.05)
    assert parse_ratio("0.05") == 0.05
    assert parse_ratio("150%") == pytest.approx(1.5)
    with pytest.raises(InputError):
        parse_ratio("-1%")
