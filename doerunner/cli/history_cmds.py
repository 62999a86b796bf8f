"""``srd runs``: the run history ($SRD_HOME/history.sqlite). Times are shown as ISO 8601
with the offset, second precision, in ``--tz`` (JST by default), as metrics.csv's
``ts_start``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from doerunner.cells import DEFAULT_TZ
from doerunner.cli import cli, debug_option, epoch, handle_errors

if TYPE_CHECKING:
    from datetime import tzinfo

    from doerunner.history import RunRecord

_TZ_HELP = ("Timezone of the times shown (ISO 8601, as metrics.csv's ts_start): JST, UTC, "
            "local, +05:30 or an IANA name.")


def _zone(tz: str) -> tzinfo:
    """``--tz`` as ``srd run`` reads it (``cells.parse_tz``); ``InputError`` when unknown."""
    from doerunner.cells import parse_tz
    from doerunner.errors import InputError

    try:
        return parse_tz(tz)
    except ValueError as e:
        raise InputError(f"--tz: {e}") from None


def _record_json(r: RunRecord, zone: tzinfo) -> dict[str, Any]:
    """A history record as JSON, ``started``/``ended`` ISO 8601 in ``zone`` (ended null
    while unfinished)."""
    import dataclasses

    from doerunner.cells import format_timestamp

    d = dataclasses.asdict(r)
    for k in ("started", "ended"):
        if d[k] is not None:
            d[k] = format_timestamp(d[k], zone)
    return d


@cli.group("runs")
def runs_group() -> None:
    """The run history: every srd run registers itself ($SRD_HOME/history.sqlite)."""


@runs_group.command("list")
@click.option("--project", default=None, help="Only this project's runs.")
@click.option("--since", default=None, help="Runs started on or after this date/time.")
@click.option("--until", default=None, help="Runs started before this date/time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help=_TZ_HELP)
@debug_option
@handle_errors
def runs_list(project: str | None, since: str | None, until: str | None, as_json: bool,
              tz: str, debug: bool) -> int:
    """List registered runs, oldest first."""
    import json

    from doerunner.cells import timestamp_formatter
    from doerunner.history import list_runs

    zone = _zone(tz)
    runs = list_runs(project, epoch(since, "--since"), epoch(until, "--until"))
    if as_json:
        click.echo(json.dumps([_record_json(r, zone) for r in runs], indent=2))
        return 0
    iso = timestamp_formatter(zone)
    for r in runs:
        started = iso(r.started)
        state = f"exit {r.exit_code}" if r.exit_code is not None else "unfinished"
        click.echo(f"{r.run_id}  {started}  {r.project or '-'}  {r.total} cases "
                   f"({r.ok} OK, {r.fail} FAIL, {r.timeout} TIMEOUT)  {state}  "
                   f"{r.metrics_path}")
    return 0


@runs_group.command("show")
@click.argument("run_id")
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help=_TZ_HELP)
@debug_option
@handle_errors
def runs_show(run_id: str, tz: str, debug: bool) -> int:
    """Show one run (an id or a unique prefix of one) as JSON. A prefix of several runs'
    ids lists them (with their start times) and exits 4."""
    import json

    from doerunner.errors import InputError
    from doerunner.history import get_run

    zone = _zone(tz)
    r = get_run(run_id, tz=zone)
    if r is None:
        raise InputError(f"no run {run_id!r} in the history (srd runs list shows them)")
    click.echo(json.dumps(_record_json(r, zone), indent=2))
    return 0
