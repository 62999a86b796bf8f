"""The runner's own logic through the deterministic dummy backend."""

from __future__ import annotations

import math
import statistics

import pytest

from doerunner.backends.dummy import DummyBackend
from doerunner.campaign.runner import RunnerSettings, aggregate, coefficient_of_variation, run_case
from doerunner.inputs.case import Case
from doerunner.policy import ExecutionPolicy
from doerunner.results import FAIL, OK, TIMEOUT, Execution


def make_case(case_id: str = "c1", repeat: int = 1, warmup: int | str = 0,
              timeout_s: float = 10.0, **params: str) -> Case:
    return Case(case_id, "dummy", None, timeout_s, repeat, warmup, params, {}, {}, ())


def test_dummy_metrics_are_deterministic_and_in_range() -> None:
    a = DummyBackend.metrics(make_case("x", users="10"))
    b = DummyBackend.metrics(make_case("x", users="10"))
    c = DummyBackend.metrics(make_case("x", users="20"))
    assert a == b
    assert a != c
    assert 0.01 <= a["p95"] <= 0.10
    assert a["p99"] == pytest.approx(1.6 * a["p95"])
    assert 500 <= a["throughput_rps"] <= 2000
    assert a["errors"] == 0


def test_single_run_ok() -> None:
    r = run_case(make_case(), DummyBackend(), RunnerSettings())
    assert r.status == OK
    assert r.metrics["errors"] == 0
    assert "runs" not in r.metrics
    assert r.metrics["p95"] == DummyBackend.metrics(make_case())["p95"]
    assert len(r.runs) == 1 and r.warmup_runs == []


def test_repetitions_add_spread_columns() -> None:
    r = run_case(make_case(repeat=3, warmup=2), DummyBackend(), RunnerSettings())
    assert r.status == OK
    assert len(r.runs) == 3 and len(r.warmup_runs) == 2
    walls = [e.wall_s for e in r.runs]
    assert r.metrics["runs"] == 3
    assert r.metrics["run_seconds"] == pytest.approx(statistics.fmean(walls))
    assert r.metrics["run_seconds_min"] == min(walls)
    assert r.metrics["run_seconds_max"] == max(walls)
    assert r.metrics["run_seconds_std"] == pytest.approx(statistics.stdev(walls))
    assert r.metrics["warmup_runs"] == 2


def test_failure_is_reported_not_averaged() -> None:
    r = run_case(make_case(repeat=3, fail="1"), DummyBackend(), RunnerSettings())
    assert r.status == FAIL
    assert r.message == "repetition 1 of 3: dummy failure requested (fail=1)"
    assert r.metrics["errors"] == 1
    assert r.metrics["runs"] == 1


def test_timeout_status_and_time() -> None:
    r = run_case(make_case(timeout_s=0.2, sleep_s="5"), DummyBackend(), RunnerSettings())
    assert r.status == TIMEOUT
    assert r.message == "timed out after 0.2 s"
    assert r.metrics["run_seconds"] == pytest.approx(0.2)
    assert r.metrics["errors"] == 1


def test_warmup_auto_converges_on_stable_times() -> None:
    r = run_case(make_case(warmup="auto", sleep_s="0.02"), DummyBackend(),
                 RunnerSettings(policy=ExecutionPolicy(warmup_cv=0.5, warmup_max=20)))
    assert r.metrics["warmup_converged"] is True
    assert r.metrics["warmup_runs"] == 5
    assert r.metrics["warmup_final_cv"] < 0.5
    assert r.warnings == []


def test_warmup_auto_not_converging_is_a_warning() -> None:
    r = run_case(make_case(warmup="auto"), DummyBackend(),
                 RunnerSettings(policy=ExecutionPolicy(warmup_cv=1e-12, warmup_max=7)))
    assert r.status == OK
    assert r.metrics["warmup_runs"] == 7
    assert r.metrics["warmup_converged"] is False
    assert r.warnings and r.warnings[0].startswith("warm-up did not converge")


def test_aggregate_means_ints_and_text() -> None:
    runs = [Execution(OK, 1.0, 0, 1, 0, "", {"n": 2, "x": 1.0, "errors": 1, "ext_v": "a"}),
            Execution(OK, 3.0, 1, 4, 0, "", {"n": 2, "x": 2.0, "errors": 2, "ext_v": "b"}),
            Execution(OK, 2.0, 4, 6, 0, "", {"n": 3, "x": 3.0, "errors": 0, "ext_v": "c"})]
    m = aggregate(runs)
    assert m["n"] == pytest.approx(7 / 3)
    assert m["x"] == 2.0
    assert m["errors"] == 3  # a total, not a mean
    assert m["ext_v"] == "c"
    assert m["run_seconds"] == 2.0
    assert m["run_seconds_std"] == 1.0


def test_coefficient_of_variation() -> None:
    assert coefficient_of_variation([1.0]) == math.inf
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(0.5)


def test_values_near_the_float_limit_are_averaged_not_a_crash(tmp_path) -> None:
    """Issue 17: `x=1e308` twice overflowed the sum of the mean and ended the run with an
    internal error (and --resume the same, every time): the mean is taken term by term."""
    from click.testing import CliRunner

    from doerunner.cli import cli

    out = tmp_path / "m.csv"
    r = CliRunner().invoke(cli, ["run", "-q", "--telemetry", "off", "-r", "2", "--out",
                                 str(out), "--", "echo x=1e308 y=-1.7e308"])
    assert r.exit_code == 0, r.output
    import csv

    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["status"], float(row["x"]), float(row["y"])) == ("OK", 1e308, -1.7e308)


def test_a_statistic_that_fails_on_a_cases_values_fails_that_case_only(monkeypatch) -> None:
    from doerunner.campaign import runner

    def broken(values):
        raise OverflowError("intermediate overflow in fsum")

    monkeypatch.setattr(runner, "_mean", broken)
    backend = DummyBackend()
    settings = RunnerSettings()
    r = runner.run_with_retries(make_case(repeat=2), backend, settings)
    assert (r.status, r.message, r.attempts) == (
        "FAIL", "srd could not aggregate the results: OverflowError: intermediate overflow "
        "in fsum", 1)
