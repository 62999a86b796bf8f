"""A background sampler of GPU telemetry with per-case measurement windows.

One thread samples every GPU at ``hz`` for the whole campaign. ``begin_window(key)`` /
``end_window(key) -> Window`` bracket what a case measures (zeus' measurement windows):
reusing an open key or ending an unknown one is an error. Energy comes from the GPU's
millijoule counter when it has one (read synchronously at both ends of the window, so it does
not depend on the sampling rate: ``counter``), else from trapezoidal integration of the
sampled power (``sampled``). Statistics are accumulated as samples arrive, so they are exact
however long a case runs; the kept time series is bounded (``max_series``): when full it is
thinned to every second sample, keeping an even coverage of the whole window.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from doerunner.telemetry.gpu import GpuSample

MAX_SERIES_DEFAULT = 20_000


class Device(Protocol):
    """What the sampler needs of a GPU (``gpu.GpuDevice`` or a test double)."""

    has_energy_counter: bool

    def sample(self) -> GpuSample: ...

    def sample_quick(self, prev: GpuSample) -> GpuSample: ...

    def energy_mj(self) -> int | None: ...


class SamplerError(Exception):
    """Misuse of the sampler: a reused or unknown window key, or a sampler that won't start."""


@dataclass(slots=True)
class GpuWindow:
    """What one window saw on one GPU. Powers in W, energy in J, times in s."""

    index: int
    t_begin: float
    t_end: float = 0.0
    energy_begin_mj: int | None = None
    energy_end_mj: int | None = None
    samples: int = 0
    power_sum_w: float = 0.0
    power_n: int = 0
    power_peak_w: float | None = None
    util_sum_pct: float = 0.0
    util_n: int = 0
    mem_peak_mb: float | None = None
    temp_max_c: float | None = None
    throttle_s: float = 0.0
    throttle_mask: int = 0
    trapz_j: float = 0.0
    _last: GpuSample | None = None
    series: list[GpuSample] = field(default_factory=list)
    _stride: int = 1
    _skipped: int = 0

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_begin

    @property
    def energy_method(self) -> str:
        return "counter" if self.energy_begin_mj is not None and \
            self.energy_end_mj is not None else "sampled"

    @property
    def energy_j(self) -> float:
        if self.energy_method == "counter":
            return (self.energy_end_mj - self.energy_begin_mj) / 1000.0  # type: ignore[operator]
        return self.trapz_j

    @property
    def power_mean_w(self) -> float | None:
        return self.power_sum_w / self.power_n if self.power_n else None

    @property
    def util_mean_pct(self) -> float | None:
        return self.util_sum_pct / self.util_n if self.util_n else None

    def add(self, s: GpuSample, throttle_bits: int, max_series: int) -> None:
        self.samples += 1
        last = self._last
        if s.power_w is not None:
            self.power_sum_w += s.power_w
            self.power_n += 1
            if self.power_peak_w is None or s.power_w > self.power_peak_w:
                self.power_peak_w = s.power_w
            if last is not None and last.power_w is not None:
                self.trapz_j += 0.5 * (s.power_w + last.power_w) * (s.t - last.t)
        if s.util_pct is not None:
            self.util_sum_pct += s.util_pct
            self.util_n += 1
        if s.mem_used_mb is not None and (self.mem_peak_mb is None or s.mem_used_mb >
                                          self.mem_peak_mb):
            self.mem_peak_mb = s.mem_used_mb
        if s.temp_c is not None and (self.temp_max_c is None or s.temp_c > self.temp_max_c):
            self.temp_max_c = s.temp_c
        if s.throttle:
            hit = s.throttle & throttle_bits
            self.throttle_mask |= hit
            if hit and last is not None:
                self.throttle_s += s.t - last.t
        self._last = s
        self._skipped += 1
        if self._skipped >= self._stride:
            self._skipped = 0
            self.series.append(s)
            if len(self.series) >= max_series:
                del self.series[1::2]
                self._stride *= 2


class Sampler:
    """Samples ``devices`` every ``1/hz`` seconds in a daemon thread.

    Use as a context manager (``start``/``stop``). ``throttle_bits`` selects which reason bits
    count as throttling for ``GpuWindow.throttle_s``.
    """

    def __init__(self, devices: list[Device], hz: float = 10.0, *, throttle_bits: int = 0,
                 max_series: int = MAX_SERIES_DEFAULT) -> None:
        if not 0 < hz <= 1000:
            raise ValueError("hz must be in (0, 1000]")
        self.devices = devices
        self.period_s = 1.0 / hz
        self.throttle_bits = throttle_bits
        self.max_series = max_series
        self._windows: dict[str, list[GpuWindow]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.samples_taken = 0
        # Above 10 Hz only power and throttle reasons are read every tick; the slow-moving
        # readings are refreshed at 10 Hz (keeps 100 Hz sampling cheap).
        self._full_every = max(1, round(hz / 10))
        self._last: list[GpuSample] = []

    # -- life --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 5.0) -> Sampler:
        """Start the thread and wait until it has taken its first round of samples."""
        if self._thread is not None:
            raise SamplerError("sampler already started")
        self._thread = threading.Thread(target=self._loop, name="srd-sampler", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise SamplerError(f"the sampler did not start within {timeout_s:g} s")
        if self._error is not None:
            raise SamplerError(f"the sampler failed: {self._error}")
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        try:
            next_t = time.monotonic()
            self._sample_all()
            self._ready.set()
            while not self._stop.is_set():
                next_t += self.period_s
                now = time.monotonic()
                if next_t < now:  # fell behind (a slow NVML call): don't burst to catch up
                    next_t = now
                # time.sleep costs a third of Event.wait per wake-up (~50 vs ~130 us), which
                # matters at 100 Hz; sleeping in slices of <= 0.1 s keeps stop() prompt.
                while not self._stop.is_set() and (left := next_t - time.monotonic()) > 2e-4:
                    time.sleep(min(left, 0.1))
                if not self._stop.is_set():
                    self._sample_all()
        except BaseException as e:  # reported through start() and end_window()
            self._error = e
            self._ready.set()

    def _sample_all(self) -> None:
        if self.samples_taken % self._full_every == 0 or not self._last:
            samples = [d.sample() for d in self.devices]
        else:
            samples = [d.sample_quick(p) for d, p in zip(self.devices, self._last, strict=True)]
        self._last = samples
        self.samples_taken += 1
        with self._lock:
            for windows in self._windows.values():
                for w in windows:
                    w.add(samples[w.index], self.throttle_bits, self.max_series)

    # -- windows -----------------------------------------------------------------------------
    def begin_window(self, key: str, gpus: list[int] | None = None) -> None:
        """Open window ``key`` on the GPUs at positions ``gpus`` (default: all)."""
        idx = list(range(len(self.devices))) if gpus is None else gpus
        with self._lock:
            if key in self._windows:
                raise SamplerError(f"window {key!r} is already open")
            self._windows[key] = []
        windows = []
        for i in idx:
            d = self.devices[i]
            s = d.sample()
            w = GpuWindow(i, s.t, energy_begin_mj=s.energy_mj if d.has_energy_counter else None)
            w.add(s, self.throttle_bits, self.max_series)
            windows.append(w)
        with self._lock:
            self._windows[key] = windows

    def end_window(self, key: str) -> list[GpuWindow]:
        """Close window ``key``: one ``GpuWindow`` per GPU, with a final synchronous sample."""
        with self._lock:
            windows = self._windows.pop(key, None)
        if windows is None:
            raise SamplerError(f"no open window {key!r}")
        if self._error is not None:
            raise SamplerError(f"the sampler failed: {self._error}")
        for w in windows:
            d = self.devices[w.index]
            s = d.sample()
            w.add(s, self.throttle_bits, self.max_series)
            w.t_end = s.t
            if w.energy_begin_mj is not None:
                w.energy_end_mj = s.energy_mj
        return windows
