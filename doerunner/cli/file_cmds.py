"""``srd validate``, ``srd design`` and ``srd format``: the files srd reads and writes."""

from __future__ import annotations

import click

from doerunner.cli import EXIT_USAGE, cli, debug_option, handle_errors


@cli.command("validate")
@click.argument("metrics", type=click.Path())
@click.option("--cases", "cases_path", type=click.Path(),
              help="Also check that every case of this cases.csv is present, in order.")
@debug_option
@handle_errors
def validate_cmd(metrics: str, cases_path: str | None, debug: bool) -> int:
    """Check a metrics.csv against the format (FORMAT.md §3). Exit 0 when valid, else 4."""
    from doerunner.inputs.cases import read_cases
    from doerunner.outputs.protect import check_given
    from doerunner.outputs.validate import validate_metrics_csv

    check_given("--cases", cases_path)
    notices: list[str] = []
    try:
        cases = read_cases(cases_path, check_backends=False, notices=notices) \
            if cases_path else None
    finally:
        for note in notices:
            click.echo(f"srd: warning: {note}", err=True)
    problems = validate_metrics_csv(metrics, cases)
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        click.echo(f"srd: {metrics}: {len(problems)} problem(s)", err=True)
        return EXIT_USAGE
    click.echo(f"{metrics}: valid")
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
    from doerunner.outputs.protect import refuse

    refuse(f"--out {out}", out, [design_yaml])
    generated = design_to_csv(design_yaml, out, force=force)
    click.echo(f"{out}: {generated.summary()}")
    return 0


@cli.command("format")
@click.argument("section", required=False)
@debug_option
@handle_errors
def format_cmd(section: str | None, debug: bool) -> int:
    """Print the format reference (FORMAT.md): cases.csv, metrics.csv, exit codes, the run
    directory. SECTION: a section number (2) or a word of its title (metrics)."""
    from doerunner.reference import section_text

    click.echo(section_text(section), nl=False)
    return 0
