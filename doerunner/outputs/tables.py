"""Tables for a terminal or Markdown (the markup base of the text formats): aligned columns
or a GitHub-flavoured table, and numbers written as metrics.csv writes them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import IO, Any, ClassVar

from doerunner.cells import round_half_away
from doerunner.columns import decimals_for
from doerunner.outputs.base import OutputFormat


def fmt_number(value: float, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return round_half_away(value, decimals_for(metric))


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
