"""NVIDIA GPUs through NVML (nvidia-ml-py), behind small classes.

Everything that touches ``pynvml`` lives in this module. Callers never see a ``pynvml.NVMLError``:
:func:`_call` turns one into :class:`TelemetryError` (the only place that does), and
:func:`_read` turns one into ``None`` for a single reading that failed. ``pynvml`` is imported on
first use, so ``srd --help`` does not pay for it.

What is read how, and why:
- Power: the field ``NVML_FI_DEV_POWER_INSTANT`` where the GPU has it, because on Ampere and newer
  ``nvmlDeviceGetPowerUsage`` is a 1-second average that smears short windows; else that average.
- Energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer). A
  window's energy is the counter's difference, far better than integrating sampled power. The
  counter advances every ~10-100 ms, so a shorter window can read 0.
- Optional features (energy counter, instant power, temperature/throttle API generations) are
  probed once at open; a feature the GPU lacks is never called again.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doerunner.errors import DoerunnerError
from doerunner.telemetry import visible as _visible_mod

_EPOCH_OFFSET = time.time() - time.monotonic()


def now() -> float:
    """Epoch seconds that advance with the monotonic clock: durations between two of them
    are immune to the system clock being set, and they still read as dates."""
    return time.monotonic() + _EPOCH_OFFSET


class TelemetryError(DoerunnerError):
    """GPU telemetry cannot run: NVML missing or failing, or no GPU matches (exit 4).

    Raised to the user only when telemetry was demanded (``--telemetry on``); in ``auto`` the
    caller reports the message once and runs without GPU telemetry.
    """

    exit_code = 4


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """Static facts about one GPU, read once at open."""

    index: int                  # NVML index (not the CUDA ordinal under CUDA_VISIBLE_DEVICES)
    uuid: str
    name: str
    vram_mb: float              # total memory, MiB
    power_limit_w: float | None  # enforced power limit
    mig_mode: str | None        # "enabled" / "disabled" / None when unsupported
    token: str = ""             # how CUDA_VISIBLE_DEVICES names it for a case (UUID or MIG id)
    mig_instance: bool = False  # the case gets one MIG instance: the GPU's energy is shared
    energy_scope: str = "gpu"   # what the energy counter covers: "gpu" or "module" (GH200)


@dataclass(slots=True)
class GpuSample:
    """One reading of one GPU. A field that could not be read is ``None``."""

    t: float                    # epoch seconds (``now()``) just before the power reading
    power_w: float | None       # instantaneous when supported, else NVML's (averaged) power
    energy_mj: int | None       # the total-energy counter (mJ), None without one
    mem_used_mb: float | None
    util_pct: float | None
    temp_c: float | None
    sm_clock_mhz: float | None
    throttle: int | None        # clock-event/throttle reason bitmask


# ---------------------------------------------------------------------------------------------
# pynvml access: lazy import, and the one place its errors are translated.

class _NotLoaded(Exception):
    """Stands in for pynvml.NVMLError until pynvml is imported (so nothing else is caught)."""


_nv: Any = None
_NVMLError: type[Exception] = _NotLoaded  # pynvml.NVMLError once loaded
_UNSUPPORTED: frozenset[int] = frozenset()
_VALUE_ATTRS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


def _nvml() -> Any:
    global _nv, _NVMLError, _UNSUPPORTED
    if _nv is None:
        try:
            import pynvml
        except ImportError as e:
            raise TelemetryError(
                "GPU telemetry needs nvidia-ml-py (pip install nvidia-ml-py)") from e
        _NVMLError = pynvml.NVMLError
        _UNSUPPORTED = frozenset((
            pynvml.NVML_ERROR_NOT_SUPPORTED,
            pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
            pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH,
            pynvml.NVML_ERROR_INVALID_ARGUMENT,
        ))
        _nv = pynvml
    return _nv


_HINTS = {
    12: "libnvidia-ml.so.1 not found; is the NVIDIA driver installed?",  # LIBRARY_NOT_FOUND
    9: "the NVIDIA kernel driver is not loaded",                        # DRIVER_NOT_LOADED
    4: "insufficient permissions",                                      # NO_PERMISSION
    15: "the GPU is lost (fell off the bus?)",                          # GPU_IS_LOST
    18: "the NVML library does not match the kernel driver",            # LIB_RM_VERSION_MISMATCH
}


def _call(doing: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; a ``pynvml.NVMLError`` becomes ``TelemetryError("cannot DOING: reason")``."""
    try:
        return fn(*args)
    except _NVMLError as e:
        code = getattr(e, "value", None)
        reason = _HINTS.get(code) if isinstance(code, int) else None
        raise TelemetryError(f"cannot {doing}: {reason or e} (NVML error {code})") from e


def _read(fn: Callable[[], Any] | None) -> Any:
    """One reading that may fail on its own: ``None`` when unsupported or when NVML errs."""
    if fn is None:
        return None
    try:
        return fn()
    except _NVMLError:
        return None


def _probe(*readers: Callable[[], Any] | None) -> Callable[[], Any] | None:
    """The first reader this GPU supports (tried once, now); ``None`` when none is.

    A reader that fails with anything but "not supported" is kept: a transient failure at open
    must not switch a feature off for the whole run.
    """
    for read in readers:
        if read is None:
            continue
        try:
            read()
        except _NVMLError as e:
            if getattr(e, "value", None) in _UNSUPPORTED:
                continue
        return read
    return None


# ---------------------------------------------------------------------------------------------
# Devices


class GpuDevice:
    """One open GPU. ``sample()`` is cheap (about 7 NVML calls) and never raises for one field."""

    __slots__ = ("_energy", "_mem", "_power", "_sm_clock", "_temp", "_throttle", "_util",
                 "has_energy_counter", "has_instant_power", "info", "power_scope",
                 "throttle_api")

    def __init__(self, handle: Any, info: GpuInfo) -> None:
        nv = _nvml()
        h = handle
        self.info = info

        def field_reader(field_id: int, scope: int = 0) -> Callable[[], Any] | None:
            # pynvml's nvmlDeviceGetFieldValues builds a ctypes array and raises and catches
            # a TypeError on every call; at 100 Hz that was a third of the sampler's cost. The
            # request is built once here and reused, under a lock (the sampler thread and the
            # window's synchronous reads may ask at the same time).
            import ctypes
            import threading

            values = (nv.c_nvmlFieldValue_t * 1)()
            values[0].fieldId = field_id
            values[0].scopeId = scope
            try:  # an old driver has no field values at all (FunctionNotFound)
                fn = nv._nvmlGetFunctionPointer("nvmlDeviceGetFieldValues")
            except _NVMLError:
                return None
            count, ref, check = ctypes.c_int32(1), ctypes.byref(values), nv._nvmlCheckReturn
            lock = threading.Lock()

            def read() -> Any:
                with lock:
                    check(fn(h, count, ref))
                    v = values[0]
                    if v.nvmlReturn != 0:
                        raise _NVMLError(v.nvmlReturn)
                    kind = v.valueType
                    return getattr(v.value, _VALUE_ATTRS[kind] if kind < len(_VALUE_ATTRS)
                                   else "uiVal")
            return read

        def instant_at(scope: int) -> Callable[[], float] | None:
            read = field_reader(nv.NVML_FI_DEV_POWER_INSTANT, scope)
            return None if read is None else lambda: read() / 1000.0

        # Power is read at the scope the energy counter covers, so that power and energy
        # describe the same thing: on a Grace Hopper module both include the CPU and memory.
        # Module scope falls back to GPU scope where the driver has none (before R535).
        gpu_instant = instant_at(0)
        module_instant = instant_at(1) if info.energy_scope == "module" else None
        def average() -> float:
            return nv.nvmlDeviceGetPowerUsage(h) / 1000.0

        self._power = _probe(module_instant, gpu_instant, average)
        self.has_instant_power = self._power is not None and self._power is not average
        self.power_scope = "module" if self._power is not None and \
            self._power is module_instant else "gpu"
        self._energy = _probe(lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h))
        self.has_energy_counter = self._energy is not None
        self._mem = _probe(lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 1048576.0)
        self._util = _probe(lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu))
        gpu_sensor = nv.NVML_TEMPERATURE_GPU
        self._temp = _probe(
            lambda: float(nv.nvmlDeviceGetTemperature(h, gpu_sensor)),
            (lambda: float(nv.nvmlDeviceGetTemperatureV(h, gpu_sensor)))
            if hasattr(nv, "nvmlDeviceGetTemperatureV") else None)
        sm = nv.NVML_CLOCK_SM
        self._sm_clock = _probe(lambda: float(nv.nvmlDeviceGetClockInfo(h, sm)))
        # "Clocks event reasons" is the current name (driver 535+); older drivers only have
        # "throttle reasons". Same bits either way.
        self.throttle_api: str | None = None
        self._throttle: Callable[[], Any] | None = None
        for name in ("nvmlDeviceGetCurrentClocksEventReasons",
                     "nvmlDeviceGetCurrentClocksThrottleReasons"):
            fn = getattr(nv, name, None)
            reader = None if fn is None else _probe(lambda fn=fn: fn(h))
            if reader is not None:
                self.throttle_api, self._throttle = name, reader
                break

    def sample(self) -> GpuSample:
        """Read everything once. A field NVML cannot give right now is ``None``."""
        t = now()
        return GpuSample(t, _read(self._power), _read(self._energy), _read(self._mem),
                         _read(self._util), _read(self._temp), _read(self._sm_clock),
                         _read(self._throttle))

    def sample_quick(self, prev: GpuSample) -> GpuSample:
        """Power and clock-event reasons only (2 NVML calls instead of 7); the slow-moving
        readings (memory, utilisation, temperature, clock) are carried over from ``prev``.
        For sampling above 10 Hz, where the full read would cost more than it tells."""
        t = now()
        return GpuSample(t, _read(self._power), None, prev.mem_used_mb, prev.util_pct,
                         prev.temp_c, prev.sm_clock_mhz, _read(self._throttle))

    def energy_mj(self) -> int | None:
        """The total-energy counter in mJ, or ``None`` (no counter, or the read failed)."""
        return _read(self._energy)

    def power_w(self) -> float | None:
        """Power in W: instantaneous when supported, else NVML's (on Ampere+ 1-s averaged)."""
        return _read(self._power)

    def __repr__(self) -> str:
        return f"GpuDevice({self.info.index}, {self.info.name!r}, {self.info.uuid})"


# Superchips whose energy counter covers the whole module (GPU + CPU + memory), as the Zeus
# maintainers found on GH200 (ml-energy/zeus#172): Grace Hopper and Grace Blackwell.
_MODULE_COUNTER_NAMES = ("GH200", "GB200", "GB300")


def _open_device(handle: Any, index: int, uuid: str, seen: _visible_mod.Visible) -> GpuDevice:
    nv = _nvml()
    name = _call(f"read the name of GPU {index}", nv.nvmlDeviceGetName, handle)
    total = _call(f"read the memory of GPU {index}", nv.nvmlDeviceGetMemoryInfo, handle).total
    limit_mw = _read(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(handle))
    if limit_mw is None:
        limit_mw = _read(lambda: nv.nvmlDeviceGetPowerManagementLimit(handle))
    mig = _read(lambda: nv.nvmlDeviceGetMigMode(handle))
    info = GpuInfo(
        index=index, uuid=uuid, name=name, vram_mb=total / 1048576.0,
        power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
        mig_mode=None if mig is None else
        ("enabled" if mig[0] == nv.NVML_DEVICE_MIG_ENABLE else "disabled"),
        token=seen.token, mig_instance=seen.mig,
        energy_scope="module" if any(m in name.upper() for m in _MODULE_COUNTER_NAMES)
        else "gpu",
    )
    return GpuDevice(handle, info)


class Gpus:
    """The GPUs opened for a run; a context manager around nvmlInit ... nvmlShutdown.

    A ``Gpus`` without devices is the null object used when no GPU can be read: ``unavailable``
    then says why (see :func:`open_gpus_or_null`).
    """

    def __init__(self, devices: list[GpuDevice], driver_version: str | None = None,
                 cuda_version: str | None = None, *, unavailable: str | None = None,
                 initialised: bool = False, notes: list[str] | None = None) -> None:
        self.devices = devices
        self.notes = notes or []  # what the user should know (GPUs that could not be opened)
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.unavailable = unavailable
        self._initialised = initialised

    def close(self) -> None:
        """Shut NVML down (once). Devices must not be sampled after this."""
        if self._initialised:
            self._initialised = False
            _read(_nvml().nvmlShutdown)

    def __enter__(self) -> Gpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gpus({self.devices!r}, driver={self.driver_version}, cuda={self.cuda_version})"


def open_gpus(select: str | None = None) -> Gpus:
    """Initialise NVML and open the selected visible GPUs.

    ``select``: ``None`` (or ``"all"``) for every visible GPU, or ``"0,1"``: positions in the
    visible list. Without ``CUDA_VISIBLE_DEVICES`` the visible GPUs are those NVML can open,
    in NVML's (nvidia-smi's) order; with it, the GPUs it names as CUDA reads it (see
    ``visible``: indices by CUDA's order, UUIDs, a MIG instance mapped to its GPU).

    Raises :class:`TelemetryError` with a one-line reason when NVML is missing or fails, or no
    GPU matches.
    """
    if sys.platform.startswith("linux") and _nv is None:
        # Machines without a driver are common: find out with one dlopen instead of
        # importing pynvml first (~25 ms of every run's start-up).
        import ctypes

        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError:
            raise TelemetryError(f"cannot initialise NVML: {_HINTS[12]} (NVML error 12)") \
                from None
    nv = _nvml()
    _call("initialise NVML", nv.nvmlInit)
    try:
        count = _call("count the GPUs", nv.nvmlDeviceGetCount)
        handles, table = _enumerate(count)
        cvd = os.environ.get(_visible_mod.CUDA_VISIBLE_DEVICES)
        try:
            seen, notes = _visible_mod.visible(
                cvd, table, os.environ.get(_visible_mod.CUDA_DEVICE_ORDER), _mig_parent)
        except ValueError as e:
            raise TelemetryError(str(e)) from None
        chosen = _select(select, seen)
        devices = [_open_device(handles[v.index], v.index, table[v.index].uuid or "", v)
                   for v in chosen]
        driver = _read(nv.nvmlSystemGetDriverVersion)
        cuda = _read(nv.nvmlSystemGetCudaDriverVersion)
        if cuda is None:
            cuda = _read(nv.nvmlSystemGetCudaDriverVersion_v2)
    except BaseException:
        _read(nv.nvmlShutdown)
        raise
    return Gpus(devices, driver, None if cuda is None else f"{cuda // 1000}.{cuda % 1000 // 10}",
                initialised=True, notes=notes)


def _enumerate(count: int) -> tuple[list[Any], list[_visible_mod.Physical]]:
    """Every GPU NVML counts: its handle (None when refused) and what can be read of it. A
    GPU we may not open (container device rules, permissions) must not stop the others."""
    nv = _nvml()
    handles: list[Any] = []
    table = []
    for i in range(count):
        try:
            h = nv.nvmlDeviceGetHandleByIndex(i)
        except _NVMLError as e:
            code = getattr(e, "value", None)
            handles.append(None)
            why = _HINTS.get(code) if isinstance(code, int) else None
            table.append(_visible_mod.Physical(i, refused=f"{why or e}, NVML error {code}"))
            continue
        handles.append(h)
        pci = _read(lambda h=h: nv.nvmlDeviceGetPciInfo(h))
        bus = getattr(pci, "busId", None) if pci is not None else None
        table.append(_visible_mod.Physical(
            i, _read(lambda h=h: nv.nvmlDeviceGetUUID(h)),
            _read(lambda h=h: nv.nvmlDeviceGetName(h)),
            bus.decode() if isinstance(bus, bytes) else bus))
    return handles, table


def _mig_parent(mig_uuid: str) -> int | None:
    """The NVML index of the GPU a MIG instance (``MIG-<uuid>``) belongs to; None when NVML
    does not know it (or the driver has no MIG calls)."""
    nv = _nvml()
    return _read(lambda: nv.nvmlDeviceGetIndex(nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
        nv.nvmlDeviceGetHandleByUUID(mig_uuid))))


def discover(mode: str, select: str | None = None) -> tuple[Gpus | None, str | None]:
    """The GPUs a run measures, opened: ``(gpus, None)``. ``mode`` is the telemetry mode:
    ``off`` gives ``(None, None)``; in ``auto`` a failure gives ``(None, reason)``; in
    ``on`` it raises ``TelemetryError``. ``select`` as in :func:`open_gpus`."""
    if mode == "off":
        return None, None
    try:
        gpus = open_gpus(select)
    except TelemetryError as e:
        if mode == "on":
            raise
        return None, str(e)
    return gpus, None


def open_gpus_or_null(select: str | None = None) -> Gpus:
    """Like :func:`open_gpus`, but a failure gives an empty ``Gpus`` whose ``unavailable`` says
    why (for ``--telemetry auto``)."""
    try:
        return open_gpus(select)
    except TelemetryError as e:
        return Gpus([], unavailable=str(e))


def _select(select: str | None,
            visible: list[_visible_mod.Visible]) -> list[_visible_mod.Visible]:
    cvd = os.environ.get(_visible_mod.CUDA_VISIBLE_DEVICES)
    if not visible:
        why = ("NVML found no GPU" if cvd is None else
               "CUDA_VISIBLE_DEVICES is empty" if not cvd.strip() else
               f"CUDA_VISIBLE_DEVICES={cvd} names no GPU")
        raise TelemetryError(f"no GPU visible: {why}")
    if select is None or select.strip().lower() in ("", "all"):
        return list(visible)
    chosen: list[_visible_mod.Visible] = []
    for tok in select.split(","):
        tok = tok.strip()
        if not tok.isdigit() or int(tok) >= len(visible):
            raise TelemetryError(
                f"no GPU {tok!r} among the {len(visible)} visible "
                f"(valid: 0..{len(visible) - 1}{', CUDA_VISIBLE_DEVICES applies' if cvd else ''})")
        if visible[int(tok)] in chosen:
            raise TelemetryError(f"GPU {tok} selected twice in {select!r}")
        chosen.append(visible[int(tok)])
    return chosen
