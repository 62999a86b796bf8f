"""The ``srd`` command: thin click commands that build library objects, call them, and turn
the library's errors into exit codes (FORMAT.md §1). Heavy modules are imported inside
commands so that ``srd --help`` stays fast.

This module holds the group, the error mapping and the options shared by commands; the
commands live beside it: ``run_cmd`` (srd run), ``gpu_cmds`` (env, baseline), ``file_cmds``
(validate, design, format), ``analysis_cmds`` (effects, compare, report, export) and
``history_cmds`` (runs).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

EXIT_USAGE = 4
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what `cat` reports when its reader goes away


# The module of each command, imported when the command is used or listed (`srd run` never
# pays for importing the others).
COMMAND_MODULES = {"run": "run_cmd", "env": "gpu_cmds", "baseline": "gpu_cmds",
                   "validate": "file_cmds", "design": "file_cmds", "format": "file_cmds",
                   "effects": "analysis_cmds", "compare": "analysis_cmds",
                   "report": "analysis_cmds", "export": "analysis_cmds",
                   "runs": "history_cmds"}


class SrdGroup(click.Group):
    """A click group whose usage errors exit 4, never click's 2 (2 means "thresholds
    violated" to a CI pipeline), and whose commands are imported when first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            import importlib

            importlib.import_module(f"doerunner.cli.{COMMAND_MODULES[name]}")
        return super().get_command(ctx, name)

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


class RegistryChoice(click.Choice):
    """A choice among the names of a registry (executors, export formats), read when the
    option is parsed or shown: a member added to its registry is offered without touching
    the CLI, and the registry is not imported for ``srd --help``."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Any) -> None:
        pass  # click.Choice sets it in __init__; the registry decides


@click.group(cls=SrdGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 80})
@click.version_option(package_name="doerunner", prog_name="srd")
@debug_option
def cli(debug: bool) -> None:
    """srd (doerunner): run every case of a cases.csv and write a deterministic metrics.csv.

    Exit codes: 0 ok, 2 thresholds violated, 3 a case failed or timed out, 4 bad input or
    usage, 130 interrupted, 1 internal error. The formats of cases.csv, metrics.csv and the
    run directory: srd format (FORMAT.md). The run history (srd runs) and the baseline
    cache live in $SRD_HOME, by default $XDG_DATA_HOME/doerunner, else
    ~/.local/share/doerunner (srd runs --help shows the path in use).
    """


def epoch(text: str | None, option: str) -> float | None:
    """A date (YYYY-MM-DD) or ISO 8601 time → epoch seconds (local time when no offset)."""
    if text is None:
        return None
    from datetime import datetime

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date like 2026-11-23 or "
                                 "2026-11-23T10:00", param_hint=option) from None
    try:  # shown again in local time: 9999-12-31T23:59-14:00 is in year 10000 there
        seconds = when.timestamp()
        datetime.fromtimestamp(seconds)
        return seconds
    except (ValueError, OverflowError, OSError):
        raise click.BadParameter(f"{text!r} is out of the range of dates srd takes (years 1 "
                                 "to 9999)", param_hint=option) from None


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="srd")

