"""The GPU device layer (doerunner/telemetry/gpu.py) against the simulated NVML driver.

pynvml dlopens libnvidia-ml.so.1 at nvmlInit, and LD_LIBRARY_PATH only counts when a process
starts, so every check that talks to NVML runs in a fresh Python subprocess (``run_py``) whose
environment points at the simulator; it prints one JSON line that the test asserts on. The
simulator's power is known exactly (``Profile``), so the expected numbers are exact too.
"""

from __future__ import annotations

import ctypes.util
import itertools
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO
from .nvmlsim import (
    CUDA_VERSION,
    DRIVER_VERSION,
    NAME,
    POWER_LIMIT_W,
    SM_CLOCK_MHZ,
    SM_CLOCK_SLOWED_MHZ,
    VRAM_MB,
    Profile,
    build,
    sim_env,
    uuid,
)

RES_S = 0.01  # the simulator's default energy-counter resolution

# Runs before every script: helpers, and T0 placed `BACK` seconds in the past (so the
# interesting part of a profile is reached without waiting for the interpreter to start).
PRELUDE = """
import dataclasses, json, os, time
from doerunner.telemetry import gpu, throttle
BACK = float(os.environ.get("TEST_T0_BACK", "nan"))
if BACK == BACK:
    os.environ["NVMLSIM_T0"] = repr(time.time() - BACK)
T0 = float(os.environ.get("NVMLSIM_T0", "nan"))

def wait_until(rel):
    dt = T0 + rel - time.time()
    if dt > 0:
        time.sleep(dt)

def rel(t):
    return t - T0

def sample(dev):
    d = dataclasses.asdict(dev.sample())
    d["rel"] = d["t"] - T0
    return d

def counter(dev):
    before = time.time()
    c = dev.energy_mj()
    after = time.time()
    return {"c": c, "before": before - T0, "after": after - T0}
"""


@pytest.fixture(scope="session")
def sim_lib() -> Path:
    try:
        return build()
    except RuntimeError as e:
        pytest.skip(str(e))


def run_py(code: str, env: dict[str, str], t0_back: float | None = None) -> Any:
    """Run PRELUDE + ``code`` in a fresh interpreter with ``env``; return its last JSON line."""
    env = dict(env)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if t0_back is not None:
        env["TEST_T0_BACK"] = repr(t0_back)
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_counter(read: dict[str, Any], profile: Profile) -> int:
    """The counter read between ``before`` and ``after`` is what the profile says for that
    moment (it only moves at multiples of RES_S, so usually both ends agree). Returns the
    quantised time the reading belongs to, in RES_S steps."""
    lo, hi = profile.counter_mj(read["before"]), profile.counter_mj(read["after"])
    assert lo - 1 <= read["c"] <= hi + 1, (read, lo, hi)
    step = math.floor(read["before"] / RES_S)
    return step if abs(read["c"] - lo) <= 1 else step + 1


# ---------------------------------------------------------------------------------------------
# The ground truth itself


def test_profile_integral_is_exact():
    p = Profile([(0, 100), (1, 100), (1, 300), (2, 100)], spikes=(0.5, 0.05, 200, 0.1))
    # by hand: 100 J flat + 200 J ramp 300->100 + 4 spikes of 0.05 s x 200 W
    assert p.energy_j(0, 2) == pytest.approx(340.0, rel=1e-12)
    assert p.power_w(0.99) == 100 and p.power_w(1.0) == 300 and p.power_w(1.5) == 200
    assert p.power_w(0.12) == 300 and p.power_w(0.16) == 100  # a spike is [0.1, 0.15)
    assert p.power_w(-5) == 100 and p.power_w(7) == 100      # constant outside the points
    assert p.avg_power_w(1.0, 1.0) == pytest.approx(120.0)   # 100 W + 2 spikes in [0, 1]
    assert p.counter_mj(2.0) - p.counter_mj(0.0) == pytest.approx(340_000, abs=1)

    rng = random.Random(4)
    for _ in range(200):
        a, b = sorted(rng.uniform(-1.0, 3.0) for _ in range(2))
        # power is linear between breakpoints, so the midpoint rule over them is exact
        xs = p.breakpoints(a, b)
        exact = sum((y - x) * p.power_w((x + y) / 2) for x, y in itertools.pairwise(xs))
        assert p.energy_j(a, b) == pytest.approx(exact, rel=1e-9, abs=1e-9)
    # and an independent, dense numerical integration agrees to its own accuracy
    n = 200_000
    dense = sum(p.power_w(-0.5 + 3.0 * (k + 0.5) / n) for k in range(n)) * 3.0 / n
    assert dense == pytest.approx(p.energy_j(-0.5, 2.5), rel=1e-4)


# ---------------------------------------------------------------------------------------------
# Static facts


def test_static_facts_are_read_exactly(sim_lib):
    env = sim_env(sim_lib, gpus=3, gpu1_name="NVIDIA A100-SXM4-80GB", gpu1_mig=True,
                  gpu2_mig="na")
    got = run_py("""
        import sys
        assert "pynvml" not in sys.modules  # imported lazily, at open
        with gpu.open_gpus() as g:
            print(json.dumps({"driver": g.driver_version, "cuda": g.cuda_version,
                              "info": [dataclasses.asdict(d.info) for d in g.devices],
                              "api": [d.throttle_api for d in g.devices]}))
        """, env)
    assert got["driver"] == DRIVER_VERSION == "550.54.15"
    assert got["cuda"] == CUDA_VERSION == "12.4"
    assert got["info"] == [
        {"index": i, "uuid": uuid(i), "name": name, "vram_mb": float(VRAM_MB),
         "power_limit_w": POWER_LIMIT_W, "mig_mode": mig, "token": uuid(i),
         "mig_instance": False, "energy_scope": "gpu"}
        for i, name, mig in [(0, NAME, "disabled"), (1, "NVIDIA A100-SXM4-80GB", "enabled"),
                             (2, NAME, None)]
    ]
    assert got["info"][0]["uuid"] == "GPU-5151a000-0000-4000-8000-000000000000"
    assert got["api"] == ["nvmlDeviceGetCurrentClocksEventReasons"] * 3


# ---------------------------------------------------------------------------------------------
# Power and energy


def test_instant_power_versus_one_second_average_on_a_step(sim_lib):
    step = Profile([(0, 100), (0.5, 100), (0.5, 400)])
    # GPU 1 lacks the instant field: it falls back to NVML's 1-s average
    env = sim_env(sim_lib, profiles=[step, step], gpu1_no_instant=True)
    got = run_py("""
        with gpu.open_gpus() as g:
            out = {"instant": [d.has_instant_power for d in g.devices], "reads": []}
            for target in (1.0, 1.6):
                wait_until(target)
                out["reads"].append([sample(d) for d in g.devices])
            print(json.dumps(out))
        """, env, t0_back=0.9)
    assert got["instant"] == [True, False]
    (inst1, avg1), (inst2, avg2) = got["reads"]
    assert inst1["power_w"] == 400.0                      # instantaneous: the step is done
    assert avg1["power_w"] == pytest.approx(250.0, abs=10)  # half of [0, 1] at 100, half at 400
    assert avg1["power_w"] == pytest.approx(step.avg_power_w(avg1["rel"], 1.0), abs=0.1)
    assert inst2["power_w"] == avg2["power_w"] == 400.0   # the window [0.6, 1.6] is all 400


def test_energy_counter_difference_equals_the_exact_integral(sim_lib):
    spiky = Profile([(0, 80), (0.3, 80), (0.3, 250), (0.8, 150)], spikes=(0.1, 0.02, 300, 0.05))
    env = sim_env(sim_lib, profiles=[spiky])
    got = run_py("""
        with gpu.open_gpus() as g:
            d = g.devices[0]
            a = counter(d)
            wait_until(rel(time.time()) + 0.6)
            b = counter(d)
            print(json.dumps({"a": a, "b": b, "has": d.has_energy_counter}))
        """, env, t0_back=0.1)
    assert got["has"] is True
    qa, qb = check_counter(got["a"], spiky), check_counter(got["b"], spiky)
    diff_j = (got["b"]["c"] - got["a"]["c"]) / 1000
    truth_j = spiky.energy_j(qa * RES_S, qb * RES_S)  # the window the counter actually saw
    assert diff_j == pytest.approx(truth_j, rel=1e-3)
    assert abs(diff_j - truth_j) <= 0.002           # to the millijoule, in fact
    # against the continuous window, the error is bounded by the resolution at both ends
    cont_j = spiky.energy_j(got["a"]["before"], got["b"]["after"])
    assert abs(diff_j - cont_j) <= 2 * RES_S * 550


def test_missing_energy_counter_instant_field_and_event_reasons_are_probed(sim_lib):
    env = sim_env(sim_lib, gpus=2, gpu0_no_energy=True, gpu1_no_instant=True,
                  gpu1_avg_window_s=0, gpu0_power="0:123", gpu1_power="0:321",
                  gpu0_throttle="0:1e9:0x40", no_event_reasons=True)
    got = run_py("""
        with gpu.open_gpus() as g:
            print(json.dumps([{"energy": d.has_energy_counter, "instant": d.has_instant_power,
                               "api": d.throttle_api, "counter": d.energy_mj(),
                               "power": d.power_w(), "s": sample(d)} for d in g.devices]))
        """, env)
    g0, g1 = got
    assert (g0["energy"], g0["instant"], g0["counter"], g0["s"]["energy_mj"]) == (
        False, True, None, None)
    assert (g1["energy"], g1["instant"]) == (True, False)
    assert isinstance(g1["counter"], int) and g1["s"]["energy_mj"] >= g1["counter"]
    assert (g0["power"], g1["power"]) == (123.0, 321.0)
    # the old API name is used when the new one is missing, with the same bits
    assert g0["api"] == g1["api"] == "nvmlDeviceGetCurrentClocksThrottleReasons"
    assert (g0["s"]["throttle"], g1["s"]["throttle"]) == (0x40, 0)


# ---------------------------------------------------------------------------------------------
# Throttling and the other readings


def test_throttle_bitmask_names_and_clock_in_windows(sim_lib):
    windows = [(0.1, 0.6, 0x20), (0.35, 0.85, 0x04), (0.0, 10.0, 0x01)]
    env = sim_env(sim_lib, gpu0_power="0:300",
                  gpu0_throttle=";".join(f"{a}:{b}:{m:#x}" for a, b, m in windows))
    got = run_py("""
        with gpu.open_gpus() as g:
            out = []
            for target in (0.2, 0.45, 0.7, 1.0):
                wait_until(target)
                s = sample(g.devices[0])
                s["names"] = throttle.throttle_names(s["throttle"])
                out.append(s)
            print(json.dumps(out))
        """, env, t0_back=0.05)
    for s in got:
        expected = 0
        for a, b, m in windows:
            if a <= s["rel"] < b:
                expected |= m
        assert s["throttle"] == expected
        slowed = expected & ~0x1
        assert s["sm_clock_mhz"] == (SM_CLOCK_SLOWED_MHZ if slowed else SM_CLOCK_MHZ)
        # 300 W: 30 + 0.1 * 300 C; utilisation round(300 / 7) = 43 %; 1024 + 40 * 43 MiB
        assert (s["temp_c"], s["util_pct"], s["mem_used_mb"]) == (60.0, 43.0, 2744.0)
    assert [s["names"] for s in got] == [["sw_thermal"], ["sw_thermal", "sw_power_cap"],
                                         ["sw_power_cap"], []]


def test_throttle_names_order_and_ignored_bits():
    from doerunner.telemetry.throttle import THROTTLE_MASK, throttle_names

    assert THROTTLE_MASK == 0xEC
    assert throttle_names(0xFF) == ["sw_thermal", "hw_thermal", "hw_slowdown", "sw_power_cap",
                                    "hw_power_brake"]
    assert throttle_names(0x1 | 0x2 | 0x10 | 0x100) == []
    assert throttle_names(0x88) == ["hw_slowdown", "hw_power_brake"]


def test_two_gpus_with_different_profiles_sampled_from_threads(sim_lib):
    p0, p1 = Profile([(0, 100)]), Profile([(0, 250)], spikes=(0.2, 0.05, 100, 0.0))
    env = sim_env(sim_lib, profiles=[p0, p1], gpu1_mem_used_mb="0:5000,10:6000")
    got = run_py("""
        import threading
        with gpu.open_gpus() as g:
            a = [counter(d) for d in g.devices]
            samples = [sample(d) for d in g.devices]
            nones = []
            def hammer(d):
                for _ in range(500):
                    s = d.sample()
                    nones.extend(k for k, v in dataclasses.asdict(s).items() if v is None)
            threads = [threading.Thread(target=hammer, args=(d,)) for d in g.devices * 2]
            for t in threads: t.start()
            for t in threads: t.join()
            wait_until(rel(time.time()) + 0.3)
            b = [counter(d) for d in g.devices]
            d = g.devices[0]
            n = 3000
            start = time.perf_counter()
            for _ in range(n):
                d.sample()
            us = (time.perf_counter() - start) / n * 1e6
            print(json.dumps({"a": a, "b": b, "s": samples, "nones": nones, "us": us}))
        """, env, t0_back=0.02)
    s0, s1 = got["s"]
    assert s0["power_w"] == 100.0 and s1["power_w"] == p1.power_w(s1["rel"])
    assert (s0["temp_c"], s0["util_pct"], s0["mem_used_mb"]) == (40.0, 14.0, 1584.0)
    assert s1["mem_used_mb"] == pytest.approx(5000 + 100 * s1["rel"], abs=0.01)
    assert got["nones"] == []
    for i, p in enumerate((p0, p1)):
        qa, qb = check_counter(got["a"][i], p), check_counter(got["b"][i], p)
        diff_j = (got["b"][i]["c"] - got["a"][i]["c"]) / 1000
        assert diff_j == pytest.approx(p.energy_j(qa * RES_S, qb * RES_S), abs=0.002)
    assert got["us"] < 1000  # typically ~10-15 us per sample() against the simulator


# ---------------------------------------------------------------------------------------------
# Which GPUs: CUDA_VISIBLE_DEVICES and selection


OPEN_ALL = """
    out = []
    for cvd, order, select in CASES:
        for name, value in (("CUDA_VISIBLE_DEVICES", cvd), ("CUDA_DEVICE_ORDER", order)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        try:
            with gpu.open_gpus(select) as g:
                out.append([[d.info.index, d.info.token, d.info.mig_instance]
                            for d in g.devices] + g.notes)
        except gpu.TelemetryError as e:
            out.append([e.exit_code, str(e)])
    print(json.dumps(out))
"""


def open_all(env: dict[str, str], cases: list[tuple[str | None, str | None, str | None]]
             ) -> list[Any]:
    """``open_gpus(select)`` under each (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, select):
    [[index, token, mig_instance], ..., notes...] or [exit code, message]."""
    return run_py(f"CASES = {cases!r}\n" + textwrap.dedent(OPEN_ALL), env)


def test_cuda_visible_devices_by_index_and_uuid(sim_lib):
    env = sim_env(sim_lib, gpus=3)
    cases = [
        (None, None, None), ("2,0", None, None), ("2,0", None, "1"), (uuid(1), None, None),
        (uuid(2).upper(), None, None), (f" {uuid(2)} , 0 ", None, None),
        ("1,7,2", None, None), ("1,1", None, None), ("", None, None),
        ("GPU-5151a000", None, None), ("0,1", None, "2"), (None, None, "0,0"),
        ("x", None, None),
    ]
    g = [[i, uuid(i), False] for i in range(3)]
    assert open_all(env, cases) == [
        g,
        [g[2], g[0]],
        [g[0]],                                  # select indexes the visible list, as CUDA does
        [g[1]],
        [[2, uuid(2), False]],                   # the token is NVML's spelling of the UUID
        [g[2], g[0]],
        [g[1]],                                  # CUDA stops at the first entry naming no GPU
        [g[1]],                                  # ... and a repeated one
        [4, "no GPU visible: CUDA_VISIBLE_DEVICES is empty"],
        [4, "no GPU visible: CUDA_VISIBLE_DEVICES=GPU-5151a000 names no GPU"],  # ambiguous
        [4, "no GPU '2' among the 2 visible (valid: 0..1, CUDA_VISIBLE_DEVICES applies)"],
        [4, "GPU 0 selected twice in '0,0'"],
        [4, "no GPU visible: CUDA_VISIBLE_DEVICES=x names no GPU"],
    ]


def test_cuda_order_differs_from_nvml_order_on_a_mixed_host(sim_lib):
    # NVML lists GPU 0 first, but GPU 1 sits on the lower PCI bus: with
    # CUDA_DEVICE_ORDER=PCI_BUS_ID, CUDA's device 0 is NVML's GPU 1. The models differ, so
    # without it CUDA's "fastest first" order is unknowable and indices are refused.
    env = sim_env(sim_lib, gpus=2, gpu0_name="NVIDIA A100-SXM4-80GB", gpu0_pci_bus=0x41,
                  gpu1_name="NVIDIA H100 80GB HBM3", gpu1_pci_bus=0x1b)
    refused = ("CUDA_VISIBLE_DEVICES=0 names GPUs by index, which CUDA numbers fastest first "
               "on this host of mixed GPUs (NVIDIA A100-SXM4-80GB, NVIDIA H100 80GB HBM3) "
               "unless CUDA_DEVICE_ORDER=PCI_BUS_ID: set CUDA_DEVICE_ORDER=PCI_BUS_ID or name "
               "the GPUs by UUID (nvidia-smi -L)")
    assert open_all(env, [
        ("0", "PCI_BUS_ID", None), ("1,0", "pci_bus_id", None), ("0", None, None),
        ("0", "FASTEST_FIRST", None), (uuid(0), None, None), (None, None, None),
    ]) == [
        [[1, uuid(1), False]],
        [[0, uuid(0), False], [1, uuid(1), False]],
        [4, refused],
        [4, refused],
        [[0, uuid(0), False]],                   # a UUID is the same GPU in any order
        [[0, uuid(0), False], [1, uuid(1), False]],  # no variable: NVML's (nvidia-smi's) order
    ]
    # Same models: both orders are PCI bus order, and indices map through it.
    env = sim_env(sim_lib, gpus=2, gpu0_pci_bus=0x41, gpu1_pci_bus=0x1b)
    assert open_all(env, [("0", None, None)]) == [[[1, uuid(1), False]]]


def test_mig_instances_map_to_their_gpu(sim_lib):
    from .nvmlsim import mig_uuid

    env = sim_env(sim_lib, gpus=2, gpu1_mig=True, gpu1_mig_instances=3)
    old_style = f"MIG-{uuid(1)}/7/0"
    assert open_all(env, [
        (mig_uuid(1, 2), None, None), (f"{mig_uuid(1, 0)},{mig_uuid(1, 1)}", None, None),
        (old_style, None, None), (f"0,{mig_uuid(1, 0)}", None, None),
        ("MIG-5151a000-0000-4000-9000-000009000000", None, None),
    ]) == [
        [[1, mig_uuid(1, 2), True]],
        [[1, mig_uuid(1, 0), True]],             # CUDA enumerates one MIG instance only
        [[1, old_style, True]],                  # MIG-GPU-<uuid>/gi/ci (drivers before R470)
        [[0, uuid(0), False], [1, mig_uuid(1, 0), True]],
        [4, "no GPU visible: CUDA_VISIBLE_DEVICES=MIG-5151a000-0000-4000-9000-000009000000 "
            "names no GPU"],
    ]
    # MIG mode: utilisation is not supported on the GPU (NVML says so); the rest is read.
    got = run_py(f"""
        os.environ["CUDA_VISIBLE_DEVICES"] = "{mig_uuid(1, 0)}"
        with gpu.open_gpus() as g:
            s = g.devices[0].sample()
            print(json.dumps([s.util_pct, s.power_w, g.devices[0].info.mig_mode]))
        """, env)
    assert got == [None, 60.0, "enabled"]


def test_a_gpu_without_permission_is_left_out_and_said(sim_lib):
    env = sim_env(sim_lib, gpus=3, gpu1_no_permission=True)
    note = ("GPU 1 cannot be opened (insufficient permissions, NVML error 4): it is neither "
            "measured nor given to cases")
    assert open_all(env, [(None, None, None), (uuid(2), None, None), ("0", None, None),
                          (uuid(1), None, None)]) == [
        [[0, uuid(0), False], [2, uuid(2), False], note],
        [[2, uuid(2), False], note],
        [4, "CUDA_VISIBLE_DEVICES=0 names GPUs by index, but GPU 1 cannot be opened "
            "(insufficient permissions, NVML error 4), so CUDA's numbering cannot be mapped: "
            "name the GPUs by UUID (nvidia-smi -L)"],
        [4, f"no GPU visible: CUDA_VISIBLE_DEVICES={uuid(1)} names no GPU"],
    ]


def test_an_old_driver_without_field_values_degrades_to_averaged_power(tmp_path):
    # nvidia-ml-py raises NVMLError_FunctionNotFound for a function the library does not
    # export: srd reads the (averaged) power instead, and the throttle reasons the old way.
    try:
        lib = build(variant="old")
    except RuntimeError as e:
        pytest.skip(str(e))
    env = sim_env(lib, gpus=1, gpu0_mig=True)
    got = run_py("""
        with gpu.open_gpus() as g:
            d = g.devices[0]
            s = d.sample()
            print(json.dumps([d.has_instant_power, d.throttle_api, s.power_w, s.throttle,
                              d.energy_mj() is not None]))
        """, env)
    assert got == [False, "nvmlDeviceGetCurrentClocksThrottleReasons", 60.0, 0, True]


# ---------------------------------------------------------------------------------------------
# Failures


def test_init_failure_is_a_telemetry_error_with_a_clear_message(sim_lib):
    env = sim_env(sim_lib, fail_init=True)
    got = run_py("""
        from doerunner.errors import DoerunnerError
        try:
            gpu.open_gpus()
            out = {"raised": False}
        except gpu.TelemetryError as e:
            out = {"raised": True, "msg": str(e), "code": e.exit_code,
                   "base": isinstance(e, DoerunnerError)}
        null = gpu.open_gpus_or_null()
        out["null"] = [len(null.devices), null.unavailable]
        null.close()
        os.environ.update(NVMLSIM_FAIL_INIT="0", NVMLSIM_GPUS="0")  # read again at each init
        out["none"] = gpu.open_gpus_or_null().unavailable
        print(json.dumps(out))
        """, env)
    msg = "cannot initialise NVML: the NVIDIA kernel driver is not loaded (NVML error 9)"
    assert got == {"raised": True, "msg": msg, "code": 4, "base": True, "null": [0, msg],
                   "none": "no GPU visible: NVML found no GPU"}


@pytest.mark.skipif(bool(ctypes.util.find_library("nvidia-ml")),
                    reason="a real NVML is installed here")
def test_missing_library_is_a_telemetry_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NVMLSIM_")}
    env["LD_LIBRARY_PATH"] = str(tmp_path)  # nothing there
    got = run_py("""
        try:
            gpu.open_gpus()
            print(json.dumps(None))
        except gpu.TelemetryError as e:
            print(json.dumps(str(e)))
        """, env)
    assert got == ("cannot initialise NVML: libnvidia-ml.so.1 not found; is the NVIDIA driver "
                   "installed? (NVML error 12)")


def test_simulator_builds_once_per_source(sim_lib, tmp_path):
    assert (sim_lib / "libnvidia-ml.so.1").is_file()
    assert build() == sim_lib  # cached by source hash
    mtime = (sim_lib / "libnvidia-ml.so.1").stat().st_mtime_ns
    time.sleep(0.01)
    assert build() == sim_lib and (sim_lib / "libnvidia-ml.so.1").stat().st_mtime_ns == mtime


def test_an_index_naming_a_gpu_whose_uuid_cannot_be_read_names_no_gpu():
    from doerunner.telemetry.visible import Physical, Visible, visible

    gpus = [Physical(0, "GPU-a", "X", "00000000:1B:00.0"), Physical(1, None, "X", "00:41")]
    assert visible("0,1", gpus, None, lambda u: None) == ([Visible(0, "GPU-a")], [])
    assert visible("1,0", gpus, None, lambda u: None) == ([], [])
