"""Energy exact on counters that tick like real ones (issue 13): a counter that updates every
20-100 ms at any phase, one that resets or freezes, a slow driver — `srd run` against the
simulated driver, each window compared with the exact integral of the simulated power."""

from __future__ import annotations

import json
import time

import pytest

from .nvmlsim import Profile
from .test_telemetry import rows, srd_sim

CASES = "case_id,cmd\n" + "".join(f"w{i},sleep {s}\n" for i, s in enumerate((0.5, 0.8, 1.3)))


def windows(tmp_path):
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    return [case["runs"][0]["telemetry"] for case in run["cases"]]


def exact_windows(tmp_path, prof: Profile, t0: float):
    """Each row's counter energy within 1 % of the exact integral over its window; yields
    (row, the window's GPU details) for more checks."""
    for row, tel in zip(rows(tmp_path), windows(tmp_path), strict=True):
        g = tel["gpus"][0]
        truth = prof.energy_j(g["t_begin"] - t0, g["t_end"] - t0)
        assert row["energy_method"] == "counter"
        assert float(row["energy_raw_j"]) == pytest.approx(truth, rel=0.01), (row, g)
        yield row, g


@pytest.mark.parametrize(("period", "phase"), [(0.1, 0.037), (0.05, 0.011), (0.02, 0.0)])
def test_windows_are_exact_whatever_the_counters_period_and_phase(tmp_path, lib_dir, period,
                                                                  phase):
    t0 = time.time()
    prof = Profile([(0, 300.0)])
    p = srd_sim(tmp_path, lib_dir, CASES, "--baseline", "off", profiles=[prof], t0=t0,
                gpu0_energy_period_s=period, gpu0_energy_phase_s=phase)
    assert p.returncode == 0, p.stderr
    for row, g in exact_windows(tmp_path, prof, t0):
        # both edges were pinned to an update of the counter, at most 3 periods later
        for edge, at in zip(g["counter_updates"], (g["t_begin"], g["t_end"]), strict=True):
            assert 0 <= edge - at <= 3 * period
        # mean power is energy / duration
        assert float(row["gpu_power_mean_w"]) == pytest.approx(300.0, rel=0.01)


@pytest.mark.parametrize(("prof", "latency"), [
    (Profile([(0, 150.0)], (0.13, 0.02, 400.0, 0.005)), 0.0),  # 20 ms spikes to 550 W
    (Profile([(0, 300.0)]), 0.002),                            # 2 ms per NVML call
], ids=["spikes", "slow-driver"])
def test_a_counter_with_a_changing_load_or_a_slow_driver(tmp_path, lib_dir, prof, latency):
    t0 = time.time() - 2
    p = srd_sim(tmp_path, lib_dir, CASES, "--baseline", "off", profiles=[prof], t0=t0,
                gpu0_energy_period_s=0.1, gpu0_energy_phase_s=0.063, latency_s=latency)
    assert p.returncode == 0, p.stderr
    assert len(list(exact_windows(tmp_path, prof, t0))) == 3


def test_a_counter_reset_falls_back_to_sampled_power_with_the_reason(tmp_path, lib_dir):
    t0 = time.time()
    # the driver reloads 1 s into the run: the counter starts again from 0
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nr,sleep 2\n", "--baseline", "off",
                profiles=[Profile([(0, 200.0)])], t0=t0, gpu0_energy_reset_at=1.0)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    g = windows(tmp_path)[0]["gpus"][0]
    assert g["t_begin"] - t0 < 1.0 < g["t_end"] - t0
    assert row["energy_method"] == "sampled"
    assert g["energy_fallback"].startswith("the energy counter went backwards")
    assert float(row["energy_raw_j"]) == pytest.approx(200.0 * (g["t_end"] - g["t_begin"]),
                                                       rel=0.01)
    assert "srd: warning: r: GPU 0: energy from sampled power, not the counter: the energy " \
           "counter went backwards" in p.stderr


def test_a_frozen_counter_falls_back_to_sampled_power_with_the_reason(tmp_path, lib_dir):
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nf,sleep 0.6\n", "--baseline", "off",
                profiles=[Profile([(0, 200.0)])], gpu0_energy_frozen_at=0.0)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    g = windows(tmp_path)[0]["gpus"][0]
    assert row["energy_method"] == "sampled"
    assert g["energy_fallback"].startswith("the energy counter did not change for ")
    assert g["energy_fallback"].endswith(" ms (frozen?)")
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["telemetry"]["counter_period_s"] == {g["uuid"]: None}
    assert float(row["energy_raw_j"]) == pytest.approx(200.0 * (g["t_end"] - g["t_begin"]),
                                                       rel=0.01)


def test_the_counters_update_period_is_measured_and_recorded(tmp_path, lib_dir):
    p = srd_sim(tmp_path, lib_dir, "case_id,backend\nd,dummy\n", "--baseline", "off",
                profiles=[Profile([(0, 200.0)])], gpu0_energy_period_s=0.05)
    assert p.returncode == 0, p.stderr
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    (period,) = run["telemetry"]["counter_period_s"].values()
    assert period == pytest.approx(0.05, abs=0.005)


def test_an_old_driver_missing_functions_degrades_instead_of_failing(tmp_path):
    # No nvmlDeviceGetFieldValues (so no instantaneous power) nor clock-event reasons:
    # nvidia-ml-py raises FunctionNotFound; srd reads the averaged power and the old
    # throttle API, and the run goes on.
    from . import nvmlsim
    from .conftest import run_srd

    try:
        lib = nvmlsim.build(variant="old")
    except RuntimeError as e:
        pytest.skip(str(e))
    (tmp_path / "cases.csv").write_text("case_id,cmd\nold,sleep 0.5\n")
    env = nvmlsim.sim_env(lib, profiles=[Profile([(0, 200.0)])], t0=time.time() - 5,
                          gpu0_throttle="0:1e9:0x20")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--baseline", "off",
                cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    assert "internal error" not in p.stderr
    row = rows(tmp_path)[0]
    assert row["energy_method"] == "counter"
    assert float(row["gpu_power_mean_w"]) == pytest.approx(200.0, rel=0.01)
    assert float(row["thermal_throttle_pct"]) > 90
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["telemetry"]["environment"]["gpus"][0]["instant_power"] is False


def test_a_counter_far_from_the_integrated_power_is_not_trusted():
    # Unit level: a 2 s window whose counter says 10x what the sampled power integrates to.
    from doerunner.telemetry.edges import Edge
    from doerunner.telemetry.sampler import GpuWindow, Sampler

    class Fake:
        has_energy_counter = True
        has_instant_power = True

    w = GpuWindow(0, 1000.0, 1002.0, 0, 2_000_000, trapz_j=200.0)
    w.begin, w.end = Edge(1000.0, 0, 100.0), Edge(1002.0, 2_000_000, 100.0)
    w.begin.energy_mj, w.end.energy_mj = 0.0, 2_000_000.0  # both pinned to an update
    Sampler([Fake()], 10.0)._resolve([w])
    assert w.energy_method == "sampled" and w.energy_j == 200.0
    assert w.fallback == ("the energy counter says 2000.0 J but the sampled power "
                          "integrates to 200.0 J")


def test_an_edge_is_placed_between_reads_and_reads_too_far_apart_are_not_trusted():
    from doerunner.telemetry.edges import Edge, window_energy_j

    # 100 W; the counter (mJ) updates at t=0.0105: placed at the midpoint of the two reads
    e = Edge(0.0, 1000, 100.0)
    assert not e.feed(0.005, 1000, 100.0) and not e.feed(0.010, 1000, 100.0)
    assert e.feed(0.011, 2050, 100.0)
    assert e.tick_t == pytest.approx(0.0105)
    assert e.energy_mj == pytest.approx(2050 - 1000 * 100.0 * 0.0105)
    # the first read 200 ms after the edge: bridged by a straight line, then followed
    begin = Edge(0.0, 1000, 100.0)
    assert not begin.feed(0.2, 21000, 100.0)       # changed, but cannot be placed
    assert begin.feed(0.201, 21100, 100.0)
    end = Edge(0.3, 31000, 100.0)
    assert end.feed(0.301, 31100, 100.0)
    energy, why = window_energy_j(begin, end, 0.3)
    assert energy is None
    assert why == "the energy counter could not be followed: 200 ms between reads"
    begin.blind_s = 0.0
    energy, why = window_energy_j(begin, end, 0.3)
    assert why is None and energy == pytest.approx(30.0, abs=0.01)


def test_hw_slowdown_is_its_own_cause_only_without_hw_thermal_or_power_brake():
    from doerunner.telemetry.throttle import CAUSES, causes

    names = [name for name, _ in CAUSES]
    assert [names[k] for k in causes(0x08)] == ["hw_slowdown"]
    assert [names[k] for k in causes(0x48)] == ["thermal"]
    assert [names[k] for k in causes(0x88)] == ["power"]
    assert [names[k] for k in causes(0x2C)] == ["thermal", "power", "hw_slowdown"]
    assert causes(0x1 | 0x2 | 0x10) == []
