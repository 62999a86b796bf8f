"""Time series: ``timeseries/<case_id>.json`` per case and the flat ``timeseries.csv``
(two ``OutputFormat``s).

The JSON file holds a summary header (power mean/min/max, memory max, temperature mean/max,
throttle sample count) and compact samples with short keys (``t`` seconds since the case's
first sample, ``g`` GPU index, ``p`` power W, ``mem_mb``, ``sm_pct`` utilisation %,
``temp_c``, ``clk_mhz`` SM clock, ``throttle`` reason bitmask; absent when not read), and
``host``: the case's process tree looked at the same rate (``t``, ``cpu_pct`` % of one core
since the look before, ``rss_mb``, ``threads``, ``rapl_w`` host CPU + DRAM power).
``timeseries.csv`` has one row per sample per GPU — the dashboard-friendly shape:
``case_id,gpu,timestamp,t_s,power_w,mem_used_mb,util_pct,temp_c,sm_clock_mhz,throttle``,
then the host rows (``gpu`` = ``host``: the case's process tree, sampled at the same rate)
with ``cpu_pct,rss_mb,threads,rapl_power_w`` (the GPU rows leave those four empty, the host
rows the GPU ones).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from doerunner.cells import round_half_away
from doerunner.outputs.base import OutputFormat
from doerunner.telemetry.gpu import GpuSample

CSV_COLUMNS = ("case_id", "gpu", "timestamp", "t_s", "power_w", "mem_used_mb", "util_pct",
               "temp_c", "sm_clock_mhz", "throttle", "cpu_pct", "rss_mb", "threads",
               "rapl_power_w")
HOST_KEYS = (("cpu_pct", 2), ("rss_mb", 2), ("threads", None), ("rapl_w", 2))
SAMPLE_KEYS = (("p", "power_w"), ("mem_mb", "mem_used_mb"), ("sm_pct", "util_pct"),
          ("temp_c", "temp_c"), ("clk_mhz", "sm_clock_mhz"), ("throttle", "throttle"))


def case_document(case_id: str, series: Sequence[tuple[int, GpuSample]], sample_hz: float,
                  throttle_bits: int,
                  host: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON document of one case: ``series`` holds ``(gpu index, sample)`` pairs,
    ``host`` the process tree's samples (``t`` epoch s, ``cpu_pct``, ``rss_mb``, ``threads``,
    ``rapl_w``), written as ``host`` with ``t`` from the document's ``t0``."""
    t0 = min([s.t for _, s in series] + [h["t"] for h in host or ()], default=0.0)
    powers = [s.power_w for _, s in series if s.power_w is not None]
    temps = [s.temp_c for _, s in series if s.temp_c is not None]
    mems = [s.mem_used_mb for _, s in series if s.mem_used_mb is not None]
    summary = {
        "samples": len(series),
        "power_mean_w": sum(powers) / len(powers) if powers else None,
        "power_min_w": min(powers, default=None),
        "power_max_w": max(powers, default=None),
        "mem_max_mb": max(mems, default=None),
        "temp_mean_c": sum(temps) / len(temps) if temps else None,
        "temp_max_c": max(temps, default=None),
        "throttle_samples": sum(1 for _, s in series if (s.throttle or 0) & throttle_bits),
    }
    samples = []
    for g, s in series:
        d: dict[str, Any] = {"t": round(s.t - t0, 4), "g": g}
        for short, name in SAMPLE_KEYS:
            v = getattr(s, name)
            if v is not None:
                d[short] = v
        samples.append(d)
    doc = {"case_id": case_id, "t0": t0, "sample_hz": sample_hz,
           "gpus": sorted({g for g, _ in series}), "summary": summary, "samples": samples}
    if host:
        doc["host"] = [{"t": round(h["t"] - t0, 4),
                        **{k: h[k] for k, _ in HOST_KEYS if h.get(k) is not None}}
                       for h in host]
    return doc


class CaseTimeseries(OutputFormat):
    """``timeseries/<case_id>.json``: one case's document (``case_document``), compact."""

    NAME = "timeseries.json"

    def write(self, data: dict[str, Any], stream: IO[str]) -> None:
        json.dump(data, stream, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SampleTable:
    """What ``timeseries.csv`` is written from: case documents (in order) and the timezone
    of the ``timestamp`` column."""

    docs: Iterable[dict[str, Any]]
    tz: tzinfo


class TimeseriesCsv(OutputFormat):
    """``timeseries.csv``: every sample of every document, one flat row per sample and GPU."""

    NAME = "timeseries.csv"

    def write(self, data: SampleTable, stream: IO[str]) -> None:
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        gpu_blank = [""] * len(SAMPLE_KEYS)
        host_blank = [""] * len(HOST_KEYS)
        for doc in data.docs:
            t0 = doc["t0"]
            for s in doc["samples"]:
                ts = datetime.fromtimestamp(t0 + s["t"], data.tz).isoformat(
                    timespec="milliseconds")
                w.writerow([doc["case_id"], s["g"], ts, f"{s['t']:.4f}",
                            *("" if s.get(k) is None else s[k] for k, _ in SAMPLE_KEYS),
                            *host_blank])
            for h in doc.get("host", ()):  # the process tree's samples: gpu "host"
                ts = datetime.fromtimestamp(t0 + h["t"], data.tz).isoformat(
                    timespec="milliseconds")
                w.writerow([doc["case_id"], "host", ts, f"{h['t']:.4f}", *gpu_blank,
                            *(_host_cell(h.get(k), places) for k, places in HOST_KEYS)])


def _host_cell(value: Any, places: int | None) -> str:
    if value is None:
        return ""
    return str(value) if places is None else round_half_away(value, places)


def read_case(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
