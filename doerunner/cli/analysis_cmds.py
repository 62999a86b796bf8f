"""``srd effects``, ``srd compare``, ``srd report`` and ``srd export``: what runs say."""

from __future__ import annotations

from typing import Any

import click

from doerunner.bounds import ALPHA
from doerunner.cli import RegistryChoice, cli, debug_option, epoch, handle_errors
from doerunner.cli.numbers import Number
from doerunner.outputs.base import write_output


def _refuse_clash(name: str, output: str, inputs: list[Any], folders: list[Any]) -> None:
    """``OutputError`` (exit 4) when the output ``name`` would overwrite one of ``inputs``,
    lie in one of the input ``folders``, or is one of srd's own files (``outputs.protect``)."""
    from doerunner.outputs.protect import refuse

    refuse(name, output, inputs, folders)


def _export_format_names() -> list[str]:
    from doerunner.outputs.export import export_formats

    return list(export_formats())


@cli.command("effects")
@click.argument("metrics", type=click.Path())
@click.option("--response", default=None,
              help="The metric to explain. Default: p95 when it has values, else "
                   "run_seconds.")
@click.option("--factor", "factors", multiple=True,
              help="A parameter to analyse (param_batch or batch); repeat for more. "
                   "Default: every param_* with two levels or more.")
@click.option("--where", "where", multiple=True, metavar="FACTOR=VALUE",
              help="Only the rows where FACTOR has VALUE; repeat: values of one factor "
                   "are alternatives, different factors must all hold.")
@click.option("--interaction", nargs=2, default=None, metavar="A B",
              help="Instead: the response's mean (n) in each cell of A's levels x B's "
                   "levels.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@debug_option
@handle_errors
def effects_cmd(metrics: str, response: str | None, factors: tuple[str, ...],
                where: tuple[str, ...], interaction: tuple[str, str] | None,
                markdown: bool, debug: bool) -> int:
    """Main effects of each parameter on a response, from the OK rows of METRICS: the
    mean per level, the effect size (max - min of the level means), ranked, and the
    spread (std across rows; pooled run_seconds_std / <response>_std with repetitions).
    With --interaction A B: the two-factor table of the response, margins included."""
    from doerunner.analysis.effects import interaction as two_factor
    from doerunner.analysis.effects import main_effects
    from doerunner.analysis.metrics import read_metrics
    from doerunner.outputs.effects_table import EffectsText

    if interaction and factors:
        raise click.UsageError("--interaction names its two factors: drop --factor")
    df = read_metrics(metrics)
    if interaction:
        table = two_factor(df, *interaction, response=response, where=where)
    else:
        table = main_effects(df, response, list(factors) or None, where=where)
    write_output(EffectsText(markdown), table, None)
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
@click.option("--match", type=click.Choice(["id", "params"]), default="id",
              show_default=True,
              help="Pair the cases by case_id (their param_* values must agree, else the "
                   "pair is refused) or by their param_* values alone.")
@click.option("--allow-missing", is_flag=True,
              help="A case OK in BASE that NEW does not have does not fail the compare.")
@click.option("--alpha", type=Number(ALPHA),
              default=0.05, show_default=True,
              help="Significance level of the test a change beyond --max-regression must "
                   "pass to count.")
@click.option("--params/--no-params", "show_params", default=True, show_default=True,
              help="A params column after case_id: each case's parameters "
                   "(level=9 size=4), when the cases have any.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@debug_option
@handle_errors
def compare_cmd(base: str, new: str, metrics: tuple[str, ...], max_regression: str,
                match: str, allow_missing: bool, alpha: float, show_params: bool,
                markdown: bool, debug: bool) -> int:
    """Compare the cases of NEW with those of BASE (each a metrics.csv or a run
    directory). Exit 4 when a pair is refused (the same case_id names different
    parameters: use --match params) or on bad input, 3 when a case OK in BASE is FAIL,
    TIMEOUT or missing in NEW, or a value of BASE has none in NEW (--allow-missing: not
    missing), 2 when a metric got worse by
    more than --max-regression and significantly, 0 otherwise (FORMAT.md section 1).

    Significance: when both runs kept their repetitions (repetitions.csv in the run
    directory, repeat >= 2), a change beyond the tolerance counts only when a Mann-Whitney
    U test (Welch's t-test for samples too small for it) finds it significant at --alpha;
    else, when a file has a spread column (run_seconds_std, <metric>_std, or 1.4826 x
    <metric>_mad), only when |new - base| exceeds 2 x sqrt(std_base^2 + std_new^2).
    Otherwise it is "noisy: cannot tell", with the figures.
    """
    from doerunner.analysis.compare import compare, compared_columns, parse_ratio
    from doerunner.analysis.runfiles import load_with_repetitions
    from doerunner.outputs.compare_table import CompareText, case_points

    ratio = parse_ratio(max_regression)
    columns = compared_columns(metrics)
    b, b_reps, b_why = load_with_repetitions(base, columns)
    n, n_reps, n_why = load_with_repetitions(new, columns)
    result = compare(b, n, list(metrics) or None, ratio, match=match, base_reps=b_reps,
                     new_reps=n_reps, alpha=alpha, allow_missing=allow_missing)
    for why in (b_why, n_why):
        if why is not None:
            click.echo(f"srd: warning: {why}", err=True)
    points = case_points(result, b, n) if show_params else None
    write_output(CompareText(markdown, points), result, None)
    from doerunner.outputs.step_summary import append_compare

    append_compare(result, base, new, lambda w: click.echo(f"srd: warning: {w}", err=True),
                   points)
    return result.exit_code()


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
    from doerunner.analysis.report import build_report, load_report
    from doerunner.outputs.report_html import ReportHtml
    from doerunner.outputs.report_text import ReportMarkdown, ReportText

    if html_path is not None:
        _refuse_clash(f"--html {html_path}", html_path, [], [])  # an empty path first
    run = load_report(source, response)
    if html_path:
        _refuse_clash(f"--html {html_path}", html_path, [run.metrics_path], [])
    rep = build_report(run, response, top)
    write_output(ReportMarkdown() if markdown else ReportText(), rep, None)
    if html_path:
        write_output(ReportHtml(), rep, html_path, f"--html {html_path}")
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
@click.option("--format", "fmt", type=RegistryChoice(_export_format_names), default="json",
              show_default=True, help="Output format.")
@click.option("--out", "--output", "out", default=None, type=click.Path(),
              help="Output file (atomically); --out and --output are the same option. "
                   "Default: stdout (json, csv).")
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
    from doerunner.analysis.export import Selection, parse_statuses
    from doerunner.outputs.export import export

    sel = Selection(run_ids=run_ids, project=project, since=epoch(since, "--since"),
                    until=epoch(until, "--until"), cases=cases, tags=tags,
                    statuses=parse_statuses(statuses))
    for option, path in (("--out", out), ("--split", split_dir)):
        if path is not None:
            _export_refuse(f"{option} {path}", path, sel)
    result = export(sel, fmt, out, split=split_dir, timeseries=timeseries)
    for w in result.warnings:
        click.echo(f"srd: warning: {w}", err=True)
    click.echo(f"srd: {result.message}", err=True)
    return 0


def _export_refuse(name: str, path: str, sel: Any) -> None:
    """An export's output is none of srd's files, nor an input: a selected run's
    metrics.csv or anything in its run directory."""
    from doerunner.analysis.export import select_runs
    from doerunner.outputs.protect import check_given

    check_given(name.split(" ")[0], path)
    runs = select_runs(sel)
    _refuse_clash(name, path, [r.metrics_path for r in runs],
                  [r.run_dir for r in runs if r.run_dir])
