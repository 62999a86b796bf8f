"""CPU and DRAM energy through RAPL, read from the Linux powercap interface (FORMAT.md §3,
"Host columns").

``/sys/class/powercap/intel-rapl:<n>`` is a CPU package (``name`` ``package-<n>``; AMD's
RAPL driver uses the same tree) with sub-zones ``intel-rapl:<n>:<m>`` for its ``core``,
``uncore`` and, on servers, ``dram``; ``psys`` (the whole platform, on laptops) is a
top-level zone too. ``energy_uj`` counts microjoules and wraps to 0 after
``max_energy_range_uj``. The CPU energy is the sum of the packages (core and uncore are
inside them, psys overlaps them: neither is added), the DRAM energy the sum of the ``dram``
sub-zones. The ``intel-rapl-mmio`` tree repeats the packages through another interface and
is not read.

Since the PLATYPUS fix (CVE-2020-8694, Linux 5.10 and the stable kernels of November 2020)
``energy_uj`` is readable by root only; in a VM or on a CPU without the driver the tree is
absent. Both are a notice, never an error: the columns are then empty.

A counter wraps every few minutes (a 32-bit counter: 65.5 kJ at Intel's default unit, 18 min
at 60 W; an AMD part's turbostat reports 234 s at 280 W): a daemon thread reads the counters
at least twice per wrap at ``MAX_WATTS`` (every ``POLL_S`` at most) and adds the deltas up,
so a window of any length is exact; a window reads the running totals at its edges.

``SRD_POWERCAP_ROOT`` points srd at another tree (the tests' simulated one).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT_VAR = "SRD_POWERCAP_ROOT"
DEFAULT_ROOT = "/sys/class/powercap"
POLL_S = 10.0  # at most this long between two reads (seconds)
ROOT_ONLY = "is readable by root only"  # the note of a RAPL that exists but is refused
MAX_WATTS = 1000.0  # no zone draws more: the fastest a counter can wrap (as Zeus assumes)


@dataclass(frozen=True, slots=True)
class Zone:
    """One counter: its folder, ``kind`` (``cpu`` for a package, ``dram``), the wrap
    range in microjoules."""

    path: Path
    name: str
    kind: str
    max_uj: int

    @property
    def counter(self) -> str:
        """The ``energy_uj`` file, as a string (read on every window edge)."""
        return os.path.join(self.path, "energy_uj")


def _read_int(path: Path | str) -> int:
    """An integer file of sysfs (os.open/read: ~3 us, a third of ``Path.read_text``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def find_zones(root: str | os.PathLike[str] | None = None) -> tuple[list[Zone], str | None]:
    """The package and DRAM zones under ``root`` (default ``$SRD_POWERCAP_ROOT``, else
    ``/sys/class/powercap``), each readable now; or no zone and the reason (a notice)."""
    base = Path(root or os.environ.get(ROOT_VAR) or DEFAULT_ROOT)
    try:
        names = sorted(p.name for p in base.iterdir() if p.name.startswith("intel-rapl:"))
    except OSError:
        return [], f"no RAPL: {base} cannot be read (a VM, or no RAPL driver)"
    zones: list[Zone] = []
    unreadable: list[str] = []
    for entry in names:
        folder = base / entry
        try:
            name = (folder / "name").read_text().strip()
        except OSError:
            continue
        depth = entry.count(":")
        if depth == 1 and name.startswith("package"):
            kind = "cpu"
        elif depth == 2 and name == "dram":
            kind = "dram"
        else:
            continue  # core and uncore are inside their package; psys overlaps them
        try:
            max_uj = _read_int(folder / "max_energy_range_uj")
            _read_int(folder / "energy_uj")
            if max_uj <= 0:
                continue  # no range to wrap at: the counter cannot be trusted
        except PermissionError:
            unreadable.append(entry)
            continue
        except (OSError, ValueError):
            continue
        zones.append(Zone(folder, name, kind, max_uj))
    if unreadable and not zones:
        return [], (f"no RAPL: {base}/{unreadable[0]}/energy_uj {ROOT_ONLY} (since the "
                    "PLATYPUS fix, CVE-2020-8694)")
    if not zones:
        return [], f"no RAPL: {base} has no package zone"
    return zones, None


class Rapl:
    """Running totals of the zones' energy in joules, kept exact across wraps by a daemon
    thread (``start``/``close``). ``totals()`` reads the counters now."""

    def __init__(self, zones: list[Zone], poll_s: float | None = None) -> None:
        self.zones = zones
        self._lock = threading.Lock()
        self._last: list[int | None] = [None] * len(zones)
        self._joules = [0.0] * len(zones)
        self.unreadable: set[str] = set()
        self.failures = 0  # reads that failed: a window that saw one has no exact energy
        self._counters = [z.counter for z in zones]
        if poll_s is None:  # twice per wrap at MAX_WATTS, within [10 ms, POLL_S]
            fastest = min(z.max_uj for z in zones) / 1e6 / MAX_WATTS if zones else POLL_S
            poll_s = min(POLL_S, max(0.01, fastest / 2))
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="srd-rapl", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            self._poll()

    def _poll(self) -> None:
        counters = self._counters
        with self._lock:
            for i, z in enumerate(self.zones):
                try:
                    now = _read_int(counters[i])
                except (OSError, ValueError):
                    self.unreadable.add(z.name)
                    self.failures += 1
                    continue
                last = self._last[i]
                if last is not None:
                    delta = now - last
                    if delta < 0:  # wrapped past max_energy_range_uj (as Zeus counts it)
                        delta += z.max_uj
                    self._joules[i] += delta / 1e6
                self._last[i] = now

    def totals(self) -> dict[str, float]:
        """Joules since the start, per kind (``cpu``, ``dram``), read now (a counter that
        cannot be read keeps its total; ``failures`` counts such reads)."""
        self._poll()
        out: dict[str, float] = {}
        with self._lock:
            for z, j in zip(self.zones, self._joules, strict=True):
                out[z.kind] = out.get(z.kind, 0.0) + j
        return out
