"""``srd runs``: the run history ($SRD_HOME/history.sqlite)."""

from __future__ import annotations

import click

from doerunner.cli import cli, debug_option, epoch, handle_errors


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

    runs = list_runs(project, epoch(since, "--since"), epoch(until, "--until"))
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
