"""The report (``analysis.report.Report``) as terminal text or GitHub-flavoured Markdown (a CI
job summary)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import IO, Any

import pandas as pd

from doerunner.analysis.report import Report
from doerunner.cells import round_half_away
from doerunner.columns import decimals_for
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.effects_table import render_effects
from doerunner.outputs.tables import render_table


def _num(value: Any, column: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return round_half_away(v, decimals_for(column)) if math.isfinite(v) else ""


def headline(r: Report) -> list[str]:
    rj = r.source.run_json or {}
    total = sum(r.counts.values())
    counts = ", ".join(f"{n} {s}" for s, n in r.counts.items())
    head = f"{total} cases: {counts}; {r.violations['case_id'].nunique()} violated thresholds"
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
    lines.append(f"measured: {_num(r.total_run_seconds, 'run_seconds')} s over {reps}; "
                 f"run wall time {wall}")
    if r.energy_col:
        lines.append(f"energy: {_num(r.total_energy_j, r.energy_col)} J in total "
                     f"({r.energy_col})")
    else:
        lines.append("energy: not measured (no energy column)")
    return lines


def sections(r: Report, markdown: bool) -> list[tuple[str, str]]:
    """(title, body) of each summary section; bodies are tables or one line."""
    def table(df: pd.DataFrame, right: Sequence[bool]) -> str:
        cols = [[str(v) for v in df[c].tolist()] for c in df.columns]
        return render_table(list(df.columns), cols, list(right), markdown)

    out = []
    if len(r.failures):
        out.append((f"Failed or timed out ({len(r.failures)})",
                    table(r.failures, [False, False, False])))
    if len(r.violations):
        out.append((f"Threshold violations ({len(r.violations)} in "
                    f"{r.violations['case_id'].nunique()} cases)",
                    table(r.violations, [False, False, True])))
    if len(r.slowest):
        s = r.slowest.assign(run_seconds=[_num(v, "run_seconds") for v in r.slowest.run_seconds])
        out.append((f"Slowest OK cases (top {r.top} by run_seconds)", table(s, [False, True])))
    if r.energy_col and len(r.hungriest):
        c = r.energy_col
        e = r.hungriest.assign(**{c: [_num(v, c) for v in r.hungriest[c]]})
        out.append((f"Most energy (top {r.top} by {c})", table(e, [False, True])))
    if len(r.throttled):
        t = r.throttled.assign(duration_s=[_num(v, "duration_s") if v != "" else ""
                                           for v in r.throttled.duration_s])
        out.append((f"Throttled ({len(r.throttled)})", table(t, [False, True, False])))
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
