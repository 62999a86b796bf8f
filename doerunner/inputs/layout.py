"""The layout of a cases.csv header (FORMAT.md §2): which column is which — reserved, a
parameter, a tag, a note, a threshold, an empty one at the end (a spreadsheet's) — and every
problem of the header row. A mixin of the reader (``inputs.cases``), which calls
``read_header`` on the first row that is not a comment, ``fits`` on each row, and
``end_of_rows`` after the last."""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from typing import Any

from doerunner.inputs.patterns import header_problem
from doerunner.inputs.vocabulary import (
    HOOKS,
    NAME_RE,
    NAME_RULE,
    classify_column,
    near_miss,
    param_env_name,
)

ROW_COLUMNS = ("case_id", "backend", "cmd", "timeout_s", "repeat", "warmup")
"""The reserved columns every row's reader picks by position (``Layout.reserved_at``)."""


def quoted(value: str) -> str:
    """``value`` quoted for a message: one line, long values cut at 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "...")



class Layout:
    """What the header says, set by ``read_header``: ``ncols`` (its cells), ``width`` (its
    cells before the empty ones that end it), ``columns`` (name → 1-based column),
    ``reserved`` (name → index), the parameter, tag, note, threshold and metric columns as
    ``(index, name)``, and the pickers that take a row's cells. The reader provides ``file``,
    ``add`` (report a problem), ``notices`` and ``all_tags`` (every tag name seen)."""

    file: str
    add: Callable[[int, int, str], None]
    notices: list[str]
    all_tags: set[str]
    ncols = width = 0

    def read_header(self, row: list[str], line: int, bad: set[int] | tuple[()]) -> None:
        names = [sys.intern(c.strip()) for c in row]
        self.ncols = len(names)
        # Spreadsheets write the empty cells of their used range: empty header cells at the
        # end are left out, unless a row holds a value there (``fits``, ``end_of_rows``).
        width = len(names)
        while width and not row[width - 1]:
            width -= 1
        self.width = width
        del names[width:]
        self.held: dict[int, list[Any]] = {}  # index -> [line, value, rows] of a value there
        self.columns: dict[str, int] = {}  # name -> 1-based column of its first occurrence
        self.reserved: dict[str, int] = {}  # reserved name -> 0-based index
        self.param_cols: list[tuple[int, str]] = []
        self.tag_cols: list[tuple[int, str]] = []
        self.note_cols: list[tuple[int, str]] = []
        self.threshold_cols: list[tuple[int, str]] = []
        self.metric_cols: list[tuple[int, str]] = []  # (index, name after metric_)
        metrics: dict[str, tuple[str, int]] = {}  # metric -> (column name, column)
        params: dict[str, tuple[str, int]] = {}  # parameter -> (column name, column)
        env_names: dict[str, tuple[str, int]] = {}  # SRD_PARAM_* -> (parameter, column)
        for i, name in enumerate(names):
            col = i + 1
            if i in bad:
                continue  # reported already
            if not name:
                self.add(line, col, "empty column name")
                continue
            if name in self.columns:
                first_col = self.columns[name]
                self.add(line, col, f"duplicate column {quoted(name)} (also column {first_col})")
                continue
            self.columns[name] = col
            column = classify_column(name)
            prefix = column.kind
            if prefix == "reserved":
                self.reserved[name] = i
                continue
            if prefix == "ext":
                self.add(line, col, "ext_* columns are reserved for backend output")
                continue
            if prefix == "unnamed":
                self.add(line, col, f"column {quoted(name)} needs a name after "
                                    f"{quoted(column.prefix + '_')}")
                continue
            rest = column.name
            rest = sys.intern(rest)
            meant = near_miss(name) if prefix == "param" else None
            if meant is not None and meant != "case_id":  # that one: the missing case_id
                self.add(line, col, f"column {quoted(name)} would be read as a parameter: did "
                                    f"you mean {quoted(meant)}? (a parameter of that name is "
                                    f"written {quoted('param_' + name)})")
                continue
            if prefix == "note":
                self.note_cols.append((i, rest))
            elif prefix == "threshold":
                self.threshold_cols.append((i, rest))
            elif prefix == "metric":
                problem = header_problem(rest, name, col, metrics)
                if problem is None:
                    self.metric_cols.append((i, rest))
                else:
                    self.add(line, col, problem)
            elif not NAME_RE.fullmatch(rest):
                self.add(line, col, f"{'parameter' if prefix == 'param' else 'tag'} name "
                                    f"{quoted(rest)} is not allowed: {NAME_RULE}")
            elif prefix == "tag":
                self.tag_cols.append((i, rest))
                self.all_tags.add(rest)
            elif rest in params:
                other, other_col = params[rest]
                self.add(line, col, f"parameter {quoted(rest)} is given twice: as {quoted(other)} "
                                    f"(column {other_col}) and {quoted(name)} (column {col})")
            else:
                env = param_env_name(rest)
                if env in env_names:
                    other, other_col = env_names[env]
                    self.add(line, col, f"parameters {quoted(other)} (column {other_col}) and "
                                        f"{quoted(rest)} (column {col}) both become {env}")
                    continue
                params[rest] = (name, col)
                env_names[env] = (rest, col)
                self.param_cols.append((i, rest))
        if "case_id" not in self.reserved:
            hint = next((f" (column {c} is {quoted(n)}: column names are case-sensitive)"
                         for n, c in self.columns.items() if n.lower() == "case_id"), "") or \
                next((f" (column {c} is {quoted(n)}: did you mean 'case_id'?)"
                      for n, c in self.columns.items() if near_miss(n) == "case_id"), "")
            self.add(line, 0, f"missing required column 'case_id'{hint}")
        # 0-based indices of case_id, backend, cmd, timeout_s, repeat, warmup (-1: absent)
        self.reserved_at = tuple(self.reserved.get(name, -1) for name in ROW_COLUMNS)
        self.shell_at = self.reserved.get("shell", -1)
        self.hooks_at = tuple((name, self.reserved[name]) for name in HOOKS
                              if name in self.reserved)  # (hook, index) of those present
        self.tag_names = dict(self.tag_cols)
        self.tag_at = tuple(sorted([i for i, _ in self.tag_cols] + (
            [self.reserved["tags"]] if "tags" in self.reserved else [])))
        self.tag_cells = picker(self.tag_at)
        self.param_names = tuple(name for _, name in self.param_cols)
        self.param_columns = {name: i + 1 for i, name in self.param_cols}
        self.param_cells = picker(tuple(i for i, _ in self.param_cols))

    def fits(self, row: list[str], line: int) -> bool:
        """Whether ``row`` has a cell for each column; reports it when not. Cells under the
        empty header cells at the end may be missing; where they hold a value it is noted."""
        n = len(row)
        if not self.width <= n <= self.ncols:
            ignored = self.ncols - self.width
            self.add(line, 0, f"row has {cells(n)} but the header has {self.width}" + (
                f" (and {ignored} empty at its end)" if ignored else ""))
            return False
        for i in range(self.width, n):
            value = row[i]
            if value and not value.isspace():
                held = self.held.setdefault(i, [line, value, 0])
                held[2] += 1
        return True

    def end_of_rows(self) -> None:
        """Report the values found under empty header cells at the end; note the columns
        that held none as left out."""
        if self.width == self.ncols:
            return
        for i, (line, value, rows) in sorted(self.held.items()):
            more = f" (and in {rows - 1} more row{'s' if rows > 2 else ''})" if rows > 1 else ""
            self.add(line, i + 1, f"value {quoted(value.strip())} in column {i + 1}, whose "
                                  f"header cell is empty{more}: name the column, or empty "
                                  "its cells")
        ignored = self.ncols - self.width - len(self.held)
        if ignored:
            self.notices.append(f"{self.file}: ignored {ignored} empty "
                                f"column{'s' if ignored > 1 else ''} at the end of the header")


def cells(n: int) -> str:
    """``1 cell``, ``2 cells``."""
    return "1 cell" if n == 1 else f"{n} cells"


def picker(indices: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function returning the cells at ``indices`` of a row, as a tuple, fast."""
    if len(indices) == 1:
        i = indices[0]
        return lambda row: (row[i],)
    if not indices:
        return lambda row: ()
    return operator.itemgetter(*indices)
