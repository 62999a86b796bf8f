"""The layout of a cases.csv header (FORMAT.md §2): which column is which — reserved, a
parameter, a tag, a note, a threshold — and every problem of the header row. A mixin of the
reader (``inputs.cases``), which calls ``read_header`` on the first row that is not a comment
and reads the rows with what it set."""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable

from doerunner.inputs.vocabulary import (
    NAME_RE,
    NAME_RULE,
    RESERVED,
    classify_column,
    near_miss,
    param_env_name,
)


def quoted(value: str) -> str:
    """``value`` quoted for a message: one line, long values cut at 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "...")



class Layout:
    """What the header says, set by ``read_header``: ``ncols``, ``columns`` (name → 1-based
    column), ``reserved`` (name → index), the parameter, tag, note and threshold columns as
    ``(index, name)``, and the pickers that take a row's cells. The reader provides ``add``
    (report a problem) and ``all_tags`` (every tag name seen)."""

    add: Callable[[int, int, str], None]
    all_tags: set[str]

    def read_header(self, row: list[str], line: int, bad: set[int] | tuple[()]) -> None:
        names = [sys.intern(c.strip()) for c in row]
        self.ncols = len(names)
        self.columns: dict[str, int] = {}  # name -> 1-based column of its first occurrence
        self.reserved: dict[str, int] = {}  # reserved name -> 0-based index
        self.param_cols: list[tuple[int, str]] = []
        self.tag_cols: list[tuple[int, str]] = []
        self.note_cols: list[tuple[int, str]] = []
        self.threshold_cols: list[tuple[int, str]] = []
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
        self.reserved_at = tuple(self.reserved.get(name, -1) for name in RESERVED[:6])
        self.tag_names = dict(self.tag_cols)
        self.tag_at = tuple(sorted([i for i, _ in self.tag_cols] + (
            [self.reserved["tags"]] if "tags" in self.reserved else [])))
        self.tag_cells = picker(self.tag_at)
        self.param_names = tuple(name for _, name in self.param_cols)
        self.param_columns = {name: i + 1 for i, name in self.param_cols}
        self.param_cells = picker(tuple(i for i, _ in self.param_cols))



def picker(indices: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function returning the cells at ``indices`` of a row, as a tuple, fast."""
    if len(indices) == 1:
        i = indices[0]
        return lambda row: (row[i],)
    if not indices:
        return lambda row: ()
    return operator.itemgetter(*indices)
