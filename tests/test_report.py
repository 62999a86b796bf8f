"""`srd report` on real run directories: terminal summary, Markdown, self-contained HTML,
and the HTML rendered by a real headless browser (slow)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.outputs.plots import error_bars, log_scale, pareto_front, throttled_spans

from . import report_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return report_runs.build(tmp_path_factory.mktemp("report"))


def srd(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_terminal_summary_exact_lines(runs) -> None:
    r = srd("report", runs["alpha"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("run ") and "(project alpha), started 20" in lines[0]
    assert lines[1] == f"metrics: {runs['alpha']}"
    assert lines[2] == "6 cases: 4 OK, 1 FAIL, 1 TIMEOUT; 1 violated thresholds"
    assert re.fullmatch(r"measured: 1\.[0-9]{6} s over 6 repetitions; run wall time "
                        r"[0-9]+\.[0-9] s", lines[3])
    assert lines[4] == "energy: not measured (no energy column)"
    text = r.output
    # the parameters follow case_id in every table that names cases
    assert ("Failed or timed out (2):\n"
            "case_id  param_batch  param_mode  status   message\n"
            "-------  -----------  ----------  -------  -------------------\n"
            "broken   1            fast        FAIL     exit code 3\n"
            "hang     2            slow        TIMEOUT  timed out after 1 s\n") in text
    assert ("Threshold violations (1 in 1 cases):\n"
            "case_id  param_batch  param_mode  violation     value\n"
            "-------  -----------  ----------  ---------  --------\n"
            "slow_b1  1            slow        p95>0.025  0.030000\n") in text
    slow = text.split("Slowest OK cases (top 5 by run_seconds):\n")[1].split("\n\n")[0]
    assert slow.splitlines()[0] == "case_id  param_batch  param_mode  run_seconds"
    assert [line.split()[1:3] for line in slow.splitlines()[2:4]] == [["1", "fast"],
                                                                    ["1", "slow"]]
    order = [line.split()[0] for line in slow.splitlines()[2:]]
    # The two sleeping cases lead; the two bare echos take a few ms in either order.
    assert order[:2] == ["fast_b1", "slow_b1"]
    assert sorted(order[2:]) == ["fast_b2", "slow_b2"]
    assert ("   1  param_mode   fast   2  0.015000  0.007071  0.025000\n"
            "                   slow   2  0.040000  0.014142\n"
            "   2  param_batch  1      2  0.020000  0.014142  0.015000\n"
            "                   2      2  0.035000  0.021213\n") in text
    assert "Throttled" not in text and "Most energy" not in text


def test_measured_time_counts_every_repetition_and_wall_time_apart(tmp_path,
                                                                   monkeypatch) -> None:
    """run_seconds is a mean: the total is run_seconds x runs (1 without the column); the
    run's wall time is run.json's summary.elapsed_s, else ended - started, else unknown."""
    import csv
    import json

    from doerunner.cells import round_half_away

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,backend,repeat\nr3,dummy,3\nr1,dummy,\n"
                                        "r2,dummy,2\n")
    r = srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q")
    assert r.exit_code == 0, r.output
    with open("m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["runs"] for row in rows] == ["3", "", "2"]
    total = sum(float(row["run_seconds"]) * (int(row["runs"] or 1)) for row in rows)
    rj_path = tmp_path / "m_run" / "run.json"
    rj = json.loads(rj_path.read_text())
    wall = round_half_away(rj["summary"]["elapsed_s"], 1)
    r = srd("report", "m_run")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[3] == (f"measured: {round_half_away(total, 6)} s over 6 "
                                        f"repetitions; run wall time {wall} s")
    md = srd("report", "m.csv", "--markdown").output
    assert f"- measured: {round_half_away(total, 6)} s over 6 repetitions; " in md
    # an older run.json without the summary's elapsed_s: ended - started
    del rj["summary"]["elapsed_s"]
    rj["started"], rj["ended"] = "2026-12-02T10:15:03+09:00", "2026-12-02T10:17:05+09:00"
    rj_path.write_text(json.dumps(rj))
    assert srd("report", "m_run").output.splitlines()[3].endswith("; run wall time 122.0 s")
    # a metrics.csv alone: no run.json, no wall time
    (tmp_path / "alone.csv").write_text((tmp_path / "m.csv").read_text())
    assert srd("report", "alone.csv").output.splitlines()[2] == (
        f"measured: {round_half_away(total, 6)} s over 6 repetitions; run wall time unknown "
        "(no run.json)")


def test_top_and_response_options(runs) -> None:
    r = srd("report", runs["alpha"], "--top", "2", "--response", "throughput_rps")
    assert r.exit_code == 0, r.output
    slow = r.output.split("Slowest OK cases (top 2 by run_seconds):\n")[1].split("\n\n")[0]
    assert len(slow.splitlines()) == 4
    assert "Main effects on throughput_rps: 4 OK rows" in r.output
    assert "   1  param_mode   fast   2  850.00" in r.output


def test_energy_and_throttling_from_a_gpu_run(runs) -> None:
    r = srd("report", runs["gpu"].parent / "metrics_run")
    assert r.exit_code == 0, r.output
    assert "2 cases: 2 OK, 0 FAIL, 0 TIMEOUT; 0 violated thresholds" in r.output
    assert re.search(r"energy: [0-9.]+ J in total \(energy_raw_j\)", r.output)
    most = r.output.split("Most energy (top 5 by energy_raw_j):\n")[1].split("\n\n")[0]
    assert [line.split()[0] for line in most.splitlines()[2:]] == ["hot", "cool"]
    throttled = r.output.split("Throttled (1):\n")[1].split("\n\n")[0].splitlines()
    assert throttled[2].split()[0] == "hot" and throttled[2].endswith("sw_thermal;hw_slowdown")
    assert throttled[0].split() == ["case_id", "param_batch", "duration_s", "reasons"]
    assert throttled[2].split()[1] == "1"
    assert "Main effects on run_seconds: 2 OK rows" in r.output


def test_markdown_summary(runs) -> None:
    r = srd("report", runs["alpha"], "--markdown")
    assert r.exit_code == 0, r.output
    md = r.output
    assert md.startswith("## srd report: ")
    assert "- 6 cases: 4 OK, 1 FAIL, 1 TIMEOUT; 1 violated thresholds\n" in md
    assert ("### Threshold violations (1 in 1 cases)\n\n"
            "| case_id | param_batch | param_mode | violation | value |\n"
            "|---|---|---|---|---:|\n"
            "| slow_b1 | 1 | slow | p95>0.025 | 0.030000 |\n") in md
    assert ("| case_id | param_batch | param_mode | status | message |\n|---|---|---|---|---|\n"
            "| broken | 1 | fast | FAIL | exit code 3 |\n"
            "| hang | 2 | slow | TIMEOUT | timed out after 1 s |\n") in md
    assert ("| 1 | param_mode | fast | 2 | 0.015000 | 0.007071 | 0.025000 |\n"
            "|  |  | slow | 2 | 0.040000 | 0.014142 |  |\n") in md


def _html(runs, tmp_path: Path, source: Path, *options: str) -> str:
    out = tmp_path / "report.html"
    r = srd("report", source, "--html", out, *options)
    assert r.exit_code == 0, r.output
    return out.read_text(encoding="utf-8")


def test_html_is_self_contained_with_plots(runs, tmp_path) -> None:
    page = _html(runs, tmp_path, runs["gpu"])  # the CSV: metrics_run/ beside it is found
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) == 5  # main effects, Pareto front, host columns, 2 time series
    assert all(len(i) > 2000 for i in imgs)
    for section in ("<h2>Summary</h2>", "<h2>Run</h2>", "<h2>Environment</h2>",
                    "<h2>Main effects</h2>", "<h2>Pareto front: energy against latency</h2>",
                    "<h2>GPU power and temperature</h2>", "<h2>All cases (2)</h2>",
                    "<h2>What the cases cost the host</h2>"):
        assert section in page
    assert "NVIDIA H100 80GB HBM3" in page and "on the front:" in page
    assert "<td>hot</td>" in page and "<td>cool</td>" in page


def test_html_without_energy_or_time_series_says_so(runs, tmp_path) -> None:
    page = _html(runs, tmp_path, runs["alpha"].parent / "metrics_run")
    # main effects, and the host columns (CPU and the like vary between real commands)
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2
    assert "no energy column" in page and "no time series" in page
    assert '<tr class="TIMEOUT"><td>hang</td>' in page


def test_missing_or_unreadable_input_exits_4(tmp_path) -> None:
    r = srd("report", tmp_path / "nope.csv")
    assert r.exit_code == 4 and r.output == f"srd: error: {tmp_path / 'nope.csv'}: no such " \
                                            "file or directory\n"
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    r = srd("report", tmp_path / "bad.csv")
    assert r.exit_code == 4 and "no case_id column" in r.output
    r = srd("report", tmp_path)
    assert r.exit_code == 4 and "without run.json" in r.output


def test_unknown_response_exits_4(runs) -> None:
    r = srd("report", runs["alpha"], "--response", "nope")
    assert r.exit_code == 4 and "response 'nope' is not a column" in r.output


def test_pareto_front_and_throttled_spans() -> None:
    x = np.array([1.0, 2.0, 3.0, 1.5, 2.5])
    y = np.array([5.0, 3.0, 1.0, 6.0, 3.5])
    assert sorted(pareto_front(x, y, False).tolist()) == [0, 1, 2]
    assert sorted(pareto_front(x, y, True).tolist()) == [2]
    assert throttled_spans([0, 1, 2, 3, 4], [False, True, True, False, True]) == [(1, 3),
                                                                                   (4, 4)]


def test_throttle_mask_matches_telemetry() -> None:
    from doerunner.outputs import plots
    from doerunner.telemetry.throttle import THROTTLE_MASK

    assert plots.THROTTLE_MASK == THROTTLE_MASK


class Page(HTMLParser):
    """A report page read back: each table (its heading, header cells, which header cells
    are right-aligned, body rows), each ``<details>`` (open or not, its summary, its dt/dd
    pairs) and the dt/dd pairs outside them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.details: list[dict] = []
        self.visible: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self._heading = ""
        self._text: list[str] | None = None
        self._in: str | None = None
        self._dt = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("h2", "h3", "th", "td", "dt", "dd", "summary", "p"):
            self._text, self._in = [], tag
            self._class = a.get("class")
        if tag == "table":
            self.tables.append({"title": self._heading, "head": [], "right": [], "rows": []})
        elif tag == "tr" and self.tables and self.tables[-1]["head"]:
            self.tables[-1]["rows"].append([])
        elif tag == "details":
            self.details.append({"open": "open" in a, "summary": "", "items": [],
                                 "closed_at": None})

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.details[-1]["closed_at"] = True
        if self._text is None or tag != self._in:
            return
        text = "".join(self._text)
        self._text = None
        inside = self.details and self.details[-1]["closed_at"] is None
        if tag in ("h2", "h3"):
            self._heading = text
        elif tag == "th":
            self.tables[-1]["head"].append(text)
            self.tables[-1]["right"].append(self._class == "n")
        elif tag == "td":
            self.tables[-1]["rows"][-1].append(text)
        elif tag == "summary":
            self.details[-1]["summary"] = text
        elif tag == "dt":
            self._dt = text
        elif tag == "dd":
            (self.details[-1]["items"] if inside else self.visible).append((self._dt, text))
        elif tag == "p" and self._class == "note":
            self.notes.append(text)

    def table(self, title: str) -> dict:
        found = [t for t in self.tables if t["title"].startswith(title)]
        assert len(found) == 1, [t["title"] for t in self.tables]
        return found[0]


@pytest.fixture
def hand(tmp_path) -> Path:
    return report_runs.write_hand_run(tmp_path)


def test_case_tables_show_parameters_after_case_id_and_hide_empty_columns(hand) -> None:
    """Text and Markdown: case_id, then the parameters, in every table that names cases; a
    column empty in every row of a table is left out of that table (param_unused
    everywhere; param_batch in the failures, where the failed case has none; the throttled
    case's reasons); cells as metrics.csv writes them (the all-integer energy column stays
    integers)."""
    r = srd("report", hand)
    assert r.exit_code == 0, r.output
    assert r.output.split("\n\n")[1:6] == [
        "Failed or timed out (1):\n"
        "case_id  param_mode  status  message\n"
        "-------  ----------  ------  -----------\n"
        "c        fast        FAIL    exit code 1",
        "Threshold violations (1 in 1 cases):\n"
        "case_id  param_batch  param_mode  violation     value\n"
        "-------  -----------  ----------  ---------  --------\n"
        "b        2            slow        p95>0.025  0.030000",
        "Slowest OK cases (top 5 by run_seconds):\n"
        "case_id  param_batch  param_mode  run_seconds\n"
        "-------  -----------  ----------  -----------\n"
        "b        2            slow           2.000000\n"
        "a        1            fast           0.500000",
        "Most energy (top 5 by energy_raw_j):\n"
        "case_id  param_batch  param_mode  energy_raw_j\n"
        "-------  -----------  ----------  ------------\n"
        "b        2            slow                1200\n"
        "a        1            fast                 419",
        "Throttled (1):\n"
        "case_id  param_batch  param_mode  duration_s\n"
        "-------  -----------  ----------  ----------\n"
        "a        1            fast          0.250000"]
    assert r.output.splitlines()[3:5] == ["measured: 5.100000 s over 5 repetitions; run wall "
                                          "time 3.0 s",
                                          "energy: 1619.00 J in total (energy_raw_j)"]
    md = srd("report", hand, "--markdown").output
    assert ("### Failed or timed out (1)\n\n| case_id | param_mode | status | message |\n"
            "|---|---|---|---|\n| c | fast | FAIL | exit code 1 |\n") in md
    assert ("| case_id | param_batch | param_mode | energy_raw_j |\n|---|---|---|---:|\n"
            "| b | 2 | slow | 1200 |\n| a | 1 | fast | 419 |\n") in md
    assert ("| case_id | param_batch | param_mode | duration_s |\n|---|---|---|---:|\n"
            "| a | 1 | fast | 0.250000 |\n") in md
    assert "param_unused" not in r.output + md and "reasons" not in r.output + md


def test_html_tables_exact_cells(hand, tmp_path) -> None:
    """The HTML tables: the same cells as the text, parameters after case_id, numbers
    right-aligned (parameters are labels: left), the all-cases table with case_id and the
    parameters first and its empty columns named in a note instead."""
    page = Page(_html(None, tmp_path, hand))
    assert [(t["title"], t["head"]) for t in page.tables[:5]] == [
        ("Failed or timed out (1)", ["case_id", "param_mode", "status", "message"]),
        ("Threshold violations (1 in 1 cases)",
         ["case_id", "param_batch", "param_mode", "violation", "value"]),
        ("Slowest OK cases (top 5 by run_seconds)",
         ["case_id", "param_batch", "param_mode", "run_seconds"]),
        ("Most energy (top 5 by energy_raw_j)",
         ["case_id", "param_batch", "param_mode", "energy_raw_j"]),
        ("Throttled (1)", ["case_id", "param_batch", "param_mode", "duration_s"])]
    assert page.table("Most energy")["rows"] == [["b", "2", "slow", "1200"],
                                                 ["a", "1", "fast", "419"]]
    assert page.table("Most energy")["right"] == [False, False, False, True]
    assert page.table("Threshold")["rows"] == [["b", "2", "slow", "p95>0.025", "0.030000"]]
    assert page.table("Throttled")["rows"] == [["a", "1", "fast", "0.250000"]]
    cases = page.table("All cases")
    assert cases["head"] == ["case_id", "param_batch", "param_mode", "status", "run_seconds",
                             "p95", "throughput_rps", "errors", "ts_start", "ts_end",
                             "backend", "exit_code", "message", "violations", "energy_raw_j",
                             "runs", "thermal_throttle_detected",
                             "thermal_throttle_duration_sec", "threshold_p95"]
    assert cases["rows"][2] == ["c", "", "fast", "FAIL", "0.100000", "", "", "1",
                                "2026-01-02T03:04:08+09:00", "2026-01-02T03:04:08+09:00",
                                "shell", "1", "exit code 1", "", "", "", "", "", ""]
    assert ("not shown: 3 columns empty in every row (param_unused, p99, "
            "thermal_throttle_reasons)") in page.notes
    # the main effects with the response's decimals; std and pooled_std empty: left out
    effects = page.table("Main effects")
    assert effects["head"] == ["rank", "factor", "level", "n", "mean", "effect"]
    assert effects["rows"] == [["1", "param_batch", "1", "1", "0.010000", "0.020000"],
                               ["", "", "2", "1", "0.030000", ""],
                               ["2", "param_mode", "fast", "1", "0.010000", "0.020000"],
                               ["", "", "slow", "1", "0.030000", ""]]
    assert effects["right"] == [True, False, False, True, True, True]
    page = Page(_html(None, tmp_path, hand.parent / "m_run", "--response", "throughput_rps"))
    assert [row[4] for row in page.table("Main effects")["rows"]] == ["900.00", "300.00",
                                                                       "900.00", "300.00"]


def test_html_folds_the_command_line_and_options_away(hand, tmp_path) -> None:
    """The command line and the options, the packages and the telemetry are in closed
    <details>; what the run measured is shown with metrics.csv's decimals for its key, the
    options as they were given."""
    page = Page(_html(None, tmp_path, hand))
    assert [(d["open"], d["summary"]) for d in page.details] == [
        (False, "Command line and options (6 options)"), (False, "Python packages (2)"),
        (False, "Telemetry (2 entries)")]
    assert page.details[0]["items"] == [
        ("command line", "srd run --cases 'my cases.csv' --out m.csv"),
        ("options.out", "m.csv"), ("options.jobs", "1"), ("options.default_timeout_s", "600.0"),
        ("options.csv_safe", "false"), ("options.junit", ""),
        ("options.telemetry.sample_hz", "20.0")]
    assert page.details[1]["items"] == [("packages.numpy", "2.4.6"),
                                        ("packages.pandas", "3.1.1")]
    assert page.details[2]["items"] == [("telemetry.mode", "off"),
                                        ("telemetry.active", "false")]
    visible = dict(page.visible)
    assert visible["summary.elapsed_s"] == "3.045012"  # 6 decimals, half away from zero
    assert visible["memory_mb"] == "24105.06" and visible["cpu_governor"] == ""
    assert visible["summary.interrupted"] == "false" and visible["run_id"] == (
        "20260102T030405-abcdef")
    assert not any(k.startswith(("options.", "packages.")) or k == "command line"
                   for k in visible)


def test_log_scale_rule() -> None:
    """Log where the values span two decades or more, all positive; NaN ignored."""
    assert log_scale([1.0, 100.0]) and log_scale([0.001, 0.05, 0.1, float("nan")])
    assert not log_scale([1.0, 99.9])
    assert not log_scale([0.0, 1.0, 1000.0]) and not log_scale([-1.0, 100.0])
    assert not log_scale([5.0]) and not log_scale([])


def test_error_bars_never_go_below_zero_for_a_nonnegative_quantity() -> None:
    below, above = error_bars([0.005, 2.0, 3.0], [0.0056, 1.0, float("nan")], True)
    assert below == [0.005, 1.0, 0.0] and above == [0.0056, 1.0, 0.0]
    below, above = error_bars([0.005, -2.0], [0.0056, 1.0], False)
    assert below == [0.0056, 1.0] and above == [0.0056, 1.0]


def _effects_df(values: dict[str, list[float]]):
    """OK rows of run_seconds (``values``: level of param_size → the rows' values)."""
    import pandas as pd

    rows = [(f"s{level}_{i}", "OK", repr(v), level)
            for level, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["case_id", "status", "run_seconds", "param_size"])


def test_effects_plot_log_axis_and_bars_cut_at_zero() -> None:
    """Means from 0.005 to 11 s. The first level's std (0.005657) is larger than its mean
    (0.005): its bar stops at 0, the part above stays whole — and a bar reaching 0 has no
    end on a log axis, so the axis stays linear. Bars that stay above 0 over the same
    decades: a log axis that says so."""
    from doerunner.analysis.effects import main_effects
    from doerunner.outputs.plots import effects_figure

    df = _effects_df({"1": [0.001, 0.009], "2": [1.0, 1.0], "3": [10.0, 12.0]})
    t = main_effects(df, "run_seconds")
    fig = effects_figure(t, nonnegative=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "run_seconds"
    bars = ax.containers[0].lines[2][0].get_segments()
    ends = [(float(seg[0][1]), float(seg[1][1])) for seg in bars]
    assert ends[0] == (0.0, pytest.approx(0.005 + 0.0056568542, abs=1e-9))
    assert ends[1] == (1.0, 1.0)
    assert ends[2] == (pytest.approx(11 - 1.4142135624), pytest.approx(11 + 1.4142135624))
    # the same spread of a quantity that can be negative is drawn whole
    ax = effects_figure(t, nonnegative=False).axes[0]
    low = float(ax.containers[0].lines[2][0].get_segments()[0][0][1])
    assert low == pytest.approx(0.005 - 0.0056568542, abs=1e-9)
    # decades, every bar's lower end above 0: log
    df = _effects_df({"1": [0.004, 0.006], "2": [1.0, 1.0], "3": [10.0, 12.0]})
    ax = effects_figure(main_effects(df, "run_seconds"), nonnegative=True).axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "run_seconds (log scale)"
    low = float(ax.containers[0].lines[2][0].get_segments()[0][0][1])
    assert low == pytest.approx(0.005 - 0.0014142136, abs=1e-9)
    # a narrow span: linear, the label plain
    ax = effects_figure(main_effects(_effects_df({"1": [1.0], "2": [50.0]}), "run_seconds"),
                        nonnegative=True).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "run_seconds"


def test_pareto_and_host_plots_use_log_axes_across_decades() -> None:
    import pandas as pd

    from doerunner.outputs.plots import host_figure, pareto_figure

    df = pd.DataFrame({"case_id": ["a", "b", "c"], "status": ["OK"] * 3,
                       "run_seconds": ["0.001000", "0.100000", "1.000000"],
                       "energy_raw_j": ["10.00", "20.00", "30.00"],
                       "cpu_util": ["1.00", "50.00", "250.00"],
                       "mem_peak_mb": ["10.00", "20.00", "900.00"]})
    fig, caption = pareto_figure(df, "energy_raw_j")
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")
    assert ax.get_xlabel() == "run_seconds (lower is better, log scale)"
    assert ax.get_ylabel() == "energy_raw_j (lower is better)"
    assert caption == "3 OK cases; 1 on the front: a"
    fig = host_figure(df, [("cpu_util", "CPU"), ("mem_peak_mb", "RSS")])
    assert [(a.get_yscale(), a.get_ylabel()) for a in fig.axes] == [("log", "log scale"),
                                                                   ("linear", "")]


@pytest.mark.slow
def test_html_renders_in_headless_chromium(runs, tmp_path) -> None:
    """The GPU run's page as Chromium builds it (--dump-dom: parameters after case_id, the
    columns metrics.csv leaves empty in every row absent, the options folded and closed)
    and draws it (a screenshot, kept as tests/_build/report_screenshot.png)."""
    import csv

    from matplotlib.image import imread

    chromium = shutil.which("chromium") or ("/usr/bin/chromium"
                                            if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        pytest.skip("chromium is not installed (Debian/Ubuntu: apt-get install -y chromium; "
                    "see DEVELOPERS.md)")
    out = tmp_path / "report.html"
    assert srd("report", runs["gpu"], "--html", out).exit_code == 0
    png = tmp_path / "shot.png"
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", out.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    page = Page(dom.stdout)
    with open(runs["gpu"], newline="") as f:
        rows = list(csv.DictReader(f))
    empty = [c for c in rows[0] if all(row[c] == "" for row in rows)]
    assert "p95" in empty and "message" in empty  # the run leaves these empty
    cases = page.table("All cases")
    assert cases["head"][:3] == ["case_id", "param_batch", "status"]
    assert sorted(cases["head"]) == sorted(c for c in rows[0] if c not in empty)
    assert f"not shown: {len(empty)} columns empty in every row ({', '.join(empty)})" in (
        page.notes)
    assert [r[:2] for r in cases["rows"]] == [["hot", "1"], ["cool", "2"]]
    for title in ("Slowest", "Most energy", "Throttled"):
        assert page.table(title)["head"][:2] == ["case_id", "param_batch"]
    assert [(d["open"], d["summary"].split(" (")[0]) for d in page.details] == [
        (False, "Command line and options"), (False, "Python packages"), (False, "Telemetry")]
    assert page.details[0]["items"][0] == ("command line", "srd run --cases cases.csv --out "
                                           "metrics.csv --baseline off --sample-hz 20 "
                                           "--project gpu")
    subprocess.run([*browser, f"--screenshot={png}", "--window-size=1280,2000",
                    out.resolve().as_uri()], capture_output=True, timeout=120, check=False)
    assert png.is_file()
    img = imread(png)
    assert img.shape[:2] == (2000, 1280)
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > 200  # text, plots and lines, not a blank page
    assert (rgb != 255).any(axis=1).mean() > 0.02
    shutil.copy(png, Path(__file__).parent / "_build" / "report_screenshot.png")
