"""GPU telemetry end to end: `srd run` in a subprocess against the simulated NVML driver,
compared with the simulator's exact ground truth."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from doerunner.cells import round_half_away

from . import nvmlsim
from .conftest import run_srd
from .nvmlsim import Profile


def srd_sim(tmp_path: Path, lib_dir: Path, cases: str, *args: str, profiles=None,
            **scenario):
    (tmp_path / "cases.csv").write_text(cases)
    env = nvmlsim.sim_env(lib_dir, profiles=profiles, **scenario)
    env["SRD_HOME"] = str(tmp_path / "home")
    return run_srd("run", "--cases", "cases.csv", "--out", "m.csv", *args, cwd=tmp_path,
                   env=env)


def rows(tmp_path: Path) -> list[dict[str, str]]:
    with open(tmp_path / "m.csv", newline="") as f:
        return list(csv.DictReader(f))


def executions(tmp_path: Path) -> list[dict]:
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    return [ex for case in run["cases"] for ex in case["runs"]]


def test_counter_energy_within_half_a_percent_with_spikes(tmp_path, lib_dir) -> None:
    t0 = time.time() - 5
    prof = Profile([(0, 100.0)], (0.5, 0.05, 300.0, 0.013))  # 50 ms spikes to 400 W
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nspiky,sleep 2\n", "--baseline", "off",
                profiles=[prof], t0=t0, energy_res_s=0.001)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["energy_method"] == "counter"
    gpu = executions(tmp_path)[0]["telemetry"]["gpus"][0]
    truth = prof.energy_j(gpu["t_begin"] - t0, gpu["t_end"] - t0)
    assert float(row["energy_raw_j"]) == pytest.approx(truth, rel=0.005)
    assert row["energy_adjusted_j"] == "" and row["energy_baseline_method"] == "none"
    # 10 Hz samples may miss every 50 ms spike (aliasing); the counter never does.
    assert float(row["gpu_power_peak_w"]) in (100.0, 400.0)


def test_sampled_fallback_on_smooth_profile_within_2_percent(tmp_path, lib_dir) -> None:
    t0 = time.time()
    prof = Profile([(0, 80.0), (3, 320.0), (6, 80.0), (9, 320.0)])  # smooth ramps
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nsmooth,sleep 2\n", "--baseline", "off",
                "--sample-hz", "20", profiles=[prof], t0=t0, gpu0_no_energy=True)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["energy_method"] == "sampled"
    gpu = executions(tmp_path)[0]["telemetry"]["gpus"][0]
    truth = prof.energy_j(gpu["t_begin"] - t0, gpu["t_end"] - t0)
    assert float(row["energy_raw_j"]) == pytest.approx(truth, rel=0.02)


def test_baseline_measured_cached_and_adjusted(tmp_path, lib_dir) -> None:
    prof = Profile([(0, 55.0)])
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nidle,sleep 0.5\n", "--baseline", "auto",
                "--baseline-duration", "1", profiles=[prof], t0=time.time())
    assert p.returncode == 0, p.stderr
    assert "energy baseline: measured (" in p.stdout
    row = rows(tmp_path)[0]
    assert row["energy_baseline_method"] == "measured"
    assert abs(float(row["energy_baseline_w"]) - 55.0) < 1.0
    window = executions(tmp_path)[0]["telemetry"]["window_s"]
    raw = float(row["energy_raw_j"])
    expected = max(0.0, raw - float(row["energy_baseline_w"]) * window)
    assert float(row["energy_adjusted_j"]) == pytest.approx(expected, abs=0.011)
    # The second run takes the baseline from the cache (keyed by GPU UUID).
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nidle,sleep 0.5\n", profiles=[prof],
                t0=time.time())
    assert "energy baseline: cached (" in p.stdout
    assert rows(tmp_path)[0]["energy_baseline_method"] == "cached"
    cache = json.loads((tmp_path / "home" / "baseline.json").read_text())
    assert list(cache) == [nvmlsim.uuid(0)]


def test_throttling_detected_with_reasons_and_duration(tmp_path, lib_dir) -> None:
    t0 = time.time()
    # sw_thermal + hw_slowdown from 1.0 s to 2.0 s after T0; the case runs ~0.5 s to ~3 s.
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nhot,sleep 2.5\n", "--baseline", "off",
                "--sample-hz", "50", t0=t0, gpu0_throttle="1.0:2.0:40")
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["thermal_throttle_detected"] == "1"
    assert row["thermal_throttle_reasons"] == "sw_thermal;hw_slowdown"
    gpu = executions(tmp_path)[0]["telemetry"]["gpus"][0]
    overlap = min(gpu["t_end"], t0 + 2.0) - max(gpu["t_begin"], t0 + 1.0)
    assert overlap > 0.5
    assert float(row["thermal_throttle_duration_sec"]) == pytest.approx(overlap, rel=0.10)
    share = 100 * overlap / (gpu["t_end"] - gpu["t_begin"])
    assert float(row["thermal_throttle_pct"]) == pytest.approx(share, abs=4)
    assert float(row["gpu_hw_slowdown_pct"]) == pytest.approx(share, abs=4)
    assert row["gpu_power_capped_pct"] == "0.00"
    pct = f"{float(row['thermal_throttle_pct']):.0f}"
    assert (f"srd: warning: GPU clocks were slowed by heat (thermal throttling) in 1 case(s): "
            f"hot ({pct}% of the window); their times and energy are not representative: let "
            "the GPUs cool between cases (--cooldown auto) and check the airflow") in p.stderr
    assert ("srd: warning: the hardware slowed the GPU clocks (HW slowdown) in 1 case(s): hot "
            ) in p.stderr


def test_a_gpu_at_its_power_limit_is_power_capped_not_thermally_throttled(tmp_path, lib_dir):
    # Held at a 300 W limit (sw power cap set by the simulator): not a cooling problem.
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\ncapped,sleep 1\n", "--baseline", "off",
                "--sample-hz", "50", profiles=[Profile([(0, 300.0)])],
                gpu0_power_limit_w=300.0, gpu0_capped=True)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["thermal_throttle_detected"] == "" and row["thermal_throttle_pct"] == "0.00"
    assert row["thermal_throttle_duration_sec"] == "0.000000"
    assert float(row["gpu_power_capped_pct"]) > 95
    assert row["thermal_throttle_reasons"] == "sw_power_cap"
    assert row["env_power_limit_w"] == "300.00"
    assert "cooldown" not in p.stderr
    assert ("srd: warning: GPUs were held at their power limit in 1 case(s): capped (") in p.stderr
    assert ("expected for a GPU-bound load: the results hold for this power limit "
            "(env_power_limit_w), not for another one; this is not a cooling problem"
            ) in p.stderr


def test_environment_columns_equal_the_device(tmp_path, lib_dir) -> None:
    p = srd_sim(tmp_path, lib_dir, "case_id,backend\nd,dummy\n", "--baseline", "off")
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["env_gpu_name"] == nvmlsim.NAME
    assert row["env_gpu_vram_mb"] == str(nvmlsim.VRAM_MB)
    assert row["env_driver_version"] == nvmlsim.DRIVER_VERSION
    assert row["env_cuda_version"] == nvmlsim.CUDA_VERSION
    assert row["env_power_limit_w"] == "700.00"
    assert row["env_mig_mode"] == "disabled"
    assert row["env_summary"].startswith(f"1x {nvmlsim.NAME}, driver 550.54.15, CUDA 12.4")
    v = run_srd("validate", "m.csv", cwd=tmp_path)
    assert v.returncode == 0, v.stderr


def test_timeseries_files(tmp_path, lib_dir) -> None:
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nts,sleep 2\n", "--baseline", "off",
                "--sample-hz", "20", t0=time.time())
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["timeseries_path"] == "m_run/timeseries/ts.json"
    doc = json.loads((tmp_path / row["timeseries_path"]).read_text())
    window = executions(tmp_path)[0]["telemetry"]["window_s"]
    expected = window * 20 + 2  # + the synchronous samples at both ends
    assert abs(len(doc["samples"]) - expected) <= 0.1 * expected
    assert doc["summary"]["power_max_w"] == 60.0 and doc["gpus"] == [0]
    assert set(doc["samples"][0]) == {"t", "g", "p", "mem_mb", "sm_pct", "temp_c", "clk_mhz",
                                      "throttle"}
    with open(tmp_path / "m_run" / "timeseries.csv", newline="") as f:
        flat = list(csv.DictReader(f))
    gpu_rows = [r for r in flat if r["gpu"] != "host"]
    assert len(gpu_rows) == len(doc["samples"])
    assert flat[0]["case_id"] == "ts" and flat[0]["gpu"] == "0"
    assert flat[0]["timestamp"].endswith("+09:00")
    assert (flat[0]["cpu_pct"], flat[0]["rss_mb"]) == ("", "")
    # The process tree's samples, at the same rate, beside the GPU's (issue 15).
    host = doc["host"]
    assert abs(len(host) - window * 20) <= 0.15 * window * 20 + 2
    assert all(h["threads"] >= 1 and h["rss_mb"] > 0 for h in host)
    assert all(0 <= h["cpu_pct"] < 50 for h in host)  # sleep: idle
    host_rows = [r for r in flat if r["gpu"] == "host"]
    assert len(host_rows) == len(host) and host_rows[0]["power_w"] == ""
    # rounded half away from zero, as every cell (3.125 MiB is 3.13, not Python's 3.12)
    assert host_rows[0]["rss_mb"] == round_half_away(host[0]["rss_mb"], 2)


def test_two_gpus_energy_is_summed(tmp_path, lib_dir) -> None:
    t0 = time.time()
    profs = [Profile([(0, 100.0)]), Profile([(0, 250.0)])]
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nboth,sleep 1\n", "--baseline", "off",
                profiles=profs, t0=t0, energy_res_s=0.001)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    gpus = executions(tmp_path)[0]["telemetry"]["gpus"]
    assert [g["index"] for g in gpus] == [0, 1]
    truth = sum(pr.energy_j(g["t_begin"] - t0, g["t_end"] - t0)
                for pr, g in zip(profs, gpus, strict=True))
    assert float(row["energy_raw_j"]) == pytest.approx(truth, rel=0.005)
    # energy / duration per GPU, summed over the case's GPUs
    assert float(row["gpu_power_mean_w"]) == pytest.approx(350.0, rel=0.005)
    assert row["gpu_count"] == "2"


def test_nvml_failure_auto_runs_without_telemetry_on_exits_4(tmp_path, lib_dir) -> None:
    p = srd_sim(tmp_path, lib_dir, "case_id,backend\nd,dummy\n", fail_init=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("GPU telemetry off: cannot initialise NVML") == 1
    assert "energy_raw_j" not in rows(tmp_path)[0]
    p = srd_sim(tmp_path, lib_dir, "case_id,backend\nd,dummy\n", "--telemetry", "on",
                fail_init=True)
    assert p.returncode == 4
    assert "cannot initialise NVML" in p.stderr


def test_cooldown_auto_waits_for_idle_temperature(tmp_path, lib_dir) -> None:
    t0 = time.time()
    # 40 °C when srd starts (its idle reference), 60 °C from 1 s, back to 40 °C at 3 s.
    p = srd_sim(tmp_path, lib_dir, "case_id,cmd\nfirst,sleep 1.5\nsecond,echo p95=0.01\n",
                "--baseline", "off", "--cooldown", "auto", t0=t0,
                gpu0_temp="0:40,1:40,1:60,3:60,3:40")
    assert p.returncode == 0, p.stderr
    cases = json.loads((tmp_path / "m_run" / "run.json").read_text())["cases"]
    second = next(c for c in cases if c["case_id"] == "second")
    assert second["t_start"] >= t0 + 3.0  # it waited for the GPU to cool down
    assert float(rows(tmp_path)[0]["thermal_max_temp_c"]) == 60.0


def test_srd_baseline_and_env_commands(tmp_path, lib_dir) -> None:
    env = nvmlsim.sim_env(lib_dir, profiles=[Profile([(0, 42.0)])], t0=time.time())
    env["SRD_HOME"] = str(tmp_path / "home")
    p = run_srd("baseline", "--duration", "0.5", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    line = f"GPU 0 {nvmlsim.NAME} {nvmlsim.uuid(0)}: "
    assert p.stdout.startswith(line) and p.stdout.splitlines()[0].endswith(" W (measured)")
    watts = p.stdout.splitlines()[0][len(line):].split()[0]
    assert abs(float(watts) - 42.0) < 1.0
    p = run_srd("baseline", "--duration", "0.5", cwd=tmp_path, env=env)
    assert f"{line}{watts} W (cached)" in p.stdout
    p = run_srd("env", "--json", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["gpu"]["driver_version"] == nvmlsim.DRIVER_VERSION
    assert info["gpu"]["gpus"][0]["uuid"] == nvmlsim.uuid(0)
    assert info["python"] and "click" in info["packages"]


def test_per_gpu_runs_each_case_on_its_own_gpu(tmp_path, lib_dir) -> None:
    t0 = time.time()
    profs = [Profile([(0, 100.0)]), Profile([(0, 300.0)])]
    cases = "case_id,cmd\n" + "".join(
        f"c{i},sleep 0.6; echo ext_cvd=$CUDA_VISIBLE_DEVICES\n" for i in range(4))
    p = srd_sim(tmp_path, lib_dir, cases, "--baseline", "off", "--per-gpu", profiles=profs,
                t0=t0, energy_res_s=0.001)
    assert p.returncode == 0, p.stderr
    power = {nvmlsim.uuid(0): 100.0, nvmlsim.uuid(1): 300.0}
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    seen = set()
    for row, case in zip(rows(tmp_path), run["cases"], strict=True):
        gpus = case["runs"][0]["telemetry"]["gpus"]
        assert len(gpus) == 1 and gpus[0]["uuid"] == row["ext_cvd"]  # measured where it ran
        seen.add(row["ext_cvd"])
        window = gpus[0]["t_end"] - gpus[0]["t_begin"]
        assert float(row["energy_raw_j"]) == pytest.approx(power[row["ext_cvd"]] * window,
                                                          rel=0.01)
    assert seen == set(power)  # both GPUs were used
    starts = sorted(c["t_start"] for c in run["cases"])
    assert starts[1] - starts[0] < 0.3  # two cases side by side
