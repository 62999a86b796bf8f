"""What a case cost the host (issue 15): its process tree's CPU, memory, threads and disk I/O,
measured on real processes; the CPU and DRAM energy through RAPL, against a simulated
powercap tree whose counters advance from a known power and wrap (tests/powercapsim.py)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

from doerunner.cells import round_half_away
from doerunner.telemetry import rapl
from doerunner.telemetry.rapl import Rapl, find_zones
from tests import powercapsim
from tests.conftest import run_srd


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def _run(tmp_path: Path, cases: str, *args: str, env: dict[str, str] | None = None
         ) -> tuple[dict[str, dict[str, str]], str]:
    (tmp_path / "cases.csv").write_text(cases)
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", *args, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    return _rows(tmp_path / "m.csv"), p.stderr


# A tree: the shell, a Python parent with 4 sleeping threads, two children that each hold
# 100 MiB for 0.6 s, one of which also writes 20 MiB to disk (fsync'd) and spins the CPU.
TREE = r'''
import multiprocessing as mp, os, threading, time

def child(write):
    block = bytearray(100 * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page: resident
    if write:
        with open("out.bin", "wb") as f:
            f.write(os.urandom(20 * 2**20))
            f.flush()
            os.fsync(f.fileno())
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
    time.sleep(0.6)

if __name__ == "__main__":
    threads = [threading.Thread(target=time.sleep, args=(1.0,)) for _ in range(4)]
    for t in threads:
        t.start()
    kids = [mp.get_context("fork").Process(target=child, args=(w,)) for w in (True, False)]
    for k in kids:
        k.start()
    for k in kids:
        k.join()
    for t in threads:
        t.join()
'''


def test_a_process_tree_is_measured_whole(tmp_path: Path) -> None:
    (tmp_path / "tree.py").write_text(TREE)
    rows, _ = _run(tmp_path, f"case_id,cmd\ntree,{sys.executable} tree.py\n"
                             "said,echo cpu_util=1.5 mem_peak_mb=7\n")
    r = rows["tree"]
    wall = float(r["run_seconds"])
    user, system = float(r["cpu_user_s"]), float(r["cpu_sys_s"])
    # The spinning child (0.3 s of CPU: user, and system for its clock reads), reaped by its
    # parent: wait4 counts it.
    assert user + system >= 0.3
    assert r["cpu_util"] == round_half_away((user + system) / wall * 100, 2) or abs(
        float(r["cpu_util"]) - (user + system) / wall * 100) < 0.02  # from unrounded values
    assert 200 <= float(r["mem_peak_mb"]) < 400  # both children's 100 MiB at once
    if not _on_tmpfs(tmp_path):  # tmpfs writes reach no storage: no I/O to count
        assert 20 <= float(r["disk_io_mb"]) < 22  # the 20 MiB written (fsync'd)
    # python + 4 threads, 2 children (and the shell, unless it execs the command as bash
    # does for the last one).
    assert int(r["threads_active"]) >= 5 + 2
    assert r["network_io_mb"] != ""  # host-wide, whatever it is
    # What a command prints under these names wins over srd's own reading.
    assert (rows["said"]["cpu_util"], rows["said"]["mem_peak_mb"]) == ("1.50", "7.00")
    # Formatted by the column rules, which srd validate holds the file to.
    assert re.fullmatch(r"[0-9]+\.[0-9]{6}", r["cpu_user_s"]) and r["threads_active"].isdigit()
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", r["mem_peak_mb"])
    v = run_srd("validate", "m.csv", cwd=tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_command_shorter_than_a_sample_has_cpu_but_no_peaks(tmp_path: Path) -> None:
    rows, _ = _run(tmp_path, "case_id,cmd\nquick,true\n")
    r = rows["quick"]
    assert r["cpu_user_s"] != "" and r["disk_io_mb"] == "0.00"
    if float(r["run_seconds"]) < 0.01:  # ended before the first sample (10 ms)
        assert "mem_peak_mb" not in r and "threads_active" not in r


def test_a_timed_out_tree_is_counted_before_it_is_killed(tmp_path: Path) -> None:
    # A parent waiting on a child that spins: killed at 1 s, srd reaps both (the shell's
    # wait4 holds neither); and a process that ignores SIGTERM is not charged the grace.
    (tmp_path / "par.py").write_text(
        "import os, time\nif os.fork() == 0:\n    while True: pass\nos.wait()\n")
    (tmp_path / "ign.py").write_text(
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: pass\n")
    (tmp_path / "cases.csv").write_text(
        f"case_id,cmd,timeout_s\npar,{sys.executable} par.py,1\n"
        f"ign,exec {sys.executable} ign.py,1\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "1",
                cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    rows = _rows(tmp_path / "m.csv")
    for r in rows.values():
        assert r["status"] == "TIMEOUT"
        busy = float(r["cpu_user_s"]) + float(r["cpu_sys_s"])
        assert 0.5 <= busy <= 1.1  # one spinning process for the 1 s window, not the grace
        assert float(r["cpu_util"]) <= 110 and r["disk_io_mb"] != ""


def _on_tmpfs(path: Path) -> bool:
    import psutil

    best = max((p for p in psutil.disk_partitions(all=True)
                if str(path.resolve()).startswith(p.mountpoint)), key=lambda p: len(p.mountpoint),
               default=None)
    return best is not None and best.fstype == "tmpfs"


# --- RAPL ---------------------------------------------------------------------------------


def test_zones_are_the_packages_and_dram_only(tmp_path: Path) -> None:
    powercapsim.build(tmp_path)
    zones, note = find_zones(tmp_path)
    assert note is None
    assert [(z.path.name, z.name, z.kind) for z in zones] == [
        ("intel-rapl:0", "package-0", "cpu"), ("intel-rapl:0:1", "dram", "dram"),
        ("intel-rapl:1", "package-1", "cpu"), ("intel-rapl:1:1", "dram", "dram")]


def test_no_rapl_and_unreadable_rapl_are_notices(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_zones(tmp_path / "none") == (
        [], f"no RAPL: {tmp_path / 'none'} cannot be read (a VM, or no RAPL driver)")
    powercapsim.build(tmp_path)
    real = rapl._read_int

    def root_only(path: Path | str) -> int:  # what a non-root reader gets (mode 0400)
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl, "_read_int", root_only)
    assert find_zones(tmp_path) == (
        [], f"no RAPL: {tmp_path}/intel-rapl:0/energy_uj is readable by root only (since the "
            "PLATYPUS fix, CVE-2020-8694)")


def test_a_wrap_between_two_reads_is_counted(tmp_path: Path) -> None:
    powercapsim.build(tmp_path, max_range_j=50.0)
    counter = tmp_path / "intel-rapl:0" / "energy_uj"
    counter.write_text("49900000\n")  # 49.9 J: 0.1 J before the wrap
    zones, _ = find_zones(tmp_path)
    r = Rapl(zones[:1], poll_s=3600)
    counter.write_text("300000\n")  # wrapped: 0.1 + 0.3 J later
    assert r.totals() == {"cpu": pytest.approx(0.4)}
    counter.write_text("800000\n")
    assert r.totals() == {"cpu": pytest.approx(0.9)}
    counter.write_text("not a number\n")  # unreadable for a moment: the total holds
    assert r.totals() == {"cpu": pytest.approx(0.9)} and r.unreadable == {"package-0"}


def test_cpu_and_dram_energy_of_a_case_across_wraps(tmp_path: Path) -> None:
    root = powercapsim.build(tmp_path / "powercap", max_range_j=50.0)
    assert rapl.Rapl(find_zones(root)[0])._poll_s == pytest.approx(0.025)  # 50 J at 1 kW / 2
    with powercapsim.Advancer(root, max_range_j=50.0):
        # 1.5 s at 40 + 30 W of packages: 105 J, two wraps of each 50 J counter.
        rows, _ = _run(tmp_path, "case_id,cmd,repeat\nload,sleep 1.5,2\n",
                       env={rapl.ROOT_VAR: str(root)})
    r = rows["load"]
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    reps = run["cases"][0]["runs"]
    for rep in reps:
        wall, m = rep["wall_s"], rep["metrics"]
        # The window holds the execution and a little more (the start of the shell; on a
        # loaded machine some milliseconds): 70 W of packages over at least the wall time.
        assert 70.0 * wall - 0.2 <= m["cpu_energy_j"] <= 70.0 * (wall + 0.1)
        # The same window for every zone: packages / dram is 70 / 10 W (psys and the
        # mmio copy of package 0 would break the ratio).
        assert m["cpu_energy_j"] / m["dram_energy_j"] == pytest.approx(7.0, rel=0.01)
        assert m["energy_total_j"] == pytest.approx(m["cpu_energy_j"] + m["dram_energy_j"])
    total = float(r["energy_total_j"])
    assert total == pytest.approx(float(r["cpu_energy_j"]) + float(r["dram_energy_j"]),
                                  abs=0.011)
    # CO2 and cost follow the total (no GPU here): 475 g/kWh and 0.15/kWh by default.
    assert float(r["energy_co2_g"]) == pytest.approx(
        sum(x["metrics"]["energy_total_j"] for x in reps) / 2 / 3.6e6 * 475, abs=1e-6)
    assert run["host"]["rapl"] == [
        {"zone": "intel-rapl:0", "name": "package-0", "kind": "cpu"},
        {"zone": "intel-rapl:0:1", "name": "dram", "kind": "dram"},
        {"zone": "intel-rapl:1", "name": "package-1", "kind": "cpu"},
        {"zone": "intel-rapl:1:1", "name": "dram", "kind": "dram"}]


def test_without_rapl_no_energy_columns_and_the_reason_in_run_json(tmp_path: Path) -> None:
    rows, err = _run(tmp_path, "case_id,cmd\na,true\n",
                     env={rapl.ROOT_VAR: str(tmp_path / "absent")})
    assert "cpu_energy_j" not in rows["a"] and "energy_total_j" not in rows["a"]
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["host"] == {"rapl": None, "rapl_note": f"no RAPL: {tmp_path / 'absent'} cannot "
                                                      "be read (a VM, or no RAPL driver)"}
    assert "RAPL" not in err  # absent RAPL (a VM) is no news; unreadable RAPL is (below)


def test_srd_env_shows_cpu_memory_and_rapl(tmp_path: Path) -> None:
    root = powercapsim.build(tmp_path / "powercap")
    p = run_srd("env", env={rapl.ROOT_VAR: str(root)})
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    assert int(lines["cpu_count"]) >= 1 and lines["cpu_model"]
    assert "cpu_governor" in lines and float(lines["memory_mb"]) > 0
    assert lines["rapl"] == ("readable (intel-rapl:0 package-0, intel-rapl:0:1 dram, "
                             "intel-rapl:1 package-1, intel-rapl:1:1 dram)")
    p = run_srd("env", "--json", env={rapl.ROOT_VAR: str(tmp_path / "none")})
    assert json.loads(p.stdout)["rapl"] == (f"no RAPL: {tmp_path / 'none'} cannot be read (a "
                                            "VM, or no RAPL driver)")


def test_host_windows_never_report_a_wrong_energy(tmp_path: Path) -> None:
    from doerunner.telemetry.host import HostMeter

    root = powercapsim.build(tmp_path, max_range_j=50.0)
    zones, _ = find_zones(root)
    meter = HostMeter(Rapl(zones, poll_s=3600), None)

    def counters(joules: float) -> None:
        for folder, _, watts in powercapsim.ZONES:
            (root / folder / "energy_uj").write_text(f"{int(joules * watts / 40 * 1e6)}\n")

    counters(1.0)
    mark = meter.begin()
    counters(3.0)  # package-0 +2 J, package-1 +1.5 J, drams +0.3 and +0.2 J
    m: dict = {}
    meter.end(mark, m, 475.0, 0.15)
    assert (m["cpu_energy_j"], m["dram_energy_j"]) == (pytest.approx(3.5), pytest.approx(0.5))
    assert m["energy_total_j"] == pytest.approx(4.0)
    assert m["energy_co2_g"] == pytest.approx(4.0 / 3.6e6 * 475)
    # What the backend reported itself wins (its CO2 too).
    mark = meter.begin()
    m = {"energy_co2_g": 5.0}
    meter.end(mark, m, 475.0, 0.15, own=frozenset(m))
    assert m["energy_co2_g"] == 5.0 and m["energy_total_j"] == pytest.approx(0.0)
    # GPUs measured but their energy unknown: no total rather than CPU + DRAM alone.
    mark = meter.begin()
    m = {"energy_raw_j": None}
    meter.end(mark, m, 475.0, 0.15, gpu_measured=True)
    assert "energy_total_j" not in m and "energy_co2_g" not in m and "cpu_energy_j" in m
    # A counter unreadable during the window: no energy at all, never a silent 0 J.
    mark = meter.begin()
    (root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    m = {}
    meter.end(mark, m, 475.0, 0.15)
    assert not any(k in m for k in ("cpu_energy_j", "dram_energy_j", "energy_total_j"))


def test_cases_side_by_side_get_no_host_wide_columns(tmp_path: Path) -> None:
    root = powercapsim.build(tmp_path / "powercap")
    rows, _ = _run(tmp_path, "case_id,cmd\na,true\nb,true\n", "--jobs", "2",
                   env={rapl.ROOT_VAR: str(root)})
    for r in rows.values():
        assert "cpu_energy_j" not in r and "network_io_mb" not in r  # windows would overlap
        assert r["cpu_user_s"] != ""  # each case's own tree is still its own


def test_the_report_plots_the_host_columns_that_vary(tmp_path: Path) -> None:
    from doerunner.outputs.plots import host_columns_that_vary

    m = tmp_path / "m.csv"
    m.write_text("case_id,status,run_seconds,cpu_util,mem_peak_mb,threads_active\n"
                 "a,OK,1.0,50.00,10.00,3\nb,OK,2.0,150.00,10.00,3\nc,FAIL,1.0,900.00,99.00,9\n")
    import pandas as pd

    df = pd.read_csv(m, dtype=str, keep_default_na=False)
    assert host_columns_that_vary(df) == [("cpu_util", "CPU (% of one core)")]  # OK rows only
    p = run_srd("report", str(m), "--html", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "r.html").read_text()
    assert "<h2>What the cases cost the host</h2>" in html
    assert 'alt="host columns per case"' in html


def test_gpu_and_rapl_together_total_and_host_series(tmp_path: Path, lib_dir: Path) -> None:
    import time

    from tests import nvmlsim
    from tests.nvmlsim import Profile

    root = powercapsim.build(tmp_path / "powercap", max_range_j=50.0)
    env = nvmlsim.sim_env(lib_dir, profiles=[Profile([(0, 100.0)])], t0=time.time())
    env[rapl.ROOT_VAR] = str(root)
    with powercapsim.Advancer(root, max_range_j=50.0):
        rows, _ = _run(tmp_path, "case_id,cmd\nboth,sleep 1\n", "--baseline", "off",
                       "--sample-hz", "20", env=env)
    r = rows["both"]
    raw, cpu, dram = (float(r[c]) for c in ("energy_raw_j", "cpu_energy_j", "dram_energy_j"))
    assert raw == pytest.approx(100.0 * float(r["run_seconds"]), rel=0.05)
    assert float(r["energy_total_j"]) == pytest.approx(raw + cpu + dram, abs=0.02)
    assert float(r["energy_co2_g"]) == pytest.approx(float(r["energy_total_j"]) / 3.6e6 * 475,
                                                     abs=1e-5)
    doc = json.loads((tmp_path / r["timeseries_path"]).read_text())
    power = [h["rapl_w"] for h in doc["host"][2:]]  # 70 + 10 W, looked at every 50 ms
    assert power and all(60 < w < 100 for w in power)
    assert sorted(power)[len(power) // 2] == pytest.approx(80.0, rel=0.05)


def test_a_dummy_case_reports_its_threads_cpu_only(tmp_path: Path) -> None:
    rows, _ = _run(tmp_path, "case_id,backend,sleep_s\nd,dummy,0.2\n")
    r = rows["d"]
    assert 0 <= float(r["cpu_user_s"]) + float(r["cpu_sys_s"]) < 0.1  # it sleeps
    assert float(r["cpu_util"]) < 50
    assert "mem_peak_mb" not in r and "disk_io_mb" not in r  # srd's process, not its own
