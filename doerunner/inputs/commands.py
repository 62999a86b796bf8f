"""The ``shell`` and hook (``setup``, ``prepare``, ``cleanup``) cells of cases.csv (FORMAT.md
§2): how a row's commands run and what runs around them, with the ``srd run`` options
(``--no-shell``, ``--setup``...) for the rows whose cells are empty.

A hook is a command template like ``cmd`` and is checked like it when the file is read
(``inputs.argv.command_problems``): a placeholder naming no parameter, or, without a
shell, a quote left open, is an input error at the cell's line and column (an option's,
once, without a location).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from doerunner.errors import Problem
from doerunner.inputs.argv import command_problems
from doerunner.inputs.layout import quoted
from doerunner.inputs.vocabulary import HOOKS, parse_flag

Commands = tuple[bool, str | None, str | None, str | None]
"""A row's ``shell``, ``setup``, ``prepare`` and ``cleanup``, in ``Case``'s field order."""


class CommandCells:
    """Reads the ``shell`` and hook cells of each row of one file.

    ``hooks`` (hook name → command template; empty or blank: none) and ``shell`` are the
    options' defaults; problems that belong to no cell are appended to ``problems``."""

    def __init__(self, hooks: Mapping[str, str | None] | None, shell: bool,
                 problems: list[Problem]) -> None:
        unknown = set(hooks or ()) - set(HOOKS)
        if unknown:
            raise ValueError(f"unknown hook {sorted(unknown)[0]!r} (known: {', '.join(HOOKS)})")
        self.defaults = {hook: template for hook, template in (hooks or {}).items()
                         if template and not template.isspace()}
        self.shell = bool(shell)
        self.plain: Commands = (self.shell, None, None, None)  # a row without such cells
        self.problems = problems
        self.memo: dict[tuple[str, str], list[str]] = {}  # (column, template) -> problems
        self.told: set[str] = set()  # the options' problems, each told once

    def read(self, row: list[str], line: int, params: Mapping[str, str], shell_at: int,
             hooks_at: tuple[tuple[str, int], ...],
             add: Callable[[int, int, str], None]) -> Commands:
        """The row's commands: its ``shell`` cell (at index ``shell_at``, -1: none) and hook
        cells (``(hook, index)`` in ``hooks_at``), the options' where a cell is empty; each
        problem reported through ``add(line, column, message)``."""
        shell = self.shell
        if shell_at >= 0 and (value := row[shell_at].strip()):
            flag = parse_flag(value)
            if flag is None:
                add(line, shell_at + 1, "shell must be 1, true, yes or x (run the commands "
                    "with /bin/sh -c) or 0, false, no (run them without a shell), got "
                    f"{quoted(value)}")
            else:
                shell = flag
        found = dict(self.defaults)
        cols: dict[str, int] = {}
        for hook, i in hooks_at:
            cell = row[i]
            if cell and not cell.isspace():
                found[hook] = cell
                cols[hook] = i + 1
        for hook, template in found.items():
            col = cols.get(hook, 0)
            for message in self._problems(hook if col else f"--{hook}", template, params,
                                          shell):
                if col:
                    add(line, col, message)
                elif message not in self.told:
                    self.told.add(message)
                    self.problems.append(Problem("", 0, 0, message))
        return (shell, found.get("setup"), found.get("prepare"), found.get("cleanup"))

    def _problems(self, column: str, template: str, params: Mapping[str, str],
                  shell: bool) -> list[str]:
        """``command_problems``, remembered per distinct template where they depend on the
        parameter names alone (with a shell: every row of a file has the same names)."""
        if not shell:  # a value standing alone is split: its problems depend on the value
            return command_problems(column, template, params, shell)
        found = self.memo.get((column, template))
        if found is None:
            found = self.memo[(column, template)] = command_problems(column, template, params,
                                                                     shell)
        return found
