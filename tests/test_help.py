"""Every command's help fits an 80-column terminal, whatever the terminal's width: click
wraps to ``max_content_width`` (80), and what it cannot wrap (an option's name with its
metavar) must be short enough."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from doerunner.cli import cli

from .conftest import run_srd


def _commands() -> list[tuple[str, ...]]:
    """Every command path: ``()`` for srd itself, ``("run",)``, ``("runs", "list")``..."""
    ctx = click.Context(cli)
    paths: list[tuple[str, ...]] = [()]
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        paths.append((name,))
        if isinstance(cmd, click.Group):
            paths += [(name, sub) for sub in cmd.list_commands(ctx)]
    return paths


@pytest.mark.parametrize("columns", ["80", "200"])
def test_every_help_fits_80_columns(columns: str) -> None:
    runner = CliRunner()
    wide: list[str] = []
    for path in _commands():
        r = runner.invoke(cli, [*path, "--help"], env={"COLUMNS": columns})
        assert r.exit_code == 0, (path, r.output)
        wide += [f"srd {' '.join(path)}: {line!r} ({len(line)})"
                 for line in r.output.splitlines() if len(line) > 80]
    assert wide == []


def test_help_in_a_real_process_fits_80_columns() -> None:
    p = run_srd("run", "--help", env={"COLUMNS": "200"})
    assert p.returncode == 0
    assert max(len(line) for line in p.stdout.splitlines()) <= 80
