"""The report as one self-contained HTML page (inline CSS, plots as base64 PNG ``data:``
URIs, no script, nothing fetched from the network).

Tables show cells as metrics.csv writes them, leave out the columns empty in every row and
put ``case_id`` and the parameters first (``tables.shown_table``, ``analysis.report``); the
run's command line and options, the Python packages and the telemetry details are folded
away in ``<details>`` elements, closed until the reader opens them."""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Callable, Sequence
from typing import IO, Any

import pandas as pd

from doerunner.analysis.effects import EffectsTable
from doerunner.analysis.metrics import numeric, read_metrics
from doerunner.analysis.report import Report, param_columns
from doerunner.analysis.runfiles import read_timeseries, timeseries_files
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.plots import (
    HOST_PLOTTED,
    PARETO_AXES,
    host_columns_that_vary,
    plot_effects,
    plot_host,
    plot_pareto,
    plot_timeseries,
)
from doerunner.outputs.report_text import case_tables, headline
from doerunner.outputs.tables import Shown, cell_text, shown_table

TIMESERIES_CAP = 24
HTML_TABLE_CAP = 5000

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1f24;
background:#fff;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;
margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;white-space:nowrap}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}
tr.FAIL td,tr.TIMEOUT td{background:#ffebe9}
.scroll{overflow-x:auto;max-height:600px;overflow-y:auto}
.scroll th{position:sticky;top:0}.scroll td{white-space:nowrap}
.note{color:#57606a;font-style:italic}img{max-width:100%;border:1px solid #eaeef2}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}
dt{font-weight:600}dd{margin:0;word-break:break-all}
details{margin:8px 0}summary{cursor:pointer;color:#0969da;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;
padding:8px 14px;min-width:90px}.card b{display:block;font-size:20px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def html_table(t: Shown, row_classes: Sequence[str] | None = None) -> str:
    """A report table as ``tables.shown_table`` shows it (cells as metrics.csv writes them,
    columns empty in every row left out), numbers right-aligned (``td.n``), as HTML;
    ``row_classes``: a class per row (the status, to shade failures)."""
    head = "".join(f'<th class="n">{_e(h)}</th>' if r else f"<th>{_e(h)}</th>"
                   for h, r in zip(t.headers, t.right, strict=True))
    body = []
    for i, row in enumerate(zip(*t.columns, strict=True)):
        cls = f' class="{_e(row_classes[i])}"' if row_classes else ""
        cells = "".join(f'<td class="n">{_e(v)}</td>' if n else f"<td>{_e(v)}</td>"
                        for v, n in zip(row, t.right, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _dl(items: Sequence[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _folded(summary: str, items: Sequence[tuple[str, Any]]) -> str:
    """``items`` folded away under ``summary``: closed until the reader opens it."""
    return f"<details><summary>{_e(summary)}</summary>{_dl(items)}</details>"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}{k}." if not isinstance(v, dict) or v else prefix)
            if isinstance(v, dict) and not v:
                out.append((f"{prefix}{k}", "{}"))
        return out
    if isinstance(d, list):
        if all(not isinstance(x, (dict, list)) for x in d):
            return [(prefix.rstrip("."), " ".join(map(str, d)))]
        out = []
        for i, x in enumerate(d):
            out += _flatten(x, f"{prefix}{i}.")
        return out
    return [(prefix.rstrip("."), d)]


def measured(items: Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    """run.json entries (key, value) as the report shows them: a measured float with the
    decimals metrics.csv gives its last key (``summary.elapsed_s`` → 6, ``memory_mb`` → 2),
    booleans as JSON writes them, null as nothing, the rest as it is."""
    return [(k, _scalar(v, k.rsplit(".", 1)[-1])) for k, v in items]


def as_given(items: Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    """run.json entries the user gave (options) as they are (``600.0`` stays), booleans as
    JSON writes them, null as nothing."""
    return [(k, _scalar(v, None)) for k, v in items]


def _scalar(v: Any, column: str | None) -> str:
    """``v`` as text; a float rounded as metrics.csv rounds ``column`` (None: as it is)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, float) and column is not None:
        return cell_text(v, column)
    return str(v)


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def effects_frame(t: EffectsTable) -> pd.DataFrame:
    """The main effects as the report's table: one row per level, rank, factor and effect
    on a factor's first row; numbers with the response's decimals."""
    r = t.response
    rows = [(str(rank) if i == 0 else "", f.factor if i == 0 else "", lv.level, str(lv.n),
             cell_text(lv.mean, r), cell_text(lv.std, r), cell_text(lv.pooled_std, r),
             cell_text(f.effect, r) if i == 0 else "")
            for rank, f in enumerate(t.factors, 1) for i, lv in enumerate(f.levels)]
    return pd.DataFrame(rows, columns=["rank", "factor", "level", "n", "mean", "std",
                                       "pooled_std", "effect"])


def cases_first(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``case_id`` and the parameters first, the other columns in their order."""
    first = ["case_id", *param_columns(df)]
    return df[first + [c for c in df.columns if c not in first]]


def render_html(r: Report) -> str:
    """The self-contained HTML report (see the module docstring)."""
    src = r.source
    parts = [f"<h1>srd report{': ' + _e(r.run_id) if r.run_id else ''}</h1>"]
    cards = "".join(f'<div class="card"><b>{n}</b>{_e(s)}</div>' for s, n in r.counts.items())
    cards += f'<div class="card"><b>{r.violated}</b>violated</div>'
    parts.append(f'<div class="cards">{cards}</div>')
    parts.append("<h2>Summary</h2>")
    parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in headline(r)) + "</ul>")
    for title, table in case_tables(r):
        parts.append(f"<h3>{_e(title)}</h3>")
        parts.append(html_table(shown_table(table)))
    parts += _effects_html(r)
    parts += _plots_html(r)
    parts.append("<h2>GPU power and temperature</h2>")
    parts.append(_timeseries_html(r))
    parts += _run_html(r)
    parts += _cases_html(r)
    title = _e(f"srd report {r.run_id or src.metrics_path}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _effects_html(r: Report) -> list[str]:
    parts = ["<h2>Main effects</h2>"]
    if r.effects is None:
        return [*parts, f'<p class="note">{_e(r.effects_note)}</p>']
    df = r.source.df
    values = numeric(df, r.response)
    if "status" in df.columns:
        values = values[df["status"] == "OK"]
    values = values.dropna()
    nonnegative = bool(len(values)) and bool((values >= 0).all())
    if r.effects.has_spread or r.effects.has_pooled:
        bars = "error bars: standard deviation across rows"
        if r.effects.has_pooled:
            bars += " (the pooled repetition spread where a level has one row)"
        if nonnegative:
            bars += f", cut at 0 ({r.response} is never negative)"
    else:
        bars = "no error bars: one row per level, without a repetition spread"
    parts.append(f"<p>Mean {_e(r.response)} per level of each parameter (OK rows); "
                 f"{_e(bars)}.</p>")
    parts.append(_plotted(lambda: plot_effects(r.effects, nonnegative=nonnegative),
                          f"main effects on {r.response}"))
    if len(r.effects.factors) > 12:
        parts.append(f'<p class="note">first 12 of {len(r.effects.factors)} factors '
                     "plotted</p>")
    parts.append(html_table(shown_table(effects_frame(r.effects), labels=["level"])))
    return parts


def _columns(df: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``df``'s columns among ``names`` with ``case_id`` and ``status``: what a plot
    copies of the OK rows (a view, not a copy, until then)."""
    return df[[c for c in dict.fromkeys(["case_id", "status", *names]) if c in df.columns]]


def _plotted(draw: Callable[[], str], alt: str) -> str:
    """The image ``draw`` makes, or a note when its values cannot be drawn (matplotlib's
    axis arithmetic overflows near ±1.8e308; ``plots`` leaves such values out, this is the
    last guard): a plot never stops the report."""
    try:
        return _img(draw(), alt)
    except (ValueError, OverflowError) as e:
        return f'<p class="note">{_e(alt)}: cannot be plotted: {_e(e)}</p>'


def _plots_html(r: Report) -> list[str]:
    df = r.source.df
    parts = ["<h2>Pareto front: energy against latency</h2>"]
    if r.energy_col is None:
        parts.append('<p class="note">no energy column (energy_adjusted_j / energy_raw_j / '
                     "energy_total_j): run with GPU telemetry, or where RAPL can be read, to "
                     "see the trade-off</p>")
    else:
        try:
            uri, caption = plot_pareto(_columns(df, [*PARETO_AXES, r.energy_col]),
                                       r.energy_col)
            parts.append(_img(uri, "Pareto front") + f"<p>{_e(caption)}</p>")
        except (ValueError, OverflowError) as e:
            parts.append(f'<p class="note">no Pareto front: {_e(e)}</p>')
    parts.append("<h2>What the cases cost the host</h2>")
    host = _columns(df, [c for c, _ in HOST_PLOTTED])
    varying = host_columns_that_vary(host)
    if varying:
        parts.append(_plotted(lambda: plot_host(host, varying), "host columns per case"))
    else:
        parts.append('<p class="note">no host column varies between the OK cases</p>')
    return parts


def _run_html(r: Report) -> list[str]:
    """The run's metadata; its command line and options, the packages and the telemetry
    details folded away (``<details>``, closed)."""
    src, rj = r.source, r.source.run_json or {}
    meta: list[tuple[str, Any]] = [("metrics", src.metrics_path)]
    if not rj:
        meta.append(("run directory", "none found beside the metrics file"))
        return ["<h2>Run</h2>", _dl(meta)]
    meta += [(k, rj.get(k)) for k in ("run_id", "started", "ended", "cases_file", "cwd",
                                     "srd_version") if k in rj]
    meta += measured([(f"summary.{k}", v) for k, v in _flatten(rj.get("summary") or {})])
    options = [("command line", shlex.join(map(str, rj.get("command_line") or [])))]
    options += as_given([(f"options.{k}", v) for k, v in _flatten(rj.get("options") or {})])
    parts = ["<h2>Run</h2>", _dl(meta),
             _folded(f"Command line and options ({len(options) - 1} options)", options)]
    env = _flatten(rj.get("environment") or {})
    packages = [(k, v) for k, v in env if k.startswith("packages.")]
    telemetry = measured([(f"telemetry.{k}", v) for k, v in _flatten(rj.get("telemetry") or {})])
    parts += ["<h2>Environment</h2>",
              _dl(measured([(k, v) for k, v in env if not k.startswith("packages.")]))]
    if packages:
        parts.append(_folded(f"Python packages ({len(packages)})", packages))
    if telemetry:
        parts.append(_folded(f"Telemetry ({len(telemetry)} entries)", telemetry))
    return parts


def _cases_html(r: Report) -> list[str]:
    src, n = r.source, len(r.source.df)
    parts = [f"<h2>All cases ({n})</h2>"]
    # every column of the first rows: the report read only the columns it shows
    shown = cases_first(read_metrics(src.metrics_path, rows=HTML_TABLE_CAP))
    if n > HTML_TABLE_CAP:
        parts.append(f'<p class="note">first {HTML_TABLE_CAP} of {n} rows; the rest are '
                     f"in {_e(src.metrics_path)}</p>")
    t = shown_table(shown)
    if t.hidden:
        n = len(t.hidden)
        parts.append(f'<p class="note">not shown: {n} column{"s" if n > 1 else ""} empty in '
                     f"every row ({_e(', '.join(t.hidden))})</p>")
    classes = shown["status"].tolist() if "status" in shown.columns else None
    parts.append('<div class="scroll">' + html_table(t, classes) + "</div>")
    return parts


def _timeseries_html(r: Report) -> str:
    files, total, skipped = timeseries_files(r.source, TIMESERIES_CAP)
    note = "" if not skipped else (
        f'<p class="note">{skipped} timeseries_path cell(s) skipped: not a regular file under '
        "the run directory or beside the metrics file</p>")
    if not files:
        return note + ('<p class="note">no time series (timeseries/&lt;case_id&gt;.json) for '
                       "this run</p>")
    out = ["<p>Shaded: stretches where the GPU clocks were held down (throttling).</p>"]
    if note:
        out.append(note)
    for p in files:
        try:
            doc = read_timeseries(p)
            out.append(_img(plot_timeseries(doc), f"time series {doc.get('case_id', p.stem)}"))
        except (OSError, ValueError, KeyError, TypeError, OverflowError) as e:
            out.append(f'<p class="note">{_e(p.name)}: cannot be plotted: {_e(e)}</p>')
    if total > len(files):
        out.append(f'<p class="note">the first {len(files)} of {total} cases with a time '
                   "series are plotted</p>")
    return "\n".join(out)


class ReportHtml(OutputFormat):
    """The self-contained HTML report."""

    NAME = "html"

    def write(self, data: Report, stream: IO[str]) -> None:
        stream.write(render_html(data))
