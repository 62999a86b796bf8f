"""A background sampler of GPU telemetry with per-case measurement windows.

One thread samples every GPU at ``hz`` for the whole campaign. ``begin_window(key)`` /
``end_window(key) -> Window`` bracket what a case measures (zeus' measurement windows):
reusing an open key or ending an unknown one is an error. Energy comes from the GPU's
millijoule counter when it has one, each edge of the window pinned to the counter's next
update (``edges``: the sampler thread polls for the update after the beginning while the
case runs; ``end_window`` waits for the one after the end, at most a few counter periods):
``counter``. Without a counter, or when the counter fails its checks (reset, frozen, far off
the integrated power), from trapezoidal integration of the sampled power (``sampled``), with
the reason. Statistics are accumulated as samples arrive, so they are exact
however long a case runs; the kept time series is bounded (``max_series``): when full it is
thinned to every second sample, keeping an even coverage of the whole window.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from doerunner.telemetry.edges import POLL_S, Edge, window_energy_j
from doerunner.telemetry.gpu import GpuSample, now
from doerunner.telemetry.throttle import CAUSES, causes

MAX_SERIES_DEFAULT = 20_000
EDGE_WAIT_DEFAULT_S = 0.5
"""How long an edge waits for the counter's update when its period is unknown (s)."""


class Device(Protocol):
    """What the sampler needs of a GPU (``gpu.GpuDevice`` or a test double)."""

    has_energy_counter: bool
    has_instant_power: bool

    def sample(self) -> GpuSample: ...

    def power_w(self) -> float | None: ...

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
    energy_begin_mj: int | None = None  # the counter read at the edges
    energy_end_mj: int | None = None
    begin: Edge | None = None    # the edges pinned to the counter's updates
    end: Edge | None = None
    counter_j: float | None = None  # the counter's energy, when it passed its checks
    fallback: str | None = None  # why the counter was not used
    samples: int = 0
    power_sum_w: float = 0.0
    power_n: int = 0
    power_peak_w: float | None = None
    util_sum_pct: float = 0.0
    util_n: int = 0
    mem_peak_mb: float | None = None
    temp_max_c: float | None = None
    throttle_s: float = 0.0      # any named slowdown reason active
    cause_s: list[float] = field(default_factory=lambda: [0.0] * len(CAUSES))
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
        return "counter" if self.counter_j is not None else "sampled"

    @property
    def energy_j(self) -> float:
        return self.counter_j if self.counter_j is not None else self.trapz_j

    @property
    def power_mean_w(self) -> float | None:
        return self.power_sum_w / self.power_n if self.power_n else None

    @property
    def util_mean_pct(self) -> float | None:
        return self.util_sum_pct / self.util_n if self.util_n else None

    def add(self, s: GpuSample, throttle_bits: int, max_series: int) -> None:
        if s.t < self.t_begin:
            return  # read before the window opened, added after
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
                for k in causes(hit):
                    self.cause_s[k] += s.t - last.t
        self._last = s
        self._skipped += 1
        if self._skipped >= self._stride:
            self._skipped = 0
            self.series.append(s)
            if len(self.series) >= max_series:
                del self.series[1::2]
                self._stride *= 2


def _edge_read(d: Device) -> tuple[float, int | None, float | None, float]:
    """The counter and the power, each with the middle of its call as its time (a slow
    driver's call takes milliseconds): ``(t, counter_mj, power_w, t_power)``."""
    t0 = now()
    c = d.energy_mj()
    t1 = now()
    p = d.power_w()
    t2 = now()
    return 0.5 * (t0 + t1), c, p, 0.5 * (t1 + t2)


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
        self._wake = threading.Event()  # a window began: its edge wants polling now
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.samples_taken = 0
        # Above 10 Hz only power and throttle reasons are read every tick; the slow-moving
        # readings are refreshed at 10 Hz (keeps 100 Hz sampling cheap).
        self._full_every = max(1, round(hz / 10))
        self._last: list[GpuSample] = []
        # Each device's counter update period (s), when measured (``measure_periods``).
        self.counter_period_s: list[float | None] = [None] * len(devices)

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
        self._wake.set()
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
                # While a window's beginning waits for the counter's update, poll it often.
                while not self._stop.is_set() and (left := next_t - time.monotonic()) > 2e-4:
                    if self._poll_edges():
                        time.sleep(min(left, POLL_S))
                    elif self._wake.wait(min(left, 0.1)):
                        self._wake.clear()
                if not self._stop.is_set():
                    self._sample_all()
                    self._poll_edges()  # at least once a pass, even when behind
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

    def _poll_edges(self) -> bool:
        """Feed the beginnings still waiting for their counter's update one read each (one
        read per GPU); True while any waits."""
        with self._lock:
            devices = {w.index for ws in self._windows.values() for w in ws
                       if w.begin is not None and not w.begin.done}
        if not devices:
            return False
        # NVML is read outside the lock (a hung call must not block every slot's windows);
        # the edges are fed under it, only for windows still open.
        reads = {i: _edge_read(self.devices[i]) for i in sorted(devices)}
        with self._lock:
            for ws in self._windows.values():
                for w in ws:
                    if w.begin is None or w.begin.done or w.index not in reads:
                        continue
                    self._feed(w.begin, w.index, reads[w.index])
        return True

    def _feed(self, edge: Edge, i: int,
              read: tuple[float, int | None, float | None, float]) -> None:
        """One read of device ``i`` for ``edge``; it gives up past its time limit."""
        t, c, p, tp = read
        if not edge.feed(t, c, p, tp) and t - edge.t > self._edge_wait(i):
            edge.give_up(t - edge.t)

    def _edge_wait(self, i: int) -> float:
        """How long an edge on device ``i`` waits for an update: three periods."""
        p = self.counter_period_s[i]
        return EDGE_WAIT_DEFAULT_S if p is None else max(3.0 * p, 0.05)

    def measure_periods(self, limit_s: float = 1.0, intervals: int = 5) -> list[float | None]:
        """Measure each counter's update period: the median gap between the changes seen
        while polling every ``POLL_S`` for at most ``limit_s`` (or ``intervals`` gaps).
        None for a device without a counter or one that did not change. Call before
        ``start``."""
        changes: list[list[float]] = [[] for _ in self.devices]
        last: list[int | None] = [d.energy_mj() if d.has_energy_counter else None
                                  for d in self.devices]
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            busy = False
            for i, d in enumerate(self.devices):
                if last[i] is None or len(changes[i]) > intervals:
                    continue
                busy = True
                c = d.energy_mj()
                if c is not None and c != last[i]:
                    changes[i].append(time.monotonic())
                    last[i] = c
            if not busy:
                break
            time.sleep(POLL_S)
        for i, ts in enumerate(changes):
            gaps = sorted(b - a for a, b in itertools.pairwise(ts))
            self.counter_period_s[i] = gaps[len(gaps) // 2] if gaps else None
        return list(self.counter_period_s)

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
            if w.energy_begin_mj is not None:
                w.begin = Edge(s.t, w.energy_begin_mj, s.power_w)
            elif d.has_energy_counter:
                w.fallback = "the energy counter could not be read at the beginning"
            w.add(s, self.throttle_bits, self.max_series)
            windows.append(w)
        with self._lock:
            self._windows[key] = windows
        if any(w.begin is not None for w in windows):
            self._wake.set()

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
            if w.begin is not None:
                w.energy_end_mj = s.energy_mj
                w.end = Edge(s.t, s.energy_mj, s.power_w) if s.energy_mj is not None else None
        self._resolve(windows)
        return windows

    def _resolve(self, windows: list[GpuWindow]) -> None:
        """Wait for the counter's update after each window's end (and beginning, when it
        has not come yet), then check the counter's energy or fall back with a reason."""
        for w in windows:
            if w.begin is not None and w.end is None:
                w.fallback = "the energy counter could not be read at the end"
        pending = [w for w in windows if w.begin is not None and w.end is not None]
        while True:
            waiting = [w for w in pending
                       if not (w.end.done and w.begin.done)]  # type: ignore[union-attr]
            if not waiting:
                break
            reads: dict[int, tuple[float, int | None, float | None, float]] = {}
            for w in waiting:
                if w.index not in reads:
                    reads[w.index] = _edge_read(self.devices[w.index])
                for edge in (w.begin, w.end):
                    assert edge is not None
                    self._feed(edge, w.index, reads[w.index])
            time.sleep(POLL_S)
        for w in pending:
            energy, why = window_energy_j(w.begin, w.end,  # type: ignore[arg-type]
                                          w.duration_s)
            if energy is not None:
                why = self._implausible(w, energy)
            if why is None:
                w.counter_j = energy
            else:
                w.fallback = why

    def _implausible(self, w: GpuWindow, energy_j: float) -> str | None:
        """A reason to distrust the counter: on a window of a second or more, its energy
        is less than half or more than twice the integral of the instantaneous power."""
        d = self.devices[w.index]
        if not d.has_instant_power or w.duration_s < 1.0 or w.trapz_j <= 0.0:
            return None
        info = getattr(d, "info", None)
        if getattr(d, "power_scope", "gpu") != getattr(info, "energy_scope", "gpu"):
            return None  # power at GPU scope, a counter over the whole module: not comparable
        ratio = energy_j / w.trapz_j
        if 0.5 <= ratio <= 2.0:
            return None
        return (f"the energy counter says {energy_j:.1f} J but the sampled power integrates "
                f"to {w.trapz_j:.1f} J")
