"""A case runs on the GPUs it is measured on (issue 13): `srd run` against the simulated
driver, with the case reporting the CUDA_VISIBLE_DEVICES it was given."""

from __future__ import annotations

import json
import time

import pytest

from . import nvmlsim
from .nvmlsim import Profile, mig_uuid, uuid
from .test_telemetry import executions, rows, srd_sim

SHOW_CVD = "case_id,cmd\nc,sleep 0.5; echo ext_cvd=$CUDA_VISIBLE_DEVICES\n"
PROFILES = [Profile([(0, 300.0)]), Profile([(0, 100.0)])]


def test_gpus_option_gives_the_case_the_gpu_it_measures(tmp_path, lib_dir):
    t0 = time.time()
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", "--gpus", "1",
                profiles=PROFILES, t0=t0, energy_res_s=0.001)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    gpus = executions(tmp_path)[0]["telemetry"]["gpus"]
    assert row["ext_cvd"] == uuid(1) and [g["uuid"] for g in gpus] == [uuid(1)]
    assert row["gpu_count"] == "1"
    assert float(row["gpu_power_mean_w"]) == pytest.approx(100.0, rel=0.01)
    plan = json.loads((tmp_path / "m_run" / "run.json").read_text())["plan"]
    assert plan["slots"] == [{"slot": 0, "gpus": [uuid(1)],
                              "env": {"CUDA_VISIBLE_DEVICES": uuid(1)}}]


def test_without_gpus_option_the_case_owns_every_gpu_and_says_how_many(tmp_path, lib_dir):
    t0 = time.time()
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", profiles=PROFILES, t0=t0,
                energy_res_s=0.001)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["ext_cvd"] == f"{uuid(0)},{uuid(1)}"
    assert row["gpu_count"] == "2"
    # Sums over the case's GPUs (energy, power); utilisation is the mean over them.
    assert float(row["gpu_power_mean_w"]) == pytest.approx(400.0, rel=0.01)
    util = [min(100, round(w / 7)) for w in (300.0, 100.0)]
    assert float(row["gpu_util_mean_pct"]) == pytest.approx(sum(util) / 2, abs=0.01)


def test_user_cuda_visible_devices_by_index_follows_pci_order(tmp_path, lib_dir):
    # NVML's GPU 1 is on the lower PCI bus: CUDA (PCI_BUS_ID order) calls it device 0.
    t0 = time.time()
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", profiles=PROFILES, t0=t0,
                energy_res_s=0.001, gpu0_pci_bus=0x41, gpu1_pci_bus=0x1b,
                cuda_visible_devices="0")
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["ext_cvd"] == uuid(1)
    assert float(row["gpu_power_mean_w"]) == pytest.approx(100.0, rel=0.01)


def test_mixed_models_with_indices_are_refused_before_anything_runs(tmp_path, lib_dir):
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", "--telemetry", "on",
                profiles=PROFILES, gpu0_name="NVIDIA A100-SXM4-80GB",
                cuda_visible_devices="1")
    assert p.returncode == 4
    assert p.stderr.strip().splitlines()[-1] == (
        "srd: error: CUDA_VISIBLE_DEVICES=1 names GPUs by index, which CUDA numbers fastest "
        "first on this host of mixed GPUs (NVIDIA A100-SXM4-80GB, NVIDIA H100 80GB HBM3) "
        "unless CUDA_DEVICE_ORDER=PCI_BUS_ID: set CUDA_DEVICE_ORDER=PCI_BUS_ID or name the "
        "GPUs by UUID (nvidia-smi -L)")
    assert not (tmp_path / "m.csv").exists()


def test_a_mig_instance_is_given_to_the_case_and_its_gpu_measured(tmp_path, lib_dir):
    t0 = time.time()
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", profiles=PROFILES, t0=t0,
                energy_res_s=0.001, gpu1_mig=True, cuda_visible_devices=mig_uuid(1, 1))
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["ext_cvd"] == mig_uuid(1, 1)
    assert executions(tmp_path)[0]["telemetry"]["gpus"][0]["uuid"] == uuid(1)
    assert float(row["gpu_power_mean_w"]) == pytest.approx(100.0, rel=0.01)
    assert row["gpu_util_mean_pct"] == ""   # NVML has no utilisation in MIG mode
    note = (f"GPU 1 is measured for MIG instance {mig_uuid(1, 1)}: its energy and power "
            "include the GPU's other instances")
    assert f"srd: warning: {note}" in p.stderr
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert note in run["plan"]["notes"]
    assert run["plan"]["gpus"][0]["shared"] is True


def test_a_gpu_without_permission_is_neither_measured_nor_given(tmp_path, lib_dir):
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", profiles=PROFILES,
                gpu0_no_permission=True)
    assert p.returncode == 0, p.stderr
    assert rows(tmp_path)[0]["ext_cvd"] == uuid(1)
    assert ("srd: warning: GPU 0 cannot be opened (insufficient permissions, NVML error 4): "
            "it is neither measured nor given to cases") in p.stderr


def test_dry_run_shows_each_slot_environment(tmp_path, lib_dir):
    (tmp_path / "cases.csv").write_text(SHOW_CVD)
    env = nvmlsim.sim_env(lib_dir, gpus=2)
    from .conftest import run_srd

    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--dry-run", "--gpus", "0",
                cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    assert (f"# slot 0: measures GPU 0 {nvmlsim.NAME} {uuid(0)}; environment "
            f"CUDA_VISIBLE_DEVICES={uuid(0)}") in p.stdout


@pytest.mark.parametrize(("name", "extra", "no_gpu_scope", "scope", "watts"), [
    ("NVIDIA GH200 480GB", 150.0, False, "module", 450.0),  # counter: GPU + CPU + memory
    ("NVIDIA GH200 480GB", 150.0, True, "module", 450.0),
    ("NVIDIA H100 80GB HBM3", 0.0, False, "gpu", 300.0),
])
def test_power_is_read_at_the_scope_the_energy_counter_covers(tmp_path, lib_dir, name, extra,
                                                              no_gpu_scope, scope, watts):
    t0 = time.time()
    p = srd_sim(tmp_path, lib_dir, SHOW_CVD, "--baseline", "off", "--sample-hz", "50",
                profiles=[Profile([(0, 300.0)])], t0=t0, gpu0_name=name,
                gpu0_module_extra_w=extra, gpu0_no_gpu_scope=no_gpu_scope)
    assert p.returncode == 0, p.stderr
    row = rows(tmp_path)[0]
    assert row["env_power_scope"] == scope
    # power and energy describe the same thing: energy / duration = the sampled power
    assert float(row["gpu_power_mean_w"]) == pytest.approx(watts, rel=0.01)
    assert float(row["gpu_power_peak_w"]) == pytest.approx(watts, rel=0.001)
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    gpu = run["telemetry"]["environment"]["gpus"][0]
    assert (gpu["energy_scope"], gpu["power_scope"]) == (scope, scope)


def test_jobs_sharing_gpus_give_every_case_the_gpus_they_all_measure(tmp_path, lib_dir):
    cases = "case_id,cmd\n" + "".join(
        f"c{i},sleep 0.4; echo ext_cvd=$CUDA_VISIBLE_DEVICES\n" for i in range(2))
    p = srd_sim(tmp_path, lib_dir, cases, "--baseline", "off", "--jobs", "2", "--share-gpus",
                profiles=PROFILES)
    assert p.returncode == 0, p.stderr
    both = f"{uuid(0)},{uuid(1)}"
    assert [(r["ext_cvd"], r["gpu_count"]) for r in rows(tmp_path)] == [(both, "2")] * 2
    assert ("--share-gpus: 2 cases share the GPUs; per-case GPU energy and power include "
            "their neighbours' and are not comparable") in p.stderr
