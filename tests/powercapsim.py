"""A simulated ``/sys/class/powercap`` tree for the RAPL tests (``SRD_POWERCAP_ROOT``).

``build(root, ...)`` lays out the folders a two-socket Intel server shows: packages
``intel-rapl:0`` and ``intel-rapl:1`` with ``core`` and ``dram`` sub-zones, a ``psys`` zone
(which srd must not add to the packages) and an ``intel-rapl-mmio:0`` copy of package 0
(which it must not read). ``Advancer`` is a thread that writes each counter's
``energy_uj`` from a constant power per zone, wrapping at ``max_energy_range_uj`` as real
counters do, every ``period_s``; ``energy_j(zone, a, b)`` is the exact energy between two
``time.monotonic()`` instants, what the tests compare srd's figures with.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# folder, name, watts
ZONES = (("intel-rapl:0", "package-0", 40.0), ("intel-rapl:0:0", "core", 25.0),
         ("intel-rapl:0:1", "dram", 6.0), ("intel-rapl:1", "package-1", 30.0),
         ("intel-rapl:1:0", "core", 18.0), ("intel-rapl:1:1", "dram", 4.0),
         ("intel-rapl:2", "psys", 90.0), ("intel-rapl-mmio:0", "package-0", 40.0))


def build(root: Path, max_range_j: float = 50.0) -> Path:
    """The tree under ``root`` (counters at 0); ``root``."""
    for folder, name, _ in ZONES:
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text(f"{int(max_range_j * 1e6)}\n")
        (d / "energy_uj").write_text("0\n")
        (d / "enabled").write_text("1\n")
    return root


@dataclass
class Advancer:
    """Writes the counters from their constant power, every ``period_s``."""

    root: Path
    max_range_j: float = 50.0
    period_s: float = 0.002
    t0: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Advancer:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        max_uj = int(self.max_range_j * 1e6)
        while not self._stop.is_set():
            now = time.monotonic() - self.t0
            for folder, _, watts in ZONES:
                path = self.root / folder / "energy_uj"
                tmp = path.with_suffix(".tmp")
                tmp.write_text(f"{int(watts * now * 1e6) % max_uj}\n")
                tmp.replace(path)  # a reader never sees a half-written number
            time.sleep(self.period_s)

    def energy_j(self, folder: str, a: float, b: float) -> float:
        """The exact energy of zone ``folder`` between monotonic instants ``a`` and ``b``."""
        watts = next(w for f, _, w in ZONES if f == folder)
        return watts * (b - a)
