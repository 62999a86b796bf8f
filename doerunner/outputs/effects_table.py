"""The main-effects table (``srd effects``; the report's effects section) and the
two-factor table (``srd effects --interaction``) as text or Markdown."""

from __future__ import annotations

from doerunner.analysis.effects import Cell, EffectsTable, InteractionTable
from doerunner.analysis.metrics import spread_column
from doerunner.outputs.tables import TableText, fmt_number, render_table

EMPTY_CELL = "-"  # an interaction cell no row falls in


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
    title = (f"Main effects on {r}{_where(table.where)}: {table.rows_used} OK rows with a "
             f"value, of {table.rows_total}; effect = max - min of the level means")
    if table.has_pooled:
        title += f"; pooled_std = pooled {spread_column(r)} of the level's rows"
    sep = "\n\n" if markdown else "\n"
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in headers]
    return title + sep + render_table(headers, columns, right, markdown)


def render_interaction(table: InteractionTable, markdown: bool = False) -> str:
    """The two-factor table: a title line, then a row per level of A and a column per level
    of B, each cell ``mean (n)`` (``-``: no row), the margins ``all`` last. Means with the
    response's decimals (FORMAT.md §3); in text the counts are padded so that the means of
    a column line up."""
    r = table.response
    every = [c for row in table.cells for c in row] + [*table.by_a, *table.by_b, table.total]
    width = 0 if markdown else max(len(str(c.n)) for c in every)

    def text(c: Cell) -> str:
        if c.n == 0:
            return EMPTY_CELL
        return f"{fmt_number(c.mean, r)} {' ' * (width - len(str(c.n)))}({c.n})"

    headers = [f"{table.factor_a} \\ {table.factor_b}", *table.levels_b, "all"]
    columns = [[*table.levels_a, "all"]]
    for j in range(len(table.levels_b)):
        columns.append([*(text(row[j]) for row in table.cells), text(table.by_b[j])])
    columns.append([*(text(c) for c in table.by_a), text(table.total)])
    right = [False] + [True] * (len(headers) - 1)
    title = (f"Interaction of {table.factor_a} and {table.factor_b} on {r}"
             f"{_where(table.where)}: {table.rows_used} OK rows with a value of all three, "
             f"of {table.rows_total}; each cell: mean (n rows); all = every level of the "
             "other factor")
    sep = "\n\n" if markdown else "\n"
    return title + sep + render_table(headers, columns, right, markdown)


def _where(condition: str) -> str:
    return f" where {condition}" if condition else ""


def _render(table: EffectsTable | InteractionTable, markdown: bool = False) -> str:
    if isinstance(table, InteractionTable):
        return render_interaction(table, markdown)
    return render_effects(table, markdown)


class EffectsText(TableText):
    """``srd effects``: the main-effects table or (given an ``InteractionTable``) the
    two-factor table, aligned for a terminal (``markdown``: a Markdown table)."""

    NAME = "effects"
    render = staticmethod(_render)
