"""Real run directories for the report and export tests, made by srd itself.

``build(base)`` runs three campaigns registered in the history at ``base/home``:

* ``alpha`` (CliRunner, shell backend): params batch × mode, tags, a FAIL, a TIMEOUT
  (``sleep 30`` with ``timeout_s`` 1) and a threshold violation; p95 values are echoed, so
  the main effects are exact numbers;
* ``beta`` (CliRunner, dummy backend): two cases, one tagged;
* ``gpu`` (a subprocess against the simulated NVML driver, ``--baseline off``): two shell
  cases with energy and time series, the first one throttled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from doerunner.cli import cli

from . import nvmlsim
from .conftest import run_srd

ALPHA = """case_id,backend,cmd,batch,mode,tags,timeout_s,threshold_p95
fast_b1,shell,sleep 0.3; echo p95=0.010 throughput_rps=900,1,fast,smoke,,
fast_b2,shell,echo p95=0.020 throughput_rps=800,2,fast,smoke nightly,,
slow_b1,shell,sleep 0.15; echo p95=0.030 throughput_rps=300,1,slow,nightly,,0.025
slow_b2,shell,echo p95=0.050 throughput_rps=200,2,slow,,,
broken,shell,echo oops >&2; exit 3,1,fast,,,
hang,shell,sleep 30,2,slow,nightly,1,
"""
BETA = """case_id,backend,batch,tags
d1,dummy,1,smoke
d2,dummy,2,
"""
GPU = """case_id,cmd,batch
hot,sleep 1.6,1
cool,sleep 0.4,2
"""


def build(base: Path) -> dict[str, Path]:
    """Run the three campaigns; returns their metrics.csv paths and ``home``."""
    home = base / "home"
    old = os.environ.get("SRD_HOME")
    os.environ["SRD_HOME"] = str(home)
    try:
        out = {"home": home}
        for name, text, extra in (("alpha", ALPHA, ["--kill-grace", "0.2"]),
                                  ("beta", BETA, [])):
            d = base / name
            d.mkdir()
            (d / "cases.csv").write_text(text)
            r = CliRunner().invoke(cli, ["run", "--cases", str(d / "cases.csv"), "--out",
                                         str(d / "metrics.csv"), "--project", name,
                                         "--quiet", *extra])
            assert r.exit_code in (0, 2, 3), r.output
            out[name] = d / "metrics.csv"
    finally:
        if old is None:
            os.environ.pop("SRD_HOME", None)
        else:
            os.environ["SRD_HOME"] = old
    d = base / "gpu"
    d.mkdir()
    (d / "cases.csv").write_text(GPU)
    env = nvmlsim.sim_env(nvmlsim.build(), t0=time.time(), gpu0_throttle="0.6:1.4:40",
                          gpu0_power="0:80,1:300,2:300,3:90")
    env["SRD_HOME"] = str(home)
    p = run_srd("run", "--cases", "cases.csv", "--out", "metrics.csv", "--baseline", "off",
                "--sample-hz", "20", "--project", "gpu", cwd=d, env=env)
    assert p.returncode == 0, p.stderr
    out["gpu"] = d / "metrics.csv"
    return out


# A run written by hand, for exact cells: every column kind the report's tables meet — cells
# copied verbatim (an all-integer energy column), columns empty in every row (p99,
# param_unused), a parameter empty in the failed row only, a throttled case without reasons.
HAND_CSV = """\
case_id,status,run_seconds,p95,p99,throughput_rps,errors,ts_start,ts_end,backend,exit_code,\
message,violations,energy_raw_j,runs,thermal_throttle_detected,thermal_throttle_duration_sec,\
thermal_throttle_reasons,param_batch,param_mode,param_unused,threshold_p95
a,OK,0.500000,0.010000,,900,0,2026-01-02T03:04:05+09:00,2026-01-02T03:04:06+09:00,shell,0,,,\
419,2,1,0.250000,,1,fast,,
b,OK,2.000000,0.030000,,300,0,2026-01-02T03:04:06+09:00,2026-01-02T03:04:08+09:00,shell,0,,\
p95>0.025,1200,2,,,,2,slow,,0.025
c,FAIL,0.100000,,,,1,2026-01-02T03:04:08+09:00,2026-01-02T03:04:08+09:00,shell,1,exit code 1,\
,,,,,,,fast,,
"""
HAND_RUN_JSON = {
    "run_id": "20260102T030405-abcdef", "started": "2026-01-02T03:04:05+09:00",
    "ended": "2026-01-02T03:04:08+09:00", "cases_file": "my cases.csv", "srd_version": "0.1.0",
    "command_line": ["srd", "run", "--cases", "my cases.csv", "--out", "m.csv"],
    "options": {"out": "m.csv", "jobs": 1, "default_timeout_s": 600.0, "csv_safe": False,
                "junit": None, "telemetry": {"sample_hz": 20.0}},
    "summary": {"total": 3, "elapsed_s": 3.0450115, "interrupted": False},
    "environment": {"hostname": "box", "memory_mb": 24105.0625, "cpu_governor": None,
                    "packages": {"numpy": "2.4.6", "pandas": "3.1.1"}},
    "telemetry": {"mode": "off", "active": False},
}


def write_hand_run(base: Path) -> Path:
    """``base/m.csv`` (``HAND_CSV``) with ``base/m_run/run.json`` beside it; returns m.csv."""
    import json

    (base / "m_run").mkdir(parents=True)
    (base / "m_run" / "run.json").write_text(json.dumps(HAND_RUN_JSON), encoding="utf-8")
    (base / "m.csv").write_text(HAND_CSV, encoding="utf-8")
    return base / "m.csv"
