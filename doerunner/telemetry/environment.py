"""The environment a run happened in: host, CPU, container, Python, packages, GPUs.

Goes into run.json, the ``env_*`` columns (when GPU telemetry is active) and ``srd env``.
Cheap: no subprocesses; GPU facts come from the already opened device layer.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from typing import Any

_PACKAGES = ("doerunner", "click", "psutil", "tqdm", "numpy", "pandas", "nvidia-ml-py",
             "torch", "transformers")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU model name (Linux ``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    import platform

    text = _read("/proc/cpuinfo")
    if text:
        for line in text.splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def cpu_governor() -> str | None:
    """The cpufreq scaling governor of CPU 0 (``performance``, ``powersave``...), or None."""
    text = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return text.strip() if text else None


def in_container() -> bool:
    """Whether srd runs in a container (Docker, Podman, Kubernetes, LXC, containerd)."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    # systemd-nspawn and podman set the lower-case `container` variable.
    if os.environ.get("KUBERNETES_SERVICE_HOST") or os.environ.get("container"):  # noqa: SIM112
        return True
    cgroup = _read("/proc/1/cgroup") or ""
    return any(k in cgroup for k in ("docker", "kubepods", "containerd", "lxc", "libpod"))


def package_versions() -> dict[str, str]:
    """Installed versions of srd and the packages its measurements depend on."""
    return dict(_package_versions())


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


@functools.cache
def _package_versions() -> dict[str, str]:
    """From the names of the installed distributions' metadata folders
    (``<name>-<version>.dist-info``, ``<name>-<version>[-pyX.Y].egg-info``), first on
    ``sys.path`` first, as ``importlib.metadata`` finds them: one directory listing per path
    entry (under a millisecond) instead of ``importlib.metadata`` (~40 ms, every run)."""
    wanted = {_normal(n): n for n in _PACKAGES}
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            stem, dot, kind = folder.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            name, _, version = stem.partition("-")
            package = wanted.get(_normal(name))
            if package is not None and package not in versions and version:
                versions[package] = version.split("-py")[0]
        if len(versions) == len(wanted):
            break
    return {n: versions[n] for n in _PACKAGES if n in versions}


def memory_mb() -> float | None:
    """The host's physical memory in MiB (``sysconf``), None when unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1048576.0
    except (AttributeError, ValueError, OSError):
        return None


def rapl_status() -> str:
    """Whether RAPL can be read here: ``readable (package-0 cpu, ...)`` or why not."""
    from doerunner.telemetry.rapl import find_zones

    zones, note = find_zones()
    if not zones:
        return note or "no RAPL"
    return "readable (" + ", ".join(f"{z.path.name} {z.name}" for z in zones) + ")"


def host_environment() -> dict[str, Any]:
    """Host, OS, CPU (model, cores, frequency governor), memory, RAPL, container, Python
    and package versions."""
    import platform

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_governor": cpu_governor(),
        "memory_mb": memory_mb(),
        "rapl": rapl_status(),
        "in_container": in_container(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": package_versions(),
    }


def gpu_environment(gpus: Any, devices: list[Any], temps_c: list[float | None]) -> dict[str, Any]:
    """The GPU part for run.json: driver/CUDA versions and each used GPU's static facts.
    ``temps_c`` are the GPUs' temperatures at the start of the run."""
    return {
        "driver_version": gpus.driver_version,
        "cuda_version": gpus.cuda_version,
        "gpus": [{"index": d.info.index, "uuid": d.info.uuid, "name": d.info.name,
                  "vram_mb": d.info.vram_mb, "power_limit_w": d.info.power_limit_w,
                  "mig_mode": d.info.mig_mode, "temp_c_at_start": t,
                  "energy_counter": d.has_energy_counter,
                  "instant_power": d.has_instant_power,
                  "energy_scope": d.info.energy_scope, "power_scope": d.power_scope}
                 for d, t in zip(devices, temps_c, strict=True)],
    }


def env_columns(host: dict[str, Any], gpu_env: dict[str, Any]) -> dict[str, Any]:
    """The ``env_*`` columns of a run (the same on every row)."""
    gpus = gpu_env["gpus"]
    names = sorted({g["name"] for g in gpus})
    name = names[0] if len(names) == 1 else " + ".join(names)
    temps = [g["temp_c_at_start"] for g in gpus if g["temp_c_at_start"] is not None]
    limits = [g["power_limit_w"] for g in gpus if g["power_limit_w"] is not None]
    migs = sorted({g["mig_mode"] for g in gpus if g["mig_mode"]})
    summary = (f"{len(gpus)}x {name}, driver {gpu_env['driver_version']}, "
               f"CUDA {gpu_env['cuda_version']}, {host['hostname']}")
    return {
        "env_gpu_name": name,
        "env_gpu_vram_mb": round(gpus[0]["vram_mb"]) if gpus else None,
        "env_driver_version": gpu_env["driver_version"],
        "env_cuda_version": gpu_env["cuda_version"],
        "env_power_limit_w": sum(limits) if limits else None,
        "env_gpu_temp_c": max(temps) if temps else None,
        "env_mig_mode": ",".join(migs) if migs else None,
        "env_power_scope": ",".join(sorted({g["power_scope"] for g in gpus})) or None,
        "env_cpu_model": host["cpu_model"],
        "env_cpu_governor": host["cpu_governor"],
        "env_in_container": host["in_container"],
        "env_hostname": host["hostname"],
        "env_summary": summary,
    }
