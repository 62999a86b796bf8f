"""The main-effects table (``srd effects``; the report's effects section) as text or
Markdown."""

from __future__ import annotations

from doerunner.analysis.effects import EffectsTable
from doerunner.analysis.metrics import spread_column
from doerunner.outputs.tables import TableText, fmt_number, render_table


def render_effects(table: EffectsTable, markdown: bool = False) -> str:
    """The effects table: a title line, then one line per level; rank, factor and effect
    on the first line of each factor. Numbers with the response's decimals (FORMAT.md §3)."""
    r = table.response
    headers = ["rank", "factor", "level", "n", "mean"]
    if table.has_spread:
        headers.append("std")
    if table.has_pooled:
        headers.append("pooled_std")
    headers.append("effect")
    rows = []
    for rank, f in enumerate(table.factors, 1):
        for i, lv in enumerate(f.levels):
            row = [str(rank) if i == 0 else "", f.factor if i == 0 else "", lv.level,
                   str(lv.n), fmt_number(lv.mean, r)]
            if table.has_spread:
                row.append(fmt_number(lv.std, r))
            if table.has_pooled:
                row.append(fmt_number(lv.pooled_std, r))
            row.append(fmt_number(f.effect, r) if i == 0 else "")
            rows.append(row)
    right = [h in ("rank", "n", "mean", "std", "pooled_std", "effect") for h in headers]
    title = (f"Main effects on {r}: {table.rows_used} OK rows with a value, of "
             f"{table.rows_total}; effect = max - min of the level means")
    if table.has_pooled:
        title += f"; pooled_std = pooled {spread_column(r)} of the level's rows"
    sep = "\n\n" if markdown else "\n"
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in headers]
    return title + sep + render_table(headers, columns, right, markdown)




class EffectsText(TableText):
    """The effects table, aligned for a terminal (``markdown``: a Markdown table)."""

    NAME = "effects"
    render = staticmethod(render_effects)
