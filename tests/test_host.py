"""What a case cost the host (issue 15): its process tree's CPU, memory, threads and disk I/O,
measured on real processes; the CPU and DRAM energy through RAPL, against a simulated
powercap tree whose counters advance from a known power and wrap (tests/powercapsim.py)."""

from __future__ import annotations

import csv
import json
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
    assert 20 <= float(r["disk_io_mb"]) < 22  # the 20 MiB written (fsync'd)
    assert int(r["threads_active"]) >= 1 + 5 + 2  # sh; python + 4 threads; 2 children
    assert r["network_io_mb"] != ""  # host-wide, whatever it is
    # What a command prints under these names wins over srd's own reading.
    assert (rows["said"]["cpu_util"], rows["said"]["mem_peak_mb"]) == ("1.50", "7.00")


def test_a_command_shorter_than_a_sample_has_cpu_but_no_peaks(tmp_path: Path) -> None:
    rows, _ = _run(tmp_path, "case_id,cmd\nquick,true\n")
    r = rows["quick"]
    assert r["cpu_user_s"] != "" and r["disk_io_mb"] == "0.00"
    assert "mem_peak_mb" not in r and "threads_active" not in r  # no sample saw it


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
    real = Path.read_text

    def root_only(self: Path, *a: object, **k: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", root_only)
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
        wall = rep["wall_s"]
        # The window also holds the start of the shell: a millisecond more than wall_s.
        assert rep["metrics"]["cpu_energy_j"] == pytest.approx(70.0 * wall, abs=0.4)
        assert rep["metrics"]["dram_energy_j"] == pytest.approx(10.0 * wall, abs=0.1)
        assert rep["metrics"]["energy_total_j"] == pytest.approx(
            rep["metrics"]["cpu_energy_j"] + rep["metrics"]["dram_energy_j"])
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
