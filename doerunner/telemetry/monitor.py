"""GPU telemetry for a whole run: the GPUs, the sampler, the baseline, the environment, and
per-execution measurement windows turned into the ``energy_*``, ``gpu_*`` and ``thermal_*``
metrics (SI units: J, W, s, MiB, °C). Nothing here formats."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from doerunner.telemetry.baseline import Baseline, resolve
from doerunner.telemetry.environment import env_columns, gpu_environment, host_environment
from doerunner.telemetry.gpu import Gpus, GpuSample
from doerunner.telemetry.options import TelemetryOptions
from doerunner.telemetry.sampler import GpuWindow, Sampler
from doerunner.telemetry.throttle import CAUSES, THERMAL_BITS, THROTTLE_MASK, throttle_names

COOLDOWN_MARGIN_C = 2.0
COOLDOWN_MAX_S = 300.0


@dataclass(slots=True)
class Measured:
    """What one execution's window produced: row metrics, run.json details, samples."""

    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    series: list[tuple[int, GpuSample]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Monitor:
    """Keeps a sampler running on opened GPUs for the whole run (``start``/``close``; it
    closes the GPUs too) and turns measurement windows into metrics."""

    def __init__(self, opts: TelemetryOptions, gpus: Gpus) -> None:
        self.opts = opts
        self.gpus: Gpus | None = gpus
        self.sampler: Sampler | None = None
        self.baseline = Baseline()
        self.env: dict[str, Any] = {}
        self.info: dict[str, Any] = {"mode": opts.mode, "active": False}
        self.idle_temps_c: list[float | None] = []
        self._seq = 0
        self._seq_lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.sampler is not None

    def start(self) -> Monitor:
        """Resolve the baseline (it may measure idle power), record the environment and
        start sampling."""
        assert self.gpus is not None
        devices = self.gpus.devices
        uuids = [d.info.uuid for d in devices]
        first = [d.sample() for d in devices]
        self.idle_temps_c = [s.temp_c for s in first]
        self.baseline = resolve(self.opts.baseline.kind, devices, uuids,
                                watts=self.opts.baseline.watts,
                                ttl_s=self.opts.baseline_ttl_s,
                                duration_s=self.opts.baseline_duration_s)
        host = host_environment()
        gpu_env = gpu_environment(self.gpus, devices, self.idle_temps_c)
        self.env = env_columns(host, gpu_env)
        self.sampler = Sampler(devices, self.opts.sample_hz, throttle_bits=THROTTLE_MASK)
        periods = self.sampler.measure_periods()
        self.sampler.start()
        self.info.update({
            "active": True, "sample_hz": self.opts.sample_hz, "environment": gpu_env,
            "counter_period_s": dict(zip(uuids, periods, strict=True)),
            "power_scope": {d.info.uuid: d.power_scope for d in devices},
            "energy_scope": {d.info.uuid: d.info.energy_scope for d in devices},
            "baseline": {"method": self.baseline.method, "power_w": self.baseline.power_w,
                         "age_s": self.baseline.age_s,
                         "measured_at": self.baseline.measured_at},
            "carbon_g_per_kwh": self.opts.carbon_g_per_kwh,
            "price_per_kwh": self.opts.price_per_kwh,
        })
        return self

    def baseline_status(self) -> str:
        """One line for the start of a run."""
        b = self.baseline
        if b.method == "none":
            return "energy baseline: none (energy_adjusted_j stays empty)"
        watts = ", ".join(f"{w:.1f} W" for w in b.power_w.values())
        age = f", {b.age_s / 60:.0f} min old" if b.method == "cached" and b.age_s else ""
        return f"energy baseline: {b.method} ({watts}{age})"

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None
        if self.gpus is not None:
            self.gpus.close()
            self.gpus = None

    # -- per execution ---------------------------------------------------------------------
    @contextlib.contextmanager
    def window(self, case_id: str, gpus: list[int] | None = None) -> Iterator[Measured]:
        """Measure the block on the GPUs at positions ``gpus`` (default: all); the yielded
        ``Measured`` is filled when the block ends (also when it raises)."""
        out = Measured()
        if self.sampler is None:
            yield out
            return
        with self._seq_lock:  # cases may run side by side (--per-gpu)
            self._seq += 1
            key = f"{case_id}#{self._seq}"
        self.sampler.begin_window(key, gpus)
        try:
            yield out
        finally:
            windows = self.sampler.end_window(key)
            self._fill(out, windows)

    def _fill(self, out: Measured, windows: list[GpuWindow]) -> None:
        assert self.gpus is not None
        devices = self.gpus.devices
        uuids = [devices[w.index].info.uuid for w in windows]
        raw = sum(w.energy_j for w in windows)
        duration = max(w.duration_s for w in windows)
        methods = {w.energy_method for w in windows}
        method = "counter" if methods == {"counter"} else "sampled"
        base_w = self.baseline.total_w(uuids)
        kwh = raw / 3.6e6
        mask = 0
        for w in windows:
            mask |= w.throttle_mask
        # Mean power: the energy over the window where a counter measured it (exact), the
        # mean of the samples otherwise.
        means = [w.energy_j / w.duration_s if w.energy_method == "counter" and w.duration_s > 0
                 else w.power_mean_w for w in windows]
        means = [m for m in means if m is not None]
        peaks = [w.power_peak_w for w in windows if w.power_peak_w is not None]
        utils = [w.util_mean_pct for w in windows if w.util_mean_pct is not None]
        mems = [w.mem_peak_mb for w in windows if w.mem_peak_mb is not None]
        temps = [w.temp_max_c for w in windows if w.temp_max_c is not None]
        share = {name: max((100.0 * w.cause_s[k] / w.duration_s if w.duration_s > 0 else 0.0)
                           for w in windows) for k, (name, _) in enumerate(CAUSES)}
        thermal_s = max(w.cause_s[0] for w in windows)
        out.metrics.update({
            "energy_raw_j": raw,
            "energy_adjusted_j": max(0.0, raw - base_w * duration) if base_w is not None
            else None,
            "energy_baseline_w": base_w,
            "energy_baseline_method": self.baseline.method,
            "energy_method": method,
            "energy_co2_g": kwh * self.opts.carbon_g_per_kwh,
            "energy_cost_usd": kwh * self.opts.price_per_kwh,
            "gpu_power_mean_w": sum(means) if means else None,
            "gpu_power_peak_w": sum(peaks) if peaks else None,
            "gpu_util_mean_pct": sum(utils) / len(utils) if utils else None,
            "gpu_mem_peak_mb": sum(mems) if mems else None,
            "gpu_samples": sum(w.samples for w in windows),
            "gpu_count": len(windows),
            # Thermal only (sw/hw thermal): power capping and hw slowdown have their own.
            "thermal_throttle_detected": bool(mask & THERMAL_BITS),
            "thermal_throttle_duration_sec": thermal_s,
            "thermal_throttle_reasons": ";".join(throttle_names(mask)),
            "thermal_throttle_pct": share["thermal"],
            "gpu_power_capped_pct": share["power"],
            "gpu_hw_slowdown_pct": share["hw_slowdown"],
            "thermal_max_temp_c": max(temps) if temps else None,
        })
        out.details = {
            "window_s": duration, "energy_method": method,
            "gpus": [{"index": devices[w.index].info.index, "uuid": uuids[n],
                      "visible_as": devices[w.index].info.token or uuids[n],
                      "t_begin": w.t_begin, "t_end": w.t_end, "energy_j": w.energy_j,
                      "energy_method": w.energy_method,
                      "counter_mj": [w.energy_begin_mj, w.energy_end_mj],
                      "counter_updates": [e.tick_t if e is not None else None
                                          for e in (w.begin, w.end)],
                      "energy_fallback": w.fallback,
                      "samples": w.samples}
                     for n, w in enumerate(windows)],
        }
        for w in windows:
            if w.fallback:
                msg = (f"GPU {devices[w.index].info.index}: energy from sampled power, not the "
                       f"counter: {w.fallback}")
                out.warnings.append(msg)
                out.details.setdefault("warnings", []).append(msg)
        if self.opts.timeseries:
            for w in windows:
                out.series.extend((devices[w.index].info.index, s) for s in w.series)

    # -- between cases -------------------------------------------------------------------------
    def cooldown(self, cancel: Any) -> float:
        """Wait per ``--cooldown`` before a case; returns the seconds waited. ``auto``: until
        every GPU is within 2 °C of its temperature at the start of the run (at most 300 s)."""
        mode = self.opts.cooldown
        if mode.kind == "off" or self.gpus is None:
            return 0.0
        t0 = time.monotonic()
        if mode.kind == "wait":
            cancel.wait(mode.seconds)
            return time.monotonic() - t0
        while time.monotonic() - t0 < COOLDOWN_MAX_S:
            temps = [d.sample().temp_c for d in self.gpus.devices]
            if all(t is None or i is None or t <= i + COOLDOWN_MARGIN_C
                   for t, i in zip(temps, self.idle_temps_c, strict=True)):
                break
            if cancel.wait(0.5):
                break
        return time.monotonic() - t0

