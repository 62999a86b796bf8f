"""The report (``analysis.report.Report``) as terminal text or GitHub-flavoured Markdown (a CI
job summary). Its tables are shown by ``outputs.tables.shown_table``: cells as metrics.csv
writes them, columns empty in every row left out."""

from __future__ import annotations

import math
from typing import IO

import pandas as pd

from doerunner.analysis.report import Report
from doerunner.cells import round_half_away
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.effects_table import render_effects
from doerunner.outputs.tables import cell_text, render_table, shown_table


def total_text(value: float, column: str, unit: str) -> str:
    """A total the report adds up, with ``column``'s decimals and ``unit``; one that
    overflows a float (values near ±1.8e308 added up) says so instead of a number."""
    if math.isfinite(value):
        return f"{cell_text(value, column)} {unit}"
    return "too large to add up (beyond ±1.8e308 " + unit + ")"


def headline(r: Report) -> list[str]:
    rj = r.source.run_json or {}
    total = sum(r.counts.values())
    counts = ", ".join(f"{n} {s}" for s, n in r.counts.items())
    head = f"{total} cases: {counts}; {r.violated} violated thresholds"
    lines = []
    if rj:
        project = (rj.get("options") or {}).get("project")
        lines.append(f"run {rj.get('run_id', '?')}" + (f" (project {project})" if project else "")
                     + f", started {rj.get('started', '?')}")
    lines.append(f"metrics: {r.source.metrics_path}")
    lines.append(head)
    reps = f"{r.repetitions} repetition" + ("" if r.repetitions == 1 else "s")
    wall = (f"{round_half_away(r.wall_s, 1)} s" if r.wall_s is not None
            else "unknown (no run.json)" if not rj else "unknown")
    lines.append(f"measured: {total_text(r.total_run_seconds, 'run_seconds', 's')} over "
                 f"{reps}; run wall time {wall}")
    if r.energy_col:
        lines.append(f"energy: {total_text(r.total_energy_j, r.energy_col, 'J')} in total "
                     f"({r.energy_col})")
    else:
        lines.append("energy: not measured (no energy column)")
    return lines


def case_tables(r: Report) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) of each summary table that names cases, in the report's order; an
    empty one is left out."""
    out = []
    if len(r.failures):
        out.append((f"Failed or timed out ({r.failures_total}"
                    f"{_listed(r.failures, r.failures_total)})", r.failures))
    if len(r.violations):
        out.append((f"Threshold violations ({r.violations_total} in {r.violated} cases"
                    f"{_listed(r.violations, r.violations_total)})", r.violations))
    if len(r.slowest):
        out.append((f"Slowest OK cases (top {r.top} by run_seconds)", r.slowest))
    if r.energy_col and len(r.hungriest):
        out.append((f"Most energy (top {r.top} by {r.energy_col})", r.hungriest))
    if len(r.throttled):
        out.append((f"Throttled ({r.throttled_total}"
                    f"{_listed(r.throttled, r.throttled_total)})", r.throttled))
    return out


def _listed(table: pd.DataFrame, total: int) -> str:
    """``; the first 20 listed`` when ``table`` lists fewer rows than ``total``."""
    return f"; the first {len(table)} listed" if len(table) < total else ""


def table_text(df: pd.DataFrame, markdown: bool) -> str:
    """A report table as aligned text or Markdown (see ``tables.shown_table``)."""
    t = shown_table(df)
    return render_table(t.headers, t.columns, t.right, markdown)


def sections(r: Report, markdown: bool) -> list[tuple[str, str]]:
    """(title, body) of each summary section; bodies are tables or one line."""
    out = [(title, table_text(df, markdown)) for title, df in case_tables(r)]
    if r.effects is not None:
        out.append(("Main effects", render_effects(r.effects, markdown)))
    else:
        out.append(("Main effects", r.effects_note + "\n"))
    return out


def render_text(r: Report) -> str:
    """The terminal summary."""
    lines = headline(r)
    for title, body in sections(r, markdown=False):
        lines += ["", title + ":", body.rstrip("\n")]
    return "\n".join(lines) + "\n"


def render_markdown(r: Report) -> str:
    """The same summary as GitHub-flavoured Markdown (a CI job summary)."""
    title = f"## srd report: {r.run_id}" if r.run_id else f"## srd report: {r.source.metrics_path}"
    lines = [title, ""] + [f"- {line}" for line in headline(r)]
    for t, body in sections(r, markdown=True):
        lines += ["", f"### {t}", "", body.rstrip("\n")]
    return "\n".join(lines) + "\n"




class ReportText(OutputFormat):
    """The terminal summary."""

    NAME = "report"

    def write(self, data: Report, stream: IO[str]) -> None:
        stream.write(render_text(data))


class ReportMarkdown(OutputFormat):
    """The summary as Markdown."""

    NAME = "markdown"

    def write(self, data: Report, stream: IO[str]) -> None:
        stream.write(render_markdown(data))
