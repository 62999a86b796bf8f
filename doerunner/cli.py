"""The ``srd`` command: thin click commands that build library objects, call them, and turn
the library's errors into exit codes (SPEC §1). Heavy modules are imported inside commands
so that ``srd --help`` stays fast."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

EXIT_USAGE = 4
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what `cat` reports when its reader goes away


class SrdGroup(click.Group):
    """A click group whose usage errors exit 4, never click's 2 (2 means "thresholds
    violated" to a CI pipeline)."""

    def main(self, args: Any = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as e:
            e.show()
            code = EXIT_USAGE
        except click.ClickException as e:
            e.show()
            code = EXIT_USAGE if e.exit_code == 2 else e.exit_code
        except click.Abort:
            click.echo("srd: aborted", err=True)
            code = EXIT_INTERRUPTED
        if standalone_mode:
            sys.exit(code)
        return code


def _debug_enabled(ctx: click.Context | None) -> bool:
    while ctx is not None:
        if ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return os.environ.get("SRD_DEBUG", "") not in ("", "0")


def handle_errors(fn: Callable[..., int]) -> Callable[..., None]:
    """Run a command body; map the library's errors to one-line messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from doerunner.errors import DoerunnerError, InputError

        ctx = click.get_current_context()
        try:
            code = fn(*args, **kwargs)
        except click.ClickException:
            raise
        except BrokenPipeError:
            # The reader of stdout went away (`srd export | head`): stop quietly, as other
            # command-line tools do.
            from doerunner.campaign.progress import discard

            discard(sys.stdout)
            code = EXIT_PIPE_CLOSED
        except InputError as e:
            for p in e.problems:
                click.echo(str(p) if p.file else f"srd: error: {p.message}", err=True)
            if len(e.problems) > 1:
                click.echo(f"srd: {len(e.problems)} problems; nothing was run", err=True)
            code = e.exit_code
        except DoerunnerError as e:
            click.echo(f"srd: error: {e}", err=True)
            code = e.exit_code
        except KeyboardInterrupt:
            click.echo("srd: interrupted", err=True)
            code = EXIT_INTERRUPTED
        except Exception as e:  # a bug: one line, the traceback only with --debug
            if _debug_enabled(ctx):
                traceback.print_exc()
            msg = str(e).splitlines()[0] if str(e) else ""
            click.echo(f"srd: internal error: {type(e).__name__}: {msg} "
                       "(run with --debug for the traceback)", err=True)
            code = EXIT_INTERNAL
        ctx.exit(code)

    return wrapper


debug_option = click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")


@click.group(cls=SrdGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 100})
@click.version_option(package_name="doerunner", prog_name="srd")
@debug_option
def cli(debug: bool) -> None:
    """srd (doerunner): run every case of a cases.csv and write a deterministic metrics.csv.

    Exit codes: 0 ok, 2 thresholds violated, 3 a case failed or timed out, 4 bad input or
    usage, 130 interrupted, 1 internal error.
    """


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


@cli.command("run")
@click.option("--cases", "cases_path", required=True, type=click.Path(dir_okay=True),
              help="The cases.csv to run.")
@click.option("--out", default="metrics.csv", show_default=True, type=click.Path(),
              help="Where to write metrics.csv (atomically).")
@click.option("--run-dir", type=click.Path(), default=None,
              help="Run directory (run.json, journal, logs). Default: <out stem>_run/ beside "
                   "--out.")
@click.option("--backend", default="shell", show_default=True,
              help="Backend for rows with an empty backend cell.")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True,
              help="Seconds per measured execution for rows with an empty timeout_s.")
@click.option("--tz", default="JST", show_default=True,
              help="Timezone of ts_start/ts_end: JST, UTC, local, +05:30 or an IANA name.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first FAIL or TIMEOUT.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
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
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
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
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run a FAIL/TIMEOUT case again up to N times (the row records attempts).")
@click.option("--warmup-cv", type=click.FloatRange(min=0, min_open=True), default=0.05,
              show_default=True, help="warmup=auto stops when the CV of the last 5 run times "
                                      "is below this.")
@click.option("--warmup-max", type=click.IntRange(min=1), default=50, show_default=True,
              help="Most warm-up executions for warmup=auto.")
@click.option("--log-cap", default="10M", show_default=True,
              help="Cap of each captured stdout/stderr log (head and tail are kept).")
@click.option("--kill-grace", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL when a case is killed.")
@click.option("--csv-safe", is_flag=True,
              help="Neutralise text cells that spreadsheets would run as formulas (OWASP).")
@click.option("--telemetry", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True, help="GPU telemetry through NVML: auto samples when NVML works, "
                                      "on fails (exit 4) when no GPU can be read.")
@click.option("--gpus", default=None,
              help="GPUs to measure, e.g. 0,1 (indices into the visible GPUs, which "
                   "CUDA_VISIBLE_DEVICES limits). Default: all visible.")
@click.option("--sample-hz", type=click.FloatRange(min=0.1, max=100), default=10.0,
              show_default=True, help="GPU sampling rate.")
@click.option("--baseline", "baseline", default="auto", show_default=True,
              help="Idle power to subtract: auto (cached per GPU, measured when stale), "
                   "measure, off, or watts per GPU.")
@click.option("--baseline-ttl", type=click.FloatRange(min=0), default=3600.0,
              show_default=True, help="Seconds a cached baseline stays valid.")
@click.option("--baseline-duration", type=click.FloatRange(min=0.1), default=30.0,
              show_default=True, help="Seconds of idle sampling when a baseline is measured.")
@click.option("--cooldown", default="off", show_default=True,
              help="Before each case: off, auto (wait until the GPUs are within 2 °C of their "
                   "idle temperature, at most 300 s), or seconds to wait.")
@click.option("--carbon-intensity", type=click.FloatRange(min=0), default=475.0,
              show_default=True, help="gCO2e per kWh for energy_co2_g.")
@click.option("--energy-price", type=click.FloatRange(min=0), default=0.15, show_default=True,
              help="Price per kWh for energy_cost_usd.")
@click.option("--timeseries", type=click.Choice(["on", "off"]), default="on",
              show_default=True, help="Write per-case GPU time series to the run directory.")
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; run nothing.")
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
    from doerunner.campaign.orchestrator import RunOptions, run
    from doerunner.errors import InputError
    from doerunner.inputs.cases import read_cases
    from doerunner.telemetry.monitor import TelemetryOptions

    if timeout_s <= 0:
        raise InputError("--timeout must be a positive number of seconds")
    if retry_failed and not resume:
        raise InputError("--retry-failed needs --resume")
    _check_choice("--baseline", baseline, ("auto", "measure", "off"), nonneg_number=True)
    _check_choice("--cooldown", cooldown, ("auto", "off"), nonneg_number=True)
    cases = read_cases(cases_path, default_backend=backend, default_timeout_s=timeout_s)
    if dry_run:
        from doerunner.campaign.plan import plan_lines

        for line in plan_lines(cases):
            click.echo(line)
        return 0
    opts = RunOptions(out=Path(out), run_dir=Path(run_dir) if run_dir else None,
                      default_backend=backend, default_timeout_s=timeout_s, tz=tz,
                      fail_fast=fail_fast, jobs=jobs, per_gpu=per_gpu, project=project,
                      executor=executor, scheduler=scheduler,
                      share_gpus=share_gpus, warmup_cv=warmup_cv, warmup_max=warmup_max,
                      log_cap_bytes=_size(log_cap), kill_grace_s=kill_grace, resume=resume,
                      retry_failed=retry_failed, retries=retries, csv_safe=csv_safe,
                      quiet=quiet, command_line=["srd", *sys.argv[1:]],
                      telemetry=TelemetryOptions(
                          mode=telemetry, gpus=gpus, sample_hz=sample_hz, baseline=baseline,
                          baseline_ttl_s=baseline_ttl, baseline_duration_s=baseline_duration,
                          carbon_g_per_kwh=carbon_intensity, price_per_kwh=energy_price,
                          cooldown=cooldown, timeseries=timeseries == "on"))
    summary = run(cases, opts, cases_file=cases_path)
    if junit_path:
        _write_junit(junit_path, summary, cases_path)
    return summary.exit_code


def _write_junit(path: str, summary: Any, cases_path: str) -> None:
    """The JUnit report of a finished run, from its metrics.csv as written."""
    import csv

    from doerunner.errors import OutputError
    from doerunner.outputs.junit import write_junit

    with open(summary.out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    try:
        write_junit(path, rows, suite_name=f"srd {Path(cases_path).name}",
                    log_dir=summary.run_dir / "logs")
    except OSError as e:
        raise OutputError(f"--junit {path}: {e.strerror or e}") from None


def _check_choice(option: str, value: str, words: tuple[str, ...],
                  nonneg_number: bool = False) -> None:
    if value in words:
        return
    if nonneg_number:
        try:
            if float(value) >= 0:
                return
        except ValueError:
            pass
    raise click.BadParameter(f"{value!r}: use {', '.join(words)}"
                             + (" or a number >= 0" if nonneg_number else ""),
                             param_hint=option)


@cli.command("baseline")
@click.option("--duration", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds of idle sampling.")
@click.option("--force", is_flag=True, help="Measure even when the cached value is fresh.")
@click.option("--ttl", type=click.FloatRange(min=0), default=3600.0, show_default=True,
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
    """Print the environment srd records: host, CPU, container, Python, packages, GPUs."""
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


@cli.command("validate")
@click.argument("metrics", type=click.Path())
@click.option("--cases", "cases_path", type=click.Path(),
              help="Also check that every case of this cases.csv is present, in order.")
@debug_option
@handle_errors
def validate_cmd(metrics: str, cases_path: str | None, debug: bool) -> int:
    """Check a metrics.csv against the contract (SPEC §3). Exit 0 when valid, else 4."""
    from doerunner.inputs.cases import read_cases
    from doerunner.outputs.validate import validate_metrics_csv

    cases = read_cases(cases_path, check_backends=False) if cases_path else None
    problems = validate_metrics_csv(metrics, cases)
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        click.echo(f"srd: {metrics}: {len(problems)} problem(s)", err=True)
        return EXIT_USAGE
    click.echo(f"{metrics}: valid")
    return 0


def _epoch(text: str | None, option: str) -> float | None:
    """A date (YYYY-MM-DD) or ISO 8601 time → epoch seconds (local time when no offset)."""
    if text is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date like 2026-11-23 or "
                                 "2026-11-23T10:00", param_hint=option) from None


@cli.group("runs")
def runs_group() -> None:
    """The run history: every srd run registers itself ($SRD_HOME/history.sqlite)."""


@runs_group.command("list")
@click.option("--project", default=None, help="Only this project's runs.")
@click.option("--since", default=None, help="Runs started on or after this date/time.")
@click.option("--until", default=None, help="Runs started before this date/time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@debug_option
@handle_errors
def runs_list(project: str | None, since: str | None, until: str | None, as_json: bool,
              debug: bool) -> int:
    """List registered runs, oldest first."""
    import dataclasses
    import json
    from datetime import datetime

    from doerunner.history import list_runs

    runs = list_runs(project, _epoch(since, "--since"), _epoch(until, "--until"))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in runs], indent=2))
        return 0
    for r in runs:
        started = datetime.fromtimestamp(r.started).isoformat(timespec="seconds")
        state = f"exit {r.exit_code}" if r.exit_code is not None else "unfinished"
        click.echo(f"{r.run_id}  {started}  {r.project or '-'}  {r.total} cases "
                   f"({r.ok} OK, {r.fail} FAIL, {r.timeout} TIMEOUT)  {state}  "
                   f"{r.metrics_path}")
    return 0


@runs_group.command("show")
@click.argument("run_id")
@debug_option
@handle_errors
def runs_show(run_id: str, debug: bool) -> int:
    """Show one run (an id or a unique prefix of one)."""
    import dataclasses
    import json

    from doerunner.errors import InputError
    from doerunner.history import get_run

    r = get_run(run_id)
    if r is None:
        raise InputError(f"no run {run_id!r} in the history (srd runs list shows them)")
    click.echo(json.dumps(dataclasses.asdict(r), indent=2))
    return 0


@cli.command("design")
@click.argument("design_yaml", type=click.Path())
@click.option("--out", default="cases.csv", show_default=True, type=click.Path(),
              help="Where to write the cases.csv (atomically).")
@click.option("--force", is_flag=True, help="Replace --out when it exists.")
@debug_option
@handle_errors
def design_cmd(design_yaml: str, out: str, force: bool, debug: bool) -> int:
    """Generate a cases.csv from a design of experiments (full, fractional, plackett-burman,
    lhs, zip) described in DESIGN_YAML. The run order is randomized with `seed` unless
    `randomize: false`, so slow drift (a GPU heating up) does not pass for a factor's effect."""
    from doerunner.inputs.design import design_to_csv

    generated = design_to_csv(design_yaml, out, force=force)
    click.echo(f"{out}: {generated.summary()}")
    return 0


@cli.command("effects")
@click.argument("metrics", type=click.Path())
@click.option("--response", default=None,
              help="The metric to explain. Default: p95 when it has values, else "
                   "run_seconds.")
@click.option("--factor", "factors", multiple=True,
              help="A parameter to analyse (param_batch or batch); repeat for more. "
                   "Default: every param_* with two levels or more.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@debug_option
@handle_errors
def effects_cmd(metrics: str, response: str | None, factors: tuple[str, ...],
                markdown: bool, debug: bool) -> int:
    """Main effects of each parameter on a response, from the OK rows of METRICS: the
    mean per level, the effect size (max - min of the level means), ranked, and the
    spread (std across rows; pooled run_seconds_std / <response>_std with repetitions)."""
    from doerunner.analysis.effects import main_effects, read_metrics, render_effects

    table = main_effects(read_metrics(metrics), response, list(factors) or None)
    click.echo(render_effects(table, markdown=markdown), nl=False)
    return 0


@cli.command("compare")
@click.argument("base", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--metric", "metrics", multiple=True,
              help="A metric to compare; repeat for more. NAME:lower or NAME:higher says "
                   "which way is better when the name does not (p95, energy_*_j, ... are "
                   "lower; throughput_*, *_rps, *_per_s higher). Default: p95 and "
                   "run_seconds.")
@click.option("--max-regression", default="5%", show_default=True,
              help="Tolerated change in the bad direction, as 5% or 0.05.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@debug_option
@handle_errors
def compare_cmd(base: str, new: str, metrics: tuple[str, ...], max_regression: str,
                markdown: bool, debug: bool) -> int:
    """Compare the cases of NEW with those of BASE (matched by case_id). Exit 2 when a
    metric got worse by more than --max-regression, 0 otherwise, 4 on bad input.

    Noise: when either file has a repetition spread for a metric (run_seconds_std for
    run_seconds, else a <metric>_std column), a change counts only when |new - base|
    exceeds 2 x sqrt(std_base^2 + std_new^2); else it is reported "within noise".
    """
    from doerunner.analysis.effects import compare, parse_ratio, read_metrics, render_compare

    ratio = parse_ratio(max_regression)
    result = compare(read_metrics(base), read_metrics(new), list(metrics) or None, ratio)
    click.echo(render_compare(result, markdown=markdown), nl=False)
    return 2 if result.has_regression else 0


@cli.command("report")
@click.argument("source", type=click.Path())
@click.option("--response", default=None,
              help="The metric the main effects explain. Default: tokens_per_s for hf runs, "
                   "else p95 when it has values, else run_seconds.")
@click.option("--html", "html_path", type=click.Path(), default=None,
              help="Also write one self-contained HTML file (plots embedded, no network).")
@click.option("--markdown", is_flag=True,
              help="Print the summary as Markdown (e.g. >> $GITHUB_STEP_SUMMARY).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many slowest / most energy-hungry cases to list.")
@debug_option
@handle_errors
def report_cmd(source: str, response: str | None, html_path: str | None, markdown: bool,
               top: int, debug: bool) -> int:
    """Summarise a run: SOURCE is a run directory or a metrics.csv (its <stem>_run/ beside
    it adds the run's metadata and GPU time series). Counts by status, failures,
    violations, slowest and most energy-hungry cases, throttling, totals, main effects."""
    from doerunner.analysis.report import (
        build_report,
        load_run,
        render_markdown,
        render_text,
        write_html,
    )
    from doerunner.errors import OutputError

    rep = build_report(load_run(source), response, top)
    click.echo(render_markdown(rep) if markdown else render_text(rep), nl=False)
    if html_path:
        try:
            write_html(rep, html_path)
        except OSError as e:
            raise OutputError(f"--html {html_path}: {e.strerror or e}") from None
        click.echo(f"srd: wrote {html_path}", err=True)
    return 0


@cli.command("export")
@click.option("--run-id", "run_ids", multiple=True,
              help="A run id (or unique prefix); repeat for more. Default: every run.")
@click.option("--project", default=None, help="Only this project's runs.")
@click.option("--since", default=None, help="Runs started on or after this date/time.")
@click.option("--until", default=None, help="Runs started before this date/time.")
@click.option("--case", "cases", multiple=True,
              help="A case_id or glob (bench_*); repeat for more.")
@click.option("--tag", "tags", multiple=True,
              help="Only rows carrying this tag (tag_<name> = 1); repeat for either of several.")
@click.option("--status", "statuses", multiple=True,
              help="Only rows with this status (OK, FAIL, TIMEOUT); repeat for more.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "parquet"]),
              default="json", show_default=True, help="Output format.")
@click.option("--out", default=None, type=click.Path(),
              help="Output file (atomically). Default: stdout (json, csv).")
@click.option("--split", "split_dir", default=None, type=click.Path(),
              help="CSV only: write one CSV per metric group into this directory.")
@click.option("--timeseries", is_flag=True,
              help="Export the flat per-sample GPU time series of the selected cases instead.")
@debug_option
@handle_errors
def export_cmd(run_ids: tuple[str, ...], project: str | None, since: str | None,
               until: str | None, cases: tuple[str, ...], tags: tuple[str, ...],
               statuses: tuple[str, ...], fmt: str, out: str | None, split_dir: str | None,
               timeseries: bool, debug: bool) -> int:
    """Export runs of the history (srd runs list) and their cases as JSON, CSV or Parquet.
    Filters of one kind are alternatives; different kinds must all hold."""
    from doerunner.analysis.export import Selection, export, parse_statuses
    from doerunner.errors import OutputError

    sel = Selection(run_ids=run_ids, project=project, since=_epoch(since, "--since"),
                    until=_epoch(until, "--until"), cases=cases, tags=tags,
                    statuses=parse_statuses(statuses))
    try:
        result = export(sel, fmt, out, split=split_dir, timeseries=timeseries)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"{out or split_dir}: {e.strerror or e}") from None
    for w in result.warnings:
        click.echo(f"srd: warning: {w}", err=True)
    click.echo(f"srd: {result.message}", err=True)
    return 0


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="srd")


if __name__ == "__main__":
    main()
