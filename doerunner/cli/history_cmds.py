"""``srd runs``: the run history ($SRD_HOME/history.sqlite). Times are shown as ISO 8601
with the offset, second precision, in ``--tz`` (JST by default), as metrics.csv's
``ts_start``. ``list`` shows the newest runs first; ``rm`` and ``prune`` remove records
(and, with ``--files``, what ``history.run_files`` allows of their files)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from doerunner.cells import DEFAULT_TZ
from doerunner.cli import RegistryChoice, cli, debug_option, epoch, handle_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import tzinfo

    from doerunner.history import RunRecord

_TZ_HELP = ("Timezone of the times shown (ISO 8601, as metrics.csv's ts_start): JST, UTC, "
            "local, +05:30 or an IANA name.")
TERMINAL_LIMIT = 20  # runs `srd runs list` shows on a terminal unless --limit says otherwise


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
    while unfinished), and its ``status``."""
    import dataclasses

    from doerunner.cells import format_timestamp

    d = dataclasses.asdict(r)
    for k in ("started", "ended"):
        if d[k] is not None:
            d[k] = format_timestamp(d[k], zone)
    d["status"] = r.status
    return d


def _line(r: RunRecord, iso: Callable[[float], str]) -> str:
    """One run in one line, as ``srd runs list`` shows it."""
    state = f"exit {r.exit_code}" if r.exit_code is not None else "unfinished"
    return (f"{r.run_id}  {iso(r.started)}  {r.project or '-'}  {r.total} cases "
            f"({r.ok} OK, {r.fail} FAIL, {r.timeout} TIMEOUT)  {state}  {r.metrics_path}")


def _statuses() -> list[str]:
    from doerunner.history import RUN_STATUSES

    return list(RUN_STATUSES)


_STATUS = RegistryChoice(_statuses)
_STATUS.case_sensitive = False  # --status OK as well as ok


class _RunsGroup(click.Group):
    """``srd runs``, whose help ends with where the history is on this machine (read when
    the help is shown: ``$SRD_HOME`` may have changed since the module was imported)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from doerunner.history import db_path

        formatter.write_paragraph()
        formatter.write_text("The history here:")
        with formatter.indentation():
            formatter.write(f"{formatter.current_indent * ' '}{db_path()}\n")


@cli.group("runs", cls=_RunsGroup)
def runs_group() -> None:
    """The run history: every srd run registers itself (run id, project, start and end,
    outputs, counts by status, exit code) in history.sqlite in $SRD_HOME, by default
    $XDG_DATA_HOME/doerunner, else ~/.local/share/doerunner.

    Statuses: ok (exit 0), violated (2: thresholds), failed (3: a case FAIL or
    TIMEOUT), interrupted (130), unfinished (running, or killed before its end).
    """


@runs_group.command("list")
@click.option("--project", default=None, help="Only this project's runs.")
@click.option("--status", "statuses", multiple=True, type=_STATUS,
              help="Only runs with this status; repeat for more.")
@click.option("--since", default=None, help="Runs started on or after this date/time.")
@click.option("--until", default=None, help="Runs started before this date/time.")
@click.option("-n", "--limit", type=click.IntRange(min=0), default=None,
              help=f"Show the newest N runs (0: all). Default: {TERMINAL_LIMIT} on a "
                   "terminal, else all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help=_TZ_HELP)
@debug_option
@handle_errors
def runs_list(project: str | None, statuses: tuple[str, ...], since: str | None,
              until: str | None, limit: int | None, as_json: bool, tz: str,
              debug: bool) -> int:
    """List registered runs, newest first. On a terminal the newest 20 are shown (a
    line on stderr says how many more there are); piped or with --json, all of them."""
    import json

    from doerunner.cells import timestamp_formatter
    from doerunner.history import list_runs

    zone = _zone(tz)
    runs = list_runs(project, epoch(since, "--since"), epoch(until, "--until"),
                     statuses=statuses, newest_first=True)
    default = limit is None
    if default:
        limit = TERMINAL_LIMIT if sys.stdout.isatty() and not as_json else 0
    shown = runs[:limit] if limit else runs
    if as_json:
        click.echo(json.dumps([_record_json(r, zone) for r in shown], indent=2))
        return 0
    iso = timestamp_formatter(zone)
    for r in shown:
        click.echo(_line(r, iso))
    if default and len(shown) < len(runs):
        click.echo(f"srd: the newest {len(shown)} of {len(runs)} runs; --limit 0 shows all",
                   err=True)
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


_FILES_HELP = ("Also delete the run directory (srd's files in it) and metrics.csv, unless "
               "a later run wrote over them.")
_DRY_RUN_HELP = "List what would be removed; remove nothing."


@runs_group.command("rm", short_help="Remove runs (ids or unique prefixes) from the history.")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option("--files", is_flag=True, help=_FILES_HELP)
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help=_TZ_HELP)
@debug_option
@handle_errors
def runs_rm(run_ids: tuple[str, ...], files: bool, dry_run: bool, tz: str,
            debug: bool) -> int:
    """Remove runs (ids or unique prefixes) from the history: their records only, unless
    --files. An unknown id, or a prefix of several runs' ids, removes nothing (exit 4)."""
    from doerunner.errors import InputError
    from doerunner.history import get_run

    zone = _zone(tz)
    found: dict[str, RunRecord] = {}
    unknown = []
    for rid in run_ids:
        r = get_run(rid, tz=zone)
        if r is None:
            unknown.append(rid)
        else:
            found.setdefault(r.run_id, r)
    if unknown:
        raise InputError(f"no run {', '.join(map(repr, unknown))} in the history (srd runs "
                         "list shows them); nothing removed")
    n = _remove(list(found.values()), files, dry_run, zone)
    what = f"{n} run{'' if n == 1 else 's'}"
    click.echo(f"srd: --dry-run: would remove {what} from the history; nothing removed"
               if dry_run else f"srd: removed {what} from the history", err=True)
    return 0


@runs_group.command("prune", short_help="Remove the runs started longer ago than AGE.")
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Remove the runs started longer ago than AGE: 12h, 30d, 2w (s, m for "
                   "minutes, h, d, w).")
@click.option("--project", default=None, help="Only this project's runs.")
@click.option("--files", is_flag=True, help=_FILES_HELP)
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option("--tz", default=DEFAULT_TZ, show_default=True, help=_TZ_HELP)
@debug_option
@handle_errors
def runs_prune(older_than: str, project: str | None, files: bool, dry_run: bool, tz: str,
               debug: bool) -> int:
    """Remove the runs started before a cutoff from the history: their records only,
    unless --files. Prints the runs removed (with --dry-run: that would be)."""
    import time

    from doerunner.cells import format_timestamp
    from doerunner.history import list_runs, parse_duration

    try:
        age_s = parse_duration(older_than)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--older-than") from None
    zone = _zone(tz)
    cutoff = time.time() - age_s
    old = list_runs(project, until=cutoff)[::-1]  # newest first, as srd runs list
    before = f"started before {format_timestamp(cutoff, zone)}"
    if not old:
        click.echo(f"srd: no run {before}" + (f" in project {project!r}" if project else ""),
                   err=True)
        return 0
    total = len(list_runs())
    n = _remove(old, files, dry_run, zone)
    what = f"{n} run{'' if n == 1 else 's'} {before}"
    click.echo(f"srd: --dry-run: would remove {what} from the history ({total - n} would be "
               "left); nothing removed" if dry_run
               else f"srd: removed {what} from the history ({total - n} left)", err=True)
    return 0


def _remove(runs: Sequence[RunRecord], files: bool, dry_run: bool, zone: tzinfo) -> int:
    """Remove ``runs`` (with ``files``: their files first, and a run whose files cannot
    all be deleted keeps its record: ``OutputError``), printing each as ``srd runs list``
    does with what happened to its files under it; how many were (or would be) removed."""
    from doerunner.cells import timestamp_formatter
    from doerunner.history import delete_run_files, list_runs, remove_runs, run_files

    iso = timestamp_formatter(zone)
    records = list_runs() if files else []
    for r in runs:
        click.echo(_line(r, iso))
        if files:
            plan = run_files(r, records)
            for f in plan:
                click.echo(_file_line(f.path, f.delete, f.kept, dry_run))
            if not dry_run:
                delete_run_files(plan)
        if not dry_run:
            remove_runs([r.run_id])
    return len(runs)


def _file_line(path: str, delete: bool, kept: str, dry_run: bool) -> str:
    if not delete:
        return f"  kept {path}: {kept}"
    if kept:  # a run directory with other files in it
        return (f"  {'would delete' if dry_run else 'deleted'} srd's files in {path}; "
                f"kept the folder: {kept}")
    return f"  {'would delete' if dry_run else 'deleted'} {path}"
