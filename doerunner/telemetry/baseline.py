"""Idle ("baseline") GPU power: measured, cached per GPU UUID with a TTL, or given.

``energy_adjusted_j = max(0, raw - baseline_w × duration)`` removes what the GPUs would have
drawn anyway (ML.ENERGY's practice): raw energy over-states a workload's cost by the idle draw,
15-30% for short or light cases. The baseline is measured on an idle GPU: measuring while
something else runs on it over-states the baseline and under-states adjusted energy.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from doerunner.outputs.atomic import atomic_open
from doerunner.paths import srd_home

DEFAULT_TTL_S = 3600.0
DEFAULT_DURATION_S = 30.0


class IdleDevice(Protocol):
    has_energy_counter: bool

    def energy_mj(self) -> int | None: ...

    def power_w(self) -> float | None: ...


@dataclass(slots=True)
class Baseline:
    """Idle power per GPU UUID (W) and where it came from: ``measured``, ``cached``,
    ``given`` or ``none``. ``age_s`` is the age of a cached value, in seconds."""

    power_w: dict[str, float] = field(default_factory=dict)
    method: str = "none"
    age_s: float | None = None
    measured_at: float | None = None  # epoch seconds

    def total_w(self, uuids: Sequence[str]) -> float | None:
        """The summed baseline of these GPUs, None when any of them has none."""
        if self.method == "none" or any(u not in self.power_w for u in uuids):
            return None
        return sum(self.power_w[u] for u in uuids)


def cache_path() -> Path:
    """``<srd home>/baseline.json`` (see ``doerunner.paths.srd_home``)."""
    return srd_home() / "baseline.json"


def load_cache(path: Path | None = None) -> dict[str, dict[str, float]]:
    """The cache: ``{uuid: {"power_w": W, "measured_at": epoch_s, "duration_s": s}}``.
    A missing or unreadable cache is empty (it is only a cache)."""
    try:
        data = json.loads((path or cache_path()).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and "power_w" in v
            and "measured_at" in v} if isinstance(data, dict) else {}


def save_cache(entries: dict[str, dict[str, float]], path: Path | None = None) -> None:
    p = path or cache_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    merged = load_cache(p)
    merged.update(entries)
    with atomic_open(p, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1, sort_keys=True)


def measure(devices: Sequence[IdleDevice], duration_s: float, *, hz: float = 10.0,
            sleep: Callable[[float], None] = time.sleep) -> list[float]:
    """Mean idle power of each device over ``duration_s`` seconds, in W.

    With an energy counter the mean is the counter's difference over the elapsed time (exact);
    otherwise the mean of power readings at ``hz``."""
    # Each counter read is timed by the midpoint of the clock readings around it, so a
    # descheduled srd does not stretch the interval the energy is divided by.
    e0: list[int | None] = []
    t_e0: list[float] = []
    for d in devices:
        a = time.monotonic()
        e0.append(d.energy_mj() if d.has_energy_counter else None)
        t_e0.append((a + time.monotonic()) / 2)
    t0 = time.monotonic()
    sums = [0.0] * len(devices)
    counts = [0] * len(devices)
    while True:
        for i, d in enumerate(devices):
            if e0[i] is None:
                p = d.power_w()
                if p is not None:
                    sums[i] += p
                    counts[i] += 1
        left = duration_s - (time.monotonic() - t0)
        if left <= 0:
            break
        sleep(min(1.0 / hz, left))
    out = []
    for i, d in enumerate(devices):
        a = time.monotonic()
        e1 = d.energy_mj() if e0[i] is not None else None
        elapsed = (a + time.monotonic()) / 2 - t_e0[i]
        if e0[i] is not None and e1 is not None and elapsed > 0:
            out.append((e1 - e0[i]) / 1000.0 / elapsed)  # type: ignore[operator]
        else:
            out.append(sums[i] / counts[i] if counts[i] else float("nan"))
    return out


def resolve(mode: str, devices: Sequence[IdleDevice], uuids: Sequence[str], *,
            watts: float | None = None, ttl_s: float = DEFAULT_TTL_S,
            duration_s: float = DEFAULT_DURATION_S, path: Path | None = None,
            now: float | None = None) -> Baseline:
    """The baseline for a run. ``mode``: ``off``; ``auto`` (the cache when every GPU has a
    fresh entry, else measure and cache); ``measure`` (always measure and cache); ``given``
    (``watts`` per GPU)."""
    now = time.time() if now is None else now
    if mode == "off":
        return Baseline()
    if mode == "given" and watts is not None:
        return Baseline({u: watts for u in uuids}, "given")
    if mode not in ("auto", "measure"):
        raise ValueError(f"baseline mode {mode!r} (watts {watts!r}): use auto, measure, off "
                         "or given with watts")
    if mode == "auto":
        cache = load_cache(path)
        entries = [cache.get(u) for u in uuids]
        if entries and all(e is not None and now - e["measured_at"] <= ttl_s for e in entries):
            oldest = min(e["measured_at"] for e in entries)  # type: ignore[index]
            return Baseline({u: e["power_w"] for u, e in zip(uuids, entries, strict=True)},
                            "cached", now - oldest, oldest)
    powers = measure(devices, duration_s)
    with contextlib.suppress(OSError):  # a read-only home only costs the cache
        save_cache({u: {"power_w": p, "measured_at": now, "duration_s": duration_s}
                    for u, p in zip(uuids, powers, strict=True)}, path)
    return Baseline(dict(zip(uuids, powers, strict=True)), "measured", 0.0, now)
