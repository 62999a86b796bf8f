"""``srd env`` and ``srd baseline``: the machine and its GPUs."""

from __future__ import annotations

import click

from doerunner import bounds
from doerunner.cli import cli, debug_option, handle_errors
from doerunner.cli.numbers import Number
from doerunner.telemetry.baseline import DEFAULT_DURATION_S, DEFAULT_TTL_S


@cli.command("baseline")
@click.option("--duration", type=Number(bounds.BASELINE_DURATION_S),
              default=DEFAULT_DURATION_S,
              show_default=True,
              help="Seconds of idle sampling.")
@click.option("--force", is_flag=True, help="Measure even when the cached value is fresh.")
@click.option("--ttl", type=Number(bounds.BASELINE_TTL_S), default=DEFAULT_TTL_S,
              show_default=True,
              help="Seconds a cached baseline stays fresh.")
@click.option("--gpus", default=None, help="GPUs to measure (default: all visible).")
@debug_option
@handle_errors
def baseline_cmd(duration: float, force: bool, ttl: float, gpus: str | None,
                 debug: bool) -> int:
    """Measure the idle power of each GPU and cache it per GPU UUID (keep the GPUs idle)."""
    from doerunner.telemetry.baseline import cache_path, resolve
    from doerunner.telemetry.gpu import open_gpus

    with open_gpus(gpus) as g:
        uuids = [d.info.uuid for d in g.devices]
        if not force:
            click.echo(f"measuring idle power for {duration:g} s unless cached...", err=True)
        b = resolve("measure" if force else "auto", g.devices, uuids, ttl_s=ttl,
                    duration_s=duration)
        for d in g.devices:
            click.echo(f"GPU {d.info.index} {d.info.name} {d.info.uuid}: "
                       f"{b.power_w[d.info.uuid]:.2f} W ({b.method})")
    click.echo(f"cache: {cache_path()}")
    return 0


@cli.command("env")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--gpus", default=None, help="GPUs to describe (default: all visible).")
@debug_option
@handle_errors
def env_cmd(as_json: bool, gpus: str | None, debug: bool) -> int:
    """Print the environment srd records: host, CPU (model, cores, governor), memory, whether
    RAPL (CPU/DRAM energy) can be read, container, Python, packages, GPUs."""
    import json

    from doerunner.telemetry.environment import gpu_environment, host_environment
    from doerunner.telemetry.gpu import open_gpus_or_null

    info = host_environment()
    with open_gpus_or_null(gpus) as g:
        if g.devices:
            info["gpu"] = gpu_environment(g, g.devices, [d.sample().temp_c for d in g.devices])
        else:
            info["gpu"] = {"unavailable": g.unavailable}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return 0
    for k, v in info.items():
        if k == "packages":
            v = ", ".join(f"{n} {ver}" for n, ver in v.items())
        if k == "memory_mb" and v is not None:
            v = f"{v:.0f}"
        if k == "gpu":
            if "unavailable" in v:
                click.echo(f"gpu: none ({v['unavailable']})")
                continue
            click.echo(f"driver_version: {v['driver_version']}")
            click.echo(f"cuda_version: {v['cuda_version']}")
            for d in v["gpus"]:
                click.echo(f"gpu {d['index']}: {d['name']}, {d['vram_mb']:.0f} MiB, "
                           f"power limit {d['power_limit_w']} W, MIG {d['mig_mode']}, "
                           f"{d['temp_c_at_start']} °C, {d['uuid']}")
            continue
        click.echo(f"{k}: {v}")
    return 0
