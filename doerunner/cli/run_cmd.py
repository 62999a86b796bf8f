"""``srd run``: every option of a run, turned into ``RunOptions`` (defaults are the option
objects' own), then the campaign."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from doerunner.campaign.options import CaseDefaults, OutputOptions, Parallelism, field_defaults
from doerunner.cli import RegistryChoice, cli, debug_option, handle_errors
from doerunner.policy import DEFAULT_POLICY as _POLICY
from doerunner.policy import WARMUP_WINDOW
from doerunner.telemetry.options import (
    MAX_SAMPLE_HZ,
    MIN_SAMPLE_HZ,
    MODES,
    BaselineMode,
    CooldownMode,
    TelemetryOptions,
)

# The defaults shown are the option objects' own (stated once, there).
_CASES = CaseDefaults()
_OUTPUT = OutputOptions()
_PAR = field_defaults(Parallelism)  # building one would import every executor
_TEL = TelemetryOptions()


def _executor_names() -> list[str]:
    from doerunner.executors import EXECUTORS

    return list(EXECUTORS)


@cli.command("run")
@click.option("--cases", "cases_path", required=True, type=click.Path(dir_okay=True),
              help="The cases.csv to run.")
@click.option("--out", default=str(_OUTPUT.out), show_default=True, type=click.Path(),
              help="Where to write metrics.csv (atomically).")
@click.option("--run-dir", type=click.Path(), default=None,
              help="Run directory (run.json, journal, logs). Default: <out stem>_run/ beside "
                   "--out.")
@click.option("--backend", default=_CASES.backend, show_default=True,
              help="Backend for rows with an empty backend cell.")
@click.option("--timeout", "timeout_s", type=float, default=_CASES.timeout_s, show_default=True,
              help="Seconds per measured execution for rows with an empty timeout_s.")
@click.option("--tz", default=_OUTPUT.tz, show_default=True,
              help="Timezone of ts_start/ts_end: JST, UTC, local, +05:30 or an IANA name.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first FAIL or TIMEOUT.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=_PAR["jobs"], show_default=True,
              help="Run up to N cases at once (shell and dummy backends; GPU telemetry off). "
                   "Rows keep the input order.")
@click.option("--junit", "junit_path", type=click.Path(), default=None,
              help="Also write a JUnit XML report (one testcase per case) for CI test "
                   "reporters.")
@click.option("--project", default=None,
              help="Project name recorded in the run history (srd runs list --project).")
@click.option("--per-gpu", is_flag=True,
              help="Run one case per GPU at a time (CUDA_VISIBLE_DEVICES set per case, energy "
                   "measured on that GPU only).")
@click.option("--share-gpus", is_flag=True,
              help="With --jobs: let cases share GPUs with telemetry on (their energy then "
                   "includes each other's).")
@click.option("--executor", type=RegistryChoice(_executor_names), default=_PAR["executor"],
              show_default=True,
              help="Where cases run: in this process (local) or as tasks on Dask workers "
                   "(pip install 'doerunner[dask]').")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --executor dask: the scheduler, e.g. tcp://host:8786. Default: a "
                   "LocalCluster of --jobs (or one per CPU) workers on this machine.")
@click.option("--resume", is_flag=True,
              help="Keep the cases the journal already holds (same definition) and run the "
                   "rest.")
@click.option("--retry-failed", is_flag=True,
              help="With --resume: also run again the cases that ended FAIL or TIMEOUT.")
@click.option("--retries", type=click.IntRange(min=0), default=_POLICY.retries,
              show_default=True,
              help="Run a FAIL/TIMEOUT case again up to N times (the row records attempts).")
@click.option("--warmup-cv", type=click.FloatRange(min=0, min_open=True),
              default=_POLICY.warmup_cv,
              show_default=True, help=f"warmup=auto stops when the CV of the last {WARMUP_WINDOW} "
                                      "run times is below this.")
@click.option("--warmup-max", type=click.IntRange(min=1), default=_POLICY.warmup_max,
              show_default=True,
              help="Most warm-up executions for warmup=auto.")
@click.option("--log-cap", default=f"{_POLICY.log_cap_bytes >> 20}M", show_default=True,
              help="Cap of each captured stdout/stderr log (head and tail are kept).")
@click.option("--kill-grace", type=click.FloatRange(min=0), default=_POLICY.kill_grace_s,
              show_default=True,
              help="Seconds between SIGTERM and SIGKILL when a case is killed.")
@click.option("--csv-safe", is_flag=True,
              help="Neutralise text cells that spreadsheets would run as formulas (OWASP).")
@click.option("--telemetry", type=click.Choice(MODES), default=_TEL.mode,
              show_default=True, help="GPU telemetry through NVML: auto samples when NVML works, "
                                      "on fails (exit 4) when no GPU can be read; off also "
                                      "drops the host-wide network and RAPL columns.")
@click.option("--gpus", default=None,
              help="GPUs the cases run on and are measured on, e.g. 0,1: positions among "
                   "the visible GPUs (nvidia-smi's order, or CUDA_VISIBLE_DEVICES's); cases "
                   "get them by UUID. Default: all visible.")
@click.option("--sample-hz", type=click.FloatRange(min=MIN_SAMPLE_HZ, max=MAX_SAMPLE_HZ),
              default=_TEL.sample_hz,
              show_default=True, help="Sampling rate of the GPUs and of each case's "
                                      "process tree.")
@click.option("--baseline", "baseline", default=_TEL.baseline.text, show_default=True,
              help="Idle power to subtract: auto (cached per GPU, measured when stale), "
                   "measure, off, or watts per GPU.")
@click.option("--baseline-ttl", type=click.FloatRange(min=0), default=_TEL.baseline_ttl_s,
              show_default=True, help="Seconds a cached baseline stays valid.")
@click.option("--baseline-duration", type=click.FloatRange(min=0.1),
              default=_TEL.baseline_duration_s,
              show_default=True, help="Seconds of idle sampling when a baseline is measured.")
@click.option("--cooldown", default=_TEL.cooldown.text, show_default=True,
              help="Before each case: off, auto (wait until the GPUs are within 2 °C of their "
                   "idle temperature, at most 300 s), or seconds to wait.")
@click.option("--carbon-intensity", type=click.FloatRange(min=0),
              default=_TEL.carbon_g_per_kwh,
              show_default=True, help="gCO2e per kWh for energy_co2_g.")
@click.option("--energy-price", type=click.FloatRange(min=0), default=_TEL.price_per_kwh,
              show_default=True,
              help="Price per kWh for energy_cost_usd.")
@click.option("--timeseries", type=click.Choice(["on", "off"]),
              default="on" if _TEL.timeseries else "off",
              show_default=True, help="Write per-case GPU time series to the run directory.")
@click.option("--dry-run", is_flag=True,
              help="Validate, print the execution plan and the cases; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@debug_option
@handle_errors
def run_cmd(cases_path: str, out: str, run_dir: str | None, backend: str, timeout_s: float,
            tz: str, fail_fast: bool, jobs: int, junit_path: str | None, project: str | None,
            per_gpu: bool, share_gpus: bool, executor: str, scheduler: str | None,
            resume: bool, retry_failed: bool, retries: int,
            warmup_cv: float, warmup_max: int, log_cap: str, kill_grace: float, csv_safe: bool,
            telemetry: str, gpus: str | None, sample_hz: float, baseline: str,
            baseline_ttl: float, baseline_duration: float, cooldown: str,
            carbon_intensity: float, energy_price: float, timeseries: str,
            dry_run: bool, quiet: bool, debug: bool) -> int:
    """Run every case of --cases and write --out (metrics.csv) and its run directory."""
    from doerunner.campaign.options import RunOptions
    from doerunner.errors import InputError
    from doerunner.inputs.cases import read_cases
    from doerunner.policy import ExecutionPolicy

    if timeout_s <= 0:
        raise InputError("--timeout must be a positive number of seconds")
    if retry_failed and not resume:
        raise InputError("--retry-failed needs --resume")
    baseline_mode = _mode(BaselineMode, baseline, "--baseline")
    cooldown_mode = _mode(CooldownMode, cooldown, "--cooldown")
    notices: list[str] = []
    try:
        cases = read_cases(cases_path, default_backend=backend, default_timeout_s=timeout_s,
                           notices=notices)
    finally:  # before the problems, when there are: they may be read in its light
        for note in notices:
            click.echo(f"srd: warning: {note}", err=True)
    parallel = Parallelism(executor, jobs, per_gpu, share_gpus, scheduler)
    opts = RunOptions(
        output=OutputOptions(Path(out), Path(run_dir) if run_dir else None, tz, csv_safe,
                             Path(junit_path) if junit_path else None, project),
        policy=ExecutionPolicy(warmup_cv, warmup_max, retries, _size(log_cap), kill_grace),
        telemetry=TelemetryOptions(
            telemetry, gpus, sample_hz, baseline_mode, baseline_ttl, baseline_duration,
            carbon_intensity, energy_price, cooldown_mode, timeseries == "on"),
        parallel=parallel, defaults=CaseDefaults(backend, timeout_s), resume=resume,
        retry_failed=retry_failed, fail_fast=fail_fast, quiet=quiet,
        command_line=("srd", *sys.argv[1:]))
    if dry_run:
        from doerunner.campaign.dry_run import dry_run_lines

        for line in dry_run_lines(opts, cases):
            click.echo(line)
        return 0
    from doerunner.campaign.orchestrator import run

    return run(cases, opts, cases_file=cases_path).exit_code


def _mode(cls: type, text: str, option: str) -> Any:
    """A mode word option parsed once, here; a bad one is a usage error naming the option."""
    try:
        return cls.parse(text)  # type: ignore[attr-defined]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option) from None


def _size(text: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    unit = t[-1:] if t[-1:] in units else ""
    try:
        n = float(t[: len(t) - len(unit)])
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 10M, 512k or 1048576") from None
    if n <= 0:
        raise click.BadParameter("must be positive")
    return int(n * units[unit])


