"""``metric_<name>`` columns of cases.csv: a regular expression whose one capturing group,
found in a command's output, is the metric ``<name>`` of the case (FORMAT.md §2 and §3).

A pattern is checked and compiled when cases.csv is read, each distinct cell once, and
travels with its ``Case``: nothing is compiled per execution. The shell backend matches it
line by line (``backends.outparse.Extractor``). Only backends that declare
``PARSES_OUTPUT`` read a command's output; a pattern for any other backend is an input
error rather than a column that silently stays empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

from doerunner.inputs.vocabulary import metric_name, metric_name_problem


@dataclass(frozen=True, slots=True)
class MetricPattern:
    """One ``metric_<name>`` cell: ``name`` is the metrics.csv column it fills (lower-cased),
    ``text`` the pattern as written, ``regex`` the compiled pattern (one capturing group)."""

    name: str
    text: str
    regex: regex.Pattern[str]


def header_problem(header: str, column: str, col: int,
                   seen: dict[str, tuple[str, int]]) -> str | None:
    """Why column ``column`` (``metric_<header>``, 1-based column ``col``) cannot be a
    ``metric_*`` column, or None (it is then recorded in ``seen``: metric → (column, col))."""
    problem = metric_name_problem(header)
    if problem is not None:
        return problem
    name = metric_name(header)
    if name in seen:
        other, other_col = seen[name]
        return (f"metric {name!r} is given twice: as {other!r} (column {other_col}) and "
                f"{column!r} (column {col})")
    seen[name] = (column, col)
    return None


def compile_pattern(header: str, text: str) -> MetricPattern:
    """The pattern ``text`` of column ``metric_<header>``. Raises ``ValueError`` with the
    message to report when it does not compile or has not exactly one capturing group (and
    the hint that a parameter of that name is written ``param_metric_<header>``: a
    ``metric_*`` column was a parameter before it was reserved)."""
    import regex  # the regex module: the same syntax as re, and matching with a timeout

    column = f"metric_{header}"
    hint = f" (a parameter of that name is written 'param_{column}')"
    try:
        compiled = regex.compile(text)
    except regex.error as e:
        raise ValueError(f"{column}: the pattern does not compile: {e}{hint}") from None
    except (RecursionError, OverflowError) as e:  # too deeply nested, a huge repeat count
        why = "too deeply nested" if isinstance(e, RecursionError) else e
        raise ValueError(f"{column}: the pattern does not compile: {why}{hint}") from None
    if compiled.groups != 1:
        has = "none" if compiled.groups == 0 else (
            f"{compiled.groups} (write (?:...) for a group that does not capture)")
        raise ValueError(f"{column}: the pattern must have exactly one capturing group, ( ) "
                         f"around the number; it has {has}{hint}")
    return MetricPattern(metric_name(header), text, compiled)


class PatternCells:
    """The ``metric_*`` cells of one read of cases.csv, each distinct cell compiled once.
    ``parsing``: the backends that read a command's output (``Backend.PARSES_OUTPUT``)."""

    def __init__(self, parsing: Iterable[str]) -> None:
        self.parsing = frozenset(parsing)
        self._memo: dict[tuple[int, str], MetricPattern | str] = {}  # a cell -> it or its fault

    def read(self, columns: Iterable[tuple[int, str]], row: list[str], line: int,
             backend: str | None,
             add: Callable[[int, int, str], None]) -> tuple[MetricPattern, ...]:
        """The patterns of a row's non-empty cells in ``columns`` (``(index, name after
        metric_)``); each problem is ``add``-ed as ``(line, column, message)``. An empty cell
        extracts nothing."""
        found: list[MetricPattern] = []
        for i, header in columns:
            cell = row[i]
            if not cell or cell.isspace():
                continue
            if backend is not None and backend not in self.parsing:
                add(line, i + 1, f"metric_{header}: the {backend} backend reads no command "
                                 f"output; metric_* columns are for the "
                                 f"{', '.join(sorted(self.parsing))} backend")
                continue
            pattern = self._memo.get((i, cell))
            if pattern is None:
                try:
                    pattern = compile_pattern(header, cell)
                except ValueError as e:
                    pattern = str(e)
                self._memo[(i, cell)] = pattern
            if isinstance(pattern, str):
                add(line, i + 1, pattern)
            else:
                found.append(pattern)
        return tuple(found)
