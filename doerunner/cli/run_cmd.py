"""``srd run``: every option of a run, turned into ``RunOptions`` (defaults are the option
objects' own), then the campaign."""

from __future__ import annotations

import sys
from typing import Any

import click

from doerunner import bounds
from doerunner.campaign.options import CaseDefaults, OutputOptions, Parallelism, field_defaults
from doerunner.cli import RegistryChoice, cli, debug_option, handle_errors
from doerunner.cli.numbers import Number
from doerunner.cli.sweep_opts import OrderedCommand, SweepArgs, WarmupType, sweep_options
from doerunner.policy import DEFAULT_POLICY as _POLICY
from doerunner.policy import WARMUP_WINDOW
from doerunner.telemetry.options import (
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


@cli.command("run", cls=OrderedCommand)
@click.option("--cases", "cases_path", type=click.Path(dir_okay=True),
              help="The cases.csv, or design .yaml, to run.")
@sweep_options
@click.option("--out", default=str(_OUTPUT.out), show_default=True, type=click.Path(),
              help="Where to write metrics.csv (atomically).")
@click.option("--run-dir", type=click.Path(), default=None,
              help="Run directory (run.json, journal, logs). Default: <out stem>_run/ beside "
                   "--out.")
@click.option("--backend", default=_CASES.backend, show_default=True,
              help="Backend for rows with an empty backend cell.")
@click.option("--timeout", "timeout_s", type=Number(bounds.TIMEOUT_S), default=_CASES.timeout_s,
              show_default=True,
              help="Seconds per measured execution for rows with an empty timeout_s.")
@click.option("-r", "--repeat", type=click.IntRange(min=1), default=None, metavar="N",
              help="Repetitions for rows with an empty repeat (default 1).")
@click.option("-w", "--warmup", type=WarmupType(), default=None,
              help="Warm-ups for rows with an empty warmup (default: the backend's).")
@click.option("--setup", metavar="CMD", default=None,
              help="Command run once before each case (rows with an empty setup).")
@click.option("--prepare", metavar="CMD", default=None,
              help="Command run before every execution, untimed (rows with an empty prepare).")
@click.option("--cleanup", metavar="CMD", default=None,
              help="Command run after each case, however it ended (rows with an empty "
                   "cleanup).")
@click.option("--no-shell", is_flag=True,
              help="Run commands without /bin/sh: split into arguments and exec'd (rows with "
                   "an empty shell).")
@click.option("--tz", default=_OUTPUT.tz, show_default=True,
              help="Timezone of ts_start/ts_end: JST, UTC, local, +05:30 or an IANA name.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first FAIL or TIMEOUT.")
@click.option("-j", "--jobs", type=click.IntRange(1, bounds.MAX_JOBS), default=_PAR["jobs"],
              show_default=True,
              help="Run up to N cases at once (shell and dummy backends; GPU telemetry off). "
                   "Rows keep the input order.")
@click.option("--junit", "junit_path", type=click.Path(), default=None,
              help="Also write a JUnit XML report (one testcase per case) for CI test "
                   "reporters.")
@click.option("--junit-names", type=click.Choice(["params", "id"]),
              default=_OUTPUT.junit_names, show_default=True,
              help="JUnit test names: case_id[level=9 size=4] (params) or the bare "
                   "case_id (id).")
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
@click.option("--warmup-cv", type=Number(bounds.WARMUP_CV),
              default=_POLICY.warmup_cv,
              show_default=True, help=f"warmup=auto stops when the CV of the last {WARMUP_WINDOW} "
                                      "run times is below this.")
@click.option("--warmup-max", type=click.IntRange(min=1), default=_POLICY.warmup_max,
              show_default=True,
              help="Most warm-up executions for warmup=auto.")
@click.option("--log-cap", default=f"{_POLICY.log_cap_bytes >> 20}M", show_default=True,
              help="Cap of each captured stdout/stderr log (head and tail are kept).")
@click.option("--kill-grace", type=Number(bounds.KILL_GRACE_S), default=_POLICY.kill_grace_s,
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
@click.option("--sample-hz", type=Number(bounds.SAMPLE_HZ),
              default=_TEL.sample_hz,
              show_default=True, help="Sampling rate of the GPUs and of each case's "
                                      "process tree.")
@click.option("--baseline", "baseline", default=_TEL.baseline.text, show_default=True,
              help="Idle power to subtract: auto (cached per GPU, measured when stale), "
                   "measure, off, or watts per GPU.")
@click.option("--baseline-ttl", type=Number(bounds.BASELINE_TTL_S), default=_TEL.baseline_ttl_s,
              show_default=True, help="Seconds a cached baseline stays valid.")
@click.option("--baseline-duration", type=Number(bounds.BASELINE_DURATION_S),
              default=_TEL.baseline_duration_s,
              show_default=True, help="Seconds of idle sampling when a baseline is measured.")
@click.option("--cooldown", default=_TEL.cooldown.text, show_default=True,
              help="Before each case: off, auto (wait until the GPUs are within 2 °C of their "
                   "idle temperature, at most 300 s), or seconds to wait.")
@click.option("--carbon-intensity", type=Number(bounds.CARBON_G_PER_KWH),
              default=_TEL.carbon_g_per_kwh,
              show_default=True, help="gCO2e per kWh for energy_co2_g.")
@click.option("--energy-price", type=Number(bounds.PRICE_PER_KWH), default=_TEL.price_per_kwh,
              show_default=True,
              help="Price per kWh for energy_cost_usd.")
@click.option("--timeseries", type=click.Choice(["on", "off"]),
              default="on" if _TEL.timeseries else "off",
              show_default=True, help="Write per-case GPU time series to the run directory.")
@click.option("--dry-run", is_flag=True,
              help="Validate, print the execution plan and the cases; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option("--show-output", is_flag=True,
              help="Stream each case's stdout/stderr as it runs (shell backend; one case at "
                   "a time; plain progress lines).")
@debug_option
@handle_errors
def run_cmd(cases_path: str | None, sweep: SweepArgs, out: str, run_dir: str | None,
            backend: str, timeout_s: float, repeat: int | None, warmup: int | str | None,
            setup: str | None, prepare: str | None, cleanup: str | None, no_shell: bool,
            tz: str, fail_fast: bool, jobs: int, junit_path: str | None, junit_names: str,
            project: str | None,
            per_gpu: bool, share_gpus: bool, executor: str, scheduler: str | None,
            resume: bool, retry_failed: bool, retries: int,
            warmup_cv: float, warmup_max: int, log_cap: str, kill_grace: float, csv_safe: bool,
            telemetry: str, gpus: str | None, sample_hz: float, baseline: str,
            baseline_ttl: float, baseline_duration: float, cooldown: str,
            carbon_intensity: float, energy_price: float, timeseries: str,
            dry_run: bool, quiet: bool, show_output: bool, debug: bool) -> int:
    """Run every case of --cases, or each COMMAND (after --; several are compared) once
    per combination of -L/-P values, and write --out (metrics.csv) and its run
    directory."""
    from doerunner.campaign.options import RunOptions
    from doerunner.errors import InputError
    from doerunner.inputs.sources import load
    from doerunner.policy import ExecutionPolicy

    if retry_failed and not resume:
        raise InputError("--retry-failed needs --resume")
    baseline_mode = _mode(BaselineMode, baseline, "--baseline")
    cooldown_mode = _mode(CooldownMode, cooldown, "--cooldown")
    defaults = CaseDefaults(backend, timeout_s, repeat, warmup, setup=setup, prepare=prepare,
                            cleanup=cleanup, shell=not no_shell)
    notices: list[str] = []
    try:
        loaded = load(cases_path, sweep.commands, sweep.axes, sweep.steps, defaults, notices)
    finally:  # before the problems, when there are: they may be read in its light
        for note in notices:
            click.echo(f"srd: warning: {note}", err=True)
    parallel = Parallelism(executor, jobs, per_gpu, share_gpus, scheduler)
    opts = RunOptions(
        # As given: OutputOptions refuses an empty path, which Path() would make '.'.
        output=OutputOptions(out, run_dir, tz, csv_safe, junit_path, project, junit_names),
        policy=ExecutionPolicy(warmup_cv, warmup_max, retries, _size(log_cap), kill_grace,
                               show_output),
        telemetry=TelemetryOptions(
            telemetry, gpus, sample_hz, baseline_mode, baseline_ttl, baseline_duration,
            carbon_intensity, energy_price, cooldown_mode, timeseries == "on"),
        parallel=parallel, defaults=defaults, resume=resume,
        retry_failed=retry_failed, fail_fast=fail_fast, quiet=quiet,
        command_line=("srd", *sys.argv[1:]))
    if dry_run:
        from doerunner.campaign.dry_run import dry_run_lines

        for line in dry_run_lines(opts, loaded.cases):
            click.echo(line)
        return 0
    from doerunner.campaign.orchestrator import run

    if cases_path is not None and loaded.file is None:  # a design .yaml: an input too
        from doerunner.campaign.rundir import check_input

        check_input(opts.output, cases_path)
    return run(loaded.cases, opts, cases_file=loaded.file, kept_cases=loaded.kept,
               title=loaded.title).exit_code


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
        n = float(t[: len(t) - len(unit)]) * units[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 10M, 512k or 1048576",
                                 param_hint="--log-cap") from None
    if not bounds.LOG_CAP_BYTES.admits(n):
        raise click.BadParameter(f"{text!r}: use a size from 1 byte to 1G",
                                 param_hint="--log-cap")
    return int(n)


