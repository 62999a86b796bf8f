"""`srd report` on real run directories: terminal summary, Markdown, self-contained HTML,
and the HTML rendered by a real headless browser (slow)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.outputs.plots import pareto_front, throttled_spans

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
    assert ("Failed or timed out (2):\n"
            "case_id  status   message\n"
            "-------  -------  -------------------\n"
            "broken   FAIL     exit code 3\n"
            "hang     TIMEOUT  timed out after 1 s\n") in text
    assert ("Threshold violations (1 in 1 cases):\n"
            "case_id  violation     value\n"
            "-------  ---------  --------\n"
            "slow_b1  p95>0.025  0.030000\n") in text
    slow = text.split("Slowest OK cases (top 5 by run_seconds):\n")[1].split("\n\n")[0]
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
    assert "Main effects on run_seconds: 2 OK rows" in r.output


def test_markdown_summary(runs) -> None:
    r = srd("report", runs["alpha"], "--markdown")
    assert r.exit_code == 0, r.output
    md = r.output
    assert md.startswith("## srd report: ")
    assert "- 6 cases: 4 OK, 1 FAIL, 1 TIMEOUT; 1 violated thresholds\n" in md
    assert ("### Threshold violations (1 in 1 cases)\n\n"
            "| case_id | violation | value |\n|---|---|---:|\n"
            "| slow_b1 | p95>0.025 | 0.030000 |\n") in md
    assert "| broken | FAIL | exit code 3 |\n| hang | TIMEOUT | timed out after 1 s |\n" in md
    assert ("| 1 | param_mode | fast | 2 | 0.015000 | 0.007071 | 0.025000 |\n"
            "|  |  | slow | 2 | 0.040000 | 0.014142 |  |\n") in md


def _html(runs, tmp_path: Path, source: Path) -> str:
    out = tmp_path / "report.html"
    r = srd("report", source, "--html", out)
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


@pytest.mark.slow
def test_html_renders_in_headless_chromium(runs, tmp_path) -> None:
    from matplotlib.image import imread

    chromium = shutil.which("chromium") or ("/usr/bin/chromium"
                                            if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    out = tmp_path / "report.html"
    assert srd("report", runs["gpu"], "--html", out).exit_code == 0
    png = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
                    "--window-size=1280,2000", out.resolve().as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.is_file()
    img = imread(png)
    assert img.shape[:2] == (2000, 1280)
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > 200  # text, plots and lines, not a blank page
    assert (rgb != 255).any(axis=1).mean() > 0.02
    shutil.copy(png, Path(__file__).parent / "_build" / "report_screenshot.png")
