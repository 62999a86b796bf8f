"""Tables for a terminal or Markdown (the markup base of the text formats): aligned columns
or a GitHub-flavoured table, and numbers written as metrics.csv writes them.

The report's tables (text, Markdown and HTML alike) go through ``shown_table``, the one place
that decides what a table shows: cells as metrics.csv writes them, columns empty in every row
left out, numbers right-aligned."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

from doerunner.cells import round_half_away
from doerunner.columns import TEXT, decimals_for, kind_of
from doerunner.outputs.base import OutputFormat

if TYPE_CHECKING:
    import pandas as pd


def fmt_number(value: float, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return round_half_away(value, decimals_for(metric))


def cell_text(value: Any, column: str) -> str:
    """One value of a report table as text: a cell read from metrics.csv (``str``) as it is
    (metrics.csv already rounded it), a computed number (a mean, a total) with the decimals
    metrics.csv gives ``column`` (``columns.decimals_for``); an ``int`` as it is; None, NaN
    and infinities as ``""``."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, numbers.Integral):  # numpy's integers too
        return str(int(value))
    if isinstance(value, numbers.Real):
        return fmt_number(float(value), column)
    return str(value)


def is_number(text: str) -> bool:
    """True for a cell that reads as a finite number (``0.030000``, ``-3``, ``1e5``)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@dataclass(frozen=True)
class Shown:
    """A table as it is shown: the headers and cells (column by column) of the columns with
    a value in some row, which of them are right-aligned (numbers: every value a number, in
    a column that is not text in metrics.csv — parameters are labels, left-aligned like
    ``case_id``), and the names of the columns left out because every row is empty there."""

    headers: list[str]
    columns: list[list[str]]
    right: list[bool]
    hidden: list[str]


def shown_table(df: pd.DataFrame, labels: Collection[str] = ()) -> Shown:
    """What a report table shows of ``df`` (cells per ``cell_text``; a column empty in every
    row left out unless the table has no row; numbers right-aligned: see ``Shown``;
    ``labels``: more columns that are labels, left-aligned)."""
    headers, columns, right, hidden = [], [], [], []
    for c in df.columns:
        name = str(c)
        cells = [cell_text(v, name) for v in df[c].tolist()]
        filled = [x for x in cells if x != ""]
        if cells and not filled:
            hidden.append(name)
            continue
        headers.append(name)
        columns.append(cells)
        right.append(kind_of(name) != TEXT and name not in labels and bool(filled)
                     and all(map(is_number, filled)))
    return Shown(headers, columns, right, hidden)


def fmt_numbers(values: Sequence[float], metric: str) -> list[str]:
    places = decimals_for(metric)
    return [round_half_away(v, places) if math.isfinite(v) else "" for v in values]


def fmt_change(change: float) -> str:
    if math.isnan(change):
        return ""
    if math.isinf(change):
        return "+inf%" if change > 0 else "-inf%"
    text = round_half_away(change * 100, 2)
    return text + "%" if text.startswith("-") else "+" + text + "%"


def render_table(headers: Sequence[str], columns: Sequence[Sequence[str]],
                 right: Sequence[bool], markdown: bool = False) -> str:
    """Aligned plain-text columns, or a GitHub-flavoured Markdown table. ``columns`` holds
    the cells column by column; ``right`` says which columns are right-aligned (numbers)."""
    if markdown:
        def cell(s: str) -> str:
            return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        cols = [[cell(c) for c in col] for col in columns]
        lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in zip(*cols, strict=True)]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), max(map(len, col), default=0))
              for h, col in zip(headers, columns, strict=True)]
    padded = [[c.rjust(w) for c in col] if r else [c.ljust(w) for c in col]
              for col, w, r in zip(columns, widths, right, strict=True)]
    head = [[h.rjust(w) if r else h.ljust(w)]
            for h, w, r in zip(headers, widths, right, strict=True)]
    rule = [["-" * w] for w in widths]
    lines = ["  ".join(cells).rstrip()
             for part in (head, rule, padded) for cells in zip(*part, strict=True)]
    return "\n".join(lines) + "\n"


class TableText(OutputFormat):
    """A table-like format: aligned text for a terminal, or (``markdown``) a Markdown table;
    ``render(data, markdown)`` of the subclass makes the text."""

    render: ClassVar[Callable[[Any, bool], str]]

    def __init__(self, markdown: bool = False) -> None:
        self.markdown = markdown

    def write(self, data: Any, stream: IO[str]) -> None:
        stream.write(type(self).render(data, self.markdown))
