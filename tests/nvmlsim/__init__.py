"""A simulated NVML driver for the tests: build it, describe a scenario, know the ground truth.

``nvmlsim.c`` is compiled into a file named ``libnvidia-ml.so.1``; a process started with its
folder on ``LD_LIBRARY_PATH`` runs the real nvidia-ml-py against it (pynvml dlopens the library
at ``nvmlInit``, so the variable must be set before Python starts: run srd in a subprocess).

- :func:`build` compiles once per source hash into ``tests/_build/`` (git-ignored) and returns the
  folder to put on ``LD_LIBRARY_PATH``.
- :func:`sim_env` turns a scenario into the environment of such a subprocess.
- :class:`Profile` computes the simulator's power function and its exact integral, mirroring
  the C arithmetic, so tests compare srd's numbers with the ground truth.

Scenario variables (``sim_env`` keyword in brackets; times are seconds since T0; "pwl" is a
piecewise-linear list ``"t:v,t:v,..."`` where a step is two points at the same t, and the value
is constant before the first and after the last point):

``NVMLSIM_FAIL_INIT=1`` (fail_init=True)
    nvmlInit returns NVML_ERROR_DRIVER_NOT_LOADED.
``NVMLSIM_GPUS=N`` (gpus=N)
    Number of GPUs (default 1; ``profiles=[...]`` sets it to the number of profiles).
``NVMLSIM_T0=<epoch s>`` (t0=time.time())
    Origin of every profile (CLOCK_REALTIME); default: the process's first nvmlInit.
``NVMLSIM_ENERGY_RES_S=s`` (energy_res_s=0.01)
    The energy counter only advances at multiples of s (default 0.01).
``NVMLSIM_NO_EVENT_REASONS=1`` (no_event_reasons=True)
    nvmlDeviceGetCurrentClocksEventReasons is "function not found", like a pre-535 driver.
``NVMLSIM_LATENCY_S=s`` (latency_s=0.002)
    Every device call sleeps s seconds first, like a slow driver.

``build(variant="old")`` compiles a library that does not export nvmlDeviceGetFieldValues,
nvmlDeviceGetCurrentClocksEventReasons nor the MIG calls (an old driver: nvidia-ml-py raises
``NVMLError_FunctionNotFound`` when they are called).

Per GPU i (keyword ``gpu{i}_<name>``, e.g. ``gpu1_no_energy=True``):

``NVMLSIM_GPU{i}_POWER=pwl`` (or a :class:`Profile` via ``profiles=[...]``)
    Power in W; default a constant 60 W.
``NVMLSIM_GPU{i}_SPIKES="period_s:width_s:extra_w[:phase_s]"``
    Adds extra_w during [phase + k*period, phase + k*period + width) for every k >= 0.
``NVMLSIM_GPU{i}_AVG_WINDOW_S=s``
    nvmlDeviceGetPowerUsage is the mean over the trailing s seconds (default 1.0, Ampere-like;
    0 = instantaneous). The field NVML_FI_DEV_POWER_INSTANT is always instantaneous.
``NVMLSIM_GPU{i}_NO_ENERGY=1`` / ``NVMLSIM_GPU{i}_NO_INSTANT=1``
    No energy counter (NOT_SUPPORTED) / no instantaneous power field (NOT_SUPPORTED per field).
``NVMLSIM_GPU{i}_TEMP=pwl``
    Temperature in °C (default ``30 + 0.1 * power``, rounded).
``NVMLSIM_GPU{i}_THROTTLE="t0:t1:mask;t0:t1:mask"``
    Clock-event reason bits (real NVML values, see :data:`REASON_BITS`) active in [t0, t1).
``NVMLSIM_GPU{i}_MEM_USED_MB=pwl``
    Memory used in MiB (default ``1024 + 40 * util``; util is ``min(100, power / 7)`` rounded).
``NVMLSIM_GPU{i}_NAME=str`` / ``NVMLSIM_GPU{i}_MIG=0|1|na``
    Default ``NVIDIA H100 80GB HBM3`` / MIG disabled (``na``: not supported).
``NVMLSIM_GPU{i}_MIG_INSTANCES=n``
    With MIG enabled, n MIG devices (default 2, UUIDs :func:`mig_uuid`); their handles give a
    UUID, a name and the parent GPU, nothing to measure; the parent's utilisation is
    NOT_SUPPORTED, as NVML documents for MIG mode.
``NVMLSIM_GPU{i}_ENERGY_PERIOD_S=s`` / ``NVMLSIM_GPU{i}_ENERGY_PHASE_S=s``
    The counter updates at phase + k * period (default: ``ENERGY_RES_S``, phase 0), holding
    the energy up to that instant: real counters tick every 20-100 ms at a phase nobody
    controls.
``NVMLSIM_GPU{i}_ENERGY_RESET_AT=t`` / ``NVMLSIM_GPU{i}_ENERGY_FROZEN_AT=t``
    The counter restarts from 0 at t (a driver reload) / stops updating at t.
``NVMLSIM_GPU{i}_PCI_BUS=n``
    PCI bus number (default ``0x1b + 0x10 * i``): CUDA's ``PCI_BUS_ID`` order.
``NVMLSIM_GPU{i}_NO_PERMISSION=1``
    Opening the GPU (by index or UUID) is NVML_ERROR_NO_PERMISSION.
``NVMLSIM_GPU{i}_POWER_LIMIT_W=w`` / ``NVMLSIM_GPU{i}_CAPPED=1``
    The enforced power limit (default 700) / the SW power cap reason (0x4) is set whenever
    instantaneous power is within 1 W of the limit.
``NVMLSIM_GPU{i}_MODULE_EXTRA_W=w`` / ``NVMLSIM_GPU{i}_NO_GPU_SCOPE=1``
    A Grace Hopper-like module: module-scope power (field scopeId 1) and the energy counter
    include w more watts (CPU and memory) / GPU-scope power fields are NOT_SUPPORTED.

Fixed facts (constants below): 81559 MiB, UUID ``GPU-5151a000-0000-4000-8000-<12 hex digits of
i>``, driver 550.54.15, CUDA driver 12040 (12.4), power limit 700 W, SM clock 1980 MHz (1410 MHz
while a reason other than GPU idle is active), energy counter offset 5e8 mJ.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("nvmlsim.c")
LIB_NAME = "libnvidia-ml.so.1"
DEFAULT_BUILD_DIR = Path(__file__).resolve().parents[1] / "_build"
CFLAGS = ("-shared", "-fPIC", "-O2", "-ffp-contract=off", f"-Wl,-soname,{LIB_NAME}")

NAME = "NVIDIA H100 80GB HBM3"
VRAM_MB = 81559
DRIVER_VERSION = "550.54.15"
CUDA_DRIVER_VERSION = 12040
CUDA_VERSION = "12.4"
POWER_LIMIT_W = 700.0
SM_CLOCK_MHZ = 1980
SM_CLOCK_SLOWED_MHZ = 1410
ENERGY_OFFSET_MJ = 5e8
REASON_BITS = {
    "gpu_idle": 0x1, "applications_clocks": 0x2, "sw_power_cap": 0x4, "hw_slowdown": 0x8,
    "sync_boost": 0x10, "sw_thermal": 0x20, "hw_thermal": 0x40, "hw_power_brake": 0x80,
}


def uuid(i: int) -> str:
    """The simulated UUID of GPU ``i``."""
    return f"GPU-5151a000-0000-4000-8000-{i:012x}"


def mig_uuid(i: int, k: int) -> str:
    """The simulated UUID of MIG device ``k`` of GPU ``i``."""
    return f"MIG-5151a000-0000-4000-9000-{i:06x}{k:06x}"


VARIANTS = {"current": (), "old": ("-DNVMLSIM_OLD_DRIVER",)}


def build(out_dir: Path | None = None, variant: str = "current") -> Path:
    """Compile the simulator (once per source hash) and return the folder holding ``LIB_NAME``.

    ``variant``: ``current`` (every function) or ``old`` (a driver without field values,
    clock-event reasons nor MIG calls).

    Safe when several processes build at once: each compiles to its own temporary file and
    renames it into place. Raises ``RuntimeError`` when no C compiler is found or it fails.
    """
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_BUILD_DIR
    src = SOURCE.read_bytes()
    flags = (*CFLAGS, *VARIANTS[variant])
    key = hashlib.sha256(src + " ".join(flags).encode()).hexdigest()[:16]
    lib_dir = out_dir / f"nvmlsim-{key}"
    lib = lib_dir / LIB_NAME
    if lib.exists():
        return lib_dir
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise RuntimeError("nvmlsim: no C compiler (gcc/cc) found")
    lib_dir.mkdir(parents=True, exist_ok=True)
    tmp = lib_dir / f".{LIB_NAME}.{os.getpid()}.tmp"
    proc = subprocess.run([cc, *flags, "-o", str(tmp), str(SOURCE), "-lm", "-lpthread"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"nvmlsim: {cc} failed:\n{proc.stderr}")
    os.replace(tmp, lib)
    return lib_dir


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)  # round-trips exactly through strtod
    return str(v)


def sim_env(lib_dir: Path, *, profiles: Sequence[Profile] | None = None,
            cuda_visible_devices: str | None = None, **scenario: Any) -> dict[str, str]:
    """The full environment for a subprocess that should see the simulated GPUs.

    A copy of ``os.environ`` without inherited ``NVMLSIM_*`` variables, with ``lib_dir`` first on
    ``LD_LIBRARY_PATH`` and the scenario added: each keyword ``name=value`` becomes
    ``NVMLSIM_<NAME>`` (``gpus=2``, ``t0=...``, ``gpu0_no_energy=True``, ``gpu1_throttle="..."``;
    booleans become 1/0, floats keep every digit, ``None`` leaves the variable out).
    ``profiles`` sets ``NVMLSIM_GPUS`` (unless ``gpus`` is given) and each GPU's power and spikes.
    ``cuda_visible_devices`` sets ``CUDA_VISIBLE_DEVICES``; when it is not given but the caller's
    environment has one, it is set to every simulated GPU, so the result is right both as a
    whole environment and merged over ``os.environ``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NVMLSIM_")}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(lib_dir), env.get("LD_LIBRARY_PATH", "")) if p)
    values: dict[str, Any] = {}
    if profiles is not None:
        values["gpus"] = len(profiles)
        for i, p in enumerate(profiles):
            values[f"gpu{i}_power"] = p.power_env()
            values[f"gpu{i}_spikes"] = p.spikes_env()
    values.update(scenario)
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Profile):
            value = value.power_env()
        env["NVMLSIM_" + key.upper()] = _fmt(value)
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    elif "CUDA_VISIBLE_DEVICES" in env:
        n = int(env.get("NVMLSIM_GPUS", "1"))
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
    return env


@dataclass(frozen=True)
class Spikes:
    """``extra_w`` during [phase + k*period, phase + k*period + width) for every k >= 0."""

    period_s: float
    width_s: float
    extra_w: float
    phase_s: float = 0.0


class Profile:
    """One simulated GPU's power over time (seconds since T0): piecewise-linear plus spikes.

    Computes what the simulator reports, with the same arithmetic, so a test can predict a
    reading at a known time exactly and a window's energy to the last millijoule.
    """

    def __init__(self, points: Sequence[tuple[float, float]],
                 spikes: Spikes | tuple[float, ...] | None = None) -> None:
        if not points:
            raise ValueError("a profile needs at least one point")
        self.t = [float(t) for t, _ in points]
        self.v = [float(w) for _, w in points]
        if any(b < a for a, b in zip(self.t, self.t[1:], strict=False)):
            raise ValueError("profile times must not decrease")
        if spikes is not None and not isinstance(spikes, Spikes):
            spikes = Spikes(*spikes)
        if spikes is not None and spikes.width_s > spikes.period_s:
            spikes = Spikes(spikes.period_s, spikes.period_s, spikes.extra_w, spikes.phase_s)
        self.spikes = spikes
        self.cum = [0.0]
        for k in range(len(self.t) - 1):
            self.cum.append(self.cum[k] + 0.5 * (self.v[k] + self.v[k + 1])
                            * (self.t[k + 1] - self.t[k]))

    @classmethod
    def parse(cls, power: str, spikes: str | None = None) -> Profile:
        """From the environment strings (``"t:w,..."``, ``"period:width:extra[:phase]"``)."""
        pts = [tuple(float(x) for x in item.split(":")) for item in power.split(",") if item]
        sp = Spikes(*(float(x) for x in spikes.split(":"))) if spikes else None
        return cls([(t, w) for t, w in pts], sp)

    def power_env(self) -> str:
        return ",".join(f"{t!r}:{w!r}" for t, w in zip(self.t, self.v, strict=True))

    def spikes_env(self) -> str | None:
        s = self.spikes
        if s is None:
            return None
        return f"{s.period_s!r}:{s.width_s!r}:{s.extra_w!r}:{s.phase_s!r}"

    # -- the power function -------------------------------------------------------------------
    def _seg(self, t: float) -> int:
        return bisect.bisect_right(self.t, t) - 1  # last k with t[k] <= t

    def base_w(self, t: float) -> float:
        """The piecewise-linear part at ``t``."""
        T, V = self.t, self.v
        if t < T[0]:
            return V[0]
        if t >= T[-1]:
            return V[-1]
        k = self._seg(t)
        return V[k] + (V[k + 1] - V[k]) * ((t - T[k]) / (T[k + 1] - T[k]))

    def spike_w(self, t: float) -> float:
        s = self.spikes
        if s is None:
            return 0.0
        u = t - s.phase_s
        if u < 0.0:
            return 0.0
        r = u - math.floor(u / s.period_s) * s.period_s
        return s.extra_w if r < s.width_s else 0.0

    def power_w(self, t: float) -> float:
        """Instantaneous power in W at ``t`` (what NVML_FI_DEV_POWER_INSTANT reports, in W)."""
        return self.base_w(t) + self.spike_w(t)

    def _base_cum(self, t: float) -> float:
        T, V, C = self.t, self.v, self.cum
        if t <= T[0]:
            return V[0] * (t - T[0])
        if t >= T[-1]:
            return C[-1] + V[-1] * (t - T[-1])
        k = self._seg(t)
        dt = t - T[k]
        vt = V[k] + (V[k + 1] - V[k]) * (dt / (T[k + 1] - T[k]))
        return C[k] + 0.5 * (V[k] + vt) * dt

    def _spike_cum(self, t: float) -> float:
        s = self.spikes
        if s is None:
            return 0.0
        u = t - s.phase_s
        if u <= 0.0:
            return 0.0
        k = math.floor(u / s.period_s)
        r = u - k * s.period_s
        return s.extra_w * (k * s.width_s + min(r, s.width_s))

    def energy_since_t0_j(self, t: float) -> float:
        """Exact integral of power from 0 (T0) to ``t`` in J."""
        return ((self._base_cum(t) - self._base_cum(0.0))
                + (self._spike_cum(t) - self._spike_cum(0.0)))

    def energy_j(self, a: float, b: float) -> float:
        """Exact energy in J over the window [a, b]."""
        return self.energy_since_t0_j(b) - self.energy_since_t0_j(a)

    def avg_power_w(self, t: float, window_s: float = 1.0) -> float:
        """Mean power over [t - window_s, t] (what nvmlDeviceGetPowerUsage reports, in W)."""
        if window_s <= 0.0:
            return self.power_w(t)
        return (self.energy_since_t0_j(t) - self.energy_since_t0_j(t - window_s)) / window_s

    def counter_mj(self, t: float, res_s: float = 0.01, *, phase_s: float = 0.0,
                   reset_at: float | None = None, frozen_at: float | None = None,
                   module_extra_w: float = 0.0) -> int:
        """The simulated energy counter at ``t``: updated at ``phase_s + k * res_s`` with the
        energy up to then (of the module when ``module_extra_w``), restarted from 0 at
        ``reset_at``, stuck after ``frozen_at``."""
        if frozen_at is not None and t > frozen_at:
            t = frozen_at
        tq = phase_s + math.floor((t - phase_s) / res_s) * res_s if res_s > 0.0 else t

        def counted(x: float) -> float:
            return self.energy_since_t0_j(x) + module_extra_w * x

        if reset_at is not None and tq >= reset_at:
            mj = math.floor(1000.0 * (counted(tq) - counted(reset_at)))
        else:
            mj = math.floor(ENERGY_OFFSET_MJ + 1000.0 * counted(tq))
        return max(0, mj)

    # -- derived defaults -----------------------------------------------------------------------
    def util_pct(self, t: float) -> int:
        return _round(min(100.0, self.power_w(t) / 7.0))

    def temp_c(self, t: float) -> int:
        return _round(30.0 + 0.1 * self.power_w(t))

    def mem_used_mb(self, t: float) -> float:
        return 1024.0 + 40.0 * self.util_pct(t)

    def breakpoints(self, a: float, b: float) -> list[float]:
        """Every time in [a, b] where the power function has a kink or a jump, plus a and b.

        Between consecutive breakpoints power is linear, so the trapezoidal rule over them is
        exact: an independent check of :meth:`energy_j`.
        """
        pts = {a, b, *(t for t in self.t if a < t < b)}
        s = self.spikes
        if s is not None:
            k = max(0, math.floor((a - s.phase_s) / s.period_s))
            while True:
                start = s.phase_s + k * s.period_s
                if start > b:
                    break
                pts.update(x for x in (start, start + s.width_s) if a < x < b)
                k += 1
        return sorted(pts)


def _round(x: float) -> int:
    """floor(x + 0.5), clamped at 0: the simulator's rounding (not Python's banker's round)."""
    return max(0, math.floor(x + 0.5))
