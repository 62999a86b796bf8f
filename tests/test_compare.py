"""`srd compare` that cannot be fooled (issue 14), on real runs: a design with an added level
(ids re-labelled), a case that broke in the new run, a noisy baseline; the repetitions kept
in the run directory, the robust columns and the end-of-run warnings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from doerunner.analysis.compare import compare
from doerunner.analysis.significance import MANN_WHITNEY, WELCH, significance, smallest_p
from doerunner.cli import cli
from doerunner.errors import InputError
from doerunner.repstats import mad, median, outliers, robust_columns, slow_first
from tests.conftest import run_srd


def _run(tmp_path: Path, name: str, cases: str) -> tuple[Path, str]:
    """Run a cases.csv (a real srd process); metrics.csv and stderr."""
    src = tmp_path / f"{name}_cases.csv"
    src.write_text(cases, encoding="utf-8")
    out = tmp_path / f"{name}.csv"
    p = run_srd("run", "--cases", str(src), "--out", str(out))
    assert p.returncode in (0, 3), p.stderr
    return out, p.stderr


def _compare(*args: str):
    return CliRunner().invoke(cli, ["compare", *args], catch_exceptions=False)


# A counter file per case picks the value of this repetition from a list: the command
# prints the list's next value as p95, or sleeps that long.
NTH = "i=$(cat {ctr} 2>/dev/null || echo 0); echo $((i+1)) > {ctr}; set -- {vals}; shift $i"


def _cases(tmp_path: Path, rows: list[tuple[str, str, int]], action: str,
           run: str = "") -> str:
    """Cases whose commands hold no parameter (base and new pair by id)."""
    lines = ["case_id,cmd,repeat"]
    for cid, vals, repeat in rows:
        nth = NTH.format(ctr=tmp_path / f"{run}{cid}.ctr", vals=vals)
        lines.append(f'{cid},"{nth}; {action}",{repeat}')
    return "\n".join(lines) + "\n"


# --- pairing ------------------------------------------------------------------------------


def _design(tmp_path: Path, levels: str) -> Path:
    spec = tmp_path / f"design{len(levels)}.yaml"
    spec.write_text("design: full\nfactors:\n  mode: [fast, safe]\n"
                    f"  level: [{levels}]\nprefix: pt\ntemplate:\n"
                    "  cmd: \"echo p95=0.{level}\"\n", encoding="utf-8")
    out = tmp_path / f"cases{len(levels)}.csv"
    p = run_srd("design", str(spec), "--out", str(out))
    assert p.returncode == 0, p.stderr
    return out


def test_design_with_an_added_level_is_refused_by_id_and_paired_by_params(
        tmp_path: Path) -> None:
    base_cases, new_cases = _design(tmp_path, "1, 2, 3"), _design(tmp_path, "1, 2, 3, 4")
    base, _ = _run(tmp_path, "base", base_cases.read_text())
    new, _ = _run(tmp_path, "new", new_cases.read_text())
    b, n = pd.read_csv(base, dtype=str), pd.read_csv(new, dtype=str)
    # srd design numbered the points by position: the same ids name other points.
    assert b.loc[0, ["case_id", "param_mode", "param_level"]].tolist() == ["pt-001", "fast",
                                                                          "2"]
    assert n.loc[0, ["case_id", "param_mode", "param_level"]].tolist() == ["pt-001", "fast",
                                                                          "1"]
    r = _compare(str(base), str(new), "--metric", "p95", "--no-params")
    assert r.exit_code == 4, r.output
    assert r.output.splitlines()[2:] == [
        "pt-001   p95     0.200000  0.100000          MISMATCH  level: 2 → 1",
        "pt-002   p95     0.300000  0.200000          MISMATCH  level: 3 → 2; mode: fast → safe",
        "pt-003   p95     0.100000  0.300000          MISMATCH  level: 1 → 3",
        "pt-004   p95     0.100000  0.400000          MISMATCH  level: 1 → 4",
        "pt-005   p95     0.200000  0.100000          MISMATCH  level: 2 → 1",
        "pt-006   p95     0.300000  0.200000          MISMATCH  level: 3 → 2; mode: safe → fast",
        "pt-007   p95               0.300000          new       only in new",
        "pt-008   p95               0.400000          new       only in new",
        "6 cases in both files; 0 regression(s), 0 improved, 0 noisy (cannot tell); cases: "
        "2 new, 6 refused; max regression 5%",
        "refused: 6 case_id(s) name different parameters in base and new: pt-001 (level: 2 → "
        "1), pt-002 (level: 3 → 2; mode: fast → safe), pt-003 (level: 1 → 3), pt-004 (level: "
        "1 → 4), pt-005 (level: 2 → 1) and 1 more; pair the cases by their parameters with "
        "--match params",
        "new cases (only in new): pt-007, pt-008",
    ]
    # Paired by their parameters, every common point measured the same: nothing changed.
    r = _compare(str(base), str(new), "--metric", "p95", "--match", "params", "--no-params")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[2:] == [
        "pt-006   p95     0.200000  0.200000  +0.00%  ok       base id pt-001",
        "pt-003   p95     0.300000  0.300000  +0.00%  ok       base id pt-002",
        "pt-001   p95     0.100000  0.100000  +0.00%  ok       base id pt-003",
        "pt-005   p95     0.100000  0.100000  +0.00%  ok       base id pt-004",
        "pt-002   p95     0.200000  0.200000  +0.00%  ok       base id pt-005",
        "pt-007   p95     0.300000  0.300000  +0.00%  ok       base id pt-006",
        "pt-004   p95               0.400000          new      only in new",
        "pt-008   p95               0.400000          new      only in new",
        "6 cases in both files; 0 regression(s), 0 improved, 0 noisy (cannot tell); cases: "
        "2 new; max regression 5%",
        "new cases (only in new): pt-004, pt-008",
    ]


def test_match_params_refuses_a_point_that_appears_twice() -> None:
    base = pd.DataFrame({"case_id": ["a", "b"], "status": ["OK", "OK"], "p95": ["1", "1"],
                         "param_x": ["1", " 1 "]})
    with pytest.raises(InputError, match=r"base: cases 'a' and 'b' have the same parameters "
                                         r"\(x= 1 \): --match params needs each parameter "
                                         r"point once"):
        compare(base, base, ["p95"], match="params")
    no_params = base.drop(columns="param_x")
    with pytest.raises(InputError, match="no param_\\* column in common"):
        compare(no_params, no_params, ["p95"], match="params")


def test_parameters_are_compared_as_text() -> None:
    # The command received the text: 2.0 and 2, or versions 1.10 and 1.1, are other points.
    base = pd.DataFrame({"case_id": ["a", "b", "c"], "status": ["OK"] * 3,
                         "p95": ["1", "1", "1"], "param_x": ["2.0", "1.10", "x"]})
    new = base.assign(param_x=["2", "1.1", " x "])
    r = compare(base, new, ["p95"])
    assert r.table["verdict"].tolist() == ["MISMATCH", "MISMATCH", "ok"]
    assert r.table["note"].tolist() == ["x: 2.0 → 2", "x: 1.10 → 1.1", ""]
    assert r.exit_code() == 4


# --- broken and missing cases ----------------------------------------------------------


def test_a_case_broken_in_new_fails_the_compare(tmp_path: Path) -> None:
    base, _ = _run(tmp_path, "base", "case_id,cmd,timeout_s\nok,echo p95=0.1,10\n"
                                     "fails,echo p95=0.1,10\nslow,echo p95=0.1,10\n"
                                     "gone,echo p95=0.1,10\n")
    new, _ = _run(tmp_path, "new", "case_id,cmd,timeout_s\nok,echo p95=0.1,10\n"
                                   "fails,exit 1,10\nslow,sleep 5,0.3\nadded,echo p95=0.1,10\n")
    r = _compare(str(base), str(new), "--metric", "p95")
    assert r.exit_code == 3, r.output
    lines = r.output.splitlines()
    assert lines[2:7] == [
        "ok       p95     0.100000  0.100000  +0.00%  ok",
        "fails    p95     0.100000                    BROKEN   new: FAIL",
        "slow     p95     0.100000                    BROKEN   new: TIMEOUT",
        "gone     p95     0.100000                    missing  only in base",
        "added    p95               0.100000          new      only in new",
    ]
    assert lines[7:] == [
        "3 cases in both files; 0 regression(s), 0 improved, 0 noisy (cannot tell); cases: "
        "2 broken, 1 missing, 1 new; max regression 5%",
        "broken (FAIL or TIMEOUT in new, OK in base or new): fails, slow",
        "missing from new (OK in base): gone; --allow-missing accepts that",
        "new cases (only in new): added",
    ]
    # --allow-missing accepts a missing case, never a broken one.
    assert _compare(str(base), str(new), "--metric", "p95", "--allow-missing").exit_code == 3
    only_gone = tmp_path / "only_gone.csv"
    pd.read_csv(new, dtype=str, keep_default_na=False).iloc[[0]].to_csv(only_gone, index=False)
    assert _compare(str(base), str(only_gone), "--metric", "p95").exit_code == 3
    r = _compare(str(base), str(only_gone), "--metric", "p95", "--allow-missing")
    assert r.exit_code == 0, r.output


# --- statistics behind a verdict ---------------------------------------------------------


def test_noisy_baseline_cannot_tell_and_a_real_regression_is_significant(
        tmp_path: Path) -> None:
    # run_seconds: a baseline with CV ~73 % (sleeps 0.05..0.35 s, mean 0.19 s) against a
    # steady 0.11 s (-42 %): not significant. p95: a clear +200 % regression over 5 vs 5
    # repetitions (Mann-Whitney U), and a -50 % change over 3 vs 3 (Welch's t-test).
    base_rows = [("noisy", "0.05 0.35 0.05 0.30 0.20", 5), ("clear", "0.10 0.11 0.10 0.12 0.10", 5),
                 ("small", "0.20 0.21 0.20", 3)]
    new_rows = [("noisy", "0.11 0.11 0.11 0.11 0.11", 5), ("clear", "0.30 0.31 0.30 0.32 0.30", 5),
                ("small", "0.10 0.11 0.10", 3)]
    base, err = _run(tmp_path, "base", _cases(tmp_path, base_rows, "sleep $1; echo p95=$1", "b"))
    assert re.search(r"run_seconds varies by more than 10% between repetitions in 1 case\(s\): "
                     r"noisy \(CV 7[0-9]%\); the figures are noisy", err), err
    new, _ = _run(tmp_path, "new", _cases(tmp_path, new_rows, "sleep $1; echo p95=$1", "n"))
    reps = pd.read_csv(tmp_path / "base_run" / "repetitions.csv")
    assert reps[reps.metric == "p95"].groupby("case_id", sort=False)["value"].apply(
        list).to_dict() == {"noisy": [0.05, 0.35, 0.05, 0.3, 0.2],
                            "clear": [0.1, 0.11, 0.1, 0.12, 0.1], "small": [0.2, 0.21, 0.2]}
    r = _compare(str(base), str(new), "--metric", "run_seconds", "--metric", "p95")
    assert r.exit_code == 2, r.output
    rows = {(line[:7].strip(), line[9:21].strip()): line for line in r.output.splitlines()[2:8]}
    assert re.search(r"-4[0-9]\.[0-9]{2}%  noisy: cannot tell  p=0\.[0-9]+, Mann-Whitney U, 5 vs 5 "
                     r"repetitions: not significant at 0\.05; CV base [0-9]+%$",
                     rows["noisy", "run_seconds"]), r.output
    assert rows["noisy", "p95"].endswith(
        "-42.11%  noisy: cannot tell  p=0.65, Mann-Whitney U, 5 vs 5 repetitions: not "
        "significant at 0.05; CV base 73%")
    assert rows["clear", "p95"].endswith(
        "+188.68%  REGRESSION          p=0.01, Mann-Whitney U, 5 vs 5 repetitions")
    assert rows["small", "p95"].endswith(
        "-49.18%  improved            p=2.9e-05, Welch t, 3 vs 3 repetitions")
    # Without the run directories the files still have the spread columns (the std of
    # run_seconds, the MAD of p95): the noisy pair is still not called a change.
    for f in (base, new):
        (f.parent / (f.stem + "_run") / "repetitions.csv").unlink()
    r = _compare(str(base), str(new), "--metric", "p95")
    assert r.exit_code == 2, r.output
    assert r.output.splitlines()[2:6] == [
        "noisy    p95     0.190000  0.110000   -42.11%  noisy: cannot tell  diff 0.080000 <= "
        "noise 0.444780",
        "clear    p95     0.106000  0.306000  +188.68%  REGRESSION          diff 0.200000 > "
        "noise 0.000000",
        "small    p95     0.203333  0.103333   -49.18%  improved            diff 0.100000 > "
        "noise 0.000000",
        "3 cases in both files; 1 regression(s), 1 improved, 1 noisy (cannot tell); max "
        "regression 5%"]


def test_significance_tests() -> None:
    assert smallest_p(3, 3) == pytest.approx(0.1)
    assert smallest_p(4, 4) == pytest.approx(2 / 70)
    t = significance(np.array([1.0, 1.1, 1.2, 1.3]), np.array([2.0, 2.1, 2.2, 2.3]))
    assert (t.method, t.p, t.describe()) == (
        MANN_WHITNEY, pytest.approx(2 / 70), "p=0.029, Mann-Whitney U, 4 vs 4 repetitions")
    t = significance(np.array([1.0, 1.1, 1.2]), np.array([2.0, 2.1, 2.2]))
    assert t.method == WELCH and t.p < 0.001
    assert significance(np.array([1.0, 1.0]), np.array([1.0, 1.0])).p == 1.0
    assert significance(np.array([1.0, 1.0]), np.array([2.0, 2.0])).p == 0.0


# --- robust columns, repetitions.csv, end-of-run warnings -------------------------------


def test_repstats_rules() -> None:
    assert (median([3, 1, 2, 10]), mad([3, 1, 2, 10])) == (2.5, 1.0)
    assert robust_columns("p95", [0.1]) == {}
    assert robust_columns("p95", [0.1, 0.3, 0.2]) == {"p95_median": 0.2,
                                                      "p95_mad": pytest.approx(0.1)}
    # hyperfine's rule: |x - median| / MAD > 14.826, and over 1 % of the median.
    assert outliers([1.0, 1.01, 0.99, 1.0, 1.3]) == [4]
    assert outliers([1.0, 1.01, 0.99, 1.0, 1.2]) == [4]
    assert outliers([1.0, 1.01, 0.99, 1.0, 1.1]) == []  # 10 MADs: not 14.8
    assert outliers([1.0, 1.1, 0.9, 1.0, 1.3]) == []
    assert outliers([1.0, 1.0, 1.0, 1.005]) == []  # MAD 0, but within 1 %
    assert outliers([2.0, 1.0]) == []
    assert slow_first([3.0, 1.0, 1.01, 0.99]) and not slow_first([0.5, 1.0, 1.01, 0.99])


def test_robust_columns_and_warnings_of_a_real_run(tmp_path: Path) -> None:
    rows = [("steady", "0.20 0.22 0.21", 3), ("cold", "0.60 0.05 0.05 0.05 0.05", 5),
            ("hiccup", "0.05 0.05 0.60 0.05 0.05", 5)]
    out, err = _run(tmp_path, "m", _cases(tmp_path, rows, "sleep $1; echo p95=$1 n=$#"))
    df = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("case_id")
    assert df.loc["steady", ["p95", "p95_median", "p95_mad", "n", "n_median", "n_mad"]].tolist() \
        == ["0.210000", "0.210000", "0.010000", "2", "2.00", "1.00"]
    assert float(df.loc["cold", "run_seconds_median"]) == pytest.approx(0.05, abs=0.02)
    assert float(df.loc["cold", "run_seconds_mad"]) < 0.01
    assert "p95_min" not in df.columns and "run_seconds_max_median" not in df.columns
    warnings = [line for line in err.splitlines() if line.startswith("srd: warning:")]
    assert len(warnings) == 2, err
    assert re.fullmatch(
        r"srd: warning: statistical outliers among the repetitions of 1 case\(s\): hiccup "
        r"\(repetition 3: 0\.6[0-9]* s; median 0\.05[0-9]* s\); other programs may have "
        r"interfered: run again on a quiet machine", warnings[0]), warnings[0]
    assert re.fullmatch(
        r"srd: warning: the first repetition was much slower than the rest in 1 case\(s\): "
        r"cold \(0\.6[0-9]* s, median 0\.05[0-9]* s\); caches were probably cold: add a "
        r"warm-up \(warmup column, or warmup=auto\)", warnings[1]), warnings[1]
    p = run_srd("validate", str(out))
    assert p.returncode == 0, p.stdout + p.stderr


def test_stability_judges_cases_of_5_ms_or_more() -> None:
    from doerunner.campaign.stability import Stability

    s = Stability()
    s.add("fast", [0.001, 0.003, 0.001])  # CV 69 %, but start-up noise at 1 ms
    s.add("once", [0.5])
    s.add("flat", [0.10, 0.13, 0.10])  # the MAD is 0: 0.13 is an outlier, as in hyperfine
    s.add("steady", [0.100, 0.101, 0.099, 0.100])
    s.add("wobbly", [0.10, 0.13, 0.11])
    assert s.warnings() == [
        "run_seconds varies by more than 10% between repetitions in 1 case(s): wobbly (CV 13%); "
        "the figures are noisy: run on a quiet machine, or raise repeat",
        "statistical outliers among the repetitions of 1 case(s): flat (repetition 2: 0.13 s; "
        "median 0.1 s); other programs may have interfered: run again on a quiet machine"]


def _run_files(tmp_path: Path, name: str, reps: dict[str, list[float]]) -> Path:
    """A metrics.csv of OK cases and the repetitions.csv of its run: run_seconds."""
    rows = ["case_id,status,run_seconds,runs"]
    lines = ["case_id,repetition,metric,value"]
    for cid, values in reps.items():
        rows.append(f"{cid},OK,{np.mean(values):.6f},{len(values)}")
        lines += [f"{cid},{k},run_seconds,{v!r}" for k, v in enumerate(values, start=1)]
    out = tmp_path / f"{name}.csv"
    out.write_text("\n".join(rows) + "\n")
    (tmp_path / f"{name}_run").mkdir()
    (tmp_path / f"{name}_run" / "repetitions.csv").write_text("\n".join(lines) + "\n")
    return out


def test_a_mean_dragged_by_outliers_is_not_called_a_change(tmp_path: Path) -> None:
    # 8 of 10 repetitions got 50 % slower; two slow outliers of base make the mean fall.
    base = _run_files(tmp_path, "base", {"c1": [1, 1, 1.01, .99, 1, 1.02, .98, 1, 10, 10]})
    new = _run_files(tmp_path, "new", {"c1": [1.5] * 10})
    r = _compare(str(base), str(new), "--metric", "run_seconds")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[2] == (
        "c1       run_seconds  2.800000  1.500000  -46.43%  noisy: cannot tell  p=0.017, "
        "Mann-Whitney U, 10 vs 10 repetitions, but most repetitions moved the other way: the "
        "mean follows a few; CV base 136%")


def test_repetitions_of_another_run_are_not_used(tmp_path: Path) -> None:
    base = _run_files(tmp_path, "base", {"c1": [1.0, 1.01, 0.99, 1.0, 1.0]})
    new = _run_files(tmp_path, "new", {"c1": [1.0, 1.01, 0.99, 1.0, 1.0]})
    # new.csv re-measured elsewhere (--run-dir): slower, its run directory left as it was.
    new.write_text("case_id,status,run_seconds,runs\nc1,OK,2.000000,5\n")
    r = run_srd("compare", str(base), str(new), "--metric", "run_seconds")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr == (
        f"srd: warning: {tmp_path / 'new_run' / 'repetitions.csv'} does not hold the "
        "repetitions of this metrics.csv (case c1: runs 5, run_seconds 2.000000; repetitions: "
        "5 with mean 1.000000): its repetitions are not used\n")
    assert "c1       run_seconds  1.000000  2.000000  +100.00%  REGRESSION  untested: no " \
           "repetitions to test" in r.stdout


def test_a_value_lost_or_a_new_case_failing_fails_the_compare(tmp_path: Path) -> None:
    base = tmp_path / "base.csv"
    base.write_text("case_id,status,p95,run_seconds\na,OK,0.1,1\nb,OK,0.1,1\n")
    new = tmp_path / "new.csv"
    new.write_text("case_id,status,p95,run_seconds\na,OK,0.1,1\nb,OK,,1\nc,FAIL,,1\n")
    r = _compare(str(base), str(new), "--metric", "p95")
    assert r.exit_code == 3, r.output
    assert r.output.splitlines()[2:] == [
        "a        p95     0.100000  0.100000  +0.00%  ok",
        "b        p95     0.100000                    missing  no value in new",
        "c        p95                                 new      only in new: FAIL",
        "2 cases in both files; 0 regression(s), 0 improved, 0 noisy (cannot tell); cases: "
        "1 broken, 1 new; max regression 5%",
        "broken (FAIL or TIMEOUT in new, OK in base or new): c",
        "values missing from new (base had them): b:p95; --allow-missing accepts that",
        "new cases (only in new): c",
    ]
    new.write_text("case_id,status,p95,run_seconds\na,OK,0.1,1\nb,OK,,1\n")
    r = _compare(str(base), str(new), "--metric", "p95", "--allow-missing")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == ("values missing from new (base had them): b:p95; "
                                         "accepted (--allow-missing)")
    # A metric that new does not measure at all: every value is lost.
    new.write_text("case_id,status,run_seconds\na,OK,1\nb,OK,1\n")
    assert _compare(str(base), str(new), "--metric", "p95").exit_code == 3


def test_a_backends_own_median_wins_over_the_robust_column(tmp_path: Path) -> None:
    out, _ = _run(tmp_path, "m", "case_id,cmd,repeat\nx,echo lat=1 lat_median=5 lat_mad=7,3\n")
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert df.loc[0, ["lat", "lat_median", "lat_mad"]].tolist() == ["1", "5", "7"]


# --- the parameters next to case_id (--show-params) -------------------------------------

# c: the same id, another level (refused by id); d only in base (size empty: left out);
# e only in new; a value with a space is quoted, a point over 40 characters is cut.
BASE_P = """\
case_id,status,run_seconds,p95,param_level,param_size,param_label
a,OK,1.000000,0.100000,9,4,fast path
b,OK,1.000000,0.200000,1,16,a very long label that goes on and on and on
c,OK,1.000000,0.300000,2,8,x
d,OK,1.000000,0.300000,3,,y
"""
NEW_P = """\
case_id,status,run_seconds,p95,param_level,param_size,param_label
a,OK,1.000000,0.100000,9,4,fast path
b,OK,1.000000,0.150000,1,16,a very long label that goes on and on and on
c,OK,1.000000,0.300000,5,8,x
e,OK,1.000000,0.300000,7,2,z
"""


def _pair_p(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "base.csv").write_text(BASE_P, encoding="utf-8")
    (tmp_path / "new.csv").write_text(NEW_P, encoding="utf-8")
    return str(tmp_path / "base.csv"), str(tmp_path / "new.csv")


def test_show_params_text(tmp_path: Path) -> None:
    base, new = _pair_p(tmp_path)
    r = _compare(base, new, "--metric", "p95", "--params")
    assert r.exit_code == 4, r.output  # c refused
    assert r.output.splitlines()[:7] == [
        "case_id  params                                    metric      base       new   "
        "change  verdict   note",
        "-------  ----------------------------------------  ------  --------  --------  "
        "-------  --------  --------------------------------",
        'a        level=9 size=4 label="fast path"          p95     0.100000  0.100000   '
        "+0.00%  ok",
        'b        level=1 size=16 label="a very long labe…  p95     0.200000  0.150000  '
        "-25.00%  improved  untested: no repetitions to test",
        "c        level=5 size=8 label=x                    p95     0.300000  0.300000  "
        "         MISMATCH  level: 2 → 5",
        "d        level=3 label=y                           p95     0.300000            "
        "         missing   only in base",
        "e        level=7 size=2 label=z                    p95               0.300000  "
        "         new       only in new",
    ]
    # the summary is the same with or without the column
    plain = _compare(base, new, "--metric", "p95", "--no-params")
    assert r.output.splitlines()[7:] == plain.output.splitlines()[7:]
    assert "params" not in plain.output.splitlines()[0]
    assert _compare(base, new, "--metric", "p95").output == r.output  # the default


def test_show_params_markdown_by_params_in_a_subprocess(tmp_path: Path) -> None:
    base, new = _pair_p(tmp_path)
    p = run_srd("compare", base, new, "--metric", "p95", "--metric", "run_seconds",
                "--match", "params", "--params", "--markdown")
    assert (p.returncode, p.stderr) == (3, "")  # c's two points: one missing, one new
    assert p.stdout.splitlines()[:14] == [
        "| case_id | params | metric | base | new | change | verdict | note |",
        "|---|---|---|---:|---:|---:|---|---|",
        '| a | level=9 size=4 label="fast path" | p95 | 0.100000 | 0.100000 | +0.00% | ok |  |',
        '| a | level=9 size=4 label="fast path" | run_seconds | 1.000000 | 1.000000 | +0.00% '
        "| ok |  |",
        '| b | level=1 size=16 label="a very long labe… | p95 | 0.200000 | 0.150000 | -25.00% '
        "| improved | untested: no repetitions to test |",
        '| b | level=1 size=16 label="a very long labe… | run_seconds | 1.000000 | 1.000000 '
        "| +0.00% | ok |  |",
        "| c | level=2 size=8 label=x | p95 | 0.300000 |  |  | missing | only in base |",
        "| c | level=2 size=8 label=x | run_seconds | 1.000000 |  |  | missing | only in base |",
        "| d | level=3 label=y | p95 | 0.300000 |  |  | missing | only in base |",
        "| d | level=3 label=y | run_seconds | 1.000000 |  |  | missing | only in base |",
        "| c | level=5 size=8 label=x | p95 |  | 0.300000 |  | new | only in new |",
        "| c | level=5 size=8 label=x | run_seconds |  | 1.000000 |  | new | only in new |",
        "| e | level=7 size=2 label=z | p95 |  | 0.300000 |  | new | only in new |",
        "| e | level=7 size=2 label=z | run_seconds |  | 1.000000 |  | new | only in new |",
    ]
    assert p.stdout.splitlines()[14:16] == [
        "", "2 cases in both files; 0 regression(s), 1 improved, 0 noisy (cannot tell); "
            "cases: 2 missing, 2 new; max regression 5%"]


def test_point_text_rules() -> None:
    from doerunner.outputs.points import POINT_WIDTH, point_text

    assert point_text([("param_a", "1"), ("param_b", ""), ("c", 'say "hi"'),
                       ("param_d", "a\\b c")]) == 'a=1 c="say \\"hi\\"" d="a\\\\b c"'
    long = point_text([("param_x", "y" * 60)])
    assert (len(long), long) == (POINT_WIDTH, "x=" + "y" * 37 + "…")
    assert point_text([("param_x", "y" * 60)], None) == "x=" + "y" * 60
    assert point_text([]) == ""
