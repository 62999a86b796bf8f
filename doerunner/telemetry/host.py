"""Host-wide figures of one execution's window (FORMAT.md §3, "Host columns"): the network
bytes of every interface but loopback (``/proc/net/dev``: no per-process source works
unprivileged), and the CPU and DRAM energy through RAPL (``telemetry.rapl``), with
``energy_total_j`` = GPU + CPU + DRAM where any host part is measured. Both are the whole
host's: with cases side by side (``--jobs``) each window counts the others too.

One ``HostMeter`` per process and powercap tree (``host_meter()``), shared by every slot:
its RAPL thread reads the counters often enough to see every wrap.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from doerunner.telemetry.rapl import ROOT_ONLY, ROOT_VAR, Rapl, find_zones

MB = 1 << 20
_NET_DEV = "/proc/net/dev"


_net_fd: int | None = None


def network_table() -> bytes | None:
    """``/proc/net/dev`` as the kernel writes it now (one descriptor kept open, read with
    ``pread``: ~2 us); None when it cannot be read."""
    global _net_fd
    try:
        if _net_fd is None:
            _net_fd = os.open(_NET_DEV, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(_net_fd, 65536, 0)
    except OSError:
        return None


def network_bytes(table: bytes | None = None) -> int | None:
    """Bytes received and sent by every interface but ``lo`` since boot (from ``table``,
    else read now); None when ``/proc/net/dev`` cannot be read."""
    data = network_table() if table is None else table
    if data is None:
        return None
    total = 0
    for line in data.split(b"\n")[2:]:
        name, sep, counters = line.partition(b":")
        if not sep or name.strip() == b"lo":
            continue
        fields = counters.split()
        if len(fields) >= 9:
            total += int(fields[0]) + int(fields[8])
    return total


@dataclass(frozen=True, slots=True)
class Mark:
    """A window's start: network bytes, RAPL totals (J by kind), monotonic time."""

    net: bytes | None  # the /proc/net/dev table (parsed only when it changed)
    energy: dict[str, float]
    failures: int  # RAPL reads that had failed when the window began


class HostMeter:
    """The host-wide figures of windows; ``rapl`` is None (with ``rapl_note`` saying why)
    where RAPL cannot be read."""

    def __init__(self, rapl: Rapl | None, rapl_note: str | None) -> None:
        self.rapl = rapl
        self.rapl_note = rapl_note

    def begin(self) -> Mark:
        rapl = self.rapl
        return Mark(network_table(), rapl.totals() if rapl else {}, rapl.failures if rapl else 0)

    def end(self, mark: Mark, metrics: dict[str, Any], carbon_g_per_kwh: float,
            price_per_kwh: float, own: frozenset[str] = frozenset(),
            gpu_measured: bool = False) -> None:
        """Add the window's host-wide columns to ``metrics``; ``own``: the names the backend
        reported itself (they win). With RAPL read through the whole window,
        ``energy_total_j`` = ``energy_raw_j`` (the GPUs) + ``cpu_energy_j`` +
        ``dram_energy_j``, and ``energy_co2_g`` and ``energy_cost_usd`` follow it — unless
        GPUs were measured (``gpu_measured``) and their energy is missing: then no total. A
        RAPL read that failed during the window leaves the energy columns empty."""
        table = network_table()
        if table is not None and mark.net is not None and "network_io_mb" not in own:
            moved = 0 if table == mark.net else max(
                0, (network_bytes(table) or 0) - (network_bytes(mark.net) or 0))
            metrics["network_io_mb"] = moved / MB
        rapl = self.rapl
        if rapl is None:
            return
        now = rapl.totals()
        if rapl.failures != mark.failures:
            return  # a counter went unreadable meanwhile: its energy is not known
        parts: dict[str, float] = {}
        for kind, column in (("cpu", "cpu_energy_j"), ("dram", "dram_energy_j")):
            if column not in own and kind in now and kind in mark.energy:
                metrics[column] = now[kind] - mark.energy[kind]
            if isinstance(metrics.get(column), (int, float)):
                parts[column] = float(metrics[column])
        gpu = metrics.get("energy_raw_j")
        if not parts or (gpu_measured and not isinstance(gpu, (int, float))):
            return
        if "energy_total_j" not in own:
            metrics["energy_total_j"] = sum(parts.values()) + (gpu if gpu_measured else 0.0)
        kwh = float(metrics["energy_total_j"]) / 3.6e6
        if "energy_co2_g" not in own:
            metrics["energy_co2_g"] = kwh * carbon_g_per_kwh
        if "energy_cost_usd" not in own:
            metrics["energy_cost_usd"] = kwh * price_per_kwh

    def rapl_joules(self) -> float | None:
        """The host's CPU and DRAM energy so far (J), for the host series; None without
        RAPL."""
        return sum(self.rapl.totals().values()) if self.rapl is not None else None

    @property
    def rapl_refused(self) -> bool:
        """RAPL is there, but its counters are root's: worth telling (absent is not)."""
        return self.rapl is None and ROOT_ONLY in (self.rapl_note or "")

    def info(self) -> dict[str, Any]:
        """run.json's ``host``: the RAPL zones read, or why none."""
        if self.rapl is None:
            return {"rapl": None, "rapl_note": self.rapl_note}
        return {"rapl": [{"zone": z.path.name, "name": z.name, "kind": z.kind}
                         for z in self.rapl.zones],
                "energy_total": "energy_raw_j (GPU) + cpu_energy_j + dram_energy_j"}


def measures_host(plan_mode: str, telemetry: str, slots: int) -> bool:
    """Whether this process takes host-wide windows (network, RAPL) for a plan: only when one
    case runs at a time — cases side by side (``--jobs``, ``--per-gpu``, Dask workers, which
    may share a host) would each count the whole host — and not with telemetry off."""
    return telemetry != "off" and plan_mode != "remote" and slots <= 1


_meters: dict[str, HostMeter] = {}
_lock = threading.Lock()


def host_meter() -> HostMeter:
    """This process's meter for the powercap tree in force (``$SRD_POWERCAP_ROOT``), made
    once; its RAPL thread is a daemon."""
    root = os.environ.get(ROOT_VAR, "")
    with _lock:
        meter = _meters.get(root)
        if meter is None:
            zones, note = find_zones(root or None)
            rapl = Rapl(zones) if zones else None
            if rapl is not None:
                rapl.start()
            meter = _meters[root] = HostMeter(rapl, note)
        return meter
